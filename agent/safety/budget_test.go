package safety

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/kubewright/kubewright/agent"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	clocktesting "k8s.io/utils/clock/testing"
)

func TestBudgetSecondNodeWaitsForFirst(t *testing.T) {
	cs := fake.NewClientset()
	clk := clocktesting.NewFakeClock(t0)
	a, b := newGate(cs, "node-a", 1, clk), newGate(cs, "node-b", 1, clk)

	releaseA := mustAcquire(t, a, "restart-kubelet", agent.ScopeNode)
	l := getLease(t, cs, "kubewright-repair-0")
	if holderOf(l) != "node-a" || l.Annotations[AnnotationRepair] != "restart-kubelet" || l.Labels[LabelManagedBy] != "kubewright-agent" {
		t.Fatalf("slot after node-a took it: holder %q, annotations %v, labels %v", holderOf(l), l.Annotations, l.Labels)
	}
	if *l.Spec.LeaseDurationSeconds != 120 || !l.Spec.RenewTime.Time.Equal(t0) || !l.Spec.AcquireTime.Time.Equal(t0) {
		t.Fatalf("slot times: duration %d, acquire %v, renew %v; want 120s at %v", *l.Spec.LeaseDurationSeconds, l.Spec.AcquireTime, l.Spec.RenewTime, t0)
	}

	be := mustBlock(t, b, "restart-containerd-kubelet", agent.ScopeNode, "budget")
	if want := "1/1 repair slots held by node-a (restart-kubelet)"; be.Reason != want {
		t.Fatalf("reason %q, want %q", be.Reason, want)
	}

	releaseA()
	if h := holderOn(t, cs, "kubewright-repair-0"); h != "" {
		t.Fatalf("slot after release held by %q, want free", h)
	}
	releaseB := mustAcquire(t, b, "restart-containerd-kubelet", agent.ScopeNode)
	// A second call of node-a's release must not free node-b's slot.
	releaseA()
	if h := holderOn(t, cs, "kubewright-repair-0"); h != "node-b" {
		t.Fatalf("slot held by %q after node-a released twice, want node-b", h)
	}
	releaseB()
}

func TestBudgetNamesEveryHolder(t *testing.T) {
	cs := fake.NewClientset()
	clk := clocktesting.NewFakeClock(t0)
	a, b, c := newGate(cs, "node-a", 2, clk), newGate(cs, "node-b", 2, clk), newGate(cs, "node-c", 2, clk)
	defer mustAcquire(t, a, "restart-kubelet", agent.ScopeNode)()
	defer mustAcquire(t, b, "prune-images", agent.ScopeNode)()
	be := mustBlock(t, c, "restart-kubelet", agent.ScopeNode, "budget")
	if want := "2/2 repair slots held by node-a (restart-kubelet), node-b (prune-images)"; be.Reason != want {
		t.Fatalf("reason %q, want %q", be.Reason, want)
	}
}

func TestDeadHolderSlotFreedAfterTTL(t *testing.T) {
	// node-dead took the slot and stopped renewing (its agent died).
	cs := fake.NewClientset(heldLease("kubewright-repair-0", "node-dead", "restart-kubelet", t0))
	clk := clocktesting.NewFakeClock(t0)
	b := newGate(cs, "node-b", 1, clk)

	mustBlock(t, b, "restart-kubelet", agent.ScopeNode, "budget")
	clk.Step(ttl - time.Second)
	mustBlock(t, b, "restart-kubelet", agent.ScopeNode, "budget")
	clk.Step(2 * time.Second)
	release := mustAcquire(t, b, "restart-kubelet", agent.ScopeNode)
	defer release()
	l := getLease(t, cs, "kubewright-repair-0")
	if holderOf(l) != "node-b" || !l.Spec.AcquireTime.Time.Equal(t0.Add(ttl+time.Second)) {
		t.Fatalf("slot holder %q acquired %v, want node-b at %v", holderOf(l), l.Spec.AcquireTime, t0.Add(ttl+time.Second))
	}
	if l.Spec.LeaseTransitions == nil || *l.Spec.LeaseTransitions != 1 {
		t.Fatalf("leaseTransitions %v, want 1", l.Spec.LeaseTransitions)
	}
}

func TestHolderReacquiresOwnSlot(t *testing.T) {
	// A previous run of node-a's agent died holding slot 1; slot 0 is free.
	// The new run must take slot 1 back, not a second slot.
	cs := fake.NewClientset(
		heldLease("kubewright-repair-0", "", "", t0),
		heldLease("kubewright-repair-1", "node-a", "restart-kubelet", t0),
	)
	clk := clocktesting.NewFakeClock(t0.Add(30 * time.Second))
	a := newGate(cs, "node-a", 2, clk)
	release := mustAcquire(t, a, "restart-containerd-kubelet", agent.ScopeNode)
	if h0, h1 := holderOn(t, cs, "kubewright-repair-0"), holderOn(t, cs, "kubewright-repair-1"); h0 != "" || h1 != "node-a" {
		t.Fatalf("slots held by %q, %q; want free, node-a", h0, h1)
	}
	if r := getLease(t, cs, "kubewright-repair-1").Annotations[AnnotationRepair]; r != "restart-containerd-kubelet" {
		t.Fatalf("slot records repair %q, want the new one", r)
	}
	release()

	// With a budget of one, a node is never blocked by its own ghost.
	cs = fake.NewClientset(heldLease("kubewright-repair-0", "node-a", "restart-kubelet", t0))
	a = newGate(cs, "node-a", 1, clk)
	mustAcquire(t, a, "restart-kubelet", agent.ScopeNode)()
}

func TestRepairsOnOneNodeShareItsSlot(t *testing.T) {
	cs := fake.NewClientset()
	clk := clocktesting.NewFakeClock(t0)
	a, b := newGate(cs, "node-a", 2, clk), newGate(cs, "node-b", 2, clk)
	r1 := mustAcquire(t, a, "restart-kubelet", agent.ScopeNode)
	r2 := mustAcquire(t, a, "prune-images", agent.ScopeNode)
	if h := holderOn(t, cs, "kubewright-repair-1"); h != "<absent>" {
		t.Fatalf("second repair on node-a took slot 1 (%q): the budget counts nodes", h)
	}
	defer mustAcquire(t, b, "restart-kubelet", agent.ScopeNode)()
	r1()
	if h := holderOn(t, cs, "kubewright-repair-0"); h != "node-a" {
		t.Fatalf("slot freed (%q) while prune-images still runs", h)
	}
	r2()
	if h := holderOn(t, cs, "kubewright-repair-0"); h != "" {
		t.Fatalf("slot held by %q after both repairs released", h)
	}
}

// conflictOnce makes the first write to slot name lose a race to winner:
// the winner's Lease is stored, and our write answers Conflict (Update) or
// AlreadyExists (Create), as a real apiserver would.
func conflictOnce(cs *fake.Clientset, verb, name, winner string) {
	done := false
	cs.PrependReactor(verb, "leases", func(action k8stesting.Action) (bool, runtime.Object, error) {
		var obj runtime.Object
		switch a := action.(type) {
		case k8stesting.UpdateAction:
			obj = a.GetObject()
		case k8stesting.CreateAction:
			obj = a.GetObject()
		}
		l := obj.(*coordinationv1.Lease)
		if done || l.Name != name {
			return false, nil, nil
		}
		done = true
		won := heldLease(name, winner, "restart-kubelet", t0)
		gvr := coordinationv1.SchemeGroupVersion.WithResource("leases")
		if verb == "create" {
			_ = cs.Tracker().Create(gvr, won, Namespace)
			return true, nil, apierrors.NewAlreadyExists(gvr.GroupResource(), name)
		}
		_ = cs.Tracker().Update(gvr, won, Namespace)
		return true, nil, apierrors.NewConflict(gvr.GroupResource(), name, nil)
	})
}

func TestConflictMovesToNextSlot(t *testing.T) {
	for _, verb := range []string{"update", "create"} {
		t.Run(verb, func(t *testing.T) {
			var cs *fake.Clientset
			if verb == "update" {
				cs = fake.NewClientset(heldLease("kubewright-repair-0", "", "", t0), heldLease("kubewright-repair-1", "", "", t0))
			} else {
				cs = fake.NewClientset()
			}
			conflictOnce(cs, verb, "kubewright-repair-0", "node-x")
			clk := clocktesting.NewFakeClock(t0)
			release := mustAcquire(t, newGate(cs, "node-a", 2, clk), "restart-kubelet", agent.ScopeNode)
			defer release()
			if h0, h1 := holderOn(t, cs, "kubewright-repair-0"), holderOn(t, cs, "kubewright-repair-1"); h0 != "node-x" || h1 != "node-a" {
				t.Fatalf("slots held by %q, %q; want node-x (won the race), node-a", h0, h1)
			}
		})
	}
	t.Run("last slot", func(t *testing.T) {
		cs := fake.NewClientset(heldLease("kubewright-repair-0", "", "", t0))
		conflictOnce(cs, "update", "kubewright-repair-0", "node-x")
		be := mustBlock(t, newGate(cs, "node-a", 1, clocktesting.NewFakeClock(t0)), "restart-kubelet", agent.ScopeNode, "budget")
		if want := "1/1 repair slots held by node-x (restart-kubelet)"; be.Reason != want {
			t.Fatalf("reason %q, want %q", be.Reason, want)
		}
	})
}

func TestRenewKeepsSlotPastTTL(t *testing.T) {
	cs := fake.NewClientset()
	clk := clocktesting.NewFakeClock(t0)
	a, b := newGate(cs, "node-a", 1, clk), newGate(cs, "node-b", 1, clk)
	release := mustAcquire(t, a, "renew-certificates", agent.ScopeNode)

	clk.Step(ttl/3 + time.Second)
	want := t0.Add(ttl/3 + time.Second)
	eventually(t, "node-a's renewal", func() bool {
		return getLease(t, cs, "kubewright-repair-0").Spec.RenewTime.Time.Equal(want)
	})
	// Past the first TTL, but not the renewed one: node-a still holds it.
	clk.Step(ttl - ttl/3)
	mustBlock(t, b, "restart-kubelet", agent.ScopeNode, "budget")
	release()
	mustAcquire(t, b, "restart-kubelet", agent.ScopeNode)()
}

func TestRenewAfterLossReportsLost(t *testing.T) {
	cs := fake.NewClientset()
	clk := clocktesting.NewFakeClock(t0)
	s := NewBudget(cs, "node-a", agent.Budget{MaxConcurrent: 1, LeaseTTL: agent.Duration{Duration: ttl}}, clk)
	h, err := s.Acquire(context.Background(), "restart-kubelet")
	if err != nil {
		t.Fatal(err)
	}
	// node-a's renewals failed for longer than the TTL; node-b took over.
	clk.Step(ttl + time.Second)
	if _, err := NewBudget(cs, "node-b", agent.Budget{MaxConcurrent: 1, LeaseTTL: agent.Duration{Duration: ttl}}, clk).Acquire(context.Background(), "prune-images"); err != nil {
		t.Fatal(err)
	}
	if err := h.Renew(context.Background()); !errors.Is(err, ErrSlotLost) {
		t.Fatalf("Renew after takeover: %v, want ErrSlotLost", err)
	}
	if err := h.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	if h := holderOn(t, cs, "kubewright-repair-0"); h != "node-b" {
		t.Fatalf("node-a's late release freed node-b's slot (holder %q)", h)
	}
}

func TestAPIRefusalIsNotOffline(t *testing.T) {
	cs := fake.NewClientset()
	cs.PrependReactor("*", "leases", func(action k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(coordinationv1.Resource("leases"), "kubewright-repair-0", nil)
	})
	g := newGate(cs, "node-a", 1, clocktesting.NewFakeClock(t0))
	for i := 0; i < 5; i++ {
		_, err := g.Acquire(context.Background(), "restart-kubelet", agent.ScopeNode)
		if err == nil || !apierrors.IsForbidden(err) {
			t.Fatalf("Acquire with Forbidden leases: %v, want the Forbidden error (no offline fallback)", err)
		}
	}
}
