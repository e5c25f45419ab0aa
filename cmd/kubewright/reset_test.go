package main

import (
	"strings"
	"testing"
	"time"
)

// TestResetRefusals: each refusal is bad input, decided before any host is
// contacted (certsInv's hosts listen on nothing).
func TestResetRefusals(t *testing.T) {
	base := t.TempDir()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown node", []string{"reset", "-i", certsInv, "--yes", "--node", "nope"}, "--node nope: no such host"},
		{"one master of two", []string{"reset", "-i", certsInv, "--yes", "--node", "master1"}, "resetting 1 of 2 etcd members"},
		{"bad output", []string{"-o", "yaml", "reset", "-i", certsInv, "--yes"}, `--output "yaml"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := runCLI(t, append([]string{"--state-dir", base}, tc.args...)...)
			if err == nil || !isBadInput(err) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want bad input containing %q", err, tc.want)
			}
		})
	}
	t.Run("not confirmed", func(t *testing.T) {
		root := newRootCmd()
		var out, errb strings.Builder
		root.SetOut(&out)
		root.SetErr(&errb)
		root.SetIn(strings.NewReader("\n"))
		root.SetArgs([]string{"--state-dir", base, "reset", "-i", certsInv})
		err := root.Execute()
		if err == nil || !isBadInput(err) || !strings.Contains(err.Error(), "not confirmed") || !strings.Contains(errb.String(), "every host of cluster certtest") {
			t.Fatalf("err %v, stderr %q", err, errb.String())
		}
	})
}

func TestRemoveNodeRefusals(t *testing.T) {
	base := certsState(t, time.Now())
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown host", []string{"remove-node", "-i", certsInv, "--yes", "w9"}, "no host w9"},
		{"a master", []string{"remove-node", "-i", certsInv, "--yes", "master1"}, "handles workers only"},
		{"bad timeout", []string{"remove-node", "-i", certsInv, "--yes", "--drain-timeout", "0s", "master1"}, "--drain-timeout must be positive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := runCLI(t, append([]string{"--state-dir", base}, tc.args...)...)
			if err == nil || !isBadInput(err) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want bad input containing %q", err, tc.want)
			}
		})
	}
}

func TestRepairUnknownNode(t *testing.T) {
	_, _, err := runCLI(t, "--state-dir", t.TempDir(), "repair", "-i", certsInv, "--node", "nope")
	if err == nil || !isBadInput(err) || !strings.Contains(err.Error(), "--node nope: no such host") {
		t.Fatalf("err %v", err)
	}
}
