package steps

import (
	"context"
	"crypto/x509"
	"strings"
	"time"

	"github.com/kubewright/kubewright/installer/engine"
	"github.com/kubewright/kubewright/installer/kube"
	"github.com/kubewright/kubewright/installer/pki"
	"github.com/kubewright/kubewright/installer/render"
	"github.com/kubewright/kubewright/installer/steps/stepkit"
)

// KubeProxy is the `kube-proxy` step: kube-proxy as a systemd unit (not a
// DaemonSet: no image, no dependency on the CNI, managed like the kubelet)
// in the inventory's mode (iptables or ipvs), with its own client certificate
// (CN system:kube-proxy, issued from the cluster CA on the operator's
// machine) bound to the built-in system:node-proxier role.
type KubeProxy struct {
	// Client is the API client (nil: super-admin from the state directory).
	Client clientFunc
}

func (KubeProxy) Name() string { return "kube-proxy" }

const unitKubeProxy = "kube-proxy.service"

// kubeProxyRBACObject is the change object for the role binding.
const kubeProxyRBACObject = "ClusterRoleBinding/kubewright:node-proxier"

// kube-proxy's credential lives in the state directory beside the PKI and is
// shared by every node, as kubeadm's kube-proxy ServiceAccount is.
const (
	kubeProxyCertFile = "kube-proxy/client.crt"
	kubeProxyKeyFile  = "kube-proxy/client.key"
	kubeProxyValidity = 365 * 24 * time.Hour
	kubeProxyRenew    = 30 * 24 * time.Hour
)

// ensureKubeProxyCert returns kube-proxy's certificate and key (PEM), issuing
// them when missing, not signed by the current CA or within 30 days of expiry.
func ensureKubeProxyCert(stateDir string, now time.Time) (certPEM, keyPEM []byte, err error) {
	return clientCert{
		rel:      strings.TrimSuffix(kubeProxyCertFile, ".crt"),
		req:      pki.CertRequest{CommonName: kube.KubeProxyUser, Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}},
		validity: kubeProxyValidity,
		renew:    kubeProxyRenew,
	}.ensure(stateDir, now)
}

func (s KubeProxy) group(t *engine.Target) (serviceGroup, error) {
	c := t.Cluster
	conf, err := render.KubeProxyConfigFile(render.KubeProxyParams{NodeName: t.Inv.Name, Mode: c.Spec.Kubernetes.ProxyMode, ClusterCIDR: c.Spec.Network.PodCIDR})
	if err != nil {
		return serviceGroup{}, err
	}
	certPEM, keyPEM, err := ensureKubeProxyCert(t.StateDir, time.Now())
	if err != nil {
		return serviceGroup{}, err
	}
	ca, err := clusterCAPEM(t)
	if err != nil {
		return serviceGroup{}, err
	}
	name := c.Spec.Kubernetes.ClusterName
	if name == "" {
		name = c.Metadata.Name
	}
	kc, err := pki.RenderKubeconfig(pki.KubeconfigData{ClusterName: name, Server: "https://" + c.Endpoint(), CAPEM: ca, User: kube.KubeProxyUser, ClientCertPEM: certPEM, ClientKeyPEM: keyPEM})
	if err != nil {
		return serviceGroup{}, err
	}
	return serviceGroup{
		files: []stepkit.File{
			{Path: render.KubeProxyKubeconfig, Content: kc, Mode: 0o600, Owner: "root:root"},
			{Path: render.KubeProxyConfigPath, Content: []byte(conf), Mode: 0o644, Owner: "root:root"},
		},
		services:      []service{{unit: unitKubeProxy, content: []byte(render.KubeProxyUnit()), binary: render.BinDir + "/kube-proxy", dependsOn: func(string) bool { return true }}},
		activeTimeout: time.Minute,
	}, nil
}

func (s KubeProxy) Plan(ctx context.Context, t *engine.Target) ([]engine.Change, error) {
	g, err := s.group(t)
	if err != nil {
		return nil, err
	}
	changes, err := g.plan(ctx, t)
	if err != nil {
		return nil, err
	}
	cs, err := s.Client.get(ctx, t)
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	need, err := kube.EnsureKubeProxyRBAC(pctx, cs, true)
	if err != nil {
		return append(changes, engine.Change{Action: "apply", Object: kubeProxyRBACObject, Detail: "API not answering yet: " + err.Error()}), nil
	}
	if need {
		changes = append(changes, engine.Change{Action: "apply", Object: kubeProxyRBACObject})
	}
	return changes, nil
}

func (s KubeProxy) Apply(ctx context.Context, t *engine.Target, plan []engine.Change) error {
	g, err := s.group(t)
	if err != nil {
		return err
	}
	if stepkit.HasObject(plan, kubeProxyRBACObject) {
		cs, err := s.Client.get(ctx, t)
		if err != nil {
			return err
		}
		if _, err := kube.EnsureKubeProxyRBAC(ctx, cs, false); err != nil {
			return err
		}
	}
	return g.apply(ctx, t, plan)
}
