package pki

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/kubewright/kubewright/installer/inventory"
)

func names(ms []Member) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Name)
	}
	return out
}

func TestSpecFromCluster(t *testing.T) {
	t.Run("defaults etcd to masters and derives URLs", func(t *testing.T) {
		s := testSpec(t, 3)
		if got := names(s.Masters); !slices.Equal(got, []string{"m1", "m2", "m3"}) {
			t.Errorf("masters = %v", got)
		}
		if got := names(s.Etcd); !slices.Equal(got, []string{"m1", "m2", "m3"}) {
			t.Errorf("etcd = %v", got)
		}
		if s.Masters[1].APIServerURL != "https://10.0.0.12:6443" {
			t.Errorf("component URL = %s", s.Masters[1].APIServerURL)
		}
		if s.AdminServerURL() != "https://192.0.2.100:6443" {
			t.Errorf("admin URL = %s", s.AdminServerURL())
		}
		if s.ClusterName != "prod" || s.ClusterDomain != "corp.local" || s.KeyAlgorithm != ECDSAP256 {
			t.Errorf("spec = %+v", s)
		}
	})
	t.Run("explicit etcd group, Host.Groups, IPv6 VIP, defaults for empty settings", func(t *testing.T) {
		c := testCluster(2)
		c.Spec.Hosts = append(c.Spec.Hosts,
			inventory.Host{Name: "e1", Address: "192.0.2.31"},
			inventory.Host{Name: "e2", Address: "192.0.2.32", Groups: []string{inventory.GroupEtcd}})
		c.Spec.Groups[inventory.GroupEtcd] = []string{"e1"}
		c.Spec.ControlPlaneEndpoint = inventory.ControlPlaneEndpoint{VIP: "2001:db8::100"}
		c.Spec.Network.ServiceCIDR, c.Spec.DNS.ClusterDomain = "", ""
		c.Spec.Kubernetes.ClusterName = "blue"
		s, err := SpecFromCluster(c)
		if err != nil {
			t.Fatal(err)
		}
		if got := names(s.Etcd); !slices.Equal(got, []string{"e1", "e2"}) {
			t.Errorf("etcd = %v", got)
		}
		if s.Etcd[0].InternalAddress != "192.0.2.31" {
			t.Errorf("internal address not defaulted: %+v", s.Etcd[0])
		}
		if s.AdminServerURL() != "https://[2001:db8::100]:6443" || s.ServiceCIDR != DefaultServiceCIDR || s.ClusterDomain != DefaultClusterDomain || s.ClusterName != "blue" {
			t.Errorf("spec = %+v, admin %s", s, s.AdminServerURL())
		}
	})
}

// TestSpecFromClusterErrors checks that bad inventories are refused with
// every problem named; the messages are golden.
func TestSpecFromClusterErrors(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(c *inventory.Cluster)
	}{
		{"nil cluster", nil},
		{"no masters group", func(c *inventory.Cluster) { delete(c.Spec.Groups, inventory.GroupMasters) }},
		{"unknown host in group", func(c *inventory.Cluster) {
			c.Spec.Groups[inventory.GroupMasters] = []string{"m1", "m9"}
			c.Spec.Groups[inventory.GroupEtcd] = []string{"x[1:2]"}
		}},
		{"duplicate host", func(c *inventory.Cluster) { c.Spec.Hosts = append(c.Spec.Hosts, c.Spec.Hosts[0]) }},
		{"unexpanded range host", func(c *inventory.Cluster) {
			c.Spec.Hosts = append(c.Spec.Hosts, inventory.Host{Name: "n[1:3]", Address: "10.1.0.[1:3]", Groups: []string{inventory.GroupMasters}})
		}},
		{"no vip and bad service cidr", func(c *inventory.Cluster) {
			c.Spec.ControlPlaneEndpoint.VIP = ""
			c.Spec.Network.ServiceCIDR = "10.96.0.0/33"
		}},
		{"missing address", func(c *inventory.Cluster) { c.Spec.Hosts[0].Address = "" }},
	}
	var out strings.Builder
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var c *inventory.Cluster
			if tc.mutate != nil {
				c = testCluster(2)
				tc.mutate(c)
			}
			_, err := SpecFromCluster(c)
			if err == nil {
				t.Fatal("want an error")
			}
			fmt.Fprintf(&out, "== %s\n%s\n", tc.name, err)
		})
	}
	golden(t, "spec-errors.golden", out.String())
}

func TestSpecValidate(t *testing.T) {
	base := testSpec(t, 1)
	cases := []struct {
		name   string
		mutate func(s *Spec)
		want   string
	}{
		{"renew threshold too long", func(s *Spec) { s.RenewBefore = s.LeafValidity }, "must be longer than the renew threshold"},
		{"unknown algorithm", func(s *Spec) { s.KeyAlgorithm = "dsa" }, `key algorithm "dsa"`},
		{"CA shorter than leaves", func(s *Spec) { s.CAValidity = s.LeafValidity / 2 }, "CA validity"},
		{"member name with slash", func(s *Spec) { s.Etcd = []Member{{Name: "../x", Address: "10.0.0.1"}} }, "cannot be used as a directory name"},
		{"bad port", func(s *Spec) { s.ControlPlanePort = 70000 }, "out of range"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := base
			tc.mutate(&s)
			st, _ := newTestStore(t)
			_, err := st.EnsureAll(s)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestHostRange(t *testing.T) {
	cases := []struct {
		pattern, name string
		want          bool
	}{
		{"node[01:20]", "node07", true},
		{"node[01:20]", "node7", false},
		{"node[01:20]", "node21", false},
		{"node[1:20]", "node7", true},
		{"node[1:20]", "node07", false},
		{"m[1:3].lab", "m2.lab", true},
		{"m[1:3].lab", "m2.lan", false},
		{"m[1:3]", "m", false},
		{"m[1:3]", "m+1", false},
	}
	for _, tc := range cases {
		t.Run(tc.pattern+"/"+tc.name, func(t *testing.T) {
			r, ok := parseRange(tc.pattern)
			if !ok {
				t.Fatalf("parseRange(%q) failed", tc.pattern)
			}
			if got := r.matches(tc.name); got != tc.want {
				t.Errorf("matches = %v, want %v", got, tc.want)
			}
		})
	}
	if _, ok := parseRange("m[3:1]"); ok {
		t.Error("reversed range accepted")
	}
}

func TestSpecFromClusterUsesInventoryAPIServerPort(t *testing.T) {
	c := testCluster(2)
	c.Spec.Kubernetes.APIServerPort = 7443
	c.Spec.ControlPlaneEndpoint.Port = 8443
	s, err := SpecFromCluster(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range s.Masters {
		if want := "https://" + m.InternalAddress + ":7443"; m.APIServerURL != want {
			t.Errorf("%s: component kubeconfig URL %s, want %s", m.Name, m.APIServerURL, want)
		}
	}
	if got := s.AdminServerURL(); got != "https://192.0.2.100:8443" {
		t.Errorf("admin URL %s, want the VIP port", got)
	}
}
