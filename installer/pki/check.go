package pki

import (
	"crypto/x509"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// CertInfo describes one certificate for `kubewright certs check`.
type CertInfo struct {
	Name string `json:"name"` // kubeadm-style: ca, apiserver, etcd-server, admin.conf, ...
	Host string `json:"host,omitempty"`
	// Path is the file inspected; RemotePath is where hosts keep it (empty
	// for files that stay in the state directory).
	Path       string    `json:"path"`
	RemotePath string    `json:"remotePath,omitempty"`
	Subject    string    `json:"subject"`
	SANs       []string  `json:"sans,omitempty"`
	Issuer     string    `json:"issuer"`
	NotAfter   time.Time `json:"notAfter"`
	DaysLeft   int       `json:"daysLeft"`
	IsCA       bool      `json:"isCA"`
	Problems   []string  `json:"problems,omitempty"`
}

// Check inspects every *.crt and *.conf below dir (a store, or a host's
// /etc/kubernetes/pki copied back) without changing anything. A certificate
// expiring within warnWithin of now is a problem, as is a leaf that no CA in
// dir (or, for kubeconfigs, the embedded CA) signed.
func Check(dir string, now time.Time, warnWithin time.Duration) ([]CertInfo, error) {
	type found struct {
		rel     string
		cert    *x509.Certificate
		keyPEM  []byte
		hasKey  bool
		embedCA *x509.Certificate
		err     string
	}
	var all []found
	err := filepath.WalkDir(dir, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if de.IsDir() {
			return nil
		}
		ext := filepath.Ext(p)
		if ext != ".crt" && ext != ".conf" {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		f := found{rel: filepath.ToSlash(rel)}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if ext == ".conf" {
			kc, err := ParseKubeconfig(data)
			if err != nil {
				f.err = err.Error()
			} else {
				f.keyPEM, f.hasKey = kc.ClientKeyPEM, len(kc.ClientKeyPEM) > 0
				if f.cert, err = parseCert(kc.ClientCertPEM); err != nil {
					f.err = "client certificate unreadable: " + err.Error()
				}
				f.embedCA, _ = parseCert(kc.CAPEM)
			}
		} else {
			if f.cert, err = parseCert(data); err != nil {
				f.err = "unreadable: " + err.Error()
			}
			f.keyPEM, err = os.ReadFile(strings.TrimSuffix(p, ext) + ".key")
			f.hasKey = err == nil
		}
		all = append(all, f)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("check certificates in %s: %w", dir, err)
	}
	var cas []*x509.Certificate
	for _, f := range all {
		if f.cert != nil && f.cert.IsCA {
			cas = append(cas, f.cert)
		}
	}
	var out []CertInfo
	for _, f := range all {
		name, host, remote := describePath(f.rel)
		ci := CertInfo{Name: name, Host: host, Path: filepath.Join(dir, filepath.FromSlash(f.rel)), RemotePath: remote}
		if f.err != "" {
			ci.Problems = append(ci.Problems, f.err)
			out = append(out, ci)
			continue
		}
		c := f.cert
		ci.Subject, ci.Issuer = subjectString(c.Subject), subjectString(c.Issuer)
		ci.SANs = certSANs(c)
		ci.NotAfter = c.NotAfter.UTC()
		ci.DaysLeft = int(math.Floor(c.NotAfter.Sub(now).Hours() / 24))
		ci.IsCA = c.IsCA
		if r := validityProblem(c, now, warnWithin); r != "" {
			ci.Problems = append(ci.Problems, r)
		}
		switch {
		case !f.hasKey && c.IsCA:
			ci.Problems = append(ci.Problems, "CA key missing: new certificates cannot be signed here")
		case !f.hasKey:
			ci.Problems = append(ci.Problems, "key missing")
		default:
			if k, err := parseKey(f.keyPEM); err != nil {
				ci.Problems = append(ci.Problems, "key unreadable: "+err.Error())
			} else if !publicKeysEqual(k.Public(), c.PublicKey) {
				ci.Problems = append(ci.Problems, "key does not match certificate")
			}
		}
		if !c.IsCA {
			if p := issuerProblem(c, cas, f.embedCA); p != "" {
				ci.Problems = append(ci.Problems, p)
			}
		}
		out = append(out, ci)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// issuerProblem finds the leaf's CA by subject among the CAs in the
// directory: those are what the components trust. A kubeconfig's embedded CA
// is only consulted when the directory has no CA of that name.
func issuerProblem(c *x509.Certificate, cas []*x509.Certificate, embedded *x509.Certificate) string {
	sameSubject := false
	for _, ca := range cas {
		if string(ca.RawSubject) != string(c.RawIssuer) {
			continue
		}
		sameSubject = true
		if c.CheckSignatureFrom(ca) == nil {
			return ""
		}
	}
	if sameSubject {
		return "not signed by the CA " + subjectString(c.Issuer) + " found here (was the CA replaced?)"
	}
	if embedded != nil && string(embedded.RawSubject) == string(c.RawIssuer) {
		if c.CheckSignatureFrom(embedded) == nil {
			return ""
		}
		return "not signed by its embedded CA"
	}
	return "issuer " + subjectString(c.Issuer) + " not found"
}

// describePath maps a store path to its kubeadm name, host and remote path.
func describePath(rel string) (name, host, remote string) {
	p := rel
	if strings.HasPrefix(p, "hosts/") {
		parts := strings.SplitN(p, "/", 3)
		if len(parts) == 3 {
			host, p = parts[1], parts[2]
		}
	}
	if strings.HasSuffix(p, ".conf") {
		name = path.Base(p)
		if name != "super-admin.conf" {
			remote = path.Join(RemoteConfigDir, name)
		}
		return name, host, remote
	}
	base := strings.TrimSuffix(p, path.Ext(p))
	name = strings.ReplaceAll(base, "/", "-")
	return name, host, path.Join(RemotePKIDir, p)
}

// WriteCheckTable prints infos as an aligned table, one line per file, in
// the spirit of kubeadm certs check-expiration.
func WriteCheckTable(w io.Writer, infos []CertInfo) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tHOST\tKIND\tEXPIRES\tDAYS LEFT\tISSUER\tREMOTE PATH\tPROBLEMS")
	for _, ci := range infos {
		kind := "leaf"
		if ci.IsCA {
			kind = "CA"
		}
		host, remote, problems, expires, days := dash(ci.Host), dash(ci.RemotePath), dash(strings.Join(ci.Problems, "; ")), "-", "-"
		if !ci.NotAfter.IsZero() {
			expires, days = ci.NotAfter.Format("2006-01-02 15:04 MST"), fmt.Sprint(ci.DaysLeft)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", ci.Name, host, kind, expires, days, dash(ci.Issuer), remote, problems)
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
