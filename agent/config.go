package agent

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"time"

	"gopkg.in/yaml.v3"
)

// DefaultConfigPath is where install writes the agent's configuration.
const DefaultConfigPath = "/etc/kubewright/agent.yaml"

// Mode of one repair: repair acts, report-only only reports what it would do.
type Mode string

const (
	ModeRepair     Mode = "repair"
	ModeReportOnly Mode = "report-only"
)

// Config is /etc/kubewright/agent.yaml. install writes it; an operator may
// edit it and restart the agent. Every duration is a Go duration ("10s").
type Config struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	// NodeName is this node's name in the cluster.
	NodeName string `yaml:"nodeName"`
	// Role is master or worker: masters also run the control-plane checks.
	Role string `yaml:"role"`
	// Kubeconfig is the agent's own credential (a client certificate for
	// user kubewright:agent:NODE in group kubewright:agents).
	Kubeconfig string `yaml:"kubeconfig"`
	// Listen serves /healthz, /metrics and /status.
	Listen string `yaml:"listen"`
	// Interval between runs of each check; Timeout bounds one run.
	Interval Duration `yaml:"interval"`
	Timeout  Duration `yaml:"timeout"`
	// FailAfter consecutive Problem results make a problem lasting;
	// ClearAfter consecutive OK results clear it.
	FailAfter  int `yaml:"failAfter"`
	ClearAfter int `yaml:"clearAfter"`
	// Journal is the local append-only log of the agent's actions (JSON lines).
	Journal string `yaml:"journal"`
	// Mode is the default for every repair; Repairs overrides it per repair
	// name (e.g. "restart-kubelet: report-only").
	Mode    Mode            `yaml:"mode"`
	Repairs map[string]Mode `yaml:"repairs,omitempty"`
	// Disabled names checks not to run; their NodeConditions are removed.
	Disabled []string `yaml:"disabled,omitempty"`
	Budget   Budget   `yaml:"budget"`
	// Backoff between rungs of a ladder doubles from BackoffBase up to
	// BackoffMax; Cooldown is the least time since a unit's last start before
	// the agent restarts it again.
	BackoffBase Duration `yaml:"backoffBase"`
	BackoffMax  Duration `yaml:"backoffMax"`
	Cooldown    Duration `yaml:"cooldown"`
	// Thresholds for the resource checks.
	DiskPercent     int      `yaml:"diskPercent"`
	InodePercent    int      `yaml:"inodePercent"`
	CertRenewBefore Duration `yaml:"certRenewBefore"`
	MaxClockOffset  Duration `yaml:"maxClockOffset"`
	// Local endpoints and facts the checks need.
	Endpoints Endpoints `yaml:"endpoints"`
	// Peers are the other nodes' internal addresses (clock offset check).
	Peers []string `yaml:"peers,omitempty"`
}

// Budget limits repairs cluster-wide through Leases in kube-system.
type Budget struct {
	// MaxConcurrent nodes repairing at once.
	MaxConcurrent int `yaml:"maxConcurrent"`
	// LeaseTTL frees a slot whose holder died.
	LeaseTTL Duration `yaml:"leaseTTL"`
	// OfflineRestartsPerHour caps local unit restarts while the API is
	// unreachable (no budget can be taken then).
	OfflineRestartsPerHour int `yaml:"offlineRestartsPerHour"`
}

// Endpoints are what the checks talk to on this node.
type Endpoints struct {
	KubeletHealthz  string `yaml:"kubeletHealthz"`  // http://127.0.0.1:10248/healthz
	APIServerReadyz string `yaml:"apiserverReadyz"` // https://127.0.0.1:6443/readyz (masters)
	ContainerdSock  string `yaml:"containerdSocket"`
	EtcdEndpoint    string `yaml:"etcdEndpoint"` // https://ADDR:2379 (masters)
	EtcdCACert      string `yaml:"etcdCACert"`
	EtcdCert        string `yaml:"etcdCert"`
	EtcdKey         string `yaml:"etcdKey"`
	CACert          string `yaml:"caCert"` // cluster CA, to verify the local apiserver
	VIP             string `yaml:"vip"`
	VIPInterface    string `yaml:"vipInterface"`
	// HAProxyFrontend is the local haproxy's listen address (masters),
	// APIServers every master's apiserver host:port (haproxy's backends),
	// EtcdMembers every etcd member's client URL (the quorum check).
	HAProxyFrontend string   `yaml:"haproxyFrontend,omitempty"`
	APIServers      []string `yaml:"apiservers,omitempty"`
	EtcdMembers     []string `yaml:"etcdMembers,omitempty"`
	ClusterDNS      string   `yaml:"clusterDNS"` // the kube-dns Service IP
	ClusterDomain   string   `yaml:"clusterDomain"`
	KubeletDir      string   `yaml:"kubeletDir"`    // /var/lib/kubelet
	ContainerdDir   string   `yaml:"containerdDir"` // /var/lib/containerd
	PKIDir          string   `yaml:"pkiDir"`        // /etc/kubernetes/pki
}

// Duration is a time.Duration written as "10s" in YAML.
type Duration struct{ time.Duration }

func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return fmt.Errorf("line %d: want a duration such as \"10s\": %w", n.Line, err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration (use e.g. \"10s\", \"2m\")", n.Line, s)
	}
	d.Duration = v
	return nil
}

func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// Defaults fills zero fields.
func (c *Config) Defaults() {
	if c.APIVersion == "" {
		c.APIVersion = "kubewright.io/v1alpha1"
	}
	if c.Kind == "" {
		c.Kind = "AgentConfig"
	}
	if c.Listen == "" {
		c.Listen = "127.0.0.1:9469"
	}
	setDur := func(d *Duration, v time.Duration) {
		if d.Duration == 0 {
			d.Duration = v
		}
	}
	setDur(&c.Interval, 5*time.Second)
	setDur(&c.Timeout, 4*time.Second)
	setDur(&c.BackoffBase, 10*time.Second)
	setDur(&c.BackoffMax, 5*time.Minute)
	setDur(&c.Cooldown, 30*time.Second)
	setDur(&c.Budget.LeaseTTL, 2*time.Minute)
	setDur(&c.CertRenewBefore, 7*24*time.Hour)
	setDur(&c.MaxClockOffset, 2*time.Second)
	if c.FailAfter == 0 {
		c.FailAfter = 2
	}
	if c.ClearAfter == 0 {
		c.ClearAfter = 2
	}
	if c.Mode == "" {
		c.Mode = ModeRepair
	}
	if c.Budget.MaxConcurrent == 0 {
		c.Budget.MaxConcurrent = 1
	}
	if c.Budget.OfflineRestartsPerHour == 0 {
		c.Budget.OfflineRestartsPerHour = 3
	}
	if c.DiskPercent == 0 {
		c.DiskPercent = 85
	}
	if c.InodePercent == 0 {
		c.InodePercent = 85
	}
	if c.Journal == "" {
		c.Journal = "/var/lib/kubewright-agent/journal.jsonl"
	}
	e := &c.Endpoints
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&e.KubeletHealthz, "http://127.0.0.1:10248/healthz")
	def(&e.ContainerdSock, "/run/containerd/containerd.sock")
	def(&e.ClusterDomain, "cluster.local")
	def(&e.KubeletDir, "/var/lib/kubelet")
	def(&e.ContainerdDir, "/var/lib/containerd")
	def(&e.PKIDir, "/etc/kubernetes/pki")
}

// Validate reports every problem at once, naming the field and the fix.
func (c *Config) Validate(path string) error {
	var errs []error
	bad := func(format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{path}, a...)...))
	}
	if c.NodeName == "" {
		bad("nodeName is empty: set it to this node's name in the cluster")
	}
	if c.Role != "master" && c.Role != "worker" {
		bad("role is %q: set it to master or worker", c.Role)
	}
	if c.Mode != ModeRepair && c.Mode != ModeReportOnly {
		bad("mode is %q: use repair or report-only", c.Mode)
	}
	for name, m := range c.Repairs {
		if m != ModeRepair && m != ModeReportOnly {
			bad("repairs.%s is %q: use repair or report-only", name, m)
		}
	}
	if c.FailAfter < 1 || c.ClearAfter < 1 {
		bad("failAfter and clearAfter must be at least 1 (got %d and %d)", c.FailAfter, c.ClearAfter)
	}
	if c.Timeout.Duration > c.Interval.Duration {
		bad("timeout %s is longer than interval %s: a check would overlap its next run; lower timeout", c.Timeout, c.Interval)
	}
	if c.Budget.MaxConcurrent < 1 {
		bad("budget.maxConcurrent is %d: at least 1 node must be allowed to repair", c.Budget.MaxConcurrent)
	}
	if c.DiskPercent < 1 || c.DiskPercent > 100 || c.InodePercent < 1 || c.InodePercent > 100 {
		bad("diskPercent and inodePercent must be between 1 and 100")
	}
	return errors.Join(errs...)
}

// reportOnlyByDefault are repairs that only report unless repairs: names
// them: pruning "unused" images on an air-gapped node deletes images that
// were imported from the bundle and cannot be pulled back when a pod is
// later scheduled there.
var reportOnlyByDefault = map[string]bool{"prune-images": true}

// ModeFor returns the mode of the named repair.
func (c *Config) ModeFor(repair string) Mode {
	if m, ok := c.Repairs[repair]; ok {
		return m
	}
	if reportOnlyByDefault[repair] {
		return ModeReportOnly
	}
	return c.Mode
}

// LoadConfig reads, defaults and validates a config file. Unknown fields are
// errors: a misspelt key must not silently keep a default.
func LoadConfig(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read agent config: %w", err)
	}
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	c.Defaults()
	if err := c.Validate(path); err != nil {
		return nil, err
	}
	return &c, nil
}

// Marshal renders the config as YAML (install writes this).
func (c *Config) Marshal() ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(c); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
