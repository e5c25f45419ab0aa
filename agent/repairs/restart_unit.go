package repairs

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/kubewright/kubewright/agent"
)

// Defaults for how long a restarted unit gets to become active, and how
// often it is asked.
const (
	DefaultWait = 30 * time.Second
	DefaultPoll = 500 * time.Millisecond
)

// RestartUnit restarts one systemd unit and waits for it to be active
// again. Waiting matters: systemctl restart returns once the unit is
// started, not once it works, and the budget slot this repair holds should
// not go to another node while this one is still coming up.
type RestartUnit struct {
	// Unit is the systemd unit, e.g. "kubelet.service".
	Unit string
	// In is the safety scope the restart runs in: agent.ScopeNode (the
	// default) for a node-local unit, ScopeControlPlane for kube-apiserver,
	// keepalived or haproxy, ScopeEtcd for etcd. (Not named Scope: that is
	// the agent.Repair method.)
	In  agent.Scope
	Run Runner
	// Wait bounds the wait for the unit to be active (DefaultWait); Poll is
	// how often is-active is asked (DefaultPoll).
	Wait time.Duration
	Poll time.Duration
}

// Name is "restart-" and the unit without ".service": restart-kubelet, the
// name operators use in agent.yaml's repairs: section.
func (r RestartUnit) Name() string { return "restart-" + strings.TrimSuffix(r.Unit, ".service") }

func (r RestartUnit) Scope() agent.Scope {
	if r.In == "" {
		return agent.ScopeNode
	}
	return r.In
}

// Units makes the agent's cooldown apply: a unit that started a moment ago
// (by systemd or a person) is given time before it is restarted again.
func (r RestartUnit) Units() []string { return []string{r.Unit} }

func (r RestartUnit) Act(ctx context.Context) error {
	run := r.Run.orDefault()
	if out, err := run(ctx, "systemctl", "restart", r.Unit); err != nil {
		msg := fmt.Sprintf("systemctl restart %s: %v", r.Unit, err)
		if o := lastLines(out, 5); o != "" {
			msg += "\n" + o
		}
		return fmt.Errorf("%s; last journal lines:\n%s", msg, journalTail(ctx, run, r.Unit))
	}
	return waitActive(ctx, run, r.Unit, orDuration(r.Wait, DefaultWait), orDuration(r.Poll, DefaultPoll))
}

// waitActive polls systemctl is-active until the unit is active or wait has
// passed. The error names the unit's last state and carries the tail of its
// journal, which is usually what says why it did not come up.
func waitActive(ctx context.Context, run Runner, unit string, wait, poll time.Duration) error {
	deadline := time.Now().Add(wait)
	var state string
	for {
		// is-active exits non-zero for every state but active; the state
		// itself is on stdout either way.
		out, err := run(ctx, "systemctl", "is-active", unit)
		state = lastLine(out)
		if state == "" {
			state = "unknown"
			if err != nil {
				state = "unknown (" + err.Error() + ")"
			}
		}
		if state == "active" {
			return nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			break
		}
		t := time.NewTimer(min(poll, left))
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("wait for %s to become active (it is %s): %w", unit, state, ctx.Err())
		case <-t.C:
		}
	}
	return fmt.Errorf("%s is %s, not active, %s after restart; last journal lines:\n%s", unit, state, wait, journalTail(ctx, run, unit))
}

// journalTail is the unit's last five journal lines. It runs even when ctx
// has ended, briefly, because that is when the operator needs them most.
func journalTail(ctx context.Context, run Runner, unit string) string {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	out, err := run(ctx, "journalctl", "-u", unit, "-n", "5", "--no-pager")
	tail := lastLines(out, 5)
	if err != nil && tail == "" {
		return fmt.Sprintf("  (journalctl failed: %v)", err)
	}
	if tail == "" {
		return "  (no journal entries)"
	}
	return tail
}

func lastLine(out []byte) string {
	s := strings.TrimSpace(string(out))
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = strings.TrimSpace(s[i+1:])
	}
	return s
}

func orDuration(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}
