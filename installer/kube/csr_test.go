package kube

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"net"
	"net/url"
	"testing"

	certsv1 "k8s.io/api/certificates/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

type csrOpts struct {
	cn     string
	org    []string
	dns    []string
	ips    []string
	uri    string
	user   string
	groups []string
	signer string
	usages []certsv1.KeyUsage
}

func makeCSR(t *testing.T, name string, o csrOpts) *certsv1.CertificateSigningRequest {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.CertificateRequest{Subject: pkix.Name{CommonName: o.cn, Organization: o.org}, DNSNames: o.dns}
	for _, ip := range o.ips {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.ParseIP(ip))
	}
	if o.uri != "" {
		u, _ := url.Parse(o.uri)
		tmpl.URIs = []*url.URL{u}
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	return &certsv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: certsv1.CertificateSigningRequestSpec{
			Request:    pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}),
			SignerName: o.signer, Usages: o.usages, Username: o.user, Groups: o.groups,
		},
	}
}

// good is what kubelet 1.37 sends with serverTLSBootstrap, --hostname-override
// and --node-ip.
func good() csrOpts {
	return csrOpts{
		cn: "system:node:w1", org: []string{"system:nodes"}, dns: []string{"w1"}, ips: []string{"10.0.0.21"},
		user: "system:node:w1", groups: []string{"system:nodes", "system:authenticated"},
		signer: certsv1.KubeletServingSignerName,
		usages: []certsv1.KeyUsage{certsv1.UsageDigitalSignature, certsv1.UsageServerAuth},
	}
}

func TestKubeletServingCSRProblem(t *testing.T) {
	node := NodeIdentity{Name: "w1", Addresses: []string{"192.168.1.21", "10.0.0.21"}}
	tests := []struct {
		name string
		mod  func(*csrOpts)
		want string
	}{
		{"matches the inventory", func(*csrOpts) {}, ""},
		{"public address only", func(o *csrOpts) { o.ips = []string{"192.168.1.21"} }, ""},
		{"IP only, no DNS", func(o *csrOpts) { o.dns = nil }, ""},
		{"another node's IP", func(o *csrOpts) { o.ips = []string{"10.0.0.11"} },
			"IP SAN 10.0.0.11 is not one of the node's inventory addresses 192.168.1.21, 10.0.0.21"},
		{"extra DNS name", func(o *csrOpts) { o.dns = []string{"w1", "kubernetes.default"} },
			`DNS SAN "kubernetes.default" is not the node's inventory name "w1"`},
		{"requested by another node", func(o *csrOpts) { o.user = "system:node:w2" }, `requested by "system:node:w2", not "system:node:w1"`},
		{"subject of another node", func(o *csrOpts) { o.cn = "system:node:m1" },
			`subject CN="system:node:m1" O=["system:nodes"], want CN="system:node:w1" O=[system:nodes]`},
		{"not in system:nodes", func(o *csrOpts) { o.groups = []string{"system:authenticated"} }, "requester is not in group system:nodes"},
		{"client signer", func(o *csrOpts) { o.signer = certsv1.KubeAPIServerClientKubeletSignerName },
			"signer kubernetes.io/kube-apiserver-client-kubelet, not kubernetes.io/kubelet-serving"},
		{"client auth usage", func(o *csrOpts) { o.usages = append(o.usages, certsv1.UsageClientAuth) }, `usage "client auth" not allowed for a serving certificate`},
		{"no server auth", func(o *csrOpts) { o.usages = []certsv1.KeyUsage{certsv1.UsageDigitalSignature} }, "usages lack server auth"},
		{"URI SAN", func(o *csrOpts) { o.uri = "spiffe://x/y" }, "request has email or URI SANs"},
		{"no SANs", func(o *csrOpts) { o.dns, o.ips = nil, nil }, "request has no DNS or IP SANs"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := good()
			tc.mod(&o)
			if got := KubeletServingCSRProblem(makeCSR(t, "c", o), node); got != tc.want {
				t.Fatalf("problem = %q, want %q", got, tc.want)
			}
		})
	}
	t.Run("garbage request", func(t *testing.T) {
		c := makeCSR(t, "c", good())
		c.Spec.Request = []byte("not pem")
		if got := KubeletServingCSRProblem(c, node); got != "request is not a PEM certificate request" {
			t.Fatal(got)
		}
	})
}

func TestApproveKubeletServingCSRs(t *testing.T) {
	ctx := context.Background()
	node := NodeIdentity{Name: "w1", Addresses: []string{"10.0.0.21"}}
	bad := good()
	bad.ips = []string{"10.0.0.99"}
	other := good()
	other.cn, other.user, other.dns, other.ips = "system:node:w2", "system:node:w2", []string{"w2"}, []string{"10.0.0.22"}
	done := makeCSR(t, "csr-done", good())
	done.Status.Conditions = []certsv1.CertificateSigningRequestCondition{{Type: certsv1.CertificateApproved, Status: "True"}}
	cs := fake.NewClientset(makeCSR(t, "csr-ok", good()), makeCSR(t, "csr-bad", bad), makeCSR(t, "csr-w2", other), done)
	res, err := ApproveKubeletServingCSRs(ctx, cs, node)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Approved) != 1 || res.Approved[0] != "csr-ok" {
		t.Fatalf("approved = %v", res.Approved)
	}
	if len(res.Refused) != 1 || res.Refused["csr-bad"] == "" {
		t.Fatalf("refused = %v", res.Refused)
	}
	// Approving again finds nothing pending for w1 that matches.
	res, err = ApproveKubeletServingCSRs(ctx, cs, node)
	if err != nil || len(res.Approved) != 0 {
		t.Fatalf("second pass approved %v, %v", res.Approved, err)
	}
	got, _ := cs.CertificatesV1().CertificateSigningRequests().Get(ctx, "csr-w2", metav1.GetOptions{})
	if len(got.Status.Conditions) != 0 {
		t.Fatal("another node's CSR was touched")
	}
}
