package playbooks_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/kubewright/kubewright/installer/engine"
	"github.com/kubewright/kubewright/playbooks"
)

// Every shipped playbook must parse; step names are checked against the real
// registry where the CLI wires it (cmd/kubewright).
func TestEmbeddedPlaybooksParse(t *testing.T) {
	names := playbooks.Names()
	if !slices.Contains(names, "check") {
		t.Fatalf("embedded playbooks %v lack check", names)
	}
	for _, n := range names {
		t.Run(n, func(t *testing.T) {
			data, err := playbooks.Get(n)
			if err != nil {
				t.Fatal(err)
			}
			pb, err := engine.LoadPlaybook("embedded:"+n, data)
			if err != nil {
				t.Fatal(err)
			}
			if pb.Name != n {
				t.Errorf("playbook %s is named %q inside; names must match for journals", n, pb.Name)
			}
		})
	}
}

func TestGetUnknown(t *testing.T) {
	_, err := playbooks.Get("instal")
	if err == nil || !strings.Contains(err.Error(), `no embedded playbook "instal" (have: `) || !strings.Contains(err.Error(), "install") {
		t.Fatalf("err = %v", err)
	}
}

// The upgrade's order is its safety: etcd-only members, then masters one at
// a time, then the other nodes, never a failure tolerated; and every node
// is cordoned first and uncordoned last, workers drained before anything
// on them changes.
func TestUpgradePlaybookOrder(t *testing.T) {
	data, err := playbooks.Get("upgrade")
	if err != nil {
		t.Fatal(err)
	}
	pb, err := engine.LoadPlaybook("embedded:upgrade", data)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	plays := map[string]engine.Play{}
	for _, p := range pb.Plays {
		names = append(names, p.Name)
		plays[p.Name] = p
	}
	if got := strings.Join(names, ","); got != "etcd members,masters,workers,add-ons" {
		t.Fatalf("plays = %s", got)
	}
	stepNames := func(p engine.Play) []string {
		var out []string
		for _, s := range p.Steps {
			out = append(out, s.Name)
		}
		return out
	}
	for _, name := range []string{"etcd members", "masters", "workers"} {
		p := plays[name]
		if p.Serial.Count != 1 || p.Serial.Percent != 0 {
			t.Errorf("play %s: serial %s, want 1", name, p.Serial)
		}
		if p.MaxFailPercentage == nil || *p.MaxFailPercentage != 0 {
			t.Errorf("play %s: max_fail_percentage must be 0", name)
		}
	}
	if plays["masters"].Hosts != "masters" {
		t.Errorf("masters play selects %q", plays["masters"].Hosts)
	}
	for _, name := range []string{"masters", "workers"} {
		s := stepNames(plays[name])
		if s[0] != "cordon" || s[len(s)-1] != "uncordon" || s[len(s)-2] != "wait-node-version" || s[len(s)-3] != "kubelet" {
			t.Errorf("play %s steps %v: want cordon first, then kubelet, wait-node-version, uncordon last", name, s)
		}
	}
	m := stepNames(plays["masters"])
	if slices.Contains(m, "drain") {
		t.Error("masters are cordoned, not drained")
	}
	if i, j := slices.Index(m, "binaries"), slices.Index(m, "control-plane"); i < 0 || j < i || slices.Index(m, "etcd-health") > j {
		t.Errorf("masters steps %v: binaries, then etcd and its health, then control-plane", m)
	}
	if w := stepNames(plays["workers"]); w[1] != "drain" {
		t.Errorf("workers steps %v: drain right after cordon", w)
	}
}
