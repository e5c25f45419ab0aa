package steps

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kubewright/kubewright/installer/engine"
	"github.com/kubewright/kubewright/installer/inventory"
	"github.com/kubewright/kubewright/installer/remote"
	"github.com/kubewright/kubewright/installer/remote/remotetest"
)

// hostStepTarget is a target on an in-process SSH server (real /bin/sh, SFTP,
// a fake sudo), reached with remote.Dial as the CLI does.
func hostStepTarget(t *testing.T, name string) (*engine.Target, *remotetest.Server) {
	t.Helper()
	srv := remotetest.NewServer(t, remotetest.WithSudo(""))
	h, err := remote.Dial(context.Background(), srv.Config(name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return &engine.Target{
		Host:    h,
		Inv:     &inventory.Host{Name: name, Address: "127.0.0.1", Labels: map[string]string{"tier": "front"}},
		Facts:   &engine.Facts{Hostname: "box-" + name, CPUs: 2},
		Cluster: &inventory.Cluster{Metadata: inventory.Metadata{Name: "demo"}},
	}, srv
}

func mustBuild(t *testing.T, f engine.Factory, with map[string]string) engine.Step {
	t.Helper()
	st, err := f(with)
	if err != nil {
		t.Fatalf("%v: %v", with, err)
	}
	return st
}

// convergeTo plans (wanting exactly want), applies, and plans again (wanting
// nothing): every step must be idempotent.
func convergeTo(t *testing.T, st engine.Step, tg *engine.Target, want ...string) {
	t.Helper()
	ctx := context.Background()
	plan, err := st.Plan(ctx, tg)
	if err != nil {
		t.Fatalf("%s plan: %v", st.Name(), err)
	}
	if got := changeStrings(plan); !slices.Equal(got, want) {
		t.Fatalf("%s plan %q, want %q", st.Name(), got, want)
	}
	if len(plan) == 0 {
		return
	}
	if err := st.Apply(ctx, tg, plan); err != nil {
		t.Fatalf("%s apply: %v", st.Name(), err)
	}
	if plan, err = st.Plan(ctx, tg); err != nil || len(plan) > 0 {
		t.Fatalf("%s plan after apply: %q, %v; want nothing", st.Name(), changeStrings(plan), err)
	}
}

func readHostFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestHostStepsOverSSH(t *testing.T) {
	tg, srv := hostStepTarget(t, "web1")
	dir := srv.Dir()
	base := dir + "/{{ .Host.Name }}"
	hd := filepath.Join(dir, "web1")

	// directory: a whole tree in one step; a mode drift is planned back.
	tree := mustBuild(t, newDirectory, map[string]string{"path": base + "/a/b/c", "mode": "0750"})
	convergeTo(t, tree, tg, "create "+hd+"/a/b/c (directory, mode 0750)")
	if err := os.Chmod(hd+"/a/b/c", 0o700); err != nil {
		t.Fatal(err)
	}
	convergeTo(t, tree, tg, "update "+hd+"/a/b/c (mode 0700 -> 0750)")

	// copy: the local file, byte for byte.
	src := filepath.Join(t.TempDir(), "blob")
	blob := strings.Repeat("0123456789abcdef", 4096) + "\x00\xff"
	if err := os.WriteFile(src, []byte(blob), 0o600); err != nil {
		t.Fatal(err)
	}
	cp := mustBuild(t, newCopy, map[string]string{"src": src, "path": base + "/blob", "mode": "0600"})
	convergeTo(t, cp, tg, "create "+hd+"/blob (mode 0600)")
	if got := readHostFile(t, hd+"/blob"); got != blob {
		t.Fatalf("copied %d bytes, want %d", len(got), len(blob))
	}

	// template: host data rendered per host.
	tpl := mustBuild(t, newTemplate, map[string]string{
		"path":     base + "/app.conf",
		"template": "name={{ .Host.Name }}\nhostname={{ .Facts.Hostname }}\ntier={{ index .Host.Labels \"tier\" }}\ncluster={{ .Cluster }}\n",
	})
	convergeTo(t, tpl, tg, "create "+hd+"/app.conf (mode 0644)")
	if got, want := readHostFile(t, hd+"/app.conf"), "name=web1\nhostname=box-web1\ntier=front\ncluster=demo\n"; got != want {
		t.Fatalf("rendered %q, want %q", got, want)
	}

	// line: created, appended, a matching line replaced, the rest untouched.
	conf := hd + "/sysctl.conf"
	swappiness := mustBuild(t, newLine, map[string]string{"path": base + "/sysctl.conf", "line": "vm.swappiness = 10", "regexp": `^vm\.swappiness\s*=`})
	convergeTo(t, swappiness, tg, "create "+conf+" (mode 0644)")
	if err := os.WriteFile(conf, []byte("# keep me\nvm.swappiness=60\nkernel.pid_max = 4194304"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(conf, 0o640); err != nil {
		t.Fatal(err)
	}
	convergeTo(t, swappiness, tg, "update "+conf+" (replace line 2)")
	host := mustBuild(t, newLine, map[string]string{"path": base + "/sysctl.conf", "line": "# host {{ .Host.Name }}"})
	convergeTo(t, host, tg, "update "+conf+" (append line)")
	if got, want := readHostFile(t, conf), "# keep me\nvm.swappiness = 10\nkernel.pid_max = 4194304\n# host web1\n"; got != want {
		t.Fatalf("edited %q, want %q", got, want)
	}
	if fi, _ := os.Stat(conf); fi.Mode().Perm() != 0o640 {
		t.Fatalf("line changed the mode to %o", fi.Mode().Perm())
	}

	// command: unless skips, readonly never changes, a failing readonly fails.
	marker := hd + "/ran"
	once := mustBuild(t, newCommand, map[string]string{"run": "echo ran >> " + base + "/ran", "unless": "test -f " + base + "/ran"})
	convergeTo(t, once, tg, "run command echo ran >> "+marker+" (unless check failed)")
	if got := readHostFile(t, marker); got != "ran\n" {
		t.Fatalf("command ran %q times", got)
	}
	convergeTo(t, mustBuild(t, newCommand, map[string]string{"run": "uname -r", "readonly": "true"}), tg)
	if _, err := mustBuild(t, newCommand, map[string]string{"run": "exit 3", "readonly": "true"}).Plan(context.Background(), tg); err == nil {
		t.Fatal("a failing readonly command planned fine")
	}
	always, err := mustBuild(t, newCommand, map[string]string{"run": "true"}).Plan(context.Background(), tg)
	if got := changeStrings(always); err != nil || !slices.Equal(got, []string{"run command true"}) {
		t.Fatalf("plain command planned %q, %v", got, err)
	}

	// absent: a file, then a whole directory.
	convergeTo(t, mustBuild(t, newAbsent, map[string]string{"path": base + "/ran"}), tg, "delete "+marker)
	convergeTo(t, mustBuild(t, newAbsent, map[string]string{"path": base + "/a"}), tg, "delete "+hd+"/a (directory and its contents)")
	if _, err := os.Stat(hd + "/a"); !os.IsNotExist(err) {
		t.Fatalf("directory still there: %v", err)
	}
	convergeTo(t, mustBuild(t, newAbsent, map[string]string{"path": base + "/never-was"}), tg)
}

// A template that renders badly for one host fails that host's plan with
// the reason; nothing is written.
func TestHostTemplateErrors(t *testing.T) {
	tg, srv := hostStepTarget(t, "web1")
	for _, st := range []engine.Step{
		mustBuild(t, newTemplate, map[string]string{"path": srv.Dir() + "/x", "template": `{{ .Host.Labels.zone }}`}),
		mustBuild(t, newDirectory, map[string]string{"path": "/{{ .Host.Nope }}"}),
		mustBuild(t, newDirectory, map[string]string{"path": "/{{ .Host.Name }}/../etc"}),
		mustBuild(t, newLine, map[string]string{"path": srv.Dir() + "/x", "line": "{{ .Host.Labels.zone }}"}),
	} {
		if plan, err := st.Plan(context.Background(), tg); err == nil {
			t.Errorf("%s planned %q, want an error", st.Name(), changeStrings(plan))
		}
	}
	if _, err := os.Stat(srv.Dir() + "/x"); !os.IsNotExist(err) {
		t.Fatalf("a failed render wrote a file: %v", err)
	}
}

// Bad parameters are refused when the playbook is validated.
func TestHostStepParams(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	if err := os.WriteFile(src, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := []struct {
		f    engine.Factory
		with map[string]string
	}{
		{newCopy, map[string]string{"path": "/x"}},
		{newCopy, map[string]string{"src": src + ".missing", "path": "/x"}},
		{newCopy, map[string]string{"src": filepath.Dir(src), "path": "/x"}},
		{newCopy, map[string]string{"src": src, "path": "x"}},
		{newCopy, map[string]string{"src": src, "path": "/x", "mode": "888"}},
		{newCopy, map[string]string{"src": src, "path": "/x", "owner": "root"}},
		{newTemplate, map[string]string{"path": "/x"}},
		{newTemplate, map[string]string{"path": "/x", "template": "{{ .Host.Name "}},
		{newTemplate, map[string]string{"path": "relative/{{ .Host.Name }}", "template": ""}},
		{newLine, map[string]string{"path": "/x"}},
		{newLine, map[string]string{"path": "/x", "line": "a\nb"}},
		{newLine, map[string]string{"path": "/x", "line": "a", "regexp": "("}},
		{newLine, map[string]string{"path": "/x", "line": "a", "regexp": ""}},
		{newDirectory, map[string]string{"path": "/"}},
		{newDirectory, map[string]string{"path": "/a/../b"}},
		{newDirectory, map[string]string{"path": "/a", "perms": "0755"}},
		{newAbsent, map[string]string{}},
		{newAbsent, map[string]string{"path": "/"}},
		{newCommand, map[string]string{}},
		{newCommand, map[string]string{"run": "true", "readonly": "yes please"}},
		{newCommand, map[string]string{"run": "true", "readonly": "true", "unless": "true"}},
		{newCommand, map[string]string{"run": "true", "unless": " "}},
	}
	for _, b := range bad {
		if _, err := b.f(b.with); err == nil {
			t.Errorf("accepted %v", b.with)
		}
	}
	for _, ok := range []struct {
		f    engine.Factory
		with map[string]string
	}{
		{newCopy, map[string]string{"src": src, "path": "/srv/{{ .Host.Name }}/x", "mode": "600", "owner": "root:root"}},
		{newTemplate, map[string]string{"path": "/x", "template": ""}},
		{newLine, map[string]string{"path": "/etc/hosts", "line": "{{ .Host.Address }} {{ .Host.Name }}"}},
		{newDirectory, map[string]string{"path": "/srv/a/b", "mode": "0700"}},
		{newAbsent, map[string]string{"path": "/tmp/x"}},
		{newCommand, map[string]string{"run": "uname -r", "readonly": "true"}},
	} {
		if _, err := ok.f(ok.with); err != nil {
			t.Errorf("%v refused: %v", ok.with, err)
		}
	}
}
