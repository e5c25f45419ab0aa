package repairs

import (
	"context"
	"time"

	"github.com/kubewright/kubewright/agent"
)

// RestartUnit restarts one systemd unit and waits for it to be active: the
// first rung for a component that stopped or hung.
type RestartUnit struct {
	Unit string
	// In is the safety scope: node for kubelet and the like,
	// control-plane or etcd for master components.
	In agent.Scope
	// Wait for the unit to become active (default 30 s).
	Wait time.Duration
	Run  Runner
}

func (r RestartUnit) Name() string       { return "restart-" + unitBase(r.Unit) }
func (r RestartUnit) Scope() agent.Scope { return r.In }
func (r RestartUnit) Units() []string    { return []string{r.Unit} }
func (r RestartUnit) Act(ctx context.Context) error {
	return restartAndWait(ctx, r.Run, r.Unit, r.Wait)
}
