package agent

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	clocktesting "k8s.io/utils/clock/testing"
)

func TestNodeConditionsSetClearRemove(t *testing.T) {
	ctx := context.Background()
	kubeletReady := corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady"}
	cs := fake.NewClientset(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "w1"}, Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{kubeletReady}}})
	clk := clocktesting.NewFakeClock(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	nc := &NodeConditions{Client: cs, Node: "w1", Clock: clk, Heartbeat: 30 * time.Second}
	get := func() map[corev1.NodeConditionType]corev1.NodeCondition {
		n, err := cs.CoreV1().Nodes().Get(ctx, "w1", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		m := map[corev1.NodeConditionType]corev1.NodeCondition{}
		for _, c := range n.Status.Conditions {
			m[c.Type] = c
		}
		return m
	}
	st := []CheckStatus{
		{Name: "kubelet", State: StateProblem, Last: Result{Status: Problem, Reason: "KubeletUnhealthy", Message: "connection refused"}, Repair: "running restart-kubelet"},
		{Name: "etcd-quorum", State: StateOK, Last: Result{Status: OK}},
		{Name: "dns", State: StatePending},
	}
	if err := nc.Sync(ctx, st); err != nil {
		t.Fatal(err)
	}
	m := get()
	k := m["kubewright.io/KubeletProblem"]
	if k.Status != corev1.ConditionTrue || k.Reason != "KubeletUnhealthy" || k.Message != "connection refused (repair: running restart-kubelet)" {
		t.Fatalf("kubelet condition %+v", k)
	}
	if q := m["kubewright.io/EtcdQuorumProblem"]; q.Status != corev1.ConditionFalse || q.Reason != "OK" {
		t.Fatalf("etcd-quorum condition %+v", q)
	}
	if _, ok := m["kubewright.io/DnsProblem"]; ok {
		t.Fatal("a pending check got a condition")
	}
	if m[corev1.NodeReady].Reason != "KubeletReady" {
		t.Fatal("the kubelet's Ready condition was changed")
	}
	firstTransition := k.LastTransitionTime

	// Clear: status False, transition time moves; heartbeat-only syncs keep it.
	clk.Step(10 * time.Second)
	st[0] = CheckStatus{Name: "kubelet", State: StateOK, Last: Result{Status: OK, Reason: "KubeletHealthy"}}
	if err := nc.Sync(ctx, st); err != nil {
		t.Fatal(err)
	}
	k = get()["kubewright.io/KubeletProblem"]
	if k.Status != corev1.ConditionFalse || !k.LastTransitionTime.After(firstTransition.Time) {
		t.Fatalf("cleared kubelet condition %+v", k)
	}
	clk.Step(31 * time.Second)
	if err := nc.Sync(ctx, st); err != nil {
		t.Fatal(err)
	}
	k2 := get()["kubewright.io/KubeletProblem"]
	if !k2.LastHeartbeatTime.After(k.LastHeartbeatTime.Time) || !k2.LastTransitionTime.Equal(&k.LastTransitionTime) {
		t.Fatalf("heartbeat sync: heartbeat %v -> %v, transition %v -> %v", k.LastHeartbeatTime, k2.LastHeartbeatTime, k.LastTransitionTime, k2.LastTransitionTime)
	}

	// A check removed from the config loses its condition.
	if err := nc.Sync(ctx, st[:1]); err != nil {
		t.Fatal(err)
	}
	m = get()
	if _, ok := m["kubewright.io/EtcdQuorumProblem"]; ok {
		t.Fatal("condition of a removed check was kept")
	}
	if len(m) != 2 {
		t.Fatalf("conditions %v, want Ready and KubeletProblem", m)
	}
}

func TestConditionType(t *testing.T) {
	for in, want := range map[string]string{"kubelet": "kubewright.io/KubeletProblem", "etcd-quorum": "kubewright.io/EtcdQuorumProblem", "kube-proxy": "kubewright.io/KubeProxyProblem"} {
		if got := string(ConditionType(in)); got != want {
			t.Errorf("ConditionType(%q) = %q, want %q", in, got, want)
		}
	}
}
