package repairs

import (
	"context"
	"fmt"
	"time"

	"github.com/kubewright/kubewright/agent"
)

// RestartRuntime restarts containerd and then the kubelet: the rung after
// a plain kubelet or containerd restart did not help. The kubelet keeps its
// CRI connection and its view of the runtime's state from before, so after
// containerd restarts it must restart too, and only once containerd is
// active, or it would connect to nothing and fail again.
type RestartRuntime struct {
	Run Runner
	// Wait and Poll apply to each unit (see RestartUnit).
	Wait time.Duration
	Poll time.Duration
}

const (
	unitContainerd = "containerd.service"
	unitKubelet    = "kubelet.service"
)

func (RestartRuntime) Name() string       { return "restart-containerd-kubelet" }
func (RestartRuntime) Scope() agent.Scope { return agent.ScopeNode }
func (RestartRuntime) Units() []string    { return []string{unitContainerd, unitKubelet} }

func (r RestartRuntime) Act(ctx context.Context) error {
	containerd := RestartUnit{Unit: unitContainerd, Run: r.Run, Wait: r.Wait, Poll: r.Poll}
	if err := containerd.Act(ctx); err != nil {
		return fmt.Errorf("kubelet not restarted: %w", err)
	}
	kubelet := RestartUnit{Unit: unitKubelet, Run: r.Run, Wait: r.Wait, Poll: r.Poll}
	if err := kubelet.Act(ctx); err != nil {
		return fmt.Errorf("containerd restarted, but: %w", err)
	}
	return nil
}
