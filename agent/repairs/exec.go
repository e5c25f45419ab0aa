// Package repairs holds the agent's repair actions, one per file. Each is a
// single safe step on this node; when to run one, and whether it may, is
// decided by the agent's ladder and safety gate, never here.
package repairs

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// Runner runs a command and returns its combined output. Tests inject one;
// the zero value runs the real command.
type Runner func(ctx context.Context, name string, args ...string) ([]byte, error)

// ExecRunner runs the command with os/exec.
func ExecRunner(ctx context.Context, name string, args ...string) ([]byte, error) {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return out, nil
}

func (r Runner) run(ctx context.Context, name string, args ...string) ([]byte, error) {
	if r == nil {
		return ExecRunner(ctx, name, args...)
	}
	return r(ctx, name, args...)
}

// restartAndWait restarts unit and waits until systemd reports it active,
// polling every 200 ms up to wait. The error carries the unit's last
// journal lines: the operator's first question is "why did it not start".
func restartAndWait(ctx context.Context, run Runner, unit string, wait time.Duration) error {
	if _, err := run.run(ctx, "systemctl", "restart", unit); err != nil {
		return fmt.Errorf("restart %s: %w%s", unit, err, journalTail(ctx, run, unit))
	}
	if wait <= 0 {
		wait = 30 * time.Second
	}
	deadline := time.Now().Add(wait)
	state := ""
	for {
		out, _ := run.run(ctx, "systemctl", "is-active", unit)
		state = strings.TrimSpace(string(out))
		if state == "active" {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s is %q %s after restart, not active%s", unit, state, wait, journalTail(ctx, run, unit))
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func journalTail(ctx context.Context, run Runner, unit string) string {
	jctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	out, err := run.run(jctx, "journalctl", "-u", unit, "-n", "5", "--no-pager", "-o", "cat")
	if err != nil || len(strings.TrimSpace(string(out))) == 0 {
		return ""
	}
	return "; last log lines:\n" + strings.TrimSpace(string(out))
}

func unitBase(u string) string { return strings.TrimSuffix(u, ".service") }
