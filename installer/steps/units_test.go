package steps

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubewright/kubewright/installer/engine"
	"github.com/kubewright/kubewright/installer/steps/stepkit/stepkittest"
)

// fakeSystemd is a systemctl over state files: units listed in $ROOT/units
// (one "name state" per line) are loaded; stop/start rewrite their state and
// every stop/start is logged to $ROOT/calls.
const fakeSystemd = `st() { awk -v u="$1" '$1 == u { print $2 }' "$ROOT/units"; }
set_state() { awk -v u="$1" -v s="$2" '$1 == u { $2 = s } { print }' "$ROOT/units" > "$ROOT/units.new" && mv "$ROOT/units.new" "$ROOT/units"; }
case "$1" in
show) s=$(st "$5"); [ -n "$s" ] && echo loaded || echo not-found ;;
is-active) s=$(st "$2"); echo "${s:-inactive}"; [ "$s" = active ] ;;
stop) echo "stop $2" >> "$ROOT/calls"; set_state "$2" inactive ;;
start) echo "start $2" >> "$ROOT/calls"; [ "$2" = broken.service ] && { echo "Job for broken.service failed" >&2; exit 1; }; set_state "$2" active ;;
*) echo "unexpected: $*" >&2; exit 3 ;;
esac`

func unitsTarget(t *testing.T, units string) (*engine.Target, string) {
	t.Helper()
	tg, h, root := stepkittest.NewTarget(t, "m1", nil)
	tg.Inv = &clusterWith(nil).Spec.Hosts[0]
	stepkittest.FakeTool(t, root, "systemctl", fakeSystemd)
	stepkittest.WriteFile(t, root, "/units", units, 0o644)
	h.Env = []string{"PATH=" + filepath.Join(root, "bin") + ":/usr/bin:/bin", "ROOT=" + root}
	return tg, root
}

func objects(plan []engine.Change) string {
	var out []string
	for _, c := range plan {
		out = append(out, c.Action+" "+c.Object)
	}
	return strings.Join(out, ", ")
}

func TestStopAndStartUnits(t *testing.T) {
	ctx := context.Background()
	tg, root := unitsTarget(t, "a.service active\nb.service inactive\nc.service active\n")
	stop, err := newStopUnits(map[string]string{"units": "c.service, a.service b.service missing.service"})
	if err != nil {
		t.Fatal(err)
	}
	plan, err := stop.Plan(ctx, tg)
	if err != nil {
		t.Fatal(err)
	}
	if got := objects(plan); got != "stop c.service, stop a.service" {
		t.Fatalf("stop plan %q", got)
	}
	if err := stop.Apply(ctx, tg, plan); err != nil {
		t.Fatal(err)
	}
	if calls, _ := stepkittest.ReadFile(t, root, "/calls"); calls != "stop c.service\nstop a.service\n" {
		t.Errorf("stopped %q, want c then a (the given order)", calls)
	}
	if plan, _ := stop.Plan(ctx, tg); len(plan) != 0 {
		t.Errorf("second stop plans %q, want nothing", objects(plan))
	}

	start, err := newStartUnits(map[string]string{"units": "a.service missing.service c.service"})
	if err != nil {
		t.Fatal(err)
	}
	plan, err = start.Plan(ctx, tg)
	if err != nil {
		t.Fatal(err)
	}
	if got := objects(plan); got != "start a.service, start c.service" {
		t.Fatalf("start plan %q (a unit that is not installed must be skipped)", got)
	}
	if err := start.Apply(ctx, tg, plan); err != nil {
		t.Fatal(err)
	}
	if plan, _ := start.Plan(ctx, tg); len(plan) != 0 {
		t.Errorf("second start plans %q, want nothing", objects(plan))
	}
}

func TestStartUnitsNamesTheFailure(t *testing.T) {
	ctx := context.Background()
	tg, _ := unitsTarget(t, "broken.service failed\n")
	start, _ := newStartUnits(map[string]string{"units": "broken.service"})
	plan, err := start.Plan(ctx, tg)
	if err != nil || len(plan) != 1 {
		t.Fatalf("plan %v %v", plan, err)
	}
	err = start.Apply(ctx, tg, plan)
	if err == nil || !strings.Contains(err.Error(), "start broken.service on m1") || !strings.Contains(err.Error(), "journalctl -u broken.service") {
		t.Fatalf("err %v", err)
	}
}

func TestUnitsParam(t *testing.T) {
	for _, with := range []map[string]string{
		{},
		{"units": " , "},
		{"units": "kubelet"},
		{"units": "a.service;rm -rf /"},
		{"units": "a.service", "unit": "b.service"},
	} {
		if _, err := newStopUnits(with); err == nil {
			t.Errorf("newStopUnits(%v) accepted", with)
		}
	}
}
