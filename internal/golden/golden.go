// Package golden compares test output with files under testdata/ and
// rewrites them when tests run with -update. It exists so every test package
// shares one -update flag and one comparison instead of its own copy.
package golden

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
)

// update is registered once here so "go test ./... -update" works for every
// package that uses Assert, without per-package flag names clashing.
var update = flag.Bool("update", false, "rewrite golden files from the current output")

// Updating reports whether the test binary runs with -update.
func Updating() bool { return *update }

// Assert compares got with the file at path. Under -update it writes got to
// path (creating the directory) instead, so intended changes are one command.
func Assert(t testing.TB, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run go test -update to create): %v", err)
	}
	if string(got) != string(want) {
		t.Errorf("output differs from %s (run go test -update if intended)\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// AssertString is Assert for string output.
func AssertString(t testing.TB, path, got string) {
	t.Helper()
	Assert(t, path, []byte(got))
}
