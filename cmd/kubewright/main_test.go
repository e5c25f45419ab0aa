package main

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
)

func TestExitCodes(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want int
	}{
		{"version ok", []string{"version"}, exitOK},
		{"missing required flag", []string{"inventory", "validate"}, exitBadInput},
		{"unknown flag", []string{"version", "--no-such-flag"}, exitBadInput},
		{"unknown command", []string{"no-such-command"}, exitBadInput},
		{"extra argument", []string{"version", "extra"}, exitBadInput},
		{"missing inventory file", []string{"inventory", "validate", "-i", "/nonexistent/inventory.yaml"}, exitBadInput},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := newRootCmd()
			var out bytes.Buffer
			root.SetOut(&out)
			root.SetErr(&out)
			root.SetArgs(tc.args)
			err := root.Execute()
			if got := exitCodeQuiet(err); got != tc.want {
				t.Fatalf("exit code %d, want %d (err=%v)", got, tc.want, err)
			}
		})
	}
}

func TestExitCodeOfWrappedErrors(t *testing.T) {
	if exitCodeQuiet(fmt.Errorf("run: %w", badInput(errors.New("bad")))) != exitBadInput {
		t.Fatal("a wrapped bad-input error must exit 2")
	}
	if exitCodeQuiet(errors.New("ssh: connection refused")) != exitFailed {
		t.Fatal("an operational error must exit 1")
	}
}
