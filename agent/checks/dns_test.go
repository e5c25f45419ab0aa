package checks

import (
	"context"
	"encoding/binary"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kubewright/kubewright/agent"
)

// dnsResponder is a real, minimal DNS server on 127.0.0.1 (UDP). answer
// decides, per question, the response code and the IPv4 addresses of the A
// answer; a nil answer never responds. It records the names asked.
type dnsResponder struct {
	addr  string
	mu    sync.Mutex
	asked []string
}

func serveDNS(t *testing.T, answer func(name string, qtype uint16) (rcode byte, ips []net.IP)) *dnsResponder {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	d := &dnsResponder{addr: pc.LocalAddr().String()}
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			name, qtype, qend, ok := parseQuestion(buf[:n])
			if !ok {
				continue
			}
			d.mu.Lock()
			d.asked = append(d.asked, name)
			d.mu.Unlock()
			if answer == nil {
				continue
			}
			rcode, ips := answer(name, qtype)
			if qtype != 1 { // only A records carry our IPv4 answers
				ips = nil
			}
			resp := make([]byte, 12, 512)
			copy(resp, buf[:2])                                                      // ID
			binary.BigEndian.PutUint16(resp[2:], 0x8000|0x0100|0x0080|uint16(rcode)) // QR, RD, RA, RCODE
			binary.BigEndian.PutUint16(resp[4:], 1)                                  // QDCOUNT
			binary.BigEndian.PutUint16(resp[6:], uint16(len(ips)))                   // ANCOUNT
			resp = append(resp, buf[12:qend]...)                                     // the question
			for _, ip := range ips {
				resp = append(resp, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4) // name ptr, A, IN, TTL 30, RDLENGTH 4
				resp = append(resp, ip.To4()...)
			}
			pc.WriteTo(resp, from)
		}
	}()
	return d
}

func (d *dnsResponder) names() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.asked...)
}

// parseQuestion reads the first question of a query: its name, type, and
// where it ends.
func parseQuestion(b []byte) (name string, qtype uint16, end int, ok bool) {
	if len(b) < 12 || binary.BigEndian.Uint16(b[4:]) < 1 {
		return "", 0, 0, false
	}
	var labels []string
	i := 12
	for {
		if i >= len(b) {
			return "", 0, 0, false
		}
		l := int(b[i])
		i++
		if l == 0 {
			break
		}
		if l > 63 || i+l > len(b) {
			return "", 0, 0, false
		}
		labels = append(labels, string(b[i:i+l]))
		i += l
	}
	if i+4 > len(b) {
		return "", 0, 0, false
	}
	return strings.ToLower(strings.Join(labels, ".")) + ".", binary.BigEndian.Uint16(b[i:]), i + 4, true
}

func TestDNS(t *testing.T) {
	const svcIP = "10.96.0.1"
	good := serveDNS(t, func(name string, _ uint16) (byte, []net.IP) {
		if name == "kubernetes.default.svc.cluster.local." || name == "kubernetes.default.svc.example.org." {
			return 0, []net.IP{net.ParseIP(svcIP)}
		}
		return 3, nil // NXDOMAIN
	})
	servfail := serveDNS(t, func(string, uint16) (byte, []net.IP) { return 2, nil })
	silent := serveDNS(t, nil)
	refused := func() string {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		a := pc.LocalAddr().String()
		pc.Close()
		return a
	}()

	tests := []struct {
		name    string
		dns     DNS
		status  agent.Status
		reason  string
		want    []string
		maxTime time.Duration
	}{
		{"resolves", DNS{Server: good.addr}, agent.OK, "OK", []string{"kubernetes.default.svc.cluster.local via " + good.addr + ": resolved to " + svcIP}, 2 * time.Second},
		{"other domain, absolute name", DNS{Server: good.addr, Lookup: "kubernetes.default.svc.example.org."}, agent.OK, "OK", nil, 2 * time.Second},
		{"wrong domain", DNS{Server: good.addr, Lookup: "kubernetes.default.svc.cluster.locl"}, agent.Problem, ReasonDNSLookupFailed, []string{"does not exist"}, 2 * time.Second},
		{"servfail", DNS{Server: servfail.addr}, agent.Problem, ReasonDNSLookupFailed, []string{"server failed"}, 2 * time.Second},
		{"silent", DNS{Server: silent.addr, Timeout: 300 * time.Millisecond}, agent.Problem, ReasonDNSNotAnswering, []string{"no answer within 300ms"}, 2 * time.Second},
		{"nothing listening", DNS{Server: refused, Timeout: 300 * time.Millisecond}, agent.Problem, ReasonDNSNotAnswering, []string{"via " + refused + ": connection refused"}, 2 * time.Second},
		{"no server", DNS{}, agent.Unknown, ReasonInvalidConfig, nil, 2 * time.Second},
		{"bad server", DNS{Server: "kube-dns"}, agent.Unknown, ReasonInvalidConfig, nil, 2 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			expect(t, tt.dns.Run(context.Background()), tt.status, tt.reason, tt.want...)
			if d := time.Since(start); d > tt.maxTime {
				t.Fatalf("took %s", d)
			}
		})
	}

	// The name is asked as is: no resolv.conf search suffixes are tried.
	for _, n := range good.names() {
		switch n {
		case "kubernetes.default.svc.cluster.local.", "kubernetes.default.svc.example.org.", "kubernetes.default.svc.cluster.locl.":
		default:
			t.Errorf("server was asked %q", n)
		}
	}
	if len(good.names()) == 0 {
		t.Fatal("the server was never asked")
	}
}

func TestDNSServer(t *testing.T) {
	for in, want := range map[string]string{"10.96.0.10": "10.96.0.10:53", "10.96.0.10:5353": "10.96.0.10:5353", "fd00::a": "[fd00::a]:53", "[fd00::a]": "[fd00::a]:53"} {
		got, err := dnsServer(in)
		if err != nil || got != want {
			t.Errorf("dnsServer(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
