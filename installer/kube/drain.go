package kube

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// SetUnschedulable cordons (true) or uncordons (false) a node with a merge
// patch, so it races with no other writer of the Node object.
func SetUnschedulable(ctx context.Context, cs kubernetes.Interface, node string, on bool) error {
	patch := fmt.Sprintf(`{"spec":{"unschedulable":%t}}`, on)
	if _, err := cs.CoreV1().Nodes().Patch(ctx, node, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		verb := "cordon"
		if !on {
			verb = "uncordon"
		}
		return fmt.Errorf("%s node %s: %w", verb, node, err)
	}
	return nil
}

// DrainOptions bound a drain.
type DrainOptions struct {
	// Timeout for the whole drain (0 = 5 minutes).
	Timeout time.Duration
	// Interval between eviction retries and checks (0 = 2 seconds).
	Interval time.Duration
}

// drainable are the pods a drain evicts: not DaemonSet pods (the DaemonSet
// controller would recreate them on the node at once, and they tolerate
// unschedulable) and not static pods (the kubelet owns them), nor pods that
// are already finished.
func drainable(p *corev1.Pod) bool {
	if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		return false
	}
	if _, mirror := p.Annotations[corev1.MirrorPodAnnotationKey]; mirror {
		return false
	}
	for _, o := range p.OwnerReferences {
		if o.Kind == "DaemonSet" {
			return false
		}
	}
	return true
}

// Drain cordons node and evicts its pods through the eviction API, so
// PodDisruptionBudgets are respected: an eviction a budget refuses (429) is
// retried until the timeout. It returns once every evicted pod is gone. On
// failure the node stays cordoned and the error names the pods left and why.
func Drain(ctx context.Context, cs kubernetes.Interface, node string, o DrainOptions) error {
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Minute
	}
	if o.Interval <= 0 {
		o.Interval = 2 * time.Second
	}
	if err := SetUnschedulable(ctx, cs, node, true); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	why := map[string]string{} // ns/name -> last refusal
	for {
		list, err := cs.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("spec.nodeName", node).String()})
		if err != nil {
			if ctx.Err() != nil {
				return drainTimeout(node, o.Timeout, why)
			}
			return fmt.Errorf("drain %s: list pods: %w", node, err)
		}
		pending := 0
		why = map[string]string{} // only the pods still there
		for i := range list.Items {
			p := &list.Items[i]
			// The field selector already says so; checked again because a
			// drain must never evict another node's pods.
			if p.Spec.NodeName != node || !drainable(p) {
				continue
			}
			pending++
			key := p.Namespace + "/" + p.Name
			if p.DeletionTimestamp != nil {
				why[key] = "terminating"
				continue
			}
			err := cs.PolicyV1().Evictions(p.Namespace).Evict(ctx, &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace}})
			switch {
			case err == nil || apierrors.IsNotFound(err):
				why[key] = "evicted, terminating"
			case apierrors.IsTooManyRequests(err):
				why[key] = "eviction refused by its PodDisruptionBudget: " + err.Error()
			default:
				why[key] = "eviction failed: " + err.Error()
			}
		}
		if pending == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return drainTimeout(node, o.Timeout, why)
		case <-time.After(o.Interval):
		}
	}
}

func drainTimeout(node string, timeout time.Duration, why map[string]string) error {
	var left []string
	for k, v := range why {
		left = append(left, k+" ("+v+")")
	}
	return fmt.Errorf("drain %s: pods still on the node after %s, node left cordoned: %s", node, timeout, strings.Join(left, "; "))
}

// DrainablePods lists the pods on node that Drain would evict, so a plan
// can name them before anything is evicted.
func DrainablePods(ctx context.Context, cs kubernetes.Interface, node string) ([]corev1.Pod, error) {
	list, err := cs.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("spec.nodeName", node).String()})
	if err != nil {
		return nil, fmt.Errorf("list pods on %s: %w", node, err)
	}
	var out []corev1.Pod
	for i := range list.Items {
		if p := &list.Items[i]; p.Spec.NodeName == node && drainable(p) {
			out = append(out, *p)
		}
	}
	return out, nil
}
