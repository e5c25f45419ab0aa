// Package agent is kubewright-agent's core: it runs checks on an interval,
// turns their results into lasting states with hysteresis (so a blip is not a
// problem), and walks a repair ladder for lasting problems within a
// cluster-wide budget. Checks live in agent/checks (one per file), the
// cluster-wide safety (repair budget Lease, etcd quorum guard) in
// agent/safety. Nothing here exits the process on a failed or crashed check:
// a check that panics or overruns its timeout is Unknown.
package agent

import (
	"context"
	"time"
)

// Status is what one run of a check found.
type Status string

const (
	// OK: the thing checked is healthy.
	OK Status = "OK"
	// Problem: the check ran and found the thing unhealthy.
	Problem Status = "Problem"
	// Unknown: the check could not tell (it crashed, timed out, or what it
	// needs to look is missing). Unknown never triggers a repair.
	Unknown Status = "Unknown"
)

// Result is one run's finding. Reason is a short CamelCase word for machines
// (it becomes a NodeCondition reason); Message is for people and must never
// hold a secret.
type Result struct {
	Status  Status
	Reason  string
	Message string
}

// Check looks at one thing on this node. Run must honour ctx (the runner
// gives it the check's timeout) and should not panic; if it does, the runner
// records Unknown.
type Check interface {
	Name() string
	Run(ctx context.Context) Result
}

// Repair is one rung of a check's repair ladder: a single, safe action, such
// as restarting one unit. Scope says which safety gates it must pass.
type Repair interface {
	Name() string
	Scope() Scope
	Act(ctx context.Context) error
}

// Scope classifies a repair for the safety gates.
type Scope string

const (
	// ScopeNode: a local action on this node (restart kubelet, prune images).
	ScopeNode Scope = "node"
	// ScopeControlPlane: touches a control-plane component; at most one
	// master at a time cluster-wide.
	ScopeControlPlane Scope = "control-plane"
	// ScopeEtcd: touches etcd; needs the quorum guard and the
	// control-plane slot.
	ScopeEtcd Scope = "etcd"
)

// UnitStarter tells when a systemd unit last started, so cooldowns are
// measured from the unit's own last start (a unit someone else restarted a
// moment ago is not restarted again).
type UnitStarter interface {
	LastStart(ctx context.Context, unit string) (time.Time, error)
}

// Gate admits a repair under the cluster-wide safety rules (the repair
// budget Lease, one master at a time for control-plane and etcd work, the
// etcd quorum guard, the offline rate limit). Acquire returns a release
// function to call when the repair is done, or a *BlockedError saying why
// the repair must wait; any other error means the gate could not decide and
// the repair also waits.
type Gate interface {
	Acquire(ctx context.Context, repair string, scope Scope) (release func(), err error)
}

// BlockedError is a repair held back by a safety rule. Rule names the rule
// ("budget", "control-plane", "quorum", "offline-rate"), for metrics.
type BlockedError struct {
	Rule   string
	Reason string
}

func (e *BlockedError) Error() string { return "blocked by " + e.Rule + ": " + e.Reason }
