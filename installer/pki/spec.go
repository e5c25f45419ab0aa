package pki

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kubewright/kubewright/installer/inventory"
)

// KeyAlgorithm selects the key type for newly generated keys.
type KeyAlgorithm string

const (
	// ECDSAP256 is the default: small keys, fast handshakes, accepted by every
	// Kubernetes component and etcd.
	ECDSAP256 KeyAlgorithm = "ecdsa-p256"
	// RSA2048 exists for clients that still cannot do ECDSA (old HSMs, some
	// load balancers doing TLS inspection).
	RSA2048 KeyAlgorithm = "rsa-2048"
)

// Defaults match kubeadm so that certificates behave the way operators expect.
const (
	DefaultCAValidity    = 10 * 365 * 24 * time.Hour
	DefaultLeafValidity  = 365 * 24 * time.Hour
	DefaultRenewBefore   = 30 * 24 * time.Hour
	DefaultServiceCIDR   = "10.96.0.0/12"
	DefaultClusterDomain = "cluster.local"
	DefaultClusterName   = "kubernetes"
	// DefaultAPIServerPort is the port used for the VIP when the inventory
	// gives none and for each master's local apiserver URL.
	DefaultAPIServerPort = 6443
)

// Member is one master or etcd host as the PKI sees it.
type Member struct {
	// Name is the inventory host name; it becomes a DNS SAN and the etcd
	// certificates' common name.
	Name string
	// Address and InternalAddress are IPs or DNS names; both become SANs so
	// the host is reachable by either.
	Address         string
	InternalAddress string
	// APIServerURL is what this master's controller-manager and scheduler
	// kubeconfigs point at. SpecFromCluster sets https://InternalAddress:6443;
	// the step that owns the port layout may overwrite it before EnsureAll.
	APIServerURL string
}

// Spec is everything the PKI derives from the inventory. It is plain data so a
// step can adjust it (e.g. the component URLs) before calling EnsureAll.
type Spec struct {
	// ClusterName names the cluster and context in kubeconfigs.
	ClusterName string
	// ControlPlaneEndpoint is the VIP (or a DNS name for it) and its port;
	// admin kubeconfigs point at it.
	ControlPlaneEndpoint string
	ControlPlanePort     int
	// ServiceCIDR may list two CIDRs separated by a comma (dual stack); the
	// first address of each becomes an apiserver SAN.
	ServiceCIDR   string
	ClusterDomain string
	Masters       []Member
	// Etcd members; the inventory's etcd group defaults to the masters.
	Etcd []Member
	// ExtraAPIServerSANs are added to the apiserver certificate (IPs or DNS
	// names), like kubeadm's certSANs.
	ExtraAPIServerSANs []string

	KeyAlgorithm KeyAlgorithm
	CAValidity   time.Duration
	LeafValidity time.Duration
	// RenewBefore: a leaf that expires within this window is re-issued.
	RenewBefore time.Duration
}

// SpecFromCluster derives the PKI spec from an inventory. It uses only the
// exported inventory fields so it works on a loaded and defaulted Cluster as
// well as on one built in memory (group entries may still be host ranges such
// as master[1:3]; they are matched against the host list).
func SpecFromCluster(c *inventory.Cluster) (Spec, error) {
	if c == nil {
		return Spec{}, errors.New("pki spec: no cluster")
	}
	var errs []error
	byName := map[string]*inventory.Host{}
	for i := range c.Spec.Hosts {
		h := &c.Spec.Hosts[i]
		if _, dup := byName[h.Name]; dup {
			errs = append(errs, fmt.Errorf("host %q is listed twice", h.Name))
			continue
		}
		byName[h.Name] = h
	}
	masters, err := groupMembers(c, byName, inventory.GroupMasters)
	if err != nil {
		errs = append(errs, err)
	}
	etcdGroup := inventory.GroupEtcd
	if len(c.Spec.Groups[inventory.GroupEtcd]) == 0 && !anyHostInGroup(c, inventory.GroupEtcd) {
		etcdGroup = inventory.GroupMasters
	}
	etcd, err := groupMembers(c, byName, etcdGroup)
	if err != nil && etcdGroup != inventory.GroupMasters {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return Spec{}, fmt.Errorf("pki spec: %w", errors.Join(errs...))
	}
	name := c.Spec.Kubernetes.ClusterName
	if name == "" {
		name = c.Metadata.Name
	}
	s := Spec{
		ClusterName:          name,
		ControlPlaneEndpoint: c.Spec.ControlPlaneEndpoint.VIP,
		ControlPlanePort:     c.Spec.ControlPlaneEndpoint.Port,
		ServiceCIDR:          c.Spec.Network.ServiceCIDR,
		ClusterDomain:        c.Spec.DNS.ClusterDomain,
		Masters:              masters,
		Etcd:                 etcd,
	}
	// Component kubeconfigs talk to the apiserver on their own master, on the
	// port the inventory chose for it (not the VIP port haproxy serves).
	if p := c.Spec.Kubernetes.APIServerPort; p != 0 {
		for i := range s.Masters {
			s.Masters[i].APIServerURL = "https://" + net.JoinHostPort(s.Masters[i].InternalAddress, strconv.Itoa(p))
		}
	}
	s = s.withDefaults()
	if err := s.validate(); err != nil {
		return Spec{}, err
	}
	return s, nil
}

func anyHostInGroup(c *inventory.Cluster, group string) bool {
	for _, h := range c.Spec.Hosts {
		if slices.Contains(h.Groups, group) {
			return true
		}
	}
	return false
}

// groupMembers returns the hosts of a group in host-list order. A host is a
// member when Load recorded the group on it or when the group lists its name
// or a range that covers it.
func groupMembers(c *inventory.Cluster, byName map[string]*inventory.Host, group string) ([]Member, error) {
	entries := c.Spec.Groups[group]
	in := map[string]bool{}
	var errs []error
	for _, e := range entries {
		if _, ok := byName[e]; ok {
			in[e] = true
			continue
		}
		r, isRange := parseRange(e)
		matched := false
		if isRange {
			for n := range byName {
				if r.matches(n) {
					in[n] = true
					matched = true
				}
			}
		}
		if !matched {
			errs = append(errs, fmt.Errorf("group %s lists %q, which is not a host in spec.hosts", group, e))
		}
	}
	var out []Member
	for _, h := range c.Spec.Hosts {
		if !in[h.Name] && !slices.Contains(h.Groups, group) {
			continue
		}
		if strings.ContainsAny(h.Name, "[]") || strings.ContainsAny(h.Address, "[]") {
			errs = append(errs, fmt.Errorf("host %q in group %s is an unexpanded range: load the inventory with inventory.Load first", h.Name, group))
			continue
		}
		if h.Address == "" {
			errs = append(errs, fmt.Errorf("host %q in group %s has no address", h.Name, group))
			continue
		}
		m := Member{Name: h.Name, Address: h.Address, InternalAddress: h.InternalAddress}
		if m.InternalAddress == "" {
			m.InternalAddress = m.Address
		}
		m.APIServerURL = "https://" + net.JoinHostPort(m.InternalAddress, strconv.Itoa(DefaultAPIServerPort))
		out = append(out, m)
	}
	if len(errs) == 0 && len(out) == 0 {
		errs = append(errs, fmt.Errorf("group %s has no hosts", group))
	}
	return out, errors.Join(errs...)
}

// hostRange is a group entry such as node[01:20]: prefix, numeric range,
// suffix; a zero-padded lower bound fixes the width.
type hostRange struct {
	prefix, suffix string
	lo, hi, width  int
}

var rangeRe = regexp.MustCompile(`^([^\[\]]*)\[(\d+):(\d+)\]([^\[\]]*)$`)

func parseRange(s string) (hostRange, bool) {
	m := rangeRe.FindStringSubmatch(s)
	if m == nil {
		return hostRange{}, false
	}
	lo, err1 := strconv.Atoi(m[2])
	hi, err2 := strconv.Atoi(m[3])
	if err1 != nil || err2 != nil || lo > hi {
		return hostRange{}, false
	}
	w := 0
	if len(m[2]) > 1 && m[2][0] == '0' {
		w = len(m[2])
	}
	return hostRange{prefix: m[1], suffix: m[4], lo: lo, hi: hi, width: w}, true
}

func (r hostRange) matches(name string) bool {
	if !strings.HasPrefix(name, r.prefix) || !strings.HasSuffix(name, r.suffix) || len(name) <= len(r.prefix)+len(r.suffix) {
		return false
	}
	mid := name[len(r.prefix) : len(name)-len(r.suffix)]
	n, err := strconv.Atoi(mid)
	if err != nil || strings.ContainsAny(mid, "+-") || n < r.lo || n > r.hi {
		return false
	}
	if r.width > 0 {
		return len(mid) == r.width
	}
	return mid == strconv.Itoa(n)
}

// withDefaults fills zero fields so a hand-built Spec works like a derived one.
func (s Spec) withDefaults() Spec {
	if s.ClusterName == "" {
		s.ClusterName = DefaultClusterName
	}
	if s.ControlPlanePort == 0 {
		s.ControlPlanePort = DefaultAPIServerPort
	}
	if s.ServiceCIDR == "" {
		s.ServiceCIDR = DefaultServiceCIDR
	}
	if s.ClusterDomain == "" {
		s.ClusterDomain = DefaultClusterDomain
	}
	if s.KeyAlgorithm == "" {
		s.KeyAlgorithm = ECDSAP256
	}
	if s.CAValidity == 0 {
		s.CAValidity = DefaultCAValidity
	}
	if s.LeafValidity == 0 {
		s.LeafValidity = DefaultLeafValidity
	}
	if s.RenewBefore == 0 {
		s.RenewBefore = DefaultRenewBefore
	}
	s.Masters = slices.Clone(s.Masters)
	for i := range s.Masters {
		m := &s.Masters[i]
		if m.InternalAddress == "" {
			m.InternalAddress = m.Address
		}
		if m.APIServerURL == "" {
			m.APIServerURL = "https://" + net.JoinHostPort(m.InternalAddress, strconv.Itoa(DefaultAPIServerPort))
		}
	}
	s.Etcd = slices.Clone(s.Etcd)
	for i := range s.Etcd {
		if s.Etcd[i].InternalAddress == "" {
			s.Etcd[i].InternalAddress = s.Etcd[i].Address
		}
	}
	return s
}

// validate reports every problem at once; the spec must already be defaulted.
func (s Spec) validate() error {
	var errs []error
	if s.ControlPlaneEndpoint == "" {
		errs = append(errs, errors.New("control plane endpoint is empty: set spec.controlPlaneEndpoint.vip"))
	}
	if s.ControlPlanePort < 1 || s.ControlPlanePort > 65535 {
		errs = append(errs, fmt.Errorf("control plane port %d is out of range 1-65535", s.ControlPlanePort))
	}
	if _, err := firstServiceIPs(s.ServiceCIDR); err != nil {
		errs = append(errs, err)
	}
	if len(s.Masters) == 0 {
		errs = append(errs, errors.New("no masters"))
	}
	if len(s.Etcd) == 0 {
		errs = append(errs, errors.New("no etcd members"))
	}
	for _, list := range [][]Member{s.Masters, s.Etcd} {
		seen := map[string]bool{}
		for _, m := range list {
			if m.Name == "" || m.Address == "" {
				errs = append(errs, fmt.Errorf("member %q needs a name and an address", m.Name))
			}
			if seen[m.Name] {
				errs = append(errs, fmt.Errorf("member %q is listed twice", m.Name))
			}
			seen[m.Name] = true
			if strings.ContainsAny(m.Name, "/\\") || m.Name == "." || m.Name == ".." {
				errs = append(errs, fmt.Errorf("member name %q cannot be used as a directory name", m.Name))
			}
		}
	}
	switch s.KeyAlgorithm {
	case ECDSAP256, RSA2048:
	default:
		errs = append(errs, fmt.Errorf("key algorithm %q is not one of %s, %s", s.KeyAlgorithm, ECDSAP256, RSA2048))
	}
	if s.LeafValidity <= s.RenewBefore {
		errs = append(errs, fmt.Errorf("leaf validity %s must be longer than the renew threshold %s, or every run would re-issue", s.LeafValidity, s.RenewBefore))
	}
	if s.CAValidity < s.LeafValidity {
		errs = append(errs, fmt.Errorf("CA validity %s is shorter than leaf validity %s", s.CAValidity, s.LeafValidity))
	}
	if len(errs) > 0 {
		return fmt.Errorf("pki spec: %w", errors.Join(errs...))
	}
	return nil
}

// AdminServerURL is the VIP URL that admin kubeconfigs use.
func (s Spec) AdminServerURL() string {
	s = s.withDefaults()
	return "https://" + net.JoinHostPort(s.ControlPlaneEndpoint, strconv.Itoa(s.ControlPlanePort))
}

// firstServiceIPs returns the first host address of each service CIDR: the
// ClusterIP of the kubernetes Service, which pods use to reach the apiserver.
func firstServiceIPs(cidrs string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, c := range strings.Split(cidrs, ",") {
		p, err := netip.ParsePrefix(strings.TrimSpace(c))
		if err != nil {
			return nil, fmt.Errorf("service CIDR %q: %w", c, err)
		}
		first := p.Masked().Addr().Next()
		if !first.IsValid() || !p.Contains(first) {
			return nil, fmt.Errorf("service CIDR %q has no usable address", c)
		}
		out = append(out, first)
	}
	return out, nil
}

// altNames collects SANs in order, dropping duplicates and sorting each entry
// into DNS or IP.
type altNames struct {
	dns []string
	ips []net.IP
}

func (a *altNames) add(names ...string) {
	for _, n := range names {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		if ip, err := netip.ParseAddr(n); err == nil {
			a.addIP(ip)
			continue
		}
		n = strings.ToLower(n)
		if !slices.Contains(a.dns, n) {
			a.dns = append(a.dns, n)
		}
	}
}

func (a *altNames) addIP(ip netip.Addr) {
	ip = ip.Unmap()
	for _, have := range a.ips {
		if have.Equal(net.IP(ip.AsSlice())) {
			return
		}
	}
	a.ips = append(a.ips, net.IP(ip.AsSlice()))
}

// APIServerSANs returns the apiserver certificate's SANs as "DNS:name" and
// "IP:addr" strings, in the order they are written to the certificate.
func (s Spec) APIServerSANs() ([]string, error) {
	s = s.withDefaults()
	a, err := s.apiServerAltNames()
	if err != nil {
		return nil, err
	}
	return a.strings(), nil
}

func (a altNames) strings() []string {
	var out []string
	for _, d := range a.dns {
		out = append(out, "DNS:"+d)
	}
	for _, ip := range a.ips {
		out = append(out, "IP:"+ip.String())
	}
	return out
}

func (s Spec) apiServerAltNames() (altNames, error) {
	var a altNames
	a.add("kubernetes", "kubernetes.default", "kubernetes.default.svc",
		"kubernetes.default.svc."+s.ClusterDomain, "localhost")
	svc, err := firstServiceIPs(s.ServiceCIDR)
	if err != nil {
		return a, err
	}
	for _, ip := range svc {
		a.addIP(ip)
	}
	a.add("127.0.0.1", s.ControlPlaneEndpoint)
	for _, m := range s.Masters {
		a.add(m.Name, m.Address, m.InternalAddress)
	}
	a.add(s.ExtraAPIServerSANs...)
	return a, nil
}

// etcdAltNames are etcd's SANs for one member: peers and clients dial it by
// name or address, and local tools by loopback.
func etcdAltNames(m Member) altNames {
	var a altNames
	a.add(m.Name, "localhost", m.Address, m.InternalAddress, "127.0.0.1", "::1")
	return a
}
