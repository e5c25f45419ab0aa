package steps

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/kubewright/kubewright/installer/engine"
	"github.com/kubewright/kubewright/installer/steps/stepkit"
)

// ActionStop is the change a unit that is running gets from stop-units.
const ActionStop = "stop"

// StopUnits is the `stop-units` step: it stops the listed systemd units that
// are running, one after another in the order given, and leaves them enabled
// so the next boot (or a later start-units or install) brings them back.
// Day-2 playbooks use it to quiesce a host before they change what a unit
// reads: etcd restore stops the agent first, so it does not "repair" the
// apiserver the restore stopped on purpose.
//
// Parameters:
//
//	units  comma or space separated unit names, in stop order (required)
//
// A unit that is not running, or not installed, plans no change.
type StopUnits struct{ units []string }

func newStopUnits(with map[string]string) (engine.Step, error) {
	units, err := unitsParam(with)
	if err != nil {
		return nil, err
	}
	return &StopUnits{units: units}, nil
}

// unitNameRe is a systemd unit name of the kinds day-2 playbooks manage.
var unitNameRe = regexp.MustCompile(`^[A-Za-z0-9@_.:-]+\.(service|timer|socket|target|mount|path)$`)

// unitsParam reads the "units" parameter shared by stop-units and start-units.
func unitsParam(with map[string]string) ([]string, error) {
	if err := checkParams(with, "units"); err != nil {
		return nil, err
	}
	units := splitList(with["units"])
	if len(units) == 0 {
		return nil, errors.New(`parameter "units" is required (unit names, e.g. "kube-apiserver.service")`)
	}
	for _, u := range units {
		if !unitNameRe.MatchString(u) {
			return nil, fmt.Errorf("unit %q is not a systemd unit name (like kube-apiserver.service)", u)
		}
	}
	return units, nil
}

// Name implements engine.Step.
func (*StopUnits) Name() string { return "stop-units" }

// unitStates asks systemd for each unit's load and active state in one
// command: lines "NAME LOADSTATE ACTIVESTATE".
func unitStates(ctx context.Context, t *engine.Target, units []string) (map[string][2]string, error) {
	var b strings.Builder
	for _, u := range units {
		q := stepkit.Quote(u)
		fmt.Fprintf(&b, `echo %s "$(systemctl show -p LoadState --value %s 2>/dev/null || echo unknown)" "$(systemctl is-active %s 2>/dev/null || true)"; `, q, q, q)
	}
	out, err := stepkit.RunAsRoot(ctx, t, b.String())
	if err != nil {
		return nil, fmt.Errorf("query units on %s: %w", t.Inv.Name, err)
	}
	states := map[string][2]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		var st [2]string
		copy(st[:], f[1:])
		states[f[0]] = st
	}
	for _, u := range units {
		if _, ok := states[u]; !ok {
			return nil, fmt.Errorf("query units on %s: no state for %s in %q", t.Inv.Name, u, out)
		}
	}
	return states, nil
}

// running reports an active state that stop would change.
func running(active string) bool {
	switch active {
	case "active", "activating", "reloading", "deactivating":
		return true
	}
	return false
}

// Plan implements engine.Step.
func (s *StopUnits) Plan(ctx context.Context, t *engine.Target) ([]engine.Change, error) {
	states, err := unitStates(ctx, t, s.units)
	if err != nil {
		return nil, err
	}
	var changes []engine.Change
	for _, u := range s.units {
		if st := states[u]; running(st[1]) {
			changes = append(changes, engine.Change{Action: ActionStop, Object: u, Detail: st[1]})
		}
	}
	return changes, nil
}

// Apply implements engine.Step: each planned unit is stopped and waited for
// (systemctl stop returns once the unit is down) before the next.
func (s *StopUnits) Apply(ctx context.Context, t *engine.Target, plan []engine.Change) error {
	for _, u := range s.units {
		if !stepkit.HasObject(plan, u) {
			continue
		}
		if out, err := stepkit.RunAsRoot(ctx, t, "systemctl stop "+stepkit.Quote(u)+" 2>&1"); err != nil {
			return fmt.Errorf("stop %s on %s: %w (%s)", u, t.Inv.Name, err, strings.TrimSpace(out))
		}
	}
	return nil
}
