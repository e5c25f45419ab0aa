package repairs

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// recorder is a Runner that records calls and answers from a script.
type recorder struct {
	mu     sync.Mutex
	calls  []string
	answer func(cmd string) (string, error)
}

func (r *recorder) run(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := name + " " + strings.Join(args, " ")
	r.mu.Lock()
	r.calls = append(r.calls, cmd)
	r.mu.Unlock()
	out, err := r.answer(cmd)
	return []byte(out), err
}

func TestRestartRuntimeOrderAndWait(t *testing.T) {
	polls := 0
	rec := &recorder{answer: func(cmd string) (string, error) {
		if strings.HasPrefix(cmd, "systemctl is-active containerd") {
			polls++
			if polls < 3 {
				return "activating\n", errors.New("exit 3")
			}
		}
		return "active\n", nil
	}}
	if err := (RestartRuntime{Run: rec.run}).Act(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(rec.calls, "|")
	want := "systemctl restart containerd.service|systemctl is-active containerd.service|systemctl is-active containerd.service|systemctl is-active containerd.service|systemctl restart kubelet.service|systemctl is-active kubelet.service"
	if got != want {
		t.Fatalf("calls\n%s\nwant\n%s", got, want)
	}
}

func TestRestartUnitNeverActiveNamesStateAndLog(t *testing.T) {
	rec := &recorder{answer: func(cmd string) (string, error) {
		switch {
		case strings.HasPrefix(cmd, "systemctl is-active"):
			return "failed\n", errors.New("exit 3")
		case strings.HasPrefix(cmd, "journalctl"):
			return "etcd: bind: address already in use\n", nil
		}
		return "", nil
	}}
	r := RestartUnit{Unit: "etcd.service", Wait: 500 * time.Millisecond, Run: rec.run}
	if r.Name() != "restart-etcd" {
		t.Fatalf("name %q", r.Name())
	}
	err := r.Act(context.Background())
	if err == nil || !strings.Contains(err.Error(), `etcd.service is "failed"`) || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("error %v, want the unit's state and its last log line", err)
	}
}

func TestRenewCert(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kubernetes"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(3650 * 24 * time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, _ := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	ca, _ := x509.ParseCertificate(caDER)
	writePEM(t, filepath.Join(dir, "ca.crt"), "CERTIFICATE", caDER, 0o644)
	kb, _ := x509.MarshalECPrivateKey(caKey)
	writePEM(t, filepath.Join(dir, "ca.key"), "EC PRIVATE KEY", kb, 0o600)

	leaf := func(name string, notAfter time.Time, signer *ecdsa.PrivateKey, parent *x509.Certificate) *ecdsa.PrivateKey {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: name, Organization: []string{"o"}}, DNSNames: []string{"a.example"}, IPAddresses: []net.IP{net.ParseIP("10.0.0.1")}, NotBefore: notAfter.Add(-365 * 24 * time.Hour), NotAfter: notAfter, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, k.Public(), signer)
		if err != nil {
			t.Fatal(err)
		}
		writePEM(t, filepath.Join(dir, name+".crt"), "CERTIFICATE", der, 0o640)
		b, _ := x509.MarshalECPrivateKey(k)
		writePEM(t, filepath.Join(dir, name+".key"), "EC PRIVATE KEY", b, 0o600)
		return k
	}
	soonKey := leaf("soon", now.Add(48*time.Hour), caKey, ca)
	leaf("later", now.Add(200*24*time.Hour), caKey, ca)
	otherCAKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	otherCA := &x509.Certificate{SerialNumber: big.NewInt(9), Subject: pkix.Name{CommonName: "etcd-ca"}, IsCA: true, BasicConstraintsValid: true}
	leaf("foreign", now.Add(24*time.Hour), otherCAKey, otherCA)
	laterBefore, _ := os.ReadFile(filepath.Join(dir, "later.crt"))

	rec := &recorder{answer: func(string) (string, error) { return "active", nil }}
	r := RenewCert{Dirs: []string{dir}, Within: 7 * 24 * time.Hour, CAs: []CAPair{{filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")}}, Restart: []string{"kube-apiserver.service"}, Run: rec.run, Now: func() time.Time { return now }}
	if err := r.Act(context.Background()); err != nil {
		t.Fatal(err)
	}
	c, err := readCert(filepath.Join(dir, "soon.crt"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CheckSignatureFrom(ca); err != nil {
		t.Fatalf("renewed cert not signed by the CA: %v", err)
	}
	if !c.NotAfter.Equal(now.Add(365*24*time.Hour)) || c.Subject.CommonName != "soon" || c.Subject.Organization[0] != "o" || c.DNSNames[0] != "a.example" || !c.IPAddresses[0].Equal(net.ParseIP("10.0.0.1")) || c.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth {
		t.Fatalf("renewed cert lost something: notAfter %s subject %v names %v %v", c.NotAfter, c.Subject, c.DNSNames, c.IPAddresses)
	}
	if !c.PublicKey.(*ecdsa.PublicKey).Equal(soonKey.Public()) {
		t.Fatal("renewed cert has another public key")
	}
	if st, _ := os.Stat(filepath.Join(dir, "soon.crt")); st.Mode().Perm() != 0o640 {
		t.Fatalf("mode %v, want 0640 kept", st.Mode().Perm())
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "later.crt")); string(after) != string(laterBefore) {
		t.Fatal("a certificate far from expiry was rewritten")
	}
	if got := strings.Join(rec.calls, "|"); got != "systemctl restart kube-apiserver.service|systemctl is-active kube-apiserver.service" {
		t.Fatalf("calls %q", got)
	}
	// The foreign leaf (another CA's) is left and named when nothing else is due.
	err = r.Act(context.Background())
	if err == nil || !strings.Contains(err.Error(), "foreign.crt (its CA's key is not on this node)") {
		t.Fatalf("second run: %v, want the foreign certificate named", err)
	}
}

func writePEM(t *testing.T, path, typ string, der []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}
