package render

import (
	"fmt"
	"strings"
)

// kube-proxy paths on hosts.
const (
	KubeProxyConfigPath = "/var/lib/kube-proxy/config.yaml"
	KubeProxyKubeconfig = "/etc/kubernetes/kube-proxy.conf"
)

// KubeProxyParams configure kube-proxy on one node.
type KubeProxyParams struct {
	NodeName    string
	Mode        string // iptables | ipvs
	ClusterCIDR string // the pod CIDR: traffic from outside it is masqueraded
	MetricsPort int    // 0: 10249
}

// KubeProxyConfigFile renders the KubeProxyConfiguration. conntrack.maxPerCore
// 0 leaves nf_conntrack_max alone: kube-proxy cannot set it inside a
// container (the lab) and the distro default is sane elsewhere.
func KubeProxyConfigFile(p KubeProxyParams) (string, error) {
	if p.Mode != "iptables" && p.Mode != "ipvs" {
		return "", fmt.Errorf("kube-proxy config: mode %q: want iptables or ipvs", p.Mode)
	}
	if p.NodeName == "" || p.ClusterCIDR == "" {
		return "", fmt.Errorf("kube-proxy config: node name and cluster CIDR are required")
	}
	port := p.MetricsPort
	if port == 0 {
		port = 10249
	}
	var b strings.Builder
	b.WriteString(ManagedMarker + ": changes are overwritten by the next install/upgrade.\n")
	b.WriteString("apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n")
	b.WriteString("clientConnection:\n  kubeconfig: " + KubeProxyKubeconfig + "\n")
	fmt.Fprintf(&b, "hostnameOverride: %s\n", p.NodeName)
	fmt.Fprintf(&b, "mode: %s\n", p.Mode)
	fmt.Fprintf(&b, "clusterCIDR: %s\n", p.ClusterCIDR)
	b.WriteString("conntrack:\n  maxPerCore: 0\n")
	// NodePorts only on the node's primary addresses, not on every local IP
	// (container bridges, the VIP on masters).
	b.WriteString("nodePortAddresses:\n  - primary\n")
	fmt.Fprintf(&b, "metricsBindAddress: 127.0.0.1:%d\n", port)
	b.WriteString("healthzBindAddress: 0.0.0.0:10256\n")
	if p.Mode == "ipvs" {
		b.WriteString("ipvs:\n  scheduler: rr\n  strictARP: true\n")
	}
	return b.String(), nil
}

// KubeProxyUnit renders kube-proxy.service. kube-proxy runs as a systemd unit,
// not a DaemonSet: it then needs no image, works before the CNI is up and is
// managed (upgrades, certificates) like the other node components.
func KubeProxyUnit() string {
	return Unit{
		Description: "Kubernetes kube-proxy (Service load balancing)",
		Docs:        "https://kubernetes.io/docs/reference/command-line-tools-reference/kube-proxy/",
		After:       []string{"network-online.target"},
		Exec:        BinDir + "/kube-proxy",
		Args:        flags(map[string]string{"config": KubeProxyConfigPath}),
		Restart:     "always",
		RestartSec:  5,
	}.String()
}
