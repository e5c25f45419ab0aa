package stepkit

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/kubewright/kubewright/installer/engine"
)

// Unit manages one systemd service: its unit file, the config files it reads,
// and its enabled/active state.
type Unit struct {
	// Name is the unit name, e.g. "containerd.service".
	Name string
	// Content is the unit file; nil means the unit comes from a package and
	// only its state (and ConfigFiles) are managed.
	Content []byte
	// Dir holds the unit file; default /etc/systemd/system.
	Dir string
	// ConfigFiles are read by the service at start: when one changes the
	// service is restarted, otherwise a running service is left alone.
	ConfigFiles []File
	// Systemctl is the command used to talk to systemd; default "systemctl".
	// Tests point it at a fake because the test machine has no systemd.
	Systemctl string
	// ActiveTimeout is how long Apply waits for the unit to become active
	// after a start or restart; default 30s.
	ActiveTimeout time.Duration
}

// Change actions a Unit plans besides file creates/updates.
const (
	ActionEnable  = "enable"
	ActionStart   = "start"
	ActionRestart = "restart"
)

func (u Unit) systemctl() string {
	if u.Systemctl != "" {
		return u.Systemctl
	}
	return "systemctl"
}

// UnitPath is where the unit file lives on the host.
func (u Unit) UnitPath() string {
	dir := u.Dir
	if dir == "" {
		dir = "/etc/systemd/system"
	}
	return strings.TrimRight(dir, "/") + "/" + u.Name
}

func (u Unit) files() []File {
	var fs []File
	if u.Content != nil {
		fs = append(fs, File{Path: u.UnitPath(), Content: u.Content, Mode: 0o644})
	}
	return append(fs, u.ConfigFiles...)
}

// UnitState is what systemctl reported.
type UnitState struct {
	Enabled bool // is-enabled said enabled, static, alias, or generated
	Active  bool
	Raw     string
}

// parseUnitState reads the output of `is-enabled; is-active`: one word each.
// Non-zero exits are expected (disabled/inactive) so the script always prints.
func parseUnitState(out string) (UnitState, error) {
	lines := strings.Fields(out)
	if len(lines) != 2 {
		return UnitState{}, fmt.Errorf("unexpected systemctl output %q", out)
	}
	st := UnitState{Raw: strings.Join(lines, " ")}
	switch lines[0] {
	case "enabled", "enabled-runtime", "static", "alias", "generated", "indirect":
		st.Enabled = true
	}
	st.Active = lines[1] == "active"
	return st, nil
}

// State asks systemd whether the unit is enabled and active.
func (u Unit) State(ctx context.Context, t *engine.Target) (UnitState, error) {
	sc := u.systemctl()
	n := Quote(u.Name)
	script := fmt.Sprintf(`e=$(%[1]s is-enabled %[2]s 2>/dev/null); echo "${e:-unknown}"; a=$(%[1]s is-active %[2]s 2>/dev/null); echo "${a:-unknown}"`, sc, n)
	out, err := RunAsRoot(ctx, t, script)
	if err != nil {
		return UnitState{}, fmt.Errorf("query unit %s: %w", u.Name, err)
	}
	return parseUnitState(out)
}

// Plan returns file changes plus enable and start/restart as needed. A
// running service whose files did not change gets no restart: a re-run must
// not bounce etcd or the apiserver for nothing.
func (u Unit) Plan(ctx context.Context, t *engine.Target) ([]engine.Change, error) {
	changes, err := PlanFiles(ctx, t, u.files())
	if err != nil {
		return nil, err
	}
	st, err := u.State(ctx, t)
	if err != nil {
		return nil, err
	}
	if !st.Enabled {
		changes = append(changes, engine.Change{Action: ActionEnable, Object: u.Name})
	}
	switch {
	case !st.Active:
		changes = append(changes, engine.Change{Action: ActionStart, Object: u.Name, Detail: "not active"})
	case len(changes) > 0 && hasFileChange(changes):
		changes = append(changes, engine.Change{Action: ActionRestart, Object: u.Name, Detail: "configuration changed"})
	}
	return changes, nil
}

func hasFileChange(cs []engine.Change) bool {
	for _, c := range cs {
		if c.Action == "create" || c.Action == "update" {
			return true
		}
	}
	return false
}

// Apply writes the planned files, reloads systemd only when the unit file
// changed, enables, starts or restarts, then waits until the unit is active.
func (u Unit) Apply(ctx context.Context, t *engine.Target, plan []engine.Change) error {
	written, err := ApplyFiles(ctx, t, u.files(), plan)
	if err != nil {
		return fmt.Errorf("unit %s: %w", u.Name, err)
	}
	sc := u.systemctl()
	n := Quote(u.Name)
	var cmds []string
	for _, p := range written {
		if p == u.UnitPath() {
			cmds = append(cmds, sc+" daemon-reload")
		}
	}
	restart := false
	for _, c := range plan {
		if c.Object != u.Name {
			continue
		}
		switch c.Action {
		case ActionEnable:
			cmds = append(cmds, sc+" enable "+n)
		case ActionStart:
			cmds = append(cmds, sc+" start "+n)
			restart = true
		case ActionRestart:
			cmds = append(cmds, sc+" restart "+n)
			restart = true
		}
	}
	if len(cmds) == 0 {
		return nil
	}
	if _, err := RunAsRoot(ctx, t, strings.Join(cmds, " && ")); err != nil {
		return fmt.Errorf("unit %s: %w", u.Name, err)
	}
	if restart {
		return u.WaitActive(ctx, t)
	}
	return nil
}

// WaitActive polls is-active until the unit is active or ActiveTimeout
// passes; a unit that starts and crashes is reported with its last state.
func (u Unit) WaitActive(ctx context.Context, t *engine.Target) error {
	timeout := u.ActiveTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	deadline := time.Now().Add(timeout)
	delay := 200 * time.Millisecond
	for {
		st, err := u.State(ctx, t)
		if err != nil {
			return err
		}
		if st.Active {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("unit %s not active after %s (state %q); see journalctl -u %s", u.Name, timeout, st.Raw, u.Name)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for unit %s: %w", u.Name, ctx.Err())
		case <-time.After(delay):
		}
		if delay < 2*time.Second {
			delay *= 2
		}
	}
}
