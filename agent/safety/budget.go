package safety

import (
	"fmt"
	"time"

	"github.com/kubewright/kubewright/agent"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/clock"
)

// BudgetLeasePrefix names the budget's slots: kubewright-repair-0 … -{N-1}.
const BudgetLeasePrefix = "kubewright-repair-"

// NewBudget is the cluster-wide repair budget: b.MaxConcurrent slot Leases,
// one per node repairing at once. Every agent must be configured with the
// same MaxConcurrent; a node with a larger one would see slots the others
// do not and could exceed the budget. A zero MaxConcurrent (a Budget that
// was not defaulted) means 1, as agent.Config's default does.
func NewBudget(client kubernetes.Interface, node string, b agent.Budget, clk clock.PassiveClock) *LeaseSlots {
	names := make([]string, max(b.MaxConcurrent, 1))
	for i := range names {
		names[i] = fmt.Sprintf("%s%d", BudgetLeasePrefix, i)
	}
	return &LeaseSlots{
		Leases: client.CoordinationV1().Leases(Namespace),
		Names:  names,
		Holder: node,
		TTL:    ttlOrDefault(b.LeaseTTL.Duration),
		Clock:  clk,
		Rule:   "budget",
		Noun:   "repair slots",
	}
}

// DefaultLeaseTTL is agent.Config's default LeaseTTL, for a Budget that was
// not defaulted: a zero TTL would make every slot look expired.
const DefaultLeaseTTL = 2 * time.Minute

func ttlOrDefault(d time.Duration) time.Duration {
	if d <= 0 {
		return DefaultLeaseTTL
	}
	return d
}
