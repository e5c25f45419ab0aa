package addons

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/kubewright/kubewright/internal/golden"
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

func rookParams(p Params) Params {
	p.Storage = StorageParams{Provider: RookCeph, Replicas: 3, Nodes: []StorageNode{
		{Name: "m1", Master: true, Disks: []string{"sdb"}},
		{Name: "w1", Disks: []string{"sdb", "sdc"}},
		{Name: "w2", Disks: []string{"/dev/disk/by-id/wwn-0x5000c500a1b2c3d4"}},
	}}
	return p
}

// renderRook renders rook-ceph as Render would, past the refusal: the
// renderer is complete but for the ceph-csi-operator manifest.
func renderRook(t *testing.T, p Params) Addon {
	t.Helper()
	p = withDefaults(p)
	objs, extra, err := renderRookCeph(p)
	if err != nil {
		t.Fatal(err)
	}
	labelAll(RookCeph, objs)
	return Addon{Name: RookCeph, Objects: objs, ExtraImages: extra}
}

func TestRookCephRefused(t *testing.T) {
	_, err := Render(rookParams(base()))
	if err == nil || !strings.Contains(err.Error(), "spec.addons.storage.provider: rook-ceph v1.20.6 needs the ceph-csi-operator manifest") || !strings.Contains(err.Error(), "fix: use provider: longhorn") {
		t.Fatalf("rook-ceph: %v", err)
	}
}

func TestRookCeph(t *testing.T) {
	a := renderRook(t, rookParams(base()))
	cl := object(t, a, "CephCluster", "rook-ceph")
	spec := cl.Object["spec"].(map[string]any)
	st := spec["storage"].(map[string]any)
	if st["useAllNodes"] != false || st["useAllDevices"] != false {
		t.Errorf("Ceph may take other nodes or devices: %v", st)
	}
	nodes := st["nodes"].([]any)
	if len(nodes) != 3 || nodes[1].(map[string]any)["name"] != "w1" || len(nodes[1].(map[string]any)["devices"].([]any)) != 2 {
		t.Errorf("nodes %v", nodes)
	}
	if c, _, _ := unstructured.NestedInt64(spec, "mon", "count"); c != 3 {
		t.Errorf("mons %d", c)
	}
	all := spec["placement"].(map[string]any)["all"].(map[string]any)
	if all["tolerations"] == nil {
		t.Error("a master stores data but Ceph does not tolerate its taint")
	}
	pool := object(t, a, "CephBlockPool", "replicapool")
	if s, _, _ := unstructured.NestedInt64(pool.Object, "spec", "replicated", "size"); s != 3 {
		t.Errorf("pool size %d", s)
	}
	if sc := object(t, a, "StorageClass", "rook-ceph-block"); sc.GetAnnotations()["storageclass.kubernetes.io/is-default-class"] != "true" {
		t.Error("rook-ceph-block is not the default StorageClass")
	}
	if !slices.Contains(a.ExtraImages, "quay.io/ceph/ceph:v20.2.4") || !slices.Contains(a.ExtraImages, "quay.io/cephcsi/cephcsi:v3.17.0") {
		t.Errorf("extra images %v", a.ExtraImages)
	}

	one := renderRook(t, with(base(), func(p *Params) {
		p.Registry = "mirror.example:5000"
		p.Storage = StorageParams{Provider: RookCeph, Nodes: []StorageNode{{Name: "w1", Disks: []string{"vdb"}}}}
	}))
	spec = object(t, one, "CephCluster", "rook-ceph").Object["spec"].(map[string]any)
	if c, _, _ := unstructured.NestedInt64(spec, "mon", "count"); c != 1 {
		t.Errorf("one storage node: %d mons", c)
	}
	if img, _, _ := unstructured.NestedString(spec, "cephVersion", "image"); img != "mirror.example:5000/ceph/ceph:v20.2.4" {
		t.Errorf("ceph image %s", img)
	}
	pool = object(t, one, "CephBlockPool", "replicapool")
	if safe, _, _ := unstructured.NestedBool(pool.Object, "spec", "replicated", "requireSafeReplicaSize"); safe {
		t.Error("a pool of size 1 with requireSafeReplicaSize is refused by Ceph")
	}
	if v, _, _ := unstructured.NestedString(object(t, one, "ConfigMap", "rook-csi-operator-image-set-configmap").Object, "data", "plugin"); v != "mirror.example:5000/cephcsi/cephcsi:v3.17.0" {
		t.Errorf("CSI plugin image %q", v)
	}
	if _, ok := spec["placement"].(map[string]any)["all"].(map[string]any)["tolerations"]; ok {
		t.Error("no master stores data, yet Ceph tolerates the control-plane taint")
	}
}

// TestRookCephGolden pins the rook-ceph rendering (CRD specs elided, as in
// TestGolden) and checks its objects like TestObjectsValid, naming the
// kinds whose CRDs only the missing csi-operator.yaml has.
func TestRookCephGolden(t *testing.T) {
	a := renderRook(t, rookParams(base()))
	golden.AssertString(t, filepath.Join("testdata", "rook-ceph.yaml"), "# addon: rook-ceph\n"+encode(t, goldenView(a)))
	var missing []string
	for _, o := range a.Objects {
		typed, err := scheme.Scheme.New(o.GroupVersionKind())
		if err != nil {
			if !outsideScheme(a, o) {
				missing = append(missing, o.GetKind()+" "+o.GetName())
			}
			continue
		}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(o.Object, typed, true); err != nil {
			t.Errorf("%s %s: %v", o.GetKind(), o.GetName(), err)
		}
	}
	want := []string{"OperatorConfig ceph-csi-operator-config", "Driver rook-ceph.rbd.csi.ceph.com", "Driver rook-ceph.cephfs.csi.ceph.com"}
	if !slices.Equal(missing, want) {
		t.Errorf("objects without a CRD %v, want exactly the csi.ceph.io ones %v", missing, want)
	}
}
