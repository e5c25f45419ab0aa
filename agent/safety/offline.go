package safety

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"github.com/kubewright/kubewright/agent"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/utils/clock"
)

// OfflineLimiter caps node-scope repairs while the API is unreachable. With
// no Lease to take there is no budget, and the failure cutting this node off
// may be cutting off many: each may still restart its own kubelet or
// containerd a few times (often that is what brings it back), but a loop of
// restarts on every node at once is what the budget exists to prevent.
//
// The window is a sliding hour on the injected clock. The count lives in
// memory: an agent that restarts starts afresh, which is bounded by systemd's
// own restart limits on the agent.
type OfflineLimiter struct {
	PerHour int
	Clock   clock.PassiveClock

	mu       sync.Mutex
	admitted []time.Time
}

// Allow records one offline repair and returns nil, or returns a
// *agent.BlockedError with rule "offline-rate" when PerHour repairs were
// already admitted within the last hour. cause is why the API could not be
// reached; the refusal quotes it.
func (l *OfflineLimiter) Allow(cause error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.Clock.Now()
	keep := l.admitted[:0]
	for _, t := range l.admitted {
		if now.Sub(t) < time.Hour {
			keep = append(keep, t)
		}
	}
	l.admitted = keep
	if len(l.admitted) >= l.PerHour {
		next := "never (offlineRestartsPerHour is 0)"
		if len(l.admitted) > 0 {
			next = "in " + l.admitted[0].Add(time.Hour).Sub(now).Round(time.Second).String()
		}
		return &agent.BlockedError{Rule: "offline-rate", Reason: fmt.Sprintf(
			"API unreachable (%v); %d/%d offline repairs used in the last hour, next allowed %s",
			cause, len(l.admitted), l.PerHour, next)}
	}
	l.admitted = append(l.admitted, now)
	return nil
}

// Unreachable tells whether err means the API could not be reached at all,
// as opposed to the API answering no. Forbidden, Conflict, NotFound and the
// like are answers: the repair waits on them and never falls back to the
// offline allowance, else a broken RBAC rule would turn the budget off. A
// 502/503/504 is counted as unreachable because that is what haproxy in
// front of the apiservers answers when none of them is up.
func Unreachable(err error) bool {
	if err == nil {
		return false
	}
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		switch status.Status().Code {
		case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return true
		}
		return false
	}
	for _, errno := range []syscall.Errno{syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.EHOSTUNREACH, syscall.ENETUNREACH, syscall.ETIMEDOUT} {
		if errors.Is(err, errno) {
			return true
		}
	}
	// A client-side timeout (no answer in time) is as good as no API; the
	// caller has already told its own cancellation apart.
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var nerr net.Error
	var dnsErr *net.DNSError
	var opErr *net.OpError
	return errors.As(err, &nerr) && nerr.Timeout() || errors.As(err, &dnsErr) || errors.As(err, &opErr)
}
