package addons

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/kubewright/kubewright/installer/inventory"
)

const weaveTestPassword = "correct-Horse-battery-9"

func TestRenderOrder(t *testing.T) {
	addons := mustRender(t, with(base(), func(p *Params) { p.NodeLocalDNS = true }))
	if got, want := names(addons), []string{Flannel, CoreDNS, NodeLocalDNS}; !slices.Equal(got, want) {
		t.Fatalf("add-ons = %v, want %v", got, want)
	}
	if k := addons[0].Objects[0].GetKind(); k != "Namespace" {
		t.Errorf("flannel's first object is a %s; its Namespace must be applied first", k)
	}
	addons = mustRender(t, with(base(), func(p *Params) { p.Plugin, p.DNSProvider = Weave, KubeDNS }))
	if got, want := names(addons), []string{Weave, KubeDNS}; !slices.Equal(got, want) {
		t.Fatalf("add-ons = %v, want %v", got, want)
	}
}

// namespaced kinds the manifests use; their objects must say where they go.
var namespaced = []string{"ServiceAccount", "ConfigMap", "Secret", "Service", "Deployment", "DaemonSet", "Role", "RoleBinding", "PodDisruptionBudget"}

// TestObjectsValid: every object of every golden case has apiVersion, kind,
// name and the pruning labels, survives a YAML round trip, and converts
// strictly (unknown fields are errors) into its typed Kubernetes API object.
func TestObjectsValid(t *testing.T) {
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			addons := mustRender(t, tc.p)
			for _, a := range addons {
				for _, o := range a.Objects {
					id := a.Name + ": " + o.GetKind() + " " + o.GetName()
					if o.GetAPIVersion() == "" || o.GetKind() == "" || o.GetName() == "" {
						t.Errorf("%s: apiVersion %q kind %q name %q", id, o.GetAPIVersion(), o.GetKind(), o.GetName())
					}
					if l := o.GetLabels(); l[LabelManagedBy] != ManagedBy || l[LabelAddon] != a.Name {
						t.Errorf("%s: labels %v", id, l)
					}
					if slices.Contains(namespaced, o.GetKind()) && o.GetNamespace() == "" {
						t.Errorf("%s: no namespace", id)
					}
					typed, err := scheme.Scheme.New(o.GroupVersionKind())
					if err != nil {
						if !outsideScheme(a, o) {
							t.Errorf("%s: %v", id, err)
						}
						continue
					}
					if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(o.Object, typed, true); err != nil {
						t.Errorf("%s: %v", id, err)
					}
				}
				back, err := decodeManifest("rendered", []byte(encode(t, a.Objects)))
				if err != nil {
					t.Fatalf("%s: rendered YAML does not parse: %v", a.Name, err)
				}
				if !reflect.DeepEqual(back, a.Objects) {
					t.Errorf("%s: YAML round trip changes the objects", a.Name)
				}
			}
		})
	}
}

func netConf(t *testing.T, a Addon) map[string]any {
	t.Helper()
	var conf map[string]any
	if err := json.Unmarshal([]byte(str(t, object(t, a, "ConfigMap", "kube-flannel-cfg"), "data", "net-conf.json")), &conf); err != nil {
		t.Fatal(err)
	}
	return conf
}

func TestFlannel(t *testing.T) {
	a := addon(t, mustRender(t, with(base(), func(p *Params) { p.PodCIDR = "10.50.0.0/16"; p.MTU = 1400 })), Flannel)
	conf := netConf(t, a)
	if conf["Network"] != "10.50.0.0/16" {
		t.Errorf("Network = %v", conf["Network"])
	}
	if b := conf["Backend"].(map[string]any); b["Type"] != "vxlan" || b["MTU"] != float64(1450) {
		t.Errorf("Backend = %v, want vxlan with MTU 1450 (pods 1400 + 50 VXLAN)", b)
	}
	if conf["EnableNFTables"] != false {
		t.Errorf("upstream settings lost: %v", conf)
	}
	ds := object(t, a, "DaemonSet", "kube-flannel-ds")
	if got := hostPath(t, ds, "cni-plugin"); got != "/usr/lib/cni" {
		t.Errorf("cni-plugin hostPath = %s", got)
	}
	if e := env(ctr(t, ds, "kube-flannel"), "FLANNELD_IFACE"); e == nil || !reflect.DeepEqual(e["valueFrom"], map[string]any{"fieldRef": map[string]any{"fieldPath": "status.hostIP"}}) {
		t.Errorf("FLANNELD_IFACE = %v", e)
	}

	a = addon(t, mustRender(t, with(base(), func(p *Params) { p.Encapsulation = "host-gw"; p.CNIBinDir = "/opt/cni/bin" })), Flannel)
	if b := netConf(t, a)["Backend"].(map[string]any); !reflect.DeepEqual(b, map[string]any{"Type": "host-gw"}) {
		t.Errorf("host-gw Backend = %v (host-gw has no MTU setting)", b)
	}
	if got := hostPath(t, object(t, a, "DaemonSet", "kube-flannel-ds"), "cni-plugin"); got != "/opt/cni/bin" {
		t.Errorf("cni-plugin hostPath = %s", got)
	}

	a = addon(t, mustRender(t, with(base(), func(p *Params) { p.MTU = 0; p.Encapsulation = "" })), Flannel)
	if b := netConf(t, a)["Backend"].(map[string]any); !reflect.DeepEqual(b, map[string]any{"Type": "vxlan"}) {
		t.Errorf("MTU 0 / default encapsulation Backend = %v, want flannel's own detection", b)
	}
}

func TestCalico(t *testing.T) {
	tests := []struct {
		encap, backend, ipip, vxlan string
		birdProbes                  bool
	}{
		{"ipip", "bird", "Always", "Never", true},
		{"vxlan", "vxlan", "Never", "Always", false},
		{"none", "bird", "Never", "Never", true},
		{"", "vxlan", "Never", "Always", false}, // the default
	}
	for _, tc := range tests {
		t.Run(tc.encap, func(t *testing.T) {
			a := addon(t, mustRender(t, with(base(), func(p *Params) {
				p.Plugin, p.Encapsulation, p.PodCIDR, p.MTU, p.CNIBinDir = Calico, tc.encap, "10.60.0.0/16", 1440, "/usr/libexec/cni"
			})), Calico)
			cm := object(t, a, "ConfigMap", "calico-config")
			if got := str(t, cm, "data", "calico_backend"); got != tc.backend {
				t.Errorf("calico_backend = %s, want %s", got, tc.backend)
			}
			if got := str(t, cm, "data", "veth_mtu"); got != "1440" {
				t.Errorf("veth_mtu = %s", got)
			}
			ds := object(t, a, "DaemonSet", "calico-node")
			node := ctr(t, ds, "calico-node")
			for name, want := range map[string]string{
				"CALICO_IPV4POOL_IPIP": tc.ipip, "CALICO_IPV4POOL_VXLAN": tc.vxlan,
				"CALICO_IPV4POOL_CIDR": "10.60.0.0/16", "IP_AUTODETECTION_METHOD": "kubernetes-internal-ip",
			} {
				if got, _ := envValue(node, name); got != want {
					t.Errorf("%s = %q, want %q", name, got, want)
				}
			}
			probes := strings.Join(append(stringSlice(node["livenessProbe"].(map[string]any)["exec"].(map[string]any), "command"),
				stringSlice(node["readinessProbe"].(map[string]any)["exec"].(map[string]any), "command")...), " ")
			if has := strings.Contains(probes, "-bird-live") && strings.Contains(probes, "-bird-ready"); has != tc.birdProbes {
				t.Errorf("probes %q: BIRD checks present = %v, want %v", probes, has, tc.birdProbes)
			}
			if !strings.Contains(probes, "-felix-live") || !strings.Contains(probes, "-felix-ready") {
				t.Errorf("felix probes lost: %q", probes)
			}
			if got := hostPath(t, ds, "cni-bin-dir"); got != "/usr/libexec/cni" {
				t.Errorf("cni-bin-dir hostPath = %s", got)
			}
		})
	}
	a := addon(t, mustRender(t, with(base(), func(p *Params) { p.Plugin, p.MTU = Calico, 0 })), Calico)
	if got := str(t, object(t, a, "ConfigMap", "calico-config"), "data", "veth_mtu"); got != "0" {
		t.Errorf("MTU 0: veth_mtu = %s, want calico's auto-detection (0)", got)
	}
}

func TestWeave(t *testing.T) {
	a := addon(t, mustRender(t, with(base(), func(p *Params) { p.Plugin, p.Encapsulation, p.PodCIDR, p.MTU = Weave, "", "10.70.0.0/16", 1376 })), Weave)
	ds := object(t, a, "DaemonSet", "weave-net")
	w := ctr(t, ds, "weave")
	if got, _ := envValue(w, "IPALLOC_RANGE"); got != "10.70.0.0/16" {
		t.Errorf("IPALLOC_RANGE = %q", got)
	}
	if got, _ := envValue(w, "WEAVE_MTU"); got != "1376" {
		t.Errorf("WEAVE_MTU = %q", got)
	}
	if env(w, "WEAVE_PASSWORD") != nil {
		t.Error("WEAVE_PASSWORD set without a password")
	}
	for _, o := range a.Objects {
		if o.GetKind() == "Secret" {
			t.Errorf("Secret %s rendered without a password", o.GetName())
		}
	}
	if got := hostPath(t, ds, "cni-bin"); got != "/usr/lib/cni" {
		t.Errorf("cni-bin hostPath = %s", got)
	}
	mounts := ctr(t, ds, "weave-init")["volumeMounts"].([]any)
	if i := slices.IndexFunc(mounts, func(m any) bool {
		return m.(map[string]any)["name"] == "cni-bin" && m.(map[string]any)["mountPath"] == "/host/opt/cni/bin"
	}); i < 0 {
		t.Errorf("weave-init does not mount the CNI bin dir at /host/opt/cni/bin: %v", mounts)
	}
	ps, _ := podSpec(Weave, ds)
	for _, c := range containers(ps) {
		if c["imagePullPolicy"] != "IfNotPresent" || strings.HasSuffix(c["image"].(string), ":latest") {
			t.Errorf("container %s: image %v pull %v", c["name"], c["image"], c["imagePullPolicy"])
		}
	}
}

// TestWeavePasswordOnlyInSecret: the password appears nowhere in the output
// in clear, and its encoding only in the weave-passwd Secret, which the
// weave container reads through a secretKeyRef.
func TestWeavePasswordOnlyInSecret(t *testing.T) {
	p := with(base(), func(p *Params) { p.Plugin, p.Encapsulation, p.WeavePassword = Weave, "", weaveTestPassword })
	addons := mustRender(t, p)
	a := addon(t, addons, Weave)
	secret := object(t, a, "Secret", WeavePasswordSecret)
	enc := str(t, secret, "data", WeavePasswordKey)
	if dec, err := base64.StdEncoding.DecodeString(enc); err != nil || string(dec) != weaveTestPassword {
		t.Fatalf("Secret data decodes to %q, %v", dec, err)
	}
	if secret.GetNamespace() != "kube-system" || str(t, secret, "type") != "Opaque" {
		t.Errorf("Secret %s/%s type %s", secret.GetNamespace(), secret.GetName(), str(t, secret, "type"))
	}
	all := encode(t, allObjects(addons))
	if strings.Contains(all, weaveTestPassword) {
		t.Fatal("the password appears in clear in the rendered objects")
	}
	for _, o := range allObjects(addons) {
		if o != secret && strings.Contains(encode(t, []*unstructured.Unstructured{o}), enc) {
			t.Errorf("%s %s contains the encoded password", o.GetKind(), o.GetName())
		}
	}
	ds := object(t, a, "DaemonSet", "weave-net")
	want := map[string]any{"name": "WEAVE_PASSWORD", "valueFrom": map[string]any{"secretKeyRef": map[string]any{"name": "weave-passwd", "key": "weave-passwd"}}}
	if got := env(ctr(t, ds, "weave"), "WEAVE_PASSWORD"); !reflect.DeepEqual(got, want) {
		t.Errorf("WEAVE_PASSWORD env = %v", got)
	}
	if i, j := slices.Index(a.Objects, secret), slices.Index(a.Objects, ds); i > j {
		t.Error("the Secret must be applied before the DaemonSet that reads it")
	}

	// Errors never carry it either, whatever else is wrong.
	bad := with(p, func(p *Params) { p.PodCIDR, p.Registry, p.MTU = "x", "y", 1 })
	for _, f := range []func(Params) error{
		func(p Params) error { _, err := Render(p); return err },
		func(p Params) error { _, err := Images(p); return err },
	} {
		if err := f(bad); err == nil || strings.Contains(err.Error(), weaveTestPassword) {
			t.Errorf("error %v: want one, without the password", err)
		}
	}
}

func TestCoreDNS(t *testing.T) {
	a := addon(t, mustRender(t, base()), CoreDNS)
	svc := object(t, a, "Service", "kube-dns")
	if got := str(t, svc, "spec", "clusterIP"); got != "10.96.0.10" {
		t.Errorf("clusterIP = %s", got)
	}
	corefile := str(t, object(t, a, "ConfigMap", "coredns"), "data", "Corefile")
	for _, want := range []string{"kubernetes cluster.local in-addr.arpa ip6.arpa {", "forward . /etc/resolv.conf {", "    loadbalance\n}\n"} {
		if !strings.Contains(corefile, want) {
			t.Errorf("Corefile lacks %q:\n%s", want, corefile)
		}
	}
	dep := object(t, a, "Deployment", "coredns")
	if n, _, _ := unstructured.NestedInt64(dep.Object, "spec", "replicas"); n != DefaultDNSReplicas {
		t.Errorf("replicas = %d", n)
	}
	anti, _, _ := unstructured.NestedMap(dep.Object, "spec", "template", "spec", "affinity", "podAntiAffinity")
	pref, _ := anti["preferredDuringSchedulingIgnoredDuringExecution"].([]any)
	if _, req := anti["requiredDuringSchedulingIgnoredDuringExecution"]; req || len(pref) != 1 {
		t.Fatalf("podAntiAffinity = %v, want one preferred term only", anti)
	}
	term := pref[0].(map[string]any)["podAffinityTerm"].(map[string]any)
	if term["topologyKey"] != "kubernetes.io/hostname" {
		t.Errorf("anti-affinity term = %v", term)
	}

	a = addon(t, mustRender(t, with(base(), func(p *Params) {
		p.ServiceCIDR, p.ClusterDomain, p.Upstreams, p.DNSReplicas = "fd00:10:96::/108", "corp.example", []string{"10.0.0.2:53", "[fd00::53]:5353"}, 4
	})), CoreDNS)
	if got := str(t, object(t, a, "Service", "kube-dns"), "spec", "clusterIP"); got != "fd00:10:96::a" {
		t.Errorf("IPv6 clusterIP = %s", got)
	}
	corefile = str(t, object(t, a, "ConfigMap", "coredns"), "data", "Corefile")
	for _, want := range []string{"kubernetes corp.example in-addr.arpa", "forward . 10.0.0.2:53 [fd00::53]:5353 {"} {
		if !strings.Contains(corefile, want) {
			t.Errorf("Corefile lacks %q:\n%s", want, corefile)
		}
	}
	if n, _, _ := unstructured.NestedInt64(object(t, a, "Deployment", "coredns").Object, "spec", "replicas"); n != 4 {
		t.Errorf("replicas = %d", n)
	}
}

func TestKubeDNS(t *testing.T) {
	a := addon(t, mustRender(t, with(base(), func(p *Params) {
		p.DNSProvider, p.ClusterDomain, p.Upstreams = KubeDNS, "corp.example", []string{"1.1.1.1", "10.0.0.2:53"}
	})), KubeDNS)
	if got := str(t, object(t, a, "Service", "kube-dns"), "spec", "clusterIP"); got != "10.96.0.10" {
		t.Errorf("clusterIP = %s", got)
	}
	dep := object(t, a, "Deployment", "kube-dns")
	args := strings.Join(append(append(stringSlice(ctr(t, dep, "kubedns"), "args"), stringSlice(ctr(t, dep, "dnsmasq"), "args")...), stringSlice(ctr(t, dep, "sidecar"), "args")...), " ")
	for _, want := range []string{"--domain=corp.example.", "--server=/corp.example/127.0.0.1#10053", "kubernetes.default.svc.corp.example,5,SRV"} {
		if !strings.Contains(args, want) {
			t.Errorf("args lack %q: %s", want, args)
		}
	}
	if got, _, _ := unstructured.NestedString(ctr(t, dep, "kubedns"), "resources", "limits", "memory"); got != "170Mi" {
		t.Errorf("memory limit = %q", got)
	}
	if got := str(t, object(t, a, "ConfigMap", "kube-dns"), "data", "upstreamNameservers"); got != `["1.1.1.1","10.0.0.2:53"]` {
		t.Errorf("upstreamNameservers = %s", got)
	}
	a = addon(t, mustRender(t, with(base(), func(p *Params) { p.DNSProvider = KubeDNS })), KubeDNS)
	if _, ok := object(t, a, "ConfigMap", "kube-dns").Object["data"]; ok {
		t.Error("kube-dns ConfigMap has data without upstreams")
	}
}

func TestNodeLocalDNS(t *testing.T) {
	tests := []struct {
		mode, localip string
		corefile      []string
		notInCorefile []string
	}{
		{"iptables", "169.254.20.10,10.96.0.10",
			[]string{"bind 169.254.20.10 10.96.0.10\n", "cluster.local:53 {", "forward . __PILLAR__CLUSTER__DNS__ {", "forward . /etc/resolv.conf\n", "health 169.254.20.10:8080"},
			nil},
		{"ipvs", "169.254.20.10",
			[]string{"bind 169.254.20.10\n", "forward . 10.96.0.10 {", "forward . /etc/resolv.conf\n"},
			[]string{"__PILLAR__", "bind 169.254.20.10 10.96.0.10"}},
	}
	for _, tc := range tests {
		t.Run(tc.mode, func(t *testing.T) {
			a := addon(t, mustRender(t, with(base(), func(p *Params) { p.NodeLocalDNS, p.ProxyMode = true, tc.mode })), NodeLocalDNS)
			corefile := str(t, object(t, a, "ConfigMap", "node-local-dns"), "data", "Corefile")
			for _, want := range tc.corefile {
				if !strings.Contains(corefile, want) {
					t.Errorf("Corefile lacks %q:\n%s", want, corefile)
				}
			}
			for _, bad := range tc.notInCorefile {
				if strings.Contains(corefile, bad) {
					t.Errorf("Corefile contains %q:\n%s", bad, corefile)
				}
			}
			c := ctr(t, object(t, a, "DaemonSet", "node-local-dns"), "node-cache")
			args := stringSlice(c, "args")
			if i := slices.Index(args, "-localip"); i < 0 || args[i+1] != tc.localip {
				t.Errorf("args = %v, want -localip %s", args, tc.localip)
			}
			if got, _, _ := unstructured.NestedString(c, "livenessProbe", "httpGet", "host"); got != NodeLocalDNSIP {
				t.Errorf("liveness host = %s", got)
			}
		})
	}
	a := addon(t, mustRender(t, with(base(), func(p *Params) { p.NodeLocalDNS, p.Upstreams = true, []string{"1.1.1.1", "8.8.8.8:53"} })), NodeLocalDNS)
	if corefile := str(t, object(t, a, "ConfigMap", "node-local-dns"), "data", "Corefile"); !strings.Contains(corefile, "forward . 1.1.1.1 8.8.8.8:53\n") {
		t.Errorf("upstreams not in Corefile:\n%s", corefile)
	}
}

func TestRenderErrors(t *testing.T) {
	tests := []struct {
		name string
		p    Params
		want []string // every line must appear, in this order
	}{
		{"flannel ipip", with(base(), func(p *Params) { p.Encapsulation = "ipip" }),
			[]string{`spec.network.encapsulation: flannel does not support encapsulation "ipip"; fix: use one of: vxlan, host-gw (ipip is a calico mode)`}},
		{"calico host-gw", with(base(), func(p *Params) { p.Plugin, p.Encapsulation = Calico, "host-gw" }),
			[]string{`spec.network.encapsulation: calico does not support encapsulation "host-gw"; fix: use one of: ipip, vxlan, none (host-gw is a flannel mode)`}},
		{"calico bgp", with(base(), func(p *Params) { p.Plugin, p.Encapsulation = Calico, "bgp" }),
			[]string{`calico does not support encapsulation "bgp"; fix: use one of: ipip, vxlan, none`}},
		{"unknown plugin", with(base(), func(p *Params) { p.Plugin = "cilium" }),
			[]string{`spec.network.plugin: unknown network plugin "cilium"; fix: use one of: calico, flannel, weave`}},
		{"no plugin", with(base(), func(p *Params) { p.Plugin = "" }),
			[]string{`spec.network.plugin: no network plugin; fix: set it to one of: calico, flannel, weave`}},
		{"bad pod cidr", with(base(), func(p *Params) { p.PodCIDR = "10.244.0.0/33" }),
			[]string{`spec.network.podCIDR: invalid pod CIDR "10.244.0.0/33"; fix: write a CIDR such as 10.244.0.0/16`}},
		{"pod cidr host bits", with(base(), func(p *Params) { p.PodCIDR = "10.244.3.0/16" }),
			[]string{`spec.network.podCIDR: pod CIDR 10.244.3.0/16 has host bits set; fix: write the network address: 10.244.0.0/16`}},
		{"ipv6 pod cidr", with(base(), func(p *Params) { p.PodCIDR = "fd00:244::/56" }),
			[]string{`spec.network.podCIDR: pod CIDR fd00:244::/56 is IPv6`}},
		{"bad service cidr", with(base(), func(p *Params) { p.ServiceCIDR = "10.96.0.0" }),
			[]string{`spec.network.serviceCIDR: service CIDR "10.96.0.0" is not a CIDR such as 10.96.0.0/12; fix: write a CIDR such as 10.96.0.0/12`}},
		{"tiny service cidr", with(base(), func(p *Params) { p.ServiceCIDR = "10.96.0.0/29" }),
			[]string{`spec.network.serviceCIDR: service CIDR 10.96.0.0/29 is too small to hold the DNS service address (its 10th address)`}},
		{"mtu", with(base(), func(p *Params) { p.MTU = 100 }),
			[]string{`spec.network.mtu: MTU 100 is out of range (576-9216)`}},
		{"unknown dns", with(base(), func(p *Params) { p.DNSProvider = "bind9" }),
			[]string{`spec.dns.provider: unknown DNS provider "bind9"; fix: use one of: coredns, kube-dns`}},
		{"domain", with(base(), func(p *Params) { p.ClusterDomain = "Cluster Local" }),
			[]string{`spec.dns.clusterDomain: invalid cluster domain "Cluster Local"`}},
		{"upstream", with(base(), func(p *Params) { p.Upstreams = []string{"1.1.1.1", "dns.google"} }),
			[]string{`spec.dns.upstreams[1]: invalid upstream DNS server "dns.google"; fix: write a resolver IP`}},
		{"kube-dns upstreams", with(base(), func(p *Params) {
			p.DNSProvider, p.Upstreams = KubeDNS, []string{"1.1.1.1", "1.0.0.1", "8.8.8.8", "8.8.4.4"}
		}),
			[]string{`spec.dns.upstreams: kube-dns accepts at most 3 upstream servers, got 4; fix: list at most 3, or use provider: coredns`}},
		{"proxy mode", with(base(), func(p *Params) { p.ProxyMode = "nftables" }),
			[]string{`spec.kubernetes.proxyMode: unknown proxy mode "nftables"`}},
		{"registry without host", with(base(), func(p *Params) { p.Registry = "mirror" }),
			[]string{`spec.registryMirror: registry "mirror" is not a registry host`}},
		{"registry url", with(base(), func(p *Params) { p.Registry = "https://mirror.example" }),
			[]string{`spec.registryMirror: registry "https://mirror.example" is not a registry host`}},
		{"artifact image", with(base(), func(p *Params) { p.Images = map[string]string{"coredns": "bad ref"} }),
			[]string{`artifacts image coredns: invalid image reference "bad ref"`}},
		{"cni bin dir", with(base(), func(p *Params) { p.CNIBinDir = "usr/lib/cni" }),
			[]string{`CNIBinDir: CNI bin dir "usr/lib/cni" is not a clean absolute path`}},
		{"replicas", with(base(), func(p *Params) { p.DNSReplicas = -1 }),
			[]string{`DNSReplicas: DNS replicas -1 is negative`}},
		{"all at once", with(base(), func(p *Params) { p.Plugin, p.Encapsulation, p.PodCIDR, p.DNSProvider = Flannel, "none", "nope", "" }),
			[]string{"add-ons: 3 errors:",
				`  spec.network.encapsulation: flannel does not support encapsulation "none"; fix: use one of: vxlan, host-gw (none is a calico mode)`,
				`  spec.network.podCIDR: invalid pod CIDR "nope"`,
				`  spec.dns.provider: no DNS provider`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			addons, err := Render(tc.p)
			if err == nil {
				t.Fatalf("rendered %v", names(addons))
			}
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error %T is not Errors: %v", err, err)
			}
			msg, at := err.Error(), 0
			for _, w := range tc.want {
				i := strings.Index(msg[at:], w)
				if i < 0 {
					t.Fatalf("error\n%s\nlacks (after offset %d)\n%s", msg, at, w)
				}
				at += i + len(w)
			}
			if _, err := Images(tc.p); err == nil {
				t.Error("Images accepted the same params")
			}
		})
	}
}

func TestDNSServiceIP(t *testing.T) {
	tests := []struct{ cidr, want, err string }{
		{"10.96.0.0/12", "10.96.0.10", ""},
		{"10.100.0.0/16", "10.100.0.10", ""},
		{"10.96.7.9/12", "10.96.0.10", ""}, // counted from the network address, as the inventory does
		{"172.16.0.0/28", "172.16.0.10", ""},
		{"10.0.0.250/24", "10.0.0.10", ""},
		{"fd00:10:96::/108", "fd00:10:96::a", ""},
		{"2001:db8:1::/112", "2001:db8:1::a", ""},
		{"10.96.0.0/29", "", "too small"},
		{"fd00::/125", "", "too small"},
		{"10.96.0.0", "", "not a CIDR"},
		{"", "", "not a CIDR"},
	}
	for _, tc := range tests {
		t.Run(tc.cidr, func(t *testing.T) {
			got, err := DNSServiceIP(tc.cidr)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("DNSServiceIP(%q) = %q, %v; want error containing %q", tc.cidr, got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("DNSServiceIP(%q) = %q, %v; want %s", tc.cidr, got, err, tc.want)
			}
			// kubelets get clusterDNS from the inventory's helper: the two must agree.
			c := &inventory.Cluster{Spec: inventory.Spec{Network: inventory.Network{ServiceCIDR: tc.cidr}}}
			if inv, err := c.ClusterDNSIP(); err != nil || inv.String() != got {
				t.Errorf("inventory ClusterDNSIP = %v, %v; addons say %s", inv, err, got)
			}
		})
	}
}

func TestImageRefs(t *testing.T) {
	tests := []struct{ ref, registry, want string }{
		{"ghcr.io/flannel-io/flannel:v0.28.9", "mirror.example:5000", "mirror.example:5000/flannel-io/flannel:v0.28.9"},
		{"quay.io/calico/node:v3.32.1", "mirror.example", "mirror.example/calico/node:v3.32.1"},
		{"registry.k8s.io/dns/k8s-dns-node-cache:1.26.4", "localhost:5000", "localhost:5000/dns/k8s-dns-node-cache:1.26.4"},
		{"docker.io/weaveworks/weave-kube:2.8.1", "mirror.example:5000", "mirror.example:5000/weaveworks/weave-kube:2.8.1"},
		{"coredns/coredns:1.9.4", "mirror.example:5000", "mirror.example:5000/coredns/coredns:1.9.4"},
		{"busybox", "mirror.example:5000", "mirror.example:5000/library/busybox"},
		{"localhost/img:1", "harbor.example/proxy", "harbor.example/proxy/img:1"},
		{"ghcr.io/a/b@sha256:0123", "m.example/", "m.example/a/b@sha256:0123"},
		{"ghcr.io/flannel-io/flannel:v0.28.9", "", "ghcr.io/flannel-io/flannel:v0.28.9"},
	}
	for _, tc := range tests {
		got, err := withRegistry(tc.ref, tc.registry)
		if err != nil || got != tc.want {
			t.Errorf("withRegistry(%q, %q) = %q, %v; want %q", tc.ref, tc.registry, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "a b", "https://ghcr.io/x", "ghcr.io/"} {
		if _, _, err := splitRef(bad); err == nil {
			t.Errorf("splitRef(%q) accepted", bad)
		}
	}
}

func TestImages(t *testing.T) {
	got, err := Images(with(base(), func(p *Params) { p.NodeLocalDNS = true }))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"docker.io/coredns/coredns:1.9.4",
		"ghcr.io/flannel-io/flannel-cni-plugin:v1.9.1-flannel3",
		"ghcr.io/flannel-io/flannel:v0.28.9",
		"registry.k8s.io/dns/k8s-dns-node-cache:1.26.4",
	}
	if !slices.Equal(got, want) {
		t.Errorf("Images = %q\nwant     %q", got, want)
	}

	p := with(base(), func(p *Params) {
		p.Plugin, p.DNSProvider, p.Registry = Calico, KubeDNS, "mirror.example:5000"
		p.Images = map[string]string{"calico-node": "kubewright.io/calico-node:v3.32.1", "unrelated": "kubewright.io/pause:3.10"}
	})
	got, err = Images(p)
	if err != nil {
		t.Fatal(err)
	}
	want = []string{
		"kubewright.io/calico-node:v3.32.1",
		"mirror.example:5000/calico/cni:v3.32.1",
		"mirror.example:5000/calico/kube-controllers:v3.32.1",
		"mirror.example:5000/dns/k8s-dns-dnsmasq-nanny:1.23.1",
		"mirror.example:5000/dns/k8s-dns-kube-dns:1.23.1",
		"mirror.example:5000/dns/k8s-dns-sidecar:1.23.1",
	}
	if !slices.Equal(got, want) {
		t.Errorf("Images = %q\nwant     %q", got, want)
	}

	// Every image of every case is listed, and nothing else.
	for _, tc := range goldenCases {
		list, err := Images(tc.p)
		if err != nil {
			t.Fatal(err)
		}
		var seen []string
		rendered := mustRender(t, tc.p)
		for _, o := range allObjects(rendered) {
			walkImages(o.Object, func(img string) { seen = append(seen, img) })
		}
		// Images an operator starts are listed too, and each is really
		// referenced (a flag, an env value, a custom resource field).
		for _, a := range rendered {
			for _, img := range a.ExtraImages {
				found := false
				for _, o := range a.Objects {
					walkStrings(o.Object, func(s string) { found = found || s == img || s == `"`+img+`"` })
				}
				if !found {
					t.Errorf("%s: %s lists image %s, which none of its objects references", tc.name, a.Name, img)
				}
				seen = append(seen, img)
			}
		}
		slices.Sort(seen)
		if seen = slices.Compact(seen); !slices.Equal(seen, list) {
			t.Errorf("%s: Images = %q, objects use %q", tc.name, list, seen)
		}
	}
}

// walkImages finds every "image" field anywhere in an object, independently
// of the renderer's own notion of where containers are.
func walkImages(v any, f func(string)) {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			if s, ok := x.(string); ok && k == "image" {
				f(s)
			}
			walkImages(x, f)
		}
	case []any:
		for _, x := range t {
			walkImages(x, f)
		}
	}
}

func TestRegistryAndArtifactImages(t *testing.T) {
	comps := map[string]string{
		"flannel": "kubewright.io/flannel:v0.28.10", "flannel-cni-plugin": "kubewright.io/flannel-cni-plugin:v1.9.1",
		"coredns": "kubewright.io/coredns:v1.15.0",
	}
	addons := mustRender(t, with(base(), func(p *Params) { p.Registry, p.NodeLocalDNS, p.Images = "mirror.example:5000", true, comps }))
	var imgs []string
	for _, o := range allObjects(addons) {
		walkImages(o.Object, func(s string) { imgs = append(imgs, s) })
	}
	for _, img := range imgs {
		if !strings.HasPrefix(img, "mirror.example:5000/") && !slices.Contains(slices.Collect(maps.Values(comps)), img) {
			t.Errorf("image %s is neither from the artifacts nor on the mirror", img)
		}
	}
	for _, c := range []string{"flannel", "flannel-cni-plugin", "coredns"} {
		if !slices.Contains(imgs, comps[c]) {
			t.Errorf("artifact image %s for %s not used", comps[c], c)
		}
	}
	if !slices.Contains(imgs, "mirror.example:5000/dns/k8s-dns-node-cache:1.26.4") {
		t.Errorf("node-cache not on the mirror: %v", imgs)
	}
}

// Every component name the docs promise exists in the image tables, so an
// artifacts image keyed by it is used.
func TestComponents(t *testing.T) {
	var got []string
	for _, table := range [][]imageSpec{flannelImages, calicoImages, weaveImages, corednsImages, kubeDNSImages, nodeLocalDNSImages} {
		for _, s := range table {
			got = append(got, s.Component)
		}
	}
	want := []string{"flannel", "flannel-cni-plugin", "calico-cni", "calico-node", "calico-kube-controllers", "weave-kube", "weave-npc",
		"coredns", "k8s-dns-kube-dns", "k8s-dns-dnsmasq-nanny", "k8s-dns-sidecar", "k8s-dns-node-cache"}
	if !slices.Equal(got, want) {
		t.Errorf("components = %q, want %q", got, want)
	}
	doc, err := os.ReadFile("../docs/addons.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range want {
		if !strings.Contains(string(doc), "`"+c+"`") {
			t.Errorf("docs/addons.md does not document component %s", c)
		}
	}
}

func TestParamsFromInventory(t *testing.T) {
	src := `apiVersion: kubewright.io/v1alpha1
kind: Cluster
metadata:
  name: demo
spec:
  hosts:
    - name: master1
      address: 10.0.0.11
  groups:
    masters: [master1]
  controlPlaneEndpoint:
    vip: 10.0.0.10
  kubernetes:
    proxyMode: ipvs
  network:
    plugin: weave
    podCIDR: 10.32.0.0/16
    serviceCIDR: 10.100.0.0/16
    weavePasswordEnv: WEAVE_PW
  dns:
    provider: kube-dns
    clusterDomain: corp.example
    nodeLocalDNS: true
    upstreams: [1.1.1.1, "10.0.0.2:53"]
  registryMirror: https://mirror.example:5000/
  monitoring:
    enabled: false
`
	c, _, err := inventory.Parse("inv.yaml", []byte(src), inventory.WithLookupEnv(func(string) (string, bool) { return "x", true }))
	if err != nil {
		t.Fatal(err)
	}
	got := ParamsFromInventory(c)
	want := Params{
		Plugin: Weave, PodCIDR: "10.32.0.0/16", ServiceCIDR: "10.100.0.0/16", MTU: inventory.DefaultWeaveMTU,
		DNSProvider: KubeDNS, ClusterDomain: "corp.example", Upstreams: []string{"1.1.1.1", "10.0.0.2:53"}, NodeLocalDNS: true,
		DNSReplicas: DefaultDNSReplicas, ProxyMode: "ipvs", Registry: "mirror.example:5000",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ParamsFromInventory =\n%+v\nwant\n%+v", got, want)
	}
	got.WeavePassword = "pw"
	if _, err := Render(got); err != nil {
		t.Fatalf("a valid inventory does not render: %v", err)
	}

	// The defaults alone (calico, vxlan, coredns) render too.
	src = strings.Replace(src, "    plugin: weave\n", "", 1)
	src = strings.Replace(src, "    provider: kube-dns\n", "", 1)
	c, _, err = inventory.Parse("inv.yaml", []byte(src), inventory.WithLookupEnv(func(string) (string, bool) { return "x", true }))
	if err != nil {
		t.Fatal(err)
	}
	p := ParamsFromInventory(c)
	if p.Plugin != Calico || p.Encapsulation != "vxlan" || p.MTU != inventory.DefaultMTU || p.DNSProvider != CoreDNS {
		t.Errorf("defaults: %+v", p)
	}
	if _, err := Render(p); err != nil {
		t.Errorf("defaults do not render: %v", err)
	}
}

// TestVendoredManifests: each add-on folder has its SOURCE, and the embedded
// manifest is the byte-exact file SOURCE describes (same sha256).
func TestVendoredManifests(t *testing.T) {
	embedded := map[string][]byte{
		Flannel: flannelManifest, Calico: calicoManifest, Weave: weaveManifest,
		CoreDNS: corednsManifest, KubeDNS: kubeDNSManifest, NodeLocalDNS: nodeLocalDNSManifest,
		Longhorn: longhornManifest, IngressNginx: ingressNginxManifest,
	}
	for dir, data := range embedded {
		t.Run(dir, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(dir, "SOURCE"))
			if err != nil {
				t.Fatal(err)
			}
			fields := map[string]string{}
			for _, line := range strings.Split(string(raw), "\n") {
				if k, v, ok := strings.Cut(line, ": "); ok && !strings.HasPrefix(line, "#") {
					fields[k] = v
				}
			}
			for _, k := range []string{"file", "repository", "path", "version", "commit", "license", "sha256"} {
				if fields[k] == "" {
					t.Errorf("SOURCE has no %s", k)
				}
			}
			if len(fields["commit"]) != 40 {
				t.Errorf("commit %q is not a full hash", fields["commit"])
			}
			sum := sha256.Sum256(data)
			if got := hex.EncodeToString(sum[:]); got != fields["sha256"] {
				t.Errorf("embedded manifest sha256 %s, SOURCE says %s", got, fields["sha256"])
			}
			onDisk, err := os.ReadFile(filepath.Join(dir, fields["file"]))
			if err != nil || string(onDisk) != string(data) {
				t.Errorf("%s/%s is not the embedded file (%v)", dir, fields["file"], err)
			}
		})
	}
}
