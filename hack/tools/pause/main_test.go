package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestExitsOnSIGTERM runs the real binary: a pause that ignores SIGTERM would
// make every pod deletion wait for the runtime's SIGKILL timeout.
func TestExitsOnSIGTERM(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "pause")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			var stderr strings.Builder
			cmd := exec.Command(bin)
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { cmd.Process.Kill() })
			time.Sleep(500 * time.Millisecond) // let it install its signal handlers
			cmd.Process.Signal(sig)
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("exit: %v (stderr %q)", err, stderr.String())
				}
				if !strings.Contains(stderr.String(), "Shutting down, got signal") {
					t.Errorf("stderr %q", stderr.String())
				}
			case <-time.After(5 * time.Second):
				t.Fatal("pause did not exit on " + sig.String())
			}
		})
	}
}
