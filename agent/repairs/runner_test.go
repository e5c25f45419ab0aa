package repairs

import (
	"context"
	"strings"
	"testing"
)

func TestExecRunner(t *testing.T) {
	out, err := ExecRunner(context.Background(), "sh", "-c", "echo out; echo err >&2; exit 3")
	if err == nil || !strings.Contains(err.Error(), "exit status 3") || !strings.Contains(err.Error(), "sh -c") {
		t.Fatalf("error %v, want the exit status and the command", err)
	}
	// Combined output: systemctl is-active's answer and systemctl's
	// complaints are both kept.
	if string(out) != "out\nerr\n" {
		t.Fatalf("output %q", out)
	}
	if out, err := ExecRunner(context.Background(), "sh", "-c", "echo $LC_ALL"); err != nil || string(out) != "C\n" {
		t.Fatalf("LC_ALL: %q, %v", out, err)
	}
}
