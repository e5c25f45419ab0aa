// Package stepkittest runs steps against this machine's real shell inside a
// temp directory: a Host whose Exec is /bin/sh and whose Upload writes the
// literal path, plus a Target whose Root (Vars["root"]) is the temp dir, so
// every path a step touches lands under it and never in the real /etc.
package stepkittest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kubewright/kubewright/installer/engine"
	"github.com/kubewright/kubewright/installer/remote"
	"github.com/kubewright/kubewright/installer/steps/stepkit"
)

// ExitError is a non-zero exit.
type ExitError struct {
	Code   int
	Stderr string
}

func (e *ExitError) Error() string {
	return fmt.Sprintf("exit status %d: %s", e.Code, strings.TrimSpace(e.Stderr))
}

// Host runs commands with the local /bin/sh. Sudo is ignored: tests own the
// files they touch.
type Host struct {
	HostName string
	// Env is added to every command (e.g. PATH with fake tools first).
	Env []string

	mu       sync.Mutex
	commands []string
	uploads  []string
}

var _ remote.Host = (*Host)(nil)

// Name implements remote.Host.
func (h *Host) Name() string { return h.HostName }

// Commands returns the commands run so far.
func (h *Host) Commands() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.commands...)
}

// Uploads returns the paths uploaded (written or skipped) so far.
func (h *Host) Uploads() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.uploads...)
}

// Reset forgets recorded commands and uploads.
func (h *Host) Reset() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.commands, h.uploads = nil, nil
}

// Exec implements remote.Host.
func (h *Host) Exec(ctx context.Context, cmd string, opts ...remote.ExecOption) (string, error) {
	h.mu.Lock()
	h.commands = append(h.commands, cmd)
	h.mu.Unlock()
	o := remote.BuildExecOptions(opts...)
	c := exec.CommandContext(ctx, "/bin/sh", "-c", cmd)
	c.Env = append(os.Environ(), h.Env...)
	for k, v := range o.Env {
		c.Env = append(c.Env, k+"="+v)
	}
	c.Stdin = o.Stdin
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	c.Cancel = func() error { return syscall.Kill(-c.Process.Pid, syscall.SIGKILL) }
	c.WaitDelay = time.Second
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	err := c.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return stdout.String(), &ExitError{Code: ee.ExitCode(), Stderr: stderr.String()}
	}
	return stdout.String(), err
}

// Upload implements remote.Host: temp file then rename, skipped when content
// and mode match; owner "user:group" is applied with chown.
func (h *Host) Upload(ctx context.Context, src io.Reader, dst string, mode fs.FileMode, opts ...remote.UploadOption) (bool, error) {
	h.mu.Lock()
	h.uploads = append(h.uploads, dst)
	h.mu.Unlock()
	o := remote.BuildUploadOptions(opts...)
	data, err := io.ReadAll(src)
	if err != nil {
		return false, err
	}
	if old, err := os.ReadFile(dst); err == nil {
		if st, err := os.Stat(dst); err == nil && st.Mode().Perm() == mode.Perm() && sha256.Sum256(old) == sha256.Sum256(data) && o.Owner == "" {
			return false, nil
		}
	}
	tmp := dst + ".tmp"
	if err := os.WriteFile(tmp, data, mode.Perm()); err != nil {
		return false, err
	}
	if err := os.Chmod(tmp, mode.Perm()); err != nil {
		return false, err
	}
	if o.Owner != "" {
		if err := chown(tmp, o.Owner); err != nil {
			return false, err
		}
	}
	return true, os.Rename(tmp, dst)
}

func chown(p, owner string) error {
	u, g, _ := strings.Cut(owner, ":")
	uu, err := user.Lookup(u)
	if err != nil {
		return err
	}
	gg, err := user.LookupGroup(g)
	if err != nil {
		return err
	}
	var uid, gid int
	fmt.Sscan(uu.Uid, &uid)
	fmt.Sscan(gg.Gid, &gid)
	return os.Chown(p, uid, gid)
}

// Download implements remote.Host.
func (h *Host) Download(_ context.Context, src string) ([]byte, error) { return os.ReadFile(src) }

// Close implements remote.Host.
func (h *Host) Close() error { return nil }

// NewTarget returns a target whose Root is a fresh temp dir, with a Host
// named name and the given facts.
func NewTarget(t testing.TB, name string, facts *engine.Facts) (*engine.Target, *Host, string) {
	t.Helper()
	root := t.TempDir()
	h := &Host{HostName: name}
	return &engine.Target{
		Host:  h,
		Facts: facts,
		Vars:  map[string]string{stepkit.RootVar: root},
	}, h, root
}

// WriteFile creates root/p with content and mode, making parent dirs.
func WriteFile(t testing.TB, root, p, content string, mode fs.FileMode) {
	t.Helper()
	full := filepath.Join(root, p)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(full, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(full, mode); err != nil {
		t.Fatal(err)
	}
}

// ReadFile returns root/p's content ("" and false when missing).
func ReadFile(t testing.TB, root, p string) (string, bool) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, p))
	if errors.Is(err, fs.ErrNotExist) {
		return "", false
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(b), true
}

// FakeTool writes an executable shell script root/bin/name and returns its path.
func FakeTool(t testing.TB, root, name, script string) string {
	t.Helper()
	p := filepath.Join(root, "bin", name)
	WriteFile(t, root, "/bin/"+name, "#!/bin/sh\n"+script+"\n", 0o755)
	return p
}
