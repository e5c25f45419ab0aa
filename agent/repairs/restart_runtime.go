package repairs

import (
	"context"
	"time"

	"github.com/kubewright/kubewright/agent"
)

// RestartRuntime restarts containerd and then the kubelet: the rung after a
// plain restart did not help. The kubelet is restarted too because it keeps
// a CRI connection that can stay broken after containerd comes back.
type RestartRuntime struct {
	Wait time.Duration
	Run  Runner
}

func (RestartRuntime) Name() string       { return "restart-containerd-kubelet" }
func (RestartRuntime) Scope() agent.Scope { return agent.ScopeNode }
func (RestartRuntime) Units() []string    { return []string{"containerd.service", "kubelet.service"} }

func (r RestartRuntime) Act(ctx context.Context) error {
	if err := restartAndWait(ctx, r.Run, "containerd.service", r.Wait); err != nil {
		return err
	}
	return restartAndWait(ctx, r.Run, "kubelet.service", r.Wait)
}
