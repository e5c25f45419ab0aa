package artifacts

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubewright/kubewright/installer/artifacts/artifactstest"
)

// upstreamServer is artifactstest's stand-in for dl.k8s.io and the GitHub
// release downloads, publishing testRelease.
type upstreamServer struct{ *artifactstest.Server }

func newUpstreamServer(t *testing.T) *upstreamServer {
	return &upstreamServer{artifactstest.NewServer(t)}
}

var testRelease = artifactstest.Release{KubernetesVersion: "v1.37.2", EtcdVersion: "v3.7.3", CrictlVersion: "v1.37.0",
	KubernetesBinaries: KubernetesBinaries, EtcdBinaries: EtcdBinaries}

// release publishes testRelease and returns the binaries' contents.
func (s *upstreamServer) release(t *testing.T) map[string][]byte { return s.Publish(t, testRelease) }

func (s *upstreamServer) log() []string { return s.Requests() }

func (s *upstreamServer) resetLog() { s.ResetRequests() }

func (s *upstreamServer) upstream() Upstream {
	k8s, etcd, crictl := s.URLs()
	return Upstream{KubernetesVersion: "v1.37.2", EtcdVersion: "v3.7.3", CrictlVersion: "v1.37.0",
		KubernetesURL: k8s, EtcdURL: etcd, CrictlURL: crictl}
}

func newTestRemote(t *testing.T, s *upstreamServer, cache string) *Remote {
	m, err := s.upstream().Manifest()
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewRemote(m, RemoteOptions{CacheDir: cache, Client: s.Client(), RetryDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRemoteDownloadsVerifiesAndCaches(t *testing.T) {
	s := newUpstreamServer(t)
	content := s.release(t)
	cache := t.TempDir()
	r := newTestRemote(t, s, cache)
	ctx := context.Background()
	if err := r.VerifyAll(ctx); err != nil {
		t.Fatalf("VerifyAll: %v", err)
	}
	for name, want := range content {
		if got := artifactstest.ReadFile(t, r, name); !bytes.Equal(got, want) {
			t.Errorf("%s: got %d bytes, want %d", name, len(got), len(want))
		}
	}
	m := r.Manifest()
	for _, f := range m.Files {
		if f.HasFile() && (f.SHA256 != sum(content[f.Name]) || f.Size != int64(len(content[f.Name]))) {
			t.Errorf("manifest %s: sha256 %s size %d not filled in from the download", f.Name, f.SHA256, f.Size)
		}
	}
	// The etcd archive is downloaded once for its three members.
	archiveGets := 0
	for _, l := range s.log() {
		if strings.HasSuffix(l, ".tar.gz") && strings.Contains(l, "etcd") {
			archiveGets++
		}
	}
	if archiveGets != 1 {
		t.Errorf("etcd archive fetched %d times, want 1", archiveGets)
	}

	// A second source on the same cache downloads no file again, only checksums.
	s.resetLog()
	r2 := newTestRemote(t, s, cache)
	if err := r2.VerifyAll(ctx); err != nil {
		t.Fatal(err)
	}
	for _, l := range s.log() {
		if !strings.HasSuffix(l, ".sha256") && !strings.HasSuffix(l, "SHA256SUMS") {
			t.Errorf("warm cache still fetched %s", l)
		}
	}
}

func TestRemoteRefusesTamperedFile(t *testing.T) {
	s := newUpstreamServer(t)
	content := s.release(t)
	evil := append([]byte(nil), content["kubelet"]...)
	copy(evil, "EVIL")
	s.Tamper("/kubernetes/v1.37.2/bin/linux/amd64/kubelet", evil)
	cache := t.TempDir()
	r := newTestRemote(t, s, cache)
	ctx := context.Background()

	_, err := r.Open(ctx, "kubelet")
	var ce *ChecksumError
	if !errors.As(err, &ce) {
		t.Fatalf("Open(kubelet) = %v, want a ChecksumError", err)
	}
	golden(t, "remote-tampered", scrub(err.Error(), s.URL)+"\n")
	// Refused means nothing usable is left in the cache, not even a .part.
	filepath.Walk(cache, func(p string, fi os.FileInfo, _ error) error {
		if fi != nil && !fi.IsDir() && strings.Contains(p, "kubelet") {
			t.Errorf("tampered kubelet left in the cache at %s", p)
		}
		return nil
	})
	// Other files still verify; VerifyAll names only the bad one.
	err = r.VerifyAll(ctx)
	if err == nil || strings.Count(err.Error(), "sha256 mismatch") != 1 || !strings.Contains(err.Error(), "kubelet") {
		t.Errorf("VerifyAll = %v, want exactly one mismatch naming kubelet", err)
	}
	// It downloaded twice before refusing: a stale .part gets one fresh try.
	gets := 0
	for _, l := range s.log() {
		if l == "GET /kubernetes/v1.37.2/bin/linux/amd64/kubelet" {
			gets++
		}
	}
	if gets != 4 { // 2 for Open, 2 for VerifyAll
		t.Errorf("kubelet fetched %d times, want 4 (two per attempt to use it)", gets)
	}
}

func TestRemoteRefusesTamperedArchive(t *testing.T) {
	s := newUpstreamServer(t)
	s.release(t)
	p := "/etcd/v3.7.3/etcd-v3.7.3-linux-amd64.tar.gz"
	s.Tamper(p, artifactstest.TarGz(t, map[string][]byte{"etcd-v3.7.3-linux-amd64/etcd": []byte("backdoored etcd")}))
	r := newTestRemote(t, s, t.TempDir())
	_, err := r.Open(context.Background(), "etcd")
	if err == nil || !strings.Contains(err.Error(), "etcd ("+s.URL+p+"): sha256 mismatch") {
		t.Fatalf("Open(etcd) = %v, want a mismatch naming etcd and the archive URL", err)
	}
}

func TestRemoteRefusesPinDifferentFromUpstream(t *testing.T) {
	s := newUpstreamServer(t)
	s.release(t)
	m, _ := s.upstream().Manifest()
	for i := range m.Files {
		if m.Files[i].Name == "kubectl" {
			m.Files[i].SHA256 = sum([]byte("the kubectl we audited"))
		}
	}
	r, err := NewRemote(m, RemoteOptions{CacheDir: t.TempDir(), Client: s.Client()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Open(context.Background(), "kubectl")
	if err == nil || !strings.Contains(err.Error(), "upstream checksum differs from the manifest's pin") {
		t.Fatalf("Open(kubectl) = %v", err)
	}
}

func TestRemoteResumesPartialDownload(t *testing.T) {
	const name = "kube-apiserver"
	p := "/kubernetes/v1.37.2/bin/linux/amd64/" + name
	for _, tc := range []struct {
		name      string
		setup     func(s *upstreamServer, r *Remote, content []byte)
		wantGets  []string
		wantBytes int // bytes of the file body sent by the server
	}{
		{
			name: "part file from an earlier run",
			setup: func(s *upstreamServer, r *Remote, content []byte) {
				part := r.cachePath(s.URL+p) + ".part"
				os.MkdirAll(filepath.Dir(part), 0o755)
				os.WriteFile(part, content[:5000], 0o644)
			},
			wantGets: []string{"GET " + p + " bytes=5000-"},
		},
		{
			name:     "connection dropped mid-body",
			setup:    func(s *upstreamServer, r *Remote, content []byte) { s.CutAfter(p, 7000) },
			wantGets: []string{"GET " + p, "GET " + p + " bytes=7000-"},
		},
		{
			name: "server ignores Range",
			setup: func(s *upstreamServer, r *Remote, content []byte) {
				s.IgnoreRange()
				part := r.cachePath(s.URL+p) + ".part"
				os.MkdirAll(filepath.Dir(part), 0o755)
				os.WriteFile(part, content[:5000], 0o644)
			},
			wantGets: []string{"GET " + p + " bytes=5000-"},
		},
		{
			name: "stale part from another version",
			setup: func(s *upstreamServer, r *Remote, content []byte) {
				part := r.cachePath(s.URL+p) + ".part"
				os.MkdirAll(filepath.Dir(part), 0o755)
				os.WriteFile(part, bytes.Repeat([]byte("x"), 5000), 0o644)
			},
			// Resumed bytes do not match: one fresh download from the start.
			wantGets: []string{"GET " + p + " bytes=5000-", "GET " + p},
		},
		{
			name: "part already complete",
			setup: func(s *upstreamServer, r *Remote, content []byte) {
				part := r.cachePath(s.URL+p) + ".part"
				os.MkdirAll(filepath.Dir(part), 0o755)
				os.WriteFile(part, content, 0o644)
			},
			wantGets: []string{"GET " + p + " bytes=46000-"}, // 2000 x "kube-apiserver v1.37.2 "
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newUpstreamServer(t)
			content := s.release(t)[name]
			r := newTestRemote(t, s, t.TempDir())
			tc.setup(s, r, content)
			if got := artifactstest.ReadFile(t, r, name); !bytes.Equal(got, content) {
				t.Fatalf("content differs after resume: %d bytes, want %d", len(got), len(content))
			}
			var gets []string
			for _, l := range s.log() {
				if strings.HasPrefix(l, "GET "+p) && !strings.Contains(l, ".sha256") {
					gets = append(gets, l)
				}
			}
			if strings.Join(gets, "\n") != strings.Join(tc.wantGets, "\n") {
				t.Errorf("requests:\n%s\nwant:\n%s", strings.Join(gets, "\n"), strings.Join(tc.wantGets, "\n"))
			}
			if _, err := os.Stat(r.cachePath(s.URL+p) + ".part"); !os.IsNotExist(err) {
				t.Errorf(".part left behind after success: %v", err)
			}
		})
	}
}

func TestRemoteRetriesOnlyTransientErrors(t *testing.T) {
	const p = "/kubernetes/v1.37.2/bin/linux/amd64/kube-proxy"
	for _, tc := range []struct {
		name     string
		status   int
		wantGets int
	}{
		{"not found is final", http.StatusNotFound, 1},
		{"unavailable is retried", http.StatusServiceUnavailable, 2},
		{"rate limit is retried", http.StatusTooManyRequests, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newUpstreamServer(t)
			s.release(t)
			s.Fail(p, tc.status)
			m, _ := s.upstream().Manifest()
			const delay = 150 * time.Millisecond
			r, err := NewRemote(m, RemoteOptions{CacheDir: t.TempDir(), Client: s.Client(), Attempts: 2, RetryDelay: delay})
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			_, err = r.Open(context.Background(), "kube-proxy")
			if err == nil {
				t.Fatal("Open succeeded against a failing server")
			}
			// RetryDelay is waited between attempts, and only when retrying.
			if took := time.Since(start); (tc.wantGets > 1) != (took >= delay) {
				t.Errorf("took %v with RetryDelay %v and %d attempts", took, delay, tc.wantGets)
			}
			golden(t, "remote-status-"+fmt.Sprint(tc.status), scrub(err.Error(), s.URL)+"\n")
			gets := 0
			for _, l := range s.log() {
				if l == "GET "+p {
					gets++
				}
			}
			if gets != tc.wantGets {
				t.Errorf("tried %d times, want %d (Attempts=2)", gets, tc.wantGets)
			}
		})
	}
}

func TestParseChecksum(t *testing.T) {
	h := sum([]byte("x"))
	for _, tc := range []struct {
		name, body, file, want, err string
	}{
		{"bare", h + "\n", "kubelet", h, ""},
		{"bare uppercase", strings.ToUpper(h), "kubelet", h, ""},
		{"single line with name", h + "  kubelet", "kubelet", h, ""},
		{"list", sum([]byte("y")) + "  a.tar.gz\n" + h + " *b.tar.gz\n", "b.tar.gz", h, ""},
		{"list without file", sum([]byte("y")) + "  a.tar.gz\n", "b.tar.gz", "", "no sha256 for b.tar.gz"},
		{"garbage", "<html>not found</html>", "kubelet", "", "no sha256 for kubelet"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseChecksum(tc.body, tc.file)
			if got != tc.want || (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
				t.Errorf("parseChecksum = %q, %v; want %q, %q", got, err, tc.want, tc.err)
			}
		})
	}
}

func TestUpstreamManifestURLs(t *testing.T) {
	m, err := Upstream{KubernetesVersion: "v1.37.2", EtcdVersion: "v3.7.3", CrictlVersion: "v1.37.0"}.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	data, _ := m.Marshal()
	golden(t, "upstream-manifest.yaml", string(data))
}
