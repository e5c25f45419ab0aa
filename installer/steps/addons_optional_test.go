package steps

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kubewright/kubewright/addons"
	"github.com/kubewright/kubewright/installer/engine"
	"github.com/kubewright/kubewright/installer/inventory"
	"github.com/kubewright/kubewright/installer/kube"
)

// monitoringCluster is addonCluster with monitoring on (on an explicit
// StorageClass) and an SMTP login and Grafana password from the environment.
func monitoringCluster() *inventory.Cluster {
	c := addonCluster("flannel", "coredns")
	c.Spec.Addons.Monitoring = inventory.Monitoring{
		Enabled: true, StorageClass: "local-path", GrafanaAdminPasswordEnv: "KW_TEST_GRAFANA",
		Receivers: inventory.Receivers{SMTP: &inventory.SMTP{
			Smarthost: "smtp.example.com:587", From: "am@example.com", To: []string{"ops@example.com"},
			AuthUsernameEnv: "KW_TEST_SMTP_USER", AuthPasswordEnv: "KW_TEST_SMTP_PW",
		}},
	}
	return c
}

func writePKI(t *testing.T, stateDir string) {
	t.Helper()
	for rel, content := range map[string]string{
		"etcd/ca.crt":                 "-----BEGIN CERTIFICATE-----\nY2E=\n-----END CERTIFICATE-----\n",
		"etcd/healthcheck-client.crt": "-----BEGIN CERTIFICATE-----\nY3J0\n-----END CERTIFICATE-----\n",
		"etcd/healthcheck-client.key": "-----BEGIN EC PRIVATE KEY-----\na2V5\n-----END EC PRIVATE KEY-----\n",
	} {
		p := filepath.Join(PKIDir(stateDir), rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func TestAddonParamsMonitoringSecrets(t *testing.T) {
	c := monitoringCluster()
	t.Setenv("KW_TEST_GRAFANA", "g-pw")
	t.Setenv("KW_TEST_SMTP_USER", "alerts")
	t.Setenv("KW_TEST_SMTP_PW", "")
	_, err := AddonParams(c, nil)
	if err == nil || !strings.Contains(err.Error(), "inv.yaml: spec.addons.monitoring.receivers.smtp.authPasswordEnv names KW_TEST_SMTP_PW, which is empty or unset") || !strings.Contains(err.Error(), "fix: export KW_TEST_SMTP_PW") {
		t.Fatalf("empty SMTP password variable: %v", err)
	}
	t.Setenv("KW_TEST_SMTP_PW", "s-pw")
	p, err := AddonParams(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.Monitoring.GrafanaAdminPassword != "g-pw" || p.Monitoring.SMTP.Username != "alerts" || p.Monitoring.SMTP.Password != "s-pw" {
		t.Errorf("secrets %q %+v", p.Monitoring.GrafanaAdminPassword, p.Monitoring.SMTP)
	}
	// With monitoring off nothing is read, even when the variables are unset.
	c.Spec.Addons.Monitoring.Enabled = false
	t.Setenv("KW_TEST_GRAFANA", "")
	if _, err := AddonParams(c, nil); err != nil {
		t.Errorf("monitoring off: %v", err)
	}
}

// TestAddonsStepRendersEtcdClient: the step gives Prometheus the state
// directory's etcd healthcheck client certificate; without it, it fails
// rather than render monitoring that cannot scrape etcd.
func TestAddonsStepRendersEtcdClient(t *testing.T) {
	c := monitoringCluster()
	c.Spec.Addons.Monitoring.GrafanaAdminPasswordEnv = ""
	c.Spec.Addons.Monitoring.Receivers = inventory.Receivers{WebhookURL: "https://hook.example.com/"}
	tg := &engine.Target{Cluster: c, StateDir: t.TempDir(), Shared: engine.NewSharedData()}
	tg.Shared.Set(SharedArtifacts, nodeArtifacts(t))
	if _, err := renderAddons(tg); err == nil || !strings.Contains(err.Error(), "etcd/ca.crt") {
		t.Fatalf("without the etcd client certificate: %v", err)
	}
	writePKI(t, tg.StateDir)
	sets, err := renderAddons(tg)
	if err != nil {
		t.Fatal(err)
	}
	if got := addonNames(sets); !slices.Equal(got, []string{"flannel", "coredns", addons.Monitoring}) {
		t.Fatalf("sets %v", got)
	}
	var key string
	for _, o := range sets[2].Objects {
		if o.GetKind() == "Secret" && o.GetName() == "etcd-client" {
			data := o.Object["data"].(map[string]any)
			b, _ := base64.StdEncoding.DecodeString(data["client.key"].(string))
			key = string(b)
		}
	}
	if !strings.Contains(key, "a2V5") {
		t.Errorf("etcd-client Secret key %q, want the state directory's healthcheck client key", key)
	}
	// install's early check renders without the state directory.
	if _, err := RenderAddons(c, nil); err != nil {
		t.Errorf("early render: %v", err)
	}
}

func TestCheckAddonSwitchKeepsStorage(t *testing.T) {
	c := addonCluster("flannel", "coredns")
	rec := &kube.Record{Addons: map[string]kube.AddonRecord{
		"longhorn": {Objects: []kube.ObjectRef{{Version: "v1", Kind: "Namespace", Name: "longhorn-system"}}},
	}}
	err := CheckAddonSwitch(c, rec, []kube.AddonSet{{Name: "flannel"}, {Name: "coredns"}})
	if err == nil || !strings.Contains(err.Error(), "spec.addons.storage.provider is none, but this cluster runs longhorn; removing it would delete every volume it holds") ||
		!strings.Contains(err.Error(), "fix: set spec.addons.storage.provider: longhorn again") {
		t.Fatalf("storage removed: %v", err)
	}
	c.Spec.Addons.Storage.Provider = "rook-ceph"
	if err := CheckAddonSwitch(c, rec, []kube.AddonSet{{Name: "flannel"}, {Name: "coredns"}, {Name: "rook-ceph"}}); err == nil || !strings.Contains(err.Error(), "is rook-ceph, but this cluster runs longhorn") {
		t.Fatalf("storage replaced: %v", err)
	}
	if err := CheckAddonSwitch(c, rec, []kube.AddonSet{{Name: "flannel"}, {Name: "longhorn"}}); err != nil {
		t.Fatalf("same storage: %v", err)
	}
	// Other optional add-ons may be switched off: their record is pruned.
	rec.Addons["monitoring"] = kube.AddonRecord{Objects: []kube.ObjectRef{{Version: "v1", Kind: "Namespace", Name: "monitoring"}}}
	if err := CheckAddonSwitch(c, rec, []kube.AddonSet{{Name: "flannel"}, {Name: "longhorn"}}); err != nil {
		t.Fatalf("monitoring switched off: %v", err)
	}
	got := withRemovedAddons(rec, []kube.AddonSet{{Name: "flannel"}, {Name: "longhorn"}})
	if names := addonNames(got); !slices.Equal(names, []string{"flannel", "longhorn", "monitoring"}) {
		t.Errorf("sets %v: monitoring must be applied empty, so its objects are pruned", names)
	}
}
