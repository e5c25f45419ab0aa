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

func TestClock(t *testing.T) {
	// Real HTTPS and HTTP servers: net/http stamps Date from their clock,
	// which is this machine's. Skew is made by shifting the check's clock.
	peer := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "Unauthorized", http.StatusUnauthorized) // as an apiserver answers
	}))
	t.Cleanup(peer.Close)
	plain := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(plain.Close)
	badDate := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Date", "yesterday-ish")
	}))
	t.Cleanup(badDate.Close)
	// A peer whose own clock is 10s ahead.
	ahead := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Date", time.Now().Add(10*time.Second).UTC().Format(http.TimeFormat))
	}))
	t.Cleanup(ahead.Close)
	hostPort := strings.TrimPrefix(peer.URL, "https://")
	down := closedAddr(t)

	shifted := func(d time.Duration) func() time.Time {
		return func() time.Time { return time.Now().Add(d) }
	}
	tests := []struct {
		name   string
		peers  []string
		shift  time.Duration
		max    time.Duration
		status agent.Status
		reason string
		want   []string
	}{
		{"in sync", []string{hostPort}, 0, 0, agent.OK, "OK", []string{"within 2s of " + hostPort}},
		{"http URL peer", []string{plain.URL}, 0, 0, agent.OK, "OK", nil},
		{"this node behind", []string{hostPort}, -10 * time.Second, 0, agent.Problem, ReasonClockSkew, []string{hostPort + " is about ", " ahead", "more than 2s"}},
		{"this node ahead", []string{hostPort}, 10 * time.Second, 0, agent.Problem, ReasonClockSkew, []string{hostPort + " is about ", " behind"}},
		// Date has one-second resolution: 1.5s off with 2s allowed can
		// never be reported; 4.5s off is, unless a round trip takes 1.5s.
		{"below the limit despite resolution", []string{hostPort}, -1500 * time.Millisecond, 0, agent.OK, "OK", nil},
		{"below the limit the other way", []string{hostPort}, 1500 * time.Millisecond, 0, agent.OK, "OK", nil},
		{"beyond the limit despite resolution", []string{hostPort}, -4500 * time.Millisecond, 0, agent.Problem, ReasonClockSkew, nil},
		{"own limit", []string{hostPort}, -10 * time.Second, time.Minute, agent.OK, "OK", []string{"within 1m0s"}},
		{"one peer down", []string{down, hostPort}, 0, 0, agent.OK, "OK", []string{"no answer from " + down}},
		{"skewed from every peer", []string{plain.URL, hostPort}, -10 * time.Second, 0, agent.Problem, ReasonClockSkew, []string{"from 2 of 2 answering peers"}},
		{"one peer's clock is off", []string{plain.URL, ahead.URL, hostPort}, 0, 0, agent.OK, "OK", []string{ahead.URL + " is about ", "ahead, so the skew is on their side"}},
		{"the only peer's clock is off", []string{ahead.URL}, 0, 0, agent.Problem, ReasonClockSkew, []string{"from 1 of 1 answering peers"}},
		{"most peers' clocks are off", []string{ahead.URL, ahead.URL, hostPort}, 0, 0, agent.Problem, ReasonClockSkew, []string{"from 2 of 3"}},
		{"no usable Date", []string{badDate.URL}, 0, 0, agent.Unknown, ReasonNoPeerTime, []string{"no usable Date header"}},
		{"all down", []string{down}, 0, 0, agent.Unknown, ReasonNoPeerTime, []string{"connection refused"}},
		{"no peers", nil, 0, 0, agent.Unknown, ReasonNoPeerTime, nil},
		{"bad peer", []string{"ftp://x"}, 0, 0, agent.Unknown, ReasonInvalidConfig, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Clock{Peers: tt.peers, MaxOffset: tt.max, Now: shifted(tt.shift)}
			expect(t, c.Run(context.Background()), tt.status, tt.reason, tt.want...)
		})
	}
}

func TestAskTimeBounds(t *testing.T) {
	// The offset interval must always contain the true offset (0 here).
	ts := httptest.NewServer(http.NotFoundHandler())
	defer ts.Close()
	for i := 0; i < 5; i++ {
		r := askTime(context.Background(), newHTTPClient(nil), time.Now, "p", ts.URL)
		if r.err != nil {
			t.Fatal(r.err)
		}
		if r.low > 0 || r.high < 0 {
			t.Fatalf("interval [%s, %s] excludes 0", r.low, r.high)
		}
	}
}
