package addons

import (
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Test values for the optional add-ons. The secrets are fake and appear in
// golden files only base64-encoded, inside Secrets.
const (
	testSMTPPassword    = "smtp-Secret-pw-42"
	testGrafanaPassword = "grafana-Secret-pw-43"
	testEtcdKey         = "-----BEGIN EC PRIVATE KEY-----\nZXRjZC1jbGllbnQta2V5LWZvci10ZXN0cw==\n-----END EC PRIVATE KEY-----\n"
)

func testEtcdClient() *TLSClient {
	return &TLSClient{
		CA:   "-----BEGIN CERTIFICATE-----\nZXRjZC1jYQ==\n-----END CERTIFICATE-----\n",
		Cert: "-----BEGIN CERTIFICATE-----\nZXRjZC1jbGllbnQ=\n-----END CERTIFICATE-----\n",
		Key:  testEtcdKey,
	}
}

// monitoringOn is monitoring with everything the inventory can say, on
// longhorn storage.
func monitoringOn(p Params) Params {
	p.Storage = StorageParams{Provider: Longhorn, Nodes: []StorageNode{{Name: "w1"}, {Name: "w2"}, {Name: "w3"}}}
	p.Monitoring = MonitoringParams{
		Enabled:       true,
		CPUPercent:    80,
		CPUForMinutes: 5,
		WebhookURL:    "https://sms.example.com/send?token=abc",
		SMTP: &SMTPParams{
			Smarthost: "smtp.example.com:587", From: "alertmanager@example.com",
			To: []string{"oncall@example.com", "ops@example.com"}, Username: "alerts", Password: testSMTPPassword, RequireTLS: true,
		},
		GrafanaAdminPassword: testGrafanaPassword,
		EtcdEndpoints:        []string{"10.0.0.11:2379", "10.0.0.12:2379", "10.0.0.13:2379"},
		EtcdClient:           testEtcdClient(),
		ControlPlaneEndpoint: "10.0.0.10:8443",
		ClusterName:          "prod",
		AgentMetrics:         true,
	}
	return p
}

// outsideScheme: kinds client-go's scheme does not know that an add-on may
// still render: CRDs, the aggregation layer's APIService, and custom
// resources of a CRD the same add-on renders (with a version it serves).
func outsideScheme(a Addon, o *unstructured.Unstructured) bool {
	gvk := o.GroupVersionKind()
	switch {
	case gvk.Kind == "CustomResourceDefinition":
		return true
	case gvk.Group == "apiregistration.k8s.io" && gvk.Kind == "APIService":
		return true
	}
	for _, c := range a.Objects {
		if c.GetKind() != "CustomResourceDefinition" {
			continue
		}
		group, _, _ := unstructured.NestedString(c.Object, "spec", "group")
		kind, _, _ := unstructured.NestedString(c.Object, "spec", "names", "kind")
		versions, _, _ := unstructured.NestedSlice(c.Object, "spec", "versions")
		for _, v := range versions {
			if m, ok := v.(map[string]any); ok && group == gvk.Group && kind == gvk.Kind && m["name"] == gvk.Version && m["served"] == true {
				return true
			}
		}
	}
	return false
}

// allOptional switches every optional add-on on.
func allOptional(p Params) Params {
	p = monitoringOn(p)
	p.MetricsServer = true
	p.Logging = LoggingParams{Enabled: true, HostLogDirs: []string{"/opt/app/logs"}}
	p.Ingress = IngressParams{Enabled: true, Nodes: []string{"w1"}}
	return p
}

func optionalImageTables() [][]imageSpec {
	return [][]imageSpec{metricsServerImages, monitoringImages, loggingImages, longhornImages, longhornOperatorImages, ingressNginxImages}
}

// vendoredSets are the folders vendored as several upstream files.
func vendoredSets() []string {
	return []string{"metrics-server", "kube-prometheus", "prometheus", "efk", "fluent-bit", "rook-ceph"}
}

func embeddedFile(dir, name string) ([]byte, error) {
	switch dir {
	case "metrics-server":
		return metricsServerFS.ReadFile(dir + "/" + name)
	case "kube-prometheus":
		return kubePrometheusFS.ReadFile(dir + "/" + name)
	case "efk":
		return efkFS.ReadFile(dir + "/" + name)
	case "fluent-bit":
		return fluentBitFS.ReadFile(dir + "/" + name)
	case "rook-ceph":
		return rookCephFS.ReadFile(dir + "/" + name)
	case "prometheus":
		if name == "prometheus-kubernetes.yml" {
			return prometheusExample, nil
		}
	}
	return nil, os.ErrNotExist
}
