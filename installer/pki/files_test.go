package pki

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubewright/kubewright/installer/inventory"
)

// TestFilesForHost lists what each kind of host receives (golden) and checks
// the content is the store's, per host where it must be.
func TestFilesForHost(t *testing.T) {
	st, _ := newTestStore(t)
	mustEnsure(t, st, testSpec(t, 2))
	cases := []struct {
		host  string
		roles []string
	}{
		{"m1", []string{inventory.GroupMasters, inventory.GroupEtcd}},
		{"m2", []string{inventory.GroupMasters}},
		{"m2", []string{inventory.GroupEtcd}},
		{"w1", []string{inventory.GroupWorkers}},
	}
	var out strings.Builder
	for _, tc := range cases {
		t.Run(tc.host+"/"+strings.Join(tc.roles, "+"), func(t *testing.T) {
			files, err := st.FilesForHost(tc.host, tc.roles)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&out, "== %s %s\n", tc.host, strings.Join(tc.roles, "+"))
			for _, f := range files {
				rel, _ := filepath.Rel(st.Dir(), f.LocalPath)
				fmt.Fprintf(&out, "%04o %s <- %s\n", f.Mode, f.RemotePath, filepath.ToSlash(rel))
				disk, err := os.ReadFile(f.LocalPath)
				if err != nil || !bytes.Equal(disk, f.Data) {
					t.Errorf("%s: data differs from %s (%v)", f.RemotePath, f.LocalPath, err)
				}
				if strings.HasSuffix(f.RemotePath, ".key") || strings.HasSuffix(f.RemotePath, ".conf") {
					if f.Mode != 0o600 {
						t.Errorf("%s: mode %04o", f.RemotePath, f.Mode)
					}
				}
				for _, secret := range []string{"etcd/ca.key", "front-proxy-ca.key", "super-admin.conf"} {
					if strings.HasSuffix(f.RemotePath, "/"+secret) {
						t.Errorf("%s must stay in the state directory", secret)
					}
				}
			}
		})
	}
	golden(t, "files-for-host.golden", out.String())

	m1, _ := st.FilesForHost("m1", []string{inventory.GroupEtcd})
	m2, _ := st.FilesForHost("m2", []string{inventory.GroupEtcd})
	for i := range m1 {
		perHost := strings.Contains(m1[i].RemotePath, "/etcd/server") || strings.Contains(m1[i].RemotePath, "/etcd/peer")
		if same := bytes.Equal(m1[i].Data, m2[i].Data); same == perHost {
			t.Errorf("%s: identical on m1 and m2 = %v", m1[i].RemotePath, same)
		}
	}

	errCases := []struct {
		host  string
		roles []string
		want  string
	}{
		{"m3", []string{inventory.GroupMasters}, "files for host m3: open "},
		{"m1", []string{"db"}, `files for host m1: unknown role "db" (want masters, etcd or workers)`},
		{"../m1", []string{inventory.GroupEtcd}, `files for host: invalid host name "../m1"`},
	}
	for _, tc := range errCases {
		_, err := st.FilesForHost(tc.host, tc.roles)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("FilesForHost(%s, %v) err = %v, want %q", tc.host, tc.roles, err, tc.want)
		}
	}
}

func TestCA(t *testing.T) {
	st, clk := newTestStore(t)
	if _, _, err := st.CA(CACluster); err == nil || !strings.Contains(err.Error(), "run EnsureAll (install) first") {
		t.Errorf("empty store: %v", err)
	}
	mustEnsure(t, st, testSpec(t, 1))
	for _, name := range []string{CACluster, CAEtcd, "etcd-ca", CAFrontProxy} {
		cert, key, err := st.CA(name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		// A kubelet serving certificate issued through the exported helper.
		pemBytes, err := IssueCert(cert, key, CertRequest{CommonName: "system:node:m1", Organization: []string{"system:nodes"}, DNSNames: []string{"m1"}, Usages: serverAuth}, key.Public(), clk.now, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		leaf, _ := parseCert(pemBytes)
		if !signedBy(leaf, cert) || !leaf.NotAfter.Equal(clk.now.Add(time.Hour)) {
			t.Errorf("%s: leaf not signed or wrong expiry %s", name, leaf.NotAfter)
		}
	}
	if _, _, err := st.CA("apiserver"); err == nil {
		t.Error("CA(apiserver) accepted")
	}
	cert, key, _ := st.CA(CACluster)
	if _, err := IssueCert(cert, key, CertRequest{CommonName: "x"}, key.Public(), clk.now, time.Hour); err == nil {
		t.Error("IssueCert without usages accepted")
	}
	// Leaves never outlive the CA.
	long, err := IssueCert(cert, key, CertRequest{CommonName: "x", Usages: clientAuth}, key.Public(), clk.now, 20*365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := parseCert(long); !c.NotAfter.Equal(cert.NotAfter) {
		t.Errorf("leaf NotAfter %s exceeds CA %s", c.NotAfter, cert.NotAfter)
	}
}

// TestCheck renders the check table for a fresh store (golden) and finds
// the problems of an expiring, a key-swapped and an orphaned certificate.
func TestCheck(t *testing.T) {
	st, clk := newTestStore(t)
	spec := testSpec(t, 2)
	mustEnsure(t, st, spec)
	infos, err := Check(st.Dir(), clk.now.Add(10*24*time.Hour), spec.RenewBefore)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteCheckTable(&buf, infos); err != nil {
		t.Fatal(err)
	}
	golden(t, "check.golden", strings.ReplaceAll(buf.String(), st.Dir(), "STORE"))
	for _, ci := range infos {
		if ci.Name == "apiserver" && (ci.Subject != "CN=kube-apiserver" || ci.Issuer != "CN=kubernetes" || len(ci.SANs) != 14 || ci.Path != filepath.Join(st.Dir(), "apiserver.crt")) {
			t.Errorf("apiserver info: %+v", ci)
		}
	}

	// Swap a key, orphan a leaf and look close to expiry.
	b, _ := os.ReadFile(filepath.Join(st.Dir(), "apiserver.key"))
	os.WriteFile(filepath.Join(st.Dir(), "front-proxy-client.key"), b, 0o600)
	os.Remove(filepath.Join(st.Dir(), "etcd/ca.crt"))
	infos, err = Check(st.Dir(), clk.now.Add(350*24*time.Hour), spec.RenewBefore)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, ci := range infos {
		if len(ci.Problems) > 0 {
			lines = append(lines, fmt.Sprintf("%s %s %d: %s", ci.Name, ci.Host, ci.DaysLeft, strings.Join(ci.Problems, "; ")))
		}
	}
	golden(t, "check-problems.golden", joinLines(lines))
}

// TestRenew renews named leaves with new keys, leaves everything else
// alone and names the components to restart.
func TestRenew(t *testing.T) {
	cases := []struct {
		names    []string
		renewed  []string
		restarts string
	}{
		{[]string{"apiserver"}, []string{"apiserver"},
			"[{m1 [kube-apiserver]} {m2 [kube-apiserver]}]"},
		{[]string{"etcd-server", "scheduler.conf"}, []string{"etcd-server/m1", "etcd-server/m2", "scheduler.conf/m1", "scheduler.conf/m2"},
			"[{m1 [etcd kube-scheduler]} {m2 [etcd kube-scheduler]}]"},
		{[]string{"admin.conf", "etcd-healthcheck-client"}, []string{"etcd-healthcheck-client", "admin.conf"}, "[]"},
		{nil, []string{"apiserver", "apiserver-kubelet-client", "front-proxy-client", "apiserver-etcd-client", "etcd-healthcheck-client",
			"etcd-server/m1", "etcd-peer/m1", "etcd-server/m2", "etcd-peer/m2", "admin.conf", "super-admin.conf",
			"controller-manager.conf/m1", "scheduler.conf/m1", "controller-manager.conf/m2", "scheduler.conf/m2"},
			"[{m1 [etcd kube-apiserver kube-controller-manager kube-scheduler]} {m2 [etcd kube-apiserver kube-controller-manager kube-scheduler]}]"},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.names, ",")+"/", func(t *testing.T) {
			st, clk := newTestStore(t)
			spec := testSpec(t, 2)
			mustEnsure(t, st, spec)
			before := snapshot(t, st.Dir())
			clk.now = clk.now.Add(100 * 24 * time.Hour)
			rep, restarts, err := st.Renew(spec, tc.names...)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, i := range rep.Items {
				if i.Action != Renewed {
					t.Errorf("unexpected %s", i)
				}
				got = append(got, itemKey(i))
			}
			if strings.Join(got, " ") != strings.Join(tc.renewed, " ") {
				t.Errorf("renewed %v, want %v", got, tc.renewed)
			}
			if fmt.Sprint(restarts) != tc.restarts {
				t.Errorf("restarts %v, want %s", restarts, tc.restarts)
			}
			// Exactly the renewed items' files changed, keys included.
			var wantChanged []string
			for _, i := range rep.Items {
				if strings.HasSuffix(i.Path, ".conf") {
					wantChanged = append(wantChanged, "content "+i.Path)
				} else {
					base := strings.TrimSuffix(i.Path, ".crt")
					wantChanged = append(wantChanged, "content "+base+".crt", "content "+base+".key")
				}
			}
			if d := diffSnapshots(before, snapshot(t, st.Dir())); !sameStrings(d, wantChanged) {
				t.Errorf("changed files %v, want %v", d, wantChanged)
			}
			if again := mustEnsure(t, st, spec); again.Changed() {
				t.Errorf("EnsureAll after renew changed:\n%s", again)
			}
			c := leafCert(t, st.Dir(), rep.Items[0].Path)
			if !c.NotAfter.Equal(clk.now.Add(DefaultLeafValidity)) {
				t.Errorf("renewed NotAfter %s", c.NotAfter)
			}
		})
	}

	st, _ := newTestStore(t)
	if _, _, err := st.Renew(testSpec(t, 1)); err == nil || !strings.Contains(err.Error(), "run install first") {
		t.Errorf("renew on an empty store: %v", err)
	}
	mustEnsure(t, st, testSpec(t, 1))
	_, _, err := st.Renew(testSpec(t, 1), "apiserver", "ca", "kubelet")
	golden(t, "renew-error.golden", fmt.Sprintln(err))
}
