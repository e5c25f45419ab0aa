// Package inventory is the operator-facing description of a cluster: which hosts
// exist, how to reach them, which roles they play, and the cluster settings.
//
// The file format is versioned (apiVersion kubewright.io/v1alpha1, kind Cluster)
// so that later releases can convert old files instead of misreading them.
// Load parses, expands host ranges, applies defaults (defaults.go is the one
// place they live) and validates, collecting every error at once with its
// file:line:col, field path and fix.
package inventory

// APIVersion and Kind identify the only format this release reads.
const (
	APIVersion = "kubewright.io/v1alpha1"
	Kind       = "Cluster"
)

// Well-known group names. Custom groups may use any other DNS-1123 label.
const (
	GroupMasters = "masters"
	GroupEtcd    = "etcd"
	GroupWorkers = "workers"
)

// Cluster is the whole inventory file after defaulting.
type Cluster struct {
	APIVersion string   `yaml:"apiVersion" json:"apiVersion"`
	Kind       string   `yaml:"kind" json:"kind"`
	Metadata   Metadata `yaml:"metadata" json:"metadata"`
	Spec       Spec     `yaml:"spec" json:"spec"`

	// Path is the file the inventory was read from ("" when built in memory).
	Path string `yaml:"-" json:"-"`
	// Warnings are the non-fatal findings of the last Load/Parse (e.g. an even
	// number of etcd members). Commands print them; they never stop a run.
	Warnings []Warning `yaml:"-" json:"-"`
}

// Metadata names the cluster; the name keys the state directory.
type Metadata struct {
	Name string `yaml:"name" json:"name"`
}

// Spec holds hosts, groups and cluster settings.
type Spec struct {
	// HostDefaults apply to every host that does not set the field itself.
	HostDefaults HostDefaults `yaml:"hostDefaults,omitempty" json:"hostDefaults,omitempty"`
	Hosts        []Host       `yaml:"hosts" json:"hosts"`
	// Groups maps a group name to host names (ranges allowed, e.g. node[01:20]).
	// masters is required; etcd defaults to masters; workers may be empty.
	Groups map[string][]string `yaml:"groups" json:"groups"`

	Kubernetes           Kubernetes           `yaml:"kubernetes,omitempty" json:"kubernetes"`
	ControlPlaneEndpoint ControlPlaneEndpoint `yaml:"controlPlaneEndpoint,omitempty" json:"controlPlaneEndpoint"`
	Network              Network              `yaml:"network,omitempty" json:"network"`
	DNS                  DNS                  `yaml:"dns,omitempty" json:"dns"`
	Storage              Storage              `yaml:"storage,omitempty" json:"storage"`
	Logging              Logging              `yaml:"logging,omitempty" json:"logging"`
	Monitoring           Monitoring           `yaml:"monitoring" json:"monitoring"`
	Artifacts            Artifacts            `yaml:"artifacts,omitempty" json:"artifacts"`
	RegistryMirror       string               `yaml:"registryMirror,omitempty" json:"registryMirror,omitempty"`
	Agent                Agent                `yaml:"agent,omitempty" json:"agent"`
}

// HostDefaults are connection settings shared by all hosts.
type HostDefaults struct {
	User            string `yaml:"user,omitempty" json:"user,omitempty"`
	Port            int    `yaml:"port,omitempty" json:"port,omitempty"`
	KeyFile         string `yaml:"keyFile,omitempty" json:"keyFile,omitempty"`
	UseAgent        bool   `yaml:"useAgent,omitempty" json:"useAgent,omitempty"`
	PasswordEnv     string `yaml:"passwordEnv,omitempty" json:"passwordEnv,omitempty"`
	SudoPasswordEnv string `yaml:"sudoPasswordEnv,omitempty" json:"sudoPasswordEnv,omitempty"`
	Bastion         string `yaml:"bastion,omitempty" json:"bastion,omitempty"`
}

// Host is one machine. Name may be a range (node[01:20]); Address then must be a
// range of the same length (10.0.1.[11:30]) and both expand in step.
type Host struct {
	Name    string `yaml:"name" json:"name"`
	Address string `yaml:"address" json:"address"`
	// InternalAddress is what cluster components use (defaults to Address).
	InternalAddress string `yaml:"internalAddress,omitempty" json:"internalAddress,omitempty"`
	Port            int    `yaml:"port,omitempty" json:"port,omitempty"`
	User            string `yaml:"user,omitempty" json:"user,omitempty"`
	KeyFile         string `yaml:"keyFile,omitempty" json:"keyFile,omitempty"`
	UseAgent        bool   `yaml:"useAgent,omitempty" json:"useAgent,omitempty"`
	// PasswordEnv / SudoPasswordEnv name environment variables; secrets never
	// live in the inventory file itself.
	PasswordEnv     string `yaml:"passwordEnv,omitempty" json:"passwordEnv,omitempty"`
	SudoPasswordEnv string `yaml:"sudoPasswordEnv,omitempty" json:"sudoPasswordEnv,omitempty"`
	// Bastion is "user@host:port" or the name of another host in the inventory;
	// a bastion host may itself have a bastion (a chain).
	Bastion string            `yaml:"bastion,omitempty" json:"bastion,omitempty"`
	Labels  map[string]string `yaml:"labels,omitempty" json:"labels,omitempty"`
	Taints  []Taint           `yaml:"taints,omitempty" json:"taints,omitempty"`

	// Groups is filled by Load: every group this host belongs to, sorted.
	Groups []string `yaml:"-" json:"groups,omitempty"`
}

// Taint is a Kubernetes node taint.
type Taint struct {
	Key    string `yaml:"key" json:"key"`
	Value  string `yaml:"value,omitempty" json:"value,omitempty"`
	Effect string `yaml:"effect" json:"effect"` // NoSchedule | PreferNoSchedule | NoExecute
}

// Kubernetes selects the version and cluster-wide names.
type Kubernetes struct {
	Version     string `yaml:"version,omitempty" json:"version"`
	ClusterName string `yaml:"clusterName,omitempty" json:"clusterName,omitempty"`
	// APIServerPort is where every kube-apiserver listens on its own host
	// (default 6443). Clients go through ControlPlaneEndpoint.Port instead;
	// the two must differ because haproxy runs on the same masters.
	APIServerPort int `yaml:"apiServerPort,omitempty" json:"apiServerPort"`
	// ProxyMode is iptables (default) or ipvs.
	ProxyMode string `yaml:"proxyMode,omitempty" json:"proxyMode"`
}

// ControlPlaneEndpoint is the keepalived VIP in front of haproxy.
type ControlPlaneEndpoint struct {
	VIP string `yaml:"vip,omitempty" json:"vip"`
	// VIPPrefix is the prefix length of the masters' subnet the VIP lives in
	// (default 24 for IPv4, 64 for IPv6). "vip: 10.0.0.10/23" sets it too.
	VIPPrefix int `yaml:"vipPrefix,omitempty" json:"vipPrefix"`
	// Port is where haproxy listens on every master (and so on the VIP);
	// default 8443. It balances to the apiservers on Kubernetes.APIServerPort.
	Port      int    `yaml:"port,omitempty" json:"port"`
	Interface string `yaml:"interface,omitempty" json:"interface"`
	RouterID  int    `yaml:"routerID,omitempty" json:"routerID"`
	// UnicastPeers makes keepalived use unicast VRRP (networks without multicast).
	UnicastPeers bool `yaml:"unicastPeers,omitempty" json:"unicastPeers,omitempty"`
	// AuthPassEnv names the environment variable holding the VRRP password.
	AuthPassEnv string `yaml:"authPassEnv,omitempty" json:"authPassEnv,omitempty"`
}

// Network chooses the CNI plugin and address ranges.
type Network struct {
	Plugin      string `yaml:"plugin,omitempty" json:"plugin"` // calico | flannel | weave
	PodCIDR     string `yaml:"podCIDR,omitempty" json:"podCIDR"`
	ServiceCIDR string `yaml:"serviceCIDR,omitempty" json:"serviceCIDR"`
	MTU         int    `yaml:"mtu,omitempty" json:"mtu"`
	// Encapsulation: calico ipip|vxlan|none, flannel vxlan|host-gw; weave ignores it.
	Encapsulation string `yaml:"encapsulation,omitempty" json:"encapsulation,omitempty"`
	// WeavePasswordEnv names the environment variable with Weave's encryption password.
	WeavePasswordEnv string `yaml:"weavePasswordEnv,omitempty" json:"weavePasswordEnv,omitempty"`
}

// DNS chooses the cluster DNS add-on.
type DNS struct {
	Provider      string   `yaml:"provider,omitempty" json:"provider"` // coredns | kube-dns
	ClusterDomain string   `yaml:"clusterDomain,omitempty" json:"clusterDomain"`
	NodeLocalDNS  bool     `yaml:"nodeLocalDNS" json:"nodeLocalDNS"`
	Upstreams     []string `yaml:"upstreams,omitempty" json:"upstreams,omitempty"`
}

// Storage switches distributed storage on.
type Storage struct {
	Enabled  bool   `yaml:"enabled" json:"enabled"`
	Provider string `yaml:"provider,omitempty" json:"provider,omitempty"` // longhorn | rook-ceph
	Replicas int    `yaml:"replicas,omitempty" json:"replicas,omitempty"`
}

// Logging switches EFK on.
type Logging struct {
	Enabled       bool     `yaml:"enabled" json:"enabled"`
	RetentionDays int      `yaml:"retentionDays,omitempty" json:"retentionDays,omitempty"`
	HostLogPaths  []string `yaml:"hostLogPaths,omitempty" json:"hostLogPaths,omitempty"`
}

// Monitoring switches Prometheus, Alertmanager and Grafana on.
type Monitoring struct {
	Enabled bool `yaml:"enabled" json:"enabled"`
	// AlertWebhookURL receives Alertmanager notifications (e.g. an SMS gateway).
	AlertWebhookURL string `yaml:"alertWebhookURL,omitempty" json:"alertWebhookURL,omitempty"`
	AlertEmail      string `yaml:"alertEmail,omitempty" json:"alertEmail,omitempty"`
}

// Artifacts says where binaries and images come from.
type Artifacts struct {
	Source string `yaml:"source,omitempty" json:"source"` // download | dir | bundle
	Path   string `yaml:"path,omitempty" json:"path,omitempty"`
	URL    string `yaml:"url,omitempty" json:"url,omitempty"`
}

// Agent configures kubewright-agent on every node.
type Agent struct {
	Enabled       *bool  `yaml:"enabled,omitempty" json:"enabled"`
	CheckInterval string `yaml:"checkInterval,omitempty" json:"checkInterval"`
	// RepairBudget is how many nodes may be under repair at once, cluster-wide.
	RepairBudget int `yaml:"repairBudget,omitempty" json:"repairBudget"`
}
