package steps

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubewright/kubewright/installer/artifacts"
	"github.com/kubewright/kubewright/installer/engine"
)

// artifactsDir writes fake executables and a manifest pinning their sha256.
func artifactsDir(t *testing.T, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	m := &artifacts.Manifest{APIVersion: artifacts.APIVersion, Kind: artifacts.ManifestKind, KubernetesVersion: "v1.37.2", EtcdVersion: "v3.7.3"}
	for _, n := range names {
		content := []byte("#!/bin/sh\necho " + n + "\n")
		if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "bin", n), content, 0o755); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(content)
		m.Files = append(m.Files, artifacts.File{Name: n, Path: "bin/" + n, SHA256: hex.EncodeToString(sum[:]), Size: int64(len(content)), Kind: artifacts.KindBinary, Component: "test", Version: "v1"})
	}
	data, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, artifacts.ManifestFile), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestBinariesByRoleAndSkipUnchanged(t *testing.T) {
	f := newCPFixture(t, cpInventory)
	dir := artifactsDir(t, "etcd", "etcdctl", "etcdutl", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kubelet", "kube-proxy")
	src, err := artifacts.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	tg, _, root := f.target(t, "m1")
	tg.Shared = engine.NewSharedData()
	tg.Shared.Set(SharedArtifacts, artifacts.Source(src))
	plan := converge(t, Binaries{}, tg)
	var got []string
	for _, c := range plan {
		got = append(got, filepath.Base(c.Object))
	}
	if strings.Join(got, ",") != "etcd,etcdctl,etcdutl,kube-apiserver,kube-controller-manager,kube-scheduler,kubectl" {
		t.Fatalf("master binaries = %v", got)
	}
	st, err := os.Stat(filepath.Join(root, "usr/local/bin/kube-apiserver"))
	if err != nil || st.Mode().Perm() != 0o755 {
		t.Fatalf("kube-apiserver not installed executable: %v", err)
	}
	// A binary changed on the host (or a different version) is replaced.
	if err := os.WriteFile(filepath.Join(root, "usr/local/bin/etcd"), []byte("old"), 0o755); err != nil {
		t.Fatal(err)
	}
	plan, err = Binaries{}.Plan(context.Background(), tg)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan) != 1 || plan[0].Object != "/usr/local/bin/etcd" || !strings.Contains(plan[0].Detail, "sha256") {
		t.Fatalf("plan after tampering = %v", plan)
	}

	// A corrupted artifact is refused and never replaces the binary on the host.
	if err := os.WriteFile(filepath.Join(dir, "bin", "etcd"), []byte("tampered"), 0o755); err != nil {
		t.Fatal(err)
	}
	err = Binaries{}.Apply(context.Background(), tg, plan)
	if err == nil || !strings.Contains(err.Error(), "etcd") {
		t.Fatalf("corrupted artifact: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "usr/local/bin/etcd")); string(b) != "old" {
		t.Fatalf("a corrupted artifact replaced the host's binary: %q", b)
	}
}

func TestBinariesNeedsArtifacts(t *testing.T) {
	f := newCPFixture(t, cpInventory)
	tg, _, _ := f.target(t, "m1")
	if _, err := (Binaries{}).Plan(context.Background(), tg); err == nil || !strings.Contains(err.Error(), "no artifacts source") {
		t.Fatalf("err = %v", err)
	}
	dir := artifactsDir(t, "etcd")
	src, err := artifacts.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	tg.Shared = engine.NewSharedData()
	tg.Shared.Set(SharedArtifacts, artifacts.Source(src))
	if _, err := (Binaries{}).Plan(context.Background(), tg); err == nil || !strings.Contains(err.Error(), `no binary "etcdctl"`) {
		t.Fatalf("err = %v", err)
	}
}
