package kube

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
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

func pod(name, node string, mod func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}, Spec: corev1.PodSpec{NodeName: node}, Status: corev1.PodStatus{Phase: corev1.PodRunning}}
	if mod != nil {
		mod(p)
	}
	return p
}

// evictingClient is a fake clientset whose evictions delete the pod, unless
// the pod is in refuse (a PodDisruptionBudget saying no) for the first
// refusals attempts.
func evictingClient(refuse map[string]int, objs ...runtime.Object) (*fake.Clientset, *[]string) {
	cs := fake.NewSimpleClientset(objs...)
	var evicted []string
	cs.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		ca, ok := a.(k8stesting.CreateAction)
		if !ok || a.GetSubresource() != "eviction" {
			return false, nil, nil
		}
		name := ca.GetObject().(metav1.Object).GetName()
		if refuse[name] > 0 {
			refuse[name]--
			return true, nil, apierrors.NewTooManyRequests("Cannot evict pod as it would violate the pod's disruption budget.", 1)
		}
		evicted = append(evicted, name)
		err := cs.Tracker().Delete(schema.GroupVersionResource{Version: "v1", Resource: "pods"}, a.GetNamespace(), name)
		return true, nil, err
	})
	return cs, &evicted
}

func TestDrainEvictsAndRespectsBudgets(t *testing.T) {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "w1"}}
	cs, evicted := evictingClient(map[string]int{"guarded": 2},
		node,
		pod("app", "w1", nil),
		pod("guarded", "w1", nil),
		pod("elsewhere", "w2", nil),
		pod("ds", "w1", func(p *corev1.Pod) { p.OwnerReferences = []metav1.OwnerReference{{Kind: "DaemonSet", Name: "flannel"}} }),
		pod("static", "w1", func(p *corev1.Pod) { p.Annotations = map[string]string{corev1.MirrorPodAnnotationKey: "x"} }),
		pod("done", "w1", func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded }),
	)
	if err := Drain(context.Background(), cs, "w1", DrainOptions{Timeout: 5 * time.Second, Interval: 10 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(*evicted, ","); got != "app,guarded" {
		t.Errorf("evicted %s, want app then guarded (after its budget allowed it)", got)
	}
	n, _ := cs.CoreV1().Nodes().Get(context.Background(), "w1", metav1.GetOptions{})
	if !n.Spec.Unschedulable {
		t.Error("node not cordoned")
	}
	if _, err := cs.CoreV1().Pods("default").Get(context.Background(), "elsewhere", metav1.GetOptions{}); err != nil {
		t.Errorf("a pod on another node was evicted: %v", err)
	}
}

func TestDrainTimesOutNamingThePod(t *testing.T) {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "w1"}}
	cs, _ := evictingClient(map[string]int{"guarded": 1 << 30}, node, pod("guarded", "w1", nil))
	err := Drain(context.Background(), cs, "w1", DrainOptions{Timeout: 200 * time.Millisecond, Interval: 10 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "default/guarded") || !strings.Contains(err.Error(), "disruption budget") || !strings.Contains(err.Error(), "left cordoned") {
		t.Fatalf("err %v", err)
	}
}

func TestDrainablePodsAreWhatDrainEvicts(t *testing.T) {
	cs := fake.NewClientset(
		pod("app", "w1", nil),
		pod("elsewhere", "w2", nil),
		pod("ds", "w1", func(p *corev1.Pod) { p.OwnerReferences = []metav1.OwnerReference{{Kind: "DaemonSet", Name: "flannel"}} }),
		pod("static", "w1", func(p *corev1.Pod) { p.Annotations = map[string]string{corev1.MirrorPodAnnotationKey: "x"} }),
		pod("done", "w1", func(p *corev1.Pod) { p.Status.Phase = corev1.PodFailed }),
	)
	got, err := DrainablePods(context.Background(), cs, "w1")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Name != "app" {
		t.Fatalf("drainable = %v, want only app", got)
	}
}
