package steps

import (
	"testing"

	"github.com/kubewright/kubewright/installer/engine"
	"github.com/kubewright/kubewright/playbooks"
)

// Every embedded playbook must only use registered steps with valid
// parameters: a typo there would otherwise surface on an operator's cluster.
func TestEmbeddedPlaybooksValidate(t *testing.T) {
	reg := engine.NewRegistry()
	Register(reg)
	names := playbooks.Names()
	if len(names) < 2 {
		t.Fatalf("embedded playbooks: %v", names)
	}
	for _, n := range names {
		t.Run(n, func(t *testing.T) {
			pb, err := engine.ResolvePlaybook(n)
			if err != nil {
				t.Fatal(err)
			}
			if err := pb.Validate(reg); err != nil {
				t.Fatal(err)
			}
		})
	}
}
