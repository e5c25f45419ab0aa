package steps

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubewright/kubewright/installer/engine"
	"github.com/kubewright/kubewright/installer/kube"
)

// NodeLabels is the `node-labels` step: the node's role label
// (node-role.kubernetes.io/control-plane on masters, .../worker on workers),
// the inventory's labels and taints, and on masters the control-plane
// NoSchedule taint, applied through client-go. The kubelet cannot set role
// labels itself (the NodeRestriction admission plugin forbids it), which is
// why this runs from the operator's machine with the admin credential.
// Labels and taints not in the inventory are left alone.
type NodeLabels struct {
	// Client is the API client (nil: super-admin from the state directory).
	Client clientFunc
	// RegisterTimeout bounds the wait for the node object to appear.
	RegisterTimeout time.Duration
	Poll            time.Duration
}

func (NodeLabels) Name() string { return "node-labels" }

func wantedLabelsAndTaints(t *engine.Target) (map[string]string, []corev1.Taint) {
	labels, taints := nodeRoleLabelsAndTaints(t.Inv)
	var out []corev1.Taint
	for _, tt := range taints {
		out = append(out, corev1.Taint{Key: tt.Key, Value: tt.Value, Effect: corev1.TaintEffect(tt.Effect)})
	}
	return labels, out
}

func (s NodeLabels) Plan(ctx context.Context, t *engine.Target) ([]engine.Change, error) {
	cs, err := s.Client.get(ctx, t)
	if err != nil {
		return nil, err
	}
	labels, taints := wantedLabelsAndTaints(t)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	node, err := cs.CoreV1().Nodes().Get(pctx, t.Inv.Name, metav1.GetOptions{})
	if err != nil {
		detail := "node not registered yet"
		if !apierrors.IsNotFound(err) {
			detail = "API not answering: " + err.Error()
		}
		node = &corev1.Node{}
		var out []engine.Change
		for _, c := range kube.NodeLabelChanges(node, labels, taints) {
			out = append(out, engine.Change{Action: "set", Object: "node/" + t.Inv.Name + " " + c, Detail: detail})
		}
		return out, nil
	}
	var out []engine.Change
	for _, c := range kube.NodeLabelChanges(node, labels, taints) {
		out = append(out, engine.Change{Action: "set", Object: "node/" + t.Inv.Name + " " + c})
	}
	return out, nil
}

func (s NodeLabels) Apply(ctx context.Context, t *engine.Target, _ []engine.Change) error {
	cs, err := s.Client.get(ctx, t)
	if err != nil {
		return err
	}
	timeout, poll := s.RegisterTimeout, s.Poll
	if timeout <= 0 {
		timeout = 2 * time.Minute
	}
	if poll <= 0 {
		poll = 2 * time.Second
	}
	if err := waitFor(ctx, time.Now().Add(timeout), poll, func() (bool, error) {
		_, err := cs.CoreV1().Nodes().Get(ctx, t.Inv.Name, metav1.GetOptions{})
		return err == nil, err
	}); err != nil {
		return fmt.Errorf("node %s not registered after %s (is its kubelet running?): %w", t.Inv.Name, timeout, err)
	}
	labels, taints := wantedLabelsAndTaints(t)
	changed, err := kube.EnsureNodeLabelsAndTaints(ctx, cs, t.Inv.Name, labels, taints)
	if err != nil {
		return err
	}
	if t.Log != nil && len(changed) > 0 {
		t.Log.Info("node labels and taints set", "host", t.Inv.Name, "changes", changed)
	}
	return nil
}
