package checks

import (
	"context"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/kubewright/kubewright/agent"
)

func TestAPIServer(t *testing.T) {
	ca := newCA(t, "kubernetes")
	other := newCA(t, "someone-else")
	dir := t.TempDir()
	caFile := writeFile(t, filepath.Join(dir, "ca.crt"), ca.pem)
	otherFile := writeFile(t, filepath.Join(dir, "other.crt"), other.pem)
	notPEM := writeFile(t, filepath.Join(dir, "bad.crt"), []byte("not a certificate"))

	// A real HTTPS server answering like kube-apiserver's /readyz?verbose.
	// Without ?verbose it answers 400, so a check that forgets it fails.
	serve := func(code int, body string) string {
		ts := tlsServer(t, ca, nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/readyz" || !r.URL.Query().Has("verbose") {
				http.Error(w, "want /readyz?verbose, got "+r.URL.String(), http.StatusBadRequest)
				return
			}
			if r.URL.Query().Get("exclude") == "etcd" {
				w.Write([]byte("ok"))
				return
			}
			w.WriteHeader(code)
			w.Write([]byte(body))
		}))
		return ts.URL
	}
	ready := serve(200, "[+]ping ok\n[+]etcd ok\nreadyz check passed\n")
	failing := serve(500, "[+]ping ok\n[-]etcd failed: reason withheld\n[+]log ok\n[-]shutdown failed: reason withheld\nreadyz check failed\n")

	tests := []struct {
		name   string
		url    string
		ca     string
		status agent.Status
		reason string
		want   []string
	}{
		{"ready", ready + "/readyz", caFile, agent.OK, "OK", []string{"ready"}},
		{"ready, verbose given", ready + "/readyz?verbose", caFile, agent.OK, "OK", nil},
		{"other query kept", failing + "/readyz?exclude=etcd", caFile, agent.OK, "OK", nil},
		{"failing checks named", failing + "/readyz", caFile, agent.Problem, ReasonAPIServerNotReady, []string{"HTTP 500", "failing: etcd, shutdown"}},
		{"no verbose body", serve(503, "Service Unavailable") + "/readyz", caFile, agent.Problem, ReasonAPIServerNotReady, []string{"HTTP 503", "Service Unavailable"}},
		{"anonymous denied", serve(401, `{"kind":"Status"}`) + "/readyz", caFile, agent.Unknown, ReasonReadyzDenied, []string{"401"}},
		{"wrong CA", ready + "/readyz", otherFile, agent.Problem, ReasonAPIServerNotReady, []string{"TLS verification failed"}},
		{"system roots do not know the cluster CA", ready + "/readyz", "", agent.Problem, ReasonAPIServerNotReady, []string{"TLS verification failed"}},
		{"refused", "https://" + closedAddr(t) + "/readyz", caFile, agent.Problem, ReasonAPIServerNotReady, []string{"connection refused"}},
		{"CA file missing", ready + "/readyz", filepath.Join(dir, "nope.crt"), agent.Unknown, ReasonCACertUnreadable, nil},
		{"CA file not PEM", ready + "/readyz", notPEM, agent.Unknown, ReasonCACertUnreadable, []string{"no PEM certificate"}},
		{"bad URL", "127.0.0.1:6443/readyz", caFile, agent.Unknown, ReasonInvalidConfig, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := APIServer{URL: tt.url, CACert: tt.ca}.Run(context.Background())
			expect(t, r, tt.status, tt.reason, tt.want...)
		})
	}
}

func TestFailingReadyz(t *testing.T) {
	got := failingReadyz([]byte("[+]a ok\n[-]poststarthook/rbac failed: not finished\n  [-]informer-sync failed\nfoo\n[-]\n"))
	if len(got) != 2 || got[0] != "poststarthook/rbac" || got[1] != "informer-sync" {
		t.Fatalf("got %q", got)
	}
}
