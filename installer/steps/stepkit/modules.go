package stepkit

import (
	"context"
	"fmt"
	"strings"

	"github.com/kubewright/kubewright/installer/engine"
)

// ModulesFile makes systemd-modules-load load kubewright's modules at boot.
const ModulesFile = "/etc/modules-load.d/kubewright.conf"

// Modules loads kernel modules now and at boot.
type Modules struct {
	Names []string
	// File defaults to ModulesFile.
	File string
	// Modprobe is the load command; default "modprobe". Tests use a fake
	// because loading a module touches the real kernel.
	Modprobe string
}

func (m Modules) file() string {
	if m.File != "" {
		return m.File
	}
	return ModulesFile
}

// Persisted renders the modules-load.d file.
func (m Modules) Persisted() []byte {
	return []byte("# Managed by kubewright: changes are overwritten on the next run.\n" + strings.Join(m.Names, "\n") + "\n")
}

// loadedScript prints "NAME yes|no" per module. A module counts as present
// when /sys/module/NAME exists (loaded, or built in with parameters), when
// /proc/modules lists it (what lsmod reads), or when modules.builtin names it
// (built in without parameters: modprobe succeeds but nothing shows up).
func (m Modules) loadedScript(t *engine.Target) string {
	sys := Quote(HostPath(t, "/sys/module"))
	proc := Quote(HostPath(t, "/proc/modules"))
	lib := Quote(HostPath(t, "/lib/modules"))
	var b strings.Builder
	fmt.Fprintf(&b, `k=$(uname -r); l() { if [ -d %s/"$1" ] || grep -q "^$1 " %s 2>/dev/null || grep -q "/$1\.ko" %s/"$k"/modules.builtin 2>/dev/null; then echo "$1 yes"; else echo "$1 no"; fi; }`, sys, proc, lib)
	for _, n := range m.Names {
		fmt.Fprintf(&b, "; if %s; then echo %s yes; else l %s; fi", FeatureProbe(Root(t), n), Quote(n), Quote(n))
	}
	return b.String()
}

// FeatureProbe returns a shell test that is true when the kernel already
// provides what module name is loaded for, however it was built: a kernel
// with br_netfilter or overlay compiled in and no /lib/modules (VM and
// container kernels) has neither /sys/module/NAME nor modules.builtin, and
// modprobe fails there, yet the feature works. root prefixes the paths.
func FeatureProbe(root, name string) string {
	switch name {
	case "br_netfilter":
		return "[ -e " + Quote(root+"/proc/sys/net/bridge/bridge-nf-call-iptables") + " ]"
	case "overlay":
		return "grep -qw overlay " + Quote(root+"/proc/filesystems") + " 2>/dev/null"
	}
	return "false"
}

// parseLoaded reads loadedScript's output.
func parseLoaded(out string) map[string]bool {
	got := map[string]bool{}
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) == 2 {
			got[f[0]] = f[1] == "yes"
		}
	}
	return got
}

// Plan returns a "load" change per module not present and a file change when
// the boot-time list differs.
func (m Modules) Plan(ctx context.Context, t *engine.Target) ([]engine.Change, error) {
	if len(m.Names) == 0 {
		return nil, nil
	}
	changes, err := PlanFiles(ctx, t, []File{{Path: m.file(), Content: m.Persisted(), Mode: 0o644}})
	if err != nil {
		return nil, err
	}
	out, err := t.Host.Exec(ctx, m.loadedScript(t))
	if err != nil {
		return nil, fmt.Errorf("list kernel modules: %w", err)
	}
	loaded := parseLoaded(out)
	for _, n := range m.Names {
		if !loaded[n] {
			changes = append(changes, engine.Change{Action: "load", Object: "module " + n})
		}
	}
	return changes, nil
}

// Apply writes the boot-time list and loads the planned modules.
func (m Modules) Apply(ctx context.Context, t *engine.Target, plan []engine.Change) error {
	if _, err := ApplyFiles(ctx, t, []File{{Path: m.file(), Content: m.Persisted(), Mode: 0o644}}, plan); err != nil {
		return fmt.Errorf("persist kernel modules: %w", err)
	}
	mp := m.Modprobe
	if mp == "" {
		mp = "modprobe"
	}
	for _, n := range m.Names {
		if !HasObject(plan, "module "+n) {
			continue
		}
		if _, err := RunAsRoot(ctx, t, mp+" -- "+Quote(n)); err != nil {
			return fmt.Errorf("load kernel module %s: %w", n, err)
		}
	}
	return nil
}
