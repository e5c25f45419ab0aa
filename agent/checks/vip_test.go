package checks

import (
	"context"
	"errors"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/kubewright/kubewright/agent"
)

func hostPort(t *testing.T, addr string) (string, int) {
	t.Helper()
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return h, n
}

func TestVIP(t *testing.T) {
	held := func(b bool) func() (bool, error) { return func() (bool, error) { return b, nil } }
	heldErr := func() (bool, error) { return false, errors.New("netlink: permission denied") }
	peers := func(n int) func(context.Context) (int, error) {
		return func(context.Context) (int, error) { return n, nil }
	}
	peersErr := func(context.Context) (int, error) { return 0, errors.New("apiserver unreachable") }

	_, upPort := hostPort(t, listener(t, "127.0.0.1"))
	_, refusedPort := hostPort(t, closedAddr(t))
	_, silentPort := hostPort(t, blackhole(t))

	tests := []struct {
		name   string
		vip    VIP
		status agent.Status
		reason string
		want   []string
	}{
		// With a peer count: the local view plus the peers decide.
		{"held here, no peer", VIP{Address: "10.0.0.10", HeldLocally: held(true), Peers: peers(0)}, agent.OK, "OK", []string{"held by this node"}},
		{"held by one peer", VIP{Address: "10.0.0.10", HeldLocally: held(false), Peers: peers(1)}, agent.OK, "OK", []string{"not on this node, 1 peer holds it"}},
		{"held by nobody", VIP{Address: "10.0.0.10/24", Interface: "eth0", HeldLocally: held(false), Peers: peers(0)}, agent.Problem, ReasonVIPMissing, []string{"VIP 10.0.0.10", "no node holds it", "eth0"}},
		{"held here and by a peer", VIP{Address: "10.0.0.10", HeldLocally: held(true), Peers: peers(1)}, agent.Problem, ReasonVIPDuplicated, []string{"held by 2 nodes"}},
		{"held by two peers", VIP{Address: "10.0.0.10", HeldLocally: held(false), Peers: peers(2)}, agent.Problem, ReasonVIPDuplicated, []string{"held by 2 nodes", "2 peers hold it"}},
		{"negative peer count falls back", VIP{Address: "127.0.0.1", Port: upPort, HeldLocally: held(false), Peers: peers(-1)}, agent.OK, "OK", []string{"negative"}},

		// Without a usable peer count: local view, then a TCP probe.
		{"held here, no peers func", VIP{Address: "10.0.0.10", HeldLocally: held(true)}, agent.OK, "OK", []string{"held by this node"}},
		{"elsewhere and answering", VIP{Address: "127.0.0.1", Port: upPort, HeldLocally: held(false)}, agent.OK, "OK", []string{"accepts TCP"}},
		{"elsewhere and refusing", VIP{Address: "127.0.0.1", Port: refusedPort, HeldLocally: held(false)}, agent.OK, "OK", []string{"refused TCP, so a node holds it"}},
		{"nobody answers", VIP{Address: "127.0.0.1", Port: silentPort, HeldLocally: held(false), Timeout: 200 * time.Millisecond}, agent.Problem, ReasonVIPMissing, []string{"does not answer (no answer within 200ms)"}},
		{"peers unknown, answering", VIP{Address: "127.0.0.1", Port: upPort, HeldLocally: held(false), Peers: peersErr}, agent.OK, "OK", []string{"peers unknown (apiserver unreachable)"}},
		{"peers unknown, held here", VIP{Address: "10.0.0.10", HeldLocally: held(true), Peers: peersErr}, agent.OK, "OK", []string{"duplicates not checked"}},
		{"local view unknown, answering", VIP{Address: "127.0.0.1", Port: upPort, HeldLocally: heldErr, Peers: peers(0)}, agent.OK, "OK", []string{"unreadable (netlink: permission denied)"}},
		{"local view unknown, silent", VIP{Address: "127.0.0.1", Port: silentPort, HeldLocally: heldErr, Timeout: 200 * time.Millisecond}, agent.Problem, ReasonVIPMissing, nil},

		{"hung peer count still leaves time to probe", VIP{Address: "127.0.0.1", Port: upPort, HeldLocally: held(false), Timeout: 400 * time.Millisecond,
			Peers: func(ctx context.Context) (int, error) { <-ctx.Done(); return 0, ctx.Err() }}, agent.OK, "OK", []string{"accepts TCP", "peers unknown (context deadline exceeded)"}},

		// Bad configuration.
		{"no address", VIP{HeldLocally: held(true)}, agent.Unknown, ReasonInvalidConfig, nil},
		{"bad address", VIP{Address: "10.0.0.300", HeldLocally: held(true)}, agent.Unknown, ReasonInvalidConfig, nil},
		{"bad port", VIP{Address: "10.0.0.1", Port: 70000, HeldLocally: held(true)}, agent.Unknown, ReasonInvalidConfig, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			expect(t, tt.vip.Run(context.Background()), tt.status, tt.reason, tt.want...)
		})
	}
}

// The default local view reads the real interfaces through netlink.
func TestVIPNetlink(t *testing.T) {
	none := func(context.Context) (int, error) { return 0, nil }
	if ok, err := addressOnLink("lo", netipMust(t, "127.0.0.1")); err != nil || !ok {
		t.Skipf("netlink cannot see 127.0.0.1 on lo here (%v, %v)", ok, err)
	}
	_, upPort := hostPort(t, listener(t, "127.0.0.1"))
	tests := []struct {
		name   string
		vip    VIP
		status agent.Status
		reason string
		want   []string
	}{
		{"on lo", VIP{Address: "127.0.0.1", Interface: "lo", Peers: none}, agent.OK, "OK", []string{"held by this node on lo"}},
		{"on any interface", VIP{Address: "127.0.0.1/8", Peers: none}, agent.OK, "OK", []string{"held by this node, no peer holds it"}},
		// 127.0.0.2 is routed to lo but not assigned to it.
		{"not assigned", VIP{Address: "127.0.0.2", Interface: "lo", Peers: none}, agent.Problem, ReasonVIPMissing, []string{"not on this node's lo"}},
		{"no such interface", VIP{Address: "127.0.0.1", Interface: "kwnosuch0", Port: upPort, Peers: none}, agent.OK, "OK", []string{"interface kwnosuch0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			expect(t, tt.vip.Run(context.Background()), tt.status, tt.reason, tt.want...)
		})
	}
}
