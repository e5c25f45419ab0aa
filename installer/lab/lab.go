// Package lab makes local machines that behave like small servers — systemd,
// sshd, their own network namespace and address on a lab bridge — so that
// operators can try an HA install and CI can prove every feature on real hosts.
//
// A machine is a Debian image built once with debootstrap (cached by a key over
// its package list), given its own overlay root and booted by systemd-nspawn in
// a network namespace the lab configured from the host with netlink. The cgroup
// setup follows what was verified to let kubelet and containerd run pods inside
// a machine on a cgroup v1 hybrid host (docs/lab.md).
//
// Everything a lab makes is recorded in its state directory, and named after
// the lab (kw-NAME bridge, kw-NAME-N veths, kw-NAME-MACHINE namespaces,
// kubewright-lab-NAME cgroups), so Down can remove exactly that and Leftovers
// can find anything that survived even without the state file.
package lab

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"time"
)

// Config holds the settings shared by every lab operation.
type Config struct {
	// StateDir is kubewright's state directory (~/.kubewright by default);
	// a lab lives in StateDir/labs/NAME.
	StateDir string
	// CacheDir holds the lab image cache (lab-image/KEY) and, by convention,
	// the artifacts directory the generated inventory points at.
	CacheDir string
	// Out receives progress meant for a person; nil discards it.
	Out io.Writer
	// Logger receives structured events; nil uses slog.Default().
	Logger *slog.Logger
	// BootTimeout bounds how long Up waits for every machine's sshd.
	BootTimeout time.Duration
	// StopTimeout is how long Down waits after SIGTERM before SIGKILL.
	StopTimeout time.Duration
	// ArtifactsDir is what the generated inventory's spec.artifacts.path
	// points at; default CacheDir/artifacts/latest, which
	// hack/build-artifacts.sh keeps up to date.
	ArtifactsDir string
	// InstallHostTools lets Up run apt-get for missing host packages; when
	// false it fails with the exact command instead.
	InstallHostTools bool
}

// UpOptions describe the lab's shape.
type UpOptions struct {
	Name    string
	Masters int
	Workers int
}

// Lab is what Up made and Status reports.
type Lab struct {
	Name           string
	Dir            string
	Inventory      string
	KnownHosts     string
	KeyFile        string
	Subnet         string
	Bridge         string
	VIP            string
	Machines       []MachineStatus
	AlreadyRunning bool // Up found every machine running and reachable
}

// MachineStatus is one machine's row in `lab status`.
type MachineStatus struct {
	Name      string
	Role      string
	Address   string
	PID       int
	Running   bool
	Reachable bool
}

// Defaults used when Config leaves a field zero.
const (
	DefaultBootTimeout = 3 * time.Minute
	DefaultStopTimeout = 30 * time.Second
	defaultCacheDir    = "/var/cache/kubewright"
	maxMachines        = 50
)

// lab names end up in interface names (kw-NAME-NN must fit IFNAMSIZ 15), so
// they are short and have no dash: the dash separates the machine index.
var nameRE = regexp.MustCompile(`^[a-z][a-z0-9]{0,8}$`)

// ValidateUp checks the operator's input before anything is touched.
func ValidateUp(o UpOptions) error {
	if err := ValidateName(o.Name); err != nil {
		return err
	}
	if o.Masters < 1 {
		return fmt.Errorf("--masters must be at least 1 (got %d)", o.Masters)
	}
	if o.Workers < 0 {
		return fmt.Errorf("--workers must not be negative (got %d)", o.Workers)
	}
	if o.Masters+o.Workers > maxMachines {
		return fmt.Errorf("a lab has at most %d machines (got %d masters + %d workers)", maxMachines, o.Masters, o.Workers)
	}
	return nil
}

// ValidateName checks a lab name.
func ValidateName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("lab name %q is invalid: use 1-9 lowercase letters or digits, starting with a letter (it becomes part of interface names, limited to 15 characters)", name)
	}
	return nil
}

// DefaultCacheDir honours KUBEWRIGHT_CACHE.
func DefaultCacheDir() string {
	if d := os.Getenv("KUBEWRIGHT_CACHE"); d != "" {
		return d
	}
	return defaultCacheDir
}

func (c Config) labDir(name string) string { return filepath.Join(c.StateDir, "labs", name) }

func (c Config) withDefaults() Config {
	if c.CacheDir == "" {
		c.CacheDir = DefaultCacheDir()
	}
	if c.Out == nil {
		c.Out = io.Discard
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.BootTimeout <= 0 {
		c.BootTimeout = DefaultBootTimeout
	}
	if c.StopTimeout <= 0 {
		c.StopTimeout = DefaultStopTimeout
	}
	return c
}

// machinePlan is the deterministic layout of one machine.
type machinePlan struct {
	Name  string
	Role  string // master | worker
	Index int    // 1-based, position on the bridge
}

// planMachines names machines NAME-master1.., NAME-worker1..; the lab name is
// part of the hostname because nspawn keeps per-machine paths under
// /run/systemd/nspawn keyed by machine name, shared by all labs.
func planMachines(o UpOptions) []machinePlan {
	var ms []machinePlan
	for i := 1; i <= o.Masters; i++ {
		ms = append(ms, machinePlan{Name: fmt.Sprintf("%s-master%d", o.Name, i), Role: "master", Index: len(ms) + 1})
	}
	for i := 1; i <= o.Workers; i++ {
		ms = append(ms, machinePlan{Name: fmt.Sprintf("%s-worker%d", o.Name, i), Role: "worker", Index: len(ms) + 1})
	}
	return ms
}

// Names of host objects; Leftovers relies on them.
func bridgeName(lab string) string          { return "kw-" + lab }
func vethName(lab string, index int) string { return fmt.Sprintf("kw-%s-%d", lab, index) }
func netnsName(machine string) string       { return "kw-" + machine }
func cgroupGroup(lab string) string         { return "kubewright-lab-" + lab }

// Manager runs lab operations with one Config.
type Manager struct{ cfg Config }

// New returns a Manager; zero Config fields get their defaults.
// artifactsDir is the artifacts directory lab inventories point at.
func (c Config) artifactsDir() string {
	if c.ArtifactsDir != "" {
		return c.ArtifactsDir
	}
	return filepath.Join(c.CacheDir, "artifacts", "latest")
}

func New(cfg Config) *Manager { return &Manager{cfg: cfg.withDefaults()} }

// Dir is where the lab's state, keys and inventory live.
func (m *Manager) Dir(name string) string { return m.cfg.labDir(name) }
