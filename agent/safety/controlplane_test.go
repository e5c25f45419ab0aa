package safety

import (
	"context"
	"testing"

	"github.com/kubewright/kubewright/agent"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	clocktesting "k8s.io/utils/clock/testing"
)

func healthyEtcd(healthy, total int, local bool) *QuorumGuard {
	return &QuorumGuard{
		Healthy:      func(context.Context) (int, int, error) { return healthy, total, nil },
		LocalHealthy: func(context.Context) (bool, error) { return local, nil },
	}
}

func TestControlPlaneSlotOneMasterAtATime(t *testing.T) {
	cs := fake.NewClientset()
	clk := clocktesting.NewFakeClock(t0)
	m1, m2 := newGate(cs, "master-1", 3, clk), newGate(cs, "master-2", 3, clk)
	m2.Quorum = healthyEtcd(3, 3, true)
	w1, w2 := newGate(cs, "worker-1", 3, clk), newGate(cs, "worker-2", 3, clk)

	release1 := mustAcquire(t, m1, "restart-kube-apiserver", agent.ScopeControlPlane)
	if h := holderOn(t, cs, ControlPlaneLease); h != "master-1" {
		t.Fatalf("control-plane slot held by %q, want master-1", h)
	}
	for _, scope := range []agent.Scope{agent.ScopeControlPlane, agent.ScopeEtcd} {
		be := mustBlock(t, m2, "restart-etcd", scope, "control-plane")
		if want := "1/1 control-plane slot held by master-1 (restart-kube-apiserver)"; be.Reason != want {
			t.Fatalf("reason %q, want %q", be.Reason, want)
		}
	}
	// master-2 gave back the budget slot it took before it was refused:
	// budget 3 still admits two workers.
	leases, err := cs.CoordinationV1().Leases(Namespace).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range leases.Items {
		if holderOf(&l) == "master-2" {
			t.Fatalf("refused master-2 still holds %s", l.Name)
		}
	}
	releaseW1 := mustAcquire(t, w1, "restart-kubelet", agent.ScopeNode)
	releaseW2 := mustAcquire(t, w2, "prune-images", agent.ScopeNode)
	// The budget is what limits node repairs: a fourth repairing node waits.
	be := mustBlock(t, m2, "restart-kubelet", agent.ScopeNode, "budget")
	if want := "3/3 repair slots held by master-1 (restart-kube-apiserver), worker-1 (restart-kubelet), worker-2 (prune-images)"; be.Reason != want {
		t.Fatalf("reason %q, want %q", be.Reason, want)
	}

	release1()
	if h := holderOn(t, cs, ControlPlaneLease); h != "" {
		t.Fatalf("control-plane slot held by %q after master-1 released", h)
	}
	release2 := mustAcquire(t, m2, "restart-etcd", agent.ScopeEtcd)
	if h := holderOn(t, cs, ControlPlaneLease); h != "master-2" {
		t.Fatalf("control-plane slot held by %q, want master-2", h)
	}
	release2()
	releaseW1()
	releaseW2()
}

func TestEtcdRepairNeedsQuorum(t *testing.T) {
	cs := fake.NewClientset()
	clk := clocktesting.NewFakeClock(t0)
	m := newGate(cs, "master-1", 1, clk)
	be := mustBlock(t, m, "restart-etcd", agent.ScopeEtcd, "quorum")
	if be.Reason != "no etcd quorum guard configured on this node" {
		t.Fatalf("reason %q", be.Reason)
	}
	m.Quorum = healthyEtcd(2, 3, true)
	be = mustBlock(t, m, "restart-etcd", agent.ScopeEtcd, "quorum")
	if want := "2/3 etcd members healthy, quorum is 2: restarting the healthy local member would leave 1"; be.Reason != want {
		t.Fatalf("reason %q, want %q", be.Reason, want)
	}
	// The guard runs before any slot is taken: a refused etcd repair
	// leaves nothing behind.
	leases, err := cs.CoordinationV1().Leases(Namespace).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(leases.Items) != 0 {
		t.Fatalf("quorum refusal created %d leases", len(leases.Items))
	}
	// The guard is not asked for other scopes.
	mustAcquire(t, m, "restart-kube-apiserver", agent.ScopeControlPlane)()
}
