package main

import (
	"strings"
	"testing"
)

func TestCheckBadInput(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"invalid inventory", []string{"check", "-i", badInv}, "duplicate"},
		{"missing inventory", []string{"check", "-i", "/nonexistent/inv.yaml"}, "read inventory"},
		{"no inventory flag", []string{"check"}, `required flag(s) "inventory" not set`},
		{"bad output format", []string{"check", "-i", sampleInv, "-o", "yaml"}, `unknown output format "yaml": use text or json`},
		{"bad concurrency", []string{"check", "-i", sampleInv, "--concurrency", "-1"}, "--concurrency must be positive, got -1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := runCLI(t, tc.args...)
			if code := exitCodeQuiet(err); code != exitBadInput {
				t.Fatalf("exit code %d (err = %v), want %d", code, err, exitBadInput)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}
