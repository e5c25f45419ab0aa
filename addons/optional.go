package addons

import (
	"bytes"
	"fmt"
	"io/fs"
	"net"
	"net/mail"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubewright/kubewright/installer/inventory"
)

// Names of the optional add-ons, rendered after the network and DNS ones in
// this order: storage first (the others' volumes need its StorageClass),
// ingress last.
const (
	Longhorn      = "longhorn"
	RookCeph      = "rook-ceph"
	MetricsServer = "metrics-server"
	Monitoring    = "monitoring"
	Logging       = "logging"
	IngressNginx  = "ingress-nginx"
)

// StorageParams selects the storage add-on. Provider "" (or "none") is off.
type StorageParams struct {
	Provider string
	// Replicas of each volume (longhorn numberOfReplicas, Ceph pool size).
	Replicas int
	// Nodes are the storage nodes: longhorn's disk nodes, rook-ceph's OSD
	// hosts with their Disks.
	Nodes []StorageNode
}

// StorageNode is one storage node; Master marks a control-plane host (its
// taint must be tolerated).
type StorageNode struct {
	Name   string
	Master bool
	Disks  []string
}

// MonitoringParams configure Prometheus, Alertmanager, Grafana,
// node-exporter and kube-state-metrics.
type MonitoringParams struct {
	Enabled      bool
	Retention    string // Prometheus duration, e.g. 15d
	StorageSize  string // e.g. 50Gi
	StorageClass string
	// CPUPercent and CPUForMinutes tune the node CPU alert.
	CPUPercent, CPUForMinutes int
	WebhookURL                string
	SMTP                      *SMTPParams
	// GrafanaAdminPassword is the resolved grafanaAdminPasswordEnv; ""
	// leaves Grafana's default. It only goes into the grafana-admin Secret.
	GrafanaAdminPassword string
	// EtcdEndpoints are the etcd members' client endpoints (IP:2379).
	EtcdEndpoints []string
	// EtcdClient is the certificate Prometheus presents to etcd (the
	// caller reads the cluster's etcd healthcheck client). Without it the
	// etcd job and its Secret are left out.
	EtcdClient *TLSClient
	// ControlPlaneEndpoint is the VIP and haproxy port (VIP:8443), probed
	// as job control-plane-vip.
	ControlPlaneEndpoint string
	// ClusterName becomes the cluster label of every series and alert.
	ClusterName string
	// AgentMetrics scrapes kubewright-agent's /metrics (127.0.0.1:9469 on
	// every node) through a kube-rbac-proxy in node-exporter's pods.
	AgentMetrics bool
}

// SMTPParams are the e-mail receiver's settings with the resolved
// credentials (which go only into Alertmanager's Secret).
type SMTPParams struct {
	Smarthost, From    string
	To                 []string
	Username, Password string
	RequireTLS         bool
}

// TLSClient is a PEM client certificate with its key and the CA that signs
// the server's certificate.
type TLSClient struct {
	CA, Cert, Key string
}

// LoggingParams configure EFK.
type LoggingParams struct {
	Enabled       bool
	RetentionDays int
	// HostLogDirs: directories (their *.log), files or globs on the hosts.
	HostLogDirs   []string
	StorageClass  string
	ESReplicas    int
	ESHeap        string // JVM heap, 1g or 512m
	ESStorageSize string
}

// IngressParams configure ingress-nginx.
type IngressParams struct {
	Enabled bool
	// Mode is hostNetwork or nodePort.
	Mode string
	// Nodes are the edge nodes' names; Masters says one of them is a
	// control-plane host.
	Nodes                       []string
	Masters                     bool
	HTTPNodePort, HTTPSNodePort int
}

// Defaults of the optional add-ons' parameters, the inventory's.
const (
	agentMetricsPort = 9469 // kubewright-agent's default listen port, on 127.0.0.1
	agentProxyPort   = 9470 // where node-exporter's pods expose it, per node
	etcdClientPort   = 2379
)

// optionalFromInventory fills the optional add-ons' parameters. Secrets
// (SMTP login, Grafana's password) and the etcd client certificate are the
// caller's to add.
func optionalFromInventory(c *inventory.Cluster, p *Params) {
	a := c.Spec.Addons
	p.MetricsServer = a.MetricsServer.Enabled
	if st := a.Storage; st.Provider != "" && st.Provider != inventory.StorageNone {
		p.Storage = StorageParams{Provider: st.Provider, Replicas: st.Replicas}
		for _, h := range c.StorageNodes() {
			p.Storage.Nodes = append(p.Storage.Nodes, StorageNode{Name: h.Name, Master: slices.Contains(c.Spec.Groups[inventory.GroupMasters], h.Name), Disks: slices.Clone(st.OSDDisks[h.Name])})
		}
	}
	if m := a.Monitoring; m.Enabled {
		mp := MonitoringParams{
			Enabled: true, Retention: m.Retention, StorageSize: m.StorageSize, StorageClass: m.StorageClass,
			CPUPercent: m.CPUThreshold.Percent, CPUForMinutes: m.CPUThreshold.ForMinutes,
			WebhookURL:           m.Receivers.WebhookURL,
			ControlPlaneEndpoint: c.Endpoint(),
			ClusterName:          c.Spec.Kubernetes.ClusterName,
			AgentMetrics:         c.Spec.Agent.Enabled == nil || *c.Spec.Agent.Enabled,
		}
		if s := m.Receivers.SMTP; s != nil {
			mp.SMTP = &SMTPParams{Smarthost: s.Smarthost, From: s.From, To: slices.Clone(s.To), RequireTLS: s.RequireTLS == nil || *s.RequireTLS}
		}
		for _, h := range c.Etcd() {
			mp.EtcdEndpoints = append(mp.EtcdEndpoints, net.JoinHostPort(h.InternalAddress, strconv.Itoa(etcdClientPort)))
		}
		p.Monitoring = mp
	}
	if l := a.Logging; l.Enabled {
		p.Logging = LoggingParams{
			Enabled: true, RetentionDays: l.RetentionDays, HostLogDirs: slices.Clone(l.HostLogDirs), StorageClass: l.StorageClass,
			ESReplicas: l.Elasticsearch.Replicas, ESHeap: l.Elasticsearch.Heap, ESStorageSize: l.Elasticsearch.StorageSize,
		}
	}
	if in := a.Ingress; in.Enabled {
		ip := IngressParams{Enabled: true, Mode: in.Mode, HTTPNodePort: in.HTTPNodePort, HTTPSNodePort: in.HTTPSNodePort}
		for _, h := range c.IngressNodes() {
			ip.Nodes = append(ip.Nodes, h.Name)
			ip.Masters = ip.Masters || slices.Contains(c.Spec.Groups[inventory.GroupMasters], h.Name)
		}
		p.Ingress = ip
	}
}

// optionalSteps are the optional add-ons p switches on, in apply order.
func optionalSteps(p Params) []optionalStep {
	var out []optionalStep
	switch p.Storage.Provider {
	case Longhorn:
		out = append(out, optionalStep{Longhorn, renderLonghorn})
	case RookCeph:
		out = append(out, optionalStep{RookCeph, renderRookCeph})
	}
	if p.MetricsServer {
		out = append(out, optionalStep{MetricsServer, renderMetricsServer})
	}
	if p.Monitoring.Enabled {
		out = append(out, optionalStep{Monitoring, renderMonitoring})
	}
	if p.Logging.Enabled {
		out = append(out, optionalStep{Logging, renderLogging})
	}
	if p.Ingress.Enabled {
		out = append(out, optionalStep{IngressNginx, renderIngress})
	}
	return out
}

// optionalStep renders one optional add-on. Besides its objects it returns
// the images its operators start themselves (longhorn's engine and
// instance managers, Ceph's daemons): they appear in no pod template, but
// an offline bundle must carry them.
type optionalStep struct {
	name   string
	render func(Params) (objs []*unstructured.Unstructured, extraImages []string, err error)
}

func optionalDefaults(p Params) Params {
	if p.Storage.Provider == inventory.StorageNone {
		p.Storage.Provider = ""
	}
	if p.Storage.Provider != "" && p.Storage.Replicas == 0 {
		p.Storage.Replicas = min(inventory.DefaultStorageReplicas, max(1, len(p.Storage.Nodes)))
	}
	if m := &p.Monitoring; m.Enabled {
		setDefault(&m.Retention, inventory.DefaultPrometheusRetention)
		setDefault(&m.StorageSize, inventory.DefaultPrometheusStorageSize)
		setDefault(&m.StorageClass, storageClassOf(p.Storage.Provider))
		if m.CPUPercent == 0 {
			m.CPUPercent = inventory.DefaultCPUThresholdPercent
		}
		if m.CPUForMinutes == 0 {
			m.CPUForMinutes = inventory.DefaultCPUThresholdMinutes
		}
	}
	if l := &p.Logging; l.Enabled {
		if l.RetentionDays == 0 {
			l.RetentionDays = inventory.DefaultLogRetentionDays
		}
		setDefault(&l.StorageClass, storageClassOf(p.Storage.Provider))
		if l.ESReplicas == 0 {
			l.ESReplicas = inventory.DefaultESReplicas
		}
		setDefault(&l.ESHeap, inventory.DefaultESHeap)
		setDefault(&l.ESStorageSize, inventory.DefaultESStorageSize)
	}
	if in := &p.Ingress; in.Enabled {
		setDefault(&in.Mode, inventory.DefaultIngressMode)
		if in.Mode == "nodePort" {
			if in.HTTPNodePort == 0 {
				in.HTTPNodePort = inventory.DefaultHTTPNodePort
			}
			if in.HTTPSNodePort == 0 {
				in.HTTPSNodePort = inventory.DefaultHTTPSNodePort
			}
		}
	}
	return p
}

func setDefault(s *string, def string) {
	if *s == "" {
		*s = def
	}
}

func storageClassOf(provider string) string {
	switch provider {
	case Longhorn:
		return inventory.StorageClassLonghorn
	case RookCeph:
		return inventory.StorageClassRookCeph
	}
	return ""
}

var (
	promDurationRe = regexp.MustCompile(`^[1-9][0-9]*(h|d|w|y)$`)
	quantityRe     = regexp.MustCompile(`^([1-9][0-9]*)(Mi|Gi|Ti)$`)
	heapRe         = regexp.MustCompile(`^([1-9][0-9]*)([mg])$`)
	diskRe         = regexp.MustCompile(`^([a-z]+[a-z0-9]*|/dev/disk/by-(id|path|uuid|partuuid)/[A-Za-z0-9:._+-]+)$`)
)

// validateOptional checks the optional add-ons' parameters. The inventory
// has checked what comes from it, with positions; these checks guard the
// renderer's own contract (Params built by hand, secrets from the caller).
func validateOptional(p Params, add func(field, fix, format string, args ...any)) {
	st := p.Storage
	if st.Provider == RookCeph {
		add("spec.addons.storage.provider", "use provider: longhorn, or vendor csi-operator.yaml into addons/rook-ceph (see its SOURCE)", "%s", rookCephMissing)
	}
	switch st.Provider {
	case "":
	case Longhorn, RookCeph:
		if len(st.Nodes) == 0 {
			add("spec.addons.storage.nodes", "select at least one storage node", "%s has no storage nodes", st.Provider)
		}
		if st.Replicas < 1 || (len(st.Nodes) > 0 && st.Replicas > len(st.Nodes)) {
			add("spec.addons.storage.replicas", fmt.Sprintf("use 1 to %d (one copy per storage node)", max(1, len(st.Nodes))), "%d storage replicas on %d storage nodes", st.Replicas, len(st.Nodes))
		}
		for _, n := range st.Nodes {
			if !isDNSSubdomain(n.Name) {
				add("spec.addons.storage.nodes", "use the inventory's host names", "invalid node name %q", n.Name)
			}
			if st.Provider == RookCeph && len(n.Disks) == 0 {
				add("spec.addons.storage.osdDisks", "list the node's OSD disks", "storage node %s has no OSD disks", n.Name)
			}
			for _, d := range n.Disks {
				if !diskRe.MatchString(d) {
					add("spec.addons.storage.osdDisks", "write a device name such as sdb, or a /dev/disk/by-id/... path", "invalid disk %q of node %s", d, n.Name)
				}
			}
		}
	default:
		add("spec.addons.storage.provider", "use one of: none, longhorn, rook-ceph", "unknown storage provider %q", st.Provider)
	}

	if m := p.Monitoring; m.Enabled {
		if !promDurationRe.MatchString(m.Retention) {
			add("spec.addons.monitoring.retention", "write e.g. 15d", "invalid retention %q", m.Retention)
		}
		if !quantityRe.MatchString(m.StorageSize) {
			add("spec.addons.monitoring.storageSize", "write e.g. 50Gi", "invalid storage size %q", m.StorageSize)
		}
		if !isDNSSubdomain(m.StorageClass) {
			add("spec.addons.monitoring.storageClass", "set a storage provider, or name a StorageClass", "Prometheus has no valid StorageClass (%q)", m.StorageClass)
		}
		if m.CPUPercent < 1 || m.CPUPercent > 100 || m.CPUForMinutes < 1 || m.CPUForMinutes > 1440 {
			add("spec.addons.monitoring.cpuThreshold", "use a percent of 1-100 and 1-1440 minutes", "CPU threshold %d%% for %d minutes is out of range", m.CPUPercent, m.CPUForMinutes)
		}
		if u, err := url.Parse(m.WebhookURL); m.WebhookURL != "" && (err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "") {
			add("spec.addons.monitoring.receivers.webhookURL", "write a full http(s) URL", "invalid webhook URL %q", m.WebhookURL)
		}
		if s := m.SMTP; s != nil {
			if _, port, err := net.SplitHostPort(s.Smarthost); err != nil || port == "" {
				add("spec.addons.monitoring.receivers.smtp.smarthost", "write host:port", "invalid smarthost %q", s.Smarthost)
			}
			for _, a := range append([]string{s.From}, s.To...) {
				if e, err := mail.ParseAddress(a); err != nil || e.Address != a {
					add("spec.addons.monitoring.receivers.smtp", "write bare e-mail addresses", "invalid e-mail address %q", a)
				}
			}
			if len(s.To) == 0 {
				add("spec.addons.monitoring.receivers.smtp.to", "list the recipients", "smtp has no recipients")
			}
			if (s.Username == "") != (s.Password == "") {
				add("spec.addons.monitoring.receivers.smtp", "export both authUsernameEnv and authPasswordEnv (non-empty), or neither", "SMTP login has a username or a password but not both")
			}
		}
		for _, e := range m.EtcdEndpoints {
			if _, _, err := net.SplitHostPort(e); err != nil {
				add("EtcdEndpoints", "pass host:port", "invalid etcd endpoint %q", e)
			}
		}
		if c := m.EtcdClient; c != nil && (!isPEM(c.CA, "CERTIFICATE") || !isPEM(c.Cert, "CERTIFICATE") || !isPEM(c.Key, "PRIVATE KEY")) {
			add("EtcdClient", "pass the etcd CA, client certificate and key in PEM", "the etcd client certificate is not PEM")
		}
		if m.ControlPlaneEndpoint != "" {
			if _, _, err := net.SplitHostPort(m.ControlPlaneEndpoint); err != nil {
				add("spec.controlPlaneEndpoint", "pass VIP:port", "invalid control-plane endpoint %q", m.ControlPlaneEndpoint)
			}
		}
	}

	if l := p.Logging; l.Enabled {
		if l.RetentionDays < 1 {
			add("spec.addons.logging.retentionDays", "use 1 or more", "log retention %d days is less than 1", l.RetentionDays)
		}
		if !isDNSSubdomain(l.StorageClass) {
			add("spec.addons.logging.storageClass", "set a storage provider, or name a StorageClass", "Elasticsearch has no valid StorageClass (%q)", l.StorageClass)
		}
		if l.ESReplicas < 1 || l.ESReplicas > 9 {
			add("spec.addons.logging.elasticsearch.replicas", "use 1 to 9", "Elasticsearch replicas %d is out of range", l.ESReplicas)
		}
		if _, err := heapMiB(l.ESHeap); err != nil {
			add("spec.addons.logging.elasticsearch.heap", "write e.g. 1g or 512m (256m-31g)", "%v", err)
		}
		if !quantityRe.MatchString(l.ESStorageSize) {
			add("spec.addons.logging.elasticsearch.storageSize", "write e.g. 30Gi", "invalid storage size %q", l.ESStorageSize)
		}
		for i, d := range l.HostLogDirs {
			if _, _, err := hostLogSource(d); err != nil {
				add(fmt.Sprintf("spec.addons.logging.hostLogDirs[%d]", i), "write an absolute, clean path without commas or spaces; wildcards only in the last element", "%v", err)
			}
		}
	}

	if in := p.Ingress; in.Enabled {
		if in.Mode != "hostNetwork" && in.Mode != "nodePort" {
			add("spec.addons.ingress.mode", "use one of: hostNetwork, nodePort", "unknown ingress mode %q", in.Mode)
		}
		if len(in.Nodes) == 0 {
			add("spec.addons.ingress.nodes", "select at least one edge node", "ingress has no edge nodes")
		}
		for _, n := range in.Nodes {
			if !isDNSSubdomain(n) {
				add("spec.addons.ingress.nodes", "use the inventory's host names", "invalid node name %q", n)
			}
		}
		if in.Mode == "nodePort" && (in.HTTPNodePort < 30000 || in.HTTPNodePort > 32767 || in.HTTPSNodePort < 30000 || in.HTTPSNodePort > 32767 || in.HTTPNodePort == in.HTTPSNodePort) {
			add("spec.addons.ingress.httpNodePort", "use two different ports in 30000-32767", "NodePorts %d and %d are unusable", in.HTTPNodePort, in.HTTPSNodePort)
		}
	}
}

func isPEM(s, typeSuffix string) bool {
	for _, line := range strings.Split(s, "\n") {
		if strings.HasPrefix(line, "-----BEGIN ") && strings.HasSuffix(strings.TrimSpace(line), typeSuffix+"-----") {
			return true
		}
	}
	return false
}

// heapMiB parses a JVM heap size (512m, 1g) into MiB, 256m to 31g.
func heapMiB(s string) (int, error) {
	m := heapRe.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("invalid Elasticsearch heap %q", s)
	}
	n, _ := strconv.Atoi(m[1])
	if m[2] == "g" {
		n *= 1024
	}
	if n < 256 || n > 31*1024 {
		return 0, fmt.Errorf("Elasticsearch heap %q is outside 256m-31g", s)
	}
	return n, nil
}

// quantityMiB parses a volume size (Mi, Gi, Ti) into MiB.
func quantityMiB(s string) int64 {
	m := quantityRe.FindStringSubmatch(s)
	if m == nil {
		return 0
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	switch m[2] {
	case "Gi":
		n *= 1024
	case "Ti":
		n *= 1024 * 1024
	}
	return n
}

// hostLogSource turns a hostLogDirs entry into Fluent Bit tail patterns and
// the host directory to mount: a directory tails its *.log files (and, in
// case the entry names a file, the entry itself); a glob tails itself. The
// parent directory is mounted, not a file: log rotation replaces files, and
// a bind-mounted file would keep showing the old one.
func hostLogSource(entry string) (patterns []string, mount string, err error) {
	dir, last := path.Split(entry)
	switch {
	case !path.IsAbs(entry) || path.Clean(entry) != entry || entry == "/":
		return nil, "", fmt.Errorf("host log path %q is not a clean absolute path below /", entry)
	case strings.ContainsAny(entry, ", \t\r\n"):
		return nil, "", fmt.Errorf("host log path %q has a comma or a space", entry)
	case strings.ContainsAny(dir, "*?["):
		return nil, "", fmt.Errorf("host log path %q has a wildcard in a directory", entry)
	}
	parent := path.Clean(dir)
	glob := strings.ContainsAny(last, "*?[")
	if parent == "/" {
		// Mounting the host's root over the container's cannot work: a
		// directory right below / is mounted itself.
		if glob {
			return nil, "", fmt.Errorf("host log path %q has a wildcard right below /", entry)
		}
		parent = entry
	}
	if glob {
		return []string{entry}, parent, nil
	}
	return []string{entry, entry + "/*.log"}, parent, nil
}

// decodeFiles decodes vendored files of one folder, in the order given.
func decodeFiles(fsys fs.FS, dir string, files ...string) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	for _, f := range files {
		data, err := fs.ReadFile(fsys, path.Join(dir, f))
		if err != nil {
			return nil, fmt.Errorf("vendored manifest %s/%s: %w", dir, f, err)
		}
		objs, err := decodeManifest(dir+"/"+f, data)
		if err != nil {
			return nil, err
		}
		out = append(out, objs...)
	}
	return out, nil
}

// requireNodes pins a workload's pods to the named nodes (kubelets register
// under the inventory's host names).
func requireNodes(addon string, o *unstructured.Unstructured, nodes []string) error {
	ps, err := podSpec(addon, o)
	if err != nil {
		return err
	}
	values := make([]any, len(nodes))
	for i, n := range nodes {
		values[i] = n
	}
	aff, _ := ps["affinity"].(map[string]any)
	if aff == nil {
		aff = map[string]any{}
	}
	aff["nodeAffinity"] = map[string]any{
		"requiredDuringSchedulingIgnoredDuringExecution": map[string]any{
			"nodeSelectorTerms": []any{map[string]any{"matchExpressions": []any{
				map[string]any{"key": "kubernetes.io/hostname", "operator": "In", "values": values},
			}}},
		},
	}
	ps["affinity"] = aff
	return nil
}

// addToleration appends a toleration to a workload's pod template, once.
func addToleration(addon string, o *unstructured.Unstructured, tol map[string]any) error {
	ps, err := podSpec(addon, o)
	if err != nil {
		return err
	}
	list, _ := ps["tolerations"].([]any)
	for _, t := range list {
		if m, ok := t.(map[string]any); ok && m["key"] == tol["key"] && m["effect"] == tol["effect"] {
			return nil
		}
	}
	ps["tolerations"] = append(list, tol)
	return nil
}

// setImageStrings replaces image references that an add-on passes to its
// operator as text (flags, env values, ConfigMap entries, custom resource
// fields) and returns the refs used, for the offline bundle. A table entry
// matched nowhere means the vendored manifest changed.
func setImageStrings(addon string, objs []*unstructured.Unstructured, table []imageSpec, p Params) ([]string, error) {
	var used []string
	for _, s := range table {
		ref, err := imageRef(s, p)
		if err != nil {
			return nil, err
		}
		n := 0
		for _, o := range objs {
			n += replaceStrings(o.Object, s.Upstream, ref)
		}
		if n == 0 {
			return nil, manifestError(addon, "image %s is not referenced anywhere", s.Upstream)
		}
		used = append(used, ref)
	}
	return used, nil
}

// replaceStrings replaces every string equal to from (or equal to it in
// quotes, as some flags are written) below v, and counts them.
func replaceStrings(v any, from, to string) int {
	n := 0
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			if s, ok := x.(string); ok {
				if r, ok := swapString(s, from, to); ok {
					t[k] = r
					n++
				}
				continue
			}
			n += replaceStrings(x, from, to)
		}
	case []any:
		for i, x := range t {
			if s, ok := x.(string); ok {
				if r, ok := swapString(s, from, to); ok {
					t[i] = r
					n++
				}
				continue
			}
			n += replaceStrings(x, from, to)
		}
	}
	return n
}

func swapString(s, from, to string) (string, bool) {
	switch s {
	case from:
		return to, true
	case `"` + from + `"`:
		return `"` + to + `"`, true
	}
	return s, false
}

// yamlText renders a configuration blob (prometheus.yml, alertmanager.yml)
// deterministically: map keys sorted, two-space indent.
func yamlText(v any) (string, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	if err := enc.Close(); err != nil {
		return "", err
	}
	return b.String(), nil
}
