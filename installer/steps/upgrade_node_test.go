package steps

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/kubewright/kubewright/installer/engine"
	"github.com/kubewright/kubewright/installer/steps/stepkit/stepkittest"
)

// upgradeAPI is a fake API with node w1 on the old release, an app pod
// guarded by a budget that refuses its first refusals evictions, and a
// DaemonSet pod a drain leaves alone.
type upgradeAPI struct {
	cs      *fake.Clientset
	evicted []string
}

func newUpgradeAPI(t *testing.T, refusals int, mod func(*corev1.Node)) *upgradeAPI {
	t.Helper()
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "w1"}, Status: corev1.NodeStatus{
		NodeInfo:   corev1.NodeSystemInfo{KubeletVersion: "v1.36.3"},
		Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
	}}
	if mod != nil {
		mod(node)
	}
	app := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "default"}, Spec: corev1.PodSpec{NodeName: "w1"}, Status: corev1.PodStatus{Phase: corev1.PodRunning}}
	ds := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "flannel-x", Namespace: "kube-flannel", OwnerReferences: []metav1.OwnerReference{{Kind: "DaemonSet", Name: "flannel"}}}, Spec: corev1.PodSpec{NodeName: "w1"}, Status: corev1.PodStatus{Phase: corev1.PodRunning}}
	a := &upgradeAPI{cs: fake.NewClientset(node, app, ds)}
	a.cs.PrependReactor("create", "pods", func(act k8stesting.Action) (bool, runtime.Object, error) {
		ca, ok := act.(k8stesting.CreateAction)
		if !ok || act.GetSubresource() != "eviction" {
			return false, nil, nil
		}
		name := ca.GetObject().(metav1.Object).GetName()
		if refusals > 0 {
			refusals--
			return true, nil, apierrors.NewTooManyRequests("Cannot evict pod as it would violate the pod's disruption budget.", 1)
		}
		a.evicted = append(a.evicted, name)
		return true, nil, a.cs.Tracker().Delete(schema.GroupVersionResource{Version: "v1", Resource: "pods"}, act.GetNamespace(), name)
	})
	return a
}

func (a *upgradeAPI) client(context.Context, *engine.Target) (kubernetes.Interface, error) {
	return a.cs, nil
}

func (a *upgradeAPI) node(t *testing.T) *corev1.Node {
	t.Helper()
	n, err := a.cs.CoreV1().Nodes().Get(context.Background(), "w1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// setKubelet plays the restarted kubelet reporting its new release.
func (a *upgradeAPI) setKubelet(t *testing.T, v string) {
	t.Helper()
	n := a.node(t)
	n.Status.NodeInfo.KubeletVersion = v
	if _, err := a.cs.CoreV1().Nodes().UpdateStatus(context.Background(), n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// upgradeTarget is w1 with the old release's node binaries on disk and the
// new release (v1.37.2) as the run's artifacts.
func upgradeTarget(t *testing.T) (*engine.Target, string) {
	t.Helper()
	f := newCPFixture(t, cpInventory)
	tg, _, root := f.nodeTarget(t, "w1")
	for _, b := range nodeBinaryNames {
		stepkittest.WriteFile(t, root, "/usr/local/bin/"+b, b+" v1.36.3\n", 0o755)
	}
	tg.Shared.Set(SharedDrainTimeout, 5*time.Second)
	return tg, root
}

func planOf(t *testing.T, s engine.Step, tg *engine.Target) []engine.Change {
	t.Helper()
	plan, err := s.Plan(context.Background(), tg)
	if err != nil {
		t.Fatalf("%s plan: %v", s.Name(), err)
	}
	return plan
}

func apply(t *testing.T, s engine.Step, tg *engine.Target, plan []engine.Change) {
	t.Helper()
	if err := s.Apply(context.Background(), tg, plan); err != nil {
		t.Fatalf("%s apply: %v", s.Name(), err)
	}
}

func TestUpgradeOneWorkerThenEveryStepPlansNothing(t *testing.T) {
	ctx := context.Background()
	tg, _ := upgradeTarget(t)
	api := newUpgradeAPI(t, 2, nil)
	steps := []engine.Step{
		Cordon{Client: api.client},
		Drain{Client: api.client, Interval: 10 * time.Millisecond},
		NodeBinaries{},
		WaitNodeVersion{Client: api.client, Timeout: 5 * time.Second, Poll: 10 * time.Millisecond},
		Uncordon{Client: api.client},
	}
	cordon, drain, bins, wait, uncordon := steps[0], steps[1], steps[2], steps[3], steps[4]

	plan := planOf(t, cordon, tg)
	if len(plan) != 1 || plan[0].Action != "cordon" || !strings.Contains(plan[0].Detail, "kubelet v1.36.3 -> v1.37.2") || !strings.Contains(plan[0].Detail, "kubelet kube-proxy crictl") {
		t.Fatalf("cordon plan = %v", plan)
	}
	apply(t, cordon, tg, plan)
	if n := api.node(t); !n.Spec.Unschedulable || n.Annotations[AnnotationUpgradeCordoned] != "v1.37.2" {
		t.Fatalf("after cordon: unschedulable %v, annotations %v", n.Spec.Unschedulable, n.Annotations)
	}
	if p := planOf(t, cordon, tg); len(p) != 0 {
		t.Fatalf("cordon plans again on a cordoned node: %v", p)
	}

	plan = planOf(t, drain, tg)
	if len(plan) != 1 || plan[0].String() != "evict pod default/app" {
		t.Fatalf("drain plan = %v", plan)
	}
	apply(t, drain, tg, plan) // the budget refuses twice, then allows
	if strings.Join(api.evicted, ",") != "app" {
		t.Fatalf("evicted %v", api.evicted)
	}

	apply(t, bins, tg, planOf(t, bins, tg))
	plan = planOf(t, wait, tg)
	if len(plan) != 1 || !strings.Contains(plan[0].Detail, "kubelet reports v1.36.3, want v1.37.2") {
		t.Fatalf("wait plan = %v", plan)
	}
	done := make(chan error, 1)
	go func() { done <- wait.Apply(ctx, tg, plan) }()
	time.Sleep(50 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("wait-node-version returned before the node reported the release: %v", err)
	default:
	}
	api.setKubelet(t, "v1.37.2")
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	plan = planOf(t, uncordon, tg)
	if len(plan) != 1 || plan[0].Action != "uncordon" {
		t.Fatalf("uncordon plan = %v", plan)
	}
	apply(t, uncordon, tg, plan)
	if n := api.node(t); n.Spec.Unschedulable || n.Annotations[AnnotationUpgradeCordoned] != "" {
		t.Fatalf("after uncordon: unschedulable %v, annotations %v", n.Spec.Unschedulable, n.Annotations)
	}
	// The resume property: a node at the release plans nothing anywhere.
	for _, s := range steps {
		if p := planOf(t, s, tg); len(p) != 0 {
			t.Errorf("%s plans %v on an upgraded node", s.Name(), p)
		}
	}
}

// A run cut after the kubelet came back but before the uncordon: the next
// run neither cordons nor drains the node again, and does uncordon it.
func TestUpgradeResumeUncordonsANodeLeftCordoned(t *testing.T) {
	tg, root := upgradeTarget(t)
	for _, b := range nodeBinaryNames {
		stepkittest.WriteFile(t, root, "/usr/local/bin/"+b, "#!/bin/sh\necho "+b+"\n", 0o755) // the new release's
	}
	api := newUpgradeAPI(t, 0, func(n *corev1.Node) {
		n.Status.NodeInfo.KubeletVersion = "v1.37.2"
		n.Spec.Unschedulable = true
		n.Annotations = map[string]string{AnnotationUpgradeCordoned: "v1.37.2"}
	})
	if p := planOf(t, Cordon{Client: api.client}, tg); len(p) != 0 {
		t.Errorf("cordon plan = %v", p)
	}
	if p := planOf(t, Drain{Client: api.client}, tg); len(p) != 0 {
		t.Errorf("drain plan = %v (the app pod must not be evicted again)", p)
	}
	if p := planOf(t, WaitNodeVersion{Client: api.client}, tg); len(p) != 0 {
		t.Errorf("wait plan = %v", p)
	}
	plan := planOf(t, Uncordon{Client: api.client}, tg)
	if len(plan) != 1 {
		t.Fatalf("uncordon plan = %v", plan)
	}
	apply(t, Uncordon{Client: api.client}, tg, plan)
	if api.node(t).Spec.Unschedulable {
		t.Fatal("node left cordoned")
	}
}

// A node an operator cordoned is upgraded but stays cordoned.
func TestUpgradeLeavesAnOperatorsCordon(t *testing.T) {
	tg, _ := upgradeTarget(t)
	api := newUpgradeAPI(t, 0, func(n *corev1.Node) { n.Spec.Unschedulable = true })
	if p := planOf(t, Cordon{Client: api.client}, tg); len(p) != 0 {
		t.Errorf("cordon plan = %v", p)
	}
	if p := planOf(t, Uncordon{Client: api.client}, tg); len(p) != 0 {
		t.Errorf("uncordon plan = %v", p)
	}
	apply(t, Uncordon{Client: api.client}, tg, []engine.Change{{Action: "uncordon", Object: "node w1"}})
	if !api.node(t).Spec.Unschedulable {
		t.Fatal("uncordon removed an operator's cordon")
	}
}

// A drain that cannot finish gives the node back and says so.
func TestUpgradeDrainTimeoutUncordons(t *testing.T) {
	tg, _ := upgradeTarget(t)
	tg.Shared.Set(SharedDrainTimeout, 200*time.Millisecond)
	api := newUpgradeAPI(t, 1<<30, nil)
	cordon := Cordon{Client: api.client}
	apply(t, cordon, tg, planOf(t, cordon, tg))
	d := Drain{Client: api.client, Interval: 10 * time.Millisecond}
	err := d.Apply(context.Background(), tg, planOf(t, d, tg))
	if err == nil || !strings.Contains(err.Error(), "default/app") || !strings.Contains(err.Error(), "disruption budget") ||
		!strings.Contains(err.Error(), "w1 was uncordoned") || !strings.Contains(err.Error(), "--drain-timeout") {
		t.Fatalf("err = %v", err)
	}
	if n := api.node(t); n.Spec.Unschedulable || n.Annotations[AnnotationUpgradeCordoned] != "" {
		t.Fatalf("after a failed drain: unschedulable %v, annotations %v", n.Spec.Unschedulable, n.Annotations)
	}
}

func TestWaitNodeVersionTimesOutNamingWhatIsMissing(t *testing.T) {
	tg, _ := upgradeTarget(t)
	api := newUpgradeAPI(t, 0, nil)
	w := WaitNodeVersion{Client: api.client, Timeout: 100 * time.Millisecond, Poll: 10 * time.Millisecond}
	err := w.Apply(context.Background(), tg, nil)
	if err == nil || !strings.Contains(err.Error(), "kubelet reports v1.36.3, want v1.37.2") {
		t.Fatalf("err = %v", err)
	}
	// At the release but not Ready is not done either.
	api.setKubelet(t, "v1.37.2")
	n := api.node(t)
	n.Status.Conditions[0].Status = corev1.ConditionFalse
	if _, err := api.cs.CoreV1().Nodes().UpdateStatus(context.Background(), n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if p := planOf(t, w, tg); len(p) != 1 || !strings.Contains(p[0].Detail, "not Ready") {
		t.Fatalf("plan = %v", p)
	}
}
