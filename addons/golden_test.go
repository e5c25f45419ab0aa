package addons

import (
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubewright/kubewright/internal/golden"
)

// goldenCase renders p and writes the add-ons in show (all when empty) to
// testdata/NAME.yaml.
type goldenCase struct {
	name string
	p    Params
	show []string
}

// goldenCases cover every plugin, encapsulation and DNS option; the other
// tests reuse them so every case is also checked for validity.
var goldenCases = []goldenCase{
	{"flannel-vxlan", base(), []string{Flannel}},
	{"flannel-host-gw", with(base(), func(p *Params) { p.Encapsulation = "host-gw" }), []string{Flannel}},
	{"calico-ipip", with(base(), func(p *Params) { p.Plugin, p.Encapsulation = Calico, "ipip" }), []string{Calico}},
	{"calico-vxlan", with(base(), func(p *Params) { p.Plugin, p.Encapsulation = Calico, "vxlan" }), []string{Calico}},
	{"calico-none", with(base(), func(p *Params) { p.Plugin, p.Encapsulation, p.MTU = Calico, "none", 0 }), []string{Calico}},
	{"weave", with(base(), func(p *Params) { p.Plugin, p.Encapsulation, p.MTU = Weave, "", 1376 }), []string{Weave}},
	{"weave-password", with(base(), func(p *Params) {
		p.Plugin, p.Encapsulation, p.MTU, p.WeavePassword = Weave, "", 1376, weaveTestPassword
	}), []string{Weave}},
	{"coredns", base(), []string{CoreDNS}},
	{"coredns-custom", with(base(), func(p *Params) {
		p.ServiceCIDR = "172.20.0.0/16"
		p.ClusterDomain = "k8s.example.org"
		p.Upstreams = []string{"1.1.1.1", "10.0.0.2:5353", "fd00::53"}
		p.DNSReplicas = 3
	}), []string{CoreDNS}},
	{"kube-dns", with(base(), func(p *Params) { p.DNSProvider = KubeDNS }), []string{KubeDNS}},
	{"kube-dns-custom", with(base(), func(p *Params) {
		p.DNSProvider = KubeDNS
		p.ClusterDomain = "k8s.example.org"
		p.Upstreams = []string{"1.1.1.1", "10.0.0.2:5353"}
		p.DNSReplicas = 1
	}), []string{KubeDNS}},
	{"nodelocaldns", with(base(), func(p *Params) { p.NodeLocalDNS = true }), []string{NodeLocalDNS}},
	{"nodelocaldns-ipvs", with(base(), func(p *Params) {
		p.NodeLocalDNS, p.ProxyMode, p.Upstreams = true, "ipvs", []string{"9.9.9.9"}
	}), []string{NodeLocalDNS}},
	{"registry-override", with(base(), func(p *Params) {
		p.Registry = "mirror.example:5000"
		p.NodeLocalDNS = true
	}), nil},
	{"artifact-images", with(base(), func(p *Params) {
		p.Registry = "mirror.example:5000"
		p.Images = map[string]string{
			"flannel":            "kubewright.io/flannel:v0.28.10",
			"flannel-cni-plugin": "kubewright.io/flannel-cni-plugin:v1.9.1",
			"coredns":            "kubewright.io/coredns:v1.15.0",
		}
	}), nil},
	{"metrics-server", with(base(), func(p *Params) { p.MetricsServer = true }), []string{MetricsServer}},
	{"monitoring", monitoringOn(base()), []string{Monitoring}},
	// No receivers, no agent, no etcd certificate, an explicit class
	// without a storage add-on, the registry override.
	{"monitoring-minimal", with(base(), func(p *Params) {
		p.Registry = "mirror.example:5000"
		p.Monitoring = MonitoringParams{Enabled: true, StorageClass: "local-path", Retention: "30d", StorageSize: "20Gi"}
	}), []string{Monitoring}},
	{"logging", with(base(), func(p *Params) {
		p.Storage = StorageParams{Provider: Longhorn, Nodes: []StorageNode{{Name: "w1"}, {Name: "w2"}, {Name: "w3"}}}
		p.Logging = LoggingParams{Enabled: true, RetentionDays: 14, ESReplicas: 3, ESHeap: "2g", ESStorageSize: "100Gi",
			HostLogDirs: []string{"/var/log/syslog", "/opt/app/logs", "/opt/app/logs/*.txt", "/srv/data/app.log", "/applogs"}}
	}), []string{Logging}},
	{"logging-minimal", with(base(), func(p *Params) {
		p.Logging = LoggingParams{Enabled: true, StorageClass: "local-path"}
	}), []string{Logging}},
	{"longhorn", with(base(), func(p *Params) {
		p.Storage = StorageParams{Provider: Longhorn, Nodes: []StorageNode{{Name: "w1"}, {Name: "w2"}, {Name: "w3"}}}
	}), []string{Longhorn}},
	// Two storage nodes, one a master: two replicas, the control-plane
	// taint tolerated, everything from the mirror.
	{"longhorn-masters", with(base(), func(p *Params) {
		p.Registry = "mirror.example:5000"
		p.Storage = StorageParams{Provider: Longhorn, Nodes: []StorageNode{{Name: "m1", Master: true}, {Name: "w1"}}}
	}), []string{Longhorn}},
	{"ingress-hostnetwork", with(base(), func(p *Params) {
		p.Ingress = IngressParams{Enabled: true, Mode: "hostNetwork", Nodes: []string{"m1", "w1"}, Masters: true}
	}), []string{IngressNginx}},
	{"ingress-nodeport", with(base(), func(p *Params) {
		p.Registry = "mirror.example:5000"
		p.Ingress = IngressParams{Enabled: true, Mode: "nodePort", Nodes: []string{"w1", "w2"}, HTTPNodePort: 30080, HTTPSNodePort: 30443}
	}), []string{IngressNginx}},
}

func TestGolden(t *testing.T) {
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			addons := mustRender(t, tc.p)
			var b strings.Builder
			for _, a := range addons {
				if len(tc.show) > 0 && !slices.Contains(tc.show, a.Name) {
					continue
				}
				fmt.Fprintf(&b, "# addon: %s\n", a.Name)
				b.WriteString(encode(t, goldenView(a)))
			}
			if b.Len() == 0 {
				t.Fatalf("case shows %v but Render returned %v", tc.show, names(addons))
			}
			golden.AssertString(t, filepath.Join("testdata", tc.name+".yaml"), b.String())

			again := mustRender(t, tc.p)
			if !reflect.DeepEqual(addons, again) {
				t.Fatal("rendering is not deterministic")
			}
		})
	}
}

// goldenView elides the specs of calico's CustomResourceDefinitions (some
// 330 kB per case, identical in every case): TestCalicoCRDsAsVendored checks
// that they are the vendored ones, so the golden files keep only their names
// and labels and stay reviewable.
func goldenView(a Addon) []*unstructured.Unstructured {
	out := make([]*unstructured.Unstructured, 0, len(a.Objects))
	for _, o := range a.Objects {
		if o.GetKind() == "CustomResourceDefinition" {
			c := o.DeepCopy()
			c.Object["spec"] = "(elided: as vendored, see TestCalicoCRDsAsVendored)"
			o = c
		}
		out = append(out, o)
	}
	return out
}

// TestCalicoCRDsAsVendored: every CRD of the vendored manifest is rendered
// unchanged apart from kubewright's labels.
func TestCalicoCRDsAsVendored(t *testing.T) {
	vendored, err := decodeManifest("calico", calicoManifest)
	if err != nil {
		t.Fatal(err)
	}
	rendered := addon(t, mustRender(t, with(base(), func(p *Params) { p.Plugin = Calico })), Calico).Objects
	n := 0
	for _, v := range vendored {
		if v.GetKind() != "CustomResourceDefinition" {
			continue
		}
		n++
		r := object(t, Addon{Name: Calico, Objects: rendered}, v.GetKind(), v.GetName()).DeepCopy()
		l := r.GetLabels()
		if l[LabelManagedBy] != ManagedBy || l[LabelAddon] != Calico {
			t.Errorf("CRD %s labels = %v", r.GetName(), l)
		}
		delete(l, LabelManagedBy)
		delete(l, LabelAddon)
		if len(l) == 0 {
			unstructured.RemoveNestedField(r.Object, "metadata", "labels")
		} else {
			r.SetLabels(l)
		}
		if !reflect.DeepEqual(r.Object, v.Object) {
			t.Errorf("CRD %s differs from the vendored one", v.GetName())
		}
	}
	if n < 20 {
		t.Fatalf("only %d CRDs in the vendored calico manifest", n)
	}
}
