package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubewright/kubewright/installer/artifacts"
	"github.com/kubewright/kubewright/installer/artifacts/artifactstest"
	"github.com/kubewright/kubewright/installer/inventory"
)

// downloadInventory is testdata/certs-inventory.yaml with
// spec.artifacts.source: download from mirror, as an operator writes it.
func downloadInventory(t *testing.T, version, mirror string) *inventory.Cluster {
	t.Helper()
	body, err := os.ReadFile("testdata/certs-inventory.yaml")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(body) + "  kubernetes:\n    version: " + version + "\n  artifacts:\n    source: download\n    url: " + mirror + "\n"
	path := filepath.Join(t.TempDir(), "inventory.yaml")
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	cl, err := inventory.Load(path)
	if err != nil {
		t.Fatalf("inventory: %v", err)
	}
	return cl
}

var downloadRelease = artifactstest.Release{KubernetesVersion: "v1.37.2", EtcdVersion: "v3.7.3", CrictlVersion: "v1.37.0",
	KubernetesBinaries: artifacts.KubernetesBinaries, EtcdBinaries: artifacts.EtcdBinaries}

// TestOpenDownloadArtifacts serves a mirror of the upstream releases on
// loopback (spec.artifacts.url) and checks what install relies on: every
// release file of the inventory's Kubernetes version, with the paired etcd
// and crictl, downloaded into the cluster's state directory and verified,
// nothing fetched twice, and a tampered file refused.
func TestOpenDownloadArtifacts(t *testing.T) {
	ctx := context.Background()
	srv := artifactstest.NewServer(t)
	content := srv.Publish(t, downloadRelease)
	cl := downloadInventory(t, "v1.37.2", srv.URL)
	state := filepath.Join(t.TempDir(), "clusters", cl.Metadata.Name)

	var log bytes.Buffer
	src, err := openDownloadArtifacts(cl, state, &log)
	if err != nil {
		t.Fatal(err)
	}
	if got := srv.Requests(); len(got) != 0 {
		t.Errorf("opening the source already fetched %v", got)
	}
	if err := src.VerifyAll(ctx); err != nil {
		t.Fatalf("VerifyAll: %v", err)
	}
	m := src.Manifest()
	if m.KubernetesVersion != "v1.37.2" || m.EtcdVersion != "v3.7.3" {
		t.Errorf("manifest versions %s / %s", m.KubernetesVersion, m.EtcdVersion)
	}
	files := 0
	for _, f := range m.Files {
		if !f.HasFile() {
			continue
		}
		files++
		if f.SHA256 != artifactstest.Sum(content[f.Name]) || f.Size != int64(len(content[f.Name])) {
			t.Errorf("%s: manifest sha256 %s size %d, not the verified download", f.Name, f.SHA256, f.Size)
		}
		if b := artifactstest.ReadFile(t, src, f.Name); !bytes.Equal(b, content[f.Name]) {
			t.Errorf("%s: read %d bytes, want the %d published", f.Name, len(b), len(content[f.Name]))
		}
		// One line per download; etcd's three binaries share one archive.
		if !strings.Contains(log.String(), "url="+f.URL+" ") {
			t.Errorf("no download line for %s (%s) in:\n%s", f.Name, f.URL, log.String())
		}
	}
	if want := len(artifacts.KubernetesBinaries) + len(artifacts.EtcdBinaries) + 1; files != want {
		t.Errorf("%d files, want %d (kubernetes, etcd and crictl)", files, want)
	}
	// The downloads live in the cluster's state directory.
	var cached int
	filepath.Walk(filepath.Join(state, downloadCacheName), func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			cached++
			if strings.HasSuffix(p, ".part") {
				t.Errorf("partial download left behind: %s", p)
			}
		}
		return nil
	})
	if cached == 0 {
		t.Errorf("nothing cached under %s", filepath.Join(state, downloadCacheName))
	}

	// The next install on the same state directory downloads nothing again:
	// only upstream's checksums, to compare the cache with.
	srv.ResetRequests()
	again, err := openDownloadArtifacts(cl, state, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := again.VerifyAll(ctx); err != nil {
		t.Fatalf("VerifyAll on a warm cache: %v", err)
	}
	for _, r := range srv.Requests() {
		if !strings.HasSuffix(r, ".sha256") && !strings.HasSuffix(r, "/SHA256SUMS") {
			t.Errorf("warm cache still fetched %s", r)
		}
	}
}

func TestOpenDownloadArtifactsRefusesTampered(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name, path, artifact string
		mismatches           int // files refused: every binary of a tampered archive
		body                 func(t *testing.T, content map[string][]byte) []byte
	}{
		{"binary", downloadRelease.KubernetesPath("kube-apiserver"), "kube-apiserver", 1, func(t *testing.T, c map[string][]byte) []byte {
			evil := append([]byte(nil), c["kube-apiserver"]...)
			copy(evil, "EVIL")
			return evil
		}},
		{"etcd archive", downloadRelease.EtcdArchivePath(), "etcd", len(artifacts.EtcdBinaries), func(t *testing.T, c map[string][]byte) []byte {
			return artifactstest.TarGz(t, map[string][]byte{"etcd-v3.7.3-linux-amd64/etcd": []byte("backdoored etcd")})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := artifactstest.NewServer(t)
			content := srv.Publish(t, downloadRelease)
			srv.Tamper(tc.path, tc.body(t, content))
			cl := downloadInventory(t, "v1.37.2", srv.URL)
			state := t.TempDir()
			src, err := openDownloadArtifacts(cl, state, nil)
			if err != nil {
				t.Fatal(err)
			}
			err = src.VerifyAll(ctx)
			if !artifacts.IsIntegrityError(err) {
				t.Fatalf("VerifyAll = %v, want a checksum error", err)
			}
			if want := tc.artifact + " (" + srv.URL + tc.path + "): sha256 mismatch"; !strings.Contains(err.Error(), want) {
				t.Errorf("error does not name the file and where it came from (%q):\n%v", want, err)
			}
			if n := strings.Count(err.Error(), "sha256 mismatch"); n != tc.mismatches {
				t.Errorf("%d mismatches reported, want %d (only what the tampered file holds):\n%v", n, tc.mismatches, err)
			}
			if _, err := src.Open(ctx, tc.artifact); err == nil {
				t.Errorf("the tampered %s can still be opened", tc.artifact)
			}
			// Nothing of the tampered file is kept for a later run to trust.
			filepath.Walk(filepath.Join(state, downloadCacheName), func(p string, fi os.FileInfo, err error) error {
				if err == nil && !fi.IsDir() && strings.Contains(filepath.Base(p), tc.artifact) {
					t.Errorf("tampered %s left in the cache at %s", tc.artifact, p)
				}
				return nil
			})
		})
	}
}

func TestOpenDownloadArtifactsBadInput(t *testing.T) {
	cl := downloadInventory(t, "v1.35.1", "http://127.0.0.1:1")
	_, err := openDownloadArtifacts(cl, t.TempDir(), nil)
	if !isBadInput(err) {
		t.Fatalf("err = %v, want bad input", err)
	}
	for _, want := range []string{"spec.artifacts.source download", "Kubernetes v1.35", "v1.36, v1.37", "source: dir or bundle"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}
