package agent

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Events records repair decisions as Events on the agent's Node, so
// `kubectl describe node` and `kubectl get events` show what the agent did
// and why. Problems and clears are in the conditions; Events are for the
// actions.
type Events struct {
	Client kubernetes.Interface
	Node   string
	Logger *slog.Logger
}

// Emit creates one Event for an action; errors are logged, never fatal: an
// API outage must not stop a local repair.
func (e *Events) Emit(ctx context.Context, a Action) {
	typ, reason := corev1.EventTypeNormal, ""
	switch a.Outcome {
	case "started":
		reason = "RepairStarted"
	case "succeeded":
		reason = "RepairSucceeded"
	case "failed":
		typ, reason = corev1.EventTypeWarning, "RepairFailed"
	case "blocked":
		reason = "RepairBlocked"
	case "report-only":
		reason = "RepairReportOnly"
	case "exhausted":
		typ, reason = corev1.EventTypeWarning, "RepairExhausted"
	default:
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	t := metav1.NewTime(a.Time)
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: e.Node + ".kubewright-",
			Namespace:    metav1.NamespaceDefault,
		},
		InvolvedObject:      corev1.ObjectReference{Kind: "Node", Name: e.Node, UID: "", APIVersion: "v1"},
		Reason:              reason,
		Message:             truncate(strings.TrimSpace(a.Message), 1024),
		Source:              corev1.EventSource{Component: "kubewright-agent", Host: e.Node},
		FirstTimestamp:      t,
		LastTimestamp:       t,
		Count:               1,
		Type:                typ,
		ReportingController: "kubewright.io/agent",
		ReportingInstance:   "kubewright-agent-" + e.Node,
		Action:              a.Repair,
	}
	if ev.Action == "" {
		ev.Action = a.Check
	}
	if _, err := e.Client.CoreV1().Events(metav1.NamespaceDefault).Create(ctx, ev, metav1.CreateOptions{}); err != nil && e.Logger != nil {
		e.Logger.Warn("event not recorded", "reason", reason, "err", fmt.Sprint(err))
	}
}
