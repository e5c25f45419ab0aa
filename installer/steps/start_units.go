package steps

import (
	"context"
	"fmt"
	"strings"

	"github.com/kubewright/kubewright/installer/engine"
	"github.com/kubewright/kubewright/installer/steps/stepkit"
)

// StartUnits is the `start-units` step: it starts the listed systemd units
// that are installed but not running, in the order given, each waited for
// (systemctl start returns when the unit is active or has failed). It is
// the other half of stop-units: day-2 playbooks bring back what they
// stopped. Units that are not installed on the host are skipped, so one
// list serves hosts with and without, say, kubewright-agent.
//
// Parameters:
//
//	units  comma or space separated unit names, in start order (required)
type StartUnits struct{ units []string }

func newStartUnits(with map[string]string) (engine.Step, error) {
	units, err := unitsParam(with)
	if err != nil {
		return nil, err
	}
	return &StartUnits{units: units}, nil
}

// Name implements engine.Step.
func (*StartUnits) Name() string { return "start-units" }

// Plan implements engine.Step.
func (s *StartUnits) Plan(ctx context.Context, t *engine.Target) ([]engine.Change, error) {
	states, err := unitStates(ctx, t, s.units)
	if err != nil {
		return nil, err
	}
	var changes []engine.Change
	for _, u := range s.units {
		st := states[u]
		if st[0] == "loaded" && st[1] != "active" {
			changes = append(changes, engine.Change{Action: stepkit.ActionStart, Object: u, Detail: st[1]})
		}
	}
	return changes, nil
}

// Apply implements engine.Step.
func (s *StartUnits) Apply(ctx context.Context, t *engine.Target, plan []engine.Change) error {
	for _, u := range s.units {
		if !stepkit.HasObject(plan, u) {
			continue
		}
		if out, err := stepkit.RunAsRoot(ctx, t, "systemctl start "+stepkit.Quote(u)+" 2>&1"); err != nil {
			return fmt.Errorf("start %s on %s: %w (%s; see journalctl -u %s)", u, t.Inv.Name, err, strings.TrimSpace(out), u)
		}
	}
	return nil
}
