package checks

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubewright/kubewright/agent"
)

// certNow is the fixed "now" of the certificate tests.
var certNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// mkCert makes a real certificate, signed by a real key, that expires at
// notAfter; isCA makes it a self-signed CA. It returns PEM (and the key's
// PEM, for cert+key files) and DER.
func mkCert(t *testing.T, cn string, notAfter time.Time, isCA bool) (certPEM, keyPEM, der []byte) {
	t.Helper()
	key := genKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             notAfter.Add(-400 * 24 * time.Hour),
		NotAfter:              notAfter,
		BasicConstraintsValid: true,
		IsCA:                  isCA,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), der
}

func inDays(n float64) time.Time { return certNow.Add(time.Duration(n * 24 * float64(time.Hour))) }

// pkiTree lays out a realistic /etc/kubernetes/pki and /var/lib/kubelet/pki
// under a temp dir, with every certificate valid for a long time, and
// returns the two dirs. The kubelet dir holds an expired rotated client
// certificate next to kubelet-client-current.pem, as a real one does.
func pkiTree(t *testing.T) (pki, kubelet string) {
	t.Helper()
	root := t.TempDir()
	pki, kubelet = filepath.Join(root, "pki"), filepath.Join(root, "kubelet-pki")
	ca, cakey, _ := mkCert(t, "kubernetes", inDays(3650), true)
	writeFile(t, filepath.Join(pki, "ca.crt"), ca)
	writeFile(t, filepath.Join(pki, "ca.key"), cakey)
	api, apikey, _ := mkCert(t, "kube-apiserver", inDays(365), false)
	writeFile(t, filepath.Join(pki, "apiserver.crt"), api)
	writeFile(t, filepath.Join(pki, "apiserver.key"), apikey)
	writeFile(t, filepath.Join(pki, "sa.pub"), []byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"))
	etcdCA, _, _ := mkCert(t, "etcd-ca", inDays(3650), true)
	writeFile(t, filepath.Join(pki, "etcd", "ca.crt"), etcdCA)
	srv, _, _ := mkCert(t, "etcd-server", inDays(300), false)
	writeFile(t, filepath.Join(pki, "etcd", "server.crt"), srv)

	old, oldkey, _ := mkCert(t, "system:node:n1", inDays(-30), false)
	writeFile(t, filepath.Join(kubelet, "kubelet-client-2025-05-01-10-00-00.pem"), append(old, oldkey...))
	cur, curkey, _ := mkCert(t, "system:node:n1", inDays(200), false)
	curFile := writeFile(t, filepath.Join(kubelet, "kubelet-client-2026-05-01-10-00-00.pem"), append(cur, curkey...))
	if err := os.Symlink(filepath.Base(curFile), filepath.Join(kubelet, "kubelet-client-current.pem")); err != nil {
		t.Fatal(err)
	}
	serving, servingKey, _ := mkCert(t, "n1@123", inDays(250), false)
	writeFile(t, filepath.Join(kubelet, "kubelet.crt"), serving)
	writeFile(t, filepath.Join(kubelet, "kubelet.key"), servingKey)
	return pki, kubelet
}

func TestCerts(t *testing.T) {
	run := func(dirs ...string) agent.Result {
		return Certs{Dirs: dirs, RenewBefore: 30 * 24 * time.Hour, Now: func() time.Time { return certNow }}.Run(context.Background())
	}

	t.Run("all valid, rotated kubelet certs ignored", func(t *testing.T) {
		pki, kubelet := pkiTree(t)
		r := run(pki, kubelet)
		expect(t, r, agent.OK, "OK", "6 under", "30-day renewal window", "soonest leaf "+filepath.Join(kubelet, "kubelet-client-current.pem")+" in 200 days", "soonest CA ")
	})

	tests := []struct {
		name   string
		file   string // relative to the pki dir
		cn     string
		in     float64 // days from now
		isCA   bool
		status agent.Status
		reason string
		want   []string
	}{
		{"leaf expiring", "apiserver.crt", "kube-apiserver", 3.5, false, agent.Problem, ReasonCertificateExpiring,
			[]string{"certificate ", "apiserver.crt (CN=kube-apiserver) expires in 3 days (2026-06-05T00:00:00Z), within the 30-day renewal window"}},
		{"expiring in hours", "front-proxy-client.crt", "front-proxy-client", 0.5, false, agent.Problem, ReasonCertificateExpiring, []string{"expires in 12h"}},
		{"leaf expired in a subdir", "etcd/peer.crt", "etcd-peer", -2.5, false, agent.Problem, ReasonCertificateExpired,
			[]string{"etcd/peer.crt (CN=etcd-peer) expired 2 days ago"}},
		{"CA expiring is named as CA", "front-proxy-ca.crt", "front-proxy-ca", 10, true, agent.Problem, ReasonCertificateExpiring,
			[]string{"CA certificate ", "front-proxy-ca.crt"}},
		{"just outside the window", "apiserver.crt", "kube-apiserver", 31, false, agent.OK, "OK", []string{"in 31 days"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pki, kubelet := pkiTree(t)
			c, _, _ := mkCert(t, tt.cn, inDays(tt.in), tt.isCA)
			writeFile(t, filepath.Join(pki, tt.file), c)
			expect(t, run(pki, kubelet), tt.status, tt.reason, tt.want...)
		})
	}

	t.Run("expired beats expiring, others counted", func(t *testing.T) {
		pki, kubelet := pkiTree(t)
		a, _, _ := mkCert(t, "a", inDays(5), false)
		b, _, _ := mkCert(t, "b", inDays(-1), false)
		ca, _, _ := mkCert(t, "c", inDays(6), true)
		writeFile(t, filepath.Join(pki, "a.crt"), a)
		writeFile(t, filepath.Join(pki, "b.crt"), b)
		writeFile(t, filepath.Join(pki, "c.crt"), ca)
		expect(t, run(pki, kubelet), agent.Problem, ReasonCertificateExpired, "b.crt (CN=b) expired 24h ago", "2 more expired or within the 30-day renewal window (leaf: 1, CA: 1)")
	})

	t.Run("bundle: every block counts", func(t *testing.T) {
		dir := t.TempDir()
		a, _, _ := mkCert(t, "good", inDays(300), false)
		b, _, _ := mkCert(t, "bad", inDays(2), false)
		writeFile(t, filepath.Join(dir, "bundle.pem"), append(a, b...))
		expect(t, run(dir), agent.Problem, ReasonCertificateExpiring, "bundle.pem (CN=bad)")
	})

	t.Run("DER .crt", func(t *testing.T) {
		dir := t.TempDir()
		_, _, der := mkCert(t, "der", inDays(1), false)
		writeFile(t, filepath.Join(dir, "der.crt"), der)
		expect(t, run(dir), agent.Problem, ReasonCertificateExpiring, "der.crt (CN=der)")
	})

	t.Run("unreadable files are noted, not fatal", func(t *testing.T) {
		pki, kubelet := pkiTree(t)
		writeFile(t, filepath.Join(pki, "broken.crt"), []byte("garbage"))
		writeFile(t, filepath.Join(pki, "broken2.crt"), []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
		expect(t, run(pki, kubelet), agent.OK, "OK", "2 files unreadable")
	})

	t.Run("no certificates", func(t *testing.T) {
		empty := t.TempDir()
		writeFile(t, filepath.Join(empty, "only.key.pem"), []byte("-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n"))
		expect(t, run(empty, filepath.Join(empty, "missing")), agent.Unknown, ReasonNoCertificates, "none found")
	})

	t.Run("key material never in messages", func(t *testing.T) {
		pki, kubelet := pkiTree(t)
		r := run(pki, kubelet)
		if strings.Contains(r.Message, "PRIVATE") || strings.Contains(r.Message, "BEGIN") {
			t.Fatalf("message %q", r.Message)
		}
	})

	t.Run("defaults", func(t *testing.T) {
		pki, _ := pkiTree(t)
		c, _, _ := mkCert(t, "x", inDays(6), false) // within the default 7 days
		writeFile(t, filepath.Join(pki, "x.crt"), c)
		r := Certs{Dirs: []string{pki}, Now: func() time.Time { return certNow }}.Run(context.Background())
		expect(t, r, agent.Problem, ReasonCertificateExpiring, "7-day")
	})
}

func TestExpiring(t *testing.T) {
	pki, kubelet := pkiTree(t)
	a, _, _ := mkCert(t, "soon", inDays(5), false)
	writeFile(t, filepath.Join(pki, "soon.crt"), a)
	got, err := Expiring([]string{pki, kubelet, filepath.Join(pki, "missing")}, 300*24*time.Hour, certNow)
	if err != nil {
		t.Fatal(err)
	}
	// soon (5d), kubelet-client-current (200d), kubelet.crt (250d), etcd/server (300d is not before now+300d).
	want := []string{filepath.Join(pki, "soon.crt"), filepath.Join(kubelet, "kubelet-client-current.pem"), filepath.Join(kubelet, "kubelet.crt")}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i := range want {
		if got[i].Path != want[i] || got[i].IsCA {
			t.Fatalf("got[%d] = %+v, want %s", i, got[i], want[i])
		}
	}
	if got[0].Subject != "CN=soon" || !got[0].NotAfter.Equal(inDays(5).Truncate(time.Second)) {
		t.Fatalf("got %+v", got[0])
	}

	all, err := Expiring([]string{pki}, 20*365*24*time.Hour, certNow)
	if err != nil {
		t.Fatal(err)
	}
	cas := 0
	for _, c := range all {
		if c.IsCA {
			cas++
		}
	}
	if cas != 2 {
		t.Fatalf("want the 2 CAs flagged, got %+v", all)
	}

	writeFile(t, filepath.Join(pki, "broken.crt"), []byte("garbage"))
	got, err = Expiring([]string{pki}, 10*24*time.Hour, certNow)
	if err == nil || !strings.Contains(err.Error(), "broken.crt") {
		t.Fatalf("err = %v", err)
	}
	if len(got) != 1 || got[0].Subject != "CN=soon" {
		t.Fatalf("partial result %+v", got)
	}
}
