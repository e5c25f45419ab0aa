package artifacts

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/kubewright/kubewright/installer/artifacts/artifactstest"
)

func createTestBundle(t *testing.T) (string, *Manifest) {
	t.Helper()
	d, err := OpenDir(writeDir(t))
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "bundle.tar.gz")
	m, err := CreateBundle(context.Background(), d, out, BundleOptions{})
	if err != nil {
		t.Fatalf("CreateBundle: %v", err)
	}
	return out, m
}

// rewriteBundle copies a bundle entry by entry through edit, which may change
// an entry's content, drop it (return nil) or add entries via extra.
func rewriteBundle(t *testing.T, in string, edit func(name string, b []byte) []byte, extra map[string][]byte) string {
	t.Helper()
	fh, err := os.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	zr, err := gzip.NewReader(fh)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	write := func(name string, b []byte) {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg})
		tw.Write(b)
	}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		if nb := edit(h.Name, b); nb != nil {
			write(h.Name, nb)
		}
	}
	names := make([]string, 0, len(extra))
	for name := range extra {
		names = append(names, name)
	}
	sort.Strings(names) // golden output needs a stable entry order
	for _, name := range names {
		write(name, extra[name])
	}
	tw.Close()
	zw.Close()
	out := filepath.Join(t.TempDir(), "edited.tar.gz")
	if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestBundleCreateVerifyExtract(t *testing.T) {
	ctx := context.Background()
	bundle, m := createTestBundle(t)
	if _, err := VerifyBundle(ctx, bundle); err != nil {
		t.Fatalf("VerifyBundle of a fresh bundle: %v", err)
	}
	got, entries, err := InspectBundle(ctx, bundle)
	if err != nil {
		t.Fatal(err)
	}
	if got.KubernetesVersion != "v1.37.2" || len(got.Files) != len(m.Files) {
		t.Errorf("inspect manifest = %+v", got)
	}
	var listing []string
	for _, e := range entries {
		listing = append(listing, fmt.Sprintf("%s %d %o", e.Path, e.Size, e.Mode))
	}
	golden(t, "bundle-entries", strings.Join(listing, "\n")+"\n")

	dir := filepath.Join(t.TempDir(), "extracted")
	d, err := ExtractBundle(ctx, bundle, dir)
	if err != nil {
		t.Fatalf("ExtractBundle: %v", err)
	}
	if err := d.VerifyAll(ctx); err != nil {
		t.Fatalf("extracted directory does not verify: %v", err)
	}
	for name, want := range testFiles {
		if b := artifactstest.ReadFile(t, d, name); !bytes.Equal(b, want) {
			t.Errorf("%s: %q, want %q", name, b, want)
		}
	}
	if st, err := os.Stat(filepath.Join(dir, "bin/kubelet")); err != nil || st.Mode().Perm() != 0o755 {
		t.Errorf("extracted kubelet mode: %v %v", st.Mode(), err)
	}
}

func TestBundleIsReproducible(t *testing.T) {
	d, err := OpenDir(writeDir(t))
	if err != nil {
		t.Fatal(err)
	}
	a, b := filepath.Join(t.TempDir(), "a.tar.gz"), filepath.Join(t.TempDir(), "b.tar.gz")
	for _, out := range []string{a, b} {
		if _, err := CreateBundle(context.Background(), d, out, BundleOptions{}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	ab, _ := os.ReadFile(a)
	bb, _ := os.ReadFile(b)
	if !bytes.Equal(ab, bb) {
		t.Error("two bundles of the same directory differ")
	}
}

func TestVerifyBundleFindsEveryProblem(t *testing.T) {
	ctx := context.Background()
	bundle, _ := createTestBundle(t)
	for _, tc := range []struct {
		name  string
		edit  func(name string, b []byte) []byte
		extra map[string][]byte
	}{
		{"missing file", func(n string, b []byte) []byte {
			if n == "bin/kubelet" {
				return nil
			}
			return b
		}, nil},
		{"corrupted file", func(n string, b []byte) []byte {
			if n == "images/pause.tar" {
				b = append([]byte(nil), b...)
				b[3] ^= 0x20
			}
			return b
		}, nil},
		{"missing corrupted and unexpected", func(n string, b []byte) []byte {
			switch n {
			case "bin/etcd":
				return nil
			case "bin/kube-apiserver":
				return []byte("replaced by something else entirely")
			}
			return b
		}, map[string][]byte{"bin/kubectl-evil": []byte("x"), "bin/kubelet": testFiles["kubelet"]}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := rewriteBundle(t, bundle, tc.edit, tc.extra)
			_, err := VerifyBundle(ctx, bad)
			if err == nil {
				t.Fatal("VerifyBundle accepted a broken bundle")
			}
			if !IsIntegrityError(err) {
				t.Errorf("IsIntegrityError(%v) = false", err)
			}
			golden(t, "bundle-verify-"+strings.ReplaceAll(tc.name, " ", "-"), scrub(err.Error(), filepath.Dir(bad)))

			// Extract refuses the same bundle and leaves no manifest behind.
			dir := t.TempDir()
			if _, err := ExtractBundle(ctx, bad, dir); err == nil {
				t.Fatal("ExtractBundle accepted a broken bundle")
			}
			if _, err := os.Stat(filepath.Join(dir, ManifestFile)); !os.IsNotExist(err) {
				t.Errorf("manifest written for a refused bundle: %v", err)
			}
			ents, _ := os.ReadDir(dir)
			if len(ents) != 0 {
				t.Errorf("refused bundle left %d entries in the target directory", len(ents))
			}
		})
	}
}

func TestVerifyBundleRejectsNonBundles(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	notGzip := filepath.Join(dir, "plain.txt")
	os.WriteFile(notGzip, []byte("hello"), 0o644)
	bundle, _ := createTestBundle(t)
	noManifestFirst := rewriteBundle(t, bundle, func(n string, b []byte) []byte {
		if n == ManifestFile {
			return nil
		}
		return b
	}, nil)
	truncated := filepath.Join(dir, "truncated.tar.gz")
	full, _ := os.ReadFile(bundle)
	os.WriteFile(truncated, full[:len(full)/2], 0o644)
	for _, tc := range []struct{ name, file, want string }{
		{"not gzip", notGzip, "not a gzip file"},
		{"manifest not first", noManifestFirst, `first entry is "bin/kube-apiserver", want manifest.yaml: not a kubewright bundle`},
		{"truncated", truncated, "unexpected EOF"},
		{"does not exist", filepath.Join(dir, "nope.tar.gz"), "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := VerifyBundle(ctx, tc.file)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("VerifyBundle = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestCreateBundleRefusesCorruptSource(t *testing.T) {
	root := writeDir(t)
	os.WriteFile(filepath.Join(root, "bin/etcd"), []byte("etcd binary v3.7.X\n"), 0o755) // same size
	d, err := OpenDir(root)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "b.tar.gz")
	_, err = CreateBundle(context.Background(), d, out, BundleOptions{})
	var ce *ChecksumError
	if !errors.As(err, &ce) || ce.Name != "etcd" {
		t.Fatalf("CreateBundle = %v, want a ChecksumError naming etcd", err)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Error("bundle written despite a corrupt source file")
	}
	if _, err := os.Stat(out + ".tmp"); !os.IsNotExist(err) {
		t.Error("temporary bundle left behind")
	}
}

// TestCreateBundleFromUpstream packs what a Remote downloads: the offline
// path for operators who can reach upstream from one machine only.
func TestCreateBundleFromUpstream(t *testing.T) {
	ctx := context.Background()
	s := newUpstreamServer(t)
	content := s.release(t)
	r := newTestRemote(t, s, t.TempDir())
	out := filepath.Join(t.TempDir(), "upstream.tar.gz")
	m, err := CreateBundle(ctx, r, out, BundleOptions{})
	if err != nil {
		t.Fatalf("CreateBundle: %v", err)
	}
	for _, f := range m.Files {
		if f.URL != "" || f.Member != "" || f.ChecksumURL != "" {
			t.Errorf("%s: bundle manifest keeps download fields: %+v", f.Name, f)
		}
	}
	d, err := ExtractBundle(ctx, out, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"kubelet", "etcdctl", "crictl"} {
		if b := artifactstest.ReadFile(t, d, name); !bytes.Equal(b, content[name]) {
			t.Errorf("%s differs after upstream -> bundle -> directory", name)
		}
	}
}
