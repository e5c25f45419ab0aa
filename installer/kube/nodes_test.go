package kube

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// Several nodes' kube-proxy steps ensure the binding at once: losing the
// create race must not fail the step.
func TestEnsureKubeProxyRBACCreateRace(t *testing.T) {
	ctx := context.Background()
	cs := fake.NewClientset()
	raced := false
	cs.PrependReactor("create", "clusterrolebindings", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if raced {
			return false, nil, nil
		}
		raced = true
		// The other node's create lands first.
		if err := cs.Tracker().Add(KubeProxyRBAC()); err != nil {
			t.Fatal(err)
		}
		return true, nil, apierrors.NewAlreadyExists(schema.GroupResource{Group: "rbac.authorization.k8s.io", Resource: "clusterrolebindings"}, "kubewright:node-proxier")
	})
	changed, err := EnsureKubeProxyRBAC(ctx, cs, false)
	if err != nil || changed {
		t.Fatalf("changed=%v err=%v, want no change and no error after losing the race", changed, err)
	}
	if need, err := EnsureKubeProxyRBAC(ctx, cs, true); err != nil || need {
		t.Fatalf("dry run after: %v %v", need, err)
	}
}

func TestEnsureNodeLabelsAndTaintsRetriesConflicts(t *testing.T) {
	ctx := context.Background()
	cs := fake.NewClientset(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}, Spec: corev1.NodeSpec{Taints: []corev1.Taint{{Key: "k", Value: "old", Effect: corev1.TaintEffectNoSchedule}}}})
	conflicts := 2
	cs.PrependReactor("update", "nodes", func(k8stesting.Action) (bool, runtime.Object, error) {
		if conflicts > 0 {
			conflicts--
			return true, nil, apierrors.NewConflict(schema.GroupResource{Resource: "nodes"}, "n1", nil)
		}
		return false, nil, nil
	})
	changed, err := EnsureNodeLabelsAndTaints(ctx, cs, "n1", map[string]string{"a": "b"}, []corev1.Taint{{Key: "k", Value: "new", Effect: corev1.TaintEffectNoSchedule}})
	if err != nil || len(changed) != 2 {
		t.Fatalf("changed=%v err=%v", changed, err)
	}
	n, _ := cs.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{})
	if n.Labels["a"] != "b" || len(n.Spec.Taints) != 1 || n.Spec.Taints[0].Value != "new" {
		t.Fatalf("node = %+v %+v", n.Labels, n.Spec.Taints)
	}
}
