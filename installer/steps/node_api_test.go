package steps

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	certsv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/kubewright/kubewright/installer/engine"
	"github.com/kubewright/kubewright/installer/kube"
	"github.com/kubewright/kubewright/installer/steps/stepkit/stepkittest"
)

// fakeCluster is a fake API whose CSR approvals make the fake kubelet's
// serving certificate appear on the host, as the real kubelet fetches it.
type fakeCluster struct {
	cs   *fake.Clientset
	root string
}

func (f *fakeCluster) client(context.Context, *engine.Target) (kubernetes.Interface, error) {
	return f.cs, nil
}

// kubeletJoinHook plays the kubelet's TLS bootstrap: with a bootstrap
// kubeconfig present it "gets" a client certificate and kubelet.conf.
const kubeletJoinHook = `#!/bin/sh
d=$(dirname "$0")/..
if [ -s "$d/etc/kubernetes/bootstrap-kubelet.conf" ]; then
  cp "$d/etc/kubernetes/bootstrap-kubelet.conf" "$d/seen-bootstrap"
  mkdir -p "$d/var/lib/kubelet/pki"
  echo client > "$d/var/lib/kubelet/pki/kubelet-client-current.pem"
  echo kubeconfig > "$d/etc/kubernetes/kubelet.conf"
fi
`

func fakeAPI(t *testing.T, root string) *fakeCluster {
	t.Helper()
	f := &fakeCluster{cs: fake.NewClientset(), root: root}
	stepkittest.WriteFile(t, root, "/hooks/kubelet.service", kubeletJoinHook, 0o755)
	f.cs.PrependReactor("update", "certificatesigningrequests", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() == "approval" {
			stepkittest.WriteFile(t, root, "/var/lib/kubelet/pki/kubelet-server-current.pem", "serving\n", 0o600)
		}
		return false, nil, nil
	})
	return f
}

// servingCSR is what a kubelet with serverTLSBootstrap sends.
func servingCSR(t *testing.T, name, node string, dns []string, ips ...string) *certsv1.CertificateSigningRequest {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.CertificateRequest{Subject: pkix.Name{CommonName: "system:node:" + node, Organization: []string{"system:nodes"}}, DNSNames: dns}
	for _, ip := range ips {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.ParseIP(ip))
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	return &certsv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: certsv1.CertificateSigningRequestSpec{
			Request:    pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}),
			SignerName: certsv1.KubeletServingSignerName,
			Usages:     []certsv1.KeyUsage{certsv1.UsageDigitalSignature, certsv1.UsageServerAuth},
			Username:   "system:node:" + node,
			Groups:     []string{"system:nodes", "system:authenticated"},
		},
	}
}

func approved(t *testing.T, cs kubernetes.Interface, name string) bool {
	t.Helper()
	csr, err := cs.CertificatesV1().CertificateSigningRequests().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range csr.Status.Conditions {
		if c.Type == certsv1.CertificateApproved {
			return true
		}
	}
	return false
}

func TestKubeletJoinsWithOneTimeTokenAndApprovesOnlyMatchingCSR(t *testing.T) {
	ctx := context.Background()
	f := newCPFixture(t, cpInventory)
	tg, _, root := f.nodeTarget(t, "w1")
	api := fakeAPI(t, root)
	// w1's real request, and a forged one from w1 claiming m1's address.
	for _, c := range []*certsv1.CertificateSigningRequest{
		servingCSR(t, "csr-forged", "w1", []string{"w1"}, "10.20.0.11"),
		servingCSR(t, "csr-good", "w1", []string{"w1"}, "10.20.0.21"),
		servingCSR(t, "csr-other-node", "w2", []string{"w2"}, "10.20.0.22"),
	} {
		if _, err := api.cs.CertificatesV1().CertificateSigningRequests().Create(ctx, c, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	s := Kubelet{Client: api.client, JoinTimeout: 5 * time.Second, Poll: 10 * time.Millisecond}
	plan := converge(t, s, tg)
	want := "enable kubelet.service,start kubelet.service,join node w1,approve serving certificate of w1"
	if got := strings.Join(actions(plan), ","); got != want {
		t.Fatalf("actions = %s\nwant %s", got, want)
	}
	// The kubelet saw a bootstrap kubeconfig with a token that existed then
	// and is gone now; the file is removed after the join.
	seen, ok := stepkittest.ReadFile(t, root, "/seen-bootstrap")
	if !ok || !strings.Contains(seen, "server: https://10.20.0.100:8443") {
		t.Fatalf("bootstrap kubeconfig seen by the kubelet:\n%s", seen)
	}
	var tokenID string
	for _, a := range api.cs.Actions() {
		if c, ok := a.(k8stesting.CreateAction); ok && a.GetResource().Resource == "secrets" {
			s := c.GetObject().(*corev1.Secret)
			tokenID = s.StringData["token-id"]
			if s.Type != corev1.SecretTypeBootstrapToken || !strings.Contains(seen, "token: "+tokenID+"."+s.StringData["token-secret"]) {
				t.Fatalf("bootstrap kubeconfig does not carry the created token")
			}
		}
	}
	if tokenID == "" {
		t.Fatal("no bootstrap token was created")
	}
	if secrets, _ := api.cs.CoreV1().Secrets("kube-system").List(ctx, metav1.ListOptions{}); len(secrets.Items) != 0 {
		t.Fatalf("bootstrap token left after the join: %v", secrets.Items)
	}
	if _, ok := stepkittest.ReadFile(t, root, "/etc/kubernetes/bootstrap-kubelet.conf"); ok {
		t.Fatal("bootstrap kubeconfig left on the host")
	}
	if !approved(t, api.cs, "csr-good") || approved(t, api.cs, "csr-forged") || approved(t, api.cs, "csr-other-node") {
		t.Fatal("only w1's CSR with w1's inventory address may be approved")
	}
	unit, _ := stepkittest.ReadFile(t, root, "/etc/systemd/system/kubelet.service")
	for _, w := range []string{"--node-ip=10.20.0.21", "--hostname-override=w1", "--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf"} {
		if !strings.Contains(unit, w) {
			t.Errorf("kubelet unit lacks %s", w)
		}
	}
	conf, _ := stepkittest.ReadFile(t, root, "/var/lib/kubelet/config.yaml")
	for _, w := range []string{"clusterDNS:\n  - 10.96.0.10", "serverTLSBootstrap: true", "readOnlyPort: 0", "anonymous:\n    enabled: false"} {
		if !strings.Contains(conf, w) {
			t.Errorf("kubelet config lacks %q", w)
		}
	}
	if strings.Contains(conf, "registerWithTaints") {
		t.Error("a worker without inventory taints registers untainted")
	}
}

func TestKubeletRefusesMismatchedServingCSR(t *testing.T) {
	ctx := context.Background()
	f := newCPFixture(t, cpInventory)
	tg, _, root := f.nodeTarget(t, "w1")
	api := fakeAPI(t, root)
	if _, err := api.cs.CertificatesV1().CertificateSigningRequests().Create(ctx, servingCSR(t, "csr-evil", "w1", []string{"w1", "m1"}, "10.20.0.21"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	s := Kubelet{Client: api.client, JoinTimeout: 200 * time.Millisecond, Poll: 10 * time.Millisecond}
	plan, err := s.Plan(ctx, tg)
	if err != nil {
		t.Fatal(err)
	}
	err = s.Apply(ctx, tg, plan)
	want := `kubelet on w1 has no serving certificate after 200ms; CSRs left pending because they do not match the inventory: csr-evil: DNS SAN "m1" is not the node's inventory name "w1"`
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("err = %v\nwant prefix %s", err, want)
	}
	if approved(t, api.cs, "csr-evil") {
		t.Fatal("mismatched CSR approved")
	}
	// The join itself happened and its token is gone even though the step failed.
	if secrets, _ := api.cs.CoreV1().Secrets("kube-system").List(ctx, metav1.ListOptions{}); len(secrets.Items) != 0 {
		t.Fatal("bootstrap token left after a failed step")
	}
}

func TestMasterKubeletRegistersTainted(t *testing.T) {
	f := newCPFixture(t, cpInventory)
	tg, _, root := f.nodeTarget(t, "m1")
	api := fakeAPI(t, root)
	if _, err := api.cs.CertificatesV1().CertificateSigningRequests().Create(context.Background(), servingCSR(t, "csr-m1", "m1", []string{"m1"}, "10.20.0.11"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	converge(t, Kubelet{Client: api.client, JoinTimeout: 5 * time.Second, Poll: 10 * time.Millisecond}, tg)
	conf, _ := stepkittest.ReadFile(t, root, "/var/lib/kubelet/config.yaml")
	if !strings.Contains(conf, "registerWithTaints:\n  - key: node-role.kubernetes.io/control-plane\n    effect: NoSchedule\n") {
		t.Fatalf("master kubelet config:\n%s", conf)
	}
}

func TestKubeProxyConvergesWithItsOwnCertificate(t *testing.T) {
	ctx := context.Background()
	f := newCPFixture(t, cpInventory)
	tg, _, root := f.nodeTarget(t, "w1")
	api := fakeAPI(t, root)
	plan := converge(t, KubeProxy{Client: api.client}, tg)
	if !strings.Contains(strings.Join(actions(plan), ","), "apply "+kubeProxyRBACObject) {
		t.Fatalf("plan = %v", plan)
	}
	crb, err := api.cs.RbacV1().ClusterRoleBindings().Get(ctx, "kubewright:node-proxier", metav1.GetOptions{})
	if err != nil || crb.RoleRef.Name != "system:node-proxier" || crb.Subjects[0].Name != kube.KubeProxyUser {
		t.Fatalf("RBAC: %+v %v", crb, err)
	}
	kc, _ := stepkittest.ReadFile(t, root, "/etc/kubernetes/kube-proxy.conf")
	if !strings.Contains(kc, "server: https://10.20.0.100:8443") || !strings.Contains(kc, "client-certificate-data:") {
		t.Fatalf("kube-proxy kubeconfig:\n%s", kc)
	}
	certPEM, err := os.ReadFile(filepath.Join(PKIDir(f.stateDir), kubeProxyCertFile))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(certPEM)
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil || cert.Subject.CommonName != "system:kube-proxy" || cert.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth {
		t.Fatalf("kube-proxy cert: %+v %v", cert.Subject, err)
	}
	if st, _ := os.Stat(filepath.Join(PKIDir(f.stateDir), kubeProxyKeyFile)); st.Mode().Perm() != 0o600 {
		t.Fatalf("key mode %o", st.Mode().Perm())
	}
	// Another node reuses the same credential: nothing re-issued.
	tg2, _, _ := f.nodeTarget(t, "m1")
	converge(t, KubeProxy{Client: api.client}, tg2)
	again, _ := os.ReadFile(filepath.Join(PKIDir(f.stateDir), kubeProxyCertFile))
	if string(again) != string(certPEM) {
		t.Fatal("kube-proxy certificate re-issued for a second node")
	}
	// ipvs mode changes the config and restarts kube-proxy only.
	f.cluster.Spec.Kubernetes.ProxyMode = "ipvs"
	plan, err = KubeProxy{Client: api.client}.Plan(ctx, tg)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(actions(plan), ","); got != "restart kube-proxy.service" {
		t.Fatalf("after switching to ipvs: %s", got)
	}
}

func TestNodeLabelsAndTaints(t *testing.T) {
	ctx := context.Background()
	inv := strings.Replace(cpInventory, "    - {name: w1, address: 10.20.0.21}", `    - name: w1
      address: 10.20.0.21
      labels: {disk: ssd}
      taints: [{key: dedicated, value: gpu, effect: NoExecute}]`, 1)
	f := newCPFixture(t, inv)
	cs := fake.NewClientset(
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "w1", Labels: map[string]string{"kubernetes.io/hostname": "w1", "disk": "hdd"}},
			Spec: corev1.NodeSpec{Taints: []corev1.Taint{{Key: "dedicated", Value: "cpu", Effect: corev1.TaintEffectNoExecute}, {Key: "node.kubernetes.io/not-ready", Effect: corev1.TaintEffectNoSchedule}}}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "m1"}},
	)
	client := func(context.Context, *engine.Target) (kubernetes.Interface, error) { return cs, nil }
	tests := []struct {
		host       string
		wantPlan   []string
		wantLabels map[string]string
		wantTaints []string
	}{
		{"w1", []string{"set node/w1 label disk=ssd", "set node/w1 label node-role.kubernetes.io/worker=", "set node/w1 taint dedicated=gpu:NoExecute"},
			map[string]string{"disk": "ssd", "node-role.kubernetes.io/worker": "", "kubernetes.io/hostname": "w1"},
			[]string{"node.kubernetes.io/not-ready=:NoSchedule", "dedicated=gpu:NoExecute"}},
		{"m1", []string{"set node/m1 label node-role.kubernetes.io/control-plane=", "set node/m1 taint node-role.kubernetes.io/control-plane=:NoSchedule"},
			map[string]string{"node-role.kubernetes.io/control-plane": ""},
			[]string{"node-role.kubernetes.io/control-plane=:NoSchedule"}},
	}
	for _, tc := range tests {
		t.Run(tc.host, func(t *testing.T) {
			tg, _, _ := f.target(t, tc.host)
			plan := converge(t, NodeLabels{Client: client}, tg)
			var got []string
			for _, c := range plan {
				got = append(got, c.String())
			}
			if strings.Join(got, "\n") != strings.Join(tc.wantPlan, "\n") {
				t.Fatalf("plan:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.wantPlan, "\n"))
			}
			n, _ := cs.CoreV1().Nodes().Get(ctx, tc.host, metav1.GetOptions{})
			for k, v := range tc.wantLabels {
				if n.Labels[k] != v {
					t.Errorf("label %s = %q, want %q", k, n.Labels[k], v)
				}
			}
			var taints []string
			for _, tt := range n.Spec.Taints {
				taints = append(taints, tt.Key+"="+tt.Value+":"+string(tt.Effect))
			}
			if strings.Join(taints, ",") != strings.Join(tc.wantTaints, ",") {
				t.Fatalf("taints = %v, want %v", taints, tc.wantTaints)
			}
		})
	}
	// A node that has not registered: planned, and Apply gives up naming it.
	tg, _, _ := f.target(t, "m2")
	plan, err := NodeLabels{Client: client}.Plan(ctx, tg)
	if err != nil || len(plan) != 2 || plan[0].Detail != "node not registered yet" {
		t.Fatalf("plan for an unregistered node = %v, %v", plan, err)
	}
	err = NodeLabels{Client: client, RegisterTimeout: 50 * time.Millisecond, Poll: 10 * time.Millisecond}.Apply(ctx, tg, plan)
	if err == nil || !strings.Contains(err.Error(), "node m2 not registered after 50ms") {
		t.Fatalf("err = %v", err)
	}
}
