package checks

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/kubewright/kubewright/agent"
)

// CertsName is the certificate expiry check's name.
const CertsName = "certificates"

const (
	// ReasonCertificateExpiring: a certificate expires within RenewBefore.
	ReasonCertificateExpiring = "CertificateExpiring"
	// ReasonCertificateExpired: a certificate has expired; whatever uses it
	// fails TLS now.
	ReasonCertificateExpired = "CertificateExpired"
	// ReasonNoCertificates: no certificate was found (or none could be
	// read) under the directories, so there is nothing to judge.
	ReasonNoCertificates = "NoCertificates"
)

// DefaultRenewBefore matches agent.Config's certRenewBefore default.
const DefaultRenewBefore = 7 * 24 * time.Hour

// maxCertFile skips anything too big to be a certificate file.
const maxCertFile = 1 << 20

// DefaultCertDirs are the cluster PKI and the kubelet's own certificates.
func DefaultCertDirs() []string {
	return []string{"/etc/kubernetes/pki", "/var/lib/kubelet/pki"}
}

// Certs finds the certificate that expires soonest under its directories.
// An expired apiserver, etcd or kubelet certificate takes the node (or the
// cluster) down at a moment nobody chose; renewing a week early does not.
// Every CERTIFICATE block of every *.crt and *.pem file counts (bundles and
// the kubelet's cert+key .pem files included; key blocks are never parsed).
// CA certificates count too, and messages name them as CA, because they
// are renewed by hand and not by the renew repair.
type Certs struct {
	// Dirs are walked recursively; DefaultCertDirs() when empty. Missing
	// directories are skipped (workers have no /etc/kubernetes/pki CA keys).
	Dirs []string
	// RenewBefore is the window before expiry that is already a Problem;
	// DefaultRenewBefore when 0.
	RenewBefore time.Duration
	// Now is time.Now when nil.
	Now func() time.Time
}

func (c Certs) Name() string { return CertsName }

// CertInfo is one certificate found on disk.
type CertInfo struct {
	Path     string
	Subject  string
	NotAfter time.Time
	IsCA     bool
}

func (ci CertInfo) String() string {
	kind := "certificate"
	if ci.IsCA {
		kind = "CA certificate"
	}
	return fmt.Sprintf("%s %s (%s)", kind, ci.Path, ci.Subject)
}

func (c Certs) Run(ctx context.Context) agent.Result {
	dirs := c.Dirs
	if len(dirs) == 0 {
		dirs = DefaultCertDirs()
	}
	within := c.RenewBefore
	if within == 0 {
		within = DefaultRenewBefore
	}
	if within < 0 {
		return unknownf(ReasonInvalidConfig, "certificates: renewal window %s is negative", within)
	}
	now := time.Now()
	if c.Now != nil {
		now = c.Now()
	}
	where := strings.Join(dirs, ", ")
	certs, errs := scanCerts(ctx, dirs)
	if ctx.Err() != nil {
		return canceled(ctx, "certificates under "+where)
	}
	var unreadable string
	if len(errs) > 0 {
		unreadable = fmt.Sprintf("; %s unreadable, first: %v", plural(len(errs), "file"), errs[0])
	}
	if len(certs) == 0 {
		return unknownf(ReasonNoCertificates, "certificates: none found under %s%s", where, unreadable)
	}

	var expired, expiring []CertInfo
	var soonLeaf, soonCA *CertInfo
	for i := range certs {
		ci := &certs[i]
		switch {
		case !ci.NotAfter.After(now):
			expired = append(expired, *ci)
		case ci.NotAfter.Before(now.Add(within)):
			expiring = append(expiring, *ci)
		}
		if ci.IsCA && soonCA == nil {
			soonCA = ci
		}
		if !ci.IsCA && soonLeaf == nil {
			soonLeaf = ci
		}
	}
	window := round(within).String()
	if within%(24*time.Hour) == 0 {
		window = fmt.Sprintf("%d-day", within/(24*time.Hour))
	}
	others := func(list []CertInfo, more string) string {
		if len(list) == 0 {
			return ""
		}
		leaf, ca := 0, 0
		for _, ci := range list {
			if ci.IsCA {
				ca++
			} else {
				leaf++
			}
		}
		return fmt.Sprintf("; %d more %s (leaf: %d, CA: %d)", len(list), more, leaf, ca)
	}
	if len(expired) > 0 {
		first := expired[0]
		rest := append(expired[1:len(expired):len(expired)], expiring...)
		return problemf(ReasonCertificateExpired, "%s expired %s ago (%s)%s%s", first, days(now.Sub(first.NotAfter)), first.NotAfter.UTC().Format(time.RFC3339), others(rest, "expired or within the "+window+" renewal window"), unreadable)
	}
	if len(expiring) > 0 {
		first := expiring[0]
		return problemf(ReasonCertificateExpiring, "%s expires in %s (%s), within the %s renewal window%s%s", first, days(first.NotAfter.Sub(now)), first.NotAfter.UTC().Format(time.RFC3339), window, others(expiring[1:], "within it"), unreadable)
	}
	var soonest []string
	if soonLeaf != nil {
		soonest = append(soonest, fmt.Sprintf("soonest leaf %s in %s", soonLeaf.Path, days(soonLeaf.NotAfter.Sub(now))))
	}
	if soonCA != nil {
		soonest = append(soonest, fmt.Sprintf("soonest CA %s in %s", soonCA.Path, days(soonCA.NotAfter.Sub(now))))
	}
	return okf("certificates: %d under %s valid beyond the %s renewal window; %s%s", len(certs), where, window, strings.Join(soonest, ", "), unreadable)
}

// Expiring returns the certificates under dirs that expire within the
// window from now (expired ones included), soonest first, for the renew
// repair to act on. Missing directories are skipped. A non-nil error lists
// the files that could not be read or parsed; the certificates that could
// are returned anyway.
func Expiring(dirs []string, within time.Duration, now time.Time) ([]CertInfo, error) {
	certs, errs := scanCerts(context.Background(), dirs)
	var out []CertInfo
	for _, ci := range certs {
		if ci.NotAfter.Before(now.Add(within)) {
			out = append(out, ci)
		}
	}
	return out, errors.Join(errs...)
}

// scanCerts reads every certificate under dirs, sorted by expiry.
func scanCerts(ctx context.Context, dirs []string) ([]CertInfo, []error) {
	var files []string
	var errs []error
	for _, dir := range dirs {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				if path == dir && errors.Is(err, fs.ErrNotExist) {
					return nil
				}
				errs = append(errs, fmt.Errorf("walk %s: %w", path, err))
				if d != nil && d.IsDir() {
					return fs.SkipDir
				}
				return nil
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if d.IsDir() {
				return nil
			}
			ext := strings.ToLower(filepath.Ext(path))
			if ext == ".crt" || ext == ".pem" {
				files = append(files, path)
			}
			return nil
		})
		if err != nil {
			return nil, append(errs, err)
		}
	}
	files = skipRotated(files)

	var certs []CertInfo
	for _, f := range files {
		if ctx.Err() != nil {
			return nil, append(errs, ctx.Err())
		}
		found, err := readCerts(f)
		if err != nil {
			errs = append(errs, err)
		}
		certs = append(certs, found...)
	}
	sort.SliceStable(certs, func(i, j int) bool { return certs[i].NotAfter.Before(certs[j].NotAfter) })
	return certs, errs
}

// skipRotated drops the kubelet's rotated certificates: it writes
// kubelet-client-2024-01-02-03-04-05.pem, points kubelet-client-current.pem
// at the newest, and leaves the old ones in place, expired. Where such a
// "-current.pem" link exists, only it counts.
func skipRotated(files []string) []string {
	current := map[string]bool{} // dir/prefix- of each -current.pem
	for _, f := range files {
		if base, ok := strings.CutSuffix(filepath.Base(f), "-current.pem"); ok {
			current[filepath.Join(filepath.Dir(f), base)+"-"] = true
		}
	}
	var out []string
	for _, f := range files {
		rotated := false
		for p := range current {
			stamp, ok := strings.CutPrefix(f, p)
			if ok && isRotationStamp(strings.TrimSuffix(stamp, ".pem")) && strings.HasSuffix(stamp, ".pem") {
				rotated = true
				break
			}
		}
		if !rotated {
			out = append(out, f)
		}
	}
	return out
}

// isRotationStamp matches the kubelet's "2024-01-02-03-04-05".
func isRotationStamp(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if (r < '0' || r > '9') && r != '-' {
			return false
		}
	}
	return true
}

// readCerts parses every CERTIFICATE block of a PEM file, or the file as
// one DER certificate when it holds no PEM at all. Other blocks (keys) are
// skipped unread. Symlinks are followed; anything but a regular file is not
// a certificate.
func readCerts(path string) ([]CertInfo, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("stat %s: %w", path, err)
	}
	if !st.Mode().IsRegular() || st.Size() > maxCertFile {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	var out []CertInfo
	anyPEM := false
	rest := b
	for n := 1; ; n++ {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		anyPEM = true
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return out, fmt.Errorf("%s: PEM block %d: %w", path, n, err)
		}
		out = append(out, certInfo(path, cert))
	}
	if !anyPEM {
		cert, err := x509.ParseCertificate(b)
		if err != nil {
			if strings.HasSuffix(strings.ToLower(path), ".crt") {
				return nil, fmt.Errorf("%s: neither PEM nor a DER certificate", path)
			}
			return nil, nil // a .pem without PEM blocks: not ours to judge
		}
		out = append(out, certInfo(path, cert))
	}
	return out, nil
}

func certInfo(path string, c *x509.Certificate) CertInfo {
	subj := c.Subject.String()
	if subj == "" {
		subj = "no subject"
	}
	return CertInfo{Path: path, Subject: subj, NotAfter: c.NotAfter, IsCA: c.BasicConstraintsValid && c.IsCA}
}

// days renders a duration as whole days, or hours below two days.
func days(d time.Duration) string {
	if d < 0 {
		d = -d
	}
	if d < 48*time.Hour {
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%d days", int(d.Hours()/24))
}
