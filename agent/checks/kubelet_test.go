package checks

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kubewright/kubewright/agent"
)

func TestKubelet(t *testing.T) {
	serve := func(code int, body string) string {
		ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/healthz" {
				http.NotFound(w, r)
				return
			}
			w.WriteHeader(code)
			w.Write([]byte(body))
		}))
		t.Cleanup(ts.Close)
		return ts.URL + "/healthz"
	}
	// A hung kubelet: accepts, never answers, not even noticing the client
	// leave (an answer written as the client closes can race in).
	release := make(chan struct{})
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	t.Cleanup(hung.Close)
	t.Cleanup(func() { close(release) }) // runs first: Close waits for handlers

	tests := []struct {
		name    string
		url     string
		timeout time.Duration
		status  agent.Status
		reason  string
		want    []string
	}{
		{"ok", serve(200, "ok"), 0, agent.OK, "OK", []string{": ok"}},
		{"500", serve(500, "[-]syncloop failed"), 0, agent.Problem, ReasonKubeletUnhealthy, []string{"HTTP 500", "syncloop"}},
		{"200 but not ok", serve(200, "nope"), 0, agent.Problem, ReasonKubeletUnhealthy, []string{`"nope"`}},
		{"wrong path", strings.TrimSuffix(serve(200, "ok"), "/healthz") + "/other", 0, agent.Problem, ReasonKubeletUnhealthy, []string{"HTTP 404"}},
		{"refused", "http://" + closedAddr(t) + "/healthz", 0, agent.Problem, ReasonKubeletUnhealthy, []string{"connection refused"}},
		{"hung", hung.URL + "/healthz", 200 * time.Millisecond, agent.Problem, ReasonKubeletUnhealthy, []string{"no answer within 200ms"}},
		{"bad url", "::not a url", 0, agent.Unknown, ReasonInvalidConfig, nil},
		{"not http", "ftp://127.0.0.1/healthz", 0, agent.Unknown, ReasonInvalidConfig, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Kubelet{URL: tt.url, Timeout: tt.timeout}.Run(context.Background())
			expect(t, r, tt.status, tt.reason, append(tt.want, tt.url)...)
		})
	}

	t.Run("exact message", func(t *testing.T) {
		u := serve(200, "ok\n")
		r := Kubelet{URL: u}.Run(context.Background())
		if want := "kubelet /healthz at " + u + ": ok"; r.Message != want {
			t.Fatalf("message %q, want %q", r.Message, want)
		}
	})

	// The runner gives a check its timeout through ctx and records an
	// overrun as Unknown; a hung kubelet must come back as the check's own
	// Problem before that.
	t.Run("hung within the runner's deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		start := time.Now()
		r := Kubelet{URL: hung.URL + "/healthz"}.Run(ctx)
		expect(t, r, agent.Problem, ReasonKubeletUnhealthy, "no answer within")
		if ctx.Err() != nil {
			t.Fatalf("returned after the parent deadline (%s)", time.Since(start))
		}
	})

	t.Run("default URL name", func(t *testing.T) {
		if (Kubelet{}).Name() != "kubelet" {
			t.Fatal("name")
		}
	})
}

func TestURLPasswordsNeverInMessages(t *testing.T) {
	u := "http://user:s3cret@" + closedAddr(t) + "/healthz"
	for _, r := range []agent.Result{
		Kubelet{URL: u}.Run(context.Background()),
		APIServer{URL: u}.Run(context.Background()),
		Clock{Peers: []string{u}}.Run(context.Background()),
		EtcdQuorum{Endpoints: []string{u}, Client: newHTTPClient(nil)}.Run(context.Background()),
		Etcd{Endpoint: u, Client: newHTTPClient(nil)}.Run(context.Background()),
	} {
		if strings.Contains(r.Message, "s3cret") || r.Status == agent.OK {
			t.Errorf("got %+v", r)
		}
	}
}
