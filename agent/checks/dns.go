package checks

import (
	"context"
	"errors"
	"net"
	"strings"
	"time"

	"github.com/kubewright/kubewright/agent"
)

// DNSName is the cluster DNS check's name.
const DNSName = "dns"

const (
	// ReasonDNSNotAnswering: the cluster DNS Service did not answer (no
	// response in time, refused): pods on this node cannot resolve names.
	ReasonDNSNotAnswering = "DNSNotAnswering"
	// ReasonDNSLookupFailed: cluster DNS answered, but not with an address
	// for the name (NXDOMAIN, SERVFAIL): CoreDNS is up but cannot read the
	// cluster, or the domain is wrong.
	ReasonDNSLookupFailed = "DNSLookupFailed"
)

// DefaultDNSLookup is the name every cluster's DNS must resolve.
const DefaultDNSLookup = "kubernetes.default.svc.cluster.local"

// DNS resolves a cluster name through the kube-dns Service IP, from the
// node, the way pods do (through kube-proxy's Service rules to a CoreDNS
// pod). It catches a broken DNS add-on and broken Service routing on this
// node, neither of which the kubelet reports.
type DNS struct {
	// Server is the kube-dns Service IP; port 53 unless given as host:port.
	Server string
	// Lookup is the name to resolve; DefaultDNSLookup when empty. It is
	// looked up as an absolute name: no resolv.conf search list applies.
	// (The field is not called Name: that is the Check method.)
	Lookup string
	// Timeout bounds the lookup (default 3s, ending before the check's
	// context).
	Timeout time.Duration
}

func (d DNS) Name() string { return DNSName }

func (d DNS) Run(ctx context.Context) agent.Result {
	server, err := dnsServer(d.Server)
	if err != nil {
		return unknownf(ReasonInvalidConfig, "dns: server %q: %v", d.Server, err)
	}
	name := d.Lookup
	if name == "" {
		name = DefaultDNSLookup
	}
	name = strings.TrimSuffix(name, ".")
	what := "dns: " + name + " via " + server
	if name == "" {
		return unknownf(ReasonInvalidConfig, "dns: no name to look up")
	}
	r := &net.Resolver{
		PreferGo: true,
		// Every query goes to Server, over UDP or (for a truncated answer)
		// TCP as the resolver asks, whatever resolv.conf names.
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var dl net.Dialer
			return dl.DialContext(ctx, network, server)
		},
	}
	pctx, cancel, timeout := probeContext(ctx, d.Timeout)
	defer cancel()
	addrs, err := r.LookupHost(pctx, name+".")
	if ctx.Err() != nil {
		return canceled(ctx, what)
	}
	if err != nil {
		var de *net.DNSError
		switch {
		case errors.As(err, &de) && de.IsNotFound:
			return problemf(ReasonDNSLookupFailed, "%s: answered that the name does not exist", what)
		case errors.As(err, &de) && de.IsTimeout, errors.Is(err, context.DeadlineExceeded):
			return problemf(ReasonDNSNotAnswering, "%s: no answer within %s", what, round(timeout))
		case errors.As(err, &de) && de.Err == "server misbehaving":
			return problemf(ReasonDNSLookupFailed, "%s: server failed the query (SERVFAIL or a malformed answer)", what)
		case errors.As(err, &de) && strings.Contains(de.Err, "connection refused"):
			// The error names resolv.conf's server, which Dial replaced:
			// say only what happened.
			return problemf(ReasonDNSNotAnswering, "%s: connection refused", what)
		case errors.As(err, &de):
			return problemf(ReasonDNSNotAnswering, "%s: %s", what, de.Err)
		}
		return problemf(ReasonDNSNotAnswering, "%s: %s", what, describe(err, timeout))
	}
	if len(addrs) == 0 {
		return problemf(ReasonDNSLookupFailed, "%s: answered with no address", what)
	}
	return okf("%s: resolved to %s", what, strings.Join(addrs, ", "))
}

// dnsServer adds port 53 to a bare address.
func dnsServer(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", errors.New("no cluster DNS server configured")
	}
	if _, _, err := net.SplitHostPort(s); err == nil {
		return s, nil
	}
	ip := net.ParseIP(strings.Trim(s, "[]"))
	if ip == nil {
		return "", errors.New("not an IP address or IP:port")
	}
	return net.JoinHostPort(ip.String(), "53"), nil
}
