//go:build e2e

package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kubewright/kubewright/installer/remote"
)

// leftoversScript lists, independently of the reset step's own probe, what
// of kubewright is still on a host: files, running or enabled units, CNI and
// kube-proxy interfaces, iptables rules, mounts and pod network namespaces.
const leftoversScript = `for p in /etc/kubernetes /var/lib/kubelet /var/lib/kube-proxy /var/lib/etcd /var/lib/kubewright /var/lib/kubewright-agent \
  /etc/kubewright /usr/local/lib/kubewright /var/log/kubernetes /etc/crictl.yaml /etc/sysctl.d/99-kubewright.conf /etc/modules-load.d/kubewright.conf \
  /usr/local/bin/kubelet /usr/local/bin/kube-proxy /usr/local/bin/crictl /usr/local/bin/kubewright-agent \
  /etc/systemd/system/kubelet.service /etc/systemd/system/kube-proxy.service /etc/systemd/system/kubewright-agent.service \
  /etc/cni/net.d/10-flannel.conflist /var/lib/cni /run/flannel /usr/lib/cni/flannel; do [ -e "$p" ] && echo "file $p"; done
grep -qs 'Managed by kubewright' /etc/containerd/config.toml && echo "file /etc/containerd/config.toml"
for u in kubelet kube-proxy kubewright-agent containerd; do
  [ "$(systemctl is-active $u)" = active ] && echo "unit $u active"
  case "$(systemctl is-enabled $u 2>/dev/null)" in enabled*) echo "unit $u enabled";; esac
done
ip -o link show | awk -F': ' '{print $2}' | grep -E '^(cni0|flannel|veth|cali|tunl0|kube-ipvs0)' | sed 's/^/link /'
n=$(iptables-save | grep -cE 'KUBE-|CNI-|FLANNEL'); [ "$n" -gt 0 ] && echo "iptables $n rules"
grep -E ' (/var/lib/kubelet|/run/containerd)' /proc/mounts | awk '{print "mount " $2}'
ip netns list | grep '^cni-' | sed 's/^/netns /'
true`

// checkRemoveAndReadd is issue 9's remove-node/add-node proof on the
// TestNodesJoin cluster: remove-node drains a worker, resets the host (the
// test lists what is left: nothing) and deletes its Node; install with the
// worker still in the inventory joins it again, changing no other host.
func checkRemoveAndReadd(t *testing.T, ctx context.Context, cs kubernetes.Interface, h remote.Host, worker, inv string,
	kw func(ctx context.Context, args ...string) (string, int), readd func(t *testing.T)) {
	t.Run("remove-node drains, resets and deletes the worker", func(t *testing.T) {
		out, code := kw(ctx, "remove-node", "-i", inv, "--yes", worker)
		t.Logf("remove-node:\n%s", out)
		if code != 0 {
			t.Fatalf("remove-node exit %d", code)
		}
		if _, err := cs.CoreV1().Nodes().Get(ctx, worker, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("node %s after remove-node: %v, want not found", worker, err)
		}
		// DaemonSet pods stay through the drain; once the Node is gone the
		// controller-manager's pod garbage collector deletes them (it waits
		// about 40s before it calls a pod orphaned).
		var bound []string
		for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(2 * time.Second) {
			bound = nil
			pods, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + worker})
			if err == nil {
				for _, p := range pods.Items {
					bound = append(bound, p.Namespace+"/"+p.Name)
				}
			}
			if (err == nil && len(bound) == 0) || time.Now().After(deadline) {
				break
			}
		}
		if len(bound) > 0 {
			t.Errorf("pods still bound to the removed node 2m after: %v", bound)
		}
		left, err := h.Exec(ctx, leftoversScript, remote.WithTimeout(time.Minute))
		if err != nil {
			t.Fatalf("list leftovers on %s: %v", worker, err)
		}
		if strings.TrimSpace(left) != "" {
			t.Errorf("reset left on %s:\n%s", worker, left)
		}
	})
	t.Run("install joins the worker again", func(t *testing.T) {
		readd(t)
		waitReady(t, ctx, cs, worker, 3*time.Minute)
	})
}

// checkRepair damages a worker the agent cannot heal on its own (a deleted
// unit file and kubelet config) and runs repair --node for it: the host is
// back, and the journal shows no other host changed.
func checkRepair(t *testing.T, ctx context.Context, cs kubernetes.Interface, h remote.Host, worker, inv string,
	kw func(ctx context.Context, args ...string) (string, int), changed func(t *testing.T) map[string][]string) {
	t.Run("repair --node puts a damaged worker back", func(t *testing.T) {
		if _, err := h.Exec(ctx, "systemctl stop kube-proxy && rm -f /etc/systemd/system/kube-proxy.service /var/lib/kubelet/config.yaml && systemctl daemon-reload", remote.WithTimeout(time.Minute)); err != nil {
			t.Fatalf("damage %s: %v", worker, err)
		}
		out, code := kw(ctx, "repair", "-i", inv, "--node", worker)
		if code != 0 {
			t.Fatalf("repair exit %d:\n%s", code, out)
		}
		// The run's journal lists only the repaired host: no other was
		// even planned.
		for host, changes := range changed(t) {
			real := objectChanges(changes)
			if host == worker && len(real) == 0 {
				t.Errorf("repair changed nothing on %s", worker)
			}
			if host != worker && len(real) > 0 {
				t.Errorf("repair --node %s changed %s: %v", worker, host, real)
			}
		}
		if out, err := h.Exec(ctx, "systemctl is-active kube-proxy kubelet; test -s /var/lib/kubelet/config.yaml && echo config", remote.WithTimeout(time.Minute)); err != nil || out != "active\nactive\nconfig\n" {
			t.Errorf("after repair on %s: %q %v", worker, out, err)
		}
		waitReady(t, ctx, cs, worker, 2*time.Minute)
	})
}

// waitReady waits until node reports Ready.
func waitReady(t *testing.T, ctx context.Context, cs kubernetes.Interface, node string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		n, err := cs.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
		if err == nil {
			for _, c := range n.Status.Conditions {
				if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not Ready after %s (%v)", node, timeout, err)
		}
		time.Sleep(2 * time.Second)
	}
}
