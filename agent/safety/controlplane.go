package safety

import (
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/clock"
)

// ControlPlaneLease is the single slot that control-plane and etcd repairs
// hold besides a budget slot. Masters are few and each one's apiserver,
// keepalived and etcd member is part of what keeps the cluster up, so two
// masters must never repair those at once, whatever the budget allows.
const ControlPlaneLease = "kubewright-repair-control-plane"

// NewControlPlaneSlot is the one-slot LeaseSlots for ControlPlaneLease.
func NewControlPlaneSlot(client kubernetes.Interface, node string, ttl time.Duration, clk clock.PassiveClock) *LeaseSlots {
	return &LeaseSlots{
		Leases: client.CoordinationV1().Leases(Namespace),
		Names:  []string{ControlPlaneLease},
		Holder: node,
		TTL:    ttlOrDefault(ttl),
		Clock:  clk,
		Rule:   "control-plane",
		Noun:   "control-plane slot",
	}
}
