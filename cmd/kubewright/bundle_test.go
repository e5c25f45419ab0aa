package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubewright/kubewright/installer/artifacts"
	goldenfile "github.com/kubewright/kubewright/internal/golden"
)

// bundleGolden compares got with testdata/bundle-NAME.golden (rewritten with -update).
func bundleGolden(t *testing.T, name, got string) {
	t.Helper()
	goldenfile.AssertString(t, filepath.Join("testdata", "bundle-"+name+".golden"), got)
}

// bundleCLI runs kubewright with args: stdout, stderr, error (as main sees it).
func bundleCLI(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	root := newRootCmd()
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), errb.String(), err
}

func hexSum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// artifactsDir writes a small artifacts directory like hack/build-artifacts.sh's.
func artifactsDir(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	m := &artifacts.Manifest{APIVersion: artifacts.APIVersion, Kind: artifacts.ManifestKind,
		KubernetesVersion: "v1.37.2", EtcdVersion: "v3.7.3", Arch: "amd64"}
	for _, f := range []struct {
		name, path, comp, ver string
		kind                  artifacts.Kind
		body                  string
	}{
		{"kube-apiserver", "bin/kube-apiserver", "kubernetes", "v1.37.2", artifacts.KindBinary, strings.Repeat("apiserver", 300)},
		{"kubelet", "bin/kubelet", "kubernetes", "v1.37.2", artifacts.KindBinary, strings.Repeat("kubelet", 200)},
		{"etcd", "bin/etcd", "etcd", "v3.7.3", artifacts.KindBinary, "etcd"},
		{"pause-image", "images/pause.tar", "pause", "3.10", artifacts.KindImage, "pause tarball"},
	} {
		p := filepath.Join(root, f.path)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(f.body), 0o755); err != nil {
			t.Fatal(err)
		}
		m.Files = append(m.Files, artifacts.File{Name: f.name, Path: f.path, SHA256: hexSum([]byte(f.body)),
			Size: int64(len(f.body)), Kind: f.kind, Component: f.comp, Version: f.ver})
	}
	m.Files = append(m.Files, artifacts.File{Name: "runc", Kind: artifacts.KindOSPackage, Component: "runc", Package: "runc"})
	m.Images = []artifacts.Image{{Name: "registry.k8s.io/pause:3.10", File: "pause-image", Digest: "sha256:" + hexSum([]byte("config"))}}
	data, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, artifacts.ManifestFile), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

func TestBundleCreateVerifyInspect(t *testing.T) {
	dir := artifactsDir(t)
	out := filepath.Join(t.TempDir(), "b.tar.gz")

	stdout, _, err := bundleCLI(t, "bundle", "create", out, "--from", dir)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	bundleGolden(t, "create", strings.ReplaceAll(stdout, filepath.Dir(out), "TMP"))

	stdout, _, err = bundleCLI(t, "bundle", "verify", out)
	if err != nil {
		t.Fatalf("verify bundle: %v", err)
	}
	bundleGolden(t, "verify-ok", strings.ReplaceAll(stdout, filepath.Dir(out), "TMP"))

	stdout, _, err = bundleCLI(t, "bundle", "verify", dir)
	if err != nil || !strings.HasSuffix(stdout, ": OK, 4 files verified (kubernetes v1.37.2, etcd v3.7.3)\n") {
		t.Fatalf("verify directory: %q, %v", stdout, err)
	}

	stdout, _, err = bundleCLI(t, "bundle", "inspect", out)
	if err != nil {
		t.Fatalf("inspect: %v", err)
	}
	bundleGolden(t, "inspect", strings.ReplaceAll(stdout, filepath.Dir(out), "TMP"))

	stdout, _, err = bundleCLI(t, "bundle", "inspect", out, "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var got struct{ Manifest artifacts.Manifest }
	if err := json.Unmarshal([]byte(stdout), &got); err != nil || got.Manifest.KubernetesVersion != "v1.37.2" || len(got.Manifest.Files) != 5 {
		t.Errorf("inspect -o json: %v\n%s", err, stdout)
	}

	// Inspect a directory with a file gone: it says what is absent.
	os.Remove(filepath.Join(dir, "bin/etcd"))
	stdout, _, err = bundleCLI(t, "bundle", "inspect", dir)
	if err != nil || !strings.HasSuffix(stdout, "NOT PRESENT (listed in the manifest): etcd\n") {
		t.Errorf("inspect of a directory missing etcd: %v\n%s", err, stdout)
	}
}

func TestBundleVerifyReportsBadFiles(t *testing.T) {
	dir := artifactsDir(t)
	// Corrupt kubelet (same size) and drop etcd, then pack by hand: create
	// itself refuses a corrupt source.
	kubelet := filepath.Join(dir, "bin/kubelet")
	b, _ := os.ReadFile(kubelet)
	b[10] = 'X'
	os.WriteFile(kubelet, b, 0o755)
	os.Remove(filepath.Join(dir, "bin/etcd"))

	out := filepath.Join(t.TempDir(), "bad.tar.gz")
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, p := range []string{"manifest.yaml", "bin/kube-apiserver", "bin/kubelet", "images/pause.tar"} {
		data, err := os.ReadFile(filepath.Join(dir, p))
		if err != nil {
			t.Fatal(err)
		}
		tw.WriteHeader(&tar.Header{Name: p, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg})
		tw.Write(data)
	}
	tw.Close()
	zw.Close()
	os.WriteFile(out, buf.Bytes(), 0o644)

	for _, tc := range []struct{ name, path, scrub string }{
		{"bundle", out, filepath.Dir(out)},
		{"directory", dir, dir},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := bundleCLI(t, "bundle", "verify", tc.path)
			if err == nil {
				t.Fatal("verify passed")
			}
			if code := exitCode(err); code != exitFailed {
				t.Errorf("exit code %d, want %d", code, exitFailed)
			}
			bundleGolden(t, "verify-bad-"+tc.name, strings.ReplaceAll(err.Error(), tc.scrub, "TMP"))
		})
	}

	// create refuses the corrupt directory and names the file.
	_, _, err := bundleCLI(t, "bundle", "create", filepath.Join(t.TempDir(), "x.tar.gz"), "--from", dir)
	if err == nil || !strings.Contains(err.Error(), "kubelet (bin/kubelet): sha256 mismatch") && !strings.Contains(err.Error(), "etcd: missing") {
		t.Errorf("create from a corrupt directory: %v", err)
	}
}

func TestBundleBadInput(t *testing.T) {
	dir := artifactsDir(t)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"create without source", []string{"bundle", "create", "x.tar.gz"}, "give exactly one of --from DIR and --upstream"},
		{"create with both sources", []string{"bundle", "create", "x.tar.gz", "--from", dir, "--upstream"}, "give exactly one of"},
		{"create without file", []string{"bundle", "create", "--from", dir}, "want the bundle file to write, got 0 arguments"},
		{"create bad level", []string{"bundle", "create", "x", "--from", dir, "--gzip-level", "12"}, "--gzip-level 12"},
		{"create from non-directory", []string{"bundle", "create", "x", "--from", filepath.Join(dir, "nope")}, "no such file"},
		{"create bad upstream version", []string{"bundle", "create", "x", "--upstream", "--kubernetes-version", "latest"}, `kubernetesVersion "latest"`},
		{"verify missing path", []string{"bundle", "verify", filepath.Join(dir, "nope.tar.gz")}, "no such file"},
		{"inspect two args", []string{"bundle", "inspect", "a", "b"}, "got 2 arguments"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := bundleCLI(t, tc.args...)
			var bad *badInputError
			if !errors.As(err, &bad) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want bad input containing %q", err, tc.want)
			}
		})
	}
}

// TestBundleCreateUpstream downloads from a local stand-in for dl.k8s.io and
// GitHub releases, including a tampered binary that must be refused.
func TestBundleCreateUpstream(t *testing.T) {
	files := map[string][]byte{}
	for _, b := range artifacts.KubernetesBinaries {
		body := []byte(b + " v1.37.2")
		files["/k8s/v1.37.2/bin/linux/amd64/"+b] = body
		files["/k8s/v1.37.2/bin/linux/amd64/"+b+".sha256"] = []byte(hexSum(body))
	}
	var tgz bytes.Buffer
	zw := gzip.NewWriter(&tgz)
	tw := tar.NewWriter(zw)
	for _, b := range artifacts.EtcdBinaries {
		body := []byte(b + " 3.7.3")
		tw.WriteHeader(&tar.Header{Name: "etcd-v3.7.3-linux-amd64/" + b, Mode: 0o755, Size: int64(len(body)), Typeflag: tar.TypeReg})
		tw.Write(body)
	}
	tw.Close()
	zw.Close()
	files["/etcd/v3.7.3/etcd-v3.7.3-linux-amd64.tar.gz"] = tgz.Bytes()
	files["/etcd/v3.7.3/SHA256SUMS"] = []byte(hexSum(tgz.Bytes()) + "  etcd-v3.7.3-linux-amd64.tar.gz\n")
	tamper := ""
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		if r.URL.Path == tamper {
			b = append([]byte("tampered "), b...)
		}
		w.Write(b)
	}))
	defer srv.Close()

	args := func(out string) []string {
		return []string{"bundle", "create", out, "--upstream", "--crictl-version", "", "--cache-dir", t.TempDir(),
			"--kubernetes-url", srv.URL + "/k8s", "--etcd-url", srv.URL + "/etcd"}
	}
	out := filepath.Join(t.TempDir(), "up.tar.gz")
	stdout, _, err := bundleCLI(t, args(out)...)
	if err != nil {
		t.Fatalf("create --upstream: %v", err)
	}
	if want := fmt.Sprintf("bundle %s: 9 files,", out); !strings.HasPrefix(stdout, want) {
		t.Errorf("output %q, want prefix %q", stdout, want)
	}
	if _, _, err := bundleCLI(t, "bundle", "verify", out); err != nil {
		t.Errorf("verify the upstream bundle: %v", err)
	}

	tamper = "/k8s/v1.37.2/bin/linux/amd64/kube-scheduler"
	bad := filepath.Join(t.TempDir(), "bad.tar.gz")
	_, _, err = bundleCLI(t, args(bad)...)
	if err == nil || !strings.Contains(err.Error(), "kube-scheduler ("+srv.URL+tamper+"): sha256 mismatch") {
		t.Fatalf("create with a tampered kube-scheduler: %v", err)
	}
	if _, err := os.Stat(bad); !os.IsNotExist(err) {
		t.Error("bundle written despite a tampered download")
	}
}
