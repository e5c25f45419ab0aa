package steps

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/kubewright/kubewright/installer/pki"
)

// clientCertMu serialises issuing the client certificates kept in the state
// directory (kube-proxy's, the agents') when the engine plans several hosts
// at once; it guards files, not an option.
var clientCertMu sync.Mutex

// clientCert is a client certificate the operator's machine issues from the
// cluster CA and keeps in the state directory's PKI, at rel (.crt/.key).
type clientCert struct {
	rel      string // path under pki/ without extension, e.g. "agents/worker1"
	req      pki.CertRequest
	validity time.Duration
	renew    time.Duration // reissue when it expires sooner than this
}

// ensure returns the certificate and key (PEM), issuing them when missing,
// not signed by the current CA, for another identity, not matching their
// key, or within renew of expiry.
func (c clientCert) ensure(stateDir string, now time.Time) (certPEM, keyPEM []byte, err error) {
	clientCertMu.Lock()
	defer clientCertMu.Unlock()
	what := c.req.CommonName + " certificate"
	ca, caKey, err := pki.NewStore(PKIDir(stateDir), nil).CA(pki.CACluster)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", what, err)
	}
	base := filepath.Join(PKIDir(stateDir), c.rel)
	certPath, keyPath := base+".crt", base+".key"
	certPEM, cerr := os.ReadFile(certPath)
	keyPEM, kerr := os.ReadFile(keyPath)
	if cerr == nil && kerr == nil && c.valid(certPEM, keyPEM, ca, now) {
		return certPEM, keyPEM, nil
	}
	if cerr != nil && !errors.Is(cerr, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("read %s: %w", certPath, cerr)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("%s key: %w", what, err)
	}
	certPEM, err = pki.IssueCert(ca, caKey, c.req, key.Public(), now, c.validity)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", what, err)
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("%s key: %w", what, err)
	}
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
	if err := os.MkdirAll(filepath.Dir(certPath), 0o700); err != nil {
		return nil, nil, fmt.Errorf("%s dir: %w", what, err)
	}
	// Key first: a crash between the two renames leaves a new key with the
	// old certificate, which the next run sees as a mismatch and reissues.
	for _, f := range []struct {
		p    string
		data []byte
		mode fs.FileMode
	}{{keyPath, keyPEM, 0o600}, {certPath, certPEM, 0o644}} {
		tmp := f.p + ".tmp"
		if err := os.WriteFile(tmp, f.data, f.mode); err != nil {
			return nil, nil, fmt.Errorf("write %s: %w", f.p, err)
		}
		if err := os.Rename(tmp, f.p); err != nil {
			return nil, nil, fmt.Errorf("write %s: %w", f.p, err)
		}
	}
	return certPEM, keyPEM, nil
}

func (c clientCert) valid(certPEM, keyPEM []byte, ca *x509.Certificate, now time.Time) bool {
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		return false
	}
	b, _ := pem.Decode(certPEM)
	if b == nil {
		return false
	}
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return false
	}
	return cert.CheckSignatureFrom(ca) == nil &&
		cert.Subject.CommonName == c.req.CommonName &&
		slices.Equal(cert.Subject.Organization, c.req.Organization) &&
		now.Add(c.renew).Before(cert.NotAfter)
}
