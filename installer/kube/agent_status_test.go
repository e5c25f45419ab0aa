package kube

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func repairEvent(name, node, action, reason string, at time.Time) *corev1.Event {
	return &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: name, Namespace: metav1.NamespaceDefault},
		InvolvedObject: corev1.ObjectReference{Kind: "Node", Name: node},
		Reason:         reason,
		Action:         action,
		Source:         corev1.EventSource{Component: "kubewright-agent"},
		LastTimestamp:  metav1.NewTime(at),
	}
}

func agentNode(name string, master bool, hb time.Time, conds map[string]corev1.ConditionStatus, annotations map[string]string) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{}, Annotations: annotations}}
	if master {
		n.Labels[LabelControlPlane] = ""
	} else {
		n.Labels[LabelWorker] = ""
	}
	// The kubelet's own conditions are never the agent's.
	n.Status.Conditions = append(n.Status.Conditions, corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastHeartbeatTime: metav1.NewTime(hb)})
	for t, s := range conds {
		c := corev1.NodeCondition{Type: corev1.NodeConditionType(AgentConditionPrefix + t), Status: s, LastHeartbeatTime: metav1.NewTime(hb), Reason: "OK"}
		if s == corev1.ConditionTrue {
			c.Reason, c.Message = "KubeletDown", "kubelet healthz:\nconnection refused (repair: restart-kubelet)"
		}
		if s == corev1.ConditionUnknown {
			c.Reason, c.Message = "CheckCrashed", "panic: boom"
		}
		n.Status.Conditions = append(n.Status.Conditions, c)
	}
	return n
}

func TestAgentStatusTable(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	fresh := now.Add(-20 * time.Second)
	F, T, U := corev1.ConditionFalse, corev1.ConditionTrue, corev1.ConditionUnknown
	tests := []struct {
		name       string
		nodes      []*corev1.Node
		expected   []string
		wantFailed bool
		wantTable  string
		wantDetail []string
		events     []*corev1.Event
	}{
		{
			name: "all healthy",
			nodes: []*corev1.Node{
				agentNode("m1", true, fresh, map[string]corev1.ConditionStatus{"KubeletProblem": F, "EtcdQuorumProblem": F}, nil),
				agentNode("w1", false, fresh, map[string]corev1.ConditionStatus{"KubeletProblem": F}, nil),
			},
			events: []*corev1.Event{
				repairEvent("e1", "m1", "restart-etcd", "RepairFailed", now.Add(-10*time.Minute)),
				repairEvent("e2", "m1", "restart-kubelet", "RepairSucceeded", now.Add(-3*time.Minute)),
				repairEvent("e3", "m1", "restart-kubelet", "RepairStarted", now.Add(-time.Minute)),
			},
			expected: []string{"m1", "w1"},
			wantTable: `NODE  ROLE    AGENT  ETCD-QUORUM  KUBELET  REPAIRS
m1    master  ok     OK           OK       restart-kubelet RepairSucceeded 3m0s ago
w1    worker  ok     -            OK       -
`,
		},
		{
			name: "a problem, an unknown, a stale agent, no agent, a host that is not a node",
			nodes: []*corev1.Node{
				agentNode("m1", true, fresh, map[string]corev1.ConditionStatus{"KubeletProblem": T, "DiskProblem": U}, nil),
				agentNode("w1", false, now.Add(-5*time.Minute), map[string]corev1.ConditionStatus{"KubeletProblem": F}, nil),
				agentNode("w2", false, fresh, nil, nil),
			},
			expected:   []string{"m1", "w1", "w2", "w3"},
			wantFailed: true,
			wantTable: `NODE  ROLE    AGENT             DISK     KUBELET  REPAIRS
m1    master  ok                Unknown  Problem  -
w1    worker  stale (5m0s ago)  -        OK       -
w2    worker  missing           -        -        -
w3    -       no-node           -        -        -
`,
			wantDetail: []string{
				"m1: DISK Unknown: CheckCrashed: panic: boom",
				"m1: KUBELET Problem: KubeletDown: kubelet healthz: connection refused (repair: restart-kubelet)",
				"w1: agent not reporting for more than 2m0s",
				"w2: no kubewright.io conditions",
				"w3: in the inventory but not a Node",
			},
		},
		{
			name:       "unknown alone does not fail",
			nodes:      []*corev1.Node{agentNode("w1", false, fresh, map[string]corev1.ConditionStatus{"DnsProblem": U}, nil)},
			wantTable:  "NODE  ROLE    AGENT  DNS      REPAIRS\nw1    worker  ok     Unknown  -\n",
			wantDetail: []string{"w1: DNS Unknown: CheckCrashed: panic: boom"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cs := fake.NewClientset()
			for _, n := range tc.nodes {
				if _, err := cs.CoreV1().Nodes().Create(context.Background(), n, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			for _, e := range tc.events {
				if _, err := cs.CoreV1().Events(metav1.NamespaceDefault).Create(context.Background(), e, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			r, err := AgentStatus(context.Background(), cs, tc.expected, now)
			if err != nil {
				t.Fatal(err)
			}
			if r.Failed != tc.wantFailed {
				t.Errorf("Failed = %v, want %v", r.Failed, tc.wantFailed)
			}
			var buf bytes.Buffer
			if err := r.WriteTable(&buf); err != nil {
				t.Fatal(err)
			}
			table, details, _ := strings.Cut(buf.String(), "\n\n")
			if !strings.HasSuffix(table, "\n") {
				table += "\n"
			}
			if table != tc.wantTable {
				t.Errorf("table:\n%s\nwant:\n%s", table, tc.wantTable)
			}
			for _, w := range tc.wantDetail {
				if !strings.Contains(details, w) {
					t.Errorf("details lack %q:\n%s", w, details)
				}
			}
			if len(tc.wantDetail) == 0 && details != "" {
				t.Errorf("details on a healthy cluster:\n%s", details)
			}
			buf.Reset()
			if err := r.WriteJSON(&buf); err != nil {
				t.Fatal(err)
			}
			var back AgentStatusReport
			if err := json.Unmarshal(buf.Bytes(), &back); err != nil || len(back.Nodes) != len(r.Nodes) || back.Failed != r.Failed {
				t.Fatalf("JSON round trip: %v\n%s", err, buf.String())
			}
		})
	}
}

func TestColumnName(t *testing.T) {
	for in, want := range map[string]string{
		"kubewright.io/KubeletProblem":    "KUBELET",
		"kubewright.io/EtcdQuorumProblem": "ETCD-QUORUM",
		"kubewright.io/VipProblem":        "VIP",
		"kubewright.io/APIServerProblem":  "APISERVER",
	} {
		if got := columnName(in); got != want {
			t.Errorf("columnName(%s) = %s, want %s", in, got, want)
		}
	}
}
