package main

import (
	"bytes"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCommands(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("content\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	for _, tc := range []struct {
		name     string
		argv     []string
		wantOut  string
		wantCode int
		wantErr  string
	}{
		{"echo", []string{"testapp", "echo", "a", "b"}, "a b\n", 0, ""},
		{"sh shim by argv0", []string{"/bin/sh", "-c", "echo hi there"}, "hi there\n", 0, ""},
		{"sh subcommand", []string{"testapp", "sh", "-c", "hostname"}, host + "\n", 0, ""},
		{"cat", []string{"sh", "-c", "cat " + filepath.Join(dir, "f")}, "content\n", 0, ""},
		{"ls", []string{"testapp", "ls", dir}, "f\n", 0, ""},
		{"exit code", []string{"sh", "-c", "exit 3"}, "", 3, ""},
		{"unknown", []string{"sh", "-c", "rm -rf /"}, "", 127, "rm: command not found"},
		{"sh without -c", []string{"sh", "script.sh"}, "", 2, "sh supports only"},
		{"nested sh refused", []string{"sh", "-c", "sh -c echo"}, "", 2, "sh is not allowed"},
		{"cat missing", []string{"testapp", "cat", filepath.Join(dir, "nope")}, "", 1, "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(tc.argv, &out, &errb)
			if code != tc.wantCode || out.String() != tc.wantOut {
				t.Errorf("code %d out %q, want %d %q (stderr %q)", code, out.String(), tc.wantCode, tc.wantOut, errb.String())
			}
			if tc.wantErr != "" && !strings.Contains(errb.String(), tc.wantErr) {
				t.Errorf("stderr %q, want %q", errb.String(), tc.wantErr)
			}
		})
	}
}

func TestHandler(t *testing.T) {
	t.Setenv("TESTAPP_X", "y")
	srv := httptest.NewServer(handler())
	defer srv.Close()
	host, _ := os.Hostname()
	for path, want := range map[string]string{"/": host + "\n", "/healthz": "ok\n", "/env/TESTAPP_X": "y\n"} {
		resp, err := srv.Client().Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != want {
			t.Errorf("GET %s = %q, want %q", path, b, want)
		}
	}
	resp, _ := srv.Client().Get(srv.URL + "/env/NOT_SET_ANYWHERE")
	if resp.StatusCode != 404 {
		t.Errorf("unset env: status %d, want 404", resp.StatusCode)
	}
}
