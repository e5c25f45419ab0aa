package steps

import (
	"context"
	"fmt"
	"os"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/kubewright/kubewright/installer/engine"
	"github.com/kubewright/kubewright/installer/kube"
	"github.com/kubewright/kubewright/installer/pki"
)

// ClusterBootstrap is the `cluster-bootstrap` step: once the API answers
// through the VIP, create what a kubeadm-style cluster needs before nodes
// join (bootstrap RBAC, kube-public/cluster-info, the cluster-admins binding
// admin.conf relies on). It talks to the API from the operator's machine with
// client-go and the super-admin credential that never leaves the state
// directory, so it acts once per run: on the first master only.
type ClusterBootstrap struct {
	// Timeout bounds the wait for the API through the VIP.
	Timeout time.Duration
}

func (ClusterBootstrap) Name() string { return "cluster-bootstrap" }

func (s ClusterBootstrap) applies(t *engine.Target) bool {
	m := t.Cluster.Masters()
	return len(m) > 0 && m[0].Name == t.Inv.Name
}

func (s ClusterBootstrap) client(t *engine.Target) (*kube.Client, string, error) {
	store := pki.NewStore(PKIDir(t.StateDir), nil)
	cfg, err := os.ReadFile(store.SuperAdminKubeconfigPath())
	if err != nil {
		return nil, "", fmt.Errorf("read super-admin kubeconfig: %w", err)
	}
	c, err := kube.NewClient(cfg)
	if err != nil {
		return nil, "", err
	}
	ca, _, err := store.CA(pki.CACluster)
	if err != nil {
		return nil, "", err
	}
	info, err := clusterInfoKubeconfig(c.Config.Host, ca.Raw)
	if err != nil {
		return nil, "", err
	}
	return c, info, nil
}

// clusterInfoKubeconfig is what kube-public/cluster-info publishes: only the
// endpoint and the CA, as kubeadm does, so joining nodes can find and trust
// the API.
func clusterInfoKubeconfig(server string, caDER []byte) (string, error) {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[""] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: pemCert(caDER)}
	b, err := clientcmd.Write(*cfg)
	if err != nil {
		return "", fmt.Errorf("render cluster-info kubeconfig: %w", err)
	}
	return string(b), nil
}

func (s ClusterBootstrap) Plan(ctx context.Context, t *engine.Target) ([]engine.Change, error) {
	if !s.applies(t) {
		return nil, nil
	}
	c, info, err := s.client(t)
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	objs, err := kube.EnsureBootstrapObjects(pctx, c.Clientset, info, true)
	if err != nil {
		// On a cluster still being installed (or a dry run of a fresh one)
		// there is no API to ask yet: plan everything; Apply waits for it.
		return []engine.Change{{Action: "create", Object: "bootstrap RBAC and kube-public/cluster-info", Detail: "API at " + c.Config.Host + " not answering yet: " + err.Error()}}, nil
	}
	var out []engine.Change
	for _, o := range objs {
		out = append(out, engine.Change{Action: "apply", Object: o})
	}
	return out, nil
}

func (s ClusterBootstrap) Apply(ctx context.Context, t *engine.Target, _ []engine.Change) error {
	c, info, err := s.client(t)
	if err != nil {
		return err
	}
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Minute
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := kube.WaitReadyz(wctx, c.Config.Host, time.Second); err != nil {
		return fmt.Errorf("control-plane endpoint: %w", err)
	}
	if _, err := kube.EnsureBootstrapObjects(wctx, c.Clientset, info, false); err != nil {
		return err
	}
	return nil
}
