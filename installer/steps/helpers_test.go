package steps

import "github.com/kubewright/kubewright/installer/inventory"

type inventorySpec = inventory.Spec

// clusterWith returns a small defaulted-looking cluster: m1,m2 masters (and
// etcd), w1 worker, VIP 10.0.0.100:8443 on eth0.
func clusterWith(mod func(*inventory.Spec)) *inventory.Cluster {
	c := &inventory.Cluster{
		APIVersion: inventory.APIVersion, Kind: inventory.Kind,
		Metadata: inventory.Metadata{Name: "t"},
		Spec: inventory.Spec{
			Hosts: []inventory.Host{
				{Name: "m1", Address: "10.0.0.11", InternalAddress: "10.0.0.11", Groups: []string{"etcd", "masters"}},
				{Name: "m2", Address: "10.0.0.12", InternalAddress: "10.0.0.12", Groups: []string{"etcd", "masters"}},
				{Name: "w1", Address: "10.0.0.21", InternalAddress: "10.0.0.21", Groups: []string{"workers"}},
			},
			Groups:               map[string][]string{"masters": {"m1", "m2"}, "etcd": {"m1", "m2"}, "workers": {"w1"}},
			Kubernetes:           inventory.Kubernetes{APIServerPort: 6443, ProxyMode: "iptables"},
			ControlPlaneEndpoint: inventory.ControlPlaneEndpoint{VIP: "10.0.0.100", VIPPrefix: 24, Port: 8443, Interface: "eth0", RouterID: 51},
		},
	}
	if mod != nil {
		mod(&c.Spec)
	}
	return c
}
