package kube

import (
	"context"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

func TestEnsureAgentRBAC(t *testing.T) {
	ctx := context.Background()
	cs := fake.NewClientset()
	if need, err := EnsureAgentRBAC(ctx, cs, true); err != nil || !need {
		t.Fatalf("dry run on an empty cluster: need=%v err=%v", need, err)
	}
	if roles, _ := cs.RbacV1().ClusterRoles().List(ctx, metav1.ListOptions{}); len(roles.Items) != 0 {
		t.Fatal("a dry run created objects")
	}
	if changed, err := EnsureAgentRBAC(ctx, cs, false); err != nil || !changed {
		t.Fatalf("ensure: changed=%v err=%v", changed, err)
	}
	if need, err := EnsureAgentRBAC(ctx, cs, true); err != nil || need {
		t.Fatalf("dry run after ensure: need=%v err=%v", need, err)
	}

	crb, err := cs.RbacV1().ClusterRoleBindings().Get(ctx, AgentRBACName, metav1.GetOptions{})
	if err != nil || crb.Subjects[0].Kind != rbacv1.GroupKind || crb.Subjects[0].Name != "kubewright:agents" || crb.RoleRef.Name != "kubewright:agent" {
		t.Fatalf("ClusterRoleBinding: %+v %v", crb, err)
	}
	role, err := cs.RbacV1().Roles("kube-system").Get(ctx, AgentRBACName, metav1.GetOptions{})
	if err != nil || role.Rules[0].Resources[0] != "leases" {
		t.Fatalf("kube-system Role: %+v %v", role, err)
	}
	cr, _ := cs.RbacV1().ClusterRoles().Get(ctx, AgentRBACName, metav1.GetOptions{})
	for _, r := range cr.Rules {
		for _, res := range r.Resources {
			if res == "leases" || res == "pods" {
				t.Errorf("ClusterRole grants %s cluster-wide; they belong in the kube-system Role", res)
			}
		}
	}

	// Drift: someone widened the ClusterRole, re-pointed the RoleBinding and
	// added a user to the ClusterRoleBinding. All three are put back.
	cr.Rules = append(cr.Rules, rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get"}})
	if _, err := cs.RbacV1().ClusterRoles().Update(ctx, cr, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	rb, _ := cs.RbacV1().RoleBindings("kube-system").Get(ctx, AgentRBACName, metav1.GetOptions{})
	rb.RoleRef.Name = "admin"
	if _, err := cs.RbacV1().RoleBindings("kube-system").Update(ctx, rb, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	crb.Subjects = append(crb.Subjects, rbacv1.Subject{Kind: rbacv1.UserKind, Name: "mallory"})
	if _, err := cs.RbacV1().ClusterRoleBindings().Update(ctx, crb, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if need, err := EnsureAgentRBAC(ctx, cs, true); err != nil || !need {
		t.Fatalf("dry run after drift: need=%v err=%v", need, err)
	}
	if changed, err := EnsureAgentRBAC(ctx, cs, false); err != nil || !changed {
		t.Fatalf("repair drift: changed=%v err=%v", changed, err)
	}
	if need, err := EnsureAgentRBAC(ctx, cs, true); err != nil || need {
		t.Fatalf("dry run after repair: need=%v err=%v", need, err)
	}
	rb, _ = cs.RbacV1().RoleBindings("kube-system").Get(ctx, AgentRBACName, metav1.GetOptions{})
	crb, _ = cs.RbacV1().ClusterRoleBindings().Get(ctx, AgentRBACName, metav1.GetOptions{})
	cr, _ = cs.RbacV1().ClusterRoles().Get(ctx, AgentRBACName, metav1.GetOptions{})
	if rb.RoleRef.Name != AgentRBACName || len(crb.Subjects) != 1 || len(cr.Rules) != len(AgentClusterRole().Rules) {
		t.Fatalf("drift not repaired: %+v %+v %+v", rb.RoleRef, crb.Subjects, cr.Rules)
	}
}

// Every node's agent step ensures the RBAC at once: losing a create race
// must not fail the step.
func TestEnsureAgentRBACCreateRace(t *testing.T) {
	ctx := context.Background()
	cs := fake.NewClientset()
	raced := false
	cs.PrependReactor("create", "clusterroles", func(k8stesting.Action) (bool, runtime.Object, error) {
		if raced {
			return false, nil, nil
		}
		raced = true
		if err := cs.Tracker().Add(AgentClusterRole()); err != nil {
			t.Fatal(err)
		}
		return true, nil, apierrors.NewAlreadyExists(schema.GroupResource{Group: "rbac.authorization.k8s.io", Resource: "clusterroles"}, AgentRBACName)
	})
	if _, err := EnsureAgentRBAC(ctx, cs, false); err != nil {
		t.Fatalf("after losing the race: %v", err)
	}
	if need, err := EnsureAgentRBAC(ctx, cs, true); err != nil || need {
		t.Fatalf("dry run after: %v %v", need, err)
	}
}
