package steps

import (
	"context"
	"strings"

	"github.com/kubewright/kubewright/installer/engine"
)

// Cordon is the `cordon` step of the upgrade: it marks the node
// unschedulable before its binaries are swapped, so no new pod lands on a
// node whose kubelet is about to restart. It plans nothing for a node that
// is already at the run's release (a resumed upgrade leaves finished nodes
// alone) or already cordoned (by an earlier, cut run, or by an operator: then
// the uncordon step leaves it cordoned too).
type Cordon struct {
	// Client is the API client (nil: super-admin from the state directory).
	Client clientFunc
}

func (Cordon) Name() string { return "cordon" }

func (s Cordon) Plan(ctx context.Context, t *engine.Target) ([]engine.Change, error) {
	u, _, err := inspectNodeUpgrade(ctx, t, s.Client)
	if err != nil || u.done() || u.node.Spec.Unschedulable {
		return nil, err
	}
	return []engine.Change{{Action: "cordon", Object: nodeObject(t.Inv.Name), Detail: strings.Join(u.pending, "; ")}}, nil
}

func (s Cordon) Apply(ctx context.Context, t *engine.Target, _ []engine.Change) error {
	u, cs, err := inspectNodeUpgrade(ctx, t, s.Client)
	if err != nil {
		return err
	}
	return setUpgradeCordon(ctx, cs, t.Inv.Name, u.target, true)
}
