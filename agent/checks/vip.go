package checks

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/kubewright/kubewright/agent"
)

// VIPName is the control-plane VIP check's name.
const VIPName = "vip"

const (
	// ReasonVIPMissing: no node holds the VIP, so clients of the control
	// plane endpoint cannot connect.
	ReasonVIPMissing = "VIPMissing"
	// ReasonVIPDuplicated: more than one node holds the VIP (split-brain
	// VRRP): connections land on whichever answers ARP last.
	ReasonVIPDuplicated = "VIPDuplicated"
)

// DefaultVIPPort is haproxy's port on every master, and so on the VIP.
const DefaultVIPPort = 8443

// VIP checks that exactly one node holds the keepalived VIP. The local view
// (is the address on this node's interface) is combined with Peers, a count
// of the other nodes that hold it (the agent wires one from what the other
// agents publish). Without Peers, a VIP not held here is probed over TCP: if
// an address answers, some node holds it.
type VIP struct {
	// Address is the VIP ("10.0.0.10", or "10.0.0.10/24").
	Address string
	// Interface the VIP is added to; empty looks at every interface.
	Interface string
	// Port probed on the VIP when it is not held here; DefaultVIPPort when 0.
	Port int
	// HeldLocally tells whether this node holds the VIP; nil lists the
	// interface's addresses through netlink.
	HeldLocally func() (bool, error)
	// Peers returns how many other nodes (not counting this one) hold the
	// VIP. nil, or an error, falls back to the TCP probe, which cannot see
	// a duplicate. Its context allows half of Timeout.
	Peers func(ctx context.Context) (holders int, err error)
	// Timeout bounds the peer count and the TCP probe together (default
	// 3s, ending before the check's context).
	Timeout time.Duration
}

func (v VIP) Name() string { return VIPName }

func (v VIP) Run(ctx context.Context) agent.Result {
	ip, err := parseVIP(v.Address)
	if err != nil {
		return unknownf(ReasonInvalidConfig, "VIP %q: %v", v.Address, err)
	}
	port := v.Port
	if port == 0 {
		port = DefaultVIPPort
	}
	if port < 0 || port > 65535 {
		return unknownf(ReasonInvalidConfig, "VIP %s: port %d is out of range", ip, port)
	}
	what := fmt.Sprintf("VIP %s", ip)

	held := v.HeldLocally
	if held == nil {
		held = func() (bool, error) { return addressOnLink(v.Interface, ip) }
	}
	local, lerr := held()
	var localView string
	switch {
	case lerr != nil:
		localView = fmt.Sprintf("this node's addresses unreadable (%v)", lerr)
	case local && v.Interface != "":
		localView = "held by this node on " + v.Interface
	case local:
		localView = "held by this node"
	case v.Interface != "":
		localView = "not on this node's " + v.Interface
	default:
		localView = "not on this node"
	}

	// One budget for the whole check: the peer count may take half, so a
	// hung count still leaves the TCP probe time to answer.
	pctx, cancel, timeout := probeContext(ctx, v.Timeout)
	defer cancel()

	var note string
	if v.Peers != nil && lerr == nil {
		peersCtx, cancelPeers := context.WithTimeout(pctx, timeout/2)
		peers, perr := v.Peers(peersCtx)
		cancelPeers()
		if ctx.Err() != nil {
			return canceled(ctx, what)
		}
		if perr == nil && peers < 0 {
			perr = fmt.Errorf("peer count %d is negative", peers)
		}
		if perr == nil {
			total := peers
			if local {
				total++
			}
			peerView := "no peer holds it"
			switch {
			case peers == 1:
				peerView = "1 peer holds it"
			case peers > 1:
				peerView = fmt.Sprintf("%d peers hold it", peers)
			}
			switch {
			case total == 0:
				return problemf(ReasonVIPMissing, "%s: no node holds it (%s, %s)", what, localView, peerView)
			case total > 1:
				return problemf(ReasonVIPDuplicated, "%s: held by %d nodes (%s, %s)", what, total, localView, peerView)
			}
			return okf("%s: %s, %s", what, localView, peerView)
		}
		note = fmt.Sprintf("; peers unknown (%v), duplicates not checked", perr)
	}
	if lerr == nil && local {
		return okf("%s: %s%s", what, localView, note)
	}

	// Nobody here; see whether anybody answers for the address. A refused
	// connection is an answer too: a host holds the VIP, only its haproxy
	// is down (the haproxy check reports that). Silence or no route means
	// nobody answers ARP for it.
	addr := net.JoinHostPort(ip.String(), strconv.Itoa(port))
	if dl, ok := pctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	err = dial(pctx, addr)
	if ctx.Err() != nil {
		return canceled(ctx, what)
	}
	switch {
	case err == nil:
		return okf("%s: %s; %s accepts TCP, so a node holds it%s", what, localView, addr, note)
	case errors.Is(err, syscall.ECONNREFUSED):
		return okf("%s: %s; %s refused TCP, so a node holds it (nothing listens on port %d there)%s", what, localView, addr, port, note)
	}
	return problemf(ReasonVIPMissing, "%s: %s, and %s does not answer (%s), so no node seems to hold it%s", what, localView, addr, describe(err, timeout), note)
}

// parseVIP accepts an address with or without a prefix length.
func parseVIP(s string) (netip.Addr, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return netip.Addr{}, errors.New("no VIP address configured")
	}
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Addr().Unmap(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("not an IP address")
	}
	return a.Unmap(), nil
}

// addressOnLink reports whether ip is assigned to the named interface, or
// to any interface when name is empty.
func addressOnLink(name string, ip netip.Addr) (bool, error) {
	var link netlink.Link
	if name != "" {
		l, err := netlink.LinkByName(name)
		if err != nil {
			return false, fmt.Errorf("interface %s: %w", name, err)
		}
		link = l
	}
	addrs, err := netlink.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		return false, fmt.Errorf("list addresses: %w", err)
	}
	want := net.IP(ip.AsSlice())
	for _, a := range addrs {
		if a.IPNet != nil && a.IP.Equal(want) {
			return true, nil
		}
	}
	return false, nil
}
