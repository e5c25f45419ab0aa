package addons

import (
	_ "embed"
	"encoding/base64"
	"slices"
	"strconv"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

//go:embed weave/weave-daemonset-k8s-1.11.yaml
var weaveManifest []byte

// weaveImages: the vendored file is weave's release template, which says
// :latest (the release process substituted the version). kubewright pins the
// release the template comes from, v2.8.1, whose images are tagged 2.8.1.
var weaveImages = []imageSpec{
	{"weave-kube", "weaveworks/weave-kube:latest", "docker.io/weaveworks/weave-kube:2.8.1"},
	{"weave-npc", "weaveworks/weave-npc:latest", "docker.io/weaveworks/weave-npc:2.8.1"},
}

// Weave's encryption password lives in this Secret (name and key as in
// Weave's own documentation), referenced from the weave container's env.
const (
	WeavePasswordSecret = "weave-passwd"
	WeavePasswordKey    = "weave-passwd"
)

// weaveHostCNIBin is where weave's init.sh installs its CNI plugin inside
// the container ($HOST_ROOT/opt/cni/bin with HOST_ROOT=/host).
const weaveHostCNIBin = "/host/opt/cni/bin"

func renderWeave(p Params) ([]*unstructured.Unstructured, error) {
	objs, err := decodeManifest("weave/weave-daemonset-k8s-1.11.yaml", weaveManifest)
	if err != nil {
		return nil, err
	}
	ds, err := find(Weave, objs, "DaemonSet", "weave-net")
	if err != nil {
		return nil, err
	}
	c, err := container(Weave, ds, "weave")
	if err != nil {
		return nil, err
	}
	insertEnvAfter(c, "HOSTNAME", map[string]any{"name": "IPALLOC_RANGE", "value": p.PodCIDR})
	if p.MTU > 0 {
		insertEnvAfter(c, "IPALLOC_RANGE", map[string]any{"name": "WEAVE_MTU", "value": strconv.Itoa(p.MTU)})
	}
	if p.WeavePassword != "" {
		setEnvVar(c, map[string]any{
			"name": "WEAVE_PASSWORD",
			"valueFrom": map[string]any{"secretKeyRef": map[string]any{
				"name": WeavePasswordSecret, "key": WeavePasswordKey,
			}},
		})
		secret := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "v1",
			"kind":       "Secret",
			"metadata":   map[string]any{"name": WeavePasswordSecret, "namespace": ds.GetNamespace()},
			"type":       "Opaque",
			"data":       map[string]any{WeavePasswordKey: base64.StdEncoding.EncodeToString([]byte(p.WeavePassword))},
		}}
		i := slices.Index(objs, ds)
		objs = slices.Insert(objs, i, secret)
	}

	// Upstream mounts the host's /opt at /host/opt and installs into
	// opt/cni/bin below it. Mounting the runtime's CNI bin dir exactly
	// there puts the plugin where containerd looks, whatever the dir is.
	if err := setHostPath(Weave, ds, "cni-bin", p.CNIBinDir); err != nil {
		return nil, err
	}
	initC, err := container(Weave, ds, "weave-init")
	if err != nil {
		return nil, err
	}
	found := false
	mounts, _ := initC["volumeMounts"].([]any)
	for _, m := range mounts {
		if mm, ok := m.(map[string]any); ok && mm["name"] == "cni-bin" {
			mm["mountPath"] = weaveHostCNIBin
			found = true
		}
	}
	if !found {
		return nil, manifestError(Weave, "weave-init does not mount cni-bin")
	}

	if err := setImages(Weave, objs, weaveImages, p); err != nil {
		return nil, err
	}
	// Always would make every pod start depend on reaching Docker Hub, which
	// an offline install cannot, and the tags above are fixed releases.
	ps, err := podSpec(Weave, ds)
	if err != nil {
		return nil, err
	}
	for _, c := range containers(ps) {
		c["imagePullPolicy"] = "IfNotPresent"
	}
	return objs, nil
}
