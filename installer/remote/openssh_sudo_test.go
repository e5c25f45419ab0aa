package remote_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kubewright/kubewright/installer/remote"
	"github.com/kubewright/kubewright/installer/remote/remotetest"
)

// TestOpenSSHSudoWithPassword drives kubewright's sudo path against the real
// thing: an unprivileged user logged in with a key over OpenSSH's sshd, the
// real sudo (and PAM) asking for that user's password. It runs as root in CI
// (it creates the user and its sudoers entry, and removes both).
func TestOpenSSHSudoWithPassword(t *testing.T) {
	u := remotetest.NewSudoUser(t)
	sshd := remotetest.StartOpenSSH(t, remotetest.WithSSHDConfig(u.SSHDConfig()...))
	defer func() {
		if t.Failed() {
			t.Logf("sshd log:\n%s", sshd.LogTail())
		}
	}()
	config := func(sudoPassword string, logs *logBuf) remote.Config {
		cfg := sshd.Config("host1")
		cfg.User, cfg.KeyFile, cfg.SudoPassword = u.Name, u.Key.Path, sudoPassword
		cfg.Logger = debugLogger(logs)
		return cfg
	}
	const wrong = "kw-wrong-password-0f3a9c"
	secrets := []string{u.Password, wrong}
	var logs logBuf
	h := dial(t, config(u.Password, &logs))

	t.Run("runs as root through sudo", func(t *testing.T) {
		// Without sudo the command runs as the unprivileged user...
		if out := mustExec(t, h, "id -u"); strings.TrimSpace(out) != strconv.Itoa(u.UID) {
			t.Fatalf("logged in as uid %q, want %d (%s)", out, u.UID, u.Name)
		}
		// ...with it, as root, and sudo says who asked.
		out := mustExec(t, h, `id -u; echo "$SUDO_USER"`, remote.WithSudo())
		if out != "0\n"+u.Name+"\n" {
			t.Fatalf("under sudo got %q, want uid 0 and SUDO_USER=%s", out, u.Name)
		}
	})

	t.Run("caller stdin reaches the command, the password does not", func(t *testing.T) {
		// sudo -S reads the password line and no more: the command sees
		// exactly the caller's bytes.
		out := mustExec(t, h, "cat", remote.WithSudo(), remote.WithStdin(strings.NewReader("payload\nline2\n")))
		if out != "payload\nline2\n" {
			t.Fatalf("stdin under sudo = %q", out)
		}
	})

	t.Run("password never on a command line", func(t *testing.T) {
		// A sleep with an argument nothing else on this host uses, so the
		// test can find it; while it runs under sudo, no process on this host
		// may show the password in its arguments or its environment.
		marker := "600." + strconv.FormatInt(time.Now().UnixNano()%1e9, 10)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		errc := make(chan error, 1)
		go func() {
			_, err := h.Exec(ctx, "exec sleep "+marker, remote.WithSudo())
			errc <- err
		}()
		var sleepPID int
		waitFor(t, "sleep "+marker+" to run as root", 15*time.Second, func() bool {
			for _, p := range procs() {
				if p.cmdline == "sleep\x00"+marker+"\x00" && p.uid == 0 {
					sleepPID = p.pid
					return true
				}
			}
			return false
		})
		defer func() {
			// Only if the cancel below failed to end it, and only that process.
			if b, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(sleepPID), "cmdline")); string(b) == "sleep\x00"+marker+"\x00" {
				syscall.Kill(sleepPID, syscall.SIGKILL)
			}
		}()
		sawSudo := false
		for _, p := range procs() {
			if strings.HasPrefix(p.cmdline, "sudo\x00-S\x00") && p.uid == u.UID {
				sawSudo = true
			}
			for _, s := range secrets {
				if strings.Contains(p.cmdline, s) {
					t.Errorf("pid %d has the password on its command line: %q", p.pid, p.cmdline)
				}
				if bytes.Contains(p.environ, []byte(s)) {
					t.Errorf("pid %d has the password in its environment", p.pid)
				}
			}
		}
		if !sawSudo {
			t.Errorf("no `sudo -S` process of %s while its command ran: the scan proved nothing", u.Name)
		}
		// Cancelling ends the root command too: the user may signal its own
		// sudo, which relays the signal.
		cancel()
		select {
		case err := <-errc:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("cancelled Exec returned %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Exec did not return after cancel")
		}
		waitFor(t, "the root sleep to end after cancel", 10*time.Second, func() bool {
			return syscall.Kill(sleepPID, 0) != nil
		})
	})

	t.Run("wrong password is refused clearly", func(t *testing.T) {
		var badLogs logBuf
		bad := dial(t, config(wrong, &badLogs))
		out, err := bad.Exec(context.Background(), "id -u", remote.WithSudo())
		var ee *remote.ExitError
		if !errors.As(err, &ee) || !ee.Sudo {
			t.Fatalf("err = %v, want a sudo ExitError", err)
		}
		if !strings.Contains(err.Error(), "the sudo password was refused: check the variable named by sudoPasswordEnv") {
			t.Errorf("error does not say the password was refused: %v", err)
		}
		if !strings.Contains(err.Error(), "on host1") {
			t.Errorf("error does not name the host: %v", err)
		}
		if out != "" {
			t.Errorf("the command ran despite the wrong password: stdout %q", out)
		}
		for _, s := range secrets {
			if strings.Contains(err.Error(), s) || strings.Contains(badLogs.String(), s) {
				t.Errorf("a password is in the error or the log:\n%v\n%s", err, badLogs.String())
			}
		}
		t.Logf("refused as expected: %v", err)
	})

	t.Run("missing password is named", func(t *testing.T) {
		var noLogs logBuf
		none := dial(t, config("", &noLogs))
		_, err := none.Exec(context.Background(), "true", remote.WithSudo())
		if err == nil || !strings.Contains(err.Error(), "sudo needs a password on this host: set sudoPasswordEnv") {
			t.Fatalf("err = %v, want the hint to set sudoPasswordEnv", err)
		}
	})

	for _, s := range secrets {
		if strings.Contains(logs.String(), s) {
			t.Errorf("a password is in the debug log:\n%s", logs.String())
		}
	}
}

type proc struct {
	pid, uid int
	cmdline  string // NUL-separated, as in /proc
	environ  []byte
}

// procs reads every process's arguments, environment and real uid.
func procs() []proc {
	entries, _ := os.ReadDir("/proc")
	var out []proc
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		dir := filepath.Join("/proc", e.Name())
		cmdline, err := os.ReadFile(filepath.Join(dir, "cmdline"))
		if err != nil {
			continue
		}
		environ, _ := os.ReadFile(filepath.Join(dir, "environ"))
		p := proc{pid: pid, uid: -1, cmdline: string(cmdline), environ: environ}
		status, _ := os.ReadFile(filepath.Join(dir, "status"))
		for _, line := range strings.Split(string(status), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "Uid:" {
				p.uid, _ = strconv.Atoi(f[1])
			}
		}
		out = append(out, p)
	}
	return out
}
