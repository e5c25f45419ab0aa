package steps

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubewright/kubewright/installer/engine"
)

// WaitNodeVersion is the `wait-node-version` step: after the kubelet
// restarted on its new binary, it waits until the Node reports the run's
// release (the artifacts' Kubernetes version) and is Ready, so the next
// node or batch starts only once this one is back.
type WaitNodeVersion struct {
	// Client is the API client (nil: super-admin from the state directory).
	Client clientFunc
	// Timeout bounds the wait (zero: 3 minutes); Poll is the interval
	// between checks (zero: 2 seconds).
	Timeout, Poll time.Duration
}

func (WaitNodeVersion) Name() string { return "wait-node-version" }

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// versionState says what is missing ("" when the node is there).
func (s WaitNodeVersion) versionState(ctx context.Context, t *engine.Target) (string, error) {
	src, err := sharedSource(t)
	if err != nil {
		return "", err
	}
	want := src.Manifest().KubernetesVersion
	cs, err := s.Client.get(ctx, t)
	if err != nil {
		return "", err
	}
	n, err := cs.CoreV1().Nodes().Get(ctx, t.Inv.Name, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("get node %s: %w", t.Inv.Name, err)
	}
	switch got := n.Status.NodeInfo.KubeletVersion; {
	case got != want:
		return fmt.Sprintf("kubelet reports %s, want %s", got, want), nil
	case !nodeReady(n):
		return "kubelet reports " + want + " but the node is not Ready", nil
	}
	return "", nil
}

func (s WaitNodeVersion) Plan(ctx context.Context, t *engine.Target) ([]engine.Change, error) {
	missing, err := s.versionState(ctx, t)
	if err != nil || missing == "" {
		return nil, err
	}
	return []engine.Change{{Action: "wait", Object: nodeObject(t.Inv.Name), Detail: missing}}, nil
}

func (s WaitNodeVersion) Apply(ctx context.Context, t *engine.Target, _ []engine.Change) error {
	timeout, poll := s.Timeout, s.Poll
	if timeout <= 0 {
		timeout = 3 * time.Minute
	}
	if poll <= 0 {
		poll = 2 * time.Second
	}
	var last string
	err := waitFor(ctx, time.Now().Add(timeout), poll, func() (bool, error) {
		missing, err := s.versionState(ctx, t)
		last = missing
		return err == nil && missing == "", err
	})
	if err != nil {
		return fmt.Errorf("node %s not back on its new release after %s (%s; journalctl -u kubelet on %s): %w", t.Inv.Name, timeout, last, t.Inv.Name, err)
	}
	return nil
}
