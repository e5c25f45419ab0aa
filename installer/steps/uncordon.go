package steps

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubewright/kubewright/installer/engine"
)

// Uncordon is the `uncordon` step of the upgrade, after the node reports
// the new release: it makes the node schedulable again, but only when the
// upgrade cordoned it (AnnotationUpgradeCordoned); a node an operator
// cordoned stays as it was.
type Uncordon struct {
	// Client is the API client (nil: super-admin from the state directory).
	Client clientFunc
}

func (Uncordon) Name() string { return "uncordon" }

func (s Uncordon) Plan(ctx context.Context, t *engine.Target) ([]engine.Change, error) {
	u, _, err := inspectNodeUpgrade(ctx, t, s.Client)
	switch {
	case err != nil:
		return nil, err
	case u.ours:
		return []engine.Change{{Action: "uncordon", Object: nodeObject(t.Inv.Name), Detail: "cordoned for the upgrade to " + u.node.Annotations[AnnotationUpgradeCordoned]}}, nil
	case !u.done() && !u.node.Spec.Unschedulable:
		// What a dry run shows: the cordon step has not run yet.
		return []engine.Change{{Action: "uncordon", Object: nodeObject(t.Inv.Name), Detail: "once it runs " + u.target}}, nil
	}
	return nil, nil
}

func (s Uncordon) Apply(ctx context.Context, t *engine.Target, _ []engine.Change) error {
	cs, err := s.Client.get(ctx, t)
	if err != nil {
		return err
	}
	node, err := cs.CoreV1().Nodes().Get(ctx, t.Inv.Name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("get node %s: %w", t.Inv.Name, err)
	}
	if _, ours := node.Annotations[AnnotationUpgradeCordoned]; !ours {
		return nil // not cordoned by the upgrade: not ours to uncordon
	}
	return setUpgradeCordon(ctx, cs, t.Inv.Name, "", false)
}
