package repairs

import (
	"context"
	"fmt"

	"github.com/kubewright/kubewright/agent"
)

// PruneImages removes every image no container uses, the safe first answer
// to a full containerd or kubelet disk: an image pruned by mistake is pulled
// again (or, offline, re-imported from the bundle), never lost.
type PruneImages struct {
	// Crictl is the crictl binary ("crictl" on PATH by default).
	Crictl string
	// Endpoint is the CRI socket, e.g. unix:///run/containerd/containerd.sock;
	// empty leaves it to /etc/crictl.yaml.
	Endpoint string
	Run      Runner
}

func (PruneImages) Name() string       { return "prune-images" }
func (PruneImages) Scope() agent.Scope { return agent.ScopeNode }

func (p PruneImages) Act(ctx context.Context) error {
	crictl := p.Crictl
	if crictl == "" {
		crictl = "crictl"
	}
	var args []string
	if p.Endpoint != "" {
		args = append(args, "--runtime-endpoint", p.Endpoint)
	}
	args = append(args, "rmi", "--prune")
	out, err := p.Run.orDefault()(ctx, crictl, args...)
	if err != nil {
		if o := lastLines(out, 5); o != "" {
			return fmt.Errorf("prune unused images: %w\n%s", err, o)
		}
		return fmt.Errorf("prune unused images: %w", err)
	}
	return nil
}
