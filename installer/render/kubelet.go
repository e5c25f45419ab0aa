package render

import (
	"fmt"
	"strings"
)

// kubelet paths on hosts, kubeadm's, so `kubeadm`-trained operators find them.
const (
	KubeletConfigPath          = "/var/lib/kubelet/config.yaml"
	KubeletKubeconfig          = "/etc/kubernetes/kubelet.conf"
	KubeletBootstrapKubeconfig = "/etc/kubernetes/bootstrap-kubelet.conf"
	KubeletCertDir             = "/var/lib/kubelet/pki"
	// KubeletClientCert is the rotated client certificate the kubelet writes
	// after TLS bootstrap; its presence means the node has joined.
	KubeletClientCert = KubeletCertDir + "/kubelet-client-current.pem"
	// KubeletServingCert exists once kubewright approved the serving CSR.
	KubeletServingCert = KubeletCertDir + "/kubelet-server-current.pem"
	KubeletPort        = 10250
)

// Taint is a node taint rendered into registerWithTaints.
type Taint struct{ Key, Value, Effect string }

// KubeletParams are the node-specific settings of the KubeletConfiguration
// and unit.
type KubeletParams struct {
	NodeName      string // --hostname-override: the inventory name
	NodeIP        string // --node-ip: the internal address
	ClusterDNS    string // 10th address of the service CIDR
	ClusterDomain string
	// CgroupDriver is cgroupfs or systemd and must match containerd's runc
	// SystemdCgroup setting, or pods fail to start.
	CgroupDriver string
	// CgroupV1 allows running on a cgroup v1 host (kubelet ≥ 1.31 refuses
	// by default); the lab's machines are cgroup v1.
	CgroupV1 bool
	// AllowSwap sets failSwapOn false: inside a container /proc/swaps shows
	// the host's swap, which the node cannot turn off.
	AllowSwap bool
	// RegisterTaints are set at registration, so a master never runs a pod
	// meant for workers in the window before labels and taints are applied.
	RegisterTaints []Taint
}

// KubeletConfigFile renders /var/lib/kubelet/config.yaml. Security settings
// follow the CIS benchmark: no anonymous access, webhook authn/authz against
// the API, read-only port off, client certificate rotation, and serving
// certificates from the cluster CA (serverTLSBootstrap) so `kubectl logs`
// verifies the kubelet instead of trusting a self-signed certificate.
func KubeletConfigFile(p KubeletParams) (string, error) {
	if p.ClusterDNS == "" || p.ClusterDomain == "" {
		return "", fmt.Errorf("kubelet config: cluster DNS and domain are required")
	}
	if p.CgroupDriver != "cgroupfs" && p.CgroupDriver != "systemd" {
		return "", fmt.Errorf("kubelet config: cgroup driver %q: want cgroupfs or systemd", p.CgroupDriver)
	}
	var b strings.Builder
	b.WriteString(ManagedMarker + ": changes are overwritten by the next install/upgrade.\n")
	b.WriteString(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
    cacheTTL: 2m0s
  x509:
    clientCAFile: ` + PKIDir + `/ca.crt
authorization:
  mode: Webhook
  webhook:
    cacheAuthorizedTTL: 5m0s
    cacheUnauthorizedTTL: 30s
readOnlyPort: 0
rotateCertificates: true
serverTLSBootstrap: true
protectKernelDefaults: false
`)
	fmt.Fprintf(&b, "cgroupDriver: %s\n", p.CgroupDriver)
	b.WriteString("cgroupRoot: /\n")
	fmt.Fprintf(&b, "failCgroupV1: %t\n", !p.CgroupV1)
	fmt.Fprintf(&b, "failSwapOn: %t\n", !p.AllowSwap)
	b.WriteString("containerRuntimeEndpoint: " + ContainerdSocket + "\n")
	fmt.Fprintf(&b, "clusterDNS:\n  - %s\nclusterDomain: %s\n", p.ClusterDNS, p.ClusterDomain)
	b.WriteString(`evictionHard:
  memory.available: 100Mi
  nodefs.available: 10%
  nodefs.inodesFree: 5%
  imagefs.available: 15%
evictionPressureTransitionPeriod: 5m0s
imageGCHighThresholdPercent: 85
imageGCLowThresholdPercent: 80
maxPods: 110
podPidsLimit: 4096
serializeImagePulls: false
staticPodPath: ""
tlsMinVersion: VersionTLS12
`)
	if len(p.RegisterTaints) > 0 {
		b.WriteString("registerWithTaints:\n")
		for _, t := range p.RegisterTaints {
			fmt.Fprintf(&b, "  - key: %s\n", t.Key)
			if t.Value != "" {
				fmt.Fprintf(&b, "    value: %q\n", t.Value)
			}
			fmt.Fprintf(&b, "    effect: %s\n", t.Effect)
		}
	}
	return b.String(), nil
}

// KubeletUnit renders kubelet.service. The node's identity (name, address)
// is on the command line because it differs per host while the config file
// could be shared; both flags are what LAB.md found necessary where the
// namespace has no default route.
func KubeletUnit(p KubeletParams) (string, error) {
	if p.NodeName == "" || p.NodeIP == "" {
		return "", fmt.Errorf("kubelet unit: node name and IP are required")
	}
	u := Unit{
		Description: "Kubernetes kubelet (node agent)",
		Docs:        "https://kubernetes.io/docs/reference/command-line-tools-reference/kubelet/",
		Wants:       []string{"containerd.service"},
		After:       []string{"network-online.target", "containerd.service"},
		Exec:        BinDir + "/kubelet",
		Args: flags(map[string]string{
			"config":               KubeletConfigPath,
			"kubeconfig":           KubeletKubeconfig,
			"bootstrap-kubeconfig": KubeletBootstrapKubeconfig,
			"cert-dir":             KubeletCertDir,
			"node-ip":              p.NodeIP,
			"hostname-override":    p.NodeName,
		}),
		Restart:               "always",
		RestartSec:            10,
		StartLimitIntervalSec: 0,
	}
	return u.String(), nil
}
