package kube

import (
	"context"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func TestEnsureBootstrapObjectsIsIdempotent(t *testing.T) {
	ctx := context.Background()
	cs := fake.NewClientset()
	planned, err := EnsureBootstrapObjects(ctx, cs, "kubeconfig-v1", true)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := cs.RbacV1().ClusterRoleBindings().List(ctx, metav1.ListOptions{}); len(n.Items) != 0 {
		t.Fatal("dry run created objects")
	}
	changed, err := EnsureBootstrapObjects(ctx, cs, "kubeconfig-v1", false)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(planned, ",") != strings.Join(changed, ",") {
		t.Fatalf("plan %v differs from what was applied %v", planned, changed)
	}
	if len(changed) != len(BootstrapRBAC())+3 {
		t.Fatalf("first run changed %d objects, want %d: %v", len(changed), len(BootstrapRBAC())+3, changed)
	}
	if p, _ := EnsureBootstrapObjects(ctx, cs, "kubeconfig-v1", true); len(p) != 0 {
		t.Fatalf("plan after apply = %v, want nothing", p)
	}
	again, err := EnsureBootstrapObjects(ctx, cs, "kubeconfig-v1", false)
	if err != nil {
		t.Fatal(err)
	}
	if len(again) != 0 {
		t.Fatalf("second run changed %v, want nothing", again)
	}
	// A changed endpoint (e.g. new VIP) updates only cluster-info.
	again, err = EnsureBootstrapObjects(ctx, cs, "kubeconfig-v2", false)
	if err != nil {
		t.Fatal(err)
	}
	if len(again) != 1 || again[0] != "ConfigMap/kube-public/cluster-info" {
		t.Fatalf("after endpoint change got %v", again)
	}
	// A binding someone edited is put back.
	crb, _ := cs.RbacV1().ClusterRoleBindings().Get(ctx, "kubeadm:kubelet-bootstrap", metav1.GetOptions{})
	crb.Subjects = []rbacv1.Subject{{Kind: "User", Name: "mallory"}}
	if _, err := cs.RbacV1().ClusterRoleBindings().Update(ctx, crb, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	again, err = EnsureBootstrapObjects(ctx, cs, "kubeconfig-v2", false)
	if err != nil {
		t.Fatal(err)
	}
	if len(again) != 1 || again[0] != "ClusterRoleBinding/kubeadm:kubelet-bootstrap" {
		t.Fatalf("after tampering got %v", again)
	}
	crb, _ = cs.RbacV1().ClusterRoleBindings().Get(ctx, "kubeadm:kubelet-bootstrap", metav1.GetOptions{})
	if crb.Subjects[0].Name != BootstrapTokenGroup {
		t.Fatalf("subjects not restored: %+v", crb.Subjects)
	}
}

func TestBootstrapTokenLifecycle(t *testing.T) {
	ctx := context.Background()
	cs := fake.NewClientset()
	now := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	tok, err := CreateBootstrapToken(ctx, cs, 30*time.Minute, now, "kubewright install")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[a-z0-9]{6}\.[a-z0-9]{16}$`).MatchString(tok.String()) {
		t.Fatalf("token %q is not in kubeadm format", tok)
	}
	s, err := cs.CoreV1().Secrets("kube-system").Get(ctx, "bootstrap-token-"+tok.ID, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Type != "bootstrap.kubernetes.io/token" || s.StringData["expiration"] != "2026-11-28T10:30:00Z" {
		t.Fatalf("secret type %q expiration %q", s.Type, s.StringData["expiration"])
	}
	if err := DeleteBootstrapToken(ctx, cs, tok.ID); err != nil {
		t.Fatal(err)
	}
	if err := DeleteBootstrapToken(ctx, cs, tok.ID); err != nil {
		t.Fatalf("deleting a gone token must not fail: %v", err)
	}
}

func TestWaitReadyzReportsLastFailure(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			http.NotFound(w, r)
			return
		}
		if calls.Add(1) < 3 {
			http.Error(w, "[-]etcd failed", http.StatusInternalServerError)
			return
		}
		w.Write([]byte("ok"))
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := WaitReadyz(ctx, srv.URL, 10*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 3 {
		t.Fatalf("probed %d times, want 3", calls.Load())
	}

	bad := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "[-]etcd failed", http.StatusInternalServerError)
	}))
	defer bad.Close()
	ctx2, cancel2 := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel2()
	err := WaitReadyz(ctx2, bad.URL, 10*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "status 500") || !strings.Contains(err.Error(), "etcd failed") {
		t.Fatalf("error should carry the last failure, got %v", err)
	}
}
