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
