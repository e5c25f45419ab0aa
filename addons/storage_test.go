package addons

import (
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func blob(t *testing.T, a Addon, cm, key string) map[string]any {
	t.Helper()
	m := map[string]any{}
	if err := yaml.Unmarshal([]byte(str(t, object(t, a, "ConfigMap", cm), "data", key)), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func tolerates(t *testing.T, o *unstructured.Unstructured, key string) bool {
	t.Helper()
	ps, err := podSpec("t", o)
	if err != nil {
		t.Fatal(err)
	}
	list, _ := ps["tolerations"].([]any)
	return slices.ContainsFunc(list, func(x any) bool { m, _ := x.(map[string]any); return m["key"] == key })
}

func TestLonghorn(t *testing.T) {
	workers := StorageParams{Provider: Longhorn, Replicas: 2, Nodes: []StorageNode{{Name: "w1"}, {Name: "w2"}, {Name: "w3"}}}
	rendered := mustRender(t, with(base(), func(p *Params) { p.Storage = workers }))
	a := addon(t, rendered, Longhorn)
	sc := blob(t, a, "longhorn-storageclass", "storageclass.yaml")
	if sc["parameters"].(map[string]any)["numberOfReplicas"] != "2" {
		t.Errorf("StorageClass parameters %v", sc["parameters"])
	}
	if sc["metadata"].(map[string]any)["annotations"].(map[string]any)["storageclass.kubernetes.io/is-default-class"] != "true" {
		t.Error("longhorn's StorageClass is not the default")
	}
	set := blob(t, a, "longhorn-default-setting", "default-setting.yaml")
	if set["create-default-disk-labeled-nodes"] != "true" || set["upgrade-checker"] != "false" || set["priority-class"] != "longhorn-critical" {
		t.Errorf("settings %v", set)
	}
	if _, ok := set["taint-toleration"]; ok {
		t.Error("control-plane taint tolerated without a master storage node")
	}
	mgr := object(t, a, "DaemonSet", "longhorn-manager")
	if cmd := stringSlice(ctr(t, mgr, "longhorn-manager"), "command"); slices.Contains(cmd, "--upgrade-version-check") {
		t.Errorf("command %v still checks for upgrades", cmd)
	}
	if tolerates(t, mgr, "node-role.kubernetes.io/control-plane") {
		t.Error("manager tolerates the control-plane taint on worker-only storage")
	}
	// Every image longhorn-manager starts is in the offline list.
	for _, want := range []string{"docker.io/longhornio/longhorn-engine:v1.12.1", "docker.io/longhornio/longhorn-instance-manager:v1.12.1", "docker.io/longhornio/csi-provisioner:v5.3.0"} {
		if !slices.Contains(a.ExtraImages, want) {
			t.Errorf("ExtraImages lacks %s: %v", want, a.ExtraImages)
		}
	}

	a = addon(t, mustRender(t, with(base(), func(p *Params) {
		p.Registry = "mirror.example:5000"
		p.Storage = StorageParams{Provider: Longhorn, Nodes: []StorageNode{{Name: "m1", Master: true}}}
	})), Longhorn)
	if r := blob(t, a, "longhorn-storageclass", "storageclass.yaml")["parameters"].(map[string]any)["numberOfReplicas"]; r != "1" {
		t.Errorf("one storage node: replicas %v", r)
	}
	if blob(t, a, "longhorn-default-setting", "default-setting.yaml")["taint-toleration"] != "node-role.kubernetes.io/control-plane:NoSchedule" {
		t.Error("system components do not tolerate the masters' taint")
	}
	for _, ref := range [][2]string{{"DaemonSet", "longhorn-manager"}, {"Deployment", "longhorn-driver-deployer"}, {"Deployment", "longhorn-ui"}} {
		if !tolerates(t, object(t, a, ref[0], ref[1]), "node-role.kubernetes.io/control-plane") {
			t.Errorf("%s %s does not tolerate the masters' taint", ref[0], ref[1])
		}
	}
	cmd := strings.Join(stringSlice(ctr(t, object(t, a, "DaemonSet", "longhorn-manager"), "longhorn-manager"), "command"), " ")
	if !strings.Contains(cmd, "--engine-image mirror.example:5000/longhornio/longhorn-engine:v1.12.1") || strings.Contains(cmd, "docker.io/") {
		t.Errorf("manager flags not on the mirror: %s", cmd)
	}
	deployer := ctr(t, object(t, a, "Deployment", "longhorn-driver-deployer"), "longhorn-driver-deployer")
	if v, _ := envValue(deployer, "CSI_ATTACHER_IMAGE"); v != "mirror.example:5000/longhornio/csi-attacher:v4.12.0" {
		t.Errorf("CSI_ATTACHER_IMAGE %q", v)
	}
}
