package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestMain lets the tests run this package's main under any argv[0] (cp,
// install-conf) by re-executing the test binary, as the image's symlinks do.
func TestMain(m *testing.M) {
	if os.Getenv("FILEINSTALL_RUN_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// exe runs main as a separate process named argv0 and returns its exit status
// and stderr.
func exe(t *testing.T, argv0 string, args ...string) (int, string) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := &exec.Cmd{Path: self, Args: append([]string{argv0}, args...), Env: append(os.Environ(), "FILEINSTALL_RUN_MAIN=1")}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, stderr.String()
	case errors.As(err, &ee):
		return ee.ExitCode(), stderr.String()
	default:
		t.Fatalf("run %s: %v", argv0, err)
		return -1, ""
	}
}

func write(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // no umask
		t.Fatal(err)
	}
}

func check(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != content {
		t.Errorf("%s = %q, want %q", path, b, content)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode() != mode {
		t.Errorf("%s mode = %v, want %v", path, st.Mode(), mode)
	}
}

// noTemps fails if a temporary file was left in dir.
func noTemps(t *testing.T, dir string, want ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("%s holds %q, want exactly %q", dir, got, want)
	}
}

func TestInstallConfCopiesWithMode0644(t *testing.T) {
	dir := t.TempDir()
	src, dstDir := filepath.Join(dir, "cni-conf.json"), filepath.Join(dir, "net.d")
	if err := os.Mkdir(dstDir, 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, src, `{"name":"cbr0"}`, 0o600)
	dst := filepath.Join(dstDir, "10-flannel.conflist")
	if code, stderr := exe(t, "/opt/bin/install-conf", src, dst); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	check(t, dst, `{"name":"cbr0"}`, 0o644)
	noTemps(t, dstDir, "10-flannel.conflist")

	// An executable source still gives 0644; the subcommand form works too.
	write(t, src, `{"name":"cbr1"}`, 0o755)
	if code, stderr := exe(t, "fileinstall", "install-conf", src, dst); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	check(t, dst, `{"name":"cbr1"}`, 0o644)
}

func TestCpKeepsExecutableModeAndReplacesAtomically(t *testing.T) {
	dir := t.TempDir()
	src, binDir := filepath.Join(dir, "flannel"), filepath.Join(dir, "bin")
	if err := os.Mkdir(binDir, 0o755); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(binDir, "flannel")
	write(t, src, "new plugin", 0o755)
	write(t, dst, "old plugin", 0o700)
	// A running plugin keeps its inode: hold the old file open and check that
	// it still reads the old bytes after the install (a rename, not a rewrite).
	old, err := os.Open(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	var before syscall.Stat_t
	if err := syscall.Fstat(int(old.Fd()), &before); err != nil {
		t.Fatal(err)
	}

	if code, stderr := exe(t, "cp", "-f", src, dst); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	check(t, dst, "new plugin", 0o755)
	noTemps(t, binDir, "flannel")
	var after syscall.Stat_t
	if err := syscall.Stat(dst, &after); err != nil {
		t.Fatal(err)
	}
	if after.Ino == before.Ino {
		t.Error("dst kept its inode: it was rewritten in place, not replaced by a rename")
	}
	b := make([]byte, 64)
	n, _ := old.ReadAt(b, 0)
	if string(b[:n]) != "old plugin" {
		t.Errorf("the old file's open descriptor reads %q, want the old content", b[:n])
	}

	// cp into a directory names the copy after SRC; without -f too.
	write(t, src, "newer plugin", 0o750)
	if code, stderr := exe(t, "/bin/cp", src, binDir); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	check(t, dst, "newer plugin", 0o750)
	noTemps(t, binDir, "flannel")
}

func TestFailedCopyLeavesDestinationAlone(t *testing.T) {
	dir := t.TempDir()
	dst := filepath.Join(dir, "flannel")
	write(t, dst, "keep me", 0o755)
	for _, tc := range []struct {
		argv0 string
		args  []string
		want  string
	}{
		{"cp", []string{filepath.Join(dir, "missing"), dst}, "no such file"},
		{"cp", []string{dir, dst}, "not a regular file"},
		{"install-conf", []string{filepath.Join(dir, "missing"), dst}, "no such file"},
		{"install-conf", []string{dir, dst}, "not a regular file"},
		{"install-conf", []string{dst, filepath.Join(dir, "no-such-dir", "x")}, "temporary file in"},
	} {
		code, stderr := exe(t, tc.argv0, tc.args...)
		if code != 1 || !strings.Contains(stderr, tc.want) || !strings.HasPrefix(stderr, tc.argv0+": ") {
			t.Errorf("%s %q: exit %d, stderr %q; want exit 1 and %q", tc.argv0, tc.args, code, stderr, tc.want)
		}
	}
	check(t, dst, "keep me", 0o755)
	noTemps(t, dir, "flannel")
}

func TestBadArgumentsExit2WithUsage(t *testing.T) {
	for _, tc := range []struct {
		argv0 string
		args  []string
		want  string
	}{
		{"cp", nil, "cp: want SRC DST, got 0 paths"},
		{"cp", []string{"-f", "a"}, "cp: want SRC DST, got 1 paths"},
		{"cp", []string{"a", "b", "c"}, "cp: want SRC DST, got 3 paths"},
		{"cp", []string{"-r", "a", "b"}, `cp: unsupported option "-r" (usage: cp [-f] SRC DST)`},
		{"install-conf", []string{"a"}, "install-conf: want 2 arguments SRC DST, got 1"},
		{"install-conf", []string{"-f", "a", "b"}, "install-conf: want 2 arguments SRC DST, got 3"},
		{"fileinstall", nil, "usage: fileinstall cp [-f] SRC DST | fileinstall install-conf SRC DST"},
		{"fileinstall", []string{"mv", "a", "b"}, `unknown command "mv"`},
		{"mv", []string{"a", "b"}, `unknown command "mv"`},
	} {
		code, stderr := exe(t, tc.argv0, tc.args...)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%s %q: exit %d, stderr %q; want exit 2 and %q", tc.argv0, tc.args, code, stderr, tc.want)
		}
	}
}

// "--" ends options, so a file named like an option can be copied.
func TestCpDoubleDash(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	write(t, "-f", "dash", 0o644)
	if code, stderr := exe(t, "cp", "--", "-f", "out"); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	check(t, filepath.Join(dir, "out"), "dash", 0o644)
}
