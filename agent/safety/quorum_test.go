package safety

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/kubewright/kubewright/agent"
)

func TestQuorumGuard(t *testing.T) {
	for _, tc := range []struct {
		name           string
		healthy, total int
		local          bool
		allow          bool
		reason         string
	}{
		{"3 of 3, restart healthy member", 3, 3, true, true, ""},
		{"2 of 3, restart healthy member", 2, 3, true, false, "2/3 etcd members healthy, quorum is 2: restarting the healthy local member would leave 1"},
		{"2 of 3, restart dead member", 2, 3, false, true, ""},
		{"1 of 3, restart dead member", 1, 3, false, false, "1/3 etcd members healthy, quorum is 2: quorum is already lost"},
		{"5 of 5", 5, 5, true, true, ""},
		{"4 of 5, healthy", 4, 5, true, true, ""},
		{"3 of 5, healthy", 3, 5, true, false, "3/5 etcd members healthy, quorum is 3"},
		{"3 of 5, dead", 3, 5, false, true, ""},
		{"2 of 5, dead", 2, 5, false, false, "quorum is already lost"},
		{"single member, healthy", 1, 1, true, false, "1/1 etcd members healthy, quorum is 1: restarting the healthy local member would leave 0"},
		{"single member, dead", 0, 1, false, false, "0/1 etcd members healthy"},
		{"4 of 4, healthy", 4, 4, true, true, ""},
		{"3 of 4, healthy", 3, 4, true, false, "quorum is 3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := healthyEtcd(tc.healthy, tc.total, tc.local).Check(context.Background())
			if tc.allow {
				if err != nil {
					t.Fatalf("blocked: %v", err)
				}
				return
			}
			var be *agent.BlockedError
			if !errors.As(err, &be) || be.Rule != "quorum" {
				t.Fatalf("got %v, want a quorum BlockedError", err)
			}
			if !strings.Contains(be.Reason, tc.reason) {
				t.Fatalf("reason %q, want it to contain %q", be.Reason, tc.reason)
			}
		})
	}
}

func TestQuorumGuardCannotTell(t *testing.T) {
	boom := errors.New("connection refused")
	for name, q := range map[string]*QuorumGuard{
		"members": {
			Healthy:      func(context.Context) (int, int, error) { return 0, 0, boom },
			LocalHealthy: func(context.Context) (bool, error) { return true, nil },
		},
		"local": {
			Healthy:      func(context.Context) (int, int, error) { return 3, 3, nil },
			LocalHealthy: func(context.Context) (bool, error) { return false, boom },
		},
		"nonsense": healthyEtcd(4, 3, true),
	} {
		t.Run(name, func(t *testing.T) {
			err := q.Check(context.Background())
			var be *agent.BlockedError
			if err == nil || errors.As(err, &be) {
				t.Fatalf("got %v, want a plain error (the guard could not decide)", err)
			}
		})
	}
}
