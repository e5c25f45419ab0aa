//go:build e2e

// End-to-end test of `kubewright upgrade` (issue 9) on 3 masters and 2
// workers: install the older release (built from Go modules by `make
// artifacts-upgrade`), then upgrade to the current one while a client writes
// through the VIP every 200 ms and a Deployment guarded by a
// PodDisruptionBudget (minAvailable 1) runs on the workers. The operator's
// process is killed once the second master is done; the second run must
// finish without redoing those two.
package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/kubewright/kubewright/installer/kube"
)

const (
	upgradeTimeout = 40 * time.Minute
	upgradeFrom    = "v1.36.3"
	upgradeTo      = "v1.37.2"
)

// upgradeInventory is the lab's inventory pointed at arts, for version.
func upgradeInventory(t *testing.T, labInv, arts, version string) string {
	t.Helper()
	b, err := os.ReadFile(labInv)
	if err != nil {
		t.Fatal(err)
	}
	inv := regexp.MustCompile(`(?m)^(\s+)path: .*$`).ReplaceAllString(string(b), "${1}path: "+arts)
	if !strings.Contains(inv, "\nspec:\n") || strings.Contains(inv, "\n  kubernetes:") {
		t.Fatalf("unexpected lab inventory layout:\n%s", inv)
	}
	inv = strings.Replace(inv, "\nspec:\n", "\nspec:\n  kubernetes:\n    version: "+version+"\n", 1)
	p := filepath.Join(t.TempDir(), "inventory-"+version+".yaml")
	if err := os.WriteFile(p, []byte(inv), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// pdbWatch samples the PodDisruptionBudget's healthy pods every second.
type pdbWatch struct {
	mu         sync.Mutex
	samples    int
	minHealthy int32
	zeroAt     []time.Time
	stop, done chan struct{}
}

func watchPDB(ctx context.Context, cs kubernetes.Interface, ns, name string) *pdbWatch {
	w := &pdbWatch{minHealthy: -1, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			select {
			case <-w.stop:
				return
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
			gctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			pdb, err := cs.PolicyV1().PodDisruptionBudgets(ns).Get(gctx, name, metav1.GetOptions{})
			cancel()
			if err != nil {
				continue // the API between two apiservers: not the workload's fault
			}
			w.mu.Lock()
			w.samples++
			h := pdb.Status.CurrentHealthy
			if w.minHealthy < 0 || h < w.minHealthy {
				w.minHealthy = h
			}
			if h == 0 {
				w.zeroAt = append(w.zeroAt, time.Now())
			}
			w.mu.Unlock()
		}
	}()
	return w
}

func (w *pdbWatch) finish() (samples int, minHealthy int32, zeroAt []time.Time) {
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.samples, w.minHealthy, w.zeroAt
}

// guardedApp runs two testapp replicas on the workers under a PDB of
// minAvailable 1, and waits until both are ready.
func guardedApp(t *testing.T, ctx context.Context, cs kubernetes.Interface, ns string) {
	t.Helper()
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{"app": "guarded"}
	replicas := int32(2)
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "guarded"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					// One replica per worker while both can take one.
					TopologySpreadConstraints: []corev1.TopologySpreadConstraint{{
						MaxSkew: 1, TopologyKey: "kubernetes.io/hostname", WhenUnsatisfiable: corev1.ScheduleAnyway,
						LabelSelector: &metav1.LabelSelector{MatchLabels: labels},
					}},
					Containers: []corev1.Container{{
						Name: "app", Image: testappImage, ImagePullPolicy: corev1.PullNever,
						Args:           []string{"serve", "-addr", ":8080"},
						ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(8080)}}, PeriodSeconds: 1},
					}},
				},
			},
		},
	}
	if _, err := cs.AppsV1().Deployments(ns).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	minAvailable := intstr.FromInt32(1)
	pdb := &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: "guarded"},
		Spec:       policyv1.PodDisruptionBudgetSpec{MinAvailable: &minAvailable, Selector: &metav1.LabelSelector{MatchLabels: labels}},
	}
	if _, err := cs.PolicyV1().PodDisruptionBudgets(ns).Create(ctx, pdb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		d, err := cs.AppsV1().Deployments(ns).Get(ctx, "guarded", metav1.GetOptions{})
		if err == nil && d.Status.ReadyReplicas == 2 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the guarded Deployment is not ready after 3m: %+v %v", d.Status, err)
		}
		time.Sleep(2 * time.Second)
	}
}

// kubeletVersions is node -> the kubelet version it reports.
func kubeletVersions(t *testing.T, ctx context.Context, cs kubernetes.Interface) map[string]string {
	t.Helper()
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, n := range nodes.Items {
		out[n.Name] = n.Status.NodeInfo.KubeletVersion
		if n.Spec.Unschedulable {
			out[n.Name] += " (cordoned)"
		}
	}
	return out
}

func TestUpgrade(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), upgradeTimeout)
	defer cancel()
	oldArts := nodesRepoPath(t, "_output/artifacts-"+upgradeFrom, "KUBEWRIGHT_UPGRADE_ARTIFACTS_DIR")
	newArts := nodesRepoPath(t, "_output/artifacts", "KUBEWRIGHT_ARTIFACTS_DIR")
	m, l := newLab(t, ctx, "upg", 3, 2)
	stateDir, clusterDir, hosts := kubewrightLab(t, ctx, m, l, "etcd", "kube-apiserver", "kubelet")
	var masters []string
	for _, ms := range l.Machines {
		if strings.Contains(ms.Name, "master") {
			masters = append(masters, ms.Name)
		}
	}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		if path, b := newestJournal(t, clusterDir); len(b) > 0 {
			t.Logf("==== newest journal %s\n%s", path, b)
		}
	})

	oldInv := upgradeInventory(t, l.Inventory, oldArts, upgradeFrom)
	newInv := upgradeInventory(t, l.Inventory, newArts, upgradeTo)
	start := time.Now()
	if out, code := nodesKW(t, ctx, stateDir, "install", "-i", oldInv); code != 0 {
		t.Fatalf("install %s: exit %d:\n%s", upgradeFrom, code, out)
	}
	t.Logf("install of %s took %s", upgradeFrom, time.Since(start).Round(time.Second))
	adminConf := filepath.Join(clusterDir, "pki", "admin.conf")
	b, err := os.ReadFile(adminConf)
	if err != nil {
		t.Fatal(err)
	}
	kc, err := kube.NewClient(b)
	if err != nil {
		t.Fatal(err)
	}
	cs := kc.Clientset
	for node, v := range kubeletVersions(t, ctx, cs) {
		if v != upgradeFrom {
			t.Fatalf("before the upgrade %s reports %s, want %s", node, v, upgradeFrom)
		}
	}
	guardedApp(t, ctx, cs, "e2e-upgrade")

	writes := startWriter(t, ctx, adminConf, "upgrade", 200*time.Millisecond)
	pdb := watchPDB(ctx, cs, "e2e-upgrade", "guarded")
	pdbDone := false
	t.Cleanup(func() {
		if !pdbDone {
			pdb.finish()
		}
	})
	upStart := time.Now()

	// First run: killed (SIGKILL, no chance to clean up) as soon as the
	// second master is done.
	var done []string
	killed := false
	_, stderr, err := kwStream(t, ctx, stateDir, func(ev kwEvent, cmd *exec.Cmd) {
		if ev.Type == "host_done" && ev.Play == "masters" && !killed {
			done = append(done, ev.Host)
			if len(done) == 2 {
				killed = true
				if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
					t.Errorf("kill the upgrade: %v", err)
				}
			}
		}
	}, "upgrade", "-i", newInv, "--to", upgradeTo)
	if !killed {
		t.Fatalf("the upgrade ended (%v) before a second master was done (done: %v):\n%s", err, done, stderr)
	}
	t.Logf("upgrade killed after %s, with %v done", time.Since(upStart).Round(time.Second), done)
	versions := kubeletVersions(t, ctx, cs)
	for _, n := range masters {
		want := upgradeFrom
		if n == done[0] || n == done[1] {
			want = upgradeTo
		}
		if versions[n] != want {
			t.Errorf("after the cut run %s reports %q, want %s", n, versions[n], want)
		}
	}

	// Second run: finishes, and the two masters done before plan nothing.
	out, code := nodesKW(t, ctx, stateDir, "upgrade", "-i", newInv, "--to", upgradeTo)
	if code != 0 {
		t.Fatalf("upgrade after the kill: exit %d:\n%s", code, out)
	}
	t.Logf("upgrade done %s after it started (both runs)", time.Since(upStart).Round(time.Second))
	for host, changes := range journalChanges(t, clusterDir, 5) {
		if host != done[0] && host != done[1] {
			continue
		}
		var redone []string
		for _, c := range changes {
			// The add-ons are applied once at the end, from the first
			// master: the cut run never reached them.
			if !strings.HasPrefix(c, "addons: ") {
				redone = append(redone, c)
			}
		}
		if len(redone) > 0 {
			t.Errorf("the second run redid %s, done by the first: %v", host, redone)
		}
	}

	time.Sleep(3 * time.Second)
	writes.finish()
	samples, minHealthy, zeroAt := pdb.finish()
	pdbDone = true

	t.Run("every node runs the new release, none left cordoned", func(t *testing.T) {
		for node, v := range kubeletVersions(t, ctx, cs) {
			if v != upgradeTo {
				t.Errorf("%s reports %q, want %s", node, v, upgradeTo)
			}
		}
		for _, n := range masters {
			out, err := run(ctx, hosts[n], "kube-apiserver --version; kube-controller-manager --version; kube-scheduler --version")
			if err != nil || strings.Count(out, "Kubernetes "+upgradeTo) != 3 {
				t.Errorf("%s control plane binaries: %q %v", n, out, err)
			}
		}
		sv, err := cs.Discovery().ServerVersion()
		if err != nil || sv.GitVersion != upgradeTo {
			t.Errorf("API server version through the VIP: %v %v", sv, err)
		}
	})
	t.Run("no acknowledged write lost; the API stayed up", func(t *testing.T) {
		gap, at := writes.longestGap()
		t.Logf("longest gap between acknowledged writes through the VIP during the upgrade: %s (ended %s after the start); %s",
			gap.Round(10*time.Millisecond), at.Sub(upStart).Round(time.Second), writes.summary())
		if gap > 30*time.Second {
			t.Errorf("writes through the VIP stopped for %s during the upgrade", gap)
		}
		writes.checkNoneLost(t, ctx)
	})
	t.Run("the PodDisruptionBudget's pods kept running", func(t *testing.T) {
		t.Logf("%d samples of the PDB, fewest healthy pods %d", samples, minHealthy)
		if samples < 10 {
			t.Fatalf("only %d samples of the PDB", samples)
		}
		if minHealthy < 1 {
			t.Errorf("no healthy guarded pod at %d samples (first at %s after the start)", len(zeroAt), zeroAt[0].Sub(upStart).Round(time.Second))
		}
	})
	t.Run("etcd has three healthy members", func(t *testing.T) {
		out, err := run(ctx, hosts[masters[0]], "etcdctl --endpoints=https://127.0.0.1:2379 --cacert=/etc/kubernetes/pki/etcd/ca.crt "+
			"--cert=/etc/kubernetes/pki/apiserver-etcd-client.crt --key=/etc/kubernetes/pki/apiserver-etcd-client.key "+
			"--command-timeout=5s endpoint health --cluster")
		if err != nil || strings.Count(out, "is healthy") != 3 {
			t.Errorf("etcd after the upgrade: %s %v", out, err)
		}
	})
	t.Run("upgrading again changes nothing", func(t *testing.T) {
		out, code := nodesKW(t, ctx, stateDir, "upgrade", "-i", newInv, "--to", upgradeTo)
		if code != 0 || !strings.Contains(out, "nothing to upgrade") {
			t.Errorf("upgrade of an upgraded cluster: exit %d:\n%s", code, out)
		}
	})
}
