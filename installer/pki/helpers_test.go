package pki

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubewright/kubewright/installer/inventory"
	goldenfile "github.com/kubewright/kubewright/internal/golden"
)

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	goldenfile.AssertString(t, filepath.Join("testdata", name), got)
}

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

// clock is a settable test clock.
type clock struct{ now time.Time }

func (c *clock) Now() time.Time { return c.now }

// testCluster is an inventory with n masters (m1..mn, etcd defaulting to the
// masters, listed as a range) and one worker.
func testCluster(n int) *inventory.Cluster {
	c := &inventory.Cluster{
		APIVersion: inventory.APIVersion, Kind: inventory.Kind,
		Metadata: inventory.Metadata{Name: "prod"},
		Spec: inventory.Spec{
			Groups: map[string][]string{
				inventory.GroupMasters: {fmt.Sprintf("m[1:%d]", n)},
				inventory.GroupWorkers: {"w1"},
			},
			ControlPlaneEndpoint: inventory.ControlPlaneEndpoint{VIP: "192.0.2.100", Port: 6443},
			Network:              inventory.Network{ServiceCIDR: "10.96.0.0/12"},
			DNS:                  inventory.DNS{ClusterDomain: "corp.local"},
		},
	}
	for i := 1; i <= n; i++ {
		c.Spec.Hosts = append(c.Spec.Hosts, inventory.Host{
			Name: fmt.Sprintf("m%d", i), Address: fmt.Sprintf("192.0.2.1%d", i), InternalAddress: fmt.Sprintf("10.0.0.1%d", i),
		})
	}
	c.Spec.Hosts = append(c.Spec.Hosts, inventory.Host{Name: "w1", Address: "192.0.2.21"})
	return c
}

func testSpec(t *testing.T, n int) Spec {
	t.Helper()
	s, err := SpecFromCluster(testCluster(n))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// newTestStore returns a store in a fresh directory with a settable clock.
func newTestStore(t *testing.T) (*Store, *clock) {
	t.Helper()
	c := &clock{now: t0}
	return NewStore(filepath.Join(t.TempDir(), "pki"), c.Now), c
}

func mustEnsure(t *testing.T, s *Store, spec Spec) Report {
	t.Helper()
	r, err := s.EnsureAll(spec)
	if err != nil {
		t.Fatalf("EnsureAll: %v", err)
	}
	return r
}

type fileState struct {
	data []byte
	mode fs.FileMode
}

// snapshot reads every file and directory mode below dir.
func snapshot(t *testing.T, dir string) map[string]fileState {
	t.Helper()
	out := map[string]fileState{}
	err := filepath.WalkDir(dir, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := de.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		st := fileState{mode: fi.Mode()}
		if !de.IsDir() {
			if st.data, err = os.ReadFile(p); err != nil {
				return err
			}
		}
		out[filepath.ToSlash(rel)] = st
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func diffSnapshots(a, b map[string]fileState) []string {
	var d []string
	for k, va := range a {
		vb, ok := b[k]
		switch {
		case !ok:
			d = append(d, "removed "+k)
		case !bytes.Equal(va.data, vb.data):
			d = append(d, "content "+k)
		case va.mode != vb.mode:
			d = append(d, "mode "+k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			d = append(d, "added "+k)
		}
	}
	return d
}

// itemKey identifies a report item in assertions.
func itemKey(i ReportItem) string {
	if i.Host != "" {
		return i.Name + "/" + i.Host
	}
	return i.Name
}

// changed returns "key=action" for every item that is not reused.
func changed(r Report) map[string]Action {
	out := map[string]Action{}
	for _, i := range r.Items {
		if i.Action != Reused {
			out[itemKey(i)] = i.Action
		}
	}
	return out
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c, err := parseCert(b)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func readKubeconfig(t *testing.T, path string) KubeconfigData {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ParseKubeconfig(b)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func joinLines(ss []string) string { return strings.Join(ss, "\n") + "\n" }
