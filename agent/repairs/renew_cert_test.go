package repairs

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kubewright/kubewright/agent"
)

// now is second-aligned: certificates carry whole seconds.
var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const day = 24 * time.Hour

type pair struct {
	cert *x509.Certificate
	der  []byte
	key  crypto.Signer
}

func ecKey(t *testing.T) crypto.Signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var serials int64

func sign(t *testing.T, tmpl *x509.Certificate, parent *pair, key crypto.Signer) pair {
	t.Helper()
	serials++
	tmpl.SerialNumber = big.NewInt(serials)
	p, pk := tmpl, key
	if parent != nil {
		p, pk = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p, key.Public(), pk)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return pair{c, der, key}
}

func newCA(t *testing.T, cn string, parent *pair, notAfter time.Time) pair {
	return sign(t, &x509.Certificate{
		Subject:   pkix.Name{CommonName: cn},
		NotBefore: now.Add(-365 * day), NotAfter: notAfter,
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}, parent, ecKey(t))
}

// leafFor is a leaf valid for 365 days, `left` of which remain at now.
func leafFor(t *testing.T, ca pair, cn string, org []string, left time.Duration, key crypto.Signer, eku x509.ExtKeyUsage) pair {
	return sign(t, &x509.Certificate{
		Subject:               pkix.Name{CommonName: cn, Organization: org},
		NotBefore:             now.Add(left - 365*day),
		NotAfter:              now.Add(left),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:           []x509.ExtKeyUsage{eku},
		DNSNames:              []string{"kubernetes", "kubernetes.default", "kubernetes.default.svc.cluster.local"},
		IPAddresses:           []net.IP{net.ParseIP("10.96.0.1").To4(), net.ParseIP("192.168.1.10").To4()},
		BasicConstraintsValid: true,
	}, &ca, key)
}

func keyBlock(t *testing.T, k crypto.Signer) *pem.Block {
	t.Helper()
	if ec, ok := k.(*ecdsa.PrivateKey); ok {
		der, err := x509.MarshalECPrivateKey(ec)
		if err != nil {
			t.Fatal(err)
		}
		return &pem.Block{Type: "EC PRIVATE KEY", Bytes: der}
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return &pem.Block{Type: "PRIVATE KEY", Bytes: der}
}

func writeBlocks(t *testing.T, path string, mode os.FileMode, blocks ...*pem.Block) {
	t.Helper()
	var b bytes.Buffer
	for _, blk := range blocks {
		pem.Encode(&b, blk)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // past the umask
		t.Fatal(err)
	}
}

// install writes p as certPath and its key beside it, as install does.
func install(t *testing.T, p pair, certPath, keyPath string, mode os.FileMode, extra ...*pem.Block) {
	t.Helper()
	writeBlocks(t, certPath, mode, append([]*pem.Block{{Type: "CERTIFICATE", Bytes: p.der}}, extra...)...)
	writeBlocks(t, keyPath, 0o600, keyBlock(t, p.key))
}

func readCertFile(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := firstCert(raw)
	if c == nil {
		t.Fatalf("%s: no certificate", path)
	}
	return c
}

func readAll(t *testing.T, paths ...string) map[string][]byte {
	t.Helper()
	m := map[string][]byte{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		m[p] = b
	}
	return m
}

func assertUnchanged(t *testing.T, before map[string][]byte) {
	t.Helper()
	for p, b := range before {
		got, err := os.ReadFile(p)
		if err != nil || !bytes.Equal(got, b) {
			t.Errorf("%s changed (or went: %v); it must be left byte for byte", p, err)
		}
	}
}

// pki is a master's certificate directory with certificates in every
// situation RenewCert must tell apart.
type pki struct {
	dir               string
	ca, etcdCA, proxy pair
	cas               []CAPair
}

func newPKI(t *testing.T) *pki {
	dir := t.TempDir()
	p := &pki{dir: dir}
	p.ca = newCA(t, "kubernetes", nil, now.Add(10*365*day))
	p.etcdCA = newCA(t, "etcd-ca", nil, now.Add(10*365*day))
	p.proxy = newCA(t, "front-proxy-ca", nil, now.Add(10*365*day))
	install(t, p.ca, filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key"), 0o644)
	install(t, p.etcdCA, filepath.Join(dir, "etcd", "ca.crt"), filepath.Join(dir, "etcd", "ca.key"), 0o644)
	install(t, p.proxy, filepath.Join(dir, "front-proxy-ca.crt"), filepath.Join(dir, "front-proxy-ca.key"), 0o644)
	p.cas = []CAPair{
		{Cert: filepath.Join(dir, "ca.crt"), Key: filepath.Join(dir, "ca.key")},
		{Cert: filepath.Join(dir, "etcd", "ca.crt"), Key: filepath.Join(dir, "etcd", "ca.key")},
	}
	return p
}

func (p *pki) path(name string) string { return filepath.Join(p.dir, name) }

func TestRenewCert(t *testing.T) {
	p := newPKI(t)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	// Expiring within 7 days, signed by a CA we hold: renewed.
	apiserver := leafFor(t, p.ca, "kube-apiserver", nil, 2*day, ecKey(t), x509.ExtKeyUsageServerAuth)
	install(t, apiserver, p.path("apiserver.crt"), p.path("apiserver.key"), 0o644)
	kubeletClient := leafFor(t, p.ca, "kube-apiserver-kubelet-client", []string{"kubeadm:cluster-admins"}, -day, rsaKey, x509.ExtKeyUsageClientAuth) // already expired
	install(t, kubeletClient, p.path("apiserver-kubelet-client.crt"), p.path("apiserver-kubelet-client.key"), 0o600)
	// etcd's leaves are signed by the etcd CA, in .pem files, with the
	// CA appended as a chain.
	etcdServer := leafFor(t, p.etcdCA, "m1", nil, day, ecKey(t), x509.ExtKeyUsageServerAuth)
	install(t, etcdServer, p.path("etcd/server.pem"), p.path("etcd/server-key.pem"), 0o600, &pem.Block{Type: "CERTIFICATE", Bytes: p.etcdCA.der})

	// Left alone: not expiring soon, a CA we lack, a CA certificate, a
	// cert+key bundle the kubelet rotates itself.
	scheduler := leafFor(t, p.ca, "system:kube-scheduler", nil, 300*day, ecKey(t), x509.ExtKeyUsageClientAuth)
	install(t, scheduler, p.path("scheduler.crt"), p.path("scheduler.key"), 0o600)
	proxyClient := leafFor(t, p.proxy, "front-proxy-client", nil, day, ecKey(t), x509.ExtKeyUsageClientAuth)
	install(t, proxyClient, p.path("front-proxy-client.crt"), p.path("front-proxy-client.key"), 0o644)
	intermediate := newCA(t, "intermediate", &p.ca, now.Add(day))
	install(t, intermediate, p.path("intermediate-ca.crt"), p.path("intermediate-ca.key"), 0o644)
	bundle := leafFor(t, p.ca, "system:node:m1", []string{"system:nodes"}, day, ecKey(t), x509.ExtKeyUsageClientAuth)
	writeBlocks(t, p.path("kubelet-client-current.pem"), 0o600, &pem.Block{Type: "CERTIFICATE", Bytes: bundle.der}, keyBlock(t, bundle.key))

	untouched := readAll(t, p.path("scheduler.crt"), p.path("front-proxy-client.crt"), p.path("intermediate-ca.crt"),
		p.path("kubelet-client-current.pem"), p.path("ca.crt"), p.path("etcd/ca.crt"),
		p.path("apiserver.key"), p.path("apiserver-kubelet-client.key"), p.path("etcd/server-key.pem"))

	rec := &recorder{answer: activeAfter(0)}
	r := RenewCert{Dirs: []string{p.dir}, Within: 7 * day, CAs: p.cas, Restart: []string{"kube-apiserver.service", "etcd.service"},
		Run: rec.run, Now: func() time.Time { return now }, Poll: time.Millisecond}
	if r.Name() != "renew-certificates" || r.Scope() != agent.ScopeControlPlane {
		t.Fatalf("name %q scope %q", r.Name(), r.Scope())
	}
	if err := r.Act(context.Background()); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		file string
		old  pair
		ca   pair
		mode os.FileMode
	}{
		{"apiserver.crt", apiserver, p.ca, 0o644},
		{"apiserver-kubelet-client.crt", kubeletClient, p.ca, 0o600},
		{"etcd/server.pem", etcdServer, p.etcdCA, 0o600},
	} {
		t.Run(tc.file, func(t *testing.T) {
			got := readCertFile(t, p.path(tc.file))
			roots := x509.NewCertPool()
			roots.AddCert(tc.ca.cert)
			if _, err := got.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
				t.Fatalf("renewed certificate does not verify against its CA: %v", err)
			}
			old := tc.old.cert
			if !bytes.Equal(got.RawSubject, old.RawSubject) || !bytes.Equal(got.RawSubjectPublicKeyInfo, old.RawSubjectPublicKeyInfo) {
				t.Errorf("subject or public key changed: %s -> %s", old.Subject, got.Subject)
			}
			if !slices.Equal(got.DNSNames, old.DNSNames) || len(got.IPAddresses) != len(old.IPAddresses) || !got.IPAddresses[1].Equal(old.IPAddresses[1]) {
				t.Errorf("SANs changed: %v %v -> %v %v", old.DNSNames, old.IPAddresses, got.DNSNames, got.IPAddresses)
			}
			if got.KeyUsage != old.KeyUsage || !slices.Equal(got.ExtKeyUsage, old.ExtKeyUsage) {
				t.Errorf("usages changed: %v %v -> %v %v", old.KeyUsage, old.ExtKeyUsage, got.KeyUsage, got.ExtKeyUsage)
			}
			if got.SerialNumber.Cmp(old.SerialNumber) == 0 {
				t.Error("serial reused")
			}
			if !got.NotBefore.Equal(now.Add(-5*time.Minute)) || !got.NotAfter.Equal(now.Add(365*day)) || !got.NotAfter.After(old.NotAfter) {
				t.Errorf("validity %s – %s, want %s – %s", got.NotBefore, got.NotAfter, now.Add(-5*time.Minute), now.Add(365*day))
			}
			fi, err := os.Stat(p.path(tc.file))
			if err != nil || fi.Mode().Perm() != tc.mode {
				t.Errorf("mode %v, want %v", fi.Mode().Perm(), tc.mode)
			}
		})
	}
	// The chain after etcd's leaf is kept.
	raw, _ := os.ReadFile(p.path("etcd/server.pem"))
	if _, blocks := firstCert(raw); len(blocks) != 2 || !bytes.Equal(blocks[1].Bytes, p.etcdCA.der) {
		t.Errorf("etcd/server.pem has %d blocks; the CA chain after the leaf was lost", len(blocks))
	}
	assertUnchanged(t, untouched)
	// No temporary files left behind.
	for _, d := range []string{p.dir, p.path("etcd")} {
		ents, _ := os.ReadDir(d)
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), ".") {
				t.Errorf("left %s in %s", e.Name(), d)
			}
		}
	}
	want := []string{
		"systemctl restart kube-apiserver.service", "systemctl is-active kube-apiserver.service",
		"systemctl restart etcd.service", "systemctl is-active etcd.service",
	}
	if got := rec.commands(); !slices.Equal(got, want) {
		t.Errorf("commands %q, want %q", got, want)
	}
}

func TestRenewCertNothingDue(t *testing.T) {
	p := newPKI(t)
	apiserver := leafFor(t, p.ca, "kube-apiserver", nil, 30*day, ecKey(t), x509.ExtKeyUsageServerAuth)
	install(t, apiserver, p.path("apiserver.crt"), p.path("apiserver.key"), 0o644)
	before := readAll(t, p.path("apiserver.crt"))
	rec := &recorder{}
	r := RenewCert{Dirs: []string{p.dir, p.path("missing")}, Within: 7 * day, CAs: p.cas, Restart: []string{"kube-apiserver.service"},
		Run: rec.run, Now: func() time.Time { return now }}
	if err := r.Act(context.Background()); err != nil {
		t.Fatal(err)
	}
	assertUnchanged(t, before)
	if c := rec.commands(); len(c) != 0 {
		t.Fatalf("ran %q with nothing renewed", c)
	}
	// Within is what decides: the same certificate is due within 31 days.
	rec.answer = activeAfter(0)
	r.Within = 31 * day
	if err := r.Act(context.Background()); err != nil {
		t.Fatal(err)
	}
	if c := rec.commands(); !slices.Equal(c, []string{"systemctl restart kube-apiserver.service", "systemctl is-active kube-apiserver.service"}) {
		t.Fatalf("commands %q after renewing", c)
	}
	if got := readCertFile(t, p.path("apiserver.crt")); !got.NotAfter.Equal(now.Add(365 * day)) {
		t.Fatalf("with Within 31d the certificate was not renewed (NotAfter %s)", got.NotAfter)
	}
}

func TestRenewCertKeyProblems(t *testing.T) {
	p := newPKI(t)
	noKey := leafFor(t, p.ca, "no-key", nil, day, ecKey(t), x509.ExtKeyUsageClientAuth)
	writeBlocks(t, p.path("no-key.crt"), 0o644, &pem.Block{Type: "CERTIFICATE", Bytes: noKey.der})
	wrongKey := leafFor(t, p.ca, "wrong-key", nil, day, ecKey(t), x509.ExtKeyUsageClientAuth)
	writeBlocks(t, p.path("wrong-key.crt"), 0o644, &pem.Block{Type: "CERTIFICATE", Bytes: wrongKey.der})
	writeBlocks(t, p.path("wrong-key.key"), 0o600, keyBlock(t, ecKey(t)))
	good := leafFor(t, p.ca, "good", nil, day, ecKey(t), x509.ExtKeyUsageClientAuth)
	install(t, good, p.path("good.crt"), p.path("good.key"), 0o644)
	before := readAll(t, p.path("no-key.crt"), p.path("wrong-key.crt"))

	r := RenewCert{Dirs: []string{p.dir}, Within: 7 * day, CAs: p.cas, Run: (&recorder{}).run, Now: func() time.Time { return now }}
	err := r.Act(context.Background())
	if err == nil {
		t.Fatal("certificates without their key were passed over silently")
	}
	for _, want := range []string{"renewed " + p.path("good.crt"), p.path("no-key.crt"), p.path("wrong-key.key") + " is not its key"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	assertUnchanged(t, before)
	if got := readCertFile(t, p.path("good.crt")); !got.NotAfter.After(good.cert.NotAfter) {
		t.Error("a good certificate beside bad ones was not renewed")
	}
}

func TestRenewCertNeverOutlivesItsCA(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t, "kubernetes", nil, now.Add(100*day))
	install(t, ca, filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key"), 0o644)
	leaf := leafFor(t, ca, "kube-apiserver", nil, day, ecKey(t), x509.ExtKeyUsageServerAuth)
	install(t, leaf, filepath.Join(dir, "apiserver.crt"), filepath.Join(dir, "apiserver.key"), 0o644)
	cas := []CAPair{{Cert: filepath.Join(dir, "ca.crt"), Key: filepath.Join(dir, "ca.key")}}
	r := RenewCert{Dirs: []string{dir}, Within: 7 * day, CAs: cas, Run: (&recorder{}).run, Now: func() time.Time { return now }}
	if err := r.Act(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := readCertFile(t, filepath.Join(dir, "apiserver.crt")); !got.NotAfter.Equal(ca.cert.NotAfter) {
		t.Fatalf("renewed NotAfter %s, want the CA's %s", got.NotAfter, ca.cert.NotAfter)
	}

	// A CA about to expire itself cannot help: say so, touch nothing.
	dying := newCA(t, "kubernetes", nil, now.Add(3*day))
	install(t, dying, filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key"), 0o644)
	leaf = leafFor(t, dying, "kube-apiserver", nil, day, ecKey(t), x509.ExtKeyUsageServerAuth)
	install(t, leaf, filepath.Join(dir, "apiserver.crt"), filepath.Join(dir, "apiserver.key"), 0o644)
	before := readAll(t, filepath.Join(dir, "apiserver.crt"))
	err := r.Act(context.Background())
	if err == nil || !strings.Contains(err.Error(), "rotate the CA") {
		t.Fatalf("error %v, want advice to rotate the CA", err)
	}
	assertUnchanged(t, before)
}

func TestRenewCertNeedsACA(t *testing.T) {
	dir := t.TempDir()
	r := RenewCert{Dirs: []string{dir}, Within: day, CAs: []CAPair{{Cert: filepath.Join(dir, "ca.crt"), Key: filepath.Join(dir, "ca.key")}}, Run: (&recorder{}).run}
	if err := r.Act(context.Background()); err == nil || !strings.Contains(err.Error(), "no CA certificate") {
		t.Fatalf("error %v, want no CA", err)
	}
}
