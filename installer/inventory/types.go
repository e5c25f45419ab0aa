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
	// Addons switches on the optional add-ons (storage, monitoring,
	// logging, metrics-server, ingress); the network plugin and DNS are
	// chosen above.
	Addons Addons `yaml:"addons,omitempty" json:"addons"`
	// LegacyStorage, LegacyLogging and LegacyMonitoring read the
	// spec.storage, spec.logging and spec.monitoring sections of earlier
	// inventories. Load moves them into Addons (and clears them), so
	// `inventory show` prints the spec.addons form; writing a section both
	// ways is an error.
	LegacyStorage    *LegacyStorage    `yaml:"storage,omitempty" json:"-"`
	LegacyLogging    *LegacyLogging    `yaml:"logging,omitempty" json:"-"`
	LegacyMonitoring *LegacyMonitoring `yaml:"monitoring,omitempty" json:"-"`
	Artifacts        Artifacts         `yaml:"artifacts,omitempty" json:"artifacts"`
	RegistryMirror   string            `yaml:"registryMirror,omitempty" json:"registryMirror,omitempty"`
	Agent            Agent             `yaml:"agent,omitempty" json:"agent"`
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

// Addons are the optional cluster add-ons. Every one is off by default, so
// an inventory that does not mention them renders what it always did.
type Addons struct {
	MetricsServer MetricsServer `yaml:"metricsServer" json:"metricsServer"`
	Storage       Storage       `yaml:"storage" json:"storage"`
	Monitoring    Monitoring    `yaml:"monitoring" json:"monitoring"`
	Logging       Logging       `yaml:"logging" json:"logging"`
	Ingress       Ingress       `yaml:"ingress" json:"ingress"`
}

// MetricsServer serves the resource metrics API (kubectl top, HPA).
type MetricsServer struct {
	Enabled bool `yaml:"enabled" json:"enabled"`
}

// Storage chooses the distributed storage add-on, which provides the
// cluster's default StorageClass.
type Storage struct {
	// Provider is none (default), longhorn or rook-ceph.
	Provider string `yaml:"provider,omitempty" json:"provider"`
	// Replicas is how many copies of each volume are kept, each on a
	// different storage node (default: 3, or the number of storage nodes
	// if fewer). It can never exceed the number of storage nodes.
	Replicas int `yaml:"replicas,omitempty" json:"replicas,omitempty"`
	// Nodes selects longhorn's storage nodes, like a playbook's hosts
	// (default: workers, or masters when there are none). rook-ceph's
	// storage nodes are the hosts of OSDDisks instead.
	Nodes string `yaml:"nodes,omitempty" json:"nodes,omitempty"`
	// OSDDisks maps a host name to the raw disks Ceph takes over as OSDs
	// (rook-ceph only): device names such as sdb or nvme0n1, or
	// /dev/disk/by-id/... paths. They are wiped by Ceph.
	OSDDisks map[string][]string `yaml:"osdDisks,omitempty" json:"osdDisks,omitempty"`
}

// Monitoring switches Prometheus, Alertmanager, Grafana, node-exporter and
// kube-state-metrics on.
type Monitoring struct {
	Enabled bool `yaml:"enabled" json:"enabled"`
	// Retention is how long Prometheus keeps samples (default 15d).
	Retention string `yaml:"retention,omitempty" json:"retention,omitempty"`
	// StorageSize of Prometheus' volume (default 50Gi).
	StorageSize string `yaml:"storageSize,omitempty" json:"storageSize,omitempty"`
	// StorageClass of Prometheus' volume (default: the storage add-on's
	// class; required when storage.provider is none).
	StorageClass string `yaml:"storageClass,omitempty" json:"storageClass,omitempty"`
	// CPUThreshold is the node CPU alert: busier than Percent for
	// ForMinutes (default 90% for 10 minutes).
	CPUThreshold CPUThreshold `yaml:"cpuThreshold,omitempty" json:"cpuThreshold"`
	// Receivers get the alerts; none means alerts are only visible in
	// Alertmanager's UI.
	Receivers Receivers `yaml:"receivers,omitempty" json:"receivers"`
	// GrafanaAdminPasswordEnv names the environment variable with
	// Grafana's admin password. Unset, Grafana starts with its own default
	// (admin/admin) and asks for a new one at the first login.
	GrafanaAdminPasswordEnv string `yaml:"grafanaAdminPasswordEnv,omitempty" json:"grafanaAdminPasswordEnv,omitempty"`
}

// CPUThreshold is when the node CPU alert fires.
type CPUThreshold struct {
	Percent    int `yaml:"percent,omitempty" json:"percent,omitempty"`
	ForMinutes int `yaml:"forMinutes,omitempty" json:"forMinutes,omitempty"`
}

// Receivers are where Alertmanager sends alerts; both may be set.
type Receivers struct {
	// WebhookURL receives Alertmanager's webhook JSON (e.g. the platform's
	// SMS or e-mail gateway).
	WebhookURL string `yaml:"webhookURL,omitempty" json:"webhookURL,omitempty"`
	SMTP       *SMTP  `yaml:"smtp,omitempty" json:"smtp,omitempty"`
}

// SMTP sends alerts by e-mail. Credentials come from environment variables
// and end up only in Alertmanager's Secret.
type SMTP struct {
	// Smarthost is the mail server, host:port.
	Smarthost string   `yaml:"smarthost" json:"smarthost"`
	From      string   `yaml:"from" json:"from"`
	To        []string `yaml:"to" json:"to"`
	// AuthUsernameEnv / AuthPasswordEnv name the variables with the SMTP
	// login; both or neither.
	AuthUsernameEnv string `yaml:"authUsernameEnv,omitempty" json:"authUsernameEnv,omitempty"`
	AuthPasswordEnv string `yaml:"authPasswordEnv,omitempty" json:"authPasswordEnv,omitempty"`
	// RequireTLS (default true) refuses to send over a connection without
	// STARTTLS.
	RequireTLS *bool `yaml:"requireTLS,omitempty" json:"requireTLS,omitempty"`
}

// Logging switches EFK on: Elasticsearch, Fluent Bit on every node, Kibana.
type Logging struct {
	Enabled bool `yaml:"enabled" json:"enabled"`
	// RetentionDays is how many daily indices are kept (default 7).
	RetentionDays int `yaml:"retentionDays,omitempty" json:"retentionDays,omitempty"`
	// HostLogDirs are extra log locations on every host, besides container
	// logs: a directory (its *.log files), a file, or a glob such as
	// /opt/app/logs/*.txt.
	HostLogDirs []string `yaml:"hostLogDirs,omitempty" json:"hostLogDirs,omitempty"`
	// StorageClass of Elasticsearch's volumes (default: the storage
	// add-on's class; required when storage.provider is none).
	StorageClass  string        `yaml:"storageClass,omitempty" json:"storageClass,omitempty"`
	Elasticsearch Elasticsearch `yaml:"elasticsearch,omitempty" json:"elasticsearch"`
}

// Elasticsearch sizes the log store.
type Elasticsearch struct {
	// Replicas is the number of Elasticsearch nodes (default 1).
	Replicas int `yaml:"replicas,omitempty" json:"replicas,omitempty"`
	// Heap is the JVM heap, e.g. 1g or 512m (default 1g); the pod's memory
	// is twice that.
	Heap string `yaml:"heap,omitempty" json:"heap,omitempty"`
	// StorageSize of each node's volume (default 30Gi).
	StorageSize string `yaml:"storageSize,omitempty" json:"storageSize,omitempty"`
}

// Ingress runs ingress-nginx on edge nodes.
type Ingress struct {
	Enabled bool `yaml:"enabled" json:"enabled"`
	// Mode is hostNetwork (default: ports 80 and 443 on each edge node) or
	// nodePort (HTTPNodePort and HTTPSNodePort, answered by edge nodes only).
	Mode string `yaml:"mode,omitempty" json:"mode,omitempty"`
	// Nodes selects the edge nodes (default: workers, or masters when there
	// are none).
	Nodes         string `yaml:"nodes,omitempty" json:"nodes,omitempty"`
	HTTPNodePort  int    `yaml:"httpNodePort,omitempty" json:"httpNodePort,omitempty"`
	HTTPSNodePort int    `yaml:"httpsNodePort,omitempty" json:"httpsNodePort,omitempty"`
}

// LegacyStorage is the spec.storage section of earlier releases: enabled
// with provider becomes addons.storage.provider (none when not enabled).
type LegacyStorage struct {
	Enabled  bool   `yaml:"enabled" json:"enabled"`
	Provider string `yaml:"provider,omitempty" json:"provider,omitempty"`
	Replicas int    `yaml:"replicas,omitempty" json:"replicas,omitempty"`
}

// LegacyLogging is the spec.logging section of earlier releases;
// hostLogPaths became addons.logging.hostLogDirs.
type LegacyLogging struct {
	Enabled       bool     `yaml:"enabled" json:"enabled"`
	RetentionDays int      `yaml:"retentionDays,omitempty" json:"retentionDays,omitempty"`
	HostLogPaths  []string `yaml:"hostLogPaths,omitempty" json:"hostLogPaths,omitempty"`
}

// LegacyMonitoring is the spec.monitoring section of earlier releases:
// alertWebhookURL became receivers.webhookURL, alertEmail receivers.smtp.to.
type LegacyMonitoring struct {
	Enabled         bool   `yaml:"enabled" json:"enabled"`
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
