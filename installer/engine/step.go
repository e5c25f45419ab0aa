// Package engine runs playbooks: plays × hosts with bounded concurrency, serial
// batches, retries, max-fail, dry-run plans, a journal and progress events. It is
// the only package that knows about parallelism; steps only see one Target.
package engine

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/kubewright/kubewright/installer/inventory"
	"github.com/kubewright/kubewright/installer/remote"
)

// Step changes one thing on one host and can say what it would change first.
type Step interface {
	Name() string
	// Plan inspects the host and returns what Apply would change; an empty
	// plan means the host is up to date and Apply is not called.
	Plan(ctx context.Context, t *Target) ([]Change, error)
	Apply(ctx context.Context, t *Target, plan []Change) error
}

// Change is one planned modification, printed by --dry-run and journaled.
type Change struct {
	// Action is a short verb: create, update, delete, restart, run.
	Action string `json:"action"`
	// Object is what changes: a path, a unit, a package, a sysctl key.
	Object string `json:"object"`
	// Detail is an optional human explanation (e.g. "mode 0644 -> 0600").
	Detail string `json:"detail,omitempty"`
}

func (c Change) String() string {
	if c.Detail == "" {
		return fmt.Sprintf("%s %s", c.Action, c.Object)
	}
	return fmt.Sprintf("%s %s (%s)", c.Action, c.Object, c.Detail)
}

// Target is what a step works on: one host with its inventory entry, the whole
// cluster, facts gathered once per run, and a logger that writes host=NAME.
type Target struct {
	Host    remote.Host
	Inv     *inventory.Host
	Cluster *inventory.Cluster
	Facts   *Facts
	Log     *slog.Logger
	// StateDir is the cluster's local state directory (~/.kubewright/clusters/NAME).
	StateDir string
	// Vars carries play-level parameters from the playbook (step "with:" maps).
	Vars map[string]string
	// Shared is run-wide data steps may publish for later steps (e.g. the
	// bootstrap token), keyed by a name the producing step documents.
	Shared *SharedData
}

// Facts are gathered once per run per host before the first step.
type Facts struct {
	OS             string   `json:"os"`        // ID from /etc/os-release, e.g. debian
	OSVersion      string   `json:"osVersion"` // VERSION_ID
	OSFamily       string   `json:"osFamily"`  // debian | rhel | other
	Arch           string   `json:"arch"`      // uname -m
	Kernel         string   `json:"kernel"`    // uname -r
	CPUs           int      `json:"cpus"`
	MemoryMiB      int      `json:"memoryMiB"`
	SwapMiB        int      `json:"swapMiB"`
	Hostname       string   `json:"hostname"`
	Addresses      []string `json:"addresses"`  // global IPv4/IPv6 addresses
	Interfaces     []string `json:"interfaces"` // link names
	MachineID      string   `json:"machineID"`
	InitSystem     string   `json:"initSystem"`     // systemd | other
	PackageManager string   `json:"packageManager"` // apt | dnf | yum | unknown
	EpochSeconds   float64  `json:"epochSeconds"`   // remote clock when gathered
}
