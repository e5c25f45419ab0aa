//go:build linux

package lab

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

func machineDir(labDir, machine string) string { return filepath.Join(labDir, "machines", machine) }

// mountPoints returns every mount point of this mount namespace.
func mountPoints() map[string]bool {
	out := map[string]bool{}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		if fs := strings.Fields(sc.Text()); len(fs) > 4 {
			out[unescapeMountinfo(fs[4])] = true
		}
	}
	return out
}

// mountRoot gives the machine its root: an overlay over the image (cheap and
// instant), or a reflink/full copy where overlay is refused, e.g. when the
// state directory is itself on overlayfs.
func mountRoot(ms *machineState, image, mdir string) (string, error) {
	root := filepath.Join(mdir, "root")
	upper, work := filepath.Join(mdir, "upper"), filepath.Join(mdir, "work")
	if ms.RootMode == "copy" {
		return root, nil
	}
	if mountPoints()[root] {
		return root, nil
	}
	for _, d := range []string{root, upper, work} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return "", fmt.Errorf("create %s: %w", d, err)
		}
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", image, upper, work)
	var err error
	if strings.ContainsAny(image+mdir, ",:") {
		err = errors.New("paths contain ',' or ':'")
	} else {
		err = unix.Mount("overlay", root, "overlay", 0, opts)
	}
	if err == nil {
		ms.RootMode = "overlay"
		return root, nil
	}
	if ms.RootMode == "overlay" {
		return "", fmt.Errorf("mount overlay root of %s: %w", ms.Name, err)
	}
	// First boot and overlay refused: fall back to a copy.
	_ = os.RemoveAll(upper)
	_ = os.RemoveAll(work)
	_ = os.Remove(root)
	if out, cerr := exec.Command("cp", "-a", "--reflink=auto", image, root).CombinedOutput(); cerr != nil {
		return "", fmt.Errorf("overlay root refused (%v) and copying the image failed: %w: %s", err, cerr, out)
	}
	ms.RootMode = "copy"
	return root, nil
}

// identity is what makes one machine different from the image.
type identity struct {
	Hostname      string
	Hosts         string // /etc/hosts
	AuthorizedKey []byte
}

// prepareRoot writes the machine's identity into its root. Host keys and the
// machine-id are made once (prepared marker): a restarted machine keeps them,
// so known_hosts stays valid.
func prepareRoot(root, mdir string, id identity) error {
	marker := filepath.Join(mdir, "prepared")
	if _, err := os.Stat(marker); err != nil {
		priv, pub, err := newKeyPair("root@" + id.Hostname)
		if err != nil {
			return fmt.Errorf("host key: %w", err)
		}
		mid := make([]byte, 16)
		if _, err := rand.Read(mid); err != nil {
			return err
		}
		files := []struct {
			path string
			data []byte
			mode os.FileMode
		}{
			{"etc/ssh/ssh_host_ed25519_key", priv, 0o600},
			{"etc/ssh/ssh_host_ed25519_key.pub", pub, 0o644},
			{"etc/machine-id", []byte(hex.EncodeToString(mid) + "\n"), 0o444},
			{"etc/hostname", []byte(id.Hostname + "\n"), 0o644},
		}
		for _, f := range files {
			p := filepath.Join(root, f.path)
			_ = os.Remove(p) // machine-id is read-only in the image
			if err := os.WriteFile(p, f.data, f.mode); err != nil {
				return fmt.Errorf("write %s: %w", f.path, err)
			}
		}
		if err := os.WriteFile(filepath.Join(mdir, "ssh_host_ed25519_key.pub"), pub, 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(marker, nil, 0o644); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Join(root, "root/.ssh"), 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(root, "root/.ssh/authorized_keys"), id.AuthorizedKey, 0o600); err != nil {
		return fmt.Errorf("write authorized_keys: %w", err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc/hosts"), []byte(id.Hosts), 0o644); err != nil {
		return fmt.Errorf("write /etc/hosts: %w", err)
	}
	// A guest stopped with pods running never released its host-local IPAM
	// leases; they would leak one address per restart.
	if err := os.RemoveAll(filepath.Join(root, "var/lib/cni/networks")); err != nil {
		return fmt.Errorf("clean CNI leases: %w", err)
	}
	return os.MkdirAll(filepath.Join(mdir, "containerd"), 0o711)
}

// launchScript moves the launcher into each cgroup.procs given before "--",
// then becomes the command after it. nspawn then creates its payload and
// supervisor cgroups below the machine's own.
const launchScript = `while [ "$1" != "--" ]; do echo $$ > "$1" || exit 125; shift; done; shift; exec "$@"`

// launch starts nspawn detached (own session, output to the machine's log) so
// it outlives `lab up`. The returned channel reports its exit while this
// process lives, and reaps it.
func launch(ms *machineState, args []string, cgs []cgroupDir, logPath string) (<-chan error, error) {
	shArgs := []string{"-c", launchScript, "kubewright-lab-launch"}
	for _, c := range cgs {
		shArgs = append(shArgs, filepath.Join(c.Dir, "cgroup.procs"))
	}
	shArgs = append(shArgs, "--", "systemd-nspawn")
	shArgs = append(shArgs, args...)
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open log of %s: %w", ms.Name, err)
	}
	defer logf.Close()
	fmt.Fprintf(logf, "\n=== kubewright lab: starting %s at %s\n", ms.Name, time.Now().UTC().Format(time.RFC3339))
	cmd := exec.Command("/bin/sh", shArgs...)
	cmd.Env = append(os.Environ(), "SYSTEMD_NSPAWN_API_VFS_WRITABLE=1")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Dir = "/"
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start systemd-nspawn for %s: %w", ms.Name, err)
	}
	ms.PID = cmd.Process.Pid
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	return done, nil
}

// nspawnAlive reports whether pid is still the nspawn of this machine (its
// command line names the machine's namespace), so a recycled PID is never
// mistaken for it, and never signalled.
func nspawnAlive(pid int, nsName string) bool {
	if pid <= 0 {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil || len(b) == 0 {
		return false // gone, or a zombie (empty cmdline)
	}
	return strings.Contains(string(b), "--network-namespace-path="+filepath.Join(netnsDir, nsName)+"\x00")
}

// stopMachine sends SIGTERM (nspawn then shuts the guest's systemd down
// cleanly), waits, and sends SIGKILL after timeout.
func stopMachine(ctx context.Context, ms *machineState, timeout time.Duration) error {
	if !nspawnAlive(ms.PID, ms.Netns) {
		return nil
	}
	if err := syscall.Kill(ms.PID, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("stop %s (pid %d): %w", ms.Name, ms.PID, err)
	}
	if waitGone(ctx, ms, timeout) {
		return nil
	}
	if err := syscall.Kill(ms.PID, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill %s (pid %d): %w", ms.Name, ms.PID, err)
	}
	if !waitGone(ctx, ms, 10*time.Second) {
		return fmt.Errorf("%s (pid %d) still running after SIGKILL", ms.Name, ms.PID)
	}
	return nil
}

func waitGone(ctx context.Context, ms *machineState, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if !nspawnAlive(ms.PID, ms.Netns) {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(100 * time.Millisecond):
		}
	}
	return !nspawnAlive(ms.PID, ms.Netns)
}

// unmountRoot unmounts the overlay root; lazily when something still holds it.
func unmountRoot(root string) error {
	if !mountPoints()[root] {
		return nil
	}
	var err error
	for i := 0; i < 20; i++ {
		if err = unix.Unmount(root, 0); err == nil || errors.Is(err, unix.EINVAL) {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err2 := unix.Unmount(root, unix.MNT_DETACH); err2 != nil {
		return fmt.Errorf("unmount %s: %w (lazy: %v)", root, err, err2)
	}
	return nil
}
