package safety

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kubewright/kubewright/agent"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	coordclient "k8s.io/client-go/kubernetes/typed/coordination/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/clock"
)

const (
	// Namespace holds the agents' Leases: every node's agent can reach it,
	// and its Leases are where operators already look for coordination.
	Namespace = "kube-system"
	// LabelManagedBy marks the Leases as the agent's, so an operator can
	// list (or, in an emergency, delete) them with one selector.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	managedByValue = "kubewright-agent"
	// AnnotationRepair records what the holder is doing, so a blocked node
	// (and a person with kubectl) can say who waits on what.
	AnnotationRepair = "kubewright.io/repair"
)

// ErrSlotLost is returned by Renew when the Lease is no longer ours: it
// expired while we could not renew it and another node took it.
var ErrSlotLost = errors.New("repair slot lost to another holder")

// LeaseSlots is a set of interchangeable Leases of which a holder takes any
// one: the repair budget is N of them, the control-plane slot is one. Taking
// a slot is an Update carrying the resourceVersion that was read (or a
// Create for an absent slot), so the apiserver, not this code, decides which
// of two racing nodes wins; the loser sees a Conflict and tries the next
// slot.
//
// Expiry is judged by this node's clock against the holder's renewTime, so
// the clocks of the nodes must agree to well within TTL (the agent's clock
// check reports offsets long before they matter here).
type LeaseSlots struct {
	// Leases is the Lease client of Namespace.
	Leases coordclient.LeaseInterface
	// Names of the slots, tried in order.
	Names []string
	// Holder is this node's name, written as holderIdentity.
	Holder string
	// TTL is how long a slot stays ours without renewal: a holder that dies
	// frees its slot after TTL.
	TTL   time.Duration
	Clock clock.PassiveClock
	// Rule and Noun word the BlockedError when every slot is held:
	// "budget" / "repair slots".
	Rule string
	Noun string
}

// Hold is one slot taken by LeaseSlots.Acquire.
type Hold struct {
	// Lease is the name of the slot held.
	Lease  string
	Repair string
	slots  *LeaseSlots
}

type candidate struct {
	name  string
	lease *coordinationv1.Lease // nil: absent, to be created
}

// Acquire takes a slot for repair: one already held by this node (a
// previous run of the agent that died mid-repair must not block its
// successor), else a free or expired one, else an absent one, which it
// creates. When every slot is held by a live holder it returns a
// *agent.BlockedError naming them; any other error is the API's, wrapped.
func (s *LeaseSlots) Acquire(ctx context.Context, repair string) (*Hold, error) {
	now := s.Clock.Now()
	var own, free []candidate
	var held []string
	for _, name := range s.Names {
		l, err := s.Leases.Get(ctx, name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			free = append(free, candidate{name: name})
		case err != nil:
			return nil, fmt.Errorf("read lease %s/%s: %w", Namespace, name, err)
		case holderOf(l) == s.Holder:
			own = append(own, candidate{name, l})
		case holderOf(l) == "" || s.expired(l, now):
			free = append(free, candidate{name, l})
		default:
			held = append(held, describe(l))
		}
	}
	for _, c := range append(own, free...) {
		err := s.take(ctx, c, repair, now)
		if err == nil {
			return &Hold{Lease: c.name, Repair: repair, slots: s}, nil
		}
		if !apierrors.IsConflict(err) && !apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("take lease %s/%s: %w", Namespace, c.name, err)
		}
		// Another node won this slot between our read and our write.
		// Say who, if we can see it, and try the next one.
		if l, gerr := s.Leases.Get(ctx, c.name, metav1.GetOptions{}); gerr == nil && holderOf(l) != "" {
			held = append(held, describe(l))
		} else {
			held = append(held, c.name+" (contended)")
		}
	}
	return nil, &agent.BlockedError{
		Rule:   s.Rule,
		Reason: fmt.Sprintf("%d/%d %s held by %s", len(held), len(s.Names), s.Noun, strings.Join(held, ", ")),
	}
}

func (s *LeaseSlots) take(ctx context.Context, c candidate, repair string, now time.Time) error {
	l := c.lease
	if l == nil {
		l = &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: c.name, Namespace: Namespace}}
	} else {
		l = l.DeepCopy()
	}
	if l.Labels == nil {
		l.Labels = map[string]string{}
	}
	l.Labels[LabelManagedBy] = managedByValue
	if l.Annotations == nil {
		l.Annotations = map[string]string{}
	}
	l.Annotations[AnnotationRepair] = repair
	if c.lease != nil && holderOf(c.lease) != s.Holder {
		n := int32(1)
		if l.Spec.LeaseTransitions != nil {
			n = *l.Spec.LeaseTransitions + 1
		}
		l.Spec.LeaseTransitions = &n
	}
	holder := s.Holder
	l.Spec.HolderIdentity = &holder
	l.Spec.LeaseDurationSeconds = ptr(s.ttlSeconds())
	l.Spec.AcquireTime = &metav1.MicroTime{Time: now}
	l.Spec.RenewTime = &metav1.MicroTime{Time: now}
	var err error
	if c.lease == nil {
		_, err = s.Leases.Create(ctx, l, metav1.CreateOptions{})
	} else {
		// l carries the resourceVersion we read: a write by anyone since
		// makes this a Conflict.
		_, err = s.Leases.Update(ctx, l, metav1.UpdateOptions{})
	}
	return err
}

// Renew moves the slot's renewTime to now, so a repair longer than TTL
// keeps its slot. It returns ErrSlotLost (wrapped) if another node holds the
// slot now.
func (h *Hold) Renew(ctx context.Context) error {
	s := h.slots
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		l, err := s.Leases.Get(ctx, h.Lease, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("lease %s/%s was deleted: %w", Namespace, h.Lease, ErrSlotLost)
		}
		if err != nil {
			return err
		}
		if holderOf(l) != s.Holder {
			return fmt.Errorf("lease %s/%s is held by %q: %w", Namespace, h.Lease, holderOf(l), ErrSlotLost)
		}
		l.Spec.RenewTime = &metav1.MicroTime{Time: s.Clock.Now()}
		l.Spec.LeaseDurationSeconds = ptr(s.ttlSeconds())
		_, err = s.Leases.Update(ctx, l, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("renew lease %s/%s: %w", Namespace, h.Lease, err)
	}
	return nil
}

// Release frees the slot if it is still ours. A slot that expired and was
// taken by another node is left alone: clearing it would free someone
// else's repair.
func (h *Hold) Release(ctx context.Context) error {
	s := h.slots
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		l, err := s.Leases.Get(ctx, h.Lease, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		if holderOf(l) != s.Holder {
			return nil
		}
		l.Spec.HolderIdentity = nil
		delete(l.Annotations, AnnotationRepair)
		_, err = s.Leases.Update(ctx, l, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("release lease %s/%s: %w", Namespace, h.Lease, err)
	}
	return nil
}

// expired: the holder has not renewed within its own lease duration (or
// ours, if it wrote none).
func (s *LeaseSlots) expired(l *coordinationv1.Lease, now time.Time) bool {
	last := l.Spec.RenewTime
	if last == nil {
		last = l.Spec.AcquireTime
	}
	if last == nil {
		return true
	}
	d := s.TTL
	if l.Spec.LeaseDurationSeconds != nil {
		d = time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second
	}
	return now.After(last.Add(d))
}

// ttlSeconds rounds TTL up: a lease must never be shorter than promised.
func (s *LeaseSlots) ttlSeconds() int32 {
	sec := int32((s.TTL + time.Second - 1) / time.Second)
	return max(sec, 1)
}

func holderOf(l *coordinationv1.Lease) string {
	if l == nil || l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

// describe is "node-a (restart-kubelet)": who holds a slot, doing what.
func describe(l *coordinationv1.Lease) string {
	if r := l.Annotations[AnnotationRepair]; r != "" {
		return holderOf(l) + " (" + r + ")"
	}
	return holderOf(l)
}

func ptr[T any](v T) *T { return &v }
