// Package enginetest has fakes for testing the engine and steps without SSH:
// a fleet of hosts that run commands with a real local /bin/sh, each in its
// own temp directory, and an in-memory inventory with a selector.
package enginetest

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
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kubewright/kubewright/installer/inventory"
	"github.com/kubewright/kubewright/installer/remote"
)

// ExitError is returned by Exec when the command exits non-zero.
type ExitError struct {
	Code   int
	Stderr string
}

func (e *ExitError) Error() string {
	return fmt.Sprintf("exit status %d: %s", e.Code, strings.TrimSpace(e.Stderr))
}

// Fleet hands out fake hosts and implements the engine's Connector. It
// tracks how many operations run at once across all hosts, so tests can
// check the engine's concurrency limit.
type Fleet struct {
	root string

	// Latency delays every Exec (respecting ctx), to make overlap observable.
	Latency time.Duration

	mu         sync.Mutex
	hosts      map[string]*Host
	connectErr map[string]error

	connects    atomic.Int64
	inFlight    atomic.Int64
	maxInFlight atomic.Int64
}

// NewFleet makes a fleet whose hosts live under t.TempDir().
func NewFleet(t testing.TB) *Fleet {
	return &Fleet{root: t.TempDir(), hosts: map[string]*Host{}, connectErr: map[string]error{}}
}

// FailConnect makes Connect to name fail with err.
func (f *Fleet) FailConnect(name string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.connectErr[name] = err
}

// Connect implements engine.Connector.
func (f *Fleet) Connect(ctx context.Context, h *inventory.Host) (remote.Host, error) {
	f.connects.Add(1)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	err := f.connectErr[h.Name]
	f.mu.Unlock()
	if err != nil {
		return nil, err
	}
	fh := f.Host(h.Name)
	fh.connects.Add(1)
	return fh, nil
}

// Host returns the fake host for name, creating its directory on first use.
func (f *Fleet) Host(name string) *Host {
	f.mu.Lock()
	defer f.mu.Unlock()
	if h, ok := f.hosts[name]; ok {
		return h
	}
	dir := filepath.Join(f.root, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		panic(fmt.Sprintf("enginetest: create host dir: %v", err)) // t.TempDir is writable; this is a broken machine
	}
	h := &Host{name: name, Dir: dir, fleet: f}
	f.hosts[name] = h
	return h
}

// Connects counts Connect calls over the fleet.
func (f *Fleet) Connects() int { return int(f.connects.Load()) }

// MaxInFlight is the largest number of Exec calls that overlapped.
func (f *Fleet) MaxInFlight() int { return int(f.maxInFlight.Load()) }

func (f *Fleet) enter() func() {
	n := f.inFlight.Add(1)
	for {
		m := f.maxInFlight.Load()
		if n <= m || f.maxInFlight.CompareAndSwap(m, n) {
			break
		}
	}
	return func() { f.inFlight.Add(-1) }
}

// Host is a fake remote.Host: commands run under /bin/sh -c in Dir with
// HOME=Dir. Upload and Download paths are relative to Dir; absolute paths are
// rooted at Dir, so a step writing /etc/x touches Dir/etc/x, never the machine.
type Host struct {
	name  string
	Dir   string
	fleet *Fleet

	// FailExec, if set, is consulted before each command; a non-nil error
	// is returned instead of running it.
	FailExec func(cmd string) error

	mu       sync.Mutex
	commands []string
	uploads  int
	connects atomic.Int64
	closes   atomic.Int64
}

var _ remote.Host = (*Host)(nil)

// Name implements remote.Host.
func (h *Host) Name() string { return h.name }

// Path maps a remote path into the host directory.
func (h *Host) Path(p string) string {
	return filepath.Join(h.Dir, p) // Join roots absolute paths at Dir too
}

// Commands returns every command Exec was asked to run, in order.
func (h *Host) Commands() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.commands...)
}

// CountCommands counts commands containing substr.
func (h *Host) CountCommands(substr string) int {
	n := 0
	for _, c := range h.Commands() {
		if strings.Contains(c, substr) {
			n++
		}
	}
	return n
}

// Uploads counts Upload calls.
func (h *Host) Uploads() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.uploads
}

// Connects and Closes count connections opened to and closed on this host.
func (h *Host) Connects() int { return int(h.connects.Load()) }

// Closes counts Close calls.
func (h *Host) Closes() int { return int(h.closes.Load()) }

// Exec implements remote.Host with a real shell.
func (h *Host) Exec(ctx context.Context, cmd string, opts ...remote.ExecOption) (string, error) {
	defer h.fleet.enter()()
	h.mu.Lock()
	h.commands = append(h.commands, cmd)
	fail := h.FailExec
	h.mu.Unlock()
	if d := h.fleet.Latency; d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return "", ctx.Err()
		}
	}
	if fail != nil {
		if err := fail(cmd); err != nil {
			return "", err
		}
	}
	o := remote.BuildExecOptions(opts...)
	c := exec.CommandContext(ctx, "/bin/sh", "-c", cmd)
	c.Dir = h.Dir
	c.Env = append(os.Environ(), "HOME="+h.Dir)
	for _, k := range sortedKeys(o.Env) {
		c.Env = append(c.Env, k+"="+o.Env[k])
	}
	c.Stdin = o.Stdin
	// Kill the whole process group on cancel: a shell's children would
	// otherwise keep the output pipes open and Wait would hang.
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	c.Cancel = func() error { return syscall.Kill(-c.Process.Pid, syscall.SIGKILL) }
	c.WaitDelay = time.Second
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	err := c.Run()
	if ctx.Err() != nil {
		return stdout.String(), ctx.Err()
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return stdout.String(), &ExitError{Code: ee.ExitCode(), Stderr: stderr.String()}
	}
	if err != nil {
		return stdout.String(), fmt.Errorf("run %q on %s: %w", cmd, h.name, err)
	}
	return stdout.String(), nil
}

// Upload implements remote.Host: temp file then rename, skipped when content
// and mode already match.
func (h *Host) Upload(ctx context.Context, src io.Reader, dst string, mode fs.FileMode, _ ...remote.UploadOption) (bool, error) {
	defer h.fleet.enter()()
	h.mu.Lock()
	h.uploads++
	h.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return false, err
	}
	data, err := io.ReadAll(src)
	if err != nil {
		return false, fmt.Errorf("upload %s to %s: read source: %w", dst, h.name, err)
	}
	p := h.Path(dst)
	if old, err := os.ReadFile(p); err == nil {
		if st, err := os.Stat(p); err == nil && st.Mode().Perm() == mode.Perm() && sha256.Sum256(old) == sha256.Sum256(data) {
			return false, nil
		}
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return false, fmt.Errorf("upload %s to %s: %w", dst, h.name, err)
	}
	tmp := p + ".kubewright-tmp"
	if err := os.WriteFile(tmp, data, mode.Perm()); err != nil {
		return false, fmt.Errorf("upload %s to %s: %w", dst, h.name, err)
	}
	if err := os.Chmod(tmp, mode.Perm()); err != nil {
		return false, fmt.Errorf("upload %s to %s: %w", dst, h.name, err)
	}
	if err := os.Rename(tmp, p); err != nil {
		return false, fmt.Errorf("upload %s to %s: %w", dst, h.name, err)
	}
	return true, nil
}

// Download implements remote.Host.
func (h *Host) Download(ctx context.Context, src string) ([]byte, error) {
	defer h.fleet.enter()()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(h.Path(src))
	if err != nil {
		return nil, fmt.Errorf("download %s from %s: %w", src, h.name, err)
	}
	return data, nil
}

// Close implements remote.Host.
func (h *Host) Close() error {
	h.closes.Add(1)
	return nil
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
