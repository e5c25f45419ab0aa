package agent

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/clock"
)

// ConditionPrefix marks the NodeConditions the agent owns; every other
// condition on the Node (the kubelet's, node-problem-detector's) is left
// exactly as it is.
const ConditionPrefix = "kubewright.io/"

// ConditionType is the NodeCondition type for a check: "kubelet" becomes
// kubewright.io/KubeletProblem. As with the kubelet's own pressure
// conditions, status True means the problem is present.
func ConditionType(check string) corev1.NodeConditionType {
	var b strings.Builder
	b.WriteString(ConditionPrefix)
	up := true
	for _, r := range check {
		if r == '-' || r == '_' || r == ' ' {
			up = true
			continue
		}
		if up {
			r = unicode.ToUpper(r)
			up = false
		}
		b.WriteRune(r)
	}
	b.WriteString("Problem")
	return corev1.NodeConditionType(b.String())
}

// NodeConditions keeps the agent's conditions on its own Node in step with
// the checks: set when a check's state changes, refreshed every Heartbeat so
// `kubewright status` can tell a live agent from a dead one, and removed
// when their check is no longer run.
type NodeConditions struct {
	Client    kubernetes.Interface
	Node      string
	Clock     clock.PassiveClock
	Heartbeat time.Duration

	lastSync time.Time
	last     map[corev1.NodeConditionType]string
}

// Sync writes the conditions when they changed or the heartbeat is due.
func (n *NodeConditions) Sync(ctx context.Context, statuses []CheckStatus) error {
	now := n.Clock.Now()
	want := map[corev1.NodeConditionType]corev1.NodeCondition{}
	sig := map[corev1.NodeConditionType]string{}
	for _, s := range statuses {
		if s.State == StatePending {
			continue
		}
		c := corev1.NodeCondition{Type: ConditionType(s.Name), Reason: s.Last.Reason, Message: s.Last.Message}
		switch s.State {
		case StateOK:
			c.Status = corev1.ConditionFalse
			if c.Reason == "" {
				c.Reason = "OK"
			}
			if c.Message == "" {
				c.Message = s.Name + " is healthy"
			}
		case StateProblem:
			c.Status = corev1.ConditionTrue
			if s.Exhausted {
				c.Reason = "RepairExhausted"
				c.Message = "automatic repairs exhausted, needs a person: " + s.Last.Message
			} else if s.Repair != "" {
				c.Message += " (repair: " + s.Repair + ")"
			}
		default:
			c.Status = corev1.ConditionUnknown
		}
		if c.Reason == "" {
			c.Reason = string(s.State)
		}
		c.Message = truncate(c.Message, 1024)
		want[c.Type] = c
		// Status and reason decide when to write at once; a message with
		// live numbers ("61% available") is refreshed with the heartbeat,
		// not on every tick.
		sig[c.Type] = string(c.Status) + "|" + c.Reason
	}
	if n.Heartbeat == 0 {
		n.Heartbeat = 30 * time.Second
	}
	if sameSig(sig, n.last) && now.Sub(n.lastSync) < n.Heartbeat {
		return nil
	}
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		node, err := n.Client.CoreV1().Nodes().Get(ctx, n.Node, metav1.GetOptions{})
		if err != nil {
			return err
		}
		var out []corev1.NodeCondition
		old := map[corev1.NodeConditionType]corev1.NodeCondition{}
		for _, c := range node.Status.Conditions {
			if strings.HasPrefix(string(c.Type), ConditionPrefix) {
				old[c.Type] = c
				continue // ours: rebuilt below, or dropped when its check is gone
			}
			out = append(out, c)
		}
		for _, t := range sortedTypes(want) {
			c := want[t]
			c.LastHeartbeatTime = metav1.NewTime(now)
			c.LastTransitionTime = metav1.NewTime(now)
			if o, ok := old[t]; ok && o.Status == c.Status {
				c.LastTransitionTime = o.LastTransitionTime
			}
			out = append(out, c)
		}
		node.Status.Conditions = out
		_, err = n.Client.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("update conditions: node %s is not registered (is the agent's nodeName right?): %w", n.Node, err)
		}
		return fmt.Errorf("update conditions on node %s: %w", n.Node, err)
	}
	n.lastSync, n.last = now, sig
	return nil
}

func sameSig(a, b map[corev1.NodeConditionType]string) bool {
	if len(a) != len(b) || b == nil {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func sortedTypes(m map[corev1.NodeConditionType]corev1.NodeCondition) []corev1.NodeConditionType {
	var ts []corev1.NodeConditionType
	for t := range m {
		ts = append(ts, t)
	}
	for i := 1; i < len(ts); i++ {
		for j := i; j > 0 && ts[j] < ts[j-1]; j-- {
			ts[j], ts[j-1] = ts[j-1], ts[j]
		}
	}
	return ts
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}
