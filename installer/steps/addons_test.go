package steps

import (
	"strings"
	"testing"

	"github.com/kubewright/kubewright/addons"
	"github.com/kubewright/kubewright/installer/artifacts"
	"github.com/kubewright/kubewright/installer/engine"
	"github.com/kubewright/kubewright/installer/inventory"
	"github.com/kubewright/kubewright/installer/kube"
)

func addonCluster(plugin, dns string) *inventory.Cluster {
	c := clusterWith(func(s *inventory.Spec) {
		s.Network = inventory.Network{Plugin: plugin, PodCIDR: "10.244.0.0/16", ServiceCIDR: "10.96.0.0/12", Encapsulation: "vxlan"}
		s.DNS = inventory.DNS{Provider: dns, ClusterDomain: "cluster.local"}
	})
	c.Path = "inv.yaml"
	return c
}

func TestAddonParamsTakesImagesFromArtifacts(t *testing.T) {
	m := &artifacts.Manifest{
		Files: []artifacts.File{
			{Name: "flannel-image", Kind: artifacts.KindImage, Component: "flannel"},
			{Name: "coredns-image", Kind: artifacts.KindImage, Component: "coredns"},
		},
		Images: []artifacts.Image{
			{Name: "ghcr.io/flannel-io/flannel:v0.28.10", File: "flannel-image"},
			{Name: "registry.k8s.io/coredns/coredns:v1.15.0", File: "coredns-image"},
		},
	}
	p, err := AddonParams(addonCluster("flannel", "coredns"), m)
	if err != nil {
		t.Fatal(err)
	}
	if p.Images["flannel"] != "ghcr.io/flannel-io/flannel:v0.28.10" || p.Images["coredns"] != "registry.k8s.io/coredns/coredns:v1.15.0" || len(p.Images) != 2 {
		t.Errorf("images from the artifacts: %v", p.Images)
	}
	if p.CNIBinDir != "/usr/lib/cni" {
		t.Errorf("CNI bin dir %q, want the one containerd is configured with", p.CNIBinDir)
	}
	// The rendered flannel DaemonSet runs the artifacts' image, not upstream's.
	sets, err := addons.Render(p)
	if err != nil {
		t.Fatal(err)
	}
	var all strings.Builder
	for _, s := range sets {
		for _, o := range s.Objects {
			b, _ := o.MarshalJSON()
			all.Write(b)
		}
	}
	if !strings.Contains(all.String(), "ghcr.io/flannel-io/flannel:v0.28.10") || strings.Contains(all.String(), "flannel:v0.28.9") {
		t.Errorf("rendered add-ons do not use the artifacts' flannel image")
	}
}

func TestAddonParamsWeavePassword(t *testing.T) {
	c := addonCluster("weave", "coredns")
	c.Spec.Network.WeavePasswordEnv = "KW_TEST_WEAVE_PASSWORD"
	t.Setenv("KW_TEST_WEAVE_PASSWORD", "")
	_, err := AddonParams(c, nil)
	if err == nil || !strings.Contains(err.Error(), "KW_TEST_WEAVE_PASSWORD") || !strings.Contains(err.Error(), "fix: export") {
		t.Fatalf("empty password variable: %v", err)
	}
	t.Setenv("KW_TEST_WEAVE_PASSWORD", "s3cret-weave")
	p, err := AddonParams(c, nil)
	if err != nil || p.WeavePassword != "s3cret-weave" {
		t.Fatalf("password: %q %v", p.WeavePassword, err)
	}
	// Other plugins do not need it, even when the variable is unset.
	c.Spec.Network.Plugin = "flannel"
	t.Setenv("KW_TEST_WEAVE_PASSWORD", "")
	if _, err := AddonParams(c, nil); err != nil {
		t.Fatalf("flannel with an unset weave variable: %v", err)
	}
}

func TestCheckAddonSwitch(t *testing.T) {
	applied := func(names ...string) *kube.Record {
		r := &kube.Record{Addons: map[string]kube.AddonRecord{}}
		for _, n := range names {
			r.Addons[n] = kube.AddonRecord{Objects: []kube.ObjectRef{{Version: "v1", Kind: "ConfigMap", Namespace: "kube-system", Name: n}}}
		}
		return r
	}
	sets := func(names ...string) []kube.AddonSet {
		var out []kube.AddonSet
		for _, n := range names {
			out = append(out, kube.AddonSet{Name: n})
		}
		return out
	}
	for _, tc := range []struct {
		name, plugin, dns string
		rec               *kube.Record
		want              []string // substrings; none = no error
	}{
		{"fresh cluster", "calico", "coredns", applied(), nil},
		{"same plugin", "flannel", "coredns", applied("flannel", "coredns"), nil},
		{"nodelocaldns switched off is fine", "flannel", "coredns", applied("flannel", "coredns", "nodelocaldns"), nil},
		{"plugin switch", "calico", "coredns", applied("flannel", "coredns"),
			[]string{"inv.yaml: spec.network.plugin is calico, but this cluster runs flannel", "fix: set spec.network.plugin: flannel again"}},
		{"dns switch", "flannel", "kube-dns", applied("flannel", "coredns"),
			[]string{"spec.dns.provider is kube-dns, but this cluster runs coredns", "fix: set spec.dns.provider: coredns again"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := addonCluster(tc.plugin, tc.dns)
			err := CheckAddonSwitch(c, tc.rec, sets(tc.plugin, tc.dns))
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected refusal: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("switch not refused")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

func TestWithRemovedAddonsPrunesSwitchedOff(t *testing.T) {
	rec := &kube.Record{Addons: map[string]kube.AddonRecord{
		"flannel":      {Objects: []kube.ObjectRef{{Version: "v1", Kind: "ConfigMap", Name: "a"}}},
		"coredns":      {Objects: []kube.ObjectRef{{Version: "v1", Kind: "ConfigMap", Name: "b"}}},
		"nodelocaldns": {Objects: []kube.ObjectRef{{Version: "v1", Kind: "ConfigMap", Name: "c"}}},
		"emptied":      {},
	}}
	got := withRemovedAddons(rec, []kube.AddonSet{{Name: "flannel"}, {Name: "coredns"}})
	var names []string
	for _, s := range got {
		names = append(names, s.Name)
		if s.Name == "nodelocaldns" && len(s.Objects) != 0 {
			t.Errorf("the switched-off add-on must be applied with no objects, got %d", len(s.Objects))
		}
	}
	if strings.Join(names, ",") != "flannel,coredns,nodelocaldns" {
		t.Errorf("sets %v, want flannel,coredns,nodelocaldns (an empty set prunes what the record lists)", names)
	}
}

func TestAddonParamsRefusesNodeLocalDNSWithIPVS(t *testing.T) {
	c := addonCluster("flannel", "coredns")
	c.Spec.DNS.NodeLocalDNS = true
	c.Spec.Kubernetes.ProxyMode = "ipvs"
	_, err := AddonParams(c, nil)
	if err == nil || !strings.Contains(err.Error(), "inv.yaml: spec.dns.nodeLocalDNS with spec.kubernetes.proxyMode ipvs") || !strings.Contains(err.Error(), "fix: use proxyMode iptables") {
		t.Fatalf("nodeLocalDNS with ipvs: %v", err)
	}
	c.Spec.Kubernetes.ProxyMode = "iptables"
	if _, err := AddonParams(c, nil); err != nil {
		t.Fatalf("nodeLocalDNS with iptables: %v", err)
	}
}

func TestAddonsStepNeedsTheRunsArtifacts(t *testing.T) {
	tg := &engine.Target{Cluster: addonCluster("flannel", "coredns")}
	if _, err := renderAddons(tg); err == nil || !strings.Contains(err.Error(), "no artifacts source") {
		t.Fatalf("without artifacts: %v (must not fall back to upstream images)", err)
	}
	tg.Shared = engine.NewSharedData()
	tg.Shared.Set(SharedArtifacts, nodeArtifacts(t))
	sets, err := renderAddons(tg)
	if err != nil || len(sets) != 2 || sets[0].Name != "flannel" || sets[1].Name != "coredns" {
		t.Fatalf("with artifacts: %v %v", sets, err)
	}
}
