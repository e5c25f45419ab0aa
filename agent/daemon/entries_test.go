package daemon

import (
	"slices"
	"strings"
	"testing"

	"github.com/kubewright/kubewright/agent"
)

func ladders(t *testing.T, cfg *agent.Config) map[string]string {
	t.Helper()
	cfg.Defaults()
	es, err := Entries(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, e := range es {
		var rungs []string
		for _, r := range e.Ladder {
			rungs = append(rungs, r.Name()+"/"+string(r.Scope()))
		}
		m[e.Check.Name()] = strings.Join(rungs, ",")
	}
	return m
}

// The repair policy docs/AGENT.md describes: which check gets which rungs,
// in which safety scope.
func TestEntriesPolicy(t *testing.T) {
	worker := ladders(t, &agent.Config{NodeName: "w1", Role: "worker", Peers: []string{"10.0.0.11:10250"}, Endpoints: agent.Endpoints{ClusterDNS: "10.96.0.10"}})
	want := map[string]string{
		"kubelet":      "restart-kubelet/node,restart-containerd-kubelet/node",
		"containerd":   "restart-containerd/node,restart-containerd-kubelet/node",
		"kube-proxy":   "restart-kube-proxy/node",
		"disk":         "prune-images/node",
		"memory":       "",
		"dns":          "",
		"clock":        "",
		"certificates": "",
	}
	if len(worker) != len(want) {
		t.Errorf("worker checks %v, want %v", worker, want)
	}
	for c, l := range want {
		if got, ok := worker[c]; !ok || got != l {
			t.Errorf("worker %s: ladder %q (present %v), want %q", c, got, ok, l)
		}
	}
	master := ladders(t, &agent.Config{NodeName: "m1", Role: "master", Endpoints: agent.Endpoints{
		APIServerReadyz: "https://127.0.0.1:6443/readyz", VIP: "10.0.0.100", VIPInterface: "eth0", HAProxyFrontend: "127.0.0.1:8443",
		APIServers: []string{"10.0.0.11:6443"},
	}})
	for c, l := range map[string]string{
		"certificates": "renew-certificates/control-plane",
		"apiserver":    "restart-kube-apiserver/control-plane",
		"keepalived":   "restart-keepalived/control-plane",
		"haproxy":      "restart-haproxy/control-plane",
		"vip":          "restart-keepalived/control-plane",
	} {
		if got := master[c]; got != l {
			t.Errorf("master %s: ladder %q, want %q", c, got, l)
		}
	}
	if _, ok := master["etcd"]; ok {
		t.Error("a master that is not an etcd member got the etcd check")
	}
	off := ladders(t, &agent.Config{NodeName: "w1", Role: "worker", Disabled: []string{"memory", "kube-proxy"}})
	if _, ok := off["memory"]; ok {
		t.Error("disabled check memory still runs")
	}
	if _, ok := off["kube-proxy"]; ok {
		t.Error("disabled check kube-proxy still runs")
	}
}

func TestEntriesRefusesUnknownNames(t *testing.T) {
	cfg := &agent.Config{NodeName: "w1", Role: "worker", Disabled: []string{"kublet"}, Repairs: map[string]agent.Mode{"restart-kubelet": agent.ModeReportOnly, "reboot": agent.ModeRepair}}
	cfg.Defaults()
	_, err := Entries(cfg)
	if err == nil || !strings.Contains(err.Error(), `disabled: "kublet" is not a check`) || !strings.Contains(err.Error(), `repairs: "reboot" is not a repair`) || strings.Contains(err.Error(), `"restart-kubelet"`) {
		t.Fatalf("error %v", err)
	}
}

// Every name the policy can produce is in the known lists.
func TestKnownNamesCoverThePolicy(t *testing.T) {
	for _, role := range []string{"worker", "master"} {
		cfg := &agent.Config{NodeName: "n", Role: role, Peers: []string{"10.0.0.1:10250"}, Endpoints: agent.Endpoints{ClusterDNS: "10.96.0.10", APIServerReadyz: "https://127.0.0.1:6443/readyz", VIP: "10.0.0.100", HAProxyFrontend: "127.0.0.1:8443"}}
		cfg.Defaults()
		es, err := Entries(cfg)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			if !slices.Contains(checkNamesAll, e.Check.Name()) {
				t.Errorf("check %s missing from checkNamesAll", e.Check.Name())
			}
			for _, r := range e.Ladder {
				if !slices.Contains(repairNamesAll, r.Name()) {
					t.Errorf("repair %s missing from repairNamesAll", r.Name())
				}
			}
		}
	}
}
