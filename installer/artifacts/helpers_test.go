package artifacts

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	goldenfile "github.com/kubewright/kubewright/internal/golden"
)

// golden compares got with testdata/NAME.golden (rewritten with -update).
func golden(t *testing.T, name, got string) {
	t.Helper()
	goldenfile.AssertString(t, filepath.Join("testdata", name+".golden"), got)
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// testFiles are the contents of a small artifacts set.
var testFiles = map[string][]byte{
	"kube-apiserver": []byte("apiserver binary v1.37.2\n"),
	"kubelet":        []byte("kubelet binary v1.37.2\n"),
	"etcd":           []byte("etcd binary v3.7.3\n"),
	"pause-image":    []byte("pause image tarball\n"),
}

func testManifest() *Manifest {
	m := &Manifest{APIVersion: APIVersion, Kind: ManifestKind, KubernetesVersion: "v1.37.2", EtcdVersion: "v3.7.3", Arch: "amd64"}
	add := func(name, p string, kind Kind, comp, ver string) {
		b := testFiles[name]
		m.Files = append(m.Files, File{Name: name, Path: p, SHA256: sum(b), Size: int64(len(b)), Kind: kind, Component: comp, Version: ver})
	}
	add("kube-apiserver", "bin/kube-apiserver", KindBinary, "kubernetes", "v1.37.2")
	add("kubelet", "bin/kubelet", KindBinary, "kubernetes", "v1.37.2")
	add("etcd", "bin/etcd", KindBinary, "etcd", "v3.7.3")
	add("pause-image", "images/pause.tar", KindImage, "pause", "3.10")
	m.Files = append(m.Files, File{Name: "containerd", Kind: KindOSPackage, Component: "containerd", Package: "containerd"})
	m.Images = []Image{{Name: "registry.k8s.io/pause:3.10", File: "pause-image", Digest: "sha256:" + sum([]byte("cfg"))}}
	return m
}

// writeDir writes a complete artifacts directory and returns its root.
func writeDir(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	m := testManifest()
	for _, f := range m.Files {
		if !f.HasFile() {
			continue
		}
		p := filepath.Join(root, f.Path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, testFiles[f.Name], 0o755); err != nil {
			t.Fatal(err)
		}
	}
	data, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, ManifestFile), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

// scrub replaces temporary paths so error messages can be golden.
func scrub(s string, dirs ...string) string {
	for _, d := range dirs {
		s = strings.ReplaceAll(s, d, "TMP")
	}
	return s
}
