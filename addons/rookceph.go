package addons

import (
	"embed"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubewright/kubewright/installer/inventory"
)

//go:embed rook-ceph
var rookCephFS embed.FS

var rookCephImages = []imageSpec{
	{"rook-ceph", "docker.io/rook/ceph:v1.20.6", "docker.io/rook/ceph:v1.20.6"},
}

// rookCephOperatorImages are what the Rook operator and the CSI operator
// start: Ceph itself (CephCluster spec.cephVersion.image) and the CSI
// driver images (the image-set ConfigMap).
var rookCephOperatorImages = []imageSpec{
	{"ceph", "quay.io/ceph/ceph:v20.2.4", "quay.io/ceph/ceph:v20.2.4"},
	{"csi-provisioner", "registry.k8s.io/sig-storage/csi-provisioner:v6.2.0", "registry.k8s.io/sig-storage/csi-provisioner:v6.2.0"},
	{"csi-attacher", "registry.k8s.io/sig-storage/csi-attacher:v4.12.0", "registry.k8s.io/sig-storage/csi-attacher:v4.12.0"},
	{"csi-resizer", "registry.k8s.io/sig-storage/csi-resizer:v2.1.0", "registry.k8s.io/sig-storage/csi-resizer:v2.1.0"},
	{"csi-snapshotter", "registry.k8s.io/sig-storage/csi-snapshotter:v8.5.0", "registry.k8s.io/sig-storage/csi-snapshotter:v8.5.0"},
	{"csi-node-driver-registrar", "registry.k8s.io/sig-storage/csi-node-driver-registrar:v2.17.0", "registry.k8s.io/sig-storage/csi-node-driver-registrar:v2.17.0"},
	{"cephcsi", "quay.io/cephcsi/cephcsi:v3.17.0", "quay.io/cephcsi/cephcsi:v3.17.0"},
	{"csiaddons-k8s-sidecar", "quay.io/csiaddons/k8s-sidecar:v0.14.0", "quay.io/csiaddons/k8s-sidecar:v0.14.0"},
}

// rookCephMissing is why provider rook-ceph is refused: Rook v1.20's
// operator.yaml configures CSI through the ceph-csi-operator, whose CRDs
// and Deployment are in csi-operator.yaml, which is not vendored. Without
// them the OperatorConfig and Driver objects have no API and Ceph's
// StorageClass would provision nothing.
const rookCephMissing = "rook-ceph v1.20.6 needs the ceph-csi-operator manifest (rook deploy/examples/csi-operator.yaml), which is not vendored in addons/rook-ceph; without it Ceph gets no CSI driver and its StorageClass provisions nothing"

// renderRookCeph: Rook's CRDs, RBAC and operator, a CephCluster whose OSDs
// are exactly the inventory's disks per host (no other node or device is
// touched), its daemons on the storage nodes, and a replicated block pool
// (size = replicas, one copy per host) behind the default StorageClass
// rook-ceph-block.
func renderRookCeph(p Params) ([]*unstructured.Unstructured, []string, error) {
	st := p.Storage
	objs, err := decodeFiles(rookCephFS, "rook-ceph", "crds.yaml", "common.yaml", "operator.yaml", "cluster.yaml", "storageclass.yaml")
	if err != nil {
		return nil, nil, err
	}
	cluster, err := find(RookCeph, objs, "CephCluster", "rook-ceph")
	if err != nil {
		return nil, nil, err
	}
	n := len(st.Nodes)
	// Monitors need a majority and one node each; managers fail over.
	mons := 1
	if n >= 3 {
		mons = 3
	}
	spec := cluster.Object["spec"].(map[string]any)
	set := func(v any, fields ...string) error { return unstructured.SetNestedField(spec, v, fields...) }
	if err := set(int64(mons), "mon", "count"); err != nil {
		return nil, nil, err
	}
	if err := set(int64(min(2, n)), "mgr", "count"); err != nil {
		return nil, nil, err
	}
	var nodes, names []any
	masters := false
	for _, node := range st.Nodes {
		var devices []any
		for _, d := range node.Disks {
			devices = append(devices, map[string]any{"name": d})
		}
		nodes = append(nodes, map[string]any{"name": node.Name, "devices": devices})
		names = append(names, node.Name)
		masters = masters || node.Master
	}
	storage, ok := spec["storage"].(map[string]any)
	if !ok {
		return nil, nil, manifestError(RookCeph, "CephCluster has no spec.storage")
	}
	storage["useAllNodes"] = false
	storage["useAllDevices"] = false
	storage["nodes"] = nodes
	all := map[string]any{"nodeAffinity": map[string]any{
		"requiredDuringSchedulingIgnoredDuringExecution": map[string]any{"nodeSelectorTerms": []any{map[string]any{
			"matchExpressions": []any{map[string]any{"key": "kubernetes.io/hostname", "operator": "In", "values": names}},
		}}},
	}}
	if masters {
		all["tolerations"] = []any{controlPlaneTaint}
	}
	spec["placement"] = map[string]any{"all": all}

	pool, err := find(RookCeph, objs, "CephBlockPool", "replicapool")
	if err != nil {
		return nil, nil, err
	}
	if err := unstructured.SetNestedField(pool.Object, int64(st.Replicas), "spec", "replicated", "size"); err != nil {
		return nil, nil, err
	}
	// Ceph refuses a pool of size 1 unless told it is meant.
	if err := unstructured.SetNestedField(pool.Object, st.Replicas > 1, "spec", "replicated", "requireSafeReplicaSize"); err != nil {
		return nil, nil, err
	}
	sc, err := find(RookCeph, objs, "StorageClass", inventory.StorageClassRookCeph)
	if err != nil {
		return nil, nil, err
	}
	ann := sc.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	ann["storageclass.kubernetes.io/is-default-class"] = "true"
	sc.SetAnnotations(ann)

	if err := setImages(RookCeph, objs, rookCephImages, p); err != nil {
		return nil, nil, err
	}
	extra, err := setImageStrings(RookCeph, objs, rookCephOperatorImages, p)
	if err != nil {
		return nil, nil, err
	}
	return objs, extra, nil
}
