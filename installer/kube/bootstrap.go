package kube

import (
	"context"
	"crypto/rand"
	"fmt"
	"math/big"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Groups and names follow kubeadm so tools and operators' RBAC keep working.
const (
	BootstrapTokenGroup = "system:bootstrappers:kubeadm:default-node-token"
	ClusterAdminsGroup  = "kubeadm:cluster-admins"
	APIServerKubeletCN  = "kube-apiserver-kubelet-client"
)

// BootstrapRBAC returns the bindings a kubeadm-style cluster needs: bootstrap
// tokens may create CSRs and have node client CSRs auto-approved, nodes may
// renew their own client certs, the admin credential's group is cluster-admin,
// and the apiserver's kubelet-client identity may use the kubelet API (logs,
// exec; LAB.md notes kubelet caches a denial for ~30 s, so create it early).
func BootstrapRBAC() []*rbacv1.ClusterRoleBinding {
	crb := func(name, role string, subjects ...rbacv1.Subject) *rbacv1.ClusterRoleBinding {
		return &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app.kubernetes.io/managed-by": FieldManager}},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
			Subjects:   subjects,
		}
	}
	group := func(n string) rbacv1.Subject {
		return rbacv1.Subject{APIGroup: rbacv1.GroupName, Kind: rbacv1.GroupKind, Name: n}
	}
	user := func(n string) rbacv1.Subject {
		return rbacv1.Subject{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: n}
	}
	return []*rbacv1.ClusterRoleBinding{
		crb("kubeadm:cluster-admins", "cluster-admin", group(ClusterAdminsGroup)),
		crb("kubeadm:kubelet-bootstrap", "system:node-bootstrapper", group(BootstrapTokenGroup)),
		crb("kubeadm:node-autoapprove-bootstrap", "system:certificates.k8s.io:certificatesigningrequests:nodeclient", group(BootstrapTokenGroup)),
		crb("kubeadm:node-autoapprove-certificate-rotation", "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient", group("system:nodes")),
		crb("kubewright:apiserver-kubelet-api-admin", "system:kubelet-api-admin", user(APIServerKubeletCN)),
	}
}

// EnsureBootstrapObjects creates or updates the bootstrap RBAC and the
// kube-public/cluster-info ConfigMap (with a kubeconfig holding only the CA and
// the endpoint, readable anonymously, as kubeadm publishes it). It returns the
// names of objects it created or changed, so a re-run can report "no change".
// With dryRun it only reports what it would change (a true plan).
func EnsureBootstrapObjects(ctx context.Context, cs kubernetes.Interface, clusterInfoKubeconfig string, dryRun bool) ([]string, error) {
	if dryRun {
		return planBootstrapObjects(ctx, cs, clusterInfoKubeconfig)
	}
	var changed []string
	for _, want := range BootstrapRBAC() {
		got, err := cs.RbacV1().ClusterRoleBindings().Get(ctx, want.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			if _, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, want, metav1.CreateOptions{FieldManager: FieldManager}); err != nil {
				return changed, fmt.Errorf("create ClusterRoleBinding %s: %w", want.Name, err)
			}
			changed = append(changed, "ClusterRoleBinding/"+want.Name)
		case err != nil:
			return changed, fmt.Errorf("get ClusterRoleBinding %s: %w", want.Name, err)
		case got.RoleRef != want.RoleRef:
			// roleRef is immutable: replace the binding.
			if err := cs.RbacV1().ClusterRoleBindings().Delete(ctx, want.Name, metav1.DeleteOptions{}); err != nil {
				return changed, fmt.Errorf("replace ClusterRoleBinding %s: %w", want.Name, err)
			}
			if _, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, want, metav1.CreateOptions{FieldManager: FieldManager}); err != nil {
				return changed, fmt.Errorf("create ClusterRoleBinding %s: %w", want.Name, err)
			}
			changed = append(changed, "ClusterRoleBinding/"+want.Name)
		case !sameSubjects(got.Subjects, want.Subjects):
			got.Subjects = want.Subjects
			if _, err := cs.RbacV1().ClusterRoleBindings().Update(ctx, got, metav1.UpdateOptions{FieldManager: FieldManager}); err != nil {
				return changed, fmt.Errorf("update ClusterRoleBinding %s: %w", want.Name, err)
			}
			changed = append(changed, "ClusterRoleBinding/"+want.Name)
		}
	}
	ch, err := ensureClusterInfo(ctx, cs, clusterInfoKubeconfig)
	if err != nil {
		return changed, err
	}
	return append(changed, ch...), nil
}

// planBootstrapObjects reads what EnsureBootstrapObjects would write and
// names every object that is missing or differs.
func planBootstrapObjects(ctx context.Context, cs kubernetes.Interface, kubeconfig string) ([]string, error) {
	var out []string
	for _, want := range BootstrapRBAC() {
		got, err := cs.RbacV1().ClusterRoleBindings().Get(ctx, want.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			out = append(out, "ClusterRoleBinding/"+want.Name)
		case err != nil:
			return nil, fmt.Errorf("get ClusterRoleBinding %s: %w", want.Name, err)
		case got.RoleRef != want.RoleRef || !sameSubjects(got.Subjects, want.Subjects):
			out = append(out, "ClusterRoleBinding/"+want.Name)
		}
	}
	cm, err := cs.CoreV1().ConfigMaps(metav1.NamespacePublic).Get(ctx, "cluster-info", metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		out = append(out, "ConfigMap/kube-public/cluster-info")
	case err != nil:
		return nil, fmt.Errorf("get kube-public/cluster-info: %w", err)
	case cm.Data["kubeconfig"] != kubeconfig:
		out = append(out, "ConfigMap/kube-public/cluster-info")
	}
	const name = "kubeadm:bootstrap-signer-clusterinfo"
	if _, err := cs.RbacV1().Roles(metav1.NamespacePublic).Get(ctx, name, metav1.GetOptions{}); apierrors.IsNotFound(err) {
		out = append(out, "Role/kube-public/"+name)
	} else if err != nil {
		return nil, fmt.Errorf("get Role %s: %w", name, err)
	}
	if _, err := cs.RbacV1().RoleBindings(metav1.NamespacePublic).Get(ctx, name, metav1.GetOptions{}); apierrors.IsNotFound(err) {
		out = append(out, "RoleBinding/kube-public/"+name)
	} else if err != nil {
		return nil, fmt.Errorf("get RoleBinding %s: %w", name, err)
	}
	return out, nil
}

func sameSubjects(a, b []rbacv1.Subject) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func ensureClusterInfo(ctx context.Context, cs kubernetes.Interface, kubeconfig string) ([]string, error) {
	var changed []string
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "cluster-info", Namespace: metav1.NamespacePublic},
		Data:       map[string]string{"kubeconfig": kubeconfig},
	}
	got, err := cs.CoreV1().ConfigMaps(metav1.NamespacePublic).Get(ctx, cm.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		if _, err := cs.CoreV1().ConfigMaps(metav1.NamespacePublic).Create(ctx, cm, metav1.CreateOptions{FieldManager: FieldManager}); err != nil {
			return nil, fmt.Errorf("create kube-public/cluster-info: %w", err)
		}
		changed = append(changed, "ConfigMap/kube-public/cluster-info")
	case err != nil:
		return nil, fmt.Errorf("get kube-public/cluster-info: %w", err)
	case got.Data["kubeconfig"] != kubeconfig:
		if got.Data == nil {
			got.Data = map[string]string{}
		}
		got.Data["kubeconfig"] = kubeconfig
		if _, err := cs.CoreV1().ConfigMaps(metav1.NamespacePublic).Update(ctx, got, metav1.UpdateOptions{FieldManager: FieldManager}); err != nil {
			return nil, fmt.Errorf("update kube-public/cluster-info: %w", err)
		}
		changed = append(changed, "ConfigMap/kube-public/cluster-info")
	}
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "kubeadm:bootstrap-signer-clusterinfo", Namespace: metav1.NamespacePublic},
		Rules:      []rbacv1.PolicyRule{{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: []string{"cluster-info"}}},
	}
	if _, err := cs.RbacV1().Roles(role.Namespace).Get(ctx, role.Name, metav1.GetOptions{}); apierrors.IsNotFound(err) {
		if _, err := cs.RbacV1().Roles(role.Namespace).Create(ctx, role, metav1.CreateOptions{FieldManager: FieldManager}); err != nil {
			return changed, fmt.Errorf("create Role %s: %w", role.Name, err)
		}
		changed = append(changed, "Role/kube-public/"+role.Name)
	} else if err != nil {
		return changed, fmt.Errorf("get Role %s: %w", role.Name, err)
	}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "kubeadm:bootstrap-signer-clusterinfo", Namespace: metav1.NamespacePublic},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: "system:anonymous"}},
	}
	if _, err := cs.RbacV1().RoleBindings(rb.Namespace).Get(ctx, rb.Name, metav1.GetOptions{}); apierrors.IsNotFound(err) {
		if _, err := cs.RbacV1().RoleBindings(rb.Namespace).Create(ctx, rb, metav1.CreateOptions{FieldManager: FieldManager}); err != nil {
			return changed, fmt.Errorf("create RoleBinding %s: %w", rb.Name, err)
		}
		changed = append(changed, "RoleBinding/kube-public/"+rb.Name)
	} else if err != nil {
		return changed, fmt.Errorf("get RoleBinding %s: %w", rb.Name, err)
	}
	return changed, nil
}

// BootstrapToken is a kubeadm-format token: "<id>.<secret>".
type BootstrapToken struct {
	ID, Secret string
	Expires    time.Time
}

func (t BootstrapToken) String() string { return t.ID + "." + t.Secret }

const tokenAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789"

func randString(n int) (string, error) {
	b := make([]byte, n)
	for i := range b {
		v, err := rand.Int(rand.Reader, big.NewInt(int64(len(tokenAlphabet))))
		if err != nil {
			return "", err
		}
		b[i] = tokenAlphabet[v.Int64()]
	}
	return string(b), nil
}

// CreateBootstrapToken stores a short-lived token Secret in kube-system that
// kubelets use once for TLS bootstrap; the tokencleaner controller deletes it
// when it expires, and DeleteBootstrapToken removes it as soon as joins finish.
func CreateBootstrapToken(ctx context.Context, cs kubernetes.Interface, ttl time.Duration, now time.Time, description string) (BootstrapToken, error) {
	id, err := randString(6)
	if err != nil {
		return BootstrapToken{}, err
	}
	secret, err := randString(16)
	if err != nil {
		return BootstrapToken{}, err
	}
	tok := BootstrapToken{ID: id, Secret: secret, Expires: now.Add(ttl).UTC()}
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "bootstrap-token-" + id, Namespace: metav1.NamespaceSystem},
		Type:       corev1.SecretTypeBootstrapToken,
		StringData: map[string]string{
			"description":                    description,
			"token-id":                       id,
			"token-secret":                   secret,
			"expiration":                     tok.Expires.Format(time.RFC3339),
			"usage-bootstrap-authentication": "true",
			"usage-bootstrap-signing":        "true",
			"auth-extra-groups":              BootstrapTokenGroup,
		},
	}
	if _, err := cs.CoreV1().Secrets(metav1.NamespaceSystem).Create(ctx, s, metav1.CreateOptions{FieldManager: FieldManager}); err != nil {
		return BootstrapToken{}, fmt.Errorf("create bootstrap token %s: %w", id, err)
	}
	return tok, nil
}

// DeleteBootstrapToken removes a token; a token already gone is not an error.
func DeleteBootstrapToken(ctx context.Context, cs kubernetes.Interface, id string) error {
	err := cs.CoreV1().Secrets(metav1.NamespaceSystem).Delete(ctx, "bootstrap-token-"+id, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete bootstrap token %s: %w", id, err)
	}
	return nil
}
