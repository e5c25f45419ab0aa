package pki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// TestAPIServerSANs checks the issued apiserver certificate against a golden
// list: VIP, every master's name and both addresses, the kubernetes Service
// names with the cluster domain, the first service IP and loopback.
func TestAPIServerSANs(t *testing.T) {
	st, _ := newTestStore(t)
	spec := testSpec(t, 3)
	spec.ExtraAPIServerSANs = []string{"api.example.com", "198.51.100.7", "m1"}
	mustEnsure(t, st, spec)
	cert := readCert(t, filepath.Join(st.Dir(), "apiserver.crt"))
	got := certSANs(cert)
	golden(t, "apiserver-sans.golden", joinLines(got))
	fromSpec, err := spec.APIServerSANs()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, fromSpec) {
		t.Errorf("certificate SANs %v differ from spec.APIServerSANs %v", got, fromSpec)
	}
	if cert.Subject.CommonName != "kube-apiserver" {
		t.Errorf("CN = %q", cert.Subject.CommonName)
	}
}

func TestEtcdSANs(t *testing.T) {
	st, _ := newTestStore(t)
	mustEnsure(t, st, testSpec(t, 2))
	for _, f := range []string{"server", "peer"} {
		c := readCert(t, filepath.Join(st.Dir(), "hosts/m2/etcd", f+".crt"))
		got := strings.Join(certSANs(c), " ")
		want := "DNS:m2 DNS:localhost IP:192.0.2.12 IP:10.0.0.12 IP:127.0.0.1 IP:::1"
		if got != want || c.Subject.CommonName != "m2" {
			t.Errorf("%s: CN %q SANs %q, want CN m2 SANs %q", f, c.Subject.CommonName, got, want)
		}
	}
}

// leafExpect is what every managed leaf must look like.
type leafExpect struct {
	file     string // .crt or .conf below the store
	ca       string
	cn       string
	orgs     []string
	usages   []x509.ExtKeyUsage
	dnsName  string // a name the server certificate must be valid for
	wrongCA  string // a CA that must NOT verify it
	keyUsage x509.KeyUsage
}

func leafExpectations() []leafExpect {
	return []leafExpect{
		{file: "apiserver.crt", ca: "ca", cn: "kube-apiserver", usages: serverAuth, dnsName: "kubernetes.default.svc.corp.local", wrongCA: "etcd/ca"},
		{file: "apiserver-kubelet-client.crt", ca: "ca", cn: "kube-apiserver-kubelet-client", orgs: []string{"kubeadm:cluster-admins"}, usages: clientAuth, wrongCA: "front-proxy-ca"},
		{file: "front-proxy-client.crt", ca: "front-proxy-ca", cn: "front-proxy-client", usages: clientAuth, wrongCA: "ca"},
		{file: "apiserver-etcd-client.crt", ca: "etcd/ca", cn: "kube-apiserver-etcd-client", usages: clientAuth, wrongCA: "ca"},
		{file: "etcd/healthcheck-client.crt", ca: "etcd/ca", cn: "kube-etcd-healthcheck-client", usages: clientAuth, wrongCA: "ca"},
		{file: "hosts/m1/etcd/server.crt", ca: "etcd/ca", cn: "m1", usages: bothAuth, dnsName: "m1", wrongCA: "ca"},
		{file: "hosts/m1/etcd/peer.crt", ca: "etcd/ca", cn: "m1", usages: bothAuth, dnsName: "localhost", wrongCA: "ca"},
		{file: "hosts/m2/etcd/server.crt", ca: "etcd/ca", cn: "m2", usages: bothAuth, dnsName: "m2", wrongCA: "ca"},
		{file: "admin.conf", ca: "ca", cn: "kubernetes-admin", orgs: []string{"kubeadm:cluster-admins"}, usages: clientAuth, wrongCA: "etcd/ca"},
		{file: "super-admin.conf", ca: "ca", cn: "kubernetes-super-admin", orgs: []string{"system:masters"}, usages: clientAuth, wrongCA: "etcd/ca"},
		{file: "hosts/m2/controller-manager.conf", ca: "ca", cn: "system:kube-controller-manager", usages: clientAuth, wrongCA: "front-proxy-ca"},
		{file: "hosts/m1/scheduler.conf", ca: "ca", cn: "system:kube-scheduler", usages: clientAuth, wrongCA: "front-proxy-ca"},
	}
}

func leafCert(t *testing.T, dir, file string) *x509.Certificate {
	t.Helper()
	if strings.HasSuffix(file, ".conf") {
		c, err := parseCert(readKubeconfig(t, filepath.Join(dir, file)).ClientCertPEM)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	return readCert(t, filepath.Join(dir, file))
}

// TestChainVerification verifies every leaf against its own CA with the
// extended key usage its consumer checks, and that another CA rejects it.
func TestChainVerification(t *testing.T) {
	t.Parallel() // RSA key generation dominates the package's run time
	for _, alg := range []KeyAlgorithm{ECDSAP256, RSA2048} {
		t.Run(string(alg), func(t *testing.T) {
			st, clk := newTestStore(t)
			spec := testSpec(t, 2)
			spec.KeyAlgorithm = alg
			mustEnsure(t, st, spec)
			for _, e := range leafExpectations() {
				t.Run(e.file, func(t *testing.T) {
					c := leafCert(t, st.Dir(), e.file)
					pool := x509.NewCertPool()
					pool.AddCert(readCert(t, filepath.Join(st.Dir(), e.ca+".crt")))
					opts := x509.VerifyOptions{Roots: pool, KeyUsages: e.usages, DNSName: e.dnsName, CurrentTime: clk.now}
					if _, err := c.Verify(opts); err != nil {
						t.Fatalf("verify against %s: %v", e.ca, err)
					}
					for _, u := range e.usages {
						o := opts
						o.KeyUsages = []x509.ExtKeyUsage{u}
						if _, err := c.Verify(o); err != nil {
							t.Errorf("usage %v: %v", u, err)
						}
					}
					if slices.Equal(e.usages, clientAuth) {
						// A client certificate must not pass as a server's.
						o := opts
						o.KeyUsages = serverAuth
						if _, err := c.Verify(o); err == nil {
							t.Error("client certificate verified for serverAuth")
						}
					}
					wrong := x509.NewCertPool()
					wrong.AddCert(readCert(t, filepath.Join(st.Dir(), e.wrongCA+".crt")))
					o := opts
					o.Roots = wrong
					if _, err := c.Verify(o); err == nil {
						t.Errorf("verified against the wrong CA %s", e.wrongCA)
					}
					if c.Subject.CommonName != e.cn || !slices.Equal(c.Subject.Organization, e.orgs) {
						t.Errorf("subject CN=%q O=%v, want CN=%q O=%v", c.Subject.CommonName, c.Subject.Organization, e.cn, e.orgs)
					}
					if got := keyAlgorithmOf(c.PublicKey); got != string(alg) {
						t.Errorf("key algorithm %s, want %s", got, alg)
					}
					_, isRSA := c.PublicKey.(*rsa.PublicKey)
					if isRSA != (c.KeyUsage&x509.KeyUsageKeyEncipherment != 0) {
						t.Errorf("KeyEncipherment set=%v for RSA=%v", !isRSA, isRSA)
					}
					if c.IsCA {
						t.Error("leaf is a CA")
					}
					if want := clk.now.Add(DefaultLeafValidity); !c.NotAfter.Equal(want) {
						t.Errorf("NotAfter %s, want %s", c.NotAfter, want)
					}
				})
			}
			for _, ca := range []string{"ca", "etcd/ca", "front-proxy-ca"} {
				c := readCert(t, filepath.Join(st.Dir(), ca+".crt"))
				if !c.IsCA || c.KeyUsage&x509.KeyUsageCertSign == 0 || !c.NotAfter.Equal(clk.now.Add(DefaultCAValidity)) {
					t.Errorf("%s: IsCA=%v usage=%v NotAfter=%s", ca, c.IsCA, c.KeyUsage, c.NotAfter)
				}
			}
		})
	}
}

// TestEnsureAllIdempotent: a second run reuses everything and leaves every
// byte and mode as it was.
func TestEnsureAllIdempotent(t *testing.T) {
	st, clk := newTestStore(t)
	spec := testSpec(t, 3)
	first := mustEnsure(t, st, spec)
	golden(t, "report-first.golden", first.String())
	for _, i := range first.Items {
		if i.Action != Created {
			t.Errorf("first run: %s", i)
		}
	}
	before := snapshot(t, st.Dir())
	clk.now = clk.now.Add(24 * time.Hour)
	second := mustEnsure(t, st, spec)
	if second.Changed() {
		t.Errorf("second run changed something:\n%s", second)
	}
	if len(second.Items) != len(first.Items) {
		t.Errorf("second run reported %d items, first %d", len(second.Items), len(first.Items))
	}
	if d := diffSnapshots(before, snapshot(t, st.Dir())); len(d) > 0 {
		t.Errorf("files changed on the second run: %v", d)
	}
	if r := second.Restarts(spec); len(r) != 0 {
		t.Errorf("restarts after a no-op run: %v", r)
	}
}

// TestAddMaster: a new master re-issues the apiserver certificate (same key)
// and creates only that host's files.
func TestAddMaster(t *testing.T) {
	st, _ := newTestStore(t)
	mustEnsure(t, st, testSpec(t, 3))
	before := snapshot(t, st.Dir())
	spec4 := testSpec(t, 4)
	rep := mustEnsure(t, st, spec4)
	want := map[string]Action{
		"apiserver":                  Reissued,
		"etcd-server/m4":             Created,
		"etcd-peer/m4":               Created,
		"controller-manager.conf/m4": Created,
		"scheduler.conf/m4":          Created,
	}
	if got := changed(rep); !maps.Equal(got, want) {
		t.Errorf("changed items = %v, want %v\n%s", got, want, rep)
	}
	for _, i := range rep.Items {
		if i.Name == "apiserver" && i.Reason != "missing SANs DNS:m4,IP:192.0.2.14,IP:10.0.0.14" {
			t.Errorf("apiserver reason = %q", i.Reason)
		}
	}
	after := snapshot(t, st.Dir())
	if !bytes.Equal(before["apiserver.key"].data, after["apiserver.key"].data) {
		t.Error("apiserver key changed; re-issue for new SANs must keep it")
	}
	if d := diffSnapshots(before, after); !slices.Contains(d, "content apiserver.crt") {
		t.Errorf("apiserver.crt not rewritten: %v", d)
	}
	got := fmt.Sprint(rep.Restarts(spec4))
	wantR := "[{m1 [kube-apiserver]} {m2 [kube-apiserver]} {m3 [kube-apiserver]} {m4 [etcd kube-apiserver kube-controller-manager kube-scheduler]}]"
	if got != wantR {
		t.Errorf("restarts = %s, want %s", got, wantR)
	}
	c := readCert(t, filepath.Join(st.Dir(), "apiserver.crt"))
	if !slices.Contains(c.DNSNames, "m4") {
		t.Errorf("apiserver SANs lack m4: %v", c.DNSNames)
	}
}

// TestRemoveMaster: the apiserver loses the SANs and the host's files go.
func TestRemoveMaster(t *testing.T) {
	st, _ := newTestStore(t)
	mustEnsure(t, st, testSpec(t, 3))
	rep := mustEnsure(t, st, testSpec(t, 2))
	want := map[string]Action{
		"apiserver":                  Reissued,
		"etcd-server/m3":             Removed,
		"etcd-peer/m3":               Removed,
		"controller-manager.conf/m3": Removed,
		"scheduler.conf/m3":          Removed,
	}
	got := map[string]Action{}
	for _, i := range rep.Items {
		if i.Action != Reused {
			got[itemKey(i)] = i.Action // .crt and .key of a pair share a key
		}
	}
	if !maps.Equal(got, want) {
		t.Errorf("changed = %v, want %v\n%s", got, want, rep)
	}
	if _, err := os.Stat(filepath.Join(st.Dir(), "hosts/m3")); !os.IsNotExist(err) {
		t.Errorf("hosts/m3 still exists: %v", err)
	}
}

// TestExpiry uses the injected clock: leaves are re-issued when expired or
// within the renew threshold, and reused otherwise; CAs are kept.
func TestExpiry(t *testing.T) {
	cases := []struct {
		name      string
		advance   time.Duration
		reissued  bool
		reasonHas string
	}{
		{"well within validity", 200 * 24 * time.Hour, false, ""},
		{"inside renew threshold", 340 * 24 * time.Hour, true, "within the renew threshold of 30d"},
		{"expired", 400 * 24 * time.Hour, true, "expired 2027-03-01T10:00:00Z"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st, clk := newTestStore(t)
			spec := testSpec(t, 1)
			mustEnsure(t, st, spec)
			keyBefore, _ := os.ReadFile(filepath.Join(st.Dir(), "apiserver.key"))
			clk.now = t0.Add(tc.advance)
			rep := mustEnsure(t, st, spec)
			for _, i := range rep.Items {
				isCA := i.Name == "ca" || i.Name == "etcd-ca" || i.Name == "front-proxy-ca" || i.Name == "sa"
				switch {
				case isCA && i.Action != Reused:
					t.Errorf("CA or SA touched: %s", i)
				case !isCA && tc.reissued && (i.Action != Reissued || !strings.Contains(i.Reason, tc.reasonHas)):
					t.Errorf("want reissued (%s): %s", tc.reasonHas, i)
				case !isCA && !tc.reissued && i.Action != Reused:
					t.Errorf("want reused: %s", i)
				}
			}
			c := readCert(t, filepath.Join(st.Dir(), "apiserver.crt"))
			if _, err := c.Verify(x509.VerifyOptions{Roots: poolOf(t, st, "ca"), CurrentTime: clk.now}); err != nil {
				t.Errorf("apiserver cert not valid at the new time: %v", err)
			}
			keyAfter, _ := os.ReadFile(filepath.Join(st.Dir(), "apiserver.key"))
			if !bytes.Equal(keyBefore, keyAfter) {
				t.Error("key changed; expiry re-issue keeps the key")
			}
		})
	}
}

func poolOf(t *testing.T, st *Store, ca string) *x509.CertPool {
	t.Helper()
	p := x509.NewCertPool()
	p.AddCert(readCert(t, filepath.Join(st.Dir(), ca+".crt")))
	return p
}

func TestPermissions(t *testing.T) {
	st, _ := newTestStore(t)
	mustEnsure(t, st, testSpec(t, 2))
	snap := snapshot(t, st.Dir())
	// 7 dirs, 18 shared cert/key files, 6 per host, 2 admin kubeconfigs.
	if len(snap) != 39 {
		t.Fatalf("%d entries in the store, want 39", len(snap))
	}
	for rel, fsx := range snap {
		var want fs.FileMode
		switch {
		case fsx.mode.IsDir():
			want = fs.ModeDir | 0o700
		case strings.HasSuffix(rel, ".key"), strings.HasSuffix(rel, ".conf"):
			want = 0o600
		case strings.HasSuffix(rel, ".crt"), strings.HasSuffix(rel, ".pub"):
			want = 0o644
		default:
			t.Errorf("unexpected file %s (temporary file left behind?)", rel)
			continue
		}
		if fsx.mode != want {
			t.Errorf("%s: mode %v, want %v", rel, fsx.mode, want)
		}
	}

	// Loosened permissions are repaired without rewriting content.
	if err := os.Chmod(filepath.Join(st.Dir(), "hosts/m1/etcd/peer.key"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(st.Dir(), 0o755); err != nil {
		t.Fatal(err)
	}
	rep := mustEnsure(t, st, testSpec(t, 2))
	if got := changed(rep); !maps.Equal(got, map[string]Action{"etcd-peer/m1": Chmod}) {
		t.Errorf("changed = %v", got)
	}
	if d := diffSnapshots(snap, snapshot(t, st.Dir())); len(d) > 0 {
		t.Errorf("after repair: %v", d)
	}
}

// TestKubeconfigs parses each kubeconfig as generic YAML (independent of our
// own parser) and checks the schema, server, embedded CA and client cert.
func TestKubeconfigs(t *testing.T) {
	st, _ := newTestStore(t)
	spec := testSpec(t, 2)
	spec.Masters[1].APIServerURL = "https://127.0.0.1:16443"
	mustEnsure(t, st, spec)
	caPEM, _ := os.ReadFile(filepath.Join(st.Dir(), "ca.crt"))
	cases := []struct {
		file, server, user string
		orgs               []string
	}{
		{"admin.conf", "https://192.0.2.100:6443", "kubernetes-admin", []string{"kubeadm:cluster-admins"}},
		{"super-admin.conf", "https://192.0.2.100:6443", "kubernetes-super-admin", []string{"system:masters"}},
		{"hosts/m1/controller-manager.conf", "https://10.0.0.11:6443", "system:kube-controller-manager", nil},
		{"hosts/m2/controller-manager.conf", "https://127.0.0.1:16443", "system:kube-controller-manager", nil},
		{"hosts/m2/scheduler.conf", "https://127.0.0.1:16443", "system:kube-scheduler", nil},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(st.Dir(), tc.file))
			if err != nil {
				t.Fatal(err)
			}
			var doc struct {
				APIVersion     string `yaml:"apiVersion"`
				Kind           string `yaml:"kind"`
				CurrentContext string `yaml:"current-context"`
				Clusters       []struct {
					Name    string            `yaml:"name"`
					Cluster map[string]string `yaml:"cluster"`
				} `yaml:"clusters"`
				Contexts []struct {
					Name    string            `yaml:"name"`
					Context map[string]string `yaml:"context"`
				} `yaml:"contexts"`
				Users []struct {
					Name string            `yaml:"name"`
					User map[string]string `yaml:"user"`
				} `yaml:"users"`
			}
			if err := yaml.Unmarshal(raw, &doc); err != nil {
				t.Fatal(err)
			}
			ctx := tc.user + "@prod"
			if doc.APIVersion != "v1" || doc.Kind != "Config" || doc.CurrentContext != ctx ||
				len(doc.Clusters) != 1 || len(doc.Contexts) != 1 || len(doc.Users) != 1 ||
				doc.Clusters[0].Name != "prod" || doc.Contexts[0].Name != ctx ||
				doc.Contexts[0].Context["cluster"] != "prod" || doc.Contexts[0].Context["user"] != tc.user || doc.Users[0].Name != tc.user {
				t.Fatalf("unexpected structure: %+v", doc)
			}
			if doc.Clusters[0].Cluster["server"] != tc.server {
				t.Errorf("server = %s, want %s", doc.Clusters[0].Cluster["server"], tc.server)
			}
			k := readKubeconfig(t, filepath.Join(st.Dir(), tc.file))
			if !bytes.Equal(k.CAPEM, caPEM) {
				t.Error("embedded CA is not ca.crt")
			}
			c, err := parseCert(k.ClientCertPEM)
			if err != nil {
				t.Fatal(err)
			}
			key, err := parseKey(k.ClientKeyPEM)
			if err != nil {
				t.Fatal(err)
			}
			if !publicKeysEqual(c.PublicKey, key.Public()) {
				t.Error("embedded key does not match embedded cert")
			}
			if c.Subject.CommonName != tc.user || !slices.Equal(c.Subject.Organization, tc.orgs) {
				t.Errorf("subject %s", subjectString(c.Subject))
			}
		})
	}
}

// TestKubeconfigServerChange: moving a master's component URL rewrites only
// its kubeconfigs around the same certificate and asks for restarts.
func TestKubeconfigServerChange(t *testing.T) {
	st, _ := newTestStore(t)
	spec := testSpec(t, 2)
	mustEnsure(t, st, spec)
	certBefore := readKubeconfig(t, filepath.Join(st.Dir(), "hosts/m1/scheduler.conf")).ClientCertPEM
	spec.Masters[0].APIServerURL = "https://10.0.0.11:16443"
	rep := mustEnsure(t, st, spec)
	want := map[string]Action{"controller-manager.conf/m1": Updated, "scheduler.conf/m1": Updated}
	if got := changed(rep); !maps.Equal(got, want) {
		t.Fatalf("changed = %v\n%s", got, rep)
	}
	for _, i := range rep.Items {
		if i.Action == Updated && i.Reason != "server https://10.0.0.11:6443, want https://10.0.0.11:16443" {
			t.Errorf("reason = %q", i.Reason)
		}
	}
	k := readKubeconfig(t, filepath.Join(st.Dir(), "hosts/m1/scheduler.conf"))
	if !bytes.Equal(k.ClientCertPEM, certBefore) || k.Server != "https://10.0.0.11:16443" {
		t.Errorf("server %s, cert kept %v", k.Server, bytes.Equal(k.ClientCertPEM, certBefore))
	}
	if got := fmt.Sprint(rep.Restarts(spec)); got != "[{m1 [kube-controller-manager kube-scheduler]}]" {
		t.Errorf("restarts = %s", got)
	}
}

// TestTamperedCA: after ca.crt/ca.key are replaced by another CA, every leaf
// that CA signs is re-issued; the etcd and front-proxy trees are untouched.
func TestTamperedCA(t *testing.T) {
	st, clk := newTestStore(t)
	spec := testSpec(t, 2)
	mustEnsure(t, st, spec)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, err := newCACert("kubernetes", key, clk.now, DefaultCAValidity)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, _ := encodeKey(key)
	if err := os.WriteFile(filepath.Join(st.Dir(), "ca.crt"), certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(st.Dir(), "ca.key"), keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}

	infos, err := Check(st.Dir(), clk.now, spec.RenewBefore)
	if err != nil {
		t.Fatal(err)
	}
	flagged := 0
	for _, ci := range infos {
		for _, p := range ci.Problems {
			if strings.HasPrefix(p, "not signed by the CA CN=kubernetes found here") {
				flagged++
			}
		}
	}
	if flagged != 8 { // apiserver, kubelet-client, 2 admin confs, 2x2 component confs
		t.Errorf("Check flagged %d files, want 8", flagged)
	}

	rep := mustEnsure(t, st, spec)
	want := map[string]Action{
		"apiserver": Reissued, "apiserver-kubelet-client": Reissued,
		"admin.conf": Reissued, "super-admin.conf": Reissued,
		"controller-manager.conf/m1": Reissued, "scheduler.conf/m1": Reissued,
		"controller-manager.conf/m2": Reissued, "scheduler.conf/m2": Reissued,
	}
	if got := changed(rep); !maps.Equal(got, want) {
		t.Errorf("changed = %v\n%s", got, rep)
	}
	for _, i := range rep.Items {
		if i.Action == Reissued && i.Reason != "not signed by the current CA kubernetes" {
			t.Errorf("%s: reason %q", itemKey(i), i.Reason)
		}
	}
	pool := poolOf(t, st, "ca")
	for _, f := range []string{"apiserver.crt", "admin.conf", "hosts/m2/scheduler.conf"} {
		if _, err := leafCert(t, st.Dir(), f).Verify(x509.VerifyOptions{Roots: pool, CurrentTime: clk.now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
			t.Errorf("%s not signed by the new CA: %v", f, err)
		}
	}
	if k := readKubeconfig(t, st.AdminKubeconfigPath()); !bytes.Equal(k.CAPEM, certPEM) {
		t.Error("admin.conf does not embed the new CA")
	}
}

// TestCAErrors: an unusable CA stops EnsureAll with the fix in the message.
func TestCAErrors(t *testing.T) {
	cases := []struct {
		name    string
		mutate  func(t *testing.T, dir string, clk *clock)
		wantErr string
	}{
		{"key missing", func(t *testing.T, dir string, _ *clock) { os.Remove(filepath.Join(dir, "etcd/ca.key")) },
			"CA etcd/ca: etcd/ca.crt exists without etcd/ca.key; restore the key (or remove both to start a new CA, which re-issues every certificate)"},
		{"cert missing", func(t *testing.T, dir string, _ *clock) { os.Remove(filepath.Join(dir, "ca.crt")) },
			"CA ca: ca.key exists without ca.crt; restore the certificate (or remove both to start a new CA, which re-issues every certificate)"},
		{"key of another CA", func(t *testing.T, dir string, _ *clock) {
			b, _ := os.ReadFile(filepath.Join(dir, "ca.key"))
			os.WriteFile(filepath.Join(dir, "front-proxy-ca.key"), b, 0o600)
		}, "CA front-proxy-ca: front-proxy-ca.key does not match front-proxy-ca.crt"},
		{"expired", func(t *testing.T, dir string, clk *clock) { clk.now = clk.now.Add(11 * 365 * 24 * time.Hour) },
			"CA ca is not valid now (valid 2026-03-01T09:00:00Z to 2036-02-27T10:00:00Z); CA rotation is manual, see docs/pki.md"},
		{"sa key missing", func(t *testing.T, dir string, _ *clock) { os.Remove(filepath.Join(dir, "sa.key")) },
			"service-account key: sa.pub exists without sa.key; restore the key (or remove sa.pub to make a new pair, which invalidates every service-account token)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st, clk := newTestStore(t)
			spec := testSpec(t, 1)
			mustEnsure(t, st, spec)
			tc.mutate(t, st.Dir(), clk)
			_, err := st.EnsureAll(spec)
			if err == nil || err.Error() != tc.wantErr {
				t.Fatalf("err = %v\nwant %s", err, tc.wantErr)
			}
		})
	}
}

// TestRepairs: broken leaves and a lost sa.pub are fixed in place.
func TestRepairs(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(dir string) error
		item   string
		action Action
		reason string
	}{
		{"sa.pub lost", func(dir string) error { return os.Remove(filepath.Join(dir, "sa.pub")) },
			"sa", Updated, "sa.pub missing or not matching sa.key: rewritten from sa.key"},
		{"leaf key lost", func(dir string) error { return os.Remove(filepath.Join(dir, "front-proxy-client.key")) },
			"front-proxy-client", Reissued, "key missing; new key"},
		{"leaf cert lost", func(dir string) error { return os.Remove(filepath.Join(dir, "etcd/healthcheck-client.crt")) },
			"etcd-healthcheck-client", Reissued, "certificate missing"},
		{"leaf key swapped", func(dir string) error {
			b, err := os.ReadFile(filepath.Join(dir, "apiserver.key"))
			if err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(dir, "apiserver-etcd-client.key"), b, 0o600)
		}, "apiserver-etcd-client", Reissued, "key does not match certificate; new key"},
		{"kubeconfig garbled", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "admin.conf"), []byte("kind: Config\n"), 0o600)
		}, "admin.conf", Reissued, `parse kubeconfig: current context "" not found; new key`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st, clk := newTestStore(t)
			spec := testSpec(t, 1)
			mustEnsure(t, st, spec)
			if err := tc.mutate(st.Dir()); err != nil {
				t.Fatal(err)
			}
			rep := mustEnsure(t, st, spec)
			var got []ReportItem
			for _, i := range rep.Items {
				if i.Action != Reused {
					got = append(got, i)
				}
			}
			if len(got) != 1 || got[0].Name != tc.item || got[0].Action != tc.action || got[0].Reason != tc.reason {
				t.Fatalf("changed = %v", got)
			}
			infos, err := Check(st.Dir(), clk.now, spec.RenewBefore)
			if err != nil {
				t.Fatal(err)
			}
			for _, ci := range infos {
				if len(ci.Problems) > 0 {
					t.Errorf("after repair %s: %v", ci.Name, ci.Problems)
				}
			}
			if again := mustEnsure(t, st, spec); again.Changed() {
				t.Errorf("not stable after repair:\n%s", again)
			}
		})
	}
}

// TestKeyAlgorithmSwitch: switching to RSA re-issues leaves with new keys
// but keeps the CAs and the service-account key.
func TestKeyAlgorithmSwitch(t *testing.T) {
	t.Parallel()
	st, _ := newTestStore(t)
	spec := testSpec(t, 1)
	mustEnsure(t, st, spec)
	spec.KeyAlgorithm = RSA2048
	rep := mustEnsure(t, st, spec)
	for _, i := range rep.Items {
		switch i.Name {
		case "ca", "etcd-ca", "front-proxy-ca", "sa":
			if i.Action != Reused {
				t.Errorf("%s", i)
			}
		default:
			if i.Action != Reissued || i.Reason != "key algorithm ecdsa-p256, want rsa-2048; new key" {
				t.Errorf("%s", i)
			}
		}
	}
	if c := readCert(t, filepath.Join(st.Dir(), "apiserver.crt")); keyAlgorithmOf(c.PublicKey) != "rsa-2048" {
		t.Error("apiserver key is not RSA")
	}
}
