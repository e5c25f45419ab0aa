// Package vagrant holds only a test: the Vagrantfile's topology and the
// vagrant inventory must describe the same machines.
package vagrant

import (
	"os"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/kubewright/kubewright/installer/inventory"
)

type topology struct {
	VIP      string `yaml:"vip"`
	Machines []struct {
		Name string `yaml:"name"`
		IP   string `yaml:"ip"`
		Role string `yaml:"role"`
	} `yaml:"machines"`
}

func TestInventoryMatchesTopology(t *testing.T) {
	data, err := os.ReadFile("topology.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var topo topology
	if err := yaml.Unmarshal(data, &topo); err != nil {
		t.Fatal(err)
	}
	c, err := inventory.Load("../inventories/vagrant/inventory.yaml")
	if err != nil {
		t.Fatalf("vagrant inventory does not validate: %v", err)
	}
	if c.Spec.ControlPlaneEndpoint.VIP != topo.VIP {
		t.Errorf("VIP %s in the inventory, %s in topology.yaml", c.Spec.ControlPlaneEndpoint.VIP, topo.VIP)
	}
	if len(c.Spec.Hosts) != len(topo.Machines) {
		t.Fatalf("%d hosts in the inventory, %d machines in topology.yaml", len(c.Spec.Hosts), len(topo.Machines))
	}
	for _, m := range topo.Machines {
		h := c.Host(m.Name)
		if h == nil {
			t.Errorf("machine %s is not in the inventory", m.Name)
			continue
		}
		if h.Address != m.IP {
			t.Errorf("%s: address %s in the inventory, %s in topology.yaml", m.Name, h.Address, m.IP)
		}
		if !h.IsIn(m.Role) {
			t.Errorf("%s: not in group %s", m.Name, m.Role)
		}
	}
}
