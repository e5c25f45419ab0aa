package steps

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kubewright/kubewright/installer/steps/stepkit/stepkittest"
)

// Every bad parameter set is refused when the playbook is validated, with a
// message that says what to write instead.
func TestFileParams(t *testing.T) {
	tests := []struct {
		name string
		with map[string]string
	}{
		{"no path", map[string]string{"content": "x"}},
		{"relative path", map[string]string{"path": "etc/motd", "content": "x"}},
		{"unclean path", map[string]string{"path": "/etc//kubewright/../motd", "content": "x"}},
		{"root", map[string]string{"path": "/", "content": "x"}},
		{"no content", map[string]string{"path": "/etc/motd"}},
		{"mode not octal", map[string]string{"path": "/etc/motd", "content": "x", "mode": "0x1ff"}},
		{"mode with setuid", map[string]string{"path": "/etc/motd", "content": "x", "mode": "4755"}},
		{"owner without group", map[string]string{"path": "/etc/motd", "content": "x", "owner": "root"}},
		{"unknown parameter", map[string]string{"path": "/etc/motd", "content": "x", "perms": "0644"}},
	}
	var got strings.Builder
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := newFile(tc.with)
			if err == nil {
				t.Fatalf("accepted %v", tc.with)
			}
			got.WriteString(tc.name + ": " + err.Error() + "\n")
		})
	}
	golden(t, "file-params", []byte(got.String()))

	for _, ok := range []map[string]string{
		{"path": "/etc/motd", "content": ""},
		{"path": "/etc/motd", "content": "x", "mode": "600", "owner": "root:root"},
		{"path": "/etc/motd", "content": "x", "mode": "0644", "owner": "1000:1000"},
	} {
		if _, err := newFile(ok); err != nil {
			t.Errorf("%v refused: %v", ok, err)
		}
	}
}

func TestFileIdempotent(t *testing.T) {
	ctx := context.Background()
	tg, _, root := stepkittest.NewTarget(t, "m1", nil)
	st, err := newFile(map[string]string{"path": "/etc/containerd/certs.d/mirror/hosts.toml", "content": "server = \"https://mirror\"\n", "mode": "0640"})
	if err != nil {
		t.Fatal(err)
	}
	full := filepath.Join(root, "etc/containerd/certs.d/mirror/hosts.toml")
	step := func(want ...string) {
		t.Helper()
		plan, err := st.Plan(ctx, tg)
		if err != nil {
			t.Fatal(err)
		}
		if got := changeStrings(plan); !slices.Equal(got, want) {
			t.Fatalf("plan %q, want %q", got, want)
		}
		if len(plan) > 0 {
			if err := st.Apply(ctx, tg, plan); err != nil {
				t.Fatal(err)
			}
		}
	}

	step("create /etc/containerd/certs.d/mirror/hosts.toml (mode 0640)")
	if b, err := os.ReadFile(full); err != nil || string(b) != "server = \"https://mirror\"\n" {
		t.Fatalf("content %q, %v", b, err)
	}
	if fi, _ := os.Stat(full); fi.Mode().Perm() != 0o640 {
		t.Fatalf("mode %o", fi.Mode().Perm())
	}
	step() // up to date: nothing planned

	// Drift is planned back, with the reason.
	if err := os.WriteFile(full, []byte("edited\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(full, 0o666); err != nil {
		t.Fatal(err)
	}
	step("update /etc/containerd/certs.d/mirror/hosts.toml (content differs; mode 0666 -> 0640)")
	step()
}
