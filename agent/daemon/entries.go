package daemon

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/kubewright/kubewright/agent"
	"github.com/kubewright/kubewright/agent/checks"
	"github.com/kubewright/kubewright/agent/repairs"
)

// Units the agent checks and restarts; install names them so.
const (
	unitKubelet    = "kubelet.service"
	unitContainerd = "containerd.service"
	unitKubeProxy  = "kube-proxy.service"
	unitAPIServer  = "kube-apiserver.service"
	unitCM         = "kube-controller-manager.service"
	unitScheduler  = "kube-scheduler.service"
	unitEtcd       = "etcd.service"
	unitKeepalived = "keepalived.service"
	unitHAProxy    = "haproxy.service"
)

// Entries builds every check of this node with its repair ladder. Which
// check gets which rungs is the agent's repair policy; it lives here, in one
// place, so docs/AGENT.md can be checked against it.
func Entries(cfg *agent.Config) ([]agent.Entry, error) {
	if err := checkNames(cfg); err != nil {
		return nil, err
	}
	e := cfg.Endpoints
	restart := func(unit string, scope agent.Scope) agent.Repair {
		return repairs.RestartUnit{Unit: unit, In: scope}
	}
	runtime := repairs.RestartRuntime{}
	var out []agent.Entry
	add := func(c agent.Check, ladder ...agent.Repair) {
		for _, d := range cfg.Disabled {
			if d == c.Name() {
				return
			}
		}
		out = append(out, agent.Entry{Check: c, Ladder: ladder})
	}

	add(checks.Kubelet{URL: e.KubeletHealthz}, restart(unitKubelet, agent.ScopeNode), runtime)
	add(checks.Containerd{Socket: e.ContainerdSock}, restart(unitContainerd, agent.ScopeNode), runtime)
	add(checks.Unit{Unit: unitKubeProxy, CheckName: "kube-proxy"}, restart(unitKubeProxy, agent.ScopeNode))
	add(checks.Disk{Paths: []string{e.KubeletDir, e.ContainerdDir}, MaxPercent: cfg.DiskPercent, MaxInodePercent: cfg.InodePercent}, repairs.PruneImages{})
	add(checks.Memory{})
	if e.ClusterDNS != "" {
		add(checks.DNS{Server: e.ClusterDNS, Lookup: "kubernetes.default.svc." + e.ClusterDomain})
	}
	if len(cfg.Peers) > 0 {
		add(checks.Clock{Peers: cfg.Peers, MaxOffset: cfg.MaxClockOffset.Duration})
	}
	certDirs := []string{e.PKIDir, filepath.Join(e.KubeletDir, "pki")}
	if cfg.Role != "master" {
		// Workers hold no CA key: their kubelet rotates its own
		// certificates, so an expiring one is reported, not renewed.
		add(checks.Certs{Dirs: certDirs, RenewBefore: cfg.CertRenewBefore.Duration})
		return out, nil
	}

	// Control plane. Only the cluster CA's key is on a master (the
	// controller-manager signs with it), so only its leaves are renewed here.
	add(checks.Certs{Dirs: certDirs, RenewBefore: cfg.CertRenewBefore.Duration}, repairs.RenewCert{
		Dirs:    []string{e.PKIDir},
		Within:  cfg.CertRenewBefore.Duration,
		CAs:     []repairs.CAPair{{Cert: filepath.Join(e.PKIDir, "ca.crt"), Key: filepath.Join(e.PKIDir, "ca.key")}},
		Restart: []string{unitAPIServer, unitCM, unitScheduler},
	})
	if e.APIServerReadyz != "" {
		add(checks.APIServer{URL: e.APIServerReadyz, CACert: e.CACert}, restart(unitAPIServer, agent.ScopeControlPlane))
	}
	if e.EtcdEndpoint != "" {
		client, err := checks.NewEtcdClient(e.EtcdCACert, e.EtcdCert, e.EtcdKey)
		if err != nil {
			return nil, fmt.Errorf("etcd client for the etcd checks: %w", err)
		}
		add(checks.Etcd{Endpoint: e.EtcdEndpoint, Client: client}, restart(unitEtcd, agent.ScopeEtcd))
		if len(e.EtcdMembers) > 0 {
			// Quorum is reported, never repaired: the fix for a lost
			// quorum is a person with `kubewright etcd restore`.
			add(checks.EtcdQuorum{Endpoints: e.EtcdMembers, Client: client})
		}
	}
	add(checks.Unit{Unit: unitKeepalived, CheckName: "keepalived"}, restart(unitKeepalived, agent.ScopeControlPlane))
	if e.HAProxyFrontend != "" {
		add(checks.HAProxy{Frontend: e.HAProxyFrontend, Backends: e.APIServers}, restart(unitHAProxy, agent.ScopeControlPlane))
	}
	if e.VIP != "" {
		port := 0
		if _, p, err := net.SplitHostPort(e.HAProxyFrontend); err == nil {
			port, _ = strconv.Atoi(p)
		}
		// keepalived is restarted for a missing VIP only while this
		// master's own apiserver is ready: a master that cannot serve must
		// not grab the address.
		readyz := checks.APIServer{URL: e.APIServerReadyz, CACert: e.CACert}
		add(checks.VIP{Address: e.VIP, Interface: e.VIPInterface, Port: port}, precondition{
			Repair: restart(unitKeepalived, agent.ScopeControlPlane),
			why:    "the local apiserver is not ready",
			ok: func(ctx context.Context) bool {
				ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
				defer cancel()
				return readyz.Run(ctx).Status == agent.OK
			},
		})
	}
	return out, nil
}

// precondition runs a repair only when ok says the node is fit for it.
type precondition struct {
	agent.Repair
	why string
	ok  func(ctx context.Context) bool
}

func (p precondition) Act(ctx context.Context) error {
	if !p.ok(ctx) {
		return fmt.Errorf("%s not run: %s", p.Repair.Name(), p.why)
	}
	return p.Repair.Act(ctx)
}

func (p precondition) Units() []string {
	if u, ok := p.Repair.(agent.UnitRepair); ok {
		return u.Units()
	}
	return nil
}

// Every check and repair name, on any role: a misspelt name in disabled or
// repairs must be an error, not a check that silently keeps running.
var (
	checkNamesAll  = []string{"kubelet", "containerd", "kube-proxy", "disk", "memory", "dns", "clock", "certificates", "apiserver", "etcd", "etcd-quorum", "keepalived", "haproxy", "vip"}
	repairNamesAll = []string{"restart-kubelet", "restart-containerd", "restart-containerd-kubelet", "restart-kube-proxy", "prune-images", "renew-certificates", "restart-kube-apiserver", "restart-etcd", "restart-keepalived", "restart-haproxy"}
)

func checkNames(cfg *agent.Config) error {
	var bad []string
	for _, d := range cfg.Disabled {
		if !slices.Contains(checkNamesAll, d) {
			bad = append(bad, fmt.Sprintf("disabled: %q is not a check (checks: %s)", d, strings.Join(checkNamesAll, ", ")))
		}
	}
	for r := range cfg.Repairs {
		if !slices.Contains(repairNamesAll, r) {
			bad = append(bad, fmt.Sprintf("repairs: %q is not a repair (repairs: %s)", r, strings.Join(repairNamesAll, ", ")))
		}
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		return fmt.Errorf("agent config: %s", strings.Join(bad, "; "))
	}
	return nil
}
