package kube

import (
	"context"
	"fmt"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// The agent's identity: every node's agent has its own client certificate,
// CN AgentUserPrefix+NODE, all in AgentGroup, so RBAC binds the group once
// and the audit log still says which node's agent acted.
const (
	AgentUserPrefix = "kubewright:agent:"
	AgentGroup      = "kubewright:agents"
	// AgentRBACName names the ClusterRole, the kube-system Role and their
	// bindings.
	AgentRBACName = "kubewright:agent"
)

// AgentUser is the user name in node's agent certificate.
func AgentUser(node string) string { return AgentUserPrefix + node }

var agentLabels = map[string]string{"app.kubernetes.io/managed-by": FieldManager, "app.kubernetes.io/name": "kubewright-agent"}

// AgentClusterRole is what an agent needs cluster-wide: its Node (to read
// and to set its NodeConditions; RBAC cannot narrow this to one node name
// for a group, the node authorizer only covers kubelets) and Events, which
// it records in the default namespace as the kubelet does for nodes.
func AgentClusterRole() *rbacv1.ClusterRole {
	return &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: AgentRBACName, Labels: agentLabels},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"get", "list", "watch"}},
			{APIGroups: []string{""}, Resources: []string{"nodes/status"}, Verbs: []string{"get", "patch", "update"}},
			{APIGroups: []string{"", "events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
		},
	}
}

// AgentRole is what an agent needs in kube-system only: the repair budget's
// Leases, and the cluster DNS pods whose state the DNS check reports. Pods
// are not granted cluster-wide: their specs may carry other workloads'
// secrets in plain environment variables.
func AgentRole() *rbacv1.Role {
	return &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: AgentRBACName, Namespace: metav1.NamespaceSystem, Labels: agentLabels},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"get", "list", "watch", "create", "update"}},
			{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list", "watch"}},
		},
	}
}

func agentSubjects() []rbacv1.Subject {
	return []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.GroupKind, Name: AgentGroup}}
}

// AgentClusterRoleBinding binds AgentClusterRole to AgentGroup.
func AgentClusterRoleBinding() *rbacv1.ClusterRoleBinding {
	return &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: AgentRBACName, Labels: agentLabels},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: AgentRBACName},
		Subjects:   agentSubjects(),
	}
}

// AgentRoleBinding binds AgentRole to AgentGroup in kube-system.
func AgentRoleBinding() *rbacv1.RoleBinding {
	return &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: AgentRBACName, Namespace: metav1.NamespaceSystem, Labels: agentLabels},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: AgentRBACName},
		Subjects:   agentSubjects(),
	}
}

// EnsureAgentRBAC creates or repairs the agent's roles and bindings; with
// dryRun it only reports whether it would. It returns true when something
// (would) change. Every node's agent step calls it at once, so losing a
// create race or an update conflict to another node is not an error: the
// object is read again and compared.
func EnsureAgentRBAC(ctx context.Context, cs kubernetes.Interface, dryRun bool) (bool, error) {
	changed := false
	for _, ensure := range []func(context.Context, kubernetes.Interface, bool) (bool, error){
		ensureAgentClusterRole, ensureAgentRole, ensureAgentClusterRoleBinding, ensureAgentRoleBinding,
	} {
		var c bool
		var err error
		for attempt := 0; ; attempt++ {
			c, err = ensure(ctx, cs, dryRun)
			if (apierrors.IsAlreadyExists(err) || apierrors.IsConflict(err)) && attempt < 5 {
				continue
			}
			break
		}
		if err != nil {
			return changed, err
		}
		changed = changed || c
	}
	return changed, nil
}

func ensureAgentClusterRole(ctx context.Context, cs kubernetes.Interface, dryRun bool) (bool, error) {
	want := AgentClusterRole()
	api := cs.RbacV1().ClusterRoles()
	got, err := api.Get(ctx, want.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		if dryRun {
			return true, nil
		}
		if _, err := api.Create(ctx, want, metav1.CreateOptions{FieldManager: FieldManager}); err != nil {
			return false, fmt.Errorf("create ClusterRole %s: %w", want.Name, err)
		}
		return true, nil
	case err != nil:
		return false, fmt.Errorf("get ClusterRole %s: %w", want.Name, err)
	case equality.Semantic.DeepEqual(got.Rules, want.Rules):
		return false, nil
	case dryRun:
		return true, nil
	}
	got.Rules = want.Rules
	if _, err := api.Update(ctx, got, metav1.UpdateOptions{FieldManager: FieldManager}); err != nil {
		return false, fmt.Errorf("update ClusterRole %s: %w", want.Name, err)
	}
	return true, nil
}

func ensureAgentRole(ctx context.Context, cs kubernetes.Interface, dryRun bool) (bool, error) {
	want := AgentRole()
	api := cs.RbacV1().Roles(want.Namespace)
	got, err := api.Get(ctx, want.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		if dryRun {
			return true, nil
		}
		if _, err := api.Create(ctx, want, metav1.CreateOptions{FieldManager: FieldManager}); err != nil {
			return false, fmt.Errorf("create Role %s/%s: %w", want.Namespace, want.Name, err)
		}
		return true, nil
	case err != nil:
		return false, fmt.Errorf("get Role %s/%s: %w", want.Namespace, want.Name, err)
	case equality.Semantic.DeepEqual(got.Rules, want.Rules):
		return false, nil
	case dryRun:
		return true, nil
	}
	got.Rules = want.Rules
	if _, err := api.Update(ctx, got, metav1.UpdateOptions{FieldManager: FieldManager}); err != nil {
		return false, fmt.Errorf("update Role %s/%s: %w", want.Namespace, want.Name, err)
	}
	return true, nil
}

func ensureAgentClusterRoleBinding(ctx context.Context, cs kubernetes.Interface, dryRun bool) (bool, error) {
	return ensureClusterRoleBinding(ctx, cs, AgentClusterRoleBinding(), dryRun)
}

func ensureAgentRoleBinding(ctx context.Context, cs kubernetes.Interface, dryRun bool) (bool, error) {
	want := AgentRoleBinding()
	api := cs.RbacV1().RoleBindings(want.Namespace)
	got, err := api.Get(ctx, want.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		if dryRun {
			return true, nil
		}
		if _, err := api.Create(ctx, want, metav1.CreateOptions{FieldManager: FieldManager}); err != nil {
			return false, fmt.Errorf("create RoleBinding %s/%s: %w", want.Namespace, want.Name, err)
		}
		return true, nil
	case err != nil:
		return false, fmt.Errorf("get RoleBinding %s/%s: %w", want.Namespace, want.Name, err)
	case got.RoleRef != want.RoleRef:
		if dryRun {
			return true, nil
		}
		if err := api.Delete(ctx, want.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return false, fmt.Errorf("replace RoleBinding %s/%s: %w", want.Namespace, want.Name, err)
		}
		if _, err := api.Create(ctx, want, metav1.CreateOptions{FieldManager: FieldManager}); err != nil {
			return false, fmt.Errorf("create RoleBinding %s/%s: %w", want.Namespace, want.Name, err)
		}
		return true, nil
	case sameSubjects(got.Subjects, want.Subjects):
		return false, nil
	case dryRun:
		return true, nil
	}
	got.Subjects = want.Subjects
	if _, err := api.Update(ctx, got, metav1.UpdateOptions{FieldManager: FieldManager}); err != nil {
		return false, fmt.Errorf("update RoleBinding %s/%s: %w", want.Namespace, want.Name, err)
	}
	return true, nil
}
