package repairs

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kubewright/kubewright/agent"
)

// CAPair is a CA certificate and its key on this node.
type CAPair struct{ Cert, Key string }

// RenewCert re-issues every leaf certificate under Dirs that expires within
// Within and is signed by one of CAs, keeping its subject, names, usages
// and key, then restarts the components that read them. It is the
// stop-gap that keeps a node serving until the operator runs
// `kubewright certs renew`, which renews from the state directory.
type RenewCert struct {
	Dirs    []string
	Within  time.Duration
	CAs     []CAPair
	Restart []string
	Run     Runner
	Now     func() time.Time
	Wait    time.Duration
}

func (RenewCert) Name() string       { return "renew-certificates" }
func (RenewCert) Scope() agent.Scope { return agent.ScopeControlPlane }

func (r RenewCert) Act(ctx context.Context) error {
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	type ca struct {
		cert *x509.Certificate
		key  crypto.Signer
	}
	var cas []ca
	for _, p := range r.CAs {
		c, err := readCert(p.Cert)
		if err != nil {
			continue // a CA not on this node
		}
		k, err := readKey(p.Key)
		if err != nil {
			continue
		}
		cas = append(cas, ca{c, k})
	}
	if len(cas) == 0 {
		return errors.New("no CA certificate and key found on this node to sign with")
	}
	renewed, skipped := 0, []string{}
	for _, dir := range r.Dirs {
		files, _ := filepath.Glob(filepath.Join(dir, "*.crt"))
		for _, f := range files {
			leaf, err := readCert(f)
			if err != nil || leaf.IsCA || now().Add(r.Within).Before(leaf.NotAfter) {
				continue
			}
			var signer *ca
			for i := range cas {
				if leaf.CheckSignatureFrom(cas[i].cert) == nil {
					signer = &cas[i]
					break
				}
			}
			if signer == nil {
				skipped = append(skipped, f+" (its CA's key is not on this node)")
				continue
			}
			if err := reissue(f, leaf, signer.cert, signer.key, now()); err != nil {
				return err
			}
			renewed++
		}
	}
	if renewed == 0 {
		if len(skipped) > 0 {
			return fmt.Errorf("cannot renew here: %s; run `kubewright certs renew`", strings.Join(skipped, ", "))
		}
		return nil
	}
	for _, u := range r.Restart {
		if err := restartAndWait(ctx, r.Run, u, r.Wait); err != nil {
			return fmt.Errorf("renewed %d certificate(s) but: %w", renewed, err)
		}
	}
	return nil
}

// reissue writes a new certificate for the same key, subject, names and
// usages, valid as long as the old one was, atomically (tmp + rename, same
// mode), so a component never reads a half-written file.
func reissue(path string, old, ca *x509.Certificate, caKey crypto.Signer, now time.Time) error {
	keyPath := strings.TrimSuffix(path, ".crt") + ".key"
	if _, err := readKey(keyPath); err != nil {
		return fmt.Errorf("renew %s: its key %s: %w", path, keyPath, err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               old.Subject,
		DNSNames:              old.DNSNames,
		IPAddresses:           old.IPAddresses,
		URIs:                  old.URIs,
		EmailAddresses:        old.EmailAddresses,
		KeyUsage:              old.KeyUsage,
		ExtKeyUsage:           old.ExtKeyUsage,
		BasicConstraintsValid: true,
		NotBefore:             now.Add(-5 * time.Minute),
		NotAfter:              now.Add(old.NotAfter.Sub(old.NotBefore)),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, old.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("renew %s: %w", path, err)
	}
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	tmp := path + ".kubewright-new"
	if err := os.WriteFile(tmp, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), st.Mode().Perm()); err != nil {
		return fmt.Errorf("renew %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("renew %s: %w", path, err)
	}
	return nil
}

func readCert(path string) (*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%s: no PEM certificate", path)
	}
	return x509.ParseCertificate(blk.Bytes)
}

func readKey(path string) (crypto.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("%s: no PEM key", path)
	}
	var k any
	switch blk.Type {
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(blk.Bytes)
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(blk.Bytes)
	default:
		k, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%s: not a signing key", path)
	}
	return s, nil
}
