package checks

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
)

// Runner runs one command and returns its standard output. On a non-zero
// exit it returns the output it got together with the error, because some
// tools (systemctl is-active) answer through both. Checks that run tools take
// a Runner so tests can point them at small scripts.
type Runner func(ctx context.Context, name string, args ...string) ([]byte, error)

// Exec is the default Runner: a real process, killed when ctx ends, in the C
// locale so output parses the same everywhere. Its error carries the tool's
// standard error (trimmed), which is what says why it failed.
func Exec(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	// A killed tool's children may hold its pipes open; do not wait for
	// them past this.
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			if len(msg) > 300 {
				msg = msg[:300] + "..."
			}
			err = fmt.Errorf("%s: %w: %s", name, err, msg)
		} else {
			err = fmt.Errorf("%s: %w", name, err)
		}
	}
	return stdout.Bytes(), err
}

func (r Runner) orDefault() Runner {
	if r == nil {
		return Exec
	}
	return r
}
