package safety

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/kubewright/kubewright/agent"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/clock"
)

// releaseTimeout bounds giving a slot back: release has no caller context,
// and a slot we fail to clear frees itself after the TTL anyway.
const releaseTimeout = 10 * time.Second

// Gate is the agent.Gate of a real cluster. A repair passes, in order: the
// etcd quorum guard (etcd scope), a budget slot, and the control-plane slot
// (control-plane and etcd scopes). Whatever was taken before a refusal is
// given back. When the API cannot be reached at all, node-scope repairs fall
// back to the offline rate limit and the others wait.
//
// Concurrent repairs on one node share the node's slots: the budget counts
// nodes repairing, not repairs. Slots are renewed every LeaseTTL/3 while
// held, so a repair may run longer than the TTL; a dead agent stops renewing
// and its slots free themselves.
//
// Set the exported fields, then use the Gate by pointer; it is safe for
// concurrent use.
type Gate struct {
	Client kubernetes.Interface
	// Node is this node's name: the holderIdentity of its slots.
	Node   string
	Config agent.Budget
	Clock  clock.Clock
	// Quorum guards etcd-scope repairs; nil on nodes without etcd, where
	// an etcd repair is refused.
	Quorum *QuorumGuard
	Logger *slog.Logger

	init    sync.Once
	budget  *LeaseSlots
	cp      *LeaseSlots
	offline *OfflineLimiter
	log     *slog.Logger

	// mu serialises this node's takes and gives, so two repairs starting at
	// once share one slot instead of taking two.
	mu   sync.Mutex
	held map[*LeaseSlots]*heldSlot
}

// heldSlot is a slot this process holds, with the repairs using it.
type heldSlot struct {
	hold *Hold
	refs int
	stop chan struct{}
	done chan struct{}
}

func (g *Gate) setup() {
	g.init.Do(func() {
		g.log = g.Logger
		if g.log == nil {
			g.log = slog.New(slog.DiscardHandler)
		}
		g.budget = NewBudget(g.Client, g.Node, g.Config, g.Clock)
		g.cp = NewControlPlaneSlot(g.Client, g.Node, g.Config.LeaseTTL.Duration, g.Clock)
		g.offline = &OfflineLimiter{PerHour: g.Config.OfflineRestartsPerHour, Clock: g.Clock}
		g.held = map[*LeaseSlots]*heldSlot{}
	})
}

// Acquire implements agent.Gate. The release func gives back every slot
// taken for this repair; calling it more than once is harmless.
func (g *Gate) Acquire(ctx context.Context, repair string, scope agent.Scope) (func(), error) {
	g.setup()
	switch scope {
	case agent.ScopeNode, agent.ScopeControlPlane:
	case agent.ScopeEtcd:
		if err := g.Quorum.Check(ctx); err != nil {
			var be *agent.BlockedError
			if errors.As(err, &be) {
				return nil, err
			}
			return nil, fmt.Errorf("etcd quorum guard for %s: %w", repair, err)
		}
	default:
		return nil, fmt.Errorf("repair %s has unknown scope %q", repair, scope)
	}

	if err := g.take(ctx, g.budget, repair); err != nil {
		if ctx.Err() == nil && Unreachable(err) {
			if scope != agent.ScopeNode {
				return nil, &agent.BlockedError{Rule: "api-unreachable", Reason: fmt.Sprintf(
					"%s is a %s repair and needs the cluster's slots, but the API is unreachable: %v", repair, scope, err)}
			}
			if err := g.offline.Allow(err); err != nil {
				return nil, err
			}
			g.log.Warn("API unreachable; repair admitted by the offline rate limit", "repair", repair, "perHour", g.Config.OfflineRestartsPerHour, "err", err)
			return func() {}, nil
		}
		return nil, err
	}
	taken := []*LeaseSlots{g.budget}
	if scope == agent.ScopeControlPlane || scope == agent.ScopeEtcd {
		if err := g.take(ctx, g.cp, repair); err != nil {
			g.give(g.budget)
			if ctx.Err() == nil && Unreachable(err) {
				return nil, &agent.BlockedError{Rule: "api-unreachable", Reason: fmt.Sprintf(
					"%s needs the control-plane slot, but the API is unreachable: %v", repair, err)}
			}
			return nil, err
		}
		taken = append(taken, g.cp)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			for i := len(taken) - 1; i >= 0; i-- {
				g.give(taken[i])
			}
		})
	}, nil
}

// take gets a slot of s for repair, or shares the one this process holds.
func (g *Gate) take(ctx context.Context, s *LeaseSlots, repair string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if h := g.held[s]; h != nil {
		h.refs++
		g.log.Info("repair shares this node's slot", "repair", repair, "lease", h.hold.Lease, "holder", h.hold.Repair)
		return nil
	}
	hold, err := s.Acquire(ctx, repair)
	if err != nil {
		return err
	}
	h := &heldSlot{hold: hold, refs: 1, stop: make(chan struct{}), done: make(chan struct{})}
	g.held[s] = h
	// The timer is made here, not in the goroutine, so a fake clock stepped
	// right after Acquire returns already finds it.
	interval := s.TTL / 3
	timer := g.Clock.NewTimer(interval)
	go g.renew(h, timer, interval)
	g.log.Info("repair slot taken", "repair", repair, "lease", hold.Lease)
	return nil
}

// renew keeps a held slot alive until stopped. A failure is logged and
// retried at the next tick: the repair is already running and cannot be
// called back, and a slot lost for good is reported loudly.
func (g *Gate) renew(h *heldSlot, timer clock.Timer, interval time.Duration) {
	defer close(h.done)
	defer timer.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-timer.C():
		}
		ctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
		err := h.hold.Renew(ctx)
		cancel()
		switch {
		case errors.Is(err, ErrSlotLost):
			g.log.Error("repair slot lost while the repair runs: the budget may be exceeded", "lease", h.hold.Lease, "repair", h.hold.Repair, "err", err)
		case err != nil:
			g.log.Warn("renew repair slot", "lease", h.hold.Lease, "repair", h.hold.Repair, "err", err)
		}
		timer.Reset(interval)
	}
}

// give drops one use of s's slot and releases it when it was the last.
func (g *Gate) give(s *LeaseSlots) {
	g.mu.Lock()
	defer g.mu.Unlock()
	h := g.held[s]
	if h == nil {
		return
	}
	if h.refs--; h.refs > 0 {
		return
	}
	delete(g.held, s)
	close(h.stop)
	<-h.done
	ctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
	defer cancel()
	if err := h.hold.Release(ctx); err != nil {
		g.log.Warn("release repair slot; it frees itself after the lease TTL", "lease", h.hold.Lease, "ttl", s.TTL, "err", err)
		return
	}
	g.log.Info("repair slot released", "lease", h.hold.Lease, "repair", h.hold.Repair)
}

var _ agent.Gate = (*Gate)(nil)
