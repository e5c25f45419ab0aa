package render

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubewright/kubewright/agent"
)

func agentMaster() AgentParams {
	return AgentParams{
		NodeName: "master1", Role: AgentRoleMaster, NodeIP: "10.10.0.11",
		EtcdMember: true, EtcdMembers: []string{"10.10.0.11", "10.10.0.12", "10.10.0.13"},
		APIServerPort: 6443, Masters: []string{"10.10.0.11", "10.10.0.12", "10.10.0.13"}, HAProxyPort: 8443,
		VIP: "10.10.0.100", VIPInterface: "eth0", ClusterDNS: "10.96.0.10", ClusterDomain: "cluster.local",
		Peers: []string{"10.10.0.12", "10.10.0.13", "10.10.0.21"},
	}
}

func agentWorker() AgentParams {
	return AgentParams{
		NodeName: "worker1", Role: AgentRoleWorker, NodeIP: "10.10.0.21", APIServerPort: 6443, HAProxyPort: 8443,
		VIP: "10.10.0.100", VIPInterface: "eth0", ClusterDNS: "10.96.0.10", ClusterDomain: "cluster.local",
		Peers: []string{"10.10.0.11", "fd00::12"},
	}
}

func TestAgentGolden(t *testing.T) {
	for _, tc := range []struct {
		name   string
		render func() (string, error)
	}{
		{"agent-config-master", func() (string, error) { return AgentConfigFile(agentMaster(), nil) }},
		{"agent-config-worker", func() (string, error) { return AgentConfigFile(agentWorker(), nil) }},
		{"agent-unit", func() (string, error) { return AgentUnit(), nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.render()
			if err != nil {
				t.Fatal(err)
			}
			golden(t, tc.name, got)
			if !strings.HasPrefix(got, ManagedMarker) {
				t.Errorf("%s does not start with the managed marker", tc.name)
			}
		})
	}
}

// The rendered config is what the agent loads: it must pass the agent's own
// strict loader and validation, or the unit would crash-loop.
func TestAgentConfigLoadsInTheAgent(t *testing.T) {
	for _, p := range []AgentParams{agentMaster(), agentWorker()} {
		got, err := AgentConfigFile(p, nil)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "agent.yaml")
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		c, err := agent.LoadConfig(path)
		if err != nil {
			t.Fatalf("%s: agent refuses the rendered config: %v", p.NodeName, err)
		}
		if c.NodeName != p.NodeName || c.Role != p.Role || c.Kubeconfig != AgentKubeconfig {
			t.Fatalf("loaded %+v", c)
		}
	}
}

// Install owns the facts, the operator the policy: a re-render keeps what
// an operator set (report-only, a disabled check, a threshold) and replaces
// facts that drifted, and re-rendering its own output changes nothing.
func TestAgentConfigKeepsOperatorPolicy(t *testing.T) {
	first, err := AgentConfigFile(agentWorker(), nil)
	if err != nil {
		t.Fatal(err)
	}
	again, err := AgentConfigFile(agentWorker(), []byte(first))
	if err != nil || again != first {
		t.Fatalf("re-render of its own output differs (err %v):\n%s", err, again)
	}
	edited := strings.NewReplacer(
		"mode: repair", "mode: report-only",
		"diskPercent: 85", "diskPercent: 90",
		"nodeName: worker1", "nodeName: somebody-else",
		"vip: 10.10.0.100", "vip: 10.10.0.99",
	).Replace(first) + "repairs:\n  restart-kubelet: repair\ndisabled:\n  - clock\n"
	got, err := AgentConfigFile(agentWorker(), []byte(edited))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"mode: report-only", "diskPercent: 90", "restart-kubelet: repair", "- clock", "nodeName: worker1", "vip: 10.10.0.100"} {
		if !strings.Contains(got, want) {
			t.Errorf("re-rendered config lacks %q:\n%s", want, got)
		}
	}
	for _, gone := range []string{"somebody-else", "10.10.0.99"} {
		if strings.Contains(got, gone) {
			t.Errorf("re-rendered config kept the drifted fact %q", gone)
		}
	}
}

func TestAgentConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		p       AgentParams
		current string
		want    []string
	}{
		{"no role", func() AgentParams { p := agentWorker(); p.Role = ""; return p }(), "", []string{`role ""`}},
		{"no DNS", func() AgentParams { p := agentWorker(); p.ClusterDNS = ""; return p }(), "", []string{"cluster DNS"}},
		{"misspelt key", agentWorker(), "mdoe: report-only\n", []string{"/etc/kubewright/agent.yaml on worker1", "field mdoe not found", "fix it or remove it"}},
		{"bad mode", agentWorker(), "mode: fix-it\n", []string{"/etc/kubewright/agent.yaml on worker1: mode is \"fix-it\"", "remove it"}},
		{"bad duration", agentWorker(), "interval: soon\n", []string{`"soon" is not a duration`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := AgentConfigFile(tc.p, []byte(tc.current))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err = %v, want it to contain %q", err, w)
				}
			}
		})
	}
}
