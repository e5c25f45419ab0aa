// Package addons renders the cluster's networking and DNS add-ons (one CNI
// plugin, one DNS server, optionally NodeLocal DNSCache) into Kubernetes
// objects for the server-side-apply engine in installer/kube.
//
// Each add-on starts from an upstream manifest vendored byte-exact in
// addons/<name>/ (with a SOURCE file: repository, path, version, commit,
// license, sha256) and embedded into the binary. The Go code decodes it and
// edits only the parts that vary between clusters — CIDRs, encapsulation, MTU,
// DNS addresses, host paths, images — on the decoded objects, so an upstream
// bump is a file copy plus a golden diff, and nothing is templated by text
// except inside configuration blobs (Corefile, net-conf.json) that are text to
// Kubernetes too. Rendering is pure: no I/O, no clock, no randomness, so a
// re-run renders identical objects and applying them changes nothing.
//
// docs/addons.md says what each inventory field changes.
package addons

import (
	"fmt"
	"net/netip"
	"net/url"
	"path"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubewright/kubewright/installer/inventory"
	"github.com/kubewright/kubewright/installer/render"
)

// Add-on names, as in Addon.Name and the kubewright.io/addon label.
const (
	Flannel      = "flannel"
	Calico       = "calico"
	Weave        = "weave"
	CoreDNS      = "coredns"
	KubeDNS      = "kube-dns"
	NodeLocalDNS = "nodelocaldns"
)

const (
	// DefaultDNSReplicas keeps DNS answering while one node is down or
	// drained; the pods prefer different nodes.
	DefaultDNSReplicas = 2
	// NodeLocalDNSIP is the link-local address NodeLocal DNSCache listens on
	// on every node, the value the upstream documentation uses.
	NodeLocalDNSIP = "169.254.20.10"
	// UpstreamCNIBinDir is where the upstream manifests install CNI plugins.
	UpstreamCNIBinDir = "/opt/cni/bin"
)

// Params are the cluster settings the add-ons depend on. ParamsFromInventory
// fills everything the inventory knows; the caller adds the rest.
type Params struct {
	// Plugin is the CNI plugin: calico | flannel | weave.
	Plugin string
	// PodCIDR is the cluster's pod network (IPv4; the CNI manifests here are
	// IPv4-only). ServiceCIDR is the Services' range; the DNS Service gets
	// its 10th address (DNSServiceIP).
	PodCIDR, ServiceCIDR string
	// Encapsulation: calico ipip|vxlan|none, flannel vxlan|host-gw ("" =
	// vxlan for both); weave ignores it.
	Encapsulation string
	// MTU of pod interfaces; 0 leaves each plugin's own detection.
	MTU int
	// WeavePassword is the resolved value of network.weavePasswordEnv. It is
	// rendered only into the weave-passwd Secret and never printed.
	WeavePassword string

	// DNSProvider is coredns | kube-dns.
	DNSProvider string
	// ClusterDomain ("" = cluster.local).
	ClusterDomain string
	// Upstreams are the resolvers DNS forwards to (IP or IP:port); none means
	// the nodes' /etc/resolv.conf.
	Upstreams []string
	// NodeLocalDNS adds NodeLocal DNSCache on every node.
	NodeLocalDNS bool
	// DNSReplicas of the DNS Deployment (0 = DefaultDNSReplicas).
	DNSReplicas int
	// ProxyMode is kube-proxy's mode, iptables ("") or ipvs. NodeLocal
	// DNSCache is wired differently in each (see nodelocaldns.go).
	ProxyMode string

	// CNIBinDir is where the container runtime looks for CNI plugins (its
	// bin_dir); the CNI add-ons install their plugins there. "" is
	// render.CNIBinDirDebian, the same default the containerd config uses.
	CNIBinDir string

	// Registry, when set (host[:port][/prefix]), replaces the registry part of
	// every default image ref: ghcr.io/flannel-io/flannel:v0.28.9 becomes
	// mirror.example:5000/flannel-io/flannel:v0.28.9. "" keeps upstream's.
	Registry string
	// Images maps a component (docs/addons.md lists them) to the image ref
	// the artifacts provide. It wins over the default and over Registry,
	// because it names exactly what the bundle imported into containerd.
	Images map[string]string

	// The optional add-ons, all off in the zero value (docs/addons.md).
	MetricsServer bool
	Storage       StorageParams
	Monitoring    MonitoringParams
	Logging       LoggingParams
	Ingress       IngressParams
}

// Addon is one add-on's objects, in the order they should be applied
// (upstream's order: namespaces, CRDs and RBAC before the workloads).
type Addon struct {
	Name    string
	Objects []*unstructured.Unstructured
	// ExtraImages are images the add-on's operators start themselves
	// (longhorn's engine and instance managers, Ceph's daemons, CSI
	// sidecars): in no pod template, but needed offline all the same.
	ExtraImages []string
}

// ParamsFromInventory takes every add-on setting from a loaded (defaulted and
// validated) inventory. WeavePassword (a secret from the environment), Images
// (from the artifacts) and CNIBinDir (from the container runtime step) are
// the caller's to fill.
func ParamsFromInventory(c *inventory.Cluster) Params {
	s := c.Spec
	p := Params{
		Plugin:        s.Network.Plugin,
		PodCIDR:       s.Network.PodCIDR,
		ServiceCIDR:   s.Network.ServiceCIDR,
		Encapsulation: s.Network.Encapsulation,
		MTU:           s.Network.MTU,
		DNSProvider:   s.DNS.Provider,
		ClusterDomain: s.DNS.ClusterDomain,
		Upstreams:     slices.Clone(s.DNS.Upstreams),
		NodeLocalDNS:  s.DNS.NodeLocalDNS,
		DNSReplicas:   DefaultDNSReplicas,
		ProxyMode:     s.Kubernetes.ProxyMode,
	}
	// The mirror is a URL for containerd; an image ref only has room for
	// its host (a URL path means something else to containerd).
	if u, err := url.Parse(s.RegistryMirror); err == nil && s.RegistryMirror != "" {
		p.Registry = u.Host
	}
	optionalFromInventory(c, &p)
	return p
}

// FieldError is one unusable parameter, named by the inventory field it comes
// from (or the Params field, for those the inventory does not have), with the
// fix.
type FieldError struct {
	Field, Msg, Fix string
}

func (e FieldError) Error() string {
	s := e.Field + ": " + e.Msg
	if e.Fix != "" {
		s += "; fix: " + e.Fix
	}
	return s
}

// Errors are all the problems Render found in one Params, in a fixed order.
type Errors []FieldError

func (e Errors) Error() string {
	if len(e) == 1 {
		return "add-ons: " + e[0].Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "add-ons: %d errors:", len(e))
	for _, fe := range e {
		b.WriteString("\n  ")
		b.WriteString(fe.Error())
	}
	return b.String()
}

// Render returns the network add-on, then the DNS add-on, then (when enabled)
// NodeLocal DNSCache, then the optional add-ons that are on: storage
// (longhorn or rook-ceph), metrics-server, monitoring, logging,
// ingress-nginx. Bad parameters are all reported at once as Errors.
func Render(p Params) ([]Addon, error) {
	p = withDefaults(p)
	if errs := validate(p); len(errs) > 0 {
		return nil, errs
	}
	steps := []renderStep{
		{p.Plugin, networkRenderers[p.Plugin]},
		{p.DNSProvider, dnsRenderers[p.DNSProvider]},
	}
	if p.NodeLocalDNS {
		steps = append(steps, renderStep{NodeLocalDNS, renderNodeLocalDNS})
	}
	out := make([]Addon, 0, len(steps))
	for _, s := range steps {
		objs, err := s.render(p)
		if err != nil {
			return nil, err
		}
		labelAll(s.name, objs)
		out = append(out, Addon{Name: s.name, Objects: objs})
	}
	for _, s := range optionalSteps(p) {
		objs, extra, err := s.render(p)
		if err != nil {
			return nil, err
		}
		labelAll(s.name, objs)
		out = append(out, Addon{Name: s.name, Objects: objs, ExtraImages: extra})
	}
	return out, nil
}

// Images lists every image ref the add-ons of p run, sorted and without
// duplicates: what an offline bundle must carry.
func Images(p Params) ([]string, error) {
	addons, err := Render(p)
	if err != nil {
		return nil, err
	}
	var refs []string
	for _, a := range addons {
		refs = append(refs, a.ExtraImages...)
		for _, o := range a.Objects {
			if !slices.Contains(workloadKinds, o.GetKind()) {
				continue
			}
			ps, err := podSpec(a.Name, o)
			if err != nil {
				return nil, err
			}
			for _, c := range containers(ps) {
				if img, _ := c["image"].(string); img != "" {
					refs = append(refs, img)
				}
			}
		}
	}
	slices.Sort(refs)
	return slices.Compact(refs), nil
}

// renderer turns validated, defaulted Params into one add-on's objects.
type renderer func(Params) ([]*unstructured.Unstructured, error)

type renderStep struct {
	name   string
	render renderer
}

var (
	networkRenderers = map[string]renderer{
		Calico:  renderCalico,
		Flannel: renderFlannel,
		Weave:   renderWeave,
	}
	dnsRenderers = map[string]renderer{
		CoreDNS: renderCoreDNS,
		KubeDNS: renderKubeDNS,
	}
	encapsulations = map[string][]string{
		Calico:  {"ipip", "vxlan", "none"},
		Flannel: {"vxlan", "host-gw"},
	}
)

func withDefaults(p Params) Params {
	if p.Encapsulation == "" && (p.Plugin == Calico || p.Plugin == Flannel) {
		p.Encapsulation = inventory.DefaultEncapsulation
	}
	if p.ClusterDomain == "" {
		p.ClusterDomain = inventory.DefaultClusterDomain
	}
	if p.DNSReplicas == 0 {
		p.DNSReplicas = DefaultDNSReplicas
	}
	if p.CNIBinDir == "" {
		p.CNIBinDir = render.CNIBinDirDebian
	}
	if p.ProxyMode == "" {
		p.ProxyMode = inventory.DefaultProxyMode
	}
	return optionalDefaults(p)
}

func validate(p Params) Errors {
	var errs Errors
	add := func(field, fix, format string, args ...any) {
		errs = append(errs, FieldError{Field: field, Msg: fmt.Sprintf(format, args...), Fix: fix})
	}
	plugins := []string{Calico, Flannel, Weave}
	switch {
	case p.Plugin == "":
		add("spec.network.plugin", "set it to one of: "+strings.Join(plugins, ", "), "no network plugin")
	case networkRenderers[p.Plugin] == nil:
		add("spec.network.plugin", "use one of: "+strings.Join(plugins, ", "), "unknown network plugin %q", p.Plugin)
	}
	if valid, ok := encapsulations[p.Plugin]; ok && !slices.Contains(valid, p.Encapsulation) {
		fix := "use one of: " + strings.Join(valid, ", ")
		for _, other := range plugins {
			if vs := encapsulations[other]; other != p.Plugin && slices.Contains(vs, p.Encapsulation) {
				fix += fmt.Sprintf(" (%s is a %s mode)", p.Encapsulation, other)
			}
		}
		add("spec.network.encapsulation", fix, "%s does not support encapsulation %q", p.Plugin, p.Encapsulation)
	}
	if pf, err := netip.ParsePrefix(p.PodCIDR); err != nil {
		add("spec.network.podCIDR", "write a CIDR such as "+inventory.DefaultPodCIDR, "invalid pod CIDR %q", p.PodCIDR)
	} else if pf != pf.Masked() {
		add("spec.network.podCIDR", "write the network address: "+pf.Masked().String(), "pod CIDR %s has host bits set", pf)
	} else if !pf.Addr().Is4() {
		add("spec.network.podCIDR", "use an IPv4 range such as "+inventory.DefaultPodCIDR, "pod CIDR %s is IPv6; the network add-ons are rendered for IPv4 only", pf)
	}
	if p.MTU != 0 && (p.MTU < 576 || p.MTU > 9216) {
		add("spec.network.mtu", fmt.Sprintf("use the underlay MTU minus the overlay's overhead, e.g. %d for a 1500-byte network", inventory.DefaultMTU), "MTU %d is out of range (576-9216)", p.MTU)
	}
	if !path.IsAbs(p.CNIBinDir) || path.Clean(p.CNIBinDir) != p.CNIBinDir {
		add("CNIBinDir", "pass the container runtime's CNI bin_dir, e.g. "+render.CNIBinDirDebian, "CNI bin dir %q is not a clean absolute path", p.CNIBinDir)
	}

	providers := []string{CoreDNS, KubeDNS}
	switch {
	case p.DNSProvider == "":
		add("spec.dns.provider", "set it to one of: "+strings.Join(providers, ", "), "no DNS provider")
	case dnsRenderers[p.DNSProvider] == nil:
		add("spec.dns.provider", "use one of: "+strings.Join(providers, ", "), "unknown DNS provider %q", p.DNSProvider)
	}
	if _, err := DNSServiceIP(p.ServiceCIDR); err != nil {
		add("spec.network.serviceCIDR", "write a CIDR such as "+inventory.DefaultServiceCIDR, "%v", err)
	}
	if !isDNSSubdomain(p.ClusterDomain) {
		add("spec.dns.clusterDomain", "use a lowercase DNS name, e.g. "+inventory.DefaultClusterDomain, "invalid cluster domain %q", p.ClusterDomain)
	}
	for i, u := range p.Upstreams {
		if _, err := upstream(u); err != nil {
			add(fmt.Sprintf("spec.dns.upstreams[%d]", i), "write a resolver IP, optionally with a port, e.g. 1.1.1.1 or 10.0.0.2:53", "invalid upstream DNS server %q", u)
		}
	}
	if p.DNSProvider == KubeDNS && len(p.Upstreams) > kubeDNSMaxUpstreams {
		add("spec.dns.upstreams", fmt.Sprintf("list at most %d, or use provider: coredns", kubeDNSMaxUpstreams), "kube-dns accepts at most %d upstream servers, got %d", kubeDNSMaxUpstreams, len(p.Upstreams))
	}
	if p.DNSReplicas < 0 {
		add("DNSReplicas", fmt.Sprintf("use 1 or more (0 means %d)", DefaultDNSReplicas), "DNS replicas %d is negative", p.DNSReplicas)
	}
	if modes := []string{"iptables", "ipvs"}; !slices.Contains(modes, p.ProxyMode) {
		add("spec.kubernetes.proxyMode", "use one of: "+strings.Join(modes, ", "), "unknown proxy mode %q", p.ProxyMode)
	}

	if p.Registry != "" {
		if reg, _, err := splitRef(p.Registry + "/x"); err != nil || reg == "docker.io" || strings.ContainsAny(p.Registry, "@") {
			add("spec.registryMirror", "use a registry host with a '.' or a port, e.g. https://mirror.example:5000", "registry %q is not a registry host", p.Registry)
		}
	}
	validateOptional(p, add)
	comps := make([]string, 0, len(p.Images))
	for c := range p.Images {
		comps = append(comps, c)
	}
	slices.Sort(comps)
	for _, c := range comps {
		if _, _, err := splitRef(p.Images[c]); err != nil {
			add("artifacts image "+c, "fix the image name in the artifacts manifest", "invalid image reference %q", p.Images[c])
		}
	}
	return errs
}

// upstream normalises a resolver address for Corefiles and kube-dns.
func upstream(s string) (string, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.String(), nil
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return "", err
	}
	return ap.String(), nil
}
