package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestStateDirOpenToOthersIsRefused: a state directory that holds anything
// and that group or others can read, write or traverse is refused before
// anything is read from or written into it, naming the directory and the
// fix, whether it comes from --state-dir or KUBEWRIGHT_STATE_DIR. A private
// one is used, a missing one is created 0700 and an empty open one (a
// fresh mkdir) is made 0700 before anything goes in.
func TestStateDirOpenToOthersIsRefused(t *testing.T) {
	for _, mode := range []fs.FileMode{0o755, 0o750, 0o701, 0o707} {
		t.Run(fmt.Sprintf("%04o", mode), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "state")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			// Something worth protecting is already in it.
			if err := os.WriteFile(filepath.Join(dir, "known_hosts"), nil, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(dir, mode); err != nil {
				t.Fatal(err)
			}
			for _, viaEnv := range []bool{false, true} {
				args := []string{"run", "check", "-i", "testdata/certs-inventory.yaml"}
				if viaEnv {
					t.Setenv("KUBEWRIGHT_STATE_DIR", dir)
				} else {
					args = append(args, "--state-dir", dir)
				}
				_, _, err := runCLI(t, args...)
				if code := exitCodeQuiet(err); code != exitBadInput {
					t.Fatalf("env=%v: exit %d (%v), want %d", viaEnv, code, err, exitBadInput)
				}
				for _, want := range []string{"state directory " + dir + " is open to group or others", "fix: chmod 700 " + dir} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("env=%v: error lacks %q: %v", viaEnv, want, err)
					}
				}
				if entries, _ := os.ReadDir(dir); len(entries) != 1 {
					t.Errorf("env=%v: refused state directory was written: %v", viaEnv, entries)
				}
				if fi, _ := os.Stat(dir); fi.Mode().Perm() != mode {
					t.Errorf("env=%v: refused state directory changed mode to %v", viaEnv, fi.Mode())
				}
			}
		})
	}

	t.Run("private, new or empty", func(t *testing.T) {
		parent := t.TempDir()
		private := filepath.Join(parent, "private")
		if err := os.Mkdir(private, 0o700); err != nil {
			t.Fatal(err)
		}
		// An empty directory has exposed nothing yet: it is made 0700.
		empty := filepath.Join(parent, "empty")
		if err := os.Mkdir(empty, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(empty, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, dir := range []string{private, filepath.Join(parent, "new"), empty} {
			// The hosts listen nowhere: the run fails on them (exit 1),
			// not on the state directory, and journals into it.
			_, _, err := runCLI(t, "run", "check", "-i", "testdata/certs-inventory.yaml", "--state-dir", dir)
			if code := exitCodeQuiet(err); code != exitFailed || strings.Contains(err.Error(), "state directory") {
				t.Fatalf("%s: exit %d: %v", dir, code, err)
			}
			fi, err := os.Stat(dir)
			if err != nil || fi.Mode().Perm() != 0o700 {
				t.Fatalf("%s after a run: %v %v, want mode 0700", dir, fi, err)
			}
			if j, _ := filepath.Glob(filepath.Join(dir, "clusters", "certtest", "runs", "*", "journal.json")); len(j) != 1 {
				t.Errorf("%s: journals %v, want one", dir, j)
			}
		}
	})

	t.Run("not a directory", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "state")
		if err := os.WriteFile(file, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		_, _, err := runCLI(t, "run", "check", "-i", "testdata/certs-inventory.yaml", "--state-dir", file)
		if exitCodeQuiet(err) != exitBadInput || !strings.Contains(err.Error(), file+" is not a directory") {
			t.Fatalf("err = %v", err)
		}
	})
}

// TestInstallStateIsPrivate: what install prepares on the operator's
// machine (PKI, kubeconfigs, the encryption key, the VRRP password, the
// journal and host logs) lives in directories only the owner can enter,
// and every key, kubeconfig, secret and log is 0600.
func TestInstallStateIsPrivate(t *testing.T) {
	arts := nodeArtifactsDir(t)
	inv := filepath.Join(t.TempDir(), "inv.yaml")
	body, err := os.ReadFile(certsInv)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(body) + "  kubernetes:\n    version: v1.37.2\n  artifacts:\n    source: dir\n    path: " + arts + "\n"
	if err := os.WriteFile(inv, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	self, _ := os.Executable()
	state := filepath.Join(t.TempDir(), "state")
	// The hosts listen nowhere: install prepares everything, then fails on them.
	_, _, err = bundleCLI(t, "install", "-i", inv, "--state-dir", state, "--agent-binary", self)
	if err == nil || isBadInput(err) {
		t.Fatalf("install: %v", err)
	}
	var keys, secrets int
	err = filepath.WalkDir(state, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		perm := fi.Mode().Perm()
		rel, _ := filepath.Rel(state, p)
		switch {
		case d.IsDir():
			if perm != 0o700 {
				t.Errorf("directory %s is %04o, want 0700", rel, perm)
			}
		case strings.HasSuffix(p, ".key"), strings.HasSuffix(p, ".conf"), filepath.Base(filepath.Dir(p)) == "secrets",
			strings.HasSuffix(p, ".log"), strings.HasSuffix(p, ".json"), filepath.Base(p) == "known_hosts":
			if perm != 0o600 {
				t.Errorf("%s is %04o, want 0600", rel, perm)
			}
			if strings.HasSuffix(p, ".key") {
				keys++
			}
			if filepath.Base(filepath.Dir(p)) == "secrets" {
				secrets++
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if keys < 5 || secrets < 2 {
		t.Fatalf("found %d keys and %d secrets under %s: install did not prepare what this test checks", keys, secrets, state)
	}
}
