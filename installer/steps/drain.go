package steps

import (
	"context"
	"fmt"
	"time"

	"github.com/kubewright/kubewright/installer/engine"
	"github.com/kubewright/kubewright/installer/kube"
)

// Drain is the `drain` step of the upgrade: it evicts the node's pods
// through the eviction API (kube.Drain), so PodDisruptionBudgets are
// respected and a refused eviction is retried until the drain timeout
// (SharedDrainTimeout, default 5 minutes). DaemonSet, static and finished
// pods stay. If the drain does not finish, the node is uncordoned (when the
// upgrade cordoned it) so it keeps serving on its old release, and the error
// says so and names the pods left: nothing on the node was upgraded.
type Drain struct {
	// Client is the API client (nil: super-admin from the state directory).
	Client clientFunc
	// Interval between eviction retries (zero: kube.Drain's default).
	Interval time.Duration
}

func (Drain) Name() string { return "drain" }

func (s Drain) Plan(ctx context.Context, t *engine.Target) ([]engine.Change, error) {
	u, cs, err := inspectNodeUpgrade(ctx, t, s.Client)
	// A node at the release is not drained, even if still cordoned by a
	// cut run: its pods need not move for an upgrade that already happened.
	if err != nil || u.done() {
		return nil, err
	}
	pods, err := kube.DrainablePods(ctx, cs, t.Inv.Name)
	if err != nil {
		return nil, err
	}
	var out []engine.Change
	for _, p := range pods {
		out = append(out, engine.Change{Action: "evict", Object: "pod " + p.Namespace + "/" + p.Name})
	}
	return out, nil
}

func drainTimeout(t *engine.Target) time.Duration {
	if t.Shared != nil {
		if v, ok := t.Shared.Get(SharedDrainTimeout); ok {
			if d, ok := v.(time.Duration); ok && d > 0 {
				return d
			}
		}
	}
	return DefaultDrainTimeout
}

func (s Drain) Apply(ctx context.Context, t *engine.Target, _ []engine.Change) error {
	cs, err := s.Client.get(ctx, t)
	if err != nil {
		return err
	}
	timeout := drainTimeout(t)
	derr := kube.Drain(ctx, cs, t.Inv.Name, kube.DrainOptions{Timeout: timeout, Interval: s.Interval})
	if derr == nil {
		return nil
	}
	// A fresh context: a cancelled run must still give the node back.
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	u, _, err := inspectNodeUpgrade(uctx, t, s.Client)
	if err != nil {
		return fmt.Errorf("%w; nothing on %s was upgraded, and it could not be checked for uncordoning (%v): run kubectl uncordon %s", derr, t.Inv.Name, err, t.Inv.Name)
	}
	if !u.ours {
		return fmt.Errorf("%w; nothing on %s was upgraded; it stays cordoned as it was before the upgrade", derr, t.Inv.Name)
	}
	if err := setUpgradeCordon(uctx, cs, t.Inv.Name, "", false); err != nil {
		return fmt.Errorf("%w; nothing on %s was upgraded, and uncordoning it failed too (%v): run kubectl uncordon %s", derr, t.Inv.Name, err, t.Inv.Name)
	}
	return fmt.Errorf("%w; %s was uncordoned and still runs its old release: nothing on it was upgraded (fix what keeps the pods, e.g. a PodDisruptionBudget, or raise --drain-timeout, and re-run)", derr, t.Inv.Name)
}
