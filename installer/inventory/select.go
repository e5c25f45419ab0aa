package inventory

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// GroupAll is the selector word for every cluster member: each host that is
// in at least one group. Hosts that only serve as bastions are not members.
const GroupAll = "all"

// IsIn reports whether the host belongs to group (filled by Load/Parse).
func (h *Host) IsIn(group string) bool { return slices.Contains(h.Groups, group) }

// Host returns the host called name, or nil.
func (c *Cluster) Host(name string) *Host {
	for i := range c.Spec.Hosts {
		if c.Spec.Hosts[i].Name == name {
			return &c.Spec.Hosts[i]
		}
	}
	return nil
}

// groupMembers returns the member names of a group; etcd falls back to the
// masters so clusters built in memory behave like loaded ones.
func (c *Cluster) groupMembers(name string) ([]string, bool) {
	m, ok := c.Spec.Groups[name]
	if !ok && name == GroupEtcd {
		m, ok = c.Spec.Groups[GroupMasters]
	}
	return m, ok
}

func (c *Cluster) isMember(name string) bool {
	for _, m := range c.Spec.Groups {
		if slices.Contains(m, name) {
			return true
		}
	}
	return false
}

// HostsInGroup returns the hosts of group name (or every member for "all"),
// in inventory file order, not in the order the group lists them: plays then
// touch hosts in the same order whatever selector picked them.
func (c *Cluster) HostsInGroup(name string) []*Host {
	var out []*Host
	if name == GroupAll {
		for i := range c.Spec.Hosts {
			if c.isMember(c.Spec.Hosts[i].Name) {
				out = append(out, &c.Spec.Hosts[i])
			}
		}
		return out
	}
	members, _ := c.groupMembers(name)
	set := make(map[string]bool, len(members))
	for _, m := range members {
		set[m] = true
	}
	for i := range c.Spec.Hosts {
		if set[c.Spec.Hosts[i].Name] {
			out = append(out, &c.Spec.Hosts[i])
		}
	}
	return out
}

// Masters returns the control-plane hosts.
func (c *Cluster) Masters() []*Host { return c.HostsInGroup(GroupMasters) }

// Etcd returns the etcd members (the masters unless an etcd group is given).
func (c *Cluster) Etcd() []*Host { return c.HostsInGroup(GroupEtcd) }

// Workers returns the hosts of the workers group.
func (c *Cluster) Workers() []*Host { return c.HostsInGroup(GroupWorkers) }

// Select resolves a playbook's hosts: field. The selector is a comma list of
// terms; a term is "all", a group name, a host name or label=value, and a
// leading "!" excludes what the term matches (masters,!master1). A selector
// of only exclusions starts from all. The result is in inventory order.
// Unknown group or host names are errors (with a suggestion); a label that
// matches nothing is not, since labels are open-ended.
func (c *Cluster) Select(selector string) ([]*Host, error) {
	include := map[string]bool{}
	exclude := map[string]bool{}
	anyInclude := false
	terms := strings.Split(selector, ",")
	for _, raw := range terms {
		t := strings.TrimSpace(raw)
		neg := strings.HasPrefix(t, "!")
		if neg {
			t = strings.TrimSpace(t[1:])
		}
		if t == "" {
			return nil, fmt.Errorf("selector %q has an empty term", selector)
		}
		hosts, err := c.selectTerm(t)
		if err != nil {
			return nil, fmt.Errorf("selector %q: %w", selector, err)
		}
		target := include
		if neg {
			target = exclude
		} else {
			anyInclude = true
		}
		for _, h := range hosts {
			target[h.Name] = true
		}
	}
	if !anyInclude {
		for _, h := range c.HostsInGroup(GroupAll) {
			include[h.Name] = true
		}
	}
	var out []*Host
	for i := range c.Spec.Hosts {
		n := c.Spec.Hosts[i].Name
		if include[n] && !exclude[n] {
			out = append(out, &c.Spec.Hosts[i])
		}
	}
	return out, nil
}

func (c *Cluster) selectTerm(t string) ([]*Host, error) {
	if k, v, ok := strings.Cut(t, "="); ok {
		var out []*Host
		for _, h := range c.HostsInGroup(GroupAll) {
			if val, has := h.Labels[k]; has && val == v {
				out = append(out, h)
			}
		}
		return out, nil
	}
	if t == GroupAll {
		return c.HostsInGroup(GroupAll), nil
	}
	if _, ok := c.groupMembers(t); ok {
		return c.HostsInGroup(t), nil
	}
	if h := c.Host(t); h != nil {
		return []*Host{h}, nil
	}
	cands := []string{GroupAll}
	for g := range c.Spec.Groups {
		cands = append(cands, g)
	}
	for _, h := range c.Spec.Hosts {
		cands = append(cands, h.Name)
	}
	slices.Sort(cands[1:])
	return nil, fmt.Errorf("%q is not a group or host in the inventory%s", t, didYouMean(t, cands))
}

// BastionChain returns the hops to reach h, outermost first (the one the
// operator's machine connects to directly). It is empty for a host reached
// directly.
func (c *Cluster) BastionChain(h *Host) ([]Bastion, error) {
	var chain []Bastion
	seen := map[string]bool{h.Name: true}
	for cur := h; cur.Bastion != ""; {
		if strings.Contains(cur.Bastion, "@") {
			b, err := parseExternalBastion(cur.Bastion)
			if err != nil {
				return nil, fmt.Errorf("bastion %q of host %s: %w", cur.Bastion, cur.Name, err)
			}
			chain = append(chain, b)
			break
		}
		next := c.Host(cur.Bastion)
		if next == nil {
			return nil, fmt.Errorf("bastion %q of host %s is not in the inventory", cur.Bastion, cur.Name)
		}
		if seen[next.Name] {
			return nil, fmt.Errorf("bastion chain of host %s loops at %s", h.Name, next.Name)
		}
		seen[next.Name] = true
		chain = append(chain, Bastion{Host: next, User: next.User, Address: next.Address, Port: next.Port})
		cur = next
	}
	slices.Reverse(chain)
	return chain, nil
}

// SSHAddress is host:port for dialing the host.
func (h *Host) SSHAddress() string { return net.JoinHostPort(h.Address, strconv.Itoa(h.Port)) }

// Endpoint is the address clients use for the API: VIP:port (haproxy).
func (c *Cluster) Endpoint() string {
	ep := c.Spec.ControlPlaneEndpoint
	return net.JoinHostPort(ep.VIP, strconv.Itoa(ep.Port))
}

// nthServiceIP returns the n-th address of the service CIDR.
func (c *Cluster) nthServiceIP(n int) (netip.Addr, error) {
	pf, err := netip.ParsePrefix(c.Spec.Network.ServiceCIDR)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("service CIDR: %w", err)
	}
	a := pf.Masked().Addr()
	for range n {
		a = a.Next()
	}
	if !pf.Contains(a) {
		return netip.Addr{}, fmt.Errorf("service CIDR %s has no address number %d", pf, n)
	}
	return a, nil
}

// APIServerServiceIP is the ClusterIP of the "kubernetes" service (the first
// address of the service CIDR); apiserver certificates must carry it.
func (c *Cluster) APIServerServiceIP() (netip.Addr, error) { return c.nthServiceIP(1) }

// ClusterDNSIP is the DNS service's ClusterIP, the tenth address of the
// service CIDR by the same convention as kubeadm.
func (c *Cluster) ClusterDNSIP() (netip.Addr, error) { return c.nthServiceIP(10) }
