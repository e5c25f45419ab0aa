package repairs

import (
	"context"
	"fmt"

	"github.com/kubewright/kubewright/agent"
)

// PruneImages removes images no container uses, the one safe way to free
// space on the containerd filesystem (logs and volumes belong to workloads).
type PruneImages struct {
	Crictl string // default "crictl"
	Run    Runner
}

func (PruneImages) Name() string       { return "prune-images" }
func (PruneImages) Scope() agent.Scope { return agent.ScopeNode }

func (p PruneImages) Act(ctx context.Context) error {
	crictl := p.Crictl
	if crictl == "" {
		crictl = "crictl"
	}
	if _, err := p.Run.run(ctx, crictl, "rmi", "--prune"); err != nil {
		return fmt.Errorf("prune unused images: %w", err)
	}
	return nil
}
