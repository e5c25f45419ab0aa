package render

import (
	"bytes"
	"fmt"
	"net"
	"strconv"

	"gopkg.in/yaml.v3"

	"github.com/kubewright/kubewright/agent"
)

// kubewright-agent paths on hosts.
const (
	AgentBinary     = BinDir + "/kubewright-agent"
	AgentConfigPath = agent.DefaultConfigPath // /etc/kubewright/agent.yaml
	AgentKubeconfig = "/etc/kubewright/agent.kubeconfig"
	AgentUnitName   = "kubewright-agent.service"
)

// Agent roles, as agent.Config.Role spells them.
const (
	AgentRoleMaster = "master"
	AgentRoleWorker = "worker"
)

// AgentParams are the facts install knows about one node and the agent
// needs: where its components listen and which addresses matter.
type AgentParams struct {
	NodeName string
	Role     string // AgentRoleMaster | AgentRoleWorker
	// NodeIP is the node's internal address: its etcd member listens there.
	NodeIP string
	// EtcdMember is set when the node runs an etcd member.
	EtcdMember bool
	// EtcdMembers are the internal addresses of every etcd member.
	EtcdMembers []string
	// APIServerPort is where every apiserver listens (the inventory's
	// spec.kubernetes.apiServerPort); Masters are their internal addresses.
	APIServerPort int
	Masters       []string
	// HAProxyPort is haproxy's listen port on every master (the control
	// plane endpoint's port).
	HAProxyPort   int
	VIP           string
	VIPInterface  string
	ClusterDNS    string
	ClusterDomain string
	// Peers are the other masters' internal addresses; the clock check
	// asks each one's kubelet port for the time.
	Peers []string
}

// agentHeader says who owns which part of agent.yaml. Install owns the facts
// (they follow the inventory); the operator owns the policy, which install
// keeps on every re-run so a repair set to report-only stays so.
const agentHeader = ManagedMarker + `: install rewrites nodeName, role, kubeconfig, endpoints
# and peers from the inventory on every run. The other fields (mode, repairs,
# disabled, intervals, thresholds, budget) are yours: install keeps them as they
# are here. After an edit: systemctl restart kubewright-agent.
`

// AgentConfigFile renders /etc/kubewright/agent.yaml for one node. current is
// the file now on the node (nil or empty when there is none): its policy
// fields are kept, its facts replaced. A current file the agent itself would
// refuse is an error naming the problem, never silently replaced: it holds an
// operator's edit.
func AgentConfigFile(p AgentParams, current []byte) (string, error) {
	if p.NodeName == "" || p.NodeIP == "" {
		return "", fmt.Errorf("agent config: node name and address are required")
	}
	if p.Role != AgentRoleMaster && p.Role != AgentRoleWorker {
		return "", fmt.Errorf("agent config: role %q: want %s or %s", p.Role, AgentRoleMaster, AgentRoleWorker)
	}
	if p.ClusterDNS == "" || p.ClusterDomain == "" {
		return "", fmt.Errorf("agent config: cluster DNS address and domain are required")
	}
	var c agent.Config
	if len(bytes.TrimSpace(current)) > 0 {
		dec := yaml.NewDecoder(bytes.NewReader(current))
		dec.KnownFields(true)
		if err := dec.Decode(&c); err != nil {
			return "", fmt.Errorf("%s on %s: %w; fix it or remove it (install then writes the defaults)", AgentConfigPath, p.NodeName, err)
		}
	}
	c.APIVersion, c.Kind = "", "" // Defaults sets the current ones
	c.NodeName = p.NodeName
	c.Role = p.Role
	c.Kubeconfig = AgentKubeconfig
	c.Endpoints = agentEndpoints(p)
	c.Peers = nil
	for _, a := range p.Peers {
		c.Peers = append(c.Peers, net.JoinHostPort(a, strconv.Itoa(KubeletPort)))
	}
	c.Defaults()
	if err := c.Validate(AgentConfigPath + " on " + p.NodeName); err != nil {
		return "", fmt.Errorf("%w; fix the file or remove it (install then writes the defaults)", err)
	}
	body, err := c.Marshal()
	if err != nil {
		return "", fmt.Errorf("agent config: %w", err)
	}
	return agentHeader + string(body), nil
}

func agentEndpoints(p AgentParams) agent.Endpoints {
	e := agent.Endpoints{
		CACert:        pki("ca.crt"),
		VIP:           p.VIP,
		VIPInterface:  p.VIPInterface,
		ClusterDNS:    p.ClusterDNS,
		ClusterDomain: p.ClusterDomain,
		PKIDir:        PKIDir,
	}
	if p.Role == AgentRoleMaster {
		e.APIServerReadyz = "https://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(p.APIServerPort)) + "/readyz"
		if p.HAProxyPort > 0 {
			e.HAProxyFrontend = net.JoinHostPort("127.0.0.1", strconv.Itoa(p.HAProxyPort))
		}
		for _, m := range p.Masters {
			e.APIServers = append(e.APIServers, net.JoinHostPort(m, strconv.Itoa(p.APIServerPort)))
		}
	}
	// The member's own client URL and every member's, with the
	// healthcheck-client certificate the etcd step puts on each member
	// (kubeadm's identity for exactly this: probing etcd, no more).
	if p.EtcdMember {
		e.EtcdEndpoint = etcdClientURL(p.NodeIP)
		e.EtcdCACert = pki("etcd/ca.crt")
		e.EtcdCert = pki("etcd/healthcheck-client.crt")
		e.EtcdKey = pki("etcd/healthcheck-client.key")
		for _, m := range p.EtcdMembers {
			e.EtcdMembers = append(e.EtcdMembers, etcdClientURL(m))
		}
	}
	return e
}

func etcdClientURL(addr string) string {
	return "https://" + net.JoinHostPort(addr, strconv.Itoa(EtcdClientPort))
}

// AgentUnit renders kubewright-agent.service. Type=notify with a watchdog:
// the agent says READY=1 after its first round of checks and WATCHDOG=1
// after every round, so a hung agent is restarted, not left reporting stale
// health. MemoryMax bounds what a leak can take from the node, and
// GOMEMLIMIT makes the Go runtime collect harder before that limit kills it.
// systemd creates /var/lib/kubewright-agent (the journal's home) before start.
func AgentUnit() string {
	return Unit{
		Description:    "kubewright node agent (health checks and safe repairs)",
		Docs:           "https://github.com/kubewright/kubewright/blob/main/docs/AGENT.md",
		Wants:          []string{"network-online.target"},
		After:          []string{"network-online.target", "kubelet.service"},
		Type:           "notify",
		Environment:    []string{"GOMEMLIMIT=48MiB"},
		Exec:           AgentBinary,
		Args:           flags(map[string]string{"config": AgentConfigPath}),
		Restart:        "always",
		RestartSec:     5,
		NotifyAccess:   "main",
		WatchdogSec:    30,
		MemoryMax:      "64M",
		StateDirectory: "kubewright-agent",
	}.String()
}
