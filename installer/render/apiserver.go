package render

import (
	"encoding/base64"
	"fmt"
	"strconv"
)

// APIServerParams describes one master's kube-apiserver.
type APIServerParams struct {
	AdvertiseAddress string
	// SecurePort is where this apiserver listens on every address; haproxy on
	// the masters forwards the VIP port to it (see docs/ARCHITECTURE.md).
	SecurePort    int
	EtcdMembers   []EtcdMember
	ServiceCIDR   string
	ClusterDomain string
	// ServiceNodePortRange defaults to Kubernetes' own default.
	ServiceNodePortRange string
}

// APIServerUnit renders kube-apiserver.service.
func APIServerUnit(p APIServerParams) (string, error) {
	if p.AdvertiseAddress == "" || p.SecurePort == 0 || p.ServiceCIDR == "" || len(p.EtcdMembers) == 0 {
		return "", fmt.Errorf("apiserver needs an advertise address, a port, the service CIDR and etcd members")
	}
	domain := p.ClusterDomain
	if domain == "" {
		domain = "cluster.local"
	}
	f := map[string]string{
		"advertise-address":                  p.AdvertiseAddress,
		"secure-port":                        strconv.Itoa(p.SecurePort),
		"allow-privileged":                   "true",
		"authorization-mode":                 "Node,RBAC",
		"enable-admission-plugins":           "NodeRestriction",
		"enable-bootstrap-token-auth":        "true",
		"authentication-config":              AuthnConfigPath,
		"client-ca-file":                     pki("ca.crt"),
		"tls-cert-file":                      pki("apiserver.crt"),
		"tls-private-key-file":               pki("apiserver.key"),
		"kubelet-client-certificate":         pki("apiserver-kubelet-client.crt"),
		"kubelet-client-key":                 pki("apiserver-kubelet-client.key"),
		"kubelet-certificate-authority":      pki("ca.crt"),
		"kubelet-preferred-address-types":    "InternalIP,ExternalIP,Hostname",
		"etcd-servers":                       EtcdEndpoints(p.EtcdMembers),
		"etcd-cafile":                        pki("etcd/ca.crt"),
		"etcd-certfile":                      pki("apiserver-etcd-client.crt"),
		"etcd-keyfile":                       pki("apiserver-etcd-client.key"),
		"proxy-client-cert-file":             pki("front-proxy-client.crt"),
		"proxy-client-key-file":              pki("front-proxy-client.key"),
		"requestheader-client-ca-file":       pki("front-proxy-ca.crt"),
		"requestheader-allowed-names":        "front-proxy-client",
		"requestheader-extra-headers-prefix": "X-Remote-Extra-",
		"requestheader-group-headers":        "X-Remote-Group",
		"requestheader-username-headers":     "X-Remote-User",
		"service-account-issuer":             "https://kubernetes.default.svc." + domain,
		"service-account-key-file":           pki("sa.pub"),
		"service-account-signing-key-file":   pki("sa.key"),
		"service-cluster-ip-range":           p.ServiceCIDR,
		"encryption-provider-config":         EncryptionConfig,
		"audit-policy-file":                  AuditPolicyPath,
		"audit-log-path":                     AuditLogPath,
		"audit-log-maxage":                   "30",
		"audit-log-maxbackup":                "10",
		"audit-log-maxsize":                  "100",
		"profiling":                          "false",
		// On stop, keep serving for 5s while /readyz reports failure, so
		// haproxy's health check (1s interval, 2 failures) takes the server
		// out before its listener closes: a restart drops no request.
		"shutdown-delay-duration": "5s",
	}
	if p.ServiceNodePortRange != "" {
		f["service-node-port-range"] = p.ServiceNodePortRange
	}
	u := Unit{
		Description: "Kubernetes API server (kubewright)",
		Docs:        "https://kubernetes.io/docs/reference/command-line-tools-reference/kube-apiserver/",
		After:       []string{"network-online.target", "etcd.service"},
		Wants:       []string{"network-online.target"},
		Type:        "notify",
		Exec:        BinDir + "/kube-apiserver",
		Args:        flags(f),
		RestartSec:  5,
		LimitNOFILE: 65536,
	}
	return u.String(), nil
}

// AuthenticationConfig limits anonymous requests to the health endpoints, so
// load balancers and keepalived's track script can probe /readyz while every
// other path requires credentials (KEP-4633, stable since 1.34).
func AuthenticationConfig() string {
	return `apiVersion: apiserver.config.k8s.io/v1
kind: AuthenticationConfiguration
anonymous:
  enabled: true
  conditions:
  - path: /livez
  - path: /readyz
  - path: /healthz
`
}

// EncryptionConfigFile encrypts Secrets at rest with AES-CBC using key (32
// bytes). identity stays last so data written before encryption stays readable.
func EncryptionConfigFile(keyName string, key []byte) (string, error) {
	if len(key) != 32 {
		return "", fmt.Errorf("encryption key must be 32 bytes, got %d", len(key))
	}
	return fmt.Sprintf(`apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
- resources:
  - secrets
  providers:
  - aescbc:
      keys:
      - name: %s
        secret: %s
  - identity: {}
`, keyName, base64.StdEncoding.EncodeToString(key)), nil
}

// AuditPolicy logs metadata for everything, never request bodies of Secrets or
// tokens, and skips the noisy read-only health and watch traffic.
func AuditPolicy() string {
	return `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages:
- RequestReceived
rules:
- level: None
  nonResourceURLs:
  - /healthz*
  - /readyz*
  - /livez*
  - /version
- level: None
  verbs: ["watch"]
- level: Metadata
  resources:
  - group: ""
    resources: ["secrets", "configmaps", "serviceaccounts/token"]
  - group: "authentication.k8s.io"
    resources: ["tokenreviews"]
- level: Request
  verbs: ["create", "update", "patch", "delete", "deletecollection"]
- level: Metadata
`
}

// ControllerManagerParams describes kube-controller-manager on one master.
type ControllerManagerParams struct {
	ClusterName string
	PodCIDR     string
	ServiceCIDR string
	// AllocateNodeCIDRs is true when the CNI (flannel) reads node.spec.podCIDR.
	AllocateNodeCIDRs bool
	NodeCIDRMaskSize  int
}

// ControllerManagerUnit renders kube-controller-manager.service.
func ControllerManagerUnit(p ControllerManagerParams) (string, error) {
	if p.ServiceCIDR == "" {
		return "", fmt.Errorf("controller-manager needs the service CIDR")
	}
	name := p.ClusterName
	if name == "" {
		name = "kubernetes"
	}
	conf := KubernetesDir + "/controller-manager.conf"
	f := map[string]string{
		"kubeconfig":                       conf,
		"authentication-kubeconfig":        conf,
		"authorization-kubeconfig":         conf,
		"bind-address":                     "127.0.0.1",
		"secure-port":                      strconv.Itoa(ControllerMgrPort),
		"leader-elect":                     "true",
		"cluster-name":                     name,
		"cluster-signing-cert-file":        pki("ca.crt"),
		"cluster-signing-key-file":         pki("ca.key"),
		"client-ca-file":                   pki("ca.crt"),
		"requestheader-client-ca-file":     pki("front-proxy-ca.crt"),
		"root-ca-file":                     pki("ca.crt"),
		"service-account-private-key-file": pki("sa.key"),
		"service-cluster-ip-range":         p.ServiceCIDR,
		"use-service-account-credentials":  "true",
		"controllers":                      "*,bootstrapsigner,tokencleaner",
		"profiling":                        "false",
	}
	if p.AllocateNodeCIDRs {
		if p.PodCIDR == "" {
			return "", fmt.Errorf("allocating node CIDRs needs the pod CIDR")
		}
		f["allocate-node-cidrs"] = "true"
		f["cluster-cidr"] = p.PodCIDR
		if p.NodeCIDRMaskSize > 0 {
			f["node-cidr-mask-size"] = strconv.Itoa(p.NodeCIDRMaskSize)
		}
	}
	u := Unit{
		Description: "Kubernetes controller manager (kubewright)",
		Docs:        "https://kubernetes.io/docs/reference/command-line-tools-reference/kube-controller-manager/",
		After:       []string{"kube-apiserver.service"},
		Exec:        BinDir + "/kube-controller-manager",
		Args:        flags(f),
		RestartSec:  5,
	}
	return u.String(), nil
}

// SchedulerUnit renders kube-scheduler.service.
func SchedulerUnit() string {
	conf := KubernetesDir + "/scheduler.conf"
	f := map[string]string{
		"kubeconfig":                conf,
		"authentication-kubeconfig": conf,
		"authorization-kubeconfig":  conf,
		"bind-address":              "127.0.0.1",
		"secure-port":               strconv.Itoa(SchedulerPort),
		"leader-elect":              "true",
		"profiling":                 "false",
	}
	u := Unit{
		Description: "Kubernetes scheduler (kubewright)",
		Docs:        "https://kubernetes.io/docs/reference/command-line-tools-reference/kube-scheduler/",
		After:       []string{"kube-apiserver.service"},
		Exec:        BinDir + "/kube-scheduler",
		Args:        flags(f),
		RestartSec:  5,
	}
	return u.String()
}
