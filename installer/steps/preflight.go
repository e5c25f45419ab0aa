package steps

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kubewright/kubewright/installer/engine"
)

// Status is the outcome of one preflight check.
type Status string

// Check statuses. fail stops an install; warn is printed and the install goes
// on; skip means the check could not run in this context (e.g. cross-host
// checks inside a playbook that has no other hosts' facts).
const (
	StatusPass Status = "pass"
	StatusWarn Status = "warn"
	StatusFail Status = "fail"
	StatusSkip Status = "skip"
)

// Preflight check names, in the order they are reported.
const (
	CheckSudo         = "sudo"
	CheckOS           = "os"
	CheckKernel       = "kernel"
	CheckSwap         = "swap"
	CheckResources    = "resources"
	CheckCommands     = "commands"
	CheckModules      = "kernel-modules"
	CheckPorts        = "ports"
	CheckClock        = "clock"
	CheckHostname     = "unique-hostname"
	CheckMachineID    = "unique-machine-id"
	CheckAddress      = "address"
	CheckVIPInterface = "vip-interface"
	CheckVIPFree      = "vip-free"
)

// CheckResult is one row of the preflight table.
type CheckResult struct {
	Host   string `json:"host"`
	Check  string `json:"check"`
	Status Status `json:"status"`
	Reason string `json:"reason"`
}

// verdict is a check's outcome before it is labelled with host and check.
type verdict struct {
	status Status
	reason string
}

func pass(format string, args ...any) verdict {
	return verdict{StatusPass, fmt.Sprintf(format, args...)}
}
func warn(format string, args ...any) verdict {
	return verdict{StatusWarn, fmt.Sprintf(format, args...)}
}
func fail(format string, args ...any) verdict {
	return verdict{StatusFail, fmt.Sprintf(format, args...)}
}
func skip(format string, args ...any) verdict {
	return verdict{StatusSkip, fmt.Sprintf(format, args...)}
}

// PeerInfo is what checks need beyond the host itself.
type PeerInfo struct {
	// Facts holds every inventory host's facts by host name, this host
	// included. Nil turns the cross-host checks into skips: uniqueness cannot
	// be judged from one host.
	Facts map[string]*engine.Facts
	// Now is the operator's clock (nil: time.Now); tests inject a skewed one.
	Now func() time.Time
	// MaxClockSkew defaults to DefaultMaxClockSkew.
	MaxClockSkew time.Duration
}

// DefaultMaxClockSkew is the largest skew against the operator that passes:
// certificates kubewright signs are valid from "now" on the operator's clock,
// and etcd's leases and TLS both misbehave with clocks seconds apart.
const DefaultMaxClockSkew = 2 * time.Second

// PeersSharedKey is the engine.SharedData key under which a runner may
// publish *PeerInfo for the preflight step; FactsSharedKey is the fallback
// key for a map[string]*engine.Facts of every host, which the engine
// publishes on every run (engine.SharedFactsKey), so preflight inside a
// playbook judges uniqueness across all the run's hosts.
const (
	PeersSharedKey = "preflight.peers"
	FactsSharedKey = engine.SharedFactsKey
)

// RunPreflight runs every check for one host and returns one result per
// check that applies to the host's roles. It never returns an error: a probe
// that cannot run is a failed check with the reason, so the operator sees a
// complete table instead of the first problem.
func RunPreflight(ctx context.Context, t *engine.Target, peers PeerInfo) []CheckResult {
	name := t.Host.Name()
	var out []CheckResult
	add := func(check string, v verdict) {
		out = append(out, CheckResult{Host: name, Check: check, Status: v.status, Reason: v.reason})
	}
	add(CheckSudo, checkSudo(ctx, t))
	f := t.Facts
	if f == nil {
		f = &engine.Facts{}
	}
	add(CheckOS, checkOS(f))
	add(CheckKernel, checkKernel(f.Kernel))
	add(CheckSwap, checkSwap(f.SwapMiB))
	add(CheckResources, checkResources(f, hostRoles(t)))
	add(CheckCommands, checkCommands(ctx, t))
	add(CheckModules, checkModules(ctx, t))
	add(CheckPorts, checkPorts(ctx, t))
	add(CheckClock, checkClock(ctx, t, peers))
	add(CheckHostname, checkUniqueHostname(t, peers.Facts))
	add(CheckMachineID, checkUniqueMachineID(t, peers.Facts))
	add(CheckAddress, checkAddress(t, peers.Facts))
	if isMaster(t) {
		add(CheckVIPInterface, checkVIPInterface(t, f))
		add(CheckVIPFree, checkVIPFree(ctx, t, peers.Facts))
	}
	return out
}

// peersFromShared finds peer facts a runner published for this run.
func peersFromShared(t *engine.Target) PeerInfo {
	if t.Shared == nil {
		return PeerInfo{}
	}
	if v, ok := t.Shared.Get(PeersSharedKey); ok {
		if p, ok := v.(*PeerInfo); ok && p != nil {
			return *p
		}
	}
	if v, ok := t.Shared.Get(FactsSharedKey); ok {
		if m, ok := v.(map[string]*engine.Facts); ok {
			return PeerInfo{Facts: m}
		}
	}
	return PeerInfo{}
}

// Preflight is the `preflight` step: its Plan runs every check and fails the
// host when any check fails, so an install stops before it changes anything.
// It never plans changes: fixes belong to the steps that own them (swap-off,
// kernel-modules, sysctl, packages).
type Preflight struct{}

// Name implements engine.Step.
func (Preflight) Name() string { return "preflight" }

// Plan runs the checks; warnings are logged, failures become the error.
func (Preflight) Plan(ctx context.Context, t *engine.Target) ([]engine.Change, error) {
	results := RunPreflight(ctx, t, peersFromShared(t))
	var failed []string
	for _, r := range results {
		switch r.Status {
		case StatusFail:
			failed = append(failed, r.Check+": "+r.Reason)
		case StatusWarn:
			if t.Log != nil {
				t.Log.Warn("preflight warning", "check", r.Check, "reason", r.Reason)
			}
		}
	}
	if len(failed) > 0 {
		return nil, fmt.Errorf("preflight failed on %s: %s", t.Host.Name(), strings.Join(failed, "; "))
	}
	return nil, nil
}

// Apply is never called with a non-empty plan.
func (Preflight) Apply(context.Context, *engine.Target, []engine.Change) error {
	return errors.New("preflight plans no changes")
}
