package checks

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubewright/kubewright/agent"
)

// etcdPKI is an etcd CA, a health-check client certificate it signed, and
// one from another CA that etcd must refuse.
type etcdPKI struct {
	ca                       *testCA
	caFile, cert, key        string
	otherCA, badCert, badKey string
}

func newEtcdPKI(t *testing.T) etcdPKI {
	t.Helper()
	dir := t.TempDir()
	ca := newCA(t, "etcd-ca")
	other := newCA(t, "other")
	c, k := ca.issue(t, "kube-etcd-healthcheck-client")
	bc, bk := other.issue(t, "intruder")
	return etcdPKI{
		ca:      ca,
		caFile:  writeFile(t, filepath.Join(dir, "ca.crt"), ca.pem),
		cert:    writeFile(t, filepath.Join(dir, "client.crt"), c),
		key:     writeFile(t, filepath.Join(dir, "client.key"), k),
		otherCA: writeFile(t, filepath.Join(dir, "other-ca.crt"), other.pem),
		badCert: writeFile(t, filepath.Join(dir, "bad.crt"), bc),
		badKey:  writeFile(t, filepath.Join(dir, "bad.key"), bk),
	}
}

// etcdMember is a real HTTPS server that requires a client certificate
// from the etcd CA and answers /health as etcd does.
func etcdMember(t *testing.T, p etcdPKI, healthy bool, reason string) *httptest.Server {
	return tlsServer(t, p.ca, p.ca, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/health" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if !healthy {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		json.NewEncoder(w).Encode(map[string]string{"health": map[bool]string{true: "true", false: "false"}[healthy], "reason": reason})
	}))
}

func TestEtcd(t *testing.T) {
	p := newEtcdPKI(t)
	good := etcdMember(t, p, true, "").URL
	bad := etcdMember(t, p, false, "RAFT NO LEADER").URL
	odd := tlsServer(t, p.ca, p.ca, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("<html>hello</html>"))
	})).URL

	tests := []struct {
		name                   string
		endpoint, ca, crt, key string
		status                 agent.Status
		reason                 string
		want                   []string
	}{
		{"healthy", good, p.caFile, p.cert, p.key, agent.OK, "OK", []string{"healthy", good + "/health"}},
		{"trailing slash", good + "/", p.caFile, p.cert, p.key, agent.OK, "OK", nil},
		{"no leader", bad, p.caFile, p.cert, p.key, agent.Problem, ReasonEtcdUnhealthy, []string{"health false (RAFT NO LEADER)"}},
		{"not etcd", odd, p.caFile, p.cert, p.key, agent.Problem, ReasonEtcdUnhealthy, []string{"unexpected body"}},
		{"server not from our CA", good, p.otherCA, p.cert, p.key, agent.Problem, ReasonEtcdUnhealthy, []string{"TLS verification failed"}},
		{"client cert refused", good, p.caFile, p.badCert, p.badKey, agent.Problem, ReasonEtcdUnhealthy, []string{"tls"}},
		{"refused", "https://" + closedAddr(t), p.caFile, p.cert, p.key, agent.Problem, ReasonEtcdUnhealthy, []string{"connection refused"}},
		{"key missing", good, p.caFile, p.cert, p.key + ".missing", agent.Unknown, ReasonEtcdTLSUnreadable, []string{p.cert}},
		{"cert and key swapped", good, p.caFile, p.key, p.cert, agent.Unknown, ReasonEtcdTLSUnreadable, nil},
		{"bad endpoint", "127.0.0.1:2379", p.caFile, p.cert, p.key, agent.Unknown, ReasonInvalidConfig, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Etcd{Endpoint: tt.endpoint, CACert: tt.ca, Cert: tt.crt, Key: tt.key}.Run(context.Background())
			expect(t, r, tt.status, tt.reason, tt.want...)
			if strings.Contains(r.Message, "PRIVATE KEY") {
				t.Fatalf("message leaks key material: %q", r.Message)
			}
		})
	}
}

func TestEtcdQuorum(t *testing.T) {
	p := newEtcdPKI(t)
	up := func() string { return etcdMember(t, p, true, "").URL }
	down := func() string { return etcdMember(t, p, false, "RAFT NO LEADER").URL }
	gone := "https://" + closedAddr(t)

	tests := []struct {
		name      string
		endpoints []string
		status    agent.Status
		reason    string
		want      []string
	}{
		{"all healthy", []string{up(), up(), up()}, agent.OK, "OK", []string{"3/3 members healthy"}},
		{"single member", []string{up()}, agent.OK, "OK", []string{"1/1"}},
		{"one of three down", []string{up(), gone, up()}, agent.Problem, ReasonEtcdQuorumAtRisk,
			[]string{"2/3 members healthy, quorum 2 holds, one more failure loses it", gone + ": connection refused"}},
		{"one of five down", []string{up(), up(), up(), up(), down()}, agent.Problem, ReasonEtcdQuorumAtRisk,
			[]string{"4/5 members healthy, quorum 3 holds, it survives 1 more failure", "RAFT NO LEADER"}},
		{"two of three down", []string{up(), gone, down()}, agent.Problem, ReasonEtcdQuorumLost, []string{"1/3 members healthy, quorum 2 lost"}},
		{"two of four down", []string{up(), up(), gone, down()}, agent.Problem, ReasonEtcdQuorumLost, []string{"2/4 members healthy, quorum 3 lost"}},
		{"no endpoints", nil, agent.Unknown, ReasonInvalidConfig, nil},
		{"bad endpoint", []string{up(), "nope"}, agent.Unknown, ReasonInvalidConfig, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := EtcdQuorum{Endpoints: tt.endpoints, CACert: p.caFile, Cert: p.cert, Key: p.key}.Run(context.Background())
			expect(t, r, tt.status, tt.reason, tt.want...)
		})
	}

	t.Run("a hung member is counted unhealthy in time", func(t *testing.T) {
		// Hung for good: it does not even notice the client leaving.
		release := make(chan struct{})
		hung := tlsServer(t, p.ca, p.ca, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
		t.Cleanup(func() { close(release) }) // before hung.Close, which waits for handlers
		start := time.Now()
		r := EtcdQuorum{Endpoints: []string{up(), up(), hung.URL}, CACert: p.caFile, Cert: p.cert, Key: p.key, Timeout: 300 * time.Millisecond}.Run(context.Background())
		expect(t, r, agent.Problem, ReasonEtcdQuorumAtRisk, "2/3", "no answer within 300ms")
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("took %s", d)
		}
	})
}

func TestHealthyMembers(t *testing.T) {
	p := newEtcdPKI(t)
	client, err := NewEtcdClient(p.caFile, p.cert, p.key)
	if err != nil {
		t.Fatal(err)
	}
	a, b := etcdMember(t, p, true, "").URL, etcdMember(t, p, false, "RAFT NO LEADER").URL
	c := "https://" + closedAddr(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	n, details := HealthyMembers(ctx, client, []string{a, b, c})
	if n != 1 {
		t.Fatalf("healthy = %d, want 1 (%q)", n, details)
	}
	want := []string{a + ": healthy", b + ": health false (RAFT NO LEADER)", c + ": connection refused"}
	if len(details) != len(want) {
		t.Fatalf("details %q", details)
	}
	for i := range want {
		if details[i] != want[i] {
			t.Fatalf("detail %d = %q, want %q", i, details[i], want[i])
		}
	}
	if n, d := HealthyMembers(ctx, client, nil); n != 0 || len(d) != 0 {
		t.Fatalf("no endpoints: %d %q", n, d)
	}
}
