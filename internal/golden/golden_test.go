package golden

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// recorder captures failures so mismatches can be checked without failing
// this test.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, format)
}

func TestAssert(t *testing.T) {
	if *update {
		t.Skip("comparison behaviour is not exercised under -update")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "x.golden")
	if err := os.WriteFile(path, []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		got     string
		wantErr bool
	}{
		{"equal", "hello\n", false},
		{"differs", "hello", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &recorder{TB: t}
			AssertString(r, path, tc.got)
			if (len(r.errs) > 0) != tc.wantErr {
				t.Fatalf("errors = %v, want error %v", r.errs, tc.wantErr)
			}
			if tc.wantErr && !strings.Contains(r.errs[0], "differs") {
				t.Errorf("message %q does not say the output differs", r.errs[0])
			}
		})
	}
}

func TestUpdateWrites(t *testing.T) {
	old := *update
	*update = true
	t.Cleanup(func() { *update = old })
	path := filepath.Join(t.TempDir(), "sub", "y.golden")
	Assert(t, path, []byte("new"))
	b, err := os.ReadFile(path)
	if err != nil || string(b) != "new" {
		t.Fatalf("read back %q, %v; want \"new\"", b, err)
	}
}
