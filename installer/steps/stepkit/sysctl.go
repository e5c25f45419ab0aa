package stepkit

import (
	"context"
	"fmt"
	"strings"

	"github.com/kubewright/kubewright/installer/engine"
)

// SysctlFile is where kubewright persists its kernel parameters.
const SysctlFile = "/etc/sysctl.d/99-kubewright.conf"

// KV is one sysctl key and value, e.g. net.ipv4.ip_forward = 1.
type KV struct{ Key, Value string }

// Sysctl sets kernel parameters now (via /proc/sys) and at boot (via a file in
// /etc/sysctl.d), so a reboot does not silently undo them.
type Sysctl struct {
	Values []KV
	// File defaults to SysctlFile.
	File string
}

func (s Sysctl) file() string {
	if s.File != "" {
		return s.File
	}
	return SysctlFile
}

// ProcPath maps net.ipv4.ip_forward to /proc/sys/net/ipv4/ip_forward.
func ProcPath(key string) string {
	return "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
}

// Persisted renders the sysctl.d file content.
func (s Sysctl) Persisted() []byte {
	var b strings.Builder
	b.WriteString("# Managed by kubewright: changes are overwritten on the next run.\n")
	for _, kv := range s.Values {
		fmt.Fprintf(&b, "%s = %s\n", kv.Key, kv.Value)
	}
	return []byte(b.String())
}

// normalize makes "32768\t60999" and "32768 60999" compare equal: /proc/sys
// separates multi-value parameters with tabs.
func normalize(v string) string { return strings.Join(strings.Fields(v), " ") }

const sysctlMissing = "<missing>"

// readScript prints one line per key: the current value or <missing>.
func (s Sysctl) readScript(t *engine.Target) string {
	parts := []string{`r() { if [ -r "$1" ]; then v=$(cat "$1") && printf '%s\n' "$v" | tr '\n' ' ' && echo; else echo '` + sysctlMissing + `'; fi; }`}
	for _, kv := range s.Values {
		parts = append(parts, "r "+Quote(HostPath(t, ProcPath(kv.Key))))
	}
	return strings.Join(parts, "; ")
}

// Current reads the live values; a key the kernel does not know (module not
// loaded yet) is returned as ok=false.
func (s Sysctl) Current(ctx context.Context, t *engine.Target) (map[string]string, error) {
	out, err := t.Host.Exec(ctx, s.readScript(t))
	if err != nil {
		return nil, fmt.Errorf("read sysctls: %w", err)
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) != len(s.Values) {
		return nil, fmt.Errorf("read sysctls: expected %d lines, got %q", len(s.Values), out)
	}
	cur := map[string]string{}
	for i, kv := range s.Values {
		cur[kv.Key] = strings.TrimSpace(lines[i])
	}
	return cur, nil
}

// Plan returns an update per key whose live value differs and a file change
// when the persisted file differs.
func (s Sysctl) Plan(ctx context.Context, t *engine.Target) ([]engine.Change, error) {
	if len(s.Values) == 0 {
		return nil, nil
	}
	changes, err := PlanFiles(ctx, t, []File{{Path: s.file(), Content: s.Persisted(), Mode: 0o644}})
	if err != nil {
		return nil, err
	}
	cur, err := s.Current(ctx, t)
	if err != nil {
		return nil, err
	}
	for _, kv := range s.Values {
		switch v := cur[kv.Key]; {
		case v == sysctlMissing:
			changes = append(changes, engine.Change{Action: "set", Object: "sysctl " + kv.Key, Detail: "not present yet -> " + kv.Value})
		case normalize(v) != normalize(kv.Value):
			changes = append(changes, engine.Change{Action: "set", Object: "sysctl " + kv.Key, Detail: normalize(v) + " -> " + kv.Value})
		}
	}
	return changes, nil
}

// Apply writes the persisted file and sets each planned key by writing to
// /proc/sys, which is exactly what `sysctl -w` does.
func (s Sysctl) Apply(ctx context.Context, t *engine.Target, plan []engine.Change) error {
	if _, err := ApplyFiles(ctx, t, []File{{Path: s.file(), Content: s.Persisted(), Mode: 0o644}}, plan); err != nil {
		return fmt.Errorf("persist sysctls: %w", err)
	}
	for _, kv := range s.Values {
		if !HasObject(plan, "sysctl "+kv.Key) {
			continue
		}
		p := HostPath(t, ProcPath(kv.Key))
		cmd := fmt.Sprintf("if [ ! -e %[1]s ]; then echo 'no such kernel parameter (is the module that provides it loaded? run the kernel-modules step first)' >&2; exit 1; fi; printf '%%s\\n' %[2]s > %[1]s", Quote(p), Quote(kv.Value))
		if _, err := RunAsRoot(ctx, t, cmd); err != nil {
			return fmt.Errorf("set sysctl %s=%s: %w", kv.Key, kv.Value, err)
		}
	}
	return nil
}
