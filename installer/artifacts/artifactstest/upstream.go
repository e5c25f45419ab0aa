// Package artifactstest serves upstream-style release downloads on loopback,
// for tests of anything that downloads artifacts: bare Kubernetes binaries
// with NAME.sha256 files (as dl.k8s.io), and etcd and crictl archives with
// their checksum files (as their GitHub releases). It can tamper with a file
// while its checksum still describes the original, drop a connection
// mid-body, ignore Range requests and answer error statuses.
//
// It does not import package artifacts, so that package's own tests can use
// it; callers pass the binary lists (artifacts.KubernetesBinaries, ...).
package artifactstest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
)

// Path prefixes of the three upstreams on the server. They are the layout of
// a mirror (spec.artifacts.url) too: MIRROR/kubernetes, MIRROR/etcd and
// MIRROR/cri-tools, each laid out like its upstream.
const (
	KubernetesPrefix = "/kubernetes"
	EtcdPrefix       = "/etcd"
	CrictlPrefix     = "/cri-tools"
)

// Server is an HTTP server on 127.0.0.1 laid out like upstream's release
// downloads. Configure it before the code under test makes requests.
type Server struct {
	*httptest.Server
	mu       sync.Mutex
	files    map[string][]byte // URL path -> content
	tampered map[string][]byte // served instead of files[path]; checksums still describe files[path]
	noRange  bool              // ignore Range headers (answer 200 with everything)
	cutAfter map[string]int    // close the connection after N bytes, once per path
	status   map[string]int    // answer this status instead of the file
	requests []string          // "GET /path [Range]"
}

// NewServer starts an empty server, closed in t.Cleanup.
func NewServer(t testing.TB) *Server {
	s := &Server{files: map[string][]byte{}, tampered: map[string][]byte{}, cutAfter: map[string]int{}, status: map[string]int{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

// Put serves body at path.
func (s *Server) Put(path string, body []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files[path] = body
}

// Tamper serves body at path instead of what Put (or Publish) put there,
// leaving the published checksums describing the original.
func (s *Server) Tamper(path string, body []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tampered[path] = body
}

// CutAfter drops the connection after n body bytes, on the next request
// for path only.
func (s *Server) CutAfter(path string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cutAfter[path] = n
}

// IgnoreRange makes the server answer every request with the whole file, as
// servers without Range support do.
func (s *Server) IgnoreRange() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.noRange = true
}

// Fail answers every request for path with status.
func (s *Server) Fail(path string, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status[path] = status
}

// Requests lists the requests served so far: "GET /path" with the Range
// header's value appended when there was one.
func (s *Server) Requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.requests...)
}

// ResetRequests forgets the requests served so far.
func (s *Server) ResetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = nil
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests = append(s.requests, strings.TrimSpace("GET "+r.URL.Path+" "+r.Header.Get("Range")))
	body, ok := s.files[r.URL.Path]
	if tb, t := s.tampered[r.URL.Path]; t {
		body = tb
	}
	cut, doCut := s.cutAfter[r.URL.Path]
	delete(s.cutAfter, r.URL.Path)
	noRange := s.noRange
	status := s.status[r.URL.Path]
	s.mu.Unlock()
	if status != 0 {
		http.Error(w, http.StatusText(status), status)
		return
	}
	if !ok {
		http.NotFound(w, r)
		return
	}
	start := 0
	if rg := r.Header.Get("Range"); rg != "" && !noRange {
		fmt.Sscanf(rg, "bytes=%d-", &start)
		if start >= len(body) {
			w.Header().Set("Content-Range", fmt.Sprintf("bytes */%d", len(body)))
			w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
			return
		}
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, len(body)-1, len(body)))
		w.Header().Set("Content-Length", fmt.Sprint(len(body)-start))
		w.WriteHeader(http.StatusPartialContent)
	} else {
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	}
	rest := body[start:]
	if doCut && cut < len(rest) {
		w.Write(rest[:cut])
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler) // drop the connection mid-body
	}
	w.Write(rest)
}

// Release is one set of upstream releases to publish.
type Release struct {
	KubernetesVersion string
	EtcdVersion       string
	CrictlVersion     string // "" publishes no crictl
	Arch              string // default amd64
	// The files of each release, e.g. artifacts.KubernetesBinaries.
	KubernetesBinaries []string
	EtcdBinaries       []string
}

// URLs are the base URLs of the three upstreams on this server, for
// artifacts.Upstream's KubernetesURL, EtcdURL and CrictlURL.
func (s *Server) URLs() (kubernetes, etcd, crictl string) {
	return s.URL + KubernetesPrefix, s.URL + EtcdPrefix, s.URL + CrictlPrefix
}

// KubernetesPath is the URL path of one Kubernetes binary of r.
func (r Release) KubernetesPath(name string) string {
	return fmt.Sprintf("%s/%s/bin/linux/%s/%s", KubernetesPrefix, r.KubernetesVersion, r.arch(), name)
}

// EtcdArchivePath is the URL path of r's etcd archive.
func (r Release) EtcdArchivePath() string {
	return fmt.Sprintf("%s/%s/%s.tar.gz", EtcdPrefix, r.EtcdVersion, r.etcdDir())
}

// CrictlArchivePath is the URL path of r's crictl archive.
func (r Release) CrictlArchivePath() string {
	return fmt.Sprintf("%s/%s/crictl-%s-linux-%s.tar.gz", CrictlPrefix, r.CrictlVersion, r.CrictlVersion, r.arch())
}

func (r Release) arch() string {
	if r.Arch == "" {
		return "amd64"
	}
	return r.Arch
}

func (r Release) etcdDir() string { return fmt.Sprintf("etcd-%s-linux-%s", r.EtcdVersion, r.arch()) }

// Publish serves r with upstream's checksum files and returns every binary's
// content by file name. Kubernetes binaries are tens of kilobytes so that
// cut-off and resume tests split real data.
func (s *Server) Publish(t testing.TB, r Release) map[string][]byte {
	t.Helper()
	content := map[string][]byte{}
	for _, b := range r.KubernetesBinaries {
		content[b] = bytes.Repeat([]byte(b+" "+r.KubernetesVersion+" "), 2000)
		p := r.KubernetesPath(b)
		s.Put(p, content[b])
		s.Put(p+".sha256", []byte(Sum(content[b])+"\n"))
	}
	etcd := map[string][]byte{r.etcdDir() + "/": nil, r.etcdDir() + "/README.md": []byte("readme")}
	for _, b := range r.EtcdBinaries {
		content[b] = []byte(b + " " + strings.TrimPrefix(r.EtcdVersion, "v") + " binary")
		etcd[r.etcdDir()+"/"+b] = content[b]
	}
	archive := TarGz(t, etcd)
	s.Put(r.EtcdArchivePath(), archive)
	// A list, as etcd publishes: the other lines must not confuse the reader.
	s.Put(fmt.Sprintf("%s/%s/SHA256SUMS", EtcdPrefix, r.EtcdVersion), []byte(fmt.Sprintf("%s  etcd-%s-darwin-arm64.zip\n%s  %s.tar.gz\n",
		Sum([]byte("other")), r.EtcdVersion, Sum(archive), r.etcdDir())))
	if r.CrictlVersion != "" {
		content["crictl"] = []byte("crictl " + r.CrictlVersion)
		crictl := TarGz(t, map[string][]byte{"crictl": content["crictl"]})
		s.Put(r.CrictlArchivePath(), crictl)
		s.Put(r.CrictlArchivePath()+".sha256", []byte(Sum(crictl)))
	}
	return content
}

// TarGz packs members (name -> content; a name ending in / is a directory)
// in name order.
func TarGz(t testing.TB, members map[string][]byte) []byte {
	t.Helper()
	names := make([]string, 0, len(members))
	for n := range members {
		names = append(names, n)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, name := range names {
		var err error
		if strings.HasSuffix(name, "/") {
			err = tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: 0o755})
		} else if err = tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(members[name]))}); err == nil {
			_, err = tw.Write(members[name])
		}
		if err != nil {
			t.Fatalf("artifactstest: tar %s: %v", name, err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Sum is the hex sha256 of b.
func Sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
