package lab

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// imageScriptVersion is part of the cache key: bump it whenever buildImage or
// finishImage changes what ends up in the image, so old caches are not reused.
const imageScriptVersion = "3"

// ImageSuite is the Debian release machines run.
const ImageSuite = "bookworm"

// ImagePackages are installed into the image on top of minbase: what a
// machine needs to boot (systemd, dbus, sshd) and what install's steps expect
// on a node, so a lab needs no network beyond its bridge. All exist in bookworm.
var ImagePackages = []string{
	"systemd", "systemd-sysv", "dbus", "openssh-server", "iproute2", "sudo",
	"containerd", "runc", "containernetworking-plugins",
	"keepalived", "haproxy",
	"iptables", "nftables", "ebtables", "conntrack", "socat", "ipset", "ethtool",
	"kmod", "procps", "ca-certificates", "curl", "openssl", "iputils-ping", "less",
}

// imageKey names a cache entry: the same package list and script version
// always give the same image, whatever mirror it came from.
func imageKey(packages []string) string {
	p := append([]string(nil), packages...)
	sort.Strings(p)
	sum := sha256.Sum256([]byte("script=" + imageScriptVersion + "\nsuite=" + ImageSuite + "\npackages=" + strings.Join(p, ",") + "\n"))
	return hex.EncodeToString(sum[:])[:16]
}

// imageInfo is written next to the rootfs for people and for reuse checks.
type imageInfo struct {
	Key       string    `json:"key"`
	Suite     string    `json:"suite"`
	Mirror    string    `json:"mirror"`
	Packages  []string  `json:"packages"`
	Built     time.Time `json:"built"`
	BuildTime string    `json:"buildTime"`
}

// ensureImage returns the rootfs of the cached image, building it first when
// missing. The build goes to a temporary directory that is renamed into place,
// so a crashed build never leaves a half image that later looks cached; a lock
// file serialises concurrent builds.
func (m *Manager) ensureImage(ctx context.Context) (rootfs string, built bool, err error) {
	key := imageKey(ImagePackages)
	base := filepath.Join(m.cfg.CacheDir, "lab-image")
	final := filepath.Join(base, key)
	if _, err := os.Stat(filepath.Join(final, "image.json")); err == nil {
		return filepath.Join(final, "rootfs"), false, nil
	}
	if err := os.MkdirAll(base, 0o755); err != nil {
		return "", false, fmt.Errorf("create image cache: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(base, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", false, fmt.Errorf("open image cache lock: %w", err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return "", false, fmt.Errorf("lock image cache: %w", err)
	}
	defer unix.Flock(int(lock.Fd()), unix.LOCK_UN)
	if _, err := os.Stat(filepath.Join(final, "image.json")); err == nil {
		return filepath.Join(final, "rootfs"), false, nil // another process built it
	}

	mirror := hostMirror("/", ImageSuite)
	tmp, err := os.MkdirTemp(base, ".build-"+key+"-")
	if err != nil {
		return "", false, fmt.Errorf("create image build dir: %w", err)
	}
	defer os.RemoveAll(tmp) // no-op after the rename
	logPath := filepath.Join(base, "build-"+key+".log")
	fmt.Fprintf(m.cfg.Out, "building lab image %s (debootstrap %s from %s, about a minute; log %s)\n", key, ImageSuite, mirror, logPath)
	start := time.Now()
	rootfs = filepath.Join(tmp, "rootfs")
	logf, err := os.Create(logPath)
	if err != nil {
		return "", false, fmt.Errorf("create image build log: %w", err)
	}
	defer logf.Close()
	args := []string{"--variant=minbase", "--include=" + strings.Join(ImagePackages, ","), ImageSuite, rootfs, mirror}
	cmd := exec.CommandContext(ctx, "debootstrap", args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Run(); err != nil {
		return "", false, fmt.Errorf("debootstrap %s: %w; last lines of %s:\n%s", strings.Join(args, " "), err, logPath, tailFile(logPath, 15))
	}
	if err := finishImage(rootfs, mirror); err != nil {
		return "", false, fmt.Errorf("prepare lab image: %w", err)
	}
	info := imageInfo{Key: key, Suite: ImageSuite, Mirror: mirror, Packages: ImagePackages, Built: time.Now().UTC(), BuildTime: time.Since(start).Round(time.Second).String()}
	b, _ := json.MarshalIndent(info, "", "  ")
	if err := os.WriteFile(filepath.Join(tmp, "image.json"), append(b, '\n'), 0o644); err != nil {
		return "", false, fmt.Errorf("write image info: %w", err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return "", false, fmt.Errorf("move image into cache: %w", err)
	}
	fmt.Fprintf(m.cfg.Out, "lab image %s built in %s\n", key, info.BuildTime)
	return filepath.Join(final, "rootfs"), true, nil
}

// finishImage turns a fresh debootstrap into a machine template: nothing that
// must be unique per machine (host keys, machine-id) stays in it.
func finishImage(rootfs, mirror string) error {
	keys, _ := filepath.Glob(filepath.Join(rootfs, "etc/ssh/ssh_host_*"))
	for _, k := range keys {
		if err := os.Remove(k); err != nil {
			return err
		}
	}
	// An empty machine-id in the template; each machine writes its own.
	if err := os.WriteFile(filepath.Join(rootfs, "etc/machine-id"), nil, 0o444); err != nil {
		return err
	}
	_ = os.Remove(filepath.Join(rootfs, "var/lib/dbus/machine-id"))
	if err := os.Symlink("/etc/machine-id", filepath.Join(rootfs, "var/lib/dbus/machine-id")); err != nil {
		return err
	}
	files := map[string]string{
		"etc/ssh/sshd_config.d/kubewright-lab.conf": "# kubewright lab: one host key per machine, written by `lab up` and\n# recorded in the lab's known_hosts; keys only.\nHostKey /etc/ssh/ssh_host_ed25519_key\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nUseDNS no\n",
		"etc/apt/sources.list":                      fmt.Sprintf("deb %s %s main\n", mirror, ImageSuite),
	}
	for p, c := range files {
		if err := os.WriteFile(filepath.Join(rootfs, p), []byte(c), 0o644); err != nil {
			return err
		}
	}
	// Periodic jobs that only make noise and load on a lab machine.
	for _, u := range []string{"apt-daily.timer", "apt-daily-upgrade.timer", "dpkg-db-backup.timer", "e2scrub_all.timer", "fstrim.timer", "e2scrub_reap.service"} {
		link := filepath.Join(rootfs, "etc/systemd/system", u)
		_ = os.Remove(link)
		if err := os.Symlink("/dev/null", link); err != nil {
			return err
		}
	}
	return nil
}

// tailFile returns the last n lines of a file, for error messages.
func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
