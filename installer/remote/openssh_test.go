package remote_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/kubewright/kubewright/installer/remote"
	"github.com/kubewright/kubewright/installer/remote/remotetest"
)

// These tests run against a real OpenSSH sshd on loopback. They skip only
// when /usr/sbin/sshd is missing and CI is unset (remotetest.RequireOpenSSH).

func TestOpenSSHExec(t *testing.T) {
	sshd := remotetest.StartOpenSSH(t, remotetest.WithHostNames("master1", "master2", "worker1"))
	var wg sync.WaitGroup
	for _, name := range sshd.Names() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := dial(t, sshd.Config(name))
			// SSH_CONNECTION's third field is the server address: each
			// "host" is really reached on its own loopback address.
			out := mustExec(t, h, `set -- $SSH_CONNECTION; echo $3`)
			if got := strings.TrimSpace(out); got != sshd.Address(name) {
				t.Errorf("%s answered on %s, want %s", name, got, sshd.Address(name))
			}
			_, err := h.Exec(context.Background(), "echo err >&2; exit 7")
			var ee *remote.ExitError
			if !errors.As(err, &ee) || ee.Code != 7 || ee.Stderr != "err\n" || ee.Host != name {
				t.Errorf("ExitError = %#v (%v)", ee, err)
			}
			out = mustExec(t, h, "cat", remote.WithStdin(strings.NewReader("stdin-data")))
			if out != "stdin-data" {
				t.Errorf("stdin: %q", out)
			}
		}()
	}
	wg.Wait()
}

func TestOpenSSHConcurrentSessions(t *testing.T) {
	sshd := remotetest.StartOpenSSH(t)
	h := dial(t, sshd.Config("host1"))
	var wg sync.WaitGroup
	for i := 0; i < 30; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if out := mustExec(t, h, "echo "+strconv.Itoa(i)); out != strconv.Itoa(i)+"\n" {
				t.Errorf("got %q", out)
			}
		}()
	}
	wg.Wait()
	if n := len(sshd.ConnectionPIDs()); n != 1 {
		t.Errorf("sshd has %d connection processes, want 1", n)
	}
}

func TestOpenSSHSudoAsRoot(t *testing.T) {
	sshd := remotetest.StartOpenSSH(t)
	if sshd.User != "root" {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI runs these tests as root; running as %s", sshd.User)
		}
		t.Skipf("logging in as %s, not root: root-direct sudo path not reachable", sshd.User)
	}
	cfg := sshd.Config("host1")
	cfg.SudoPassword = "never-used"
	h := dial(t, cfg)
	out := mustExec(t, h, `echo "$(id -u) sudo_user=$SUDO_USER"`, remote.WithSudo())
	if out != "0 sudo_user=\n" {
		t.Errorf("got %q: root must run the command directly, not through sudo", out)
	}
	out = mustExec(t, h, "cat", remote.WithSudo(), remote.WithStdin(strings.NewReader("exact")))
	if out != "exact" {
		t.Errorf("stdin through sudo path = %q (a password must not be prepended for root)", out)
	}
}

func TestOpenSSHUpload(t *testing.T) {
	sshd := remotetest.StartOpenSSH(t)
	h := dial(t, sshd.Config("host1"))
	ctx := context.Background()
	dst := filepath.Join(t.TempDir(), "etc", "kubernetes", "admin.conf")
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	owner := strconv.Itoa(os.Getuid()) + ":" + strconv.Itoa(os.Getgid())
	changed, err := h.Upload(ctx, strings.NewReader("apiVersion: v1\n"), dst, 0o600, remote.UploadOwner(owner), remote.UploadAsRoot())
	if err != nil || !changed {
		t.Fatalf("first upload: changed=%v err=%v", changed, err)
	}
	fi, err := os.Stat(dst)
	if err != nil || fi.Mode() != 0o600 {
		t.Fatalf("stat: %v %v", fi, err)
	}
	ino := fi.Sys().(*syscall.Stat_t).Ino
	mtime := fi.ModTime()
	changed, err = h.Upload(ctx, strings.NewReader("apiVersion: v1\n"), dst, 0o600, remote.UploadOwner(owner), remote.UploadAsRoot())
	if err != nil || changed {
		t.Fatalf("unchanged upload: changed=%v err=%v", changed, err)
	}
	fi, _ = os.Stat(dst)
	if fi.Sys().(*syscall.Stat_t).Ino != ino || !fi.ModTime().Equal(mtime) {
		t.Errorf("skipped upload touched the file")
	}
	changed, err = h.Upload(ctx, strings.NewReader("apiVersion: v2\n"), dst, 0o644)
	if err != nil || !changed {
		t.Fatalf("changed upload: changed=%v err=%v", changed, err)
	}
	got, err := h.Download(ctx, dst)
	if err != nil || string(got) != "apiVersion: v2\n" {
		t.Errorf("download = %q, %v", got, err)
	}
	noStaging(t, filepath.Dir(dst))
}

func TestOpenSSHHostKeyMismatch(t *testing.T) {
	sshd := remotetest.StartOpenSSH(t)
	cfg := sshd.Config("host1")
	wrong := remotetest.NewHostKey(t).PublicKey()
	cfg.KnownHostsFile = filepath.Join(t.TempDir(), "known_hosts")
	pattern := knownhosts.Normalize(cfg.Addr())
	if err := os.WriteFile(cfg.KnownHostsFile, []byte(knownhosts.Line([]string{pattern}, wrong)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.AcceptNewHostKeys = true
	_, err := remote.Dial(context.Background(), cfg)
	var hk *remote.HostKeyError
	if !errors.As(err, &hk) || !hk.Mismatch {
		t.Fatalf("err = %v, want mismatch", err)
	}
	for _, want := range []string{ssh.FingerprintSHA256(sshd.HostKey), ssh.FingerprintSHA256(wrong),
		`ssh-keygen -f "` + cfg.KnownHostsFile + `" -R "` + pattern + `"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message lacks %q: %v", want, err)
		}
	}
}

func TestOpenSSHReconnectAfterKill(t *testing.T) {
	sshd := remotetest.StartOpenSSH(t)
	h := dial(t, sshd.Config("host1"))
	mustExec(t, h, "true")

	// Killed between commands: the next command reconnects transparently.
	if n := sshd.KillConnections(); n != 1 {
		t.Fatalf("killed %d connections, want 1", n)
	}
	if out := mustExec(t, h, "echo back"); out != "back\n" {
		t.Errorf("after reconnect: %q", out)
	}
	if h.Connects() != 2 {
		t.Errorf("Connects = %d, want 2", h.Connects())
	}

	// Killed during a command: that command fails and is not re-run.
	marker := filepath.Join(t.TempDir(), "runs")
	errc := make(chan error, 1)
	go func() {
		_, err := h.Exec(context.Background(), "echo x >> "+marker+"; sleep 20")
		errc <- err
	}()
	waitFor(t, "command to start", 5*time.Second, func() bool {
		b, _ := os.ReadFile(marker)
		return len(b) > 0
	})
	sshd.KillConnections()
	select {
	case err := <-errc:
		if !errors.Is(err, remote.ErrConnectionLost) {
			t.Fatalf("err = %v, want ErrConnectionLost", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Exec hung after its connection was killed")
	}
	mustExec(t, h, "true")
	if b, _ := os.ReadFile(marker); string(b) != "x\n" {
		t.Errorf("command ran %d times", strings.Count(string(b), "x"))
	}
}

func TestOpenSSHContextCancel(t *testing.T) {
	sshd := remotetest.StartOpenSSH(t)
	h := dial(t, sshd.Config("host1"))
	pidFile := filepath.Join(t.TempDir(), "pid")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := h.Exec(ctx, "echo $$ > "+pidFile+"; exec sleep 30")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	b, _ := os.ReadFile(pidFile)
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if pid == 0 {
		t.Fatal("no pid recorded")
	}
	defer func() {
		if t.Failed() {
			t.Log(sshd.LogTail())
		}
	}()
	waitFor(t, "remote process to end after cancel", 5*time.Second, func() bool {
		return syscall.Kill(pid, 0) != nil
	})
}
