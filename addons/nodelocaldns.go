package addons

import (
	_ "embed"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

//go:embed nodelocaldns/nodelocaldns.yaml
var nodeLocalDNSManifest []byte

var nodeLocalDNSImages = []imageSpec{
	{"k8s-dns-node-cache", "registry.k8s.io/dns/k8s-dns-node-cache:1.26.4", "registry.k8s.io/dns/k8s-dns-node-cache:1.26.4"},
}

// clusterDNSPillar is filled by node-cache itself at start (with the
// ClusterIP of its kube-dns-upstream Service) in iptables mode; every other
// __PILLAR__ variable is kubewright's to fill.
const clusterDNSPillar = "__PILLAR__CLUSTER__DNS__"

// renderNodeLocalDNS follows the upstream instructions for each kube-proxy
// mode. iptables: node-cache binds both the link-local address and the
// kube-dns Service IP on every node and intercepts queries to the Service
// IP, so pods and kubelets keep clusterDNS = the kube-dns IP, and misses go
// to the DNS pods through kube-dns-upstream. ipvs: the Service IP cannot be
// taken over (IPVS owns it), so node-cache listens on the link-local address
// only, forwards misses to the kube-dns IP, and kubelets' clusterDNS must be
// NodeLocalDNSIP for pods to use the cache.
func renderNodeLocalDNS(p Params) ([]*unstructured.Unstructured, error) {
	objs, err := decodeManifest("nodelocaldns/nodelocaldns.yaml", nodeLocalDNSManifest)
	if err != nil {
		return nil, err
	}
	dnsIP, err := DNSServiceIP(p.ServiceCIDR)
	if err != nil {
		return nil, err
	}
	ipvs := p.ProxyMode == "ipvs"

	cm, err := find(NodeLocalDNS, objs, "ConfigMap", "node-local-dns")
	if err != nil {
		return nil, err
	}
	data, err := configMapData(NodeLocalDNS, cm)
	if err != nil {
		return nil, err
	}
	pairs := []string{
		"__PILLAR__DNS__DOMAIN__", p.ClusterDomain,
		"__PILLAR__UPSTREAM__SERVERS__", forwardTo(p.Upstreams),
		"__PILLAR__LOCAL__DNS__", NodeLocalDNSIP,
	}
	if ipvs {
		pairs = append(pairs, " __PILLAR__DNS__SERVER__", "", clusterDNSPillar, dnsIP)
	} else {
		pairs = append(pairs, "__PILLAR__DNS__SERVER__", dnsIP)
	}
	corefile, _ := data["Corefile"].(string)
	data["Corefile"] = strings.NewReplacer(pairs...).Replace(corefile)

	ds, err := find(NodeLocalDNS, objs, "DaemonSet", "node-local-dns")
	if err != nil {
		return nil, err
	}
	c, err := container(NodeLocalDNS, ds, "node-cache")
	if err != nil {
		return nil, err
	}
	args := stringSlice(c, "args")
	i := slices.Index(args, "-localip")
	if i < 0 || i+1 >= len(args) {
		return nil, manifestError(NodeLocalDNS, "node-cache has no -localip argument")
	}
	args[i+1] = NodeLocalDNSIP
	if !ipvs {
		args[i+1] += "," + dnsIP
	}
	setStringSlice(c, "args", args)
	if err := unstructured.SetNestedField(c, NodeLocalDNSIP, "livenessProbe", "httpGet", "host"); err != nil {
		return nil, err
	}
	if err := setImages(NodeLocalDNS, objs, nodeLocalDNSImages, p); err != nil {
		return nil, err
	}
	allow := []string{}
	if !ipvs {
		allow = append(allow, clusterDNSPillar)
	}
	if err := checkResolved(NodeLocalDNS, objs, []string{"__PILLAR__"}, allow...); err != nil {
		return nil, err
	}
	return objs, nil
}
