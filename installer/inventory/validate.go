package inventory

import (
	"fmt"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Valid values of the enumerated settings, in the order messages list them.
var (
	ValidPlugins          = []string{"calico", "flannel", "weave"}
	ValidDNSProviders     = []string{"coredns", "kube-dns"}
	ValidProxyModes       = []string{"iptables", "ipvs"}
	ValidTaintEffects     = []string{"NoSchedule", "PreferNoSchedule", "NoExecute"}
	ValidStorageProviders = []string{StorageNone, "longhorn", "rook-ceph"}
	ValidIngressModes     = []string{"hostNetwork", "nodePort"}
	ValidArtifactSources  = []string{"dir", "download", "bundle"}
	ValidEncapsulations   = map[string][]string{
		"calico":  {"vxlan", "ipip", "none"},
		"flannel": {"vxlan", "host-gw"},
	}
)

// reservedPorts are fixed control-plane ports on the masters; haproxy or the
// apiserver moved onto one of them would fail to bind.
var reservedPorts = map[int]string{
	2379:  "etcd client",
	2380:  "etcd peer",
	10250: "kubelet",
	10256: "kube-proxy health",
	10257: "kube-controller-manager",
	10259: "kube-scheduler",
}

var (
	dnsLabelRe   = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	envNameRe    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	labelNameRe  = regexp.MustCompile(`^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$`)
	versionRe    = regexp.MustCompile(`^v\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$`)
	ifaceRe      = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.@-]{0,14}$`)
	sshUserRe    = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`)
	groupNameFix = "use a lowercase DNS label: letters, digits and '-', starting and ending with a letter or digit"
)

func isDNSLabel(s string) bool { return len(s) <= 63 && dnsLabelRe.MatchString(s) }

func isDNSSubdomain(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if !isDNSLabel(l) {
			return false
		}
	}
	return true
}

// isHostname accepts DNS names in any case (SSH does not care).
func isHostname(s string) bool { return isDNSSubdomain(strings.ToLower(s)) }

func (p *parser) checkHeader(c *Cluster) {
	switch {
	case p.failed["apiVersion"]:
	case c.APIVersion == "":
		p.errorf("apiVersion", "add \"apiVersion: "+APIVersion+"\" at the top of the file", "missing apiVersion")
	case c.APIVersion != APIVersion:
		p.errorf("apiVersion", "set apiVersion: "+APIVersion, "unsupported apiVersion %q; this release reads %s", c.APIVersion, APIVersion)
	}
	switch {
	case p.failed["kind"]:
	case c.Kind == "":
		p.errorf("kind", "add \"kind: "+Kind+"\" at the top of the file", "missing kind")
	case c.Kind != Kind:
		p.errorf("kind", "set kind: "+Kind, "unsupported kind %q", c.Kind)
	}
	switch {
	case p.failed["metadata.name"]:
	case c.Metadata.Name == "":
		p.errorf("metadata.name", "add metadata: {name: mycluster}; the name keys the cluster's state directory", "missing cluster name")
	case !isDNSLabel(c.Metadata.Name):
		p.errorf("metadata.name", groupNameFix, "cluster name %q is not a DNS label", c.Metadata.Name)
	}
}

// splitVIPPrefix accepts "vip: 10.0.0.10/24" as shorthand for vip + vipPrefix.
func (p *parser) splitVIPPrefix(c *Cluster) {
	ep := &c.Spec.ControlPlaneEndpoint
	addr, pfx, ok := strings.Cut(ep.VIP, "/")
	if !ok {
		return
	}
	n, err := strconv.Atoi(pfx)
	if err != nil {
		p.errorf("spec.controlPlaneEndpoint.vip", "write the VIP as an address, optionally with a prefix length, e.g. 10.0.0.10/24", "invalid prefix length in VIP %q", ep.VIP)
		return
	}
	if ep.VIPPrefix != 0 && ep.VIPPrefix != n {
		p.errorf("spec.controlPlaneEndpoint.vipPrefix", "remove one of the two prefix lengths", "vipPrefix %d contradicts the /%d in vip %q", ep.VIPPrefix, n, ep.VIP)
	}
	ep.VIP, ep.VIPPrefix = addr, n
}

func (p *parser) validate(c *Cluster, o options) {
	p.validateHosts(c, o)
	p.validateGroups(c)
	p.validateBastions(c)
	p.validateKubernetes(c)
	p.validateEndpoint(c, o)
	p.validateNetwork(c, o)
	p.validateAddons(c, o)
	p.validateAgent(c)
}

// who names an expanded host in messages, since its path is the range entry.
func (p *parser) who(c *Cluster, i int) string {
	if p.src[i].ranged {
		return fmt.Sprintf(" (host %q)", c.Spec.Hosts[i].Name)
	}
	return ""
}

func (p *parser) oneOf(path, val string, valid []string, what string) bool {
	if slices.Contains(valid, val) {
		return true
	}
	p.errorf(path, "use one of: "+strings.Join(valid, ", "), "unknown %s %q%s", what, val, didYouMean(val, valid))
	return false
}

func (p *parser) port(path string, v int, what string) bool {
	if v < 1 || v > 65535 {
		p.errorf(path, "use a port between 1 and 65535", "%s %d is out of range", what, v)
		return false
	}
	return true
}

// envVar checks the name of an environment variable holding a secret and
// warns when it is unset: the run would fail later, at the first host.
func (p *parser) envVar(path, name string, o options) (string, bool) {
	if name == "" {
		return "", false
	}
	if !envNameRe.MatchString(name) {
		p.errorf(path, "name the variable, not its value: letters, digits and '_', e.g. KW_SSH_PASSWORD", "%q is not a valid environment variable name", name)
		return "", false
	}
	v, ok := o.lookupEnv(name)
	if !ok {
		p.warnf(path, "export "+name+" before running kubewright", "environment variable %s is not set", name)
	}
	return v, ok
}

// fieldPath is the path of a host field when written on the host, or the
// hostDefaults field it was inherited from.
func (p *parser) fieldPath(hp, key string) string {
	if p.explicit(hp+"."+key) || !p.explicit("spec.hostDefaults."+key) {
		return hp + "." + key
	}
	return "spec.hostDefaults." + key
}

func (p *parser) validateHosts(c *Cluster, o options) {
	hd := c.Spec.HostDefaults
	if !p.port("spec.hostDefaults.port", hd.Port, "SSH port") {
		hd.Port = DefaultSSHPort
	}
	if !sshUserRe.MatchString(hd.User) {
		p.errorf("spec.hostDefaults.user", "write only the login name, e.g. root", "invalid SSH user %q", hd.User)
	}
	p.envVar("spec.hostDefaults.passwordEnv", hd.PasswordEnv, o)
	p.envVar("spec.hostDefaults.sudoPasswordEnv", hd.SudoPasswordEnv, o)

	if len(c.Spec.Hosts) == 0 && !p.failed["spec.hosts"] && len(p.src) == 0 {
		p.errorf("spec.hosts", "list the machines under spec.hosts, each with name and address", "no hosts")
		return
	}
	groups := c.Spec.Groups
	type seenAt struct {
		i    int
		line int
	}
	names := map[string]seenAt{}
	sshAddrs := map[string]seenAt{}
	internal := map[string]seenAt{}
	for i := range c.Spec.Hosts {
		h := &c.Spec.Hosts[i]
		hp := p.hostPath(c, i)
		who := p.who(c, i)
		switch {
		case p.failed[hp+".name"]:
		case h.Name == "":
			p.errorf(hp+".name", "add name: the node name, e.g. master1", "missing host name")
		case !isDNSSubdomain(h.Name):
			p.errorf(hp+".name", "use lowercase letters, digits, '-' and '.', starting and ending with a letter or digit", "host name %q is not a valid node name", h.Name)
		case h.Name == "all":
			p.errorf(hp+".name", "rename the host", "host name \"all\" is reserved: it selects every host")
		default:
			if _, isGroup := groups[h.Name]; isGroup {
				p.errorf(hp+".name", "rename the host or the group", "host name %q is also a group name; selectors could not tell them apart", h.Name)
			}
			if first, dup := names[h.Name]; dup {
				p.errorf(hp+".name", "give each host a unique name", "duplicate host name %q (also at line %d)", h.Name, first.line)
			} else {
				names[h.Name] = seenAt{i, p.at(hp + ".name").line}
			}
		}

		addrOK := false
		switch {
		case p.failed[hp+".address"]:
		case h.Address == "":
			p.errorf(hp+".address", "add address: the IP or DNS name kubewright reaches the host at over SSH", "missing address%s", who)
		default:
			if _, err := netip.ParseAddr(h.Address); err != nil && !isHostname(h.Address) {
				p.errorf(hp+".address", "write an IP address (10.0.0.11) or a DNS name (node1.example.com)", "invalid address %q%s", h.Address, who)
			} else {
				addrOK = true
			}
		}
		if !p.port(p.fieldPath(hp, "port"), h.Port, "SSH port") {
			h.Port = DefaultSSHPort
		}
		if h.User != hd.User && !sshUserRe.MatchString(h.User) {
			p.errorf(hp+".user", "write only the login name, e.g. root", "invalid SSH user %q", h.User)
		}
		if addrOK {
			key := net.JoinHostPort(canonAddr(h.Address), strconv.Itoa(h.Port))
			if first, dup := sshAddrs[key]; dup {
				ap := hp + ".address"
				other := c.Spec.Hosts[first.i].Name
				p.errorf(ap, "give each host its own address", "duplicate address %s (also used by %s at line %d)%s", h.Address, other, first.line, who)
				addrOK = false // one report per pair of hosts
			} else {
				sshAddrs[key] = seenAt{i, p.at(hp + ".address").line}
			}
		}
		ip := hp + ".internalAddress"
		switch {
		case p.failed[ip]:
		case h.InternalAddress == "" && addrOK:
			p.errorf(ip, "add internalAddress: the host's IP on the cluster network", "address %q is a DNS name, so internalAddress is required%s", h.Address, who)
		case h.InternalAddress == "":
		default:
			a, err := netip.ParseAddr(h.InternalAddress)
			if err != nil {
				p.errorf(ip, "write the host's IP on the cluster network, e.g. 10.0.0.11", "internalAddress %q is not an IP address%s", h.InternalAddress, who)
				break
			}
			key := a.Unmap().String()
			if first, dup := internal[key]; dup {
				if addrOK || p.explicit(ip) {
					other := c.Spec.Hosts[first.i].Name
					where := ip
					if !p.explicit(ip) {
						where = hp + ".address"
					}
					p.errorf(where, "set internalAddress to each host's own IP on the cluster network", "duplicate internal address %s (also used by %s at line %d)%s", key, other, first.line, who)
				}
			} else {
				line := p.at(ip).line
				internal[key] = seenAt{i, line}
			}
		}
		if h.PasswordEnv != hd.PasswordEnv || p.explicit(hp+".passwordEnv") {
			p.envVar(hp+".passwordEnv", h.PasswordEnv, o)
		}
		if h.SudoPasswordEnv != hd.SudoPasswordEnv || p.explicit(hp+".sudoPasswordEnv") {
			p.envVar(hp+".sudoPasswordEnv", h.SudoPasswordEnv, o)
		}
		for _, k := range sortedKeys(h.Labels) {
			lp := joinPath(hp+".labels", k)
			if msg := labelKeyProblem(k); msg != "" {
				p.errorf(lp, "use an optional DNS prefix and a name of up to 63 letters, digits, '-', '_' or '.', e.g. kubewright.io/zone", "invalid label key %q: %s", k, msg)
			}
			if v := h.Labels[k]; !isLabelValue(v) {
				p.errorf(lp, "use up to 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit", "invalid label value %q", v)
			}
		}
		for j, t := range h.Taints {
			tp := indexPath(hp+".taints", j)
			if t.Key == "" {
				p.errorf(tp+".key", "add key: e.g. dedicated", "taint has no key")
			} else if msg := labelKeyProblem(t.Key); msg != "" {
				p.errorf(tp+".key", "use a key like a label key, e.g. dedicated or example.com/gpu", "invalid taint key %q: %s", t.Key, msg)
			}
			if !isLabelValue(t.Value) {
				p.errorf(tp+".value", "use up to 63 letters, digits, '-', '_' or '.'", "invalid taint value %q", t.Value)
			}
			if t.Effect == "" {
				p.errorf(tp+".effect", "add effect: one of "+strings.Join(ValidTaintEffects, ", "), "taint has no effect")
			} else {
				p.oneOf(tp+".effect", t.Effect, ValidTaintEffects, "taint effect")
			}
		}
	}
}

func canonAddr(s string) string {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().String()
	}
	return strings.ToLower(strings.TrimSuffix(s, "."))
}

func labelKeyProblem(k string) string {
	prefix, name, hasPrefix := strings.Cut(k, "/")
	if !hasPrefix {
		name, prefix = prefix, ""
	} else if !isDNSSubdomain(prefix) {
		return "prefix must be a lowercase DNS name"
	}
	if name == "" || len(name) > 63 || !labelNameRe.MatchString(name) {
		return "name must be 1-63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
	}
	return ""
}

func isLabelValue(v string) bool { return v == "" || len(v) <= 63 && labelNameRe.MatchString(v) }

// bastionUsers returns the names of hosts other hosts jump through.
func bastionUsers(c *Cluster) map[string]bool {
	out := map[string]bool{}
	for _, h := range c.Spec.Hosts {
		if h.Bastion != "" && !strings.Contains(h.Bastion, "@") {
			out[h.Bastion] = true
		}
	}
	return out
}

func (p *parser) validateGroups(c *Cluster) {
	g := c.Spec.Groups
	for _, name := range sortedKeys(g) {
		gp := joinPath("spec.groups", name)
		if name == "all" {
			p.errorf(gp, "rename the group; \"all\" already selects every host", "group name \"all\" is reserved")
		} else if !isDNSLabel(name) {
			p.errorf(gp, groupNameFix, "group name %q is not a DNS label", name)
		}
	}
	if m, ok := g[GroupMasters]; !ok || p.failed["spec.groups.masters"] {
		if !p.failed["spec.groups"] && !p.failed["spec.groups.masters"] {
			p.errorf("spec.groups", "add groups: {masters: [NAME, ...]} listing the control-plane hosts", "no masters group")
		}
	} else if len(m) == 0 && p.explicit("spec.groups.masters") && !p.hasMemberErrors("spec.groups.masters") {
		p.errorf("spec.groups.masters", "list at least one host (three for high availability)", "masters group is empty")
	}
	if e := g[GroupEtcd]; p.explicit("spec.groups.etcd") && len(e) == 0 && !p.hasMemberErrors("spec.groups.etcd") && !p.failed["spec.groups.etcd"] {
		p.errorf("spec.groups.etcd", "list the etcd members, or remove the group to run etcd on the masters", "etcd group is empty")
	} else if n := len(e); n > 0 && n%2 == 0 {
		p.warnf("spec.groups.etcd", "use an odd number of etcd members (3 or 5)", "etcd has %d members; an even number tolerates no more failures than %d", n, n-1)
	}
	jumps := bastionUsers(c)
	for i, h := range c.Spec.Hosts {
		if len(h.Name) == 0 || jumps[h.Name] {
			continue
		}
		in := false
		for _, members := range g {
			if slices.Contains(members, h.Name) {
				in = true
				break
			}
		}
		if !in {
			p.errorf(p.hostPath(c, i)+".name", "add it to a group under spec.groups (e.g. workers), or remove it", "host %q is in no group", h.Name)
		}
	}
}

// hasMemberErrors is true when an error was reported inside the group's list,
// so "group is empty" would only repeat it.
func (p *parser) hasMemberErrors(gp string) bool {
	for _, e := range p.errs {
		if strings.HasPrefix(e.Path, gp+"[") {
			return true
		}
	}
	return false
}

// Bastion is one hop on the way to a host: either another inventory host
// (Host set) or an external jump host written as user@host[:port].
type Bastion struct {
	Host    *Host
	User    string
	Address string
	Port    int
}

// parseExternalBastion parses user@host[:port].
func parseExternalBastion(s string) (Bastion, error) {
	user, hostport, _ := strings.Cut(s, "@")
	if user == "" || !sshUserRe.MatchString(user) {
		return Bastion{}, fmt.Errorf("missing or invalid user before \"@\"")
	}
	host, port := hostport, DefaultSSHPort
	if h, ps, err := net.SplitHostPort(hostport); err == nil {
		n, err := strconv.Atoi(ps)
		if err != nil || n < 1 || n > 65535 {
			return Bastion{}, fmt.Errorf("invalid port %q", ps)
		}
		host, port = h, n
	}
	if _, err := netip.ParseAddr(host); err != nil && !isHostname(host) {
		return Bastion{}, fmt.Errorf("invalid host %q", host)
	}
	return Bastion{User: user, Address: host, Port: port}, nil
}

func (p *parser) validateBastions(c *Cluster) {
	idx := map[string]int{}
	var names []string
	for i, h := range c.Spec.Hosts {
		if _, dup := idx[h.Name]; !dup {
			idx[h.Name] = i
			names = append(names, h.Name)
		}
	}
	bad := map[int]bool{}
	suggested := map[string]string{}
	for i, h := range c.Spec.Hosts {
		if h.Bastion == "" {
			continue
		}
		bp := p.fieldPath(p.hostPath(c, i), "bastion")
		if strings.Contains(h.Bastion, "@") {
			if _, err := parseExternalBastion(h.Bastion); err != nil {
				p.errorf(bp, "write an external bastion as user@host[:port]", "invalid bastion %q: %v", h.Bastion, err)
			}
			continue
		}
		j, ok := idx[h.Bastion]
		switch {
		case !ok:
			// Hosts of one range share their bastion; suggest once per value.
			s, done := suggested[h.Bastion]
			if !done {
				s = suggest(h.Bastion, names)
				suggested[h.Bastion] = s
			}
			fix := "name a host in spec.hosts, or write an external bastion as user@host[:port]"
			hint := ""
			if s != "" {
				fix = fmt.Sprintf("change it to %q, or write an external bastion as user@host[:port]", s)
				hint = fmt.Sprintf(" (did you mean %q?)", s)
			}
			p.errorf(bp, fix, "bastion %q is not a host in spec.hosts%s", h.Bastion, hint)
			bad[i] = true
		case j == i:
			p.errorf(bp, "remove the bastion, or name another host", "host %q is its own bastion", h.Name)
			bad[i] = true
		}
	}
	// Follow each chain; a chain that comes back to a host already on it loops.
	reported := map[string]bool{}
	for i := range c.Spec.Hosts {
		var chain []int
		onChain := map[int]int{}
		for cur := i; ; {
			if k, seen := onChain[cur]; seen {
				cycle := chain[k:]
				first := slices.Min(cycle)
				key := fmt.Sprint(first, len(cycle))
				if !reported[key] {
					reported[key] = true
					// Start the loop at its first host in file order so the
					// message is the same whichever host we started from.
					at := slices.Index(cycle, first)
					cycle = append(cycle[at:], cycle[:at]...)
					var hops []string
					for _, x := range cycle {
						hops = append(hops, c.Spec.Hosts[x].Name)
					}
					hops = append(hops, c.Spec.Hosts[first].Name)
					p.errorf(p.fieldPath(p.hostPath(c, first), "bastion"), "let one host on the loop be reached directly (no bastion)", "bastion chain loops: %s", strings.Join(hops, " -> "))
				}
				break
			}
			onChain[cur] = len(chain)
			chain = append(chain, cur)
			b := c.Spec.Hosts[cur].Bastion
			next, ok := idx[b]
			if b == "" || strings.Contains(b, "@") || !ok || bad[cur] {
				break
			}
			cur = next
		}
	}
}

func (p *parser) validateKubernetes(c *Cluster) {
	k := c.Spec.Kubernetes
	const kp = "spec.kubernetes"
	if !versionRe.MatchString(k.Version) {
		fix := "write a release like " + DefaultKubernetesVersion
		if versionRe.MatchString("v" + k.Version) {
			fix = "write it as v" + k.Version
		}
		p.errorf(kp+".version", fix, "invalid Kubernetes version %q", k.Version)
	}
	// A defaulted clusterName is metadata.name, already checked.
	if p.explicit(kp+".clusterName") && !isDNSLabel(k.ClusterName) {
		p.errorf(kp+".clusterName", groupNameFix, "cluster name %q is not a DNS label", k.ClusterName)
	}
	p.oneOf(kp+".proxyMode", k.ProxyMode, ValidProxyModes, "proxy mode")
	if p.port(kp+".apiServerPort", k.APIServerPort, "apiserver port") {
		if what, ok := reservedPorts[k.APIServerPort]; ok {
			p.errorf(kp+".apiServerPort", fmt.Sprintf("use another port, e.g. %d", DefaultAPIServerPort), "apiserver port %d is the %s port", k.APIServerPort, what)
		}
	}
}

// masterAddrs returns the internal IPs of the masters (invalid ones skipped;
// they are reported elsewhere).
func masterAddrs(c *Cluster) []struct {
	name string
	ip   netip.Addr
} {
	var out []struct {
		name string
		ip   netip.Addr
	}
	for _, h := range c.Masters() {
		if a, err := netip.ParseAddr(h.InternalAddress); err == nil {
			out = append(out, struct {
				name string
				ip   netip.Addr
			}{h.Name, a.Unmap()})
		}
	}
	return out
}

// suggestVIP proposes a free address in the first master's subnet, for fixes.
func suggestVIP(c *Cluster, bitsLen int) string {
	m := masterAddrs(c)
	if len(m) == 0 || !m[0].ip.Is4() {
		return "10.0.0.10"
	}
	used := map[netip.Addr]bool{}
	for _, h := range c.Spec.Hosts {
		if a, err := netip.ParseAddr(h.InternalAddress); err == nil {
			used[a.Unmap()] = true
		}
		if a, err := netip.ParseAddr(h.Address); err == nil {
			used[a.Unmap()] = true
		}
	}
	pfx, err := m[0].ip.Prefix(bitsLen)
	if err != nil {
		return "10.0.0.10"
	}
	a := pfx.Addr().Next()
	for i := 0; i < 1024 && pfx.Contains(a); i++ {
		if !used[a] && a.Next().IsValid() && pfx.Contains(a.Next()) {
			// Prefer .10-ish addresses; skipping the first few keeps clear
			// of the gateway that usually sits at .1.
			if i >= 9 {
				return a.String()
			}
		}
		a = a.Next()
	}
	return "an unused address in " + pfx.String()
}

func (p *parser) validateEndpoint(c *Cluster, o options) {
	ep := c.Spec.ControlPlaneEndpoint
	const ep0 = "spec.controlPlaneEndpoint"
	vipPath := ep0 + ".vip"
	var vip netip.Addr
	switch {
	case p.failed[vipPath]:
	case ep.VIP == "":
		p.errorf(vipPath, fmt.Sprintf("add vip: an unused address in the masters' subnet, e.g. %s", suggestVIP(c, DefaultVIPPrefixV4)), "missing control-plane VIP")
	default:
		a, err := netip.ParseAddr(ep.VIP)
		if err != nil || a.Zone() != "" {
			p.errorf(vipPath, fmt.Sprintf("write an IP address, e.g. %s", suggestVIP(c, DefaultVIPPrefixV4)), "VIP %q is not an IP address", ep.VIP)
			break
		}
		vip = a.Unmap()
	}
	maxBits := 32
	if vip.IsValid() && vip.Is6() {
		maxBits = 128
	}
	prefixOK := ep.VIPPrefix >= 1 && ep.VIPPrefix <= maxBits
	if !prefixOK {
		p.errorf(ep0+".vipPrefix", fmt.Sprintf("use the prefix length of the masters' subnet, 1 to %d, e.g. 24", maxBits), "invalid VIP prefix length %d", ep.VIPPrefix)
	}
	if vip.IsValid() {
		for _, h := range c.Spec.Hosts {
			for _, a := range []string{h.Address, h.InternalAddress} {
				if x, err := netip.ParseAddr(a); err == nil && x.Unmap() == vip {
					p.errorf(vipPath, fmt.Sprintf("choose an unused address for the VIP, e.g. %s", suggestVIP(c, ep.VIPPrefix)), "VIP %s is the address of host %q", vip, h.Name)
					goto next
				}
			}
		}
	next:
		if vip.IsUnspecified() || vip.IsLoopback() || vip.IsMulticast() || vip.IsLinkLocalUnicast() {
			p.errorf(vipPath, "use a unicast address in the masters' subnet", "VIP %s is not a usable unicast address", vip)
		}
	}
	if vip.IsValid() && prefixOK {
		subnet := netip.PrefixFrom(vip, ep.VIPPrefix).Masked()
		var outside []string
		for _, m := range masterAddrs(c) {
			if m.ip.Is4() == vip.Is4() && !subnet.Contains(m.ip) {
				outside = append(outside, fmt.Sprintf("%s has %s", m.name, m.ip))
			}
		}
		if len(outside) > 0 {
			p.errorf(vipPath, fmt.Sprintf("choose a VIP inside the masters' subnet, or set vipPrefix if that subnet is larger than /%d", ep.VIPPrefix), "VIP %s is outside the masters' subnet %s (%s)", vip, subnet, strings.Join(outside, ", "))
		}
		if vip.Is4() && ep.VIPPrefix <= 30 {
			last := lastAddr(subnet)
			if vip == subnet.Addr() || vip == last {
				p.errorf(vipPath, "choose a host address inside "+subnet.String(), "VIP %s is the network or broadcast address of %s", vip, subnet)
			}
		}
	}
	portOK := p.port(ep0+".port", ep.Port, "control-plane endpoint port")
	if portOK {
		if what, ok := reservedPorts[ep.Port]; ok {
			p.errorf(ep0+".port", fmt.Sprintf("use another port, e.g. %d", DefaultEndpointPort), "control-plane endpoint port %d is the %s port", ep.Port, what)
		} else if ep.Port == c.Spec.Kubernetes.APIServerPort {
			where := ep0 + ".port"
			if !p.explicit(where) && p.explicit("spec.kubernetes.apiServerPort") {
				where = "spec.kubernetes.apiServerPort"
			}
			p.errorf(where, fmt.Sprintf("use different ports, e.g. controlPlaneEndpoint.port %d and kubernetes.apiServerPort %d", DefaultEndpointPort, DefaultAPIServerPort), "haproxy (controlPlaneEndpoint.port) and kube-apiserver (kubernetes.apiServerPort) both want port %d on every master", ep.Port)
		}
	}
	if !ifaceRe.MatchString(ep.Interface) {
		p.errorf(ep0+".interface", "name the masters' network interface, e.g. eth0 (at most 15 characters)", "invalid interface name %q", ep.Interface)
	}
	if ep.RouterID < 1 || ep.RouterID > 255 {
		p.errorf(ep0+".routerID", "use a VRRP router id from 1 to 255 that no other keepalived on the network uses", "VRRP router id %d is out of range", ep.RouterID)
	}
	if v, ok := p.envVar(ep0+".authPassEnv", ep.AuthPassEnv, o); ok && len(v) > 8 {
		p.warnf(ep0+".authPassEnv", "use a password of at most 8 characters", "VRRP passwords are cut to 8 characters; %s has %d", ep.AuthPassEnv, len(v))
	}
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	hostBits := len(b)*8 - p.Bits()
	for i := len(b) - 1; i >= 0 && hostBits > 0; i-- {
		n := min(hostBits, 8)
		b[i] |= byte(1<<n - 1)
		hostBits -= n
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// parseCIDR returns a canonical prefix or reports why not.
func (p *parser) parseCIDR(path, val, what string) (netip.Prefix, bool) {
	pf, err := netip.ParsePrefix(val)
	if err != nil {
		p.errorf(path, "write an address range like "+map[string]string{"pod CIDR": DefaultPodCIDR, "service CIDR": DefaultServiceCIDR}[what], "invalid %s %q", what, val)
		return netip.Prefix{}, false
	}
	if pf.Masked() != pf {
		p.errorf(path, "use "+pf.Masked().String(), "%s %s has host bits set", what, val)
		return netip.Prefix{}, false
	}
	return pf, true
}

// usedAddrs are the addresses a pod or service CIDR must not contain.
func usedAddrs(c *Cluster) []struct {
	what string
	ip   netip.Addr
} {
	var out []struct {
		what string
		ip   netip.Addr
	}
	add := func(what, s string) {
		if a, err := netip.ParseAddr(s); err == nil {
			out = append(out, struct {
				what string
				ip   netip.Addr
			}{what, a.Unmap()})
		}
	}
	for _, h := range c.Spec.Hosts {
		add(fmt.Sprintf("host %q", h.Name), h.Address)
		if h.InternalAddress != h.Address {
			add(fmt.Sprintf("host %q", h.Name), h.InternalAddress)
		}
	}
	add("the VIP", c.Spec.ControlPlaneEndpoint.VIP)
	return out
}

var podCIDRCandidates = []string{"10.244.0.0/16", "172.16.0.0/16", "192.168.0.0/16", "10.200.0.0/16"}
var serviceCIDRCandidates = []string{"10.96.0.0/12", "172.20.0.0/16", "10.112.0.0/12", "192.168.128.0/17"}

// freeCIDR picks the first candidate that collides with nothing, for fixes.
func freeCIDR(cands []string, avoid []netip.Prefix, used []netip.Addr) string {
next:
	for _, s := range cands {
		c := netip.MustParsePrefix(s)
		for _, a := range avoid {
			if a.IsValid() && a.Overlaps(c) {
				continue next
			}
		}
		for _, u := range used {
			if c.Contains(u) {
				continue next
			}
		}
		return s
	}
	return "an unused private range"
}

func (p *parser) validateNetwork(c *Cluster, o options) {
	n := c.Spec.Network
	const np = "spec.network"
	p.oneOf(np+".plugin", n.Plugin, ValidPlugins, "network plugin")
	pod, podOK := p.parseCIDR(np+".podCIDR", n.PodCIDR, "pod CIDR")
	svc, svcOK := p.parseCIDR(np+".serviceCIDR", n.ServiceCIDR, "service CIDR")
	used := usedAddrs(c)
	var usedIPs []netip.Addr
	for _, u := range used {
		usedIPs = append(usedIPs, u.ip)
	}
	members := 0
	for _, h := range c.Spec.Hosts {
		if c.isMember(h.Name) {
			members++
		}
	}
	if podOK && svcOK {
		if pod.Addr().Is4() != svc.Addr().Is4() {
			p.errorf(np+".serviceCIDR", "use the same IP family for both (dual-stack is not supported yet)", "service CIDR %s and pod CIDR %s are of different IP families", svc, pod)
		} else if pod.Overlaps(svc) {
			where := np + ".serviceCIDR"
			if p.explicit(np+".podCIDR") && !p.explicit(where) {
				where = np + ".podCIDR"
			}
			p.errorf(where, "choose ranges that do not overlap, e.g. podCIDR "+freeCIDR(podCIDRCandidates, []netip.Prefix{svc}, usedIPs)+" with serviceCIDR "+svc.String(), "pod CIDR %s and service CIDR %s overlap", pod, svc)
		}
	}
	check := func(path, what string, pf netip.Prefix, other netip.Prefix, cands []string) {
		var hits []string
		for _, u := range used {
			if pf.Contains(u.ip) {
				hits = append(hits, fmt.Sprintf("%s has %s", u.what, u.ip))
			}
		}
		if len(hits) == 0 {
			return
		}
		if len(hits) > 3 {
			hits = append(hits[:3], fmt.Sprintf("and %d more", len(hits)-3))
		}
		def := ""
		if !p.explicit(path) {
			def = " (the default)"
		}
		p.errorf(path, fmt.Sprintf("set %s to a range no host uses, e.g. %s", lastKey(path), freeCIDR(cands, []netip.Prefix{other}, usedIPs)), "%s %s%s contains host network addresses: %s", what, pf, def, strings.Join(hits, ", "))
	}
	if podOK {
		check(np+".podCIDR", "pod CIDR", pod, svc, podCIDRCandidates)
		// Each node gets a /24 (IPv4) or /64 (IPv6) block from the pod CIDR,
		// kube-controller-manager's default node-cidr-mask-size.
		nodeBits := 24
		if pod.Addr().Is6() {
			nodeBits = 64
		}
		if pod.Bits() > nodeBits {
			p.errorf(np+".podCIDR", fmt.Sprintf("use a /%d or larger range, e.g. %s", nodeBits-8, DefaultPodCIDR), "pod CIDR %s is smaller than one node's /%d block", pod, nodeBits)
		} else if room := nodeBits - pod.Bits(); room < 30 && 1<<room < members {
			p.errorf(np+".podCIDR", fmt.Sprintf("use a larger range (each node needs a /%d)", nodeBits), "pod CIDR %s has room for %d nodes but the inventory has %d", pod, 1<<room, members)
		}
	}
	if svcOK {
		check(np+".serviceCIDR", "service CIDR", svc, pod, serviceCIDRCandidates)
		hostBits := svc.Addr().BitLen() - svc.Bits()
		if hostBits > 20 {
			p.errorf(np+".serviceCIDR", "use at most a /12 (IPv4) or /108 (IPv6), e.g. "+DefaultServiceCIDR, "service CIDR %s is larger than kube-apiserver accepts", svc)
		} else if hostBits < 4 {
			p.errorf(np+".serviceCIDR", "use at least a /28, e.g. "+DefaultServiceCIDR, "service CIDR %s is too small for the cluster's own services", svc)
		}
	}
	if n.MTU < 576 || n.MTU > 9216 {
		p.errorf(np+".mtu", fmt.Sprintf("use the underlay MTU minus the overlay's overhead, e.g. %d for a 1500-byte network", DefaultMTU), "MTU %d is out of range (576-9216)", n.MTU)
	}
	if valid, ok := ValidEncapsulations[n.Plugin]; ok {
		if !slices.Contains(valid, n.Encapsulation) {
			p.errorf(np+".encapsulation", "use one of: "+strings.Join(valid, ", "), "unknown %s encapsulation %q%s", n.Plugin, n.Encapsulation, didYouMean(n.Encapsulation, valid))
		}
	} else if n.Plugin == "weave" && n.Encapsulation != "" {
		p.warnf(np+".encapsulation", "remove it", "weave ignores encapsulation")
	}
	if n.WeavePasswordEnv != "" && n.Plugin != "weave" {
		p.warnf(np+".weavePasswordEnv", "remove it, or set plugin: weave", "weavePasswordEnv is only used by weave")
	} else {
		p.envVar(np+".weavePasswordEnv", n.WeavePasswordEnv, o)
	}
}

func (p *parser) validateAddons(c *Cluster, o options) {
	s := c.Spec
	p.oneOf("spec.dns.provider", s.DNS.Provider, ValidDNSProviders, "DNS provider")
	if !isDNSSubdomain(s.DNS.ClusterDomain) {
		p.errorf("spec.dns.clusterDomain", "use a lowercase DNS name, e.g. "+DefaultClusterDomain, "invalid cluster domain %q", s.DNS.ClusterDomain)
	}
	for i, u := range s.DNS.Upstreams {
		if !isIPOrIPPort(u) {
			p.errorf(indexPath("spec.dns.upstreams", i), "write a resolver IP, optionally with a port, e.g. 1.1.1.1 or 10.0.0.2:53", "invalid upstream DNS server %q", u)
		}
	}
	p.validateOptionalAddons(c, o)
	a := s.Artifacts
	if p.oneOf("spec.artifacts.source", a.Source, ValidArtifactSources, "artifacts source") {
		switch a.Source {
		case "bundle":
			if a.Path == "" {
				p.errorf("spec.artifacts.path", "add path: the bundle made by `kubewright bundle`, e.g. ./kubewright-bundle.tar.gz", "artifacts source \"bundle\" needs a path")
			}
		case "download":
			if a.URL != "" && !isHTTPURL(a.URL) {
				p.errorf("spec.artifacts.url", "write a full URL, e.g. https://mirror.example.com/kubewright", "invalid artifacts URL %q", a.URL)
			}
		}
	}
	if m := s.RegistryMirror; m != "" && !isHTTPURL(m) {
		p.errorf("spec.registryMirror", "write a full URL, e.g. https://"+strings.TrimSuffix(m, "/"), "invalid registry mirror %q", m)
	}
}

func (p *parser) validateAgent(c *Cluster) {
	a := c.Spec.Agent
	if d, err := time.ParseDuration(a.CheckInterval); err != nil {
		p.errorf("spec.agent.checkInterval", "write a duration like 30s or 2m", "invalid check interval %q", a.CheckInterval)
	} else if d < time.Second {
		p.errorf("spec.agent.checkInterval", "use 1s or more, e.g. "+DefaultAgentCheckInterval, "check interval %s is too short", d)
	}
	if a.RepairBudget < 1 {
		p.errorf("spec.agent.repairBudget", "use 1 or more", "repair budget %d is less than 1", a.RepairBudget)
	}
}

func isIPOrIPPort(s string) bool {
	if _, err := netip.ParseAddr(s); err == nil {
		return true
	}
	_, err := netip.ParseAddrPort(s)
	return err == nil
}

func isHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// Where the spec.addons sections were written in the legacy spelling, the
// messages name the legacy field (or, for settings the legacy section did
// not have, the section): the operator finds what they wrote.
var legacyAddonPaths = []struct{ section, newPrefix, oldPrefix string }{
	{"spec.storage", "spec.addons.storage.replicas", "spec.storage.replicas"},
	{"spec.logging", "spec.addons.logging.hostLogDirs", "spec.logging.hostLogPaths"},
	{"spec.logging", "spec.addons.logging.enabled", "spec.logging.enabled"},
	{"spec.logging", "spec.addons.logging.retentionDays", "spec.logging.retentionDays"},
	{"spec.monitoring", "spec.addons.monitoring.enabled", "spec.monitoring.enabled"},
	{"spec.monitoring", "spec.addons.monitoring.receivers.webhookURL", "spec.monitoring.alertWebhookURL"},
}

// addonPath maps a spec.addons path to the legacy field it came from, when
// the file used the legacy section.
func (p *parser) addonPath(path string) string {
	under := func(path, prefix string) bool {
		return path == prefix || strings.HasPrefix(path, prefix+".") || strings.HasPrefix(path, prefix+"[")
	}
	for _, l := range legacyAddonPaths {
		if p.explicit(l.section) && under(path, l.newPrefix) {
			return l.oldPrefix + path[len(l.newPrefix):]
		}
	}
	switch {
	case p.explicit("spec.storage") && under(path, "spec.addons.storage.provider"):
		if p.explicit("spec.storage.provider") {
			return "spec.storage.provider"
		}
		return "spec.storage.enabled"
	case p.explicit("spec.monitoring.alertEmail") && under(path, "spec.addons.monitoring.receivers.smtp"):
		return "spec.monitoring.alertEmail"
	}
	for _, sec := range []string{"storage", "logging", "monitoring"} {
		if p.explicit("spec."+sec) && under(path, "spec.addons."+sec) {
			return "spec." + sec
		}
	}
	return path
}

var (
	promDurationRe = regexp.MustCompile(`^[1-9][0-9]*(h|d|w|y)$`)
	quantityRe     = regexp.MustCompile(`^[1-9][0-9]*(Mi|Gi|Ti)$`)
	heapRe         = regexp.MustCompile(`^([1-9][0-9]*)([mg])$`)
	// Device names as Rook takes them: a kernel name (sdb, nvme0n1, vdc)
	// or a stable /dev/disk/by-* path.
	diskNameRe = regexp.MustCompile(`^([a-z]+[a-z0-9]*|/dev/disk/by-(id|path|uuid|partuuid)/[A-Za-z0-9:._+-]+)$`)
)

// validateOptionalAddons checks spec.addons (or its legacy sections). Values
// written in the file are checked even for an add-on that is off, so a
// typo does not wait for the day it is switched on; what an add-on needs
// to run (a StorageClass, enough nodes) is checked when it is on.
func (p *parser) validateOptionalAddons(c *Cluster, o options) {
	s := &c.Spec
	for _, sec := range []string{"storage", "logging", "monitoring"} {
		if p.explicit("spec."+sec) && p.explicit("spec.addons."+sec) {
			p.errorf("spec."+sec, "keep spec.addons."+sec+" and remove spec."+sec, "%s is written twice: spec.%s (the earlier spelling) and spec.addons.%s", sec, sec, sec)
		}
	}
	if l := s.LegacyStorage; l != nil && l.Provider != "" && l.Provider != StorageNone {
		p.oneOf("spec.storage.provider", l.Provider, ValidStorageProviders[1:], "storage provider")
	}
	p.validateStorage(c)
	p.validateMonitoring(c, o)
	p.validateLogging(c)
	p.validateIngress(c)
	s.LegacyStorage, s.LegacyLogging, s.LegacyMonitoring = nil, nil, nil
}

func hostNames(hs []*Host) string {
	names := make([]string, len(hs))
	for i, h := range hs {
		names[i] = h.Name
	}
	return strings.Join(names, ", ")
}

func (p *parser) validateStorage(c *Cluster) {
	st := c.Spec.Addons.Storage
	const sp = "spec.addons.storage"
	if p.failed[sp+".provider"] || !p.oneOf(p.addonPath(sp+".provider"), st.Provider, ValidStorageProviders, "storage provider") {
		return
	}
	if st.Provider == StorageNone {
		if st.Nodes != "" || len(st.OSDDisks) > 0 || (st.Replicas != 0 && p.explicit(sp+".replicas")) {
			p.warnf(sp, "set provider: longhorn or rook-ceph, or remove the other storage settings", "storage settings are ignored without a storage provider")
		}
		return
	}
	if st.Replicas < 1 {
		p.errorf(p.addonPath(sp+".replicas"), "use 1 or more (3 for production)", "storage replicas %d is less than 1", st.Replicas)
	}
	switch st.Provider {
	case "longhorn":
		if len(st.OSDDisks) > 0 {
			p.errorf(sp+".osdDisks", "remove osdDisks (longhorn keeps its data under /var/lib/longhorn on each storage node), or set provider: rook-ceph", "osdDisks are only used by rook-ceph")
		}
		if _, err := c.Select(st.Nodes); err != nil {
			p.errorf(p.addonPath(sp+".nodes"), "write groups, host names or label=value terms, e.g. workers", "storage nodes: %v", err)
			return
		}
		if len(c.StorageNodes()) == 0 {
			p.errorf(p.addonPath(sp+".nodes"), "select the hosts that keep volume replicas, e.g. workers", "storage nodes %q select no host", st.Nodes)
		}
		for _, h := range c.StorageNodes() {
			if v := h.Labels[LonghornDiskLabel]; v != "true" {
				p.errorf(p.addonPath(sp+".nodes"), fmt.Sprintf("remove the %s label from host %s, or leave it out of the storage nodes", LonghornDiskLabel, h.Name),
					"host %s is a storage node but its label %s=%q stops longhorn from creating a disk there", h.Name, LonghornDiskLabel, v)
			}
		}
	case "rook-ceph":
		p.warnf(p.addonPath(sp+".provider"), "use provider: longhorn until rook-ceph can be installed (docs/addons.md, rook-ceph)",
			"install refuses rook-ceph in this release: Rook v1.20's CSI operator manifest is not vendored, so Ceph's StorageClass would provision nothing")
		if st.Nodes != "" {
			p.errorf(sp+".nodes", "remove nodes: rook-ceph's storage nodes are the hosts listed in osdDisks", "nodes is only used by longhorn")
		}
		if len(st.OSDDisks) == 0 {
			p.errorf(p.addonPath(sp+".provider"), "add osdDisks: {HOST: [DISK, ...]}, e.g. osdDisks: {worker1: [sdb]}, naming empty disks Ceph may wipe", "rook-ceph needs at least one OSD disk")
		}
		var hosts []string
		for _, h := range c.Spec.Hosts {
			hosts = append(hosts, h.Name)
		}
		for _, name := range sortedKeys(st.OSDDisks) {
			kp := joinPath(sp+".osdDisks", name)
			if h := c.Host(name); h == nil || !c.isMember(name) {
				p.errorf(kp, "use the name of a cluster host", "%q is not a host in the cluster%s", name, didYouMean(name, hosts))
				continue
			}
			seen := map[string]bool{}
			for i, d := range st.OSDDisks[name] {
				dp := indexPath(kp, i)
				switch {
				case !diskNameRe.MatchString(d):
					p.errorf(dp, "write a device name such as sdb or nvme0n1, or a /dev/disk/by-id/... path", "invalid disk %q", d)
				case seen[d]:
					p.errorf(dp, "list each disk once", "disk %q is listed twice for host %s", d, name)
				}
				seen[d] = true
			}
			if len(st.OSDDisks[name]) == 0 {
				p.errorf(kp, "list the host's OSD disks, e.g. [sdb], or remove the host", "host %s has no OSD disks", name)
			}
		}
	}
	nodes := c.StorageNodes()
	if st.Replicas >= 1 && len(nodes) > 0 && st.Replicas > len(nodes) {
		where := "longhorn: spec.addons.storage.nodes"
		if st.Provider == "rook-ceph" {
			where = "rook-ceph: hosts in spec.addons.storage.osdDisks"
		}
		fix := fmt.Sprintf("add storage nodes (%s)", where)
		if len(nodes) > 0 {
			fix = fmt.Sprintf("set replicas: %d, or %s", len(nodes), fix)
		}
		list := ""
		if len(nodes) > 0 {
			list = " (" + hostNames(nodes) + ")"
		}
		path := sp + ".replicas"
		if !p.explicit(p.addonPath(path)) {
			path = sp + ".provider"
		}
		p.errorf(p.addonPath(path), fix, "%d storage replicas need %d storage nodes, each holding one copy, but there are %d%s", st.Replicas, st.Replicas, len(nodes), list)
	}
}

// storageClassFor checks that an add-on with PersistentVolumes has a
// StorageClass: the storage add-on's, or one the operator names.
func (p *parser) storageClassFor(c *Cluster, path, class, what string) {
	switch {
	case class == "":
		p.errorf(p.addonPath(path+".enabled"), "set spec.addons.storage.provider: longhorn (or rook-ceph), or "+path+".storageClass: a StorageClass the cluster already has",
			"%s keeps its data on PersistentVolumes, but there is no storage add-on and no storageClass", what)
	case !isDNSSubdomain(class):
		p.errorf(path+".storageClass", "write the StorageClass name, e.g. "+StorageClassLonghorn, "invalid StorageClass name %q", class)
	}
}

func (p *parser) validateMonitoring(c *Cluster, o options) {
	m := c.Spec.Addons.Monitoring
	const mp = "spec.addons.monitoring"
	if m.Retention != "" && !promDurationRe.MatchString(m.Retention) {
		p.errorf(mp+".retention", "write a number of hours, days, weeks or years, e.g. "+DefaultPrometheusRetention, "invalid retention %q", m.Retention)
	}
	if m.StorageSize != "" && !quantityRe.MatchString(m.StorageSize) {
		p.errorf(mp+".storageSize", "write a size in Mi, Gi or Ti, e.g. "+DefaultPrometheusStorageSize, "invalid storage size %q", m.StorageSize)
	}
	if m.Enabled {
		p.storageClassFor(c, mp, m.StorageClass, "Prometheus")
	} else if m.StorageClass != "" && !isDNSSubdomain(m.StorageClass) {
		p.errorf(mp+".storageClass", "write the StorageClass name, e.g. "+StorageClassLonghorn, "invalid StorageClass name %q", m.StorageClass)
	}
	if v := m.CPUThreshold.Percent; v != 0 && (v < 1 || v > 100) {
		p.errorf(mp+".cpuThreshold.percent", fmt.Sprintf("use a percentage from 1 to 100, e.g. %d", DefaultCPUThresholdPercent), "CPU threshold %d%% is out of range", v)
	}
	if v := m.CPUThreshold.ForMinutes; v != 0 && (v < 1 || v > 1440) {
		p.errorf(mp+".cpuThreshold.forMinutes", fmt.Sprintf("use 1 to 1440 minutes, e.g. %d", DefaultCPUThresholdMinutes), "CPU alert delay %d minutes is out of range", v)
	}
	r := m.Receivers
	if u := r.WebhookURL; u != "" && !isHTTPURL(u) {
		p.errorf(p.addonPath(mp+".receivers.webhookURL"), "write a full URL, e.g. https://sms-gateway.example.com/alert", "invalid webhook URL %q", u)
	}
	if sm := r.SMTP; sm != nil {
		sp := mp + ".receivers.smtp"
		legacy := p.explicit("spec.monitoring.alertEmail")
		badTo := false
		for i, to := range sm.To {
			if a, err := mail.ParseAddress(to); err != nil || a.Address != to {
				p.errorf(p.addonPath(indexPath(sp+".to", i)), "write a bare address, e.g. oncall@example.com", "invalid e-mail address %q", to)
				badTo = true
			}
		}
		switch {
		case legacy && badTo:
		case legacy && sm.Smarthost == "":
			p.errorf(p.addonPath(sp), "move the address to spec.addons.monitoring.receivers.smtp.to and add smarthost and from there", "e-mail alerts need an SMTP server, and the earlier alertEmail setting has none")
		case legacy:
		default:
			if len(sm.To) == 0 {
				p.errorf(sp+".to", "list the recipients, e.g. to: [oncall@example.com]", "smtp has no recipients")
			}
			if sm.Smarthost == "" {
				p.errorf(sp, "add smarthost: the mail server as host:port, e.g. smtp.example.com:587", "smtp has no smarthost")
			} else if h, port, err := net.SplitHostPort(sm.Smarthost); err != nil || h == "" || port == "" || !isPortString(port) || (!isHostname(h) && !isIPOrIPPort(h)) {
				p.errorf(sp+".smarthost", "write host:port, e.g. smtp.example.com:587", "invalid smarthost %q", sm.Smarthost)
			}
			if sm.From == "" {
				p.errorf(sp, "add from: the sender address, e.g. alertmanager@example.com", "smtp has no sender (from)")
			} else if a, err := mail.ParseAddress(sm.From); err != nil || a.Address != sm.From {
				p.errorf(sp+".from", "write a bare address, e.g. alertmanager@example.com", "invalid e-mail address %q", sm.From)
			}
		}
		if (sm.AuthUsernameEnv == "") != (sm.AuthPasswordEnv == "") {
			missing := "authPasswordEnv"
			if sm.AuthUsernameEnv == "" {
				missing = "authUsernameEnv"
			}
			p.errorf(sp+"."+missing, "set both authUsernameEnv and authPasswordEnv, or neither", "SMTP authentication needs both a username and a password variable")
		}
		if m.Enabled {
			p.envVar(sp+".authUsernameEnv", sm.AuthUsernameEnv, o)
			p.envVar(sp+".authPasswordEnv", sm.AuthPasswordEnv, o)
		}
	}
	if m.Enabled {
		p.envVar(mp+".grafanaAdminPasswordEnv", m.GrafanaAdminPasswordEnv, o)
		if r.WebhookURL == "" && r.SMTP == nil {
			p.warnf(p.addonPath(mp+".enabled"), "add receivers: {webhookURL: ...} and/or receivers: {smtp: {...}}", "alerts reach no one: monitoring has no receivers")
		}
	}
}

func isPortString(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n >= 1 && n <= 65535
}

func (p *parser) validateLogging(c *Cluster) {
	l := c.Spec.Addons.Logging
	const lp = "spec.addons.logging"
	if l.RetentionDays < 0 || (l.Enabled && l.RetentionDays < 1) || (l.RetentionDays == 0 && p.explicit(p.addonPath(lp+".retentionDays"))) {
		p.errorf(p.addonPath(lp+".retentionDays"), fmt.Sprintf("use 1 or more, e.g. %d", DefaultLogRetentionDays), "log retention %d days is less than 1", l.RetentionDays)
	}
	seen := map[string]int{}
	for i, d := range l.HostLogDirs {
		dp := p.addonPath(indexPath(lp+".hostLogDirs", i))
		dir, last := path.Split(d)
		switch {
		case !path.IsAbs(d):
			p.errorf(dp, "write an absolute directory, file or glob on the hosts, e.g. /var/log/myapp", "host log path %q is not absolute", d)
		case strings.ContainsAny(d, ", \t\n"):
			p.errorf(dp, "use a path without commas or spaces (Fluent Bit separates patterns with commas)", "host log path %q has a comma or a space", d)
		case path.Clean(d) != d || d == "/":
			p.errorf(dp, "write the path in its clean form, e.g. "+path.Clean(d), "host log path %q is not a clean path below /", d)
		case strings.ContainsAny(dir, "*?["):
			p.errorf(dp, "put wildcards only in the last element, e.g. /var/log/myapp/*.log", "host log path %q has a wildcard in a directory", d)
		case last == "":
		default:
			if j, dup := seen[d]; dup {
				p.errorf(dp, "list each path once", "host log path %q is also hostLogDirs[%d]", d, j)
			}
			seen[d] = i
		}
	}
	if l.Enabled {
		p.storageClassFor(c, lp, l.StorageClass, "Elasticsearch")
	} else if l.StorageClass != "" && !isDNSSubdomain(l.StorageClass) {
		p.errorf(lp+".storageClass", "write the StorageClass name, e.g. "+StorageClassLonghorn, "invalid StorageClass name %q", l.StorageClass)
	}
	es := l.Elasticsearch
	const ep = lp + ".elasticsearch"
	if es.Replicas < 0 || (es.Replicas == 0 && p.explicit(ep+".replicas")) || es.Replicas > 9 {
		p.errorf(ep+".replicas", "use 1 to 9 Elasticsearch nodes (1 for a small cluster, 3 to survive one node's loss)", "Elasticsearch replicas %d is out of range", es.Replicas)
	}
	if es.Heap != "" {
		m := heapRe.FindStringSubmatch(es.Heap)
		mb := 0
		if m != nil {
			mb, _ = strconv.Atoi(m[1])
			if m[2] == "g" {
				mb *= 1024
			}
		}
		if m == nil || mb < 256 || mb > 31*1024 {
			p.errorf(ep+".heap", "write the JVM heap from 256m to 31g, e.g. "+DefaultESHeap, "invalid Elasticsearch heap %q", es.Heap)
		}
	}
	if es.StorageSize != "" && !quantityRe.MatchString(es.StorageSize) {
		p.errorf(ep+".storageSize", "write a size in Mi, Gi or Ti, e.g. "+DefaultESStorageSize, "invalid storage size %q", es.StorageSize)
	}
}

func (p *parser) validateIngress(c *Cluster) {
	in := c.Spec.Addons.Ingress
	const ip = "spec.addons.ingress"
	if in.Mode != "" {
		p.oneOf(ip+".mode", in.Mode, ValidIngressModes, "ingress mode")
	}
	if in.Enabled {
		if _, err := c.Select(in.Nodes); err != nil {
			p.errorf(ip+".nodes", "write groups, host names or label=value terms, e.g. workers", "ingress nodes: %v", err)
		} else if len(c.IngressNodes()) == 0 {
			p.errorf(ip+".nodes", "select at least one edge node, e.g. workers", "ingress nodes %q select no host", in.Nodes)
		}
	}
	ports := []struct {
		key string
		v   int
	}{{"httpNodePort", in.HTTPNodePort}, {"httpsNodePort", in.HTTPSNodePort}}
	for _, pt := range ports {
		if pt.v == 0 {
			continue
		}
		if in.Mode != "nodePort" {
			p.warnf(ip+"."+pt.key, "remove it, or set mode: nodePort", "%s is only used in nodePort mode", pt.key)
			continue
		}
		if pt.v < 30000 || pt.v > 32767 {
			p.errorf(ip+"."+pt.key, "use a port in kube-apiserver's NodePort range, 30000-32767", "NodePort %d is outside 30000-32767", pt.v)
		}
	}
	if in.HTTPNodePort != 0 && in.HTTPNodePort == in.HTTPSNodePort {
		p.errorf(ip+".httpsNodePort", "use two different ports, e.g. 30080 and 30443", "httpNodePort and httpsNodePort are both %d", in.HTTPNodePort)
	}
}
