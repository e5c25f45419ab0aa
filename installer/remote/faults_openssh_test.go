package remote_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kubewright/kubewright/installer/remote"
	"github.com/kubewright/kubewright/installer/remote/remotetest"
)

// cutReader is an upload source that stops in the middle of its second
// pass (Upload reads once to hash, then again to write) until the test has
// cut the connection, so the cut lands mid-transfer every time.
type cutReader struct {
	mu      sync.Mutex
	r       *bytes.Reader
	at      int64
	passes  int // rewinds to the start seen so far
	reached chan struct{}
	release chan struct{}
	once    sync.Once
}

func newCutReader(data []byte, at int64) *cutReader {
	return &cutReader{r: bytes.NewReader(data), at: at, reached: make(chan struct{}), release: make(chan struct{})}
}

func (c *cutReader) Seek(off int64, whence int) (int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if whence == io.SeekStart && off == 0 {
		c.passes++
	}
	return c.r.Seek(off, whence)
}

func (c *cutReader) Read(p []byte) (int, error) {
	c.mu.Lock()
	pos := c.r.Size() - int64(c.r.Len())
	gated := c.passes == 1
	c.mu.Unlock()
	if gated && pos >= c.at {
		c.once.Do(func() { close(c.reached) })
		<-c.release
	} else if gated && pos+int64(len(p)) > c.at {
		p = p[:c.at-pos]
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.r.Read(p)
}

func (c *cutReader) passesSeen() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.passes
}

func waitClosed(t *testing.T, what string, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(15 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// stagedParts lists the staging files of uploads under dir.
func stagedParts(dir string) []string {
	m, _ := filepath.Glob(filepath.Join(dir, ".kubewright-upload-*", "data"))
	return m
}

// TestOpenSSHUploadCutMidTransfer kills the sshd connection while an upload
// is halfway through its bytes. The destination keeps its old content the
// whole time (the bytes go to a staging file beside it), the upload starts
// over on a new connection and succeeds, and neither the partial staging
// file nor its directory is left behind.
func TestOpenSSHUploadCutMidTransfer(t *testing.T) {
	sshd := remotetest.StartOpenSSH(t)
	cfg := sshd.Config("host1")
	var logs logBuf
	cfg.Logger = debugLogger(&logs)
	h := dial(t, cfg)
	dir := t.TempDir()
	dst := filepath.Join(dir, "kubelet.conf")
	old := []byte("old version\n")
	if err := os.WriteFile(dst, old, 0o644); err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	src := newCutReader(data, 256<<10)
	type result struct {
		changed bool
		err     error
	}
	done := make(chan result, 1)
	go func() {
		changed, err := h.Upload(context.Background(), src, dst, 0o600)
		done <- result{changed, err}
	}()
	waitClosed(t, "the upload to reach the middle of its bytes", src.reached)
	waitFor(t, "part of the bytes to be staged", 10*time.Second, func() bool {
		parts := stagedParts(dir)
		if len(parts) != 1 {
			return false
		}
		fi, err := os.Stat(parts[0])
		return err == nil && fi.Size() > 0
	})
	partial := stagedParts(dir)[0]
	if fi, _ := os.Stat(partial); fi.Size() >= int64(len(data)) {
		t.Fatalf("staged %d of %d bytes before the cut: the cut is not mid-transfer", fi.Size(), len(data))
	}
	if got, _ := os.ReadFile(dst); !bytes.Equal(got, old) {
		t.Fatalf("destination changed before the upload finished: %q", got)
	}
	if n := sshd.KillConnections(); n != 1 {
		t.Fatalf("killed %d connections, want 1", n)
	}
	// The destination is still the old, complete file right after the cut.
	if got, _ := os.ReadFile(dst); !bytes.Equal(got, old) {
		t.Fatalf("destination truncated by the cut: %d bytes", len(got))
	}
	close(src.release)
	var r result
	select {
	case r = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("upload did not return after the cut")
	}
	if r.err != nil || !r.changed {
		t.Fatalf("upload after a cut: changed=%v err=%v", r.changed, r.err)
	}
	got, _ := os.ReadFile(dst)
	if !bytes.Equal(got, data) {
		t.Fatalf("destination has %d bytes, want the %d uploaded", len(got), len(data))
	}
	if fi, _ := os.Stat(dst); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode())
	}
	noStaging(t, dir)
	if h.Connects() != 2 {
		t.Errorf("Connects = %d, want 2 (one reconnect)", h.Connects())
	}
	if src.passesSeen() != 2 {
		t.Errorf("source rewound %d times, want 2 (hash, then one retry)", src.passesSeen())
	}
	if !strings.Contains(logs.String(), "upload cut by a lost connection; starting over") {
		t.Errorf("the retry is not logged:\n%s", logs.String())
	}
	// And it is a plain, unchanged file to the next upload.
	if changed, err := h.Upload(context.Background(), bytes.NewReader(data), dst, 0o600); err != nil || changed {
		t.Errorf("re-upload: changed=%v err=%v", changed, err)
	}
}

// TestOpenSSHUploadCutHostGone: when the host does not come back after the
// cut, Upload fails naming the host and the reconnect, and the destination
// still holds its old, complete content.
func TestOpenSSHUploadCutHostGone(t *testing.T) {
	sshd := remotetest.StartOpenSSH(t)
	cfg := sshd.Config("host1")
	cfg.ReconnectAttempts, cfg.ReconnectBackoff = 2, 50*time.Millisecond
	h := dial(t, cfg)
	dir := t.TempDir()
	dst := filepath.Join(dir, "admin.conf")
	old := []byte("old version\n")
	if err := os.WriteFile(dst, old, 0o644); err != nil {
		t.Fatal(err)
	}
	src := newCutReader(bytes.Repeat([]byte("x"), 1<<20), 128<<10)
	done := make(chan error, 1)
	go func() {
		_, err := h.Upload(context.Background(), src, dst, 0o644)
		done <- err
	}()
	waitClosed(t, "the upload to reach the middle of its bytes", src.reached)
	sshd.Stop() // the listener and every connection: the host is gone
	close(src.release)
	var err error
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("upload did not return after the host went away")
	}
	if err == nil {
		t.Fatal("upload succeeded with the host gone")
	}
	for _, want := range []string{"upload " + dst + " to host1", "reconnect to host1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if got, _ := os.ReadFile(dst); !bytes.Equal(got, old) {
		t.Errorf("destination is %d bytes after a failed upload, want the old %d", len(got), len(old))
	}
}

// TestOpenSSHUploadAsRootCutMidTransfer is the sudo path: an unprivileged
// user stages in /tmp and root moves the file into a directory the user
// cannot write. A cut mid-transfer is retried, the root-owned destination
// ends up complete, and no staging directory of the user is left in /tmp.
func TestOpenSSHUploadAsRootCutMidTransfer(t *testing.T) {
	u := remotetest.NewSudoUser(t)
	sshd := remotetest.StartOpenSSH(t, remotetest.WithSSHDConfig(u.SSHDConfig()...))
	cfg := sshd.Config("host1")
	cfg.User, cfg.KeyFile, cfg.SudoPassword = u.Name, u.Key.Path, u.Password
	h := dial(t, cfg)
	dir := t.TempDir() // root-owned 0700: only root can write (or read) here
	dst := filepath.Join(dir, "encryption-config.yaml")
	data := bytes.Repeat([]byte("k"), 512<<10)
	src := newCutReader(data, 64<<10)
	before := userStages(u.UID) // a system uid may be reused: only new ones count
	done := make(chan error, 1)
	go func() {
		_, err := h.Upload(context.Background(), src, dst, 0o600, remote.UploadAsRoot(), remote.UploadOwner("root:root"))
		done <- err
	}()
	waitClosed(t, "the upload to reach the middle of its bytes", src.reached)
	if during := newStages(before, userStages(u.UID)); len(during) != 1 {
		t.Fatalf("want one staging directory of %s in /tmp during the upload, have %v", u.Name, during)
	}
	if n := sshd.KillConnections(); n != 1 {
		t.Fatalf("killed %d connections, want 1", n)
	}
	close(src.release)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("upload as root after a cut: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("upload did not return after the cut")
	}
	got, err := os.ReadFile(dst)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("destination: %d bytes, %v; want %d", len(got), err, len(data))
	}
	fi, _ := os.Stat(dst)
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("destination owner %d mode %v, want root 0600", st.Uid, fi.Mode())
	}
	if left := newStages(before, userStages(u.UID)); len(left) != 0 {
		t.Errorf("staging left in /tmp after the retried upload: %v", left)
	}
	noStaging(t, dir)
}

func newStages(before, now []string) []string {
	var out []string
	for _, p := range now {
		if !slices.Contains(before, p) {
			out = append(out, p)
		}
	}
	return out
}

// userStages lists /tmp staging directories owned by uid.
func userStages(uid int) []string {
	m, _ := filepath.Glob("/tmp/.kubewright-upload-*")
	var out []string
	for _, p := range m {
		if fi, err := os.Stat(p); err == nil && int(fi.Sys().(*syscall.Stat_t).Uid) == uid {
			out = append(out, p)
		}
	}
	return out
}

// TestOpenSSHCommandCutNamesTheReason: a command whose connection dies
// because the host stopped answering (every sshd process frozen, so not
// even keepalives are answered) fails with ErrConnectionLost and says why,
// within the keepalive budget rather than hanging.
func TestOpenSSHCommandCutNamesTheReason(t *testing.T) {
	sshd := remotetest.StartOpenSSH(t)
	cfg := sshd.Config("host1")
	cfg.KeepAliveInterval, cfg.KeepAliveCountMax = 200*time.Millisecond, 3
	h := dial(t, cfg)
	marker := filepath.Join(t.TempDir(), "started")
	done := make(chan error, 1)
	go func() {
		_, err := h.Exec(context.Background(), "echo x > "+marker+"; sleep 30")
		done <- err
	}()
	waitFor(t, "the command to start", 10*time.Second, func() bool {
		b, _ := os.ReadFile(marker)
		return len(b) > 0
	})
	sshd.Freeze()
	start := time.Now()
	select {
	case err := <-done:
		if !errors.Is(err, remote.ErrConnectionLost) {
			t.Fatalf("err = %v, want ErrConnectionLost", err)
		}
		if !strings.Contains(err.Error(), "no keepalive reply within 600ms") || !strings.Contains(err.Error(), "on host1") {
			t.Errorf("error does not say the host stopped answering: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Exec hung on a host that stopped answering")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("noticed after %s; the keepalive budget is 600ms", d)
	}
}
