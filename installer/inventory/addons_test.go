package inventory

import (
	"slices"
	"strings"
	"testing"
)

const addonsBase = `
apiVersion: kubewright.io/v1alpha1
kind: Cluster
metadata: {name: a}
spec:
  hosts:
    - {name: m1, address: 10.0.0.11}
    - {name: w1, address: 10.0.0.21}
    - {name: w2, address: 10.0.0.22, labels: {edge: "yes"}}
    - {name: w3, address: 10.0.0.23}
  groups:
    masters: [m1]
    workers: [w1, w2, w3]
  controlPlaneEndpoint: {vip: 10.0.0.10}
`

func TestAddonsOffByDefault(t *testing.T) {
	c := mustParse(t, addonsBase)
	a := c.Spec.Addons
	if a.MetricsServer.Enabled || a.Monitoring.Enabled || a.Logging.Enabled || a.Ingress.Enabled || a.Storage.Provider != StorageNone {
		t.Errorf("add-ons on by default: %+v", a)
	}
	if len(c.StorageNodes()) != 0 || len(c.IngressNodes()) != 0 {
		t.Errorf("storage nodes %v, ingress nodes %v without the add-ons", names(c.StorageNodes()), names(c.IngressNodes()))
	}
	for _, h := range c.Spec.Hosts {
		if _, ok := h.Labels[LonghornDiskLabel]; ok {
			t.Errorf("host %s got longhorn's disk label without longhorn", h.Name)
		}
	}
}

func TestStorageAndIngressNodes(t *testing.T) {
	c := mustParse(t, addonsBase+`  addons:
    storage: {provider: longhorn, nodes: "workers,!w3"}
    ingress: {enabled: true, nodes: "edge=yes"}
`)
	if got := names(c.StorageNodes()); !slices.Equal(got, []string{"w1", "w2"}) {
		t.Errorf("storage nodes %v", got)
	}
	if c.Spec.Addons.Storage.Replicas != 2 {
		t.Errorf("replicas default %d, want 2 (fewer storage nodes than 3)", c.Spec.Addons.Storage.Replicas)
	}
	for _, h := range c.Spec.Hosts {
		_, labelled := h.Labels[LonghornDiskLabel]
		if want := h.Name == "w1" || h.Name == "w2"; labelled != want {
			t.Errorf("host %s disk label = %v, want %v", h.Name, labelled, want)
		}
	}
	if got := names(c.IngressNodes()); !slices.Equal(got, []string{"w2"}) || c.Spec.Addons.Ingress.Mode != "hostNetwork" || c.Spec.Addons.Ingress.HTTPNodePort != 0 {
		t.Errorf("ingress %v %+v", got, c.Spec.Addons.Ingress)
	}

	c = mustParse(t, addonsBase+`  addons:
    storage: {provider: rook-ceph, osdDisks: {w3: [sdb], w1: [sdb, sdc]}}
`)
	if got := names(c.StorageNodes()); !slices.Equal(got, []string{"w1", "w3"}) || c.Spec.Addons.Storage.Replicas != 2 {
		t.Errorf("rook-ceph storage nodes %v replicas %d", got, c.Spec.Addons.Storage.Replicas)
	}
	if c.Spec.Addons.Storage.Nodes != "" {
		t.Errorf("rook-ceph got a nodes selector %q", c.Spec.Addons.Storage.Nodes)
	}
}

// TestStorageReplicasRefused is the case: 3 replicas, 2 storage nodes.
func TestStorageReplicasRefused(t *testing.T) {
	_, _, err := Parse("r.yaml", []byte(addonsBase+`  addons:
    storage: {provider: longhorn, nodes: "w1,w2", replicas: 3}
`), WithLookupEnv(fakeEnv))
	if err == nil || !strings.Contains(err.Error(), "r.yaml:16:") ||
		!strings.Contains(err.Error(), "3 storage replicas need 3 storage nodes, each holding one copy, but there are 2 (w1, w2)") ||
		!strings.Contains(err.Error(), "fix: set replicas: 2") {
		t.Fatalf("err = %v", err)
	}
}

func TestLegacyAddonSections(t *testing.T) {
	c := mustParse(t, addonsBase+`  storage: {enabled: true, provider: longhorn, replicas: 1}
  logging: {enabled: false, hostLogPaths: [/var/log/app]}
  monitoring: {enabled: false, alertWebhookURL: "https://hook.example.com/"}
`)
	s := c.Spec
	if s.LegacyStorage != nil || s.LegacyLogging != nil || s.LegacyMonitoring != nil {
		t.Error("legacy sections kept after Load; show would print them twice")
	}
	a := s.Addons
	if a.Storage.Provider != "longhorn" || a.Storage.Nodes != "workers" || a.Storage.Replicas != 1 || !slices.Equal(a.Logging.HostLogDirs, []string{"/var/log/app"}) || a.Monitoring.Receivers.WebhookURL != "https://hook.example.com/" {
		t.Errorf("migrated %+v", a)
	}
	// A legacy section that is off becomes provider none.
	c = mustParse(t, addonsBase+"  storage: {enabled: false, provider: longhorn}\n")
	if c.Spec.Addons.Storage.Provider != StorageNone {
		t.Errorf("disabled legacy storage: provider %q", c.Spec.Addons.Storage.Provider)
	}
}
