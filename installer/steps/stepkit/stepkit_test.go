package stepkit_test

import (
	"context"
	"os"
	"os/user"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/kubewright/kubewright/installer/engine"
	"github.com/kubewright/kubewright/installer/steps/stepkit"
	"github.com/kubewright/kubewright/installer/steps/stepkit/stepkittest"
)

func currentOwner(t *testing.T) string {
	t.Helper()
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	g, err := user.LookupGroupId(u.Gid)
	if err != nil {
		t.Fatal(err)
	}
	return u.Username + ":" + g.Name
}

func strs(cs []engine.Change) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.String())
	}
	return out
}

func TestPlanFilesAndApply(t *testing.T) {
	ctx := context.Background()
	owner := currentOwner(t)
	const body = "[Service]\nExecStart=/usr/bin/true\n"
	tests := []struct {
		name    string
		setup   func(t *testing.T, root string)
		file    stepkit.File
		want    []string
		ownerOK bool
	}{
		{
			name: "missing file is created",
			file: stepkit.File{Path: "/etc/kw/a.conf", Content: []byte(body), Mode: 0o644},
			want: []string{"create /etc/kw/a.conf (mode 0644)"},
		},
		{
			name:  "identical file is left alone",
			setup: func(t *testing.T, root string) { stepkittest.WriteFile(t, root, "/etc/kw/a.conf", body, 0o644) },
			file:  stepkit.File{Path: "/etc/kw/a.conf", Content: []byte(body), Mode: 0o644, Owner: owner},
		},
		{
			name:  "content and mode differ",
			setup: func(t *testing.T, root string) { stepkittest.WriteFile(t, root, "/etc/kw/a.conf", "old\n", 0o600) },
			file:  stepkit.File{Path: "/etc/kw/a.conf", Content: []byte(body), Mode: 0o644},
			want:  []string{"update /etc/kw/a.conf (content differs; mode 0600 -> 0644)"},
		},
		{
			name:  "mode only",
			setup: func(t *testing.T, root string) { stepkittest.WriteFile(t, root, "/etc/kw/key.pem", body, 0o644) },
			file:  stepkit.File{Path: "/etc/kw/key.pem", Content: []byte(body), Mode: 0o600},
			want:  []string{"update /etc/kw/key.pem (mode 0644 -> 0600)"},
		},
		{
			name: "directory in the way",
			setup: func(t *testing.T, root string) {
				if err := os.MkdirAll(filepath.Join(root, "etc/kw/a.conf"), 0o755); err != nil {
					t.Fatal(err)
				}
			},
			file: stepkit.File{Path: "/etc/kw/a.conf", Content: []byte(body), Mode: 0o644},
			want: []string{"update /etc/kw/a.conf (replace non-regular file)"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tg, h, root := stepkittest.NewTarget(t, "h1", nil)
			if tc.setup != nil {
				tc.setup(t, root)
			}
			got, err := stepkit.PlanFiles(ctx, tg, []stepkit.File{tc.file})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(strs(got), tc.want) {
				t.Fatalf("plan = %q, want %q", strs(got), tc.want)
			}
			if n := len(h.Commands()); n != 1 {
				t.Fatalf("planning used %d remote commands, want 1", n)
			}
			if len(got) == 0 || strings.Contains(tc.name, "directory") {
				return
			}
			written, err := stepkit.ApplyFiles(ctx, tg, []stepkit.File{tc.file}, got)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(written, []string{tc.file.Path}) {
				t.Fatalf("written = %q", written)
			}
			if c, _ := stepkittest.ReadFile(t, root, tc.file.Path); c != body {
				t.Fatalf("content = %q", c)
			}
			again, err := stepkit.PlanFiles(ctx, tg, []stepkit.File{tc.file})
			if err != nil || len(again) != 0 {
				t.Fatalf("second plan = %q, %v; want none", strs(again), err)
			}
		})
	}
}

func TestPlanFilesBatchesManyFilesInOneCommand(t *testing.T) {
	tg, h, root := stepkittest.NewTarget(t, "h1", nil)
	var files []stepkit.File
	for _, n := range []string{"a", "b c", "it's", "d"} {
		files = append(files, stepkit.File{Path: "/etc/many/" + n, Content: []byte(n), Mode: 0o640})
	}
	stepkittest.WriteFile(t, root, "/etc/many/d", "d", 0o640)
	plan, err := stepkit.PlanFiles(context.Background(), tg, files)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"create /etc/many/a (mode 0640)", "create /etc/many/b c (mode 0640)", "create /etc/many/it's (mode 0640)"}
	if !reflect.DeepEqual(strs(plan), want) {
		t.Fatalf("plan = %q, want %q", strs(plan), want)
	}
	if n := len(h.Commands()); n != 1 {
		t.Fatalf("%d commands, want 1", n)
	}
	// Apply only a subset of the plan: the rest must stay untouched.
	if _, err := stepkit.ApplyFiles(context.Background(), tg, files, plan[:1]); err != nil {
		t.Fatal(err)
	}
	if _, ok := stepkittest.ReadFile(t, root, "/etc/many/b c"); ok {
		t.Fatal("file not in the plan was written")
	}
	if c, ok := stepkittest.ReadFile(t, root, "/etc/many/a"); !ok || c != "a" {
		t.Fatalf("planned file: %q %v", c, ok)
	}
}

func TestFileOwnerDiff(t *testing.T) {
	f := stepkit.File{Path: "/etc/x", Content: []byte("x"), Mode: 0o644, Owner: "etcd:etcd"}
	st := stepkit.FileState{Exists: true, Mode: 0o644, Owner: "root:root",
		SHA256: "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"}
	c := stepkit.FileDiff(f, st)
	if c == nil || c.String() != "update /etc/x (owner root:root -> etcd:etcd)" {
		t.Fatalf("diff = %v", c)
	}
	f.Owner = ""
	if c := stepkit.FileDiff(f, st); c != nil {
		t.Fatalf("owner not managed, diff = %v", c)
	}
}

func TestQuote(t *testing.T) {
	tests := map[string]string{
		"/etc/fstab": "/etc/fstab",
		"a b":        "'a b'",
		"it's":       `'it'\''s'`,
		"":           "''",
		"$(reboot)":  "'$(reboot)'",
	}
	for in, want := range tests {
		t.Run(in, func(t *testing.T) {
			if got := stepkit.Quote(in); got != want {
				t.Fatalf("Quote(%q) = %s, want %s", in, got, want)
			}
			out, err := (&stepkittest.Host{}).Exec(context.Background(), "printf %s "+stepkit.Quote(in))
			if err != nil || out != in {
				t.Fatalf("shell round trip = %q, %v", out, err)
			}
		})
	}
}
