package addons

import (
	_ "embed"
	"encoding/json"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

//go:embed flannel/kube-flannel.yml
var flannelManifest []byte

var flannelImages = []imageSpec{
	{"flannel", "ghcr.io/flannel-io/flannel:v0.28.9", "ghcr.io/flannel-io/flannel:v0.28.9"},
	{"flannel-cni-plugin", "ghcr.io/flannel-io/flannel-cni-plugin:v1.9.1-flannel3", "ghcr.io/flannel-io/flannel-cni-plugin:v1.9.1-flannel3"},
}

// vxlanOverhead is what flannel subtracts from its backend MTU for the VXLAN
// header (flannel's pkg/backend/vxlan encapOverhead).
const vxlanOverhead = 50

// renderFlannel runs flannel with the kube subnet manager: nodes' pod ranges
// come from kube-controller-manager (--allocate-node-cidrs), so PodCIDR here
// must be the controller-manager's --cluster-cidr.
func renderFlannel(p Params) ([]*unstructured.Unstructured, error) {
	objs, err := decodeManifest("flannel/kube-flannel.yml", flannelManifest)
	if err != nil {
		return nil, err
	}
	cm, err := find(Flannel, objs, "ConfigMap", "kube-flannel-cfg")
	if err != nil {
		return nil, err
	}
	data, err := configMapData(Flannel, cm)
	if err != nil {
		return nil, err
	}
	raw, _ := data["net-conf.json"].(string)
	var conf map[string]any
	if err := json.Unmarshal([]byte(raw), &conf); err != nil {
		return nil, manifestError(Flannel, "net-conf.json: %v", err)
	}
	backend, ok := conf["Backend"].(map[string]any)
	if !ok {
		return nil, manifestError(Flannel, "net-conf.json has no Backend")
	}
	conf["Network"] = p.PodCIDR
	backend["Type"] = p.Encapsulation
	delete(backend, "MTU")
	// flannel's vxlan backend MTU is the size of the encapsulated packets on
	// the wire (it defaults to the external interface's MTU) and pods get
	// that minus 50; the inventory's MTU is the pods' MTU. host-gw adds no
	// header and always uses the interface's MTU: it has no MTU setting.
	if p.Encapsulation == "vxlan" && p.MTU > 0 {
		backend["MTU"] = p.MTU + vxlanOverhead
	}
	out, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("flannel: net-conf.json: %w", err)
	}
	data["net-conf.json"] = string(out) + "\n"

	ds, err := find(Flannel, objs, "DaemonSet", "kube-flannel-ds")
	if err != nil {
		return nil, err
	}
	if err := setHostPath(Flannel, ds, "cni-plugin", p.CNIBinDir); err != nil {
		return nil, err
	}
	c, err := container(Flannel, ds, "kube-flannel")
	if err != nil {
		return nil, err
	}
	// Without --iface flanneld takes the default route's interface, which on
	// hosts with a NAT or management NIC (Vagrant's eth0) is not the one the
	// nodes reach each other on. The node's own IP (kubelet's --node-ip, the
	// inventory's internalAddress) names the right interface on every node.
	setEnvVar(c, map[string]any{
		"name":      "FLANNELD_IFACE",
		"valueFrom": map[string]any{"fieldRef": map[string]any{"fieldPath": "status.hostIP"}},
	})
	if err := setImages(Flannel, objs, flannelImages, p); err != nil {
		return nil, err
	}
	return objs, nil
}
