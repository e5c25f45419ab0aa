//go:build e2e

package safety

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kubewright/kubewright/agent"
	"github.com/kubewright/kubewright/installer/kube/kubetest"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
)

// realCluster starts etcd and kube-apiserver and waits for kube-system,
// which the apiserver creates itself shortly after it is ready. newClient
// makes one client per simulated node, as each agent has its own (and its
// own client-side rate limit, raised here so the test measures the Leases,
// not client-go's throttle).
func realCluster(t *testing.T) (cs kubernetes.Interface, newClient func() kubernetes.Interface) {
	t.Helper()
	srv := kubetest.Start(t)
	newClient = func() kubernetes.Interface {
		cfg := rest.CopyConfig(srv.Config)
		cfg.QPS, cfg.Burst = 500, 1000
		c, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	cs = newClient()
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := cs.CoreV1().Namespaces().Get(context.Background(), Namespace, metav1.GetOptions{})
		if err == nil {
			return cs, newClient
		}
		if time.Now().After(deadline) {
			t.Fatalf("namespace %s never appeared: %v", Namespace, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// holders counts the slot Leases held right now, as the apiserver sees it.
func holders(t *testing.T, cs kubernetes.Interface) int {
	l, err := cs.CoordinationV1().Leases(Namespace).List(context.Background(), metav1.ListOptions{LabelSelector: LabelManagedBy + "=kubewright-agent"})
	if err != nil {
		t.Errorf("list leases: %v", err)
		return 0
	}
	n := 0
	for _, x := range l.Items {
		if holderOf(&x) != "" && x.Name != ControlPlaneLease {
			n++
		}
	}
	return n
}

// TestBudgetAgainstRealAPIServer runs gates for several nodes at once,
// each repairing 20 times, and checks that no more than the budget (or, for
// control-plane repairs, one master) is ever inside a repair. Only the
// apiserver's resourceVersion checks keep them apart here: each gate is a
// different node with its own client.
func TestBudgetAgainstRealAPIServer(t *testing.T) {
	cs, newClient := realCluster(t)
	for _, tc := range []struct {
		nodes, maxConcurrent int
		scope                agent.Scope
		limit                int
	}{
		{nodes: 2, maxConcurrent: 1, scope: agent.ScopeNode, limit: 1},
		{nodes: 3, maxConcurrent: 2, scope: agent.ScopeNode, limit: 2},
		{nodes: 2, maxConcurrent: 2, scope: agent.ScopeControlPlane, limit: 1},
	} {
		t.Run(fmt.Sprintf("%d nodes budget %d %s", tc.nodes, tc.maxConcurrent, tc.scope), func(t *testing.T) {
			const rounds = 20
			var inside, most, blocked atomic.Int32
			var wg sync.WaitGroup
			for n := range tc.nodes {
				g := &Gate{
					Client: newClient(),
					Node:   fmt.Sprintf("node-%d", n),
					Config: agent.Budget{MaxConcurrent: tc.maxConcurrent, LeaseTTL: agent.Duration{Duration: time.Minute}, OfflineRestartsPerHour: 3},
					Clock:  clock.RealClock{},
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
					defer cancel()
					for r := range rounds {
						release, err := g.Acquire(ctx, fmt.Sprintf("round-%d", r), tc.scope)
						var be *agent.BlockedError
						for errors.As(err, &be) {
							blocked.Add(1)
							time.Sleep(time.Duration(rand.IntN(3)) * time.Millisecond)
							release, err = g.Acquire(ctx, fmt.Sprintf("round-%d", r), tc.scope)
						}
						if err != nil {
							t.Errorf("%s round %d: %v", g.Node, r, err)
							return
						}
						now := inside.Add(1)
						for m := most.Load(); now > m && !most.CompareAndSwap(m, now); m = most.Load() {
						}
						if now > int32(tc.limit) {
							t.Errorf("%d nodes inside a repair at once, limit %d", now, tc.limit)
						}
						if h := holders(t, cs); h > tc.maxConcurrent {
							t.Errorf("%d budget slots held at once, budget %d", h, tc.maxConcurrent)
						}
						time.Sleep(time.Duration(2+rand.IntN(5)) * time.Millisecond)
						inside.Add(-1)
						release()
					}
				}()
			}
			wg.Wait()
			t.Logf("most inside at once %d, blocked attempts %d", most.Load(), blocked.Load())
			if blocked.Load() == 0 {
				t.Errorf("no attempt was ever blocked: the gates did not contend")
			}
			if h := holders(t, cs); h != 0 {
				t.Errorf("%d slots still held after every repair released", h)
			}
		})
	}
}

// TestOneWinnerPerSlotAgainstRealAPIServer lines nodes up on one free slot
// and lets them take it at the same instant: exactly one may win, the
// others must see the apiserver's Conflict (or AlreadyExists) and be
// blocked.
func TestOneWinnerPerSlotAgainstRealAPIServer(t *testing.T) {
	_, newClient := realCluster(t)
	const nodes = 5
	clients := make([]kubernetes.Interface, nodes)
	for n := range clients {
		clients[n] = newClient()
	}
	for round := range 20 {
		start := make(chan struct{})
		var wg sync.WaitGroup
		var won, lost atomic.Int32
		holds := make([]*Hold, nodes)
		for n := range nodes {
			s := NewControlPlaneSlot(clients[n], fmt.Sprintf("master-%d", n), time.Minute, clock.RealClock{})
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				h, err := s.Acquire(context.Background(), "race")
				var be *agent.BlockedError
				switch {
				case err == nil:
					won.Add(1)
					holds[n] = h
				case errors.As(err, &be):
					lost.Add(1)
				default:
					t.Errorf("round %d master-%d: %v", round, n, err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if won.Load() != 1 || lost.Load() != nodes-1 {
			t.Fatalf("round %d: %d won, %d blocked; want exactly one winner", round, won.Load(), lost.Load())
		}
		for _, h := range holds {
			if h != nil {
				if err := h.Release(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}
