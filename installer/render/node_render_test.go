package render

import (
	"strings"
	"testing"
)

func TestNodeGolden(t *testing.T) {
	kp := KubeletParams{NodeName: "worker1", NodeIP: "10.10.0.21", ClusterDNS: "10.96.0.10", ClusterDomain: "cluster.local", CgroupDriver: "cgroupfs", CgroupV1: true, AllowSwap: true}
	master := kp
	master.NodeName, master.NodeIP, master.CgroupDriver, master.CgroupV1, master.AllowSwap = "master1", "10.10.0.11", "systemd", false, false
	master.RegisterTaints = []Taint{{Key: "node-role.kubernetes.io/control-plane", Effect: "NoSchedule"}, {Key: "dedicated", Value: "infra", Effect: "NoExecute"}}
	tests := []struct {
		name   string
		render func() (string, error)
	}{
		{"containerd-lab", func() (string, error) {
			return ContainerdConfigFile(ContainerdParams{SandboxImage: "registry.k8s.io/pause:3.10", RestrictOOMScoreAdj: true})
		}},
		{"containerd-systemd-mirror", func() (string, error) {
			return ContainerdConfigFile(ContainerdParams{SandboxImage: "registry.k8s.io/pause:3.10", SystemdCgroup: true, CNIBinDir: "/opt/cni/bin", RegistryMirror: "https://mirror.example:5000/"})
		}},
		{"crictl", func() (string, error) { return CrictlConfigFile(), nil }},
		{"kubelet-config-worker-cgroupv1", func() (string, error) { return KubeletConfigFile(kp) }},
		{"kubelet-config-master-systemd", func() (string, error) { return KubeletConfigFile(master) }},
		{"kubelet-unit", func() (string, error) { return KubeletUnit(kp) }},
		{"kube-proxy-iptables", func() (string, error) {
			return KubeProxyConfigFile(KubeProxyParams{NodeName: "worker1", Mode: "iptables", ClusterCIDR: "10.244.0.0/16"})
		}},
		{"kube-proxy-ipvs", func() (string, error) {
			return KubeProxyConfigFile(KubeProxyParams{NodeName: "worker1", Mode: "ipvs", ClusterCIDR: "10.244.0.0/16", MetricsPort: 10300})
		}},
		{"kube-proxy-unit", func() (string, error) { return KubeProxyUnit(), nil }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.render()
			if err != nil {
				t.Fatal(err)
			}
			golden(t, tc.name, got)
			if !strings.HasPrefix(got, ManagedMarker) {
				t.Errorf("%s does not start with the managed marker steps look for", tc.name)
			}
		})
	}
}

func TestNodeRenderErrors(t *testing.T) {
	tests := []struct {
		name   string
		render func() (string, error)
		want   string
	}{
		{"no sandbox image", func() (string, error) { return ContainerdConfigFile(ContainerdParams{}) }, "sandbox image is required"},
		{"quote in image", func() (string, error) { return ContainerdConfigFile(ContainerdParams{SandboxImage: `a"b`}) }, "must not contain quotes"},
		{"mirror not a URL", func() (string, error) {
			return ContainerdConfigFile(ContainerdParams{SandboxImage: "p", RegistryMirror: "mirror:5000"})
		}, `registry mirror "mirror:5000" must be an http(s) URL`},
		{"bad cgroup driver", func() (string, error) {
			return KubeletConfigFile(KubeletParams{ClusterDNS: "10.96.0.10", ClusterDomain: "c", CgroupDriver: "cgroupv2"})
		}, `cgroup driver "cgroupv2"`},
		{"no DNS", func() (string, error) { return KubeletConfigFile(KubeletParams{CgroupDriver: "systemd"}) }, "cluster DNS and domain are required"},
		{"unit without IP", func() (string, error) { return KubeletUnit(KubeletParams{NodeName: "n"}) }, "node name and IP are required"},
		{"proxy mode", func() (string, error) {
			return KubeProxyConfigFile(KubeProxyParams{NodeName: "n", Mode: "nftables", ClusterCIDR: "10.0.0.0/8"})
		}, `mode "nftables"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.render()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}
