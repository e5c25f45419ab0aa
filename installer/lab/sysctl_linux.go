//go:build linux

package lab

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// hostSysctlMinimums are raised (never lowered) before machines boot. inotify
// instances are counted per user across the host, and every machine's systemd,
// journald, logind, dbus and then kubelet's cAdvisor each take some: with the
// default 128 a kubelet in the fifth machine fails "inotify_init: too many
// open files". The values are the ones kind documents for the same reason.
var hostSysctlMinimums = []struct {
	Path string
	Min  int
}{
	{"/proc/sys/fs/inotify/max_user_instances", 8192},
	{"/proc/sys/fs/inotify/max_user_watches", 524288},
}

// raiseHostSysctls applies hostSysctlMinimums and says what it changed: these
// are host-global settings, so the operator must be told.
func (m *Manager) raiseHostSysctls() error {
	for _, s := range hostSysctlMinimums {
		b, err := os.ReadFile(s.Path)
		if err != nil {
			return fmt.Errorf("read %s: %w", s.Path, err)
		}
		cur, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			return fmt.Errorf("parse %s: %w", s.Path, err)
		}
		if cur >= s.Min {
			continue
		}
		name := strings.ReplaceAll(strings.TrimPrefix(s.Path, "/proc/sys/"), "/", ".")
		if err := os.WriteFile(s.Path, []byte(strconv.Itoa(s.Min)), 0o644); err != nil {
			return fmt.Errorf("raise %s to %d (machines need it): %w", name, s.Min, err)
		}
		fmt.Fprintf(m.cfg.Out, "raised host sysctl %s from %d to %d (machines and their kubelets need inotify instances)\n", name, cur, s.Min)
	}
	return nil
}
