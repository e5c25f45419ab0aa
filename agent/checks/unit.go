package checks

import (
	"context"
	"strings"
	"time"

	"github.com/kubewright/kubewright/agent"
)

const (
	// ReasonUnitInactive: the systemd unit is not active; the message says
	// its state (inactive, failed, activating, ...).
	ReasonUnitInactive = "UnitInactive"
	// ReasonSystemctlFailed: systemctl gave no state, so the check cannot
	// tell (no systemd, no bus).
	ReasonSystemctlFailed = "SystemctlFailed"
)

// Unit checks that one systemd unit is active. It serves the services
// without a health endpoint of their own (keepalived, kube-proxy): for
// them, "systemd runs it" is the best local signal.
type Unit struct {
	// Unit is the systemd unit, e.g. "keepalived.service".
	Unit string
	// CheckName is the check's name ("keepalived", "kube-proxy"); empty
	// means Unit without its ".service" suffix.
	CheckName string
	// Runner runs systemctl; Exec when nil.
	Runner Runner
	// Timeout bounds systemctl (default 3s, ending before the check's
	// context).
	Timeout time.Duration
}

func (u Unit) Name() string {
	if u.CheckName != "" {
		return u.CheckName
	}
	return strings.TrimSuffix(u.Unit, ".service")
}

func (u Unit) Run(ctx context.Context) agent.Result {
	if u.Unit == "" || strings.HasPrefix(u.Unit, "-") {
		return unknownf(ReasonInvalidConfig, "systemd unit check: unit name %q is not usable", u.Unit)
	}
	what := "systemd unit " + u.Unit
	pctx, cancel, timeout := probeContext(ctx, u.Timeout)
	defer cancel()
	// is-active exits non-zero for every state but active, and still
	// prints the state: the state is the answer, the exit code is not an
	// error here.
	out, err := u.Runner.orDefault()(pctx, "systemctl", "is-active", "--", u.Unit)
	if ctx.Err() != nil {
		return canceled(ctx, what)
	}
	state := firstLine(out)
	switch state {
	case "active", "reloading", "refreshing":
		return okf("%s is %s", what, state)
	case "":
		if err == nil {
			return unknownf(ReasonSystemctlFailed, "%s: systemctl is-active printed no state", what)
		}
		return unknownf(ReasonSystemctlFailed, "%s: systemctl is-active failed: %s", what, describe(err, timeout))
	}
	return problemf(ReasonUnitInactive, "%s is %s", what, state)
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return strings.TrimSpace(s)
}
