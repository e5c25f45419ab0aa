package enginetest

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/kubewright/kubewright/installer/inventory"
)

// Cluster is an in-memory inventory whose Select mirrors the selector syntax
// playbooks use (comma list of "all", groups, host names, label=value), so
// engine tests do not depend on inventory file parsing.
type Cluster struct {
	*inventory.Cluster
	hosts []*inventory.Host
}

// NewCluster builds a cluster from groups of host names; hosts are ordered
// by first appearance in groups sorted by name.
func NewCluster(name string, groups map[string][]string) *Cluster {
	c := &Cluster{Cluster: &inventory.Cluster{APIVersion: inventory.APIVersion, Kind: inventory.Kind}}
	c.Metadata.Name = name
	c.Spec.Groups = groups
	byName := map[string]*inventory.Host{}
	for _, g := range sortedGroupNames(groups) {
		for _, hn := range groups[g] {
			h, ok := byName[hn]
			if !ok {
				h = &inventory.Host{Name: hn, Address: "127.0.0.1", Labels: map[string]string{}}
				byName[hn] = h
				c.hosts = append(c.hosts, h)
			}
			if !slices.Contains(h.Groups, g) {
				h.Groups = append(h.Groups, g)
				sort.Strings(h.Groups)
			}
		}
	}
	for _, h := range c.hosts {
		c.Spec.Hosts = append(c.Spec.Hosts, *h)
	}
	return c
}

// Names returns n host names prefix01..prefixNN (at least two digits).
func Names(prefix string, n int) []string {
	out := make([]string, n)
	width := max(2, len(fmt.Sprint(n)))
	for i := range out {
		out[i] = fmt.Sprintf("%s%0*d", prefix, width, i+1)
	}
	return out
}

// Host returns the host named name, or nil.
func (c *Cluster) Host(name string) *inventory.Host {
	for _, h := range c.hosts {
		if h.Name == name {
			return h
		}
	}
	return nil
}

// Select resolves a selector.
func (c *Cluster) Select(selector string) ([]*inventory.Host, error) {
	want := map[string]bool{}
	for _, term := range strings.Split(selector, ",") {
		term = strings.TrimSpace(term)
		matched := false
		for _, h := range c.hosts {
			k, v, isLabel := strings.Cut(term, "=")
			if term == "all" || h.Name == term || slices.Contains(h.Groups, term) || (isLabel && h.Labels[k] == v) {
				want[h.Name] = true
				matched = true
			}
		}
		if !matched {
			if _, isGroup := c.Spec.Groups[term]; !isGroup {
				return nil, fmt.Errorf("selector %q: no group, host or label matches %q", selector, term)
			}
		}
	}
	var out []*inventory.Host
	for _, h := range c.hosts {
		if want[h.Name] {
			out = append(out, h)
		}
	}
	return out, nil
}

func sortedGroupNames(g map[string][]string) []string {
	out := make([]string, 0, len(g))
	for k := range g {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
