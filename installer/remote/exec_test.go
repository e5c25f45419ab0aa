package remote_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kubewright/kubewright/installer/remote"
	"github.com/kubewright/kubewright/installer/remote/remotetest"
)

func TestExec(t *testing.T) {
	srv := remotetest.NewServer(t)
	h := dial(t, srv.Config("node1"))
	tests := []struct {
		name       string
		cmd        string
		opts       []remote.ExecOption
		wantOut    string
		wantCode   int // -1: no error
		wantStderr string
		wantSignal string
	}{
		{name: "stdout", cmd: "echo hello; echo world", wantOut: "hello\nworld\n", wantCode: -1},
		{name: "stderr and exit code", cmd: "echo out; echo oops >&2; exit 3", wantOut: "out\n", wantCode: 3, wantStderr: "oops\n"},
		{name: "stderr with success", cmd: "echo warn >&2", wantCode: -1},
		{name: "shell semantics", cmd: "x=1; for i in a b; do x=$x$i; done; echo $x | tr a-z A-Z", wantOut: "1AB\n", wantCode: -1},
		{name: "cwd is server dir", cmd: "pwd", wantOut: srv.Dir() + "\n", wantCode: -1},
		{name: "stdin", cmd: "cat", opts: []remote.ExecOption{remote.WithStdin(strings.NewReader("in\nput"))}, wantOut: "in\nput", wantCode: -1},
		{name: "env quoted", cmd: `printf '%s|%s' "$A" "$B_2"`, opts: []remote.ExecOption{remote.WithEnv(map[string]string{"A": "it's $HOME", "B_2": "x y"})}, wantOut: "it's $HOME|x y", wantCode: -1},
		{name: "killed by signal", cmd: "kill -KILL $$", wantCode: 137, wantSignal: "KILL"},
		{name: "command not found", cmd: "no-such-command-kw", wantCode: 127, wantStderr: "not found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := h.Exec(context.Background(), tc.cmd, tc.opts...)
			if tc.wantOut != "" && out != tc.wantOut {
				t.Errorf("stdout = %q, want %q", out, tc.wantOut)
			}
			if tc.wantCode == -1 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			var ee *remote.ExitError
			if !errors.As(err, &ee) {
				t.Fatalf("error = %v, want *ExitError", err)
			}
			if ee.Code != tc.wantCode || ee.Host != "node1" || ee.Cmd != tc.cmd || ee.Signal != tc.wantSignal {
				t.Errorf("ExitError = %+v, want code %d signal %q host node1 cmd %q", ee, tc.wantCode, tc.wantSignal, tc.cmd)
			}
			if tc.name == "stderr and exit code" && ee.Stderr != tc.wantStderr {
				t.Errorf("stderr = %q, want exactly %q (the PID announcement must be stripped)", ee.Stderr, tc.wantStderr)
			}
			if !strings.Contains(ee.Stderr, tc.wantStderr) {
				t.Errorf("stderr = %q, want it to contain %q", ee.Stderr, tc.wantStderr)
			}
			if remote.ExitCode(err) != tc.wantCode {
				t.Errorf("ExitCode = %d", remote.ExitCode(err))
			}
		})
	}
}

func TestExecInvalidEnvName(t *testing.T) {
	srv := remotetest.NewServer(t)
	h := dial(t, srv.Config("node1"))
	_, err := h.Exec(context.Background(), "true", remote.WithEnv(map[string]string{"A;rm -rf /": "x"}))
	if err == nil || !strings.Contains(err.Error(), `invalid environment variable name "A;rm -rf /"`) {
		t.Fatalf("err = %v", err)
	}
	if n := srv.Stats().Execs; n != 0 {
		t.Errorf("server ran %d commands, want 0", n)
	}
}

func TestExitErrorMessage(t *testing.T) {
	long := make([]string, 30)
	for i := range long {
		long[i] = fmt.Sprintf("E: line %d", i+1)
	}
	cases := []*remote.ExitError{
		{Host: "master1", Cmd: "systemctl restart kubelet", Code: 5, Stderr: "Failed to restart kubelet.service: Unit kubelet.service not found.\n"},
		{Host: "master1", Cmd: "apt-get install -y containerd", Code: 100, Stderr: strings.Join(long, "\n")},
		{Host: "node7", Cmd: "sleep 100", Code: 143, Signal: "TERM"},
		{Host: "node7", Cmd: "true", Code: 1, Sudo: true, Stderr: "sudo: a password is required\n"},
		{Host: "node7", Cmd: "true", Code: 1, Sudo: true, Stderr: "Sorry, try again.\nsudo: 1 incorrect password attempt\n"},
	}
	var b strings.Builder
	for _, c := range cases {
		b.WriteString(c.Error() + "\n\n")
	}
	golden(t, "exit_error", b.String())
}

func TestConcurrentSessionsShareOneConnection(t *testing.T) {
	srv := remotetest.NewServer(t)
	h := dial(t, srv.Config("node1"))
	const n = 40
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := h.Exec(context.Background(), fmt.Sprintf("echo %d", i))
			if err == nil && out != fmt.Sprintf("%d\n", i) {
				err = fmt.Errorf("command %d got %q", i, out)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	st := srv.Stats()
	if st.Connections != 1 || st.Execs != n {
		t.Errorf("stats = %+v, want 1 connection and %d execs", st, n)
	}
	if st.PeakSessions < 2 {
		t.Errorf("peak sessions = %d: commands did not run concurrently", st.PeakSessions)
	}
}

func TestMaxSessionsBoundsConcurrency(t *testing.T) {
	for _, max := range []int{1, 4} {
		t.Run(strconv.Itoa(max), func(t *testing.T) {
			srv := remotetest.NewServer(t)
			cfg := srv.Config("node1")
			cfg.MaxSessions = max
			h := dial(t, cfg)
			var wg sync.WaitGroup
			for i := 0; i < 8; i++ {
				wg.Add(1)
				go func() { defer wg.Done(); mustExec(t, h, "sleep 0.05") }()
			}
			wg.Wait()
			if got := srv.Stats().PeakSessions; got > int64(max) || (max > 1 && got < 2) {
				t.Errorf("peak sessions = %d with MaxSessions %d", got, max)
			}
		})
	}
}

func TestContextCancelKillsCommand(t *testing.T) {
	srv := remotetest.NewServer(t)
	h := dial(t, srv.Config("node1"))
	pidFile := filepath.Join(srv.Dir(), "pid")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := h.Exec(ctx, "echo $$ > pid; exec sleep 30")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Exec returned after %s", d)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	waitFor(t, "remote sleep to be killed", 3*time.Second, func() bool {
		return syscall.Kill(pid, 0) != nil
	})
	// The connection is still usable.
	if out := mustExec(t, h, "echo ok"); out != "ok\n" {
		t.Errorf("after cancel: %q", out)
	}
}

func TestCommandTimeouts(t *testing.T) {
	srv := remotetest.NewServer(t)
	cfg := srv.Config("node1")
	cfg.CommandTimeout = 200 * time.Millisecond
	h := dial(t, cfg)
	tests := []struct {
		name    string
		opts    []remote.ExecOption
		wantErr string
	}{
		{name: "host default applies", wantErr: "timed out after 200ms"},
		{name: "per-command override", opts: []remote.ExecOption{remote.WithTimeout(2 * time.Second)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := h.Exec(context.Background(), "sleep 0.5", tc.opts...)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "on node1") {
				t.Fatalf("err = %v, want %q naming node1", err, tc.wantErr)
			}
		})
	}
}
