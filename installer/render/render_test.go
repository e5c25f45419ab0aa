package render

import (
	"path/filepath"
	"strings"
	"testing"

	goldenfile "github.com/kubewright/kubewright/internal/golden"
)

// golden compares got with testdata/NAME.golden (rewritten with -update).
func golden(t *testing.T, name, got string) {
	t.Helper()
	goldenfile.AssertString(t, filepath.Join("testdata", name+".golden"), got)
}

var members = []EtcdMember{
	{Name: "master1", Address: "10.10.0.11"},
	{Name: "master2", Address: "10.10.0.12"},
	{Name: "master3", Address: "10.10.0.13"},
}

func TestGolden(t *testing.T) {
	key := []byte(strings.Repeat("k", 32))
	tests := []struct {
		name   string
		render func() (string, error)
	}{
		{"etcd-new", func() (string, error) {
			return EtcdUnit(EtcdParams{Self: members[0], Members: members, ClusterToken: "kubewright-demo"})
		}},
		{"etcd-existing-ipv6", func() (string, error) {
			m := []EtcdMember{{Name: "a", Address: "fd00::1"}, {Name: "b", Address: "fd00::2"}}
			return EtcdUnit(EtcdParams{Self: m[1], Members: m, ClusterToken: "t", InitialState: "existing"})
		}},
		{"apiserver", func() (string, error) {
			return APIServerUnit(APIServerParams{AdvertiseAddress: "10.10.0.11", SecurePort: 6443, EtcdMembers: members, ServiceCIDR: "10.96.0.0/12", ClusterDomain: "cluster.local"})
		}},
		{"controller-manager-flannel", func() (string, error) {
			return ControllerManagerUnit(ControllerManagerParams{ClusterName: "demo", PodCIDR: "10.244.0.0/16", ServiceCIDR: "10.96.0.0/12", AllocateNodeCIDRs: true, NodeCIDRMaskSize: 24})
		}},
		{"scheduler", func() (string, error) { return SchedulerUnit(), nil }},
		{"encryption-config", func() (string, error) { return EncryptionConfigFile("key1", key) }},
		{"keepalived-multicast", func() (string, error) {
			return KeepalivedConfig(KeepalivedParams{HostName: "master1", Address: "10.10.0.11", Interface: "eth0", VIP: "10.10.0.100", VIPPrefix: 24, RouterID: 51, Priority: 150, AuthPass: "s3cret"})
		}},
		{"keepalived-unicast", func() (string, error) {
			return KeepalivedConfig(KeepalivedParams{HostName: "master2", Address: "10.10.0.12", Interface: "eth0", VIP: "10.10.0.100", VIPPrefix: 24, RouterID: 51, Priority: 140, Unicast: true,
				Peers: []KeepalivedPeer{{"master1", "10.10.0.11"}, {"master3", "10.10.0.13"}}})
		}},
		{"haproxy", func() (string, error) {
			return HAProxyConfig(HAProxyParams{BindPort: 8443, APIServerPort: 6443, Backends: []HAProxyBackend{{"master1", "10.10.0.11"}, {"master2", "10.10.0.12"}, {"master3", "10.10.0.13"}}})
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.render()
			if err != nil {
				t.Fatal(err)
			}
			golden(t, tc.name, got)
			again, _ := tc.render()
			if again != got {
				t.Fatal("rendering is not deterministic")
			}
		})
	}
}

func TestRenderErrors(t *testing.T) {
	tests := []struct {
		name string
		err  func() error
		want string
	}{
		{"etcd no address", func() error { _, err := EtcdUnit(EtcdParams{Self: EtcdMember{Name: "a"}}); return err }, "needs a name and an address"},
		{"etcd bad state", func() error {
			_, err := EtcdUnit(EtcdParams{Self: members[0], Members: members, InitialState: "joining"})
			return err
		}, `etcd initial state "joining"`},
		{"apiserver no etcd", func() error {
			_, err := APIServerUnit(APIServerParams{AdvertiseAddress: "1.2.3.4", SecurePort: 6443, ServiceCIDR: "10.96.0.0/12"})
			return err
		}, "etcd members"},
		{"short key", func() error { _, err := EncryptionConfigFile("k", []byte("short")); return err }, "32 bytes, got 5"},
		{"vip not ip", func() error {
			_, err := KeepalivedConfig(KeepalivedParams{VIP: "vip.example", Interface: "eth0", RouterID: 1, Priority: 1})
			return err
		}, `VIP "vip.example" is not an IP`},
		{"router id", func() error {
			_, err := KeepalivedConfig(KeepalivedParams{VIP: "10.0.0.1", Interface: "eth0", RouterID: 256, Priority: 1})
			return err
		}, "virtual router id 256"},
		{"long pass", func() error {
			_, err := KeepalivedConfig(KeepalivedParams{VIP: "10.0.0.1", Interface: "eth0", RouterID: 1, Priority: 1, AuthPass: "123456789"})
			return err
		}, "longer than 8"},
		{"same ports", func() error {
			_, err := HAProxyConfig(HAProxyParams{BindPort: 6443, APIServerPort: 6443, Backends: []HAProxyBackend{{"a", "1.1.1.1"}}})
			return err
		}, "must differ"},
		{"flannel without pod cidr", func() error {
			_, err := ControllerManagerUnit(ControllerManagerParams{ServiceCIDR: "10.96.0.0/12", AllocateNodeCIDRs: true})
			return err
		}, "needs the pod CIDR"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.err()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestKeepalivedCheckScriptProbesReadyz(t *testing.T) {
	s := KeepalivedCheckScript(6443)
	if !strings.Contains(s, "https://127.0.0.1:6443/readyz") || !strings.HasPrefix(s, "#!/bin/sh\n") {
		t.Fatalf("unexpected script:\n%s", s)
	}
}
