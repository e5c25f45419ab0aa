package safety

import (
	"context"
	"fmt"

	"github.com/kubewright/kubewright/agent"
)

// QuorumGuard admits an etcd repair only when etcd keeps quorum through it.
// Restarting a healthy member takes it out for a while, so the others must
// make quorum alone; restarting a member that is already down takes nothing
// away, so only the current quorum matters. Both answers come from injected
// funcs so the guard is independent of how etcd is asked.
type QuorumGuard struct {
	// Healthy counts the cluster's healthy members and all its members.
	Healthy func(ctx context.Context) (healthy, total int, err error)
	// LocalHealthy tells whether this node's member is one of the healthy.
	LocalHealthy func(ctx context.Context) (bool, error)
}

// Check returns nil when an etcd repair on this node is safe, a
// *agent.BlockedError with rule "quorum" when it is not, and any other error
// when it cannot tell (then the repair also waits).
func (q *QuorumGuard) Check(ctx context.Context) error {
	if q == nil || q.Healthy == nil || q.LocalHealthy == nil {
		return &agent.BlockedError{Rule: "quorum", Reason: "no etcd quorum guard configured on this node"}
	}
	healthy, total, err := q.Healthy(ctx)
	if err != nil {
		return fmt.Errorf("count healthy etcd members: %w", err)
	}
	if total < 1 || healthy < 0 || healthy > total {
		return fmt.Errorf("etcd member counts make no sense: %d healthy of %d", healthy, total)
	}
	local, err := q.LocalHealthy(ctx)
	if err != nil {
		return fmt.Errorf("ask the local etcd member's health: %w", err)
	}
	return quorumAllows(healthy, total, local)
}

// quorumAllows is the guard's rule on its own, apart from asking etcd.
func quorumAllows(healthy, total int, localHealthy bool) error {
	quorum := total/2 + 1
	if localHealthy {
		if healthy-1 >= quorum {
			return nil
		}
		return &agent.BlockedError{Rule: "quorum", Reason: fmt.Sprintf(
			"%d/%d etcd members healthy, quorum is %d: restarting the healthy local member would leave %d",
			healthy, total, quorum, healthy-1)}
	}
	if healthy >= quorum {
		return nil
	}
	return &agent.BlockedError{Rule: "quorum", Reason: fmt.Sprintf(
		"%d/%d etcd members healthy, quorum is %d: quorum is already lost, which needs a person (kubewright etcd restore), not a restart",
		healthy, total, quorum)}
}
