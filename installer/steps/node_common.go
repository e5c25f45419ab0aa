package steps

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"

	"k8s.io/client-go/kubernetes"

	"github.com/kubewright/kubewright/installer/artifacts"
	"github.com/kubewright/kubewright/installer/engine"
	"github.com/kubewright/kubewright/installer/inventory"
	"github.com/kubewright/kubewright/installer/kube"
	"github.com/kubewright/kubewright/installer/steps/stepkit"
)

// SharedForce is the engine.SharedData key (a bool) with which the install
// command's --force lets the node steps replace configuration that someone
// other than kubewright wrote (e.g. /etc/containerd/config.toml).
const SharedForce = "force"

// hostRuntime is what decides how the container runtime and kubelet must be
// configured on one host.
type hostRuntime struct {
	// CgroupV2 is true when /sys/fs/cgroup is a pure cgroup2 mount.
	CgroupV2 bool
	// SystemdPID1 is true when systemd is the init system.
	SystemdPID1 bool
	// Container names the container technology the host runs in ("" when
	// none), e.g. systemd-nspawn for lab machines.
	Container string
}

// CgroupDriver is systemd only where systemd owns a unified (v2) hierarchy:
// there it must be the single writer of the cgroup tree. On v1 or hybrid
// hosts (such as the lab's nspawn machines) cgroupfs is what works, and
// kubelet and containerd must agree or pods fail to start.
func (r hostRuntime) CgroupDriver() string {
	if r.CgroupV2 && r.SystemdPID1 {
		return "systemd"
	}
	return "cgroupfs"
}

// detectRuntime asks the host in one command.
func detectRuntime(ctx context.Context, t *engine.Target) (hostRuntime, error) {
	script := fmt.Sprintf(`t=$(stat -fc %%T %s 2>/dev/null || echo unknown); p=$(cat %s 2>/dev/null || echo unknown); v=$(systemd-detect-virt -c 2>/dev/null) || v=none; echo "$t $p $v"`,
		stepkit.Quote(stepkit.HostPath(t, "/sys/fs/cgroup")), stepkit.Quote(stepkit.HostPath(t, "/proc/1/comm")))
	out, err := stepkit.RunAsRoot(ctx, t, script)
	if err != nil {
		return hostRuntime{}, fmt.Errorf("detect cgroup setup on %s: %w", t.Inv.Name, err)
	}
	f := strings.Fields(out)
	if len(f) != 3 {
		return hostRuntime{}, fmt.Errorf("detect cgroup setup on %s: unexpected output %q", t.Inv.Name, out)
	}
	r := hostRuntime{CgroupV2: f[0] == "cgroup2fs", SystemdPID1: f[1] == "systemd"}
	if f[2] != "none" {
		r.Container = f[2]
	}
	return r, nil
}

// CheckNodeArtifacts reports, before any host is touched, what the node steps
// need from the artifacts and the manifest lacks: the kubelet, kube-proxy and
// crictl binaries and a pause image (the sandbox image containerd is pinned
// to). The install command should call it while preparing.
func CheckNodeArtifacts(m *artifacts.Manifest) error {
	var missing []string
	for _, n := range nodeBinaryNames {
		if f, ok := m.File(n); !ok || f.Kind != artifacts.KindBinary {
			missing = append(missing, "binary "+n)
		}
	}
	if _, err := pauseImage(m); err != nil {
		missing = append(missing, err.Error())
	}
	for _, img := range m.Images {
		if f, ok := m.File(img.File); !ok || f.Kind != artifacts.KindImage {
			missing = append(missing, fmt.Sprintf("image %s: file entry %q", img.Name, img.File))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("artifacts for Kubernetes %s lack what nodes need: %s", m.KubernetesVersion, strings.Join(missing, "; "))
	}
	return nil
}

// pauseImage is the manifest image whose file is the pause component.
func pauseImage(m *artifacts.Manifest) (artifacts.Image, error) {
	for _, img := range m.Images {
		if f, ok := m.File(img.File); ok && f.Component == "pause" {
			return img, nil
		}
	}
	return artifacts.Image{}, fmt.Errorf("no pause image (an images: entry whose file has component: pause)")
}

// clientFunc returns a clientset for the cluster. Steps that talk to the API
// take one so tests can hand them a fake; nil means the super-admin
// credential from the state directory, as cluster-bootstrap uses.
type clientFunc func(ctx context.Context, t *engine.Target) (kubernetes.Interface, error)

func (f clientFunc) get(ctx context.Context, t *engine.Target) (kubernetes.Interface, error) {
	if f != nil {
		return f(ctx, t)
	}
	c, _, err := ClusterBootstrap{}.client(t)
	if err != nil {
		return nil, fmt.Errorf("API client for %s: %w", t.Inv.Name, err)
	}
	return c.Clientset, nil
}

// nodeRoleLabelsAndTaints is what every node carries besides its inventory
// labels and taints: masters are labelled and tainted control-plane (as
// kubeadm does), workers labelled worker so `kubectl get nodes` shows roles.
func nodeRoleLabelsAndTaints(h *inventory.Host) (map[string]string, []inventory.Taint) {
	labels := map[string]string{}
	var taints []inventory.Taint
	if h.IsIn(inventory.GroupMasters) {
		labels[kube.LabelControlPlane] = ""
		taints = append(taints, inventory.Taint{Key: kube.TaintControlPlane, Effect: "NoSchedule"})
	}
	if h.IsIn(inventory.GroupWorkers) {
		labels[kube.LabelWorker] = ""
	}
	for k, v := range h.Labels {
		labels[k] = v
	}
	for _, tt := range h.Taints {
		dup := false
		for _, have := range taints {
			dup = dup || (have.Key == tt.Key && have.Effect == tt.Effect)
		}
		if !dup {
			taints = append(taints, tt)
		}
	}
	return labels, taints
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
