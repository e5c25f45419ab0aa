package kube

import (
	"context"
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Node role labels and the control-plane taint, kubeadm's.
const (
	LabelControlPlane = "node-role.kubernetes.io/control-plane"
	LabelWorker       = "node-role.kubernetes.io/worker"
	TaintControlPlane = "node-role.kubernetes.io/control-plane"
)

// NodeLabelChanges compares a node with the labels and taints it must carry
// and names each difference ("label k=v", "taint k=v:Effect"). Labels and
// taints not in want are left alone: other controllers and operators add
// their own, and removing them is not kubewright's call.
func NodeLabelChanges(node *corev1.Node, labels map[string]string, taints []corev1.Taint) []string {
	var out []string
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if v, ok := node.Labels[k]; !ok || v != labels[k] {
			out = append(out, fmt.Sprintf("label %s=%s", k, labels[k]))
		}
	}
	for _, t := range taints {
		if !hasTaint(node.Spec.Taints, t) {
			out = append(out, fmt.Sprintf("taint %s=%s:%s", t.Key, t.Value, t.Effect))
		}
	}
	return out
}

func hasTaint(have []corev1.Taint, t corev1.Taint) bool {
	for _, h := range have {
		if h.Key == t.Key && h.Effect == t.Effect && h.Value == t.Value {
			return true
		}
	}
	return false
}

// EnsureNodeLabelsAndTaints adds the wanted labels and taints to node name
// and returns what it changed. A taint with the same key and effect but
// another value is replaced. It retries on update conflicts (the kubelet
// updates its node object all the time).
func EnsureNodeLabelsAndTaints(ctx context.Context, cs kubernetes.Interface, name string, labels map[string]string, taints []corev1.Taint) ([]string, error) {
	for attempt := 0; ; attempt++ {
		node, err := cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("get node %s: %w", name, err)
		}
		changes := NodeLabelChanges(node, labels, taints)
		if len(changes) == 0 {
			return nil, nil
		}
		if node.Labels == nil {
			node.Labels = map[string]string{}
		}
		for k, v := range labels {
			node.Labels[k] = v
		}
		for _, t := range taints {
			if hasTaint(node.Spec.Taints, t) {
				continue
			}
			kept := node.Spec.Taints[:0]
			for _, h := range node.Spec.Taints {
				if !(h.Key == t.Key && h.Effect == t.Effect) {
					kept = append(kept, h)
				}
			}
			node.Spec.Taints = append(kept, t)
		}
		_, err = cs.CoreV1().Nodes().Update(ctx, node, metav1.UpdateOptions{FieldManager: FieldManager})
		if apierrors.IsConflict(err) && attempt < 5 {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("label and taint node %s: %w", name, err)
		}
		return changes, nil
	}
}

// KubeProxyUser is the identity in kube-proxy's client certificate.
const KubeProxyUser = "system:kube-proxy"

// KubeProxyRBAC binds kube-proxy's certificate identity to the built-in
// system:node-proxier role (kubeadm binds a ServiceAccount instead because
// it runs kube-proxy as a DaemonSet; kubewright runs it as a systemd unit).
func KubeProxyRBAC() *rbacv1.ClusterRoleBinding {
	return &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "kubewright:node-proxier", Labels: map[string]string{"app.kubernetes.io/managed-by": FieldManager}},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "system:node-proxier"},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: KubeProxyUser}},
	}
}

// EnsureKubeProxyRBAC creates or repairs KubeProxyRBAC; with dryRun it only
// reports whether it would. It returns true when something (would) change.
func EnsureKubeProxyRBAC(ctx context.Context, cs kubernetes.Interface, dryRun bool) (bool, error) {
	changed, err := ensureClusterRoleBinding(ctx, cs, KubeProxyRBAC(), dryRun)
	if apierrors.IsAlreadyExists(err) {
		// Every node's kube-proxy step ensures the binding, in parallel:
		// another one won the race. Check what it created.
		return EnsureKubeProxyRBAC(ctx, cs, dryRun)
	}
	return changed, err
}

// ensureClusterRoleBinding creates want, replaces it when its immutable
// roleRef differs, or updates its subjects; with dryRun it only reports
// whether it would. It returns true when something (would) change. A lost
// create race comes back as an AlreadyExists error for the caller to retry.
func ensureClusterRoleBinding(ctx context.Context, cs kubernetes.Interface, want *rbacv1.ClusterRoleBinding, dryRun bool) (bool, error) {
	api := cs.RbacV1().ClusterRoleBindings()
	got, err := api.Get(ctx, want.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		if dryRun {
			return true, nil
		}
		if _, err := api.Create(ctx, want, metav1.CreateOptions{FieldManager: FieldManager}); err != nil {
			return false, fmt.Errorf("create ClusterRoleBinding %s: %w", want.Name, err)
		}
		return true, nil
	case err != nil:
		return false, fmt.Errorf("get ClusterRoleBinding %s: %w", want.Name, err)
	case got.RoleRef != want.RoleRef:
		// roleRef is immutable: replace the binding.
		if dryRun {
			return true, nil
		}
		if err := api.Delete(ctx, want.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return false, fmt.Errorf("replace ClusterRoleBinding %s: %w", want.Name, err)
		}
		if _, err := api.Create(ctx, want, metav1.CreateOptions{FieldManager: FieldManager}); err != nil {
			return false, fmt.Errorf("create ClusterRoleBinding %s: %w", want.Name, err)
		}
		return true, nil
	case sameSubjects(got.Subjects, want.Subjects):
		return false, nil
	case dryRun:
		return true, nil
	}
	got.Subjects = want.Subjects
	if _, err := api.Update(ctx, got, metav1.UpdateOptions{FieldManager: FieldManager}); err != nil {
		return false, fmt.Errorf("update ClusterRoleBinding %s: %w", want.Name, err)
	}
	return true, nil
}
