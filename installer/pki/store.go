package pki

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/kubewright/kubewright/installer/inventory"
)

// Store keeps the PKI in a local directory (the cluster state dir's pki/),
// laid out like /etc/kubernetes/pki with per-host files under hosts/NAME/ and
// the kubeconfigs beside them.
type Store struct {
	dir string
	now func() time.Time
}

// NewStore returns a store on dir; now is the clock (nil means time.Now),
// injectable so expiry handling can be tested.
func NewStore(dir string, now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{dir: dir, now: now}
}

// Dir is the store's directory.
func (s *Store) Dir() string { return s.dir }

// AdminKubeconfigPath is the operator's kubeconfig (RBAC-bound, VIP URL).
func (s *Store) AdminKubeconfigPath() string { return filepath.Join(s.dir, "admin.conf") }

// SuperAdminKubeconfigPath is the system:masters kubeconfig, for creating the
// RBAC binding admin.conf relies on and for emergencies.
func (s *Store) SuperAdminKubeconfigPath() string { return filepath.Join(s.dir, "super-admin.conf") }

// Action is what EnsureAll or Renew did with one file.
type Action string

const (
	Created  Action = "created"
	Reused   Action = "reused"
	Reissued Action = "reissued" // new certificate (key kept unless the reason says otherwise)
	Updated  Action = "updated"  // kubeconfig rewritten around the same certificate
	Renewed  Action = "renewed"  // new certificate and key on request
	Chmod    Action = "chmod"    // content kept, permissions corrected
	Removed  Action = "removed"  // per-host file of a host no longer in the spec
)

// ReportItem is one managed file and what happened to it.
type ReportItem struct {
	Name   string `json:"name"`           // kubeadm-style name, e.g. apiserver, etcd-server, admin.conf
	Host   string `json:"host,omitempty"` // per-host items only
	Path   string `json:"path"`           // relative to the store
	Action Action `json:"action"`
	Reason string `json:"reason,omitempty"`
}

func (i ReportItem) String() string {
	s := fmt.Sprintf("%-8s %s", i.Action, i.Path)
	if i.Reason != "" {
		s += " (" + i.Reason + ")"
	}
	return s
}

// Report lists every managed file in a fixed order.
type Report struct {
	Items []ReportItem `json:"items"`
}

// Changed reports whether any file was written, chmod-ed or removed.
func (r Report) Changed() bool {
	for _, i := range r.Items {
		if i.Action != Reused {
			return true
		}
	}
	return false
}

func (r Report) String() string {
	var b strings.Builder
	for _, i := range r.Items {
		b.WriteString(i.String())
		b.WriteByte('\n')
	}
	return b.String()
}

func (r *Report) add(i ReportItem) { r.Items = append(r.Items, i) }

// Restart is what must be restarted on one host after the files changed.
type Restart struct {
	Host       string   `json:"host"`
	Components []string `json:"components"`
}

// Restarts lists, per host, the components that read a file whose content
// changed in this report (created, reissued, updated, renewed). A component
// reads its certificates at start, so it must restart once the new files are
// uploaded; the caller restarts masters one at a time.
func (r Report) Restarts(spec Spec) []Restart {
	spec = spec.withDefaults()
	rules := map[string][]restartRule{saName: saRestart}
	for _, c := range caDefs {
		rules[c.name] = c.restart
	}
	if leaves, err := spec.leaves(); err == nil {
		for _, l := range leaves {
			rules[l.name+"\x00"+l.host] = l.restart
		}
	}
	groups := map[string][]Member{inventory.GroupMasters: spec.Masters, inventory.GroupEtcd: spec.Etcd}
	want := map[string]map[string]bool{}
	add := func(host, comp string) {
		if want[host] == nil {
			want[host] = map[string]bool{}
		}
		want[host][comp] = true
	}
	for _, it := range r.Items {
		switch it.Action {
		case Created, Reissued, Updated, Renewed:
		default:
			continue
		}
		rs, ok := rules[it.Name+"\x00"+it.Host]
		if !ok {
			rs = rules[it.Name]
		}
		for _, rule := range rs {
			if rule.group == "" {
				add(it.Host, rule.component)
				continue
			}
			for _, m := range groups[rule.group] {
				add(m.Name, rule.component)
			}
		}
	}
	var out []Restart
	for h, comps := range want {
		rs := Restart{Host: h}
		for c := range comps {
			rs.Components = append(rs.Components, c)
		}
		sort.Strings(rs.Components)
		out = append(out, rs)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Host < out[j].Host })
	return out
}

// caPair is a loaded CA.
type caPair struct {
	cert    *x509.Certificate
	certPEM []byte
	key     crypto.Signer
}

// EnsureAll makes the store match the spec: it creates what is missing,
// reuses every certificate that is still right (files untouched, so a re-run
// is a no-op), re-issues a leaf whose subject, SANs or usages no longer match,
// that expires within spec.RenewBefore or that the current CA did not sign,
// and removes per-host files of hosts that left the spec. CAs are created
// when missing but never replaced: an unusable CA is an error for the
// operator, because replacing it silently would lock every client out.
func (s *Store) EnsureAll(spec Spec) (Report, error) {
	var rep Report
	spec = spec.withDefaults()
	if err := spec.validate(); err != nil {
		return rep, err
	}
	leaves, err := spec.leaves()
	if err != nil {
		return rep, err
	}
	if err := s.ensureDir(); err != nil {
		return rep, err
	}
	now := s.now()
	cas := map[string]*caPair{}
	for _, d := range caDefs {
		ca, item, err := s.ensureCA(d, spec, now)
		if err != nil {
			return rep, err
		}
		cas[d.rel] = ca
		rep.add(item)
	}
	item, err := s.ensureSA(spec)
	if err != nil {
		return rep, err
	}
	rep.add(item)
	for _, d := range leaves {
		item, err := s.ensureLeaf(d, cas[d.ca], spec, now, false)
		if err != nil {
			return rep, err
		}
		rep.add(item)
	}
	removed, err := s.removeStale(leaves)
	rep.Items = append(rep.Items, removed...)
	return rep, err
}

func (s *Store) ensureDir() error {
	if err := os.MkdirAll(s.dir, modeDir); err != nil {
		return fmt.Errorf("create pki dir %s: %w", s.dir, err)
	}
	fi, err := os.Stat(s.dir)
	if err != nil {
		return fmt.Errorf("stat pki dir: %w", err)
	}
	if fi.Mode().Perm() != modeDir {
		if err := os.Chmod(s.dir, modeDir); err != nil {
			return fmt.Errorf("chmod pki dir %s: %w", s.dir, err)
		}
	}
	return nil
}

func (s *Store) abs(rel string) string { return filepath.Join(s.dir, filepath.FromSlash(rel)) }

// readOptional returns nil data for a missing file and an error otherwise.
func (s *Store) readOptional(rel string) ([]byte, error) {
	b, err := os.ReadFile(s.abs(rel))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", rel, err)
	}
	return b, nil
}

// fixMode corrects a file's permissions, returning the old mode if it changed.
func (s *Store) fixMode(rel string, want fs.FileMode) (string, error) {
	fi, err := os.Stat(s.abs(rel))
	if err != nil {
		return "", fmt.Errorf("stat %s: %w", rel, err)
	}
	if fi.Mode().Perm() == want {
		return "", nil
	}
	if err := os.Chmod(s.abs(rel), want); err != nil {
		return "", fmt.Errorf("chmod %s: %w", rel, err)
	}
	return fmt.Sprintf("mode %04o, want %04o", fi.Mode().Perm(), want), nil
}

// reuse finishes a reused item: it corrects modes and reports a Chmod if any.
func (s *Store) reuse(item ReportItem, files map[string]fs.FileMode) (ReportItem, error) {
	item.Action = Reused
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var fixed []string
	for _, n := range names {
		r, err := s.fixMode(n, files[n])
		if err != nil {
			return item, err
		}
		if r != "" {
			fixed = append(fixed, n+": "+r)
		}
	}
	if len(fixed) > 0 {
		item.Action = Chmod
		item.Reason = strings.Join(fixed, "; ")
	}
	return item, nil
}

// loadCA reads a CA and checks it can sign.
func (s *Store) loadCA(rel string) (*caPair, error) {
	certPEM, err := s.readOptional(rel + ".crt")
	if err != nil {
		return nil, err
	}
	keyPEM, err := s.readOptional(rel + ".key")
	if err != nil {
		return nil, err
	}
	switch {
	case certPEM == nil && keyPEM == nil:
		return nil, fs.ErrNotExist
	case keyPEM == nil:
		return nil, fmt.Errorf("CA %s: %s.crt exists without %s.key; restore the key (or remove both to start a new CA, which re-issues every certificate)", rel, rel, rel)
	case certPEM == nil:
		return nil, fmt.Errorf("CA %s: %s.key exists without %s.crt; restore the certificate (or remove both to start a new CA, which re-issues every certificate)", rel, rel, rel)
	}
	cert, err := parseCert(certPEM)
	if err != nil {
		return nil, fmt.Errorf("CA %s: parse %s.crt: %w", rel, rel, err)
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("CA %s: parse %s.key: %w", rel, rel, err)
	}
	if !cert.IsCA || !cert.BasicConstraintsValid {
		return nil, fmt.Errorf("CA %s: %s.crt is not a CA certificate", rel, rel)
	}
	if !publicKeysEqual(cert.PublicKey, key.Public()) {
		return nil, fmt.Errorf("CA %s: %s.key does not match %s.crt", rel, rel, rel)
	}
	return &caPair{cert: cert, certPEM: certPEM, key: key}, nil
}

func (s *Store) ensureCA(d caDef, spec Spec, now time.Time) (*caPair, ReportItem, error) {
	item := ReportItem{Name: d.name, Path: d.rel + ".crt"}
	ca, err := s.loadCA(d.rel)
	if errors.Is(err, fs.ErrNotExist) {
		key, err := generateKey(spec.KeyAlgorithm)
		if err != nil {
			return nil, item, fmt.Errorf("CA %s: generate key: %w", d.rel, err)
		}
		certPEM, err := newCACert(d.cn, key, now, spec.CAValidity)
		if err != nil {
			return nil, item, err
		}
		if err := s.writePair(d.rel, certPEM, key); err != nil {
			return nil, item, err
		}
		ca, err = s.loadCA(d.rel)
		item.Action, item.Reason = Created, "missing"
		return ca, item, err
	}
	if err != nil {
		return nil, item, err
	}
	if now.After(ca.cert.NotAfter) || now.Before(ca.cert.NotBefore) {
		return nil, item, fmt.Errorf("CA %s is not valid now (valid %s to %s); CA rotation is manual, see docs/pki.md",
			d.rel, ca.cert.NotBefore.UTC().Format(time.RFC3339), ca.cert.NotAfter.UTC().Format(time.RFC3339))
	}
	item, err = s.reuse(item, map[string]fs.FileMode{d.rel + ".crt": modeCert, d.rel + ".key": modeKey})
	if item.Action == Reused && ca.cert.NotAfter.Sub(now) < spec.LeafValidity {
		// Leaves are capped at the CA's expiry, so from here on they get shorter.
		item.Reason = "expires " + ca.cert.NotAfter.UTC().Format(time.RFC3339) + ": plan a CA rotation"
	}
	return ca, item, err
}

// ensureSA keeps the service-account key pair. It is never rotated
// automatically: a new key invalidates every issued service-account token.
func (s *Store) ensureSA(spec Spec) (ReportItem, error) {
	item := ReportItem{Name: saName, Path: saKeyRel}
	keyPEM, err := s.readOptional(saKeyRel)
	if err != nil {
		return item, err
	}
	pubPEM, err := s.readOptional(saPubRel)
	if err != nil {
		return item, err
	}
	if keyPEM == nil {
		if pubPEM != nil {
			return item, fmt.Errorf("service-account key: %s exists without %s; restore the key (or remove %s to make a new pair, which invalidates every service-account token)", saPubRel, saKeyRel, saPubRel)
		}
		key, err := generateKey(spec.KeyAlgorithm)
		if err != nil {
			return item, fmt.Errorf("service-account key: %w", err)
		}
		if err := s.writeSA(key); err != nil {
			return item, err
		}
		item.Action, item.Reason = Created, "missing"
		return item, nil
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return item, fmt.Errorf("service-account key: parse %s: %w", saKeyRel, err)
	}
	pub, perr := parsePublicKey(pubPEM)
	if pubPEM == nil || perr != nil || !publicKeysEqual(pub, key.Public()) {
		if err := s.writeSA(key); err != nil {
			return item, err
		}
		item.Action, item.Reason = Updated, "sa.pub missing or not matching sa.key: rewritten from sa.key"
		return item, nil
	}
	return s.reuse(item, map[string]fs.FileMode{saKeyRel: modeKey, saPubRel: modeCert})
}

func (s *Store) writeSA(key crypto.Signer) error {
	keyPEM, err := encodeKey(key)
	if err != nil {
		return fmt.Errorf("service-account key: %w", err)
	}
	pubPEM, err := encodePublicKey(key.Public())
	if err != nil {
		return fmt.Errorf("service-account key: %w", err)
	}
	if err := writeFileAtomic(s.abs(saKeyRel), keyPEM, modeKey); err != nil {
		return err
	}
	return writeFileAtomic(s.abs(saPubRel), pubPEM, modeCert)
}

// writePair writes the key (when given) before the certificate: a crash in
// between leaves a mismatched pair, which the next run detects and repairs.
func (s *Store) writePair(rel string, certPEM []byte, key crypto.Signer) error {
	if key != nil {
		keyPEM, err := encodeKey(key)
		if err != nil {
			return fmt.Errorf("encode %s.key: %w", rel, err)
		}
		if err := writeFileAtomic(s.abs(rel+".key"), keyPEM, modeKey); err != nil {
			return err
		}
	}
	return writeFileAtomic(s.abs(rel+".crt"), certPEM, modeCert)
}

// existingLeaf is what is on disk for a leaf, already parsed.
type existingLeaf struct {
	cert     *x509.Certificate
	certPEM  []byte
	key      crypto.Signer
	keyPEM   []byte
	fileData []byte // kubeconfigs: the whole file
	kc       KubeconfigData
	missing  bool   // nothing on disk
	broken   string // why the files cannot be used, if so
}

func (s *Store) readLeaf(d leafDef) (existingLeaf, error) {
	var e existingLeaf
	if d.kubeconfig {
		data, err := s.readOptional(d.rel)
		if err != nil || data == nil {
			e.missing = data == nil
			return e, err
		}
		e.fileData = data
		kc, err := ParseKubeconfig(data)
		if err != nil {
			e.broken = err.Error()
			return e, nil
		}
		e.kc, e.certPEM, e.keyPEM = kc, kc.ClientCertPEM, kc.ClientKeyPEM
	} else {
		var err error
		if e.certPEM, err = s.readOptional(d.rel + ".crt"); err != nil {
			return e, err
		}
		if e.keyPEM, err = s.readOptional(d.rel + ".key"); err != nil {
			return e, err
		}
		if e.certPEM == nil && e.keyPEM == nil {
			e.missing = true
			return e, nil
		}
	}
	if e.keyPEM != nil {
		if k, err := parseKey(e.keyPEM); err == nil {
			e.key = k
		}
	}
	switch {
	case e.keyPEM == nil:
		e.broken = "key missing"
	case e.key == nil:
		e.broken = "key unreadable"
	case e.certPEM == nil:
		e.broken = "certificate missing"
	default:
		c, err := parseCert(e.certPEM)
		if err != nil {
			e.broken = "certificate unreadable: " + err.Error()
		}
		e.cert = c
	}
	return e, nil
}

// ensureLeaf brings one certificate or kubeconfig in line with the spec.
// renew forces a new certificate and key.
func (s *Store) ensureLeaf(d leafDef, ca *caPair, spec Spec, now time.Time, renew bool) (ReportItem, error) {
	item := ReportItem{Name: d.name, Host: d.host, Path: d.path()}
	e, err := s.readLeaf(d)
	if err != nil {
		return item, fmt.Errorf("%s: %w", d.path(), err)
	}
	var reason string
	keepKey := false
	switch {
	case renew:
		item.Action, reason = Renewed, "renewed on request with a new key"
	case e.missing:
		item.Action, reason = Created, "missing"
	case e.broken != "":
		item.Action, reason = Reissued, e.broken
		keepKey = e.key != nil && keyAlgorithmOf(e.key.Public()) == string(spec.KeyAlgorithm)
	default:
		r, newKey := leafProblem(e.cert, e.key, d.req, ca.cert, spec.KeyAlgorithm, now, spec.RenewBefore)
		if r != "" {
			item.Action, reason, keepKey = Reissued, r, !newKey
		}
	}
	if item.Action == "" {
		// The certificate is right; a kubeconfig may still point elsewhere.
		if d.kubeconfig {
			want, err := RenderKubeconfig(s.kubeconfigData(d, spec, ca, e.certPEM, e.keyPEM))
			if err != nil {
				return item, err
			}
			if !bytes.Equal(want, e.fileData) {
				if err := writeFileAtomic(s.abs(d.rel), want, modeConfig); err != nil {
					return item, err
				}
				item.Action, item.Reason = Updated, kubeconfigDiff(e.kc, s.kubeconfigData(d, spec, ca, nil, nil))
				return item, nil
			}
			return s.reuse(item, map[string]fs.FileMode{d.rel: modeConfig})
		}
		return s.reuse(item, map[string]fs.FileMode{d.rel + ".crt": modeCert, d.rel + ".key": modeKey})
	}

	key := e.key
	if !keepKey {
		if key, err = generateKey(spec.KeyAlgorithm); err != nil {
			return item, fmt.Errorf("%s: generate key: %w", d.path(), err)
		}
		if item.Action == Reissued {
			reason += "; new key"
		}
	}
	item.Reason = reason
	certPEM, err := IssueCert(ca.cert, ca.key, d.req, key.Public(), now, spec.LeafValidity)
	if err != nil {
		return item, fmt.Errorf("%s: %w", d.path(), err)
	}
	if !d.kubeconfig {
		if keepKey {
			key = nil // already on disk
		}
		return item, s.writePair(d.rel, certPEM, key)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return item, fmt.Errorf("%s: %w", d.path(), err)
	}
	data, err := RenderKubeconfig(s.kubeconfigData(d, spec, ca, certPEM, keyPEM))
	if err != nil {
		return item, err
	}
	return item, writeFileAtomic(s.abs(d.rel), data, modeConfig)
}

func (s *Store) kubeconfigData(d leafDef, spec Spec, ca *caPair, certPEM, keyPEM []byte) KubeconfigData {
	return KubeconfigData{
		ClusterName:   spec.ClusterName,
		Server:        d.server,
		CAPEM:         ca.certPEM,
		User:          d.req.CommonName,
		ClientCertPEM: certPEM,
		ClientKeyPEM:  keyPEM,
	}
}

// kubeconfigDiff explains why a kubeconfig with a good certificate is rewritten.
func kubeconfigDiff(have, want KubeconfigData) string {
	var parts []string
	if have.Server != want.Server {
		parts = append(parts, fmt.Sprintf("server %s, want %s", have.Server, want.Server))
	}
	if have.ClusterName != want.ClusterName {
		parts = append(parts, fmt.Sprintf("cluster %s, want %s", have.ClusterName, want.ClusterName))
	}
	if have.User != want.User {
		parts = append(parts, fmt.Sprintf("user %s, want %s", have.User, want.User))
	}
	if !bytes.Equal(have.CAPEM, want.CAPEM) {
		parts = append(parts, "embedded CA differs from the store's")
	}
	if len(parts) == 0 {
		return "content differs from the canonical rendering"
	}
	return strings.Join(parts, "; ")
}

// removeStale deletes files under hosts/ that no leaf of the spec owns (a
// host left the masters or etcd group): stale credentials are a liability.
func (s *Store) removeStale(leaves []leafDef) ([]ReportItem, error) {
	keep := map[string]bool{}
	for _, d := range leaves {
		if d.host == "" {
			continue
		}
		if d.kubeconfig {
			keep[d.rel] = true
		} else {
			keep[d.rel+".crt"], keep[d.rel+".key"] = true, true
		}
	}
	root := s.abs("hosts")
	var items []ReportItem
	var dirs []string
	err := filepath.WalkDir(root, func(p string, de fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && p == root {
			return fs.SkipDir
		}
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(s.dir, p)
		rel = filepath.ToSlash(rel)
		if de.IsDir() {
			dirs = append(dirs, p)
			return nil
		}
		if keep[rel] {
			return nil
		}
		if err := os.Remove(p); err != nil {
			return err
		}
		host := strings.SplitN(strings.TrimPrefix(rel, "hosts/"), "/", 2)[0]
		items = append(items, ReportItem{Name: staleName(rel), Host: host, Path: rel, Action: Removed,
			Reason: "host no longer needs it (not in the masters or etcd group)"})
		return nil
	})
	if err != nil {
		return items, fmt.Errorf("remove stale host files: %w", err)
	}
	// Deepest first, so emptied parents can go too; non-empty ones stay.
	slices.Reverse(dirs)
	for _, d := range dirs {
		if d == root {
			continue
		}
		if ents, err := os.ReadDir(d); err == nil && len(ents) == 0 {
			if err := os.Remove(d); err != nil {
				return items, fmt.Errorf("remove stale host dir: %w", err)
			}
		}
	}
	return items, nil
}

// staleName derives the kubeadm-style name from a per-host path.
func staleName(rel string) string {
	parts := strings.SplitN(rel, "/", 3)
	if len(parts) < 3 {
		return rel
	}
	p := parts[2]
	if strings.HasSuffix(p, ".conf") {
		return p
	}
	return strings.ReplaceAll(strings.TrimSuffix(p, filepath.Ext(p)), "/", "-")
}

// writeFileAtomic writes through a temporary file in the same directory, so
// a reader (or a crash) never sees a half-written key or certificate.
func writeFileAtomic(path string, data []byte, mode fs.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, modeDir); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(mode); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	ok = true
	if d, err := os.Open(dir); err == nil {
		// Persist the rename; failure here only weakens crash safety.
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// CA returns a CA certificate and its key for issuing certificates this
// package does not manage (name: CACluster, CAEtcd or CAFrontProxy; the
// kubeadm names etcd-ca is accepted too).
func (s *Store) CA(name string) (*x509.Certificate, crypto.Signer, error) {
	rel := name
	for _, d := range caDefs {
		if d.name == name {
			rel = d.rel
		}
	}
	known := false
	for _, d := range caDefs {
		known = known || d.rel == rel
	}
	if !known {
		return nil, nil, fmt.Errorf("unknown CA %q (want %s, %s or %s)", name, CACluster, CAEtcd, CAFrontProxy)
	}
	ca, err := s.loadCA(rel)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("CA %s not found in %s: run EnsureAll (install) first", rel, s.dir)
	}
	if err != nil {
		return nil, nil, err
	}
	return ca.cert, ca.key, nil
}

// File is one file a host needs, with its content.
type File struct {
	RemotePath string
	Mode       fs.FileMode
	Data       []byte
	// LocalPath is where it came from, for messages.
	LocalPath string
}

// FilesForHost lists what a host with these roles (inventory group names:
// masters, etcd, workers) needs, at kubeadm's paths, sorted by remote path.
// It reads the store only; run EnsureAll first.
func (s *Store) FilesForHost(host string, roles []string) ([]File, error) {
	if host == "" || strings.ContainsAny(host, "/\\") {
		return nil, fmt.Errorf("files for host: invalid host name %q", host)
	}
	byRemote := map[string]fileDef{}
	for _, r := range roles {
		defs, ok := filesByRole[r]
		if !ok {
			return nil, fmt.Errorf("files for host %s: unknown role %q (want %s, %s or %s)", host, r,
				inventory.GroupMasters, inventory.GroupEtcd, inventory.GroupWorkers)
		}
		for _, d := range defs {
			byRemote[d.remote] = d
		}
	}
	var out []File
	for _, d := range byRemote {
		local := s.abs(strings.ReplaceAll(d.local, "{host}", host))
		data, err := os.ReadFile(local)
		if err != nil {
			return nil, fmt.Errorf("files for host %s: %w (is the host in the PKI spec? run EnsureAll first)", host, err)
		}
		out = append(out, File{RemotePath: d.remote, Mode: d.mode, Data: data, LocalPath: local})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].RemotePath < out[j].RemotePath })
	return out, nil
}
