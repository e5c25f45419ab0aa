package repairs

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/kubewright/kubewright/agent"
)

// CAPair is a CA certificate and its private key, by path. A master holds
// more than one (the cluster CA, the etcd CA, the front-proxy CA); each
// leaf is re-signed by the pair whose certificate verifies its signature.
type CAPair struct {
	Cert string
	Key  string
}

// RenewCert re-issues the leaf certificates under Dirs that expire within
// Within, then restarts the units that read them. It is the agent's answer
// to a master whose certificates are about to lapse unattended: the cluster
// keeps working until a person runs `kubewright certs`. A re-issued
// certificate is the old one with a new serial and a new validity period of
// the same length: same subject, names, usages, extensions and public key,
// so nothing that trusts or pins it notices, and the private key never
// changes or moves.
//
// Only leaves signed by one of CAs are touched, and only when their key
// lies beside them (X.crt with X.key, X.pem with X-key.pem) and matches:
// that is how install lays out certificates the components use. CA
// certificates and anything else are left alone.
type RenewCert struct {
	Dirs   []string
	Within time.Duration
	CAs    []CAPair
	// Restart is restarted, in order, after anything was renewed, each
	// waited for like RestartUnit.
	Restart []string
	Run     Runner
	Now     func() time.Time
	// Wait and Poll apply to each restart (see RestartUnit).
	Wait time.Duration
	Poll time.Duration
}

func (RenewCert) Name() string       { return "renew-certificates" }
func (RenewCert) Scope() agent.Scope { return agent.ScopeControlPlane }

type signer struct {
	path string
	cert *x509.Certificate
	key  crypto.Signer
}

func (r RenewCert) Act(ctx context.Context) error {
	now := time.Now()
	if r.Now != nil {
		now = r.Now()
	}
	var cas []signer
	var errs []error
	for _, p := range r.CAs {
		ca, err := loadCA(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue // e.g. no etcd CA on a master with external etcd
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		cas = append(cas, ca)
	}
	if len(cas) == 0 {
		errs = append(errs, errors.New("no CA certificate with its key found to sign with"))
		return errors.Join(errs...)
	}

	var renewed []string
	for _, dir := range r.Dirs {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				if path == dir && errors.Is(err, fs.ErrNotExist) {
					return fs.SkipDir
				}
				return err
			}
			// Symlinks are skipped: renaming over one would replace the
			// link, and the kubelet's rotated *-current.pem are links it
			// manages itself.
			if !d.Type().IsRegular() || keyPathFor(path) == "" {
				return nil
			}
			done, err := r.renewFile(path, cas, now)
			if err != nil {
				errs = append(errs, err)
			}
			if done {
				renewed = append(renewed, path)
			}
			return nil
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("scan %s for certificates: %w", dir, err))
		}
	}
	if len(renewed) > 0 {
		for _, u := range r.Restart {
			restart := RestartUnit{Unit: u, Run: r.Run, Wait: r.Wait, Poll: r.Poll}
			if err := restart.Act(ctx); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		if len(renewed) > 0 {
			return fmt.Errorf("renewed %s, but: %w", strings.Join(renewed, ", "), err)
		}
		return err
	}
	return nil
}

// renewFile re-issues the certificate at path if it is one of ours and
// expires within r.Within. done says it was rewritten.
func (r RenewCert) renewFile(path string, cas []signer, now time.Time) (done bool, err error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return false, fmt.Errorf("read %s: %w", path, err)
	}
	leaf, blocks := firstCert(raw)
	if leaf == nil || leaf.IsCA || holdsKey(blocks) {
		// Not a certificate, a CA, or a cert+key bundle (the kubelet's
		// own rotated client certificate): not ours to renew.
		return false, nil
	}
	if leaf.NotAfter.Sub(now) > r.Within {
		return false, nil
	}
	var ca *signer
	for i := range cas {
		if leaf.CheckSignatureFrom(cas[i].cert) == nil {
			ca = &cas[i]
			break
		}
	}
	if ca == nil {
		return false, nil
	}
	keyPath := keyPathFor(path)
	key, err := readKey(keyPath)
	if err != nil {
		return false, fmt.Errorf("renew %s: its key: %w", path, err)
	}
	if !samePublicKey(leaf.PublicKey, key.Public()) {
		return false, fmt.Errorf("renew %s: %s is not its key; left as is", path, keyPath)
	}

	notAfter := now.Add(leaf.NotAfter.Sub(leaf.NotBefore))
	if notAfter.After(ca.cert.NotAfter) {
		// A leaf outliving its CA would fail verification when the CA
		// expires anyway; never promise more than the CA can.
		notAfter = ca.cert.NotAfter
	}
	if notAfter.Sub(now) <= r.Within {
		return false, fmt.Errorf("renew %s: its CA %s expires %s, so a renewed certificate would expire within %s too; rotate the CA with `kubewright certs`",
			path, ca.path, ca.cert.NotAfter.Format(time.RFC3339), r.Within)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return false, fmt.Errorf("renew %s: serial: %w", path, err)
	}
	serial.Add(serial, big.NewInt(1)) // never zero
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		// RawSubject keeps the subject byte for byte (attribute order and
		// string types), so nothing matching on it sees a change.
		RawSubject:            leaf.RawSubject,
		Subject:               leaf.Subject,
		NotBefore:             now.Add(-5 * time.Minute),
		NotAfter:              notAfter,
		DNSNames:              leaf.DNSNames,
		IPAddresses:           leaf.IPAddresses,
		URIs:                  leaf.URIs,
		EmailAddresses:        leaf.EmailAddresses,
		KeyUsage:              leaf.KeyUsage,
		ExtKeyUsage:           leaf.ExtKeyUsage,
		UnknownExtKeyUsage:    leaf.UnknownExtKeyUsage,
		BasicConstraintsValid: leaf.BasicConstraintsValid,
		SubjectKeyId:          leaf.SubjectKeyId,
		// The leaf's own extensions, raw, override what the fields above
		// would produce: criticality and anything Go does not model
		// survive. Only the authority key ID is the new signer's to set.
		ExtraExtensions: keptExtensions(leaf),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, leaf.PublicKey, ca.key)
	if err != nil {
		return false, fmt.Errorf("renew %s: sign with %s: %w", path, ca.path, err)
	}
	var out bytes.Buffer
	replaced := false
	for _, b := range blocks {
		if !replaced && b.Type == "CERTIFICATE" {
			b = &pem.Block{Type: "CERTIFICATE", Bytes: der}
			replaced = true
		}
		if err := pem.Encode(&out, b); err != nil {
			return false, fmt.Errorf("renew %s: encode: %w", path, err)
		}
	}
	if err := writeAtomic(path, out.Bytes()); err != nil {
		return false, fmt.Errorf("renew %s: %w", path, err)
	}
	return true, nil
}

var oidAuthorityKeyID = asn1.ObjectIdentifier{2, 5, 29, 35}

func keptExtensions(c *x509.Certificate) []pkix.Extension {
	var out []pkix.Extension
	for _, e := range c.Extensions {
		if !e.Id.Equal(oidAuthorityKeyID) {
			out = append(out, e)
		}
	}
	return out
}

// keyPathFor is where install puts a certificate's key, or "" when path is
// not a certificate file name (a key, a kubeconfig, sa.pub).
func keyPathFor(path string) string {
	switch {
	case strings.HasSuffix(path, "-key.pem"):
		return ""
	case strings.HasSuffix(path, ".crt"):
		return strings.TrimSuffix(path, ".crt") + ".key"
	case strings.HasSuffix(path, ".pem"):
		return strings.TrimSuffix(path, ".pem") + "-key.pem"
	}
	return ""
}

// firstCert parses the file's first certificate and returns every PEM
// block, so a chain after the leaf is written back unchanged.
func firstCert(raw []byte) (*x509.Certificate, []*pem.Block) {
	var blocks []*pem.Block
	var leaf *x509.Certificate
	for rest := raw; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		blocks = append(blocks, b)
		if leaf == nil && b.Type == "CERTIFICATE" {
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return nil, nil
			}
			leaf = c
		}
	}
	return leaf, blocks
}

func holdsKey(blocks []*pem.Block) bool {
	for _, b := range blocks {
		if strings.HasSuffix(b.Type, "PRIVATE KEY") {
			return true
		}
	}
	return false
}

func loadCA(p CAPair) (signer, error) {
	raw, err := os.ReadFile(p.Cert)
	if err != nil {
		return signer{}, fmt.Errorf("read CA certificate: %w", err)
	}
	cert, _ := firstCert(raw)
	if cert == nil || !cert.IsCA {
		return signer{}, fmt.Errorf("%s is not a CA certificate", p.Cert)
	}
	key, err := readKey(p.Key)
	if err != nil {
		return signer{}, fmt.Errorf("CA key for %s: %w", p.Cert, err)
	}
	if !samePublicKey(cert.PublicKey, key.Public()) {
		return signer{}, fmt.Errorf("%s is not the key of CA %s", p.Key, p.Cert)
	}
	return signer{path: p.Cert, cert: cert, key: key}, nil
}

func readKey(path string) (crypto.Signer, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	for rest := raw; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil, fmt.Errorf("%s: no PEM private key", path)
		}
		var k any
		switch b.Type {
		case "RSA PRIVATE KEY":
			k, err = x509.ParsePKCS1PrivateKey(b.Bytes)
		case "EC PRIVATE KEY":
			k, err = x509.ParseECPrivateKey(b.Bytes)
		case "PRIVATE KEY":
			k, err = x509.ParsePKCS8PrivateKey(b.Bytes)
		default:
			continue // e.g. "EC PARAMETERS" before the key
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		s, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("%s: %T cannot sign", path, k)
		}
		return s, nil
	}
}

func samePublicKey(a, b crypto.PublicKey) bool {
	eq, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && eq.Equal(b)
}

// writeAtomic replaces path with data so a reader sees the old file or the
// new one, never half of either: a temporary file in the same directory
// with the old one's mode and owner, synced, renamed over it, and the
// directory synced so the rename survives a crash.
func writeAtomic(path string, data []byte) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(fi.Mode().Perm()); err != nil {
		return err
	}
	if st, isUnix := fi.Sys().(*syscall.Stat_t); isUnix && (int(st.Uid) != os.Geteuid() || int(st.Gid) != os.Getegid()) {
		// etcd's certificates belong to the etcd user: keep it able to
		// read them.
		if err := f.Chown(int(st.Uid), int(st.Gid)); err != nil {
			return err
		}
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	ok = true
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
