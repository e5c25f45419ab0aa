package addons

import (
	_ "embed"
	"slices"
	"strconv"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

//go:embed calico/calico.yaml
var calicoManifest []byte

var calicoImages = []imageSpec{
	{"calico-cni", "quay.io/calico/cni:v3.32.1", "quay.io/calico/cni:v3.32.1"},
	{"calico-node", "quay.io/calico/node:v3.32.1", "quay.io/calico/node:v3.32.1"},
	{"calico-kube-controllers", "quay.io/calico/kube-controllers:v3.32.1", "quay.io/calico/kube-controllers:v3.32.1"},
}

// calicoMode is what one encapsulation means to calico-node.
type calicoMode struct {
	backend string // calico_backend: bird (BGP) or vxlan (no BGP at all)
	ipip    string // CALICO_IPV4POOL_IPIP
	vxlan   string // CALICO_IPV4POOL_VXLAN
}

// calicoModes: ipip and vxlan encapsulate all pod traffic between nodes
// ("Always", not "CrossSubnet"), so they work on any routed underlay; none
// sends pod traffic unencapsulated with BGP-learned routes, which needs all
// nodes on one L2 segment (or BGP peering with the routers).
var calicoModes = map[string]calicoMode{
	"ipip":  {backend: "bird", ipip: "Always", vxlan: "Never"},
	"vxlan": {backend: "vxlan", ipip: "Never", vxlan: "Always"},
	"none":  {backend: "bird", ipip: "Never", vxlan: "Never"},
}

func renderCalico(p Params) ([]*unstructured.Unstructured, error) {
	objs, err := decodeManifest("calico/calico.yaml", calicoManifest)
	if err != nil {
		return nil, err
	}
	mode := calicoModes[p.Encapsulation]

	cm, err := find(Calico, objs, "ConfigMap", "calico-config")
	if err != nil {
		return nil, err
	}
	data, err := configMapData(Calico, cm)
	if err != nil {
		return nil, err
	}
	data["calico_backend"] = mode.backend
	// "0" is calico's auto-detection (interface MTU minus the overhead of the
	// encapsulation in use); the inventory's MTU overrides it for pods and
	// tunnel devices alike (FELIX_*MTU read the same key).
	data["veth_mtu"] = strconv.Itoa(p.MTU)

	ds, err := find(Calico, objs, "DaemonSet", "calico-node")
	if err != nil {
		return nil, err
	}
	if err := setHostPath(Calico, ds, "cni-bin-dir", p.CNIBinDir); err != nil {
		return nil, err
	}
	// install-cni copies calico's own builds of the standard plugins too;
	// in a bin dir the OS package owns (Debian's /usr/lib/cni) they would
	// overwrite what the distribution patches. Only calico's plugins go in.
	if p.CNIBinDir != UpstreamCNIBinDir {
		cni, err := container(Calico, ds, "install-cni")
		if err != nil {
			return nil, err
		}
		setEnv(cni, "SKIP_CNI_BINARIES", "bandwidth,bridge,dhcp,flannel,host-device,host-local,loopback,macvlan,portmap,ptp,sbr,static,tap,tuning,vlan,vrf")
	}
	node, err := container(Calico, ds, "calico-node")
	if err != nil {
		return nil, err
	}
	for _, name := range []string{"CALICO_IPV4POOL_IPIP", "CALICO_IPV4POOL_VXLAN"} {
		if _, ok := envValue(node, name); !ok {
			return nil, manifestError(Calico, "calico-node has no env %s", name)
		}
	}
	setEnv(node, "CALICO_IPV4POOL_IPIP", mode.ipip)
	setEnv(node, "CALICO_IPV4POOL_VXLAN", mode.vxlan)
	// Upstream leaves the pool CIDR commented out (calico then picks
	// 192.168.0.0/16); it must be the cluster's pod CIDR.
	insertEnvAfter(node, "CALICO_IPV4POOL_VXLAN", map[string]any{"name": "CALICO_IPV4POOL_CIDR", "value": p.PodCIDR})
	// first-found (the default) takes the first interface that has an
	// address, which on multi-NIC hosts may be a NAT or management network;
	// the node's InternalIP is the inventory's internalAddress (kubelet
	// --node-ip), the address the other nodes reach it at.
	insertEnvAfter(node, "IP", map[string]any{"name": "IP_AUTODETECTION_METHOD", "value": "kubernetes-internal-ip"})
	if mode.backend != "bird" {
		// Without BGP there is no BIRD to probe: calico's VXLAN-only setup
		// drops the BIRD checks, or calico-node never becomes ready.
		for _, probe := range []string{"livenessProbe", "readinessProbe"} {
			pr, _ := node[probe].(map[string]any)
			ex, _ := pr["exec"].(map[string]any)
			if ex == nil {
				return nil, manifestError(Calico, "calico-node has no exec %s", probe)
			}
			cmd := stringSlice(ex, "command")
			cmd = slices.DeleteFunc(cmd, func(s string) bool { return s == "-bird-live" || s == "-bird-ready" })
			setStringSlice(ex, "command", cmd)
		}
	}
	if err := setImages(Calico, objs, calicoImages, p); err != nil {
		return nil, err
	}
	return objs, nil
}
