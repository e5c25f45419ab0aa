package steps

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubewright/kubewright/installer/artifacts"
	"github.com/kubewright/kubewright/installer/engine"
	"github.com/kubewright/kubewright/installer/steps/stepkit/stepkittest"
)

// pidSystemctl extends fakeSystemctlScript with main PIDs: a start or
// restart of a unit whose binary is named in exe-<unit> hard-links that
// binary as <root>/proc/<pid>/exe, so the "process" keeps the inode it was
// started from when the file on disk is replaced by rename, as a real one does.
const pidSystemctl = `d=$(dirname "$0")/..; s=$d/systemd-state; mkdir -p "$s"
case "$1" in
show) cat "$s/pid-$5" 2>/dev/null || echo 0; exit 0 ;;
start|restart) u=$2; [ "$u" = --no-block ] && u=$3
  b=$(cat "$d/exe-$u" 2>/dev/null)
  if [ -n "$b" ]; then n=$(( $(cat "$s/lastpid" 2>/dev/null || echo 100) + 1 )); echo $n > "$s/lastpid"; mkdir -p "$d/proc/$n"; ln -f "$d$b" "$d/proc/$n/exe"; echo $n > "$s/pid-$u"; fi ;;
esac
` + fakeSystemctlScript

// replaceBinary renames a new file over p, as the binaries steps' uploads do.
func replaceBinary(t *testing.T, root, p, content string) {
	t.Helper()
	stepkittest.WriteFile(t, root, p+".new", content, 0o755)
	if err := os.Rename(filepath.Join(root, p+".new"), filepath.Join(root, p)); err != nil {
		t.Fatal(err)
	}
}

func restarts(plan []engine.Change) string {
	var out []string
	for _, c := range plan {
		if c.Action == "restart" {
			out = append(out, c.Object)
		}
	}
	return strings.Join(out, ",")
}

// The upgrade path: after the binaries steps swap an executable, the unit
// running the old one is restarted, and only that unit; a replaced file
// with the same content restarts nothing.
func TestServicesRestartWhenTheirBinaryIsReplaced(t *testing.T) {
	ctx := context.Background()
	f := newCPFixture(t, cpInventory)
	tg, _, root := f.target(t, "m1")
	stepkittest.FakeTool(t, root, "systemctl", pidSystemctl)
	for _, b := range []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd"} {
		stepkittest.WriteFile(t, root, "/usr/local/bin/"+b, b+" v1.36.3\n", 0o755)
		unit := map[string]string{"kube-apiserver": unitAPIServer, "kube-controller-manager": unitController, "kube-scheduler": unitScheduler, "etcd": "etcd.service"}[b]
		stepkittest.WriteFile(t, root, "/exe-"+unit, "/usr/local/bin/"+b, 0o644)
	}
	converge(t, ControlPlane{}, tg)
	converge(t, Etcd{}, tg)

	replaceBinary(t, root, "/usr/local/bin/kube-apiserver", "kube-apiserver v1.37.2\n")
	replaceBinary(t, root, "/usr/local/bin/kube-scheduler", "kube-scheduler v1.36.3\n") // same bytes, new inode
	plan, err := ControlPlane{}.Plan(ctx, tg)
	if err != nil {
		t.Fatal(err)
	}
	if got := restarts(plan); got != unitAPIServer {
		t.Fatalf("restarts after replacing kube-apiserver = %q, want only %s (plan %v)", got, unitAPIServer, plan)
	}
	if !strings.Contains(plan[0].Detail, "/usr/local/bin/kube-apiserver replaced since the unit started") {
		t.Errorf("restart detail = %q", plan[0].Detail)
	}
	if err := (ControlPlane{}).Apply(ctx, tg, plan); err != nil {
		t.Fatal(err)
	}
	if again, err := (ControlPlane{}).Plan(ctx, tg); err != nil || len(again) != 0 {
		t.Fatalf("plan after the restart = %v, %v; want nothing", again, err)
	}

	// A dry run plans before the binaries step swapped anything: a unit
	// running the file on disk, which the run's artifacts replace, is planned
	// for a restart too.
	src, err := artifacts.OpenDir(artifactsDir(t, "kube-scheduler"))
	if err != nil {
		t.Fatal(err)
	}
	tg.Shared = engine.NewSharedData()
	tg.Shared.Set(SharedArtifacts, artifacts.Source(src))
	plan, err = ControlPlane{}.Plan(ctx, tg)
	if err != nil {
		t.Fatal(err)
	}
	if got := restarts(plan); got != unitScheduler || !strings.Contains(plan[0].Detail, "differs from the artifacts") {
		t.Fatalf("dry-run restarts = %q, want %s for its pending binary (plan %v)", got, unitScheduler, plan)
	}
	tg.Shared = nil

	// etcd restarts without blocking, like its other restarts.
	replaceBinary(t, root, "/usr/local/bin/etcd", "etcd v3.6.9\n")
	plan, err = Etcd{}.Plan(ctx, tg)
	if err != nil {
		t.Fatal(err)
	}
	if got := restarts(plan); got != "etcd.service" {
		t.Fatalf("etcd restarts = %q (plan %v)", got, plan)
	}
	if err := (Etcd{}).Apply(ctx, tg, plan); err != nil {
		t.Fatal(err)
	}
	log, _ := stepkittest.ReadFile(t, root, "/systemd-state/log")
	if !strings.Contains(log, "restart --no-block etcd.service") {
		t.Errorf("etcd restart must not block; systemctl log:\n%s", log)
	}
}

// Without a main PID (or a systemctl that cannot say) nothing is restarted:
// an unknown is never a reason to bounce a running service.
func TestServiceWithUnknownProcessIsNotRestarted(t *testing.T) {
	f := newCPFixture(t, cpInventory)
	tg, _, root := f.target(t, "m1")
	stepkittest.WriteFile(t, root, "/usr/local/bin/kube-apiserver", "v1\n", 0o755)
	converge(t, ControlPlane{}, tg) // fakeSystemctlScript has no "show"
	replaceBinary(t, root, "/usr/local/bin/kube-apiserver", "v2\n")
	plan, err := ControlPlane{}.Plan(context.Background(), tg)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan) != 0 {
		t.Fatalf("plan = %v, want nothing", plan)
	}
}
