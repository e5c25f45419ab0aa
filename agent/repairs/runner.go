// Package repairs holds kubewright-agent's repair actions, one per file. Each
// is a single safe step (restart one unit, prune unused images, renew
// expiring certificates) implementing agent.Repair; which check gets which
// repairs, and in what order, is decided in agent/daemon, and whether a
// repair may run now is decided by agent/safety.
package repairs

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
)

// Runner runs one command and returns its combined output. On a non-zero
// exit it returns the output together with the error, because systemctl
// is-active answers "failed" through both. Repairs take a Runner so tests
// can script the tools' answers and check the exact commands run.
type Runner func(ctx context.Context, name string, args ...string) ([]byte, error)

// ExecRunner is the default Runner: a real process, killed when ctx ends, in
// the C locale so the output reads the same on every host.
func ExecRunner(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	// A killed tool's children may hold its pipes open; do not wait for
	// them past this.
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
		err = fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return out, err
}

func (r Runner) orDefault() Runner {
	if r == nil {
		return ExecRunner
	}
	return r
}

// lastLines is the last n non-empty lines of out, indented for an error
// message.
func lastLines(out []byte, n int) string {
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l = strings.TrimRight(l, " \r\t"); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	for i := range lines {
		lines[i] = "  " + lines[i]
	}
	return strings.Join(lines, "\n")
}
