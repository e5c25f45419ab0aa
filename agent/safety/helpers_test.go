package safety

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/kubewright/kubewright/agent"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	clocktesting "k8s.io/utils/clock/testing"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const ttl = 2 * time.Minute

func newGate(cs kubernetes.Interface, node string, maxConcurrent int, clk *clocktesting.FakeClock) *Gate {
	return &Gate{
		Client: cs,
		Node:   node,
		Config: agent.Budget{MaxConcurrent: maxConcurrent, LeaseTTL: agent.Duration{Duration: ttl}, OfflineRestartsPerHour: 3},
		Clock:  clk,
	}
}

// heldLease is a slot Lease as another node's agent would have written it.
func heldLease(name, holder, repair string, renewed time.Time) *coordinationv1.Lease {
	l := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: Namespace,
			Labels:      map[string]string{LabelManagedBy: "kubewright-agent"},
			Annotations: map[string]string{AnnotationRepair: repair},
		},
		Spec: coordinationv1.LeaseSpec{
			LeaseDurationSeconds: ptr(int32(ttl / time.Second)),
			AcquireTime:          &metav1.MicroTime{Time: renewed},
			RenewTime:            &metav1.MicroTime{Time: renewed},
		},
	}
	if holder != "" {
		l.Spec.HolderIdentity = &holder
	}
	return l
}

func getLease(t *testing.T, cs kubernetes.Interface, name string) *coordinationv1.Lease {
	t.Helper()
	l, err := cs.CoordinationV1().Leases(Namespace).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get lease %s: %v", name, err)
	}
	return l
}

// holderOn is the holder of a slot, "" when free, "<absent>" when missing.
func holderOn(t *testing.T, cs kubernetes.Interface, name string) string {
	t.Helper()
	l, err := cs.CoordinationV1().Leases(Namespace).Get(context.Background(), name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "<absent>"
	}
	if err != nil {
		t.Fatalf("get lease %s: %v", name, err)
	}
	return holderOf(l)
}

func mustAcquire(t *testing.T, g *Gate, repair string, scope agent.Scope) func() {
	t.Helper()
	release, err := g.Acquire(context.Background(), repair, scope)
	if err != nil {
		t.Fatalf("%s: Acquire(%s, %s): %v", g.Node, repair, scope, err)
	}
	return release
}

func mustBlock(t *testing.T, g *Gate, repair string, scope agent.Scope, rule string) *agent.BlockedError {
	t.Helper()
	release, err := g.Acquire(context.Background(), repair, scope)
	if err == nil {
		release()
		t.Fatalf("%s: Acquire(%s, %s) admitted, want blocked by %s", g.Node, repair, scope, rule)
	}
	var be *agent.BlockedError
	if !errors.As(err, &be) {
		t.Fatalf("%s: Acquire(%s, %s): %v, want a BlockedError", g.Node, repair, scope, err)
	}
	if be.Rule != rule {
		t.Fatalf("%s: Acquire(%s, %s) blocked by %s (%s), want %s", g.Node, repair, scope, be.Rule, be.Reason, rule)
	}
	return be
}

// eventually polls cond in real time: the renewer runs in its own goroutine.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
