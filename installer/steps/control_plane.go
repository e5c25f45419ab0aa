package steps

import (
	"context"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/kubewright/kubewright/installer/engine"
	"github.com/kubewright/kubewright/installer/render"
	"github.com/kubewright/kubewright/installer/steps/stepkit"
)

// ControlPlane is the `control-plane` step: kube-apiserver, kube-controller-
// manager and kube-scheduler as systemd units on one master, with their
// certificates, kubeconfigs, Secrets encryption, audit policy and anonymous
// access limited to health paths. Run with serial: 1 so the API stays up:
// Apply returns only once this master's apiserver answers /readyz.
type ControlPlane struct {
	// ReadyTimeout bounds the wait for the local /readyz after a (re)start.
	ReadyTimeout time.Duration
}

func (ControlPlane) Name() string { return "control-plane" }

const (
	unitAPIServer  = "kube-apiserver.service"
	unitController = "kube-controller-manager.service"
	unitScheduler  = "kube-scheduler.service"
)

func (s ControlPlane) group(t *engine.Target) (serviceGroup, error) {
	c := t.Cluster
	if masterIndex(c, t.Inv.Name) < 0 {
		return serviceGroup{}, fmt.Errorf("control-plane runs on masters only; %s is not in the masters group", t.Inv.Name)
	}
	etcdCA := render.PKIDir + "/etcd/ca.crt"
	files, err := pkiFiles(t, func(p string) bool { return !isEtcdPath(p) || p == etcdCA })
	if err != nil {
		return serviceGroup{}, err
	}
	key, err := readSecret(t, encryptionKeyFile)
	if err != nil {
		return serviceGroup{}, err
	}
	enc, err := render.EncryptionConfigFile("kubewright-1", key)
	if err != nil {
		return serviceGroup{}, err
	}
	files = append(files,
		stepkit.File{Path: render.EncryptionConfig, Content: []byte(enc), Mode: 0o600, Owner: "root:root"},
		stepkit.File{Path: render.AuditPolicyPath, Content: []byte(render.AuditPolicy()), Mode: 0o600, Owner: "root:root"},
		stepkit.File{Path: render.AuthnConfigPath, Content: []byte(render.AuthenticationConfig()), Mode: 0o600, Owner: "root:root"},
	)
	api, err := render.APIServerUnit(render.APIServerParams{
		AdvertiseAddress: internalAddress(t.Inv),
		SecurePort:       c.Spec.Kubernetes.APIServerPort,
		EtcdMembers:      etcdMembers(c),
		ServiceCIDR:      c.Spec.Network.ServiceCIDR,
		ClusterDomain:    c.Spec.DNS.ClusterDomain,
	})
	if err != nil {
		return serviceGroup{}, err
	}
	cm, err := render.ControllerManagerUnit(render.ControllerManagerParams{
		ClusterName:       c.Metadata.Name,
		PodCIDR:           c.Spec.Network.PodCIDR,
		ServiceCIDR:       c.Spec.Network.ServiceCIDR,
		AllocateNodeCIDRs: true,
		NodeCIDRMaskSize:  nodeCIDRMaskSize(c.Spec.Network.PodCIDR),
	})
	if err != nil {
		return serviceGroup{}, err
	}
	cmConf := render.KubernetesDir + "/controller-manager.conf"
	schedConf := render.KubernetesDir + "/scheduler.conf"
	return serviceGroup{
		files: files,
		services: []service{
			{unit: unitAPIServer, content: []byte(api), binary: render.BinDir + "/kube-apiserver", dependsOn: func(p string) bool {
				return p != cmConf && p != schedConf && path.Base(p) != "admin.conf"
			}},
			{unit: unitController, content: []byte(cm), binary: render.BinDir + "/kube-controller-manager", dependsOn: func(p string) bool {
				return p == cmConf || strings.HasPrefix(p, render.PKIDir+"/ca.") || strings.HasPrefix(p, render.PKIDir+"/sa.") ||
					p == render.PKIDir+"/front-proxy-ca.crt"
			}},
			{unit: unitScheduler, content: []byte(render.SchedulerUnit()), binary: render.BinDir + "/kube-scheduler", dependsOn: func(p string) bool { return p == schedConf }},
		},
		activeTimeout: 2 * time.Minute,
	}, nil
}

// nodeCIDRMaskSize gives each node a /24 from an IPv4 pod CIDR (a /64 for
// IPv6), the controller-manager's own defaults, stated so they show in plans.
func nodeCIDRMaskSize(podCIDR string) int {
	if strings.Contains(podCIDR, ":") {
		return 64
	}
	return 24
}

func (s ControlPlane) Plan(ctx context.Context, t *engine.Target) ([]engine.Change, error) {
	g, err := s.group(t)
	if err != nil {
		return nil, err
	}
	return g.plan(ctx, t)
}

func (s ControlPlane) Apply(ctx context.Context, t *engine.Target, plan []engine.Change) error {
	g, err := s.group(t)
	if err != nil {
		return err
	}
	if _, err := stepkit.RunAsRoot(ctx, t, "mkdir -p "+stepkit.Quote(stepkit.HostPath(t, path.Dir(render.AuditLogPath)))); err != nil {
		return fmt.Errorf("create audit log dir: %w", err)
	}
	if err := g.apply(ctx, t, plan); err != nil {
		return err
	}
	if err := waitLocalReadyz(ctx, t, t.Cluster.Spec.Kubernetes.APIServerPort, s.readyTimeout()); err != nil {
		return err
	}
	if restartsAPIServer(plan) {
		// haproxy on every master takes a server back after two passing
		// health checks a second apart. Waiting that long before the next
		// master restarts (serial 1) means two apiservers are never out of
		// the load balancers at once, which with two masters would be all.
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(lbRiseDelay):
		}
	}
	return nil
}

// lbRiseDelay covers haproxy's "inter 1s rise 2" plus a check in flight.
const lbRiseDelay = 3 * time.Second

func restartsAPIServer(plan []engine.Change) bool {
	for _, c := range plan {
		if c.Object == unitAPIServer && c.Action == stepkit.ActionRestart {
			return true
		}
	}
	return false
}

func (s ControlPlane) readyTimeout() time.Duration {
	if s.ReadyTimeout > 0 {
		return s.ReadyTimeout
	}
	return 3 * time.Minute
}

// waitLocalReadyz polls the apiserver on the host itself, so it works when
// the operator reaches hosts only through a bastion.
func waitLocalReadyz(ctx context.Context, t *engine.Target, port int, timeout time.Duration) error {
	secs := int(timeout / time.Second)
	script := fmt.Sprintf(`i=0; while [ $i -lt %d ]; do out=$(curl -sk --max-time 2 https://127.0.0.1:%d/readyz 2>&1) && [ "$out" = ok ] && exit 0; i=$((i+1)); sleep 1; done; echo "last answer: $out"; curl -sk --max-time 2 'https://127.0.0.1:%d/readyz?verbose' 2>&1 | grep -v '^\[+\]' | head -20; exit 1`, secs, port, port)
	if _, err := stepkit.RunAsRoot(ctx, t, script); err != nil {
		return fmt.Errorf("kube-apiserver on %s not ready after %s (journalctl -u kube-apiserver): %w", t.Inv.Name, timeout, err)
	}
	return nil
}
