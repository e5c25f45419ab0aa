//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

// kwEvent is the part of a `--output json` event the tests act on.
type kwEvent struct {
	Type, Host, Play, Step, Error string
}

// kwStream runs kubewright with --output json and calls onEvent for every
// event as it arrives, with the running command, so a test can act in the
// middle of a run (power a machine off, kill the operator's process). It
// returns what the command printed on stdout (the events) and on stderr (the
// error and its summary), and the error of the command's exit.
func kwStream(t *testing.T, ctx context.Context, stateDir string, onEvent func(ev kwEvent, cmd *exec.Cmd), args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := exec.CommandContext(ctx, kwBin(t), append([]string{"--state-dir", stateDir, "--output", "json"}, args...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var errOut strings.Builder
	cmd.Stderr = &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// If onEvent ends the test (t.Fatal) or reading fails, the command
	// must not outlive the call.
	waited := false
	defer func() {
		if !waited {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}()
	var lines []string
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		lines = append(lines, line)
		var ev kwEvent
		if json.Unmarshal([]byte(line), &ev) == nil && ev.Type != "" {
			onEvent(ev, cmd)
		}
	}
	if serr := sc.Err(); serr != nil {
		t.Errorf("read kubewright's events: %v", serr)
		_ = cmd.Process.Kill()
		_, _ = io.Copy(io.Discard, out)
	}
	err = cmd.Wait()
	waited = true
	return strings.Join(lines, "\n") + "\n", errOut.String(), err
}
