package addons

import (
	_ "embed"
	"slices"
	"strconv"

	"gopkg.in/yaml.v3"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubewright/kubewright/installer/inventory"
)

//go:embed longhorn/longhorn.yaml
var longhornManifest []byte

// longhornImages are the containers of the manifest's workloads.
var longhornImages = []imageSpec{
	{"longhorn-manager", "docker.io/longhornio/longhorn-manager:v1.12.1", "docker.io/longhornio/longhorn-manager:v1.12.1"},
	{"longhorn-share-manager", "docker.io/longhornio/longhorn-share-manager:v1.12.1", "docker.io/longhornio/longhorn-share-manager:v1.12.1"},
	{"longhorn-ui", "docker.io/longhornio/longhorn-ui:v1.12.1", "docker.io/longhornio/longhorn-ui:v1.12.1"},
}

// longhornOperatorImages are the images longhorn-manager and its driver
// deployer start themselves, passed to them as flags and environment.
var longhornOperatorImages = []imageSpec{
	{"longhorn-manager", "docker.io/longhornio/longhorn-manager:v1.12.1", "docker.io/longhornio/longhorn-manager:v1.12.1"},
	{"longhorn-share-manager", "docker.io/longhornio/longhorn-share-manager:v1.12.1", "docker.io/longhornio/longhorn-share-manager:v1.12.1"},
	{"longhorn-engine", "docker.io/longhornio/longhorn-engine:v1.12.1", "docker.io/longhornio/longhorn-engine:v1.12.1"},
	{"longhorn-instance-manager", "docker.io/longhornio/longhorn-instance-manager:v1.12.1", "docker.io/longhornio/longhorn-instance-manager:v1.12.1"},
	{"backing-image-manager", "docker.io/longhornio/backing-image-manager:v1.12.1", "docker.io/longhornio/backing-image-manager:v1.12.1"},
	{"support-bundle-kit", "docker.io/longhornio/support-bundle-kit:v0.0.92", "docker.io/longhornio/support-bundle-kit:v0.0.92"},
	{"csi-attacher", "docker.io/longhornio/csi-attacher:v4.12.0", "docker.io/longhornio/csi-attacher:v4.12.0"},
	{"csi-provisioner", "docker.io/longhornio/csi-provisioner:v5.3.0", "docker.io/longhornio/csi-provisioner:v5.3.0"},
	{"csi-node-driver-registrar", "docker.io/longhornio/csi-node-driver-registrar:v2.17.0", "docker.io/longhornio/csi-node-driver-registrar:v2.17.0"},
	{"csi-resizer", "docker.io/longhornio/csi-resizer:v2.2.1", "docker.io/longhornio/csi-resizer:v2.2.1"},
	{"csi-snapshotter", "docker.io/longhornio/csi-snapshotter:v8.6.0", "docker.io/longhornio/csi-snapshotter:v8.6.0"},
	{"livenessprobe", "docker.io/longhornio/livenessprobe:v2.19.0", "docker.io/longhornio/livenessprobe:v2.19.0"},
}

// renderLonghorn: upstream's manifest with the replica count in its
// StorageClass (the cluster's default), disks only on the storage nodes
// (the inventory labels them node.longhorn.io/create-default-disk=true),
// no upgrade checks (kubewright decides versions, and nodes may be
// offline), and the control-plane taint tolerated when a storage node is a
// master.
func renderLonghorn(p Params) ([]*unstructured.Unstructured, []string, error) {
	st := p.Storage
	objs, err := decodeManifest("longhorn/longhorn.yaml", longhornManifest)
	if err != nil {
		return nil, nil, err
	}
	masters := slices.ContainsFunc(st.Nodes, func(n StorageNode) bool { return n.Master })

	settings := map[string]string{
		"create-default-disk-labeled-nodes": "true",
		"upgrade-checker":                   "false",
	}
	if masters {
		settings["taint-toleration"] = controlPlaneTaint["key"].(string) + ":" + controlPlaneTaint["effect"].(string)
	}
	if err := editYAMLBlob(Longhorn, objs, "longhorn-default-setting", "default-setting.yaml", func(m map[string]any) error {
		for k, v := range settings {
			m[k] = v
		}
		return nil
	}); err != nil {
		return nil, nil, err
	}
	if err := editYAMLBlob(Longhorn, objs, "longhorn-storageclass", "storageclass.yaml", func(m map[string]any) error {
		params, ok := m["parameters"].(map[string]any)
		if !ok || m["metadata"].(map[string]any)["name"] != inventory.StorageClassLonghorn {
			return manifestError(Longhorn, "storageclass.yaml is not StorageClass %s with parameters", inventory.StorageClassLonghorn)
		}
		params["numberOfReplicas"] = strconv.Itoa(st.Replicas)
		return nil
	}); err != nil {
		return nil, nil, err
	}

	mgr, err := find(Longhorn, objs, "DaemonSet", "longhorn-manager")
	if err != nil {
		return nil, nil, err
	}
	c, err := container(Longhorn, mgr, "longhorn-manager")
	if err != nil {
		return nil, nil, err
	}
	cmd := stringSlice(c, "command")
	if !slices.Contains(cmd, "--upgrade-version-check") {
		return nil, nil, manifestError(Longhorn, "longhorn-manager has no --upgrade-version-check")
	}
	setStringSlice(c, "command", slices.DeleteFunc(cmd, func(s string) bool { return s == "--upgrade-version-check" }))

	if masters {
		for _, ref := range [][2]string{{"DaemonSet", "longhorn-manager"}, {"Deployment", "longhorn-driver-deployer"}, {"Deployment", "longhorn-ui"}} {
			o, err := find(Longhorn, objs, ref[0], ref[1])
			if err != nil {
				return nil, nil, err
			}
			if err := addToleration(Longhorn, o, controlPlaneTaint); err != nil {
				return nil, nil, err
			}
		}
	}
	if err := setImages(Longhorn, objs, longhornImages, p); err != nil {
		return nil, nil, err
	}
	extra, err := setImageStrings(Longhorn, objs, longhornOperatorImages, p)
	if err != nil {
		return nil, nil, err
	}
	return objs, extra, nil
}

// editYAMLBlob edits a YAML document kept in a ConfigMap key (Longhorn's
// settings and StorageClass) as data, and writes it back in a stable form.
func editYAMLBlob(addon string, objs []*unstructured.Unstructured, cmName, key string, edit func(map[string]any) error) error {
	cm, err := find(addon, objs, "ConfigMap", cmName)
	if err != nil {
		return err
	}
	data, err := configMapData(addon, cm)
	if err != nil {
		return err
	}
	raw, ok := data[key].(string)
	if !ok {
		return manifestError(addon, "ConfigMap %s has no %s", cmName, key)
	}
	m := map[string]any{}
	if err := yaml.Unmarshal([]byte(raw), &m); err != nil {
		return manifestError(addon, "ConfigMap %s %s: %v", cmName, key, err)
	}
	if err := edit(m); err != nil {
		return err
	}
	out, err := yamlText(m)
	if err != nil {
		return err
	}
	data[key] = out
	return nil
}
