package pki

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"slices"
	"sort"
	"strings"
	"time"
)

// backdate makes new certificates valid a little before "now" so that a host
// whose clock lags the operator's machine does not reject them at first.
const backdate = time.Hour

// CertRequest describes a certificate to issue.
type CertRequest struct {
	CommonName   string
	Organization []string
	DNSNames     []string
	IPAddresses  []net.IP
	Usages       []x509.ExtKeyUsage
}

func (r CertRequest) altNames() altNames {
	return altNames{dns: r.DNSNames, ips: r.IPAddresses}
}

func randomSerial() (*big.Int, error) {
	// 127 bits keeps the serial positive and well within RFC 5280's 20 octets.
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

func keyUsageFor(pub crypto.PublicKey, ca bool) x509.KeyUsage {
	u := x509.KeyUsageDigitalSignature
	if _, isRSA := pub.(*rsa.PublicKey); isRSA {
		u |= x509.KeyUsageKeyEncipherment
	}
	if ca {
		u |= x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	}
	return u
}

// newCACert self-signs a CA certificate and returns it PEM-encoded.
func newCACert(cn string, key crypto.Signer, now time.Time, validity time.Duration) ([]byte, error) {
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             now.Add(-backdate).UTC(),
		NotAfter:              now.Add(validity).UTC(),
		KeyUsage:              keyUsageFor(key.Public(), true),
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("self-sign CA %s: %w", cn, err)
	}
	return encodeCert(der), nil
}

// IssueCert signs a leaf certificate for pub with the CA and returns it
// PEM-encoded. The leaf never outlives its CA. Later steps use it with
// (*Store).CA for certificates this package does not manage itself (e.g.
// kubelet serving certificates).
func IssueCert(ca *x509.Certificate, caKey crypto.Signer, req CertRequest, pub crypto.PublicKey, now time.Time, validity time.Duration) ([]byte, error) {
	if ca == nil || caKey == nil || pub == nil {
		return nil, errors.New("issue certificate: CA, CA key and public key are required")
	}
	if req.CommonName == "" {
		return nil, errors.New("issue certificate: common name is required")
	}
	if len(req.Usages) == 0 {
		return nil, fmt.Errorf("issue certificate %s: no extended key usage", req.CommonName)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	notBefore := now.Add(-backdate)
	if notBefore.Before(ca.NotBefore) {
		notBefore = ca.NotBefore
	}
	notAfter := now.Add(validity)
	if notAfter.After(ca.NotAfter) {
		notAfter = ca.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: req.CommonName, Organization: req.Organization},
		NotBefore:             notBefore.UTC(),
		NotAfter:              notAfter.UTC(),
		KeyUsage:              keyUsageFor(pub, false),
		ExtKeyUsage:           req.Usages,
		BasicConstraintsValid: true,
		DNSNames:              req.DNSNames,
		IPAddresses:           req.IPAddresses,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, pub, caKey)
	if err != nil {
		return nil, fmt.Errorf("issue certificate %s: %w", req.CommonName, err)
	}
	return encodeCert(der), nil
}

// leafProblem says why an existing leaf cannot be reused, or "" when it can.
// newKey reports whether the key must be replaced too (it does not match the
// certificate or has the wrong algorithm); otherwise re-issuing keeps the key
// so that nothing pinned to it breaks.
func leafProblem(cert *x509.Certificate, key crypto.Signer, want CertRequest, ca *x509.Certificate, alg KeyAlgorithm, now time.Time, renewBefore time.Duration) (reason string, newKey bool) {
	if !publicKeysEqual(cert.PublicKey, key.Public()) {
		return "key does not match certificate", true
	}
	if got := keyAlgorithmOf(key.Public()); got != string(alg) {
		return fmt.Sprintf("key algorithm %s, want %s", got, alg), true
	}
	if !signedBy(cert, ca) {
		return "not signed by the current CA " + ca.Subject.CommonName, false
	}
	if r := validityProblem(cert, now, renewBefore); r != "" {
		return r, false
	}
	if cert.Subject.CommonName != want.CommonName || !sameStrings(cert.Subject.Organization, want.Organization) {
		return fmt.Sprintf("subject %q, want %q", subjectString(cert.Subject), subjectString(pkix.Name{CommonName: want.CommonName, Organization: want.Organization})), false
	}
	if r := sanDiff(cert, want.altNames()); r != "" {
		return r, false
	}
	if !sameUsages(cert.ExtKeyUsage, want.Usages) {
		return fmt.Sprintf("extended key usage %s, want %s", usageNames(cert.ExtKeyUsage), usageNames(want.Usages)), false
	}
	return "", false
}

func signedBy(cert, ca *x509.Certificate) bool {
	return string(cert.RawIssuer) == string(ca.RawSubject) && cert.CheckSignatureFrom(ca) == nil
}

func validityProblem(cert *x509.Certificate, now time.Time, renewBefore time.Duration) string {
	switch {
	case now.After(cert.NotAfter):
		return "expired " + cert.NotAfter.UTC().Format(time.RFC3339)
	case now.Before(cert.NotBefore):
		return "not valid before " + cert.NotBefore.UTC().Format(time.RFC3339)
	case cert.NotAfter.Sub(now) < renewBefore:
		return fmt.Sprintf("expires %s, within the renew threshold of %s", cert.NotAfter.UTC().Format(time.RFC3339), fmtDays(renewBefore))
	}
	return ""
}

func fmtDays(d time.Duration) string {
	days := d / (24 * time.Hour)
	if days*24*time.Hour == d {
		return fmt.Sprintf("%dd", days)
	}
	return d.String()
}

func certSANs(cert *x509.Certificate) []string {
	return altNames{dns: cert.DNSNames, ips: cert.IPAddresses}.strings()
}

// sanDiff compares SANs as sets: order is irrelevant to clients.
func sanDiff(cert *x509.Certificate, want altNames) string {
	have := certSANs(cert)
	w := want.strings()
	var missing, extra []string
	for _, s := range w {
		if !slices.Contains(have, s) {
			missing = append(missing, s)
		}
	}
	for _, s := range have {
		if !slices.Contains(w, s) {
			extra = append(extra, s)
		}
	}
	var parts []string
	if len(missing) > 0 {
		parts = append(parts, "missing SANs "+strings.Join(missing, ","))
	}
	if len(extra) > 0 {
		parts = append(parts, "extra SANs "+strings.Join(extra, ","))
	}
	return strings.Join(parts, "; ")
}

func sameStrings(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	sort.Strings(a)
	sort.Strings(b)
	return slices.Equal(a, b)
}

func sameUsages(a, b []x509.ExtKeyUsage) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func usageNames(us []x509.ExtKeyUsage) string {
	var out []string
	for _, u := range us {
		switch u {
		case x509.ExtKeyUsageServerAuth:
			out = append(out, "serverAuth")
		case x509.ExtKeyUsageClientAuth:
			out = append(out, "clientAuth")
		default:
			out = append(out, fmt.Sprintf("usage(%d)", u))
		}
	}
	return "[" + strings.Join(out, ",") + "]"
}

// subjectString renders CN and O like openssl's one-line form, stable across
// Go versions (pkix.Name.String orders and escapes differently).
func subjectString(n pkix.Name) string {
	parts := []string{"CN=" + n.CommonName}
	for _, o := range n.Organization {
		parts = append(parts, "O="+o)
	}
	return strings.Join(parts, ",")
}
