package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestCommands(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("content\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	for _, tc := range []struct {
		name     string
		argv     []string
		wantOut  string
		wantCode int
		wantErr  string
	}{
		{"echo", []string{"testapp", "echo", "a", "b"}, "a b\n", 0, ""},
		{"sh shim by argv0", []string{"/bin/sh", "-c", "echo hi there"}, "hi there\n", 0, ""},
		{"sh subcommand", []string{"testapp", "sh", "-c", "hostname"}, host + "\n", 0, ""},
		{"cat", []string{"sh", "-c", "cat " + filepath.Join(dir, "f")}, "content\n", 0, ""},
		{"ls", []string{"testapp", "ls", dir}, "f\n", 0, ""},
		{"exit code", []string{"sh", "-c", "exit 3"}, "", 3, ""},
		{"unknown", []string{"sh", "-c", "rm -rf /"}, "", 127, "rm: command not found"},
		{"sh without -c", []string{"sh", "script.sh"}, "", 2, "sh supports only"},
		{"nested sh refused", []string{"sh", "-c", "sh -c echo"}, "", 2, "sh is not allowed"},
		{"cat missing", []string{"testapp", "cat", filepath.Join(dir, "nope")}, "", 1, "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(tc.argv, &out, &errb)
			if code != tc.wantCode || out.String() != tc.wantOut {
				t.Errorf("code %d out %q, want %d %q (stderr %q)", code, out.String(), tc.wantCode, tc.wantOut, errb.String())
			}
			if tc.wantErr != "" && !strings.Contains(errb.String(), tc.wantErr) {
				t.Errorf("stderr %q, want %q", errb.String(), tc.wantErr)
			}
		})
	}
}

func TestHandler(t *testing.T) {
	t.Setenv("TESTAPP_X", "y")
	srv := httptest.NewServer(handler())
	defer srv.Close()
	host, _ := os.Hostname()
	for path, want := range map[string]string{"/": host + "\n", "/healthz": "ok\n", "/env/TESTAPP_X": "y\n"} {
		resp, err := srv.Client().Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != want {
			t.Errorf("GET %s = %q, want %q", path, b, want)
		}
	}
	resp, _ := srv.Client().Get(srv.URL + "/env/NOT_SET_ANYWHERE")
	if resp.StatusCode != 404 {
		t.Errorf("unset env: status %d, want 404", resp.StatusCode)
	}
}

// fastRetries shortens get's and lookup's pauses for the test.
func fastRetries(t *testing.T) {
	t.Helper()
	p, a := retryPause, attemptTimeout
	retryPause, attemptTimeout = 20*time.Millisecond, time.Second
	t.Cleanup(func() { retryPause, attemptTimeout = p, a })
}

func TestGet(t *testing.T) {
	fastRetries(t)
	var flaky atomic.Int32
	hang := make(chan struct{})
	defer close(hang)
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "hello") })
	mux.HandleFunc("/flaky", func(w http.ResponseWriter, r *http.Request) {
		if flaky.Add(1) <= 2 {
			http.Error(w, "not yet", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "up")
	})
	mux.HandleFunc("/broken", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "boom", http.StatusInternalServerError)
	})
	mux.HandleFunc("/missing", http.NotFound)
	mux.HandleFunc("/hang", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	// A port nothing listens on: bind one, then close it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + l.Addr().String() + "/"
	l.Close()

	for _, tc := range []struct {
		name     string
		argv     []string
		wantOut  string
		wantCode int
		wantErr  []string
	}{
		{"2xx prints the body", []string{"testapp", "get", srv.URL + "/ok"}, "hello\n", 0, nil},
		{"through the sh shim", []string{"sh", "-c", "get " + srv.URL + "/ok"}, "hello\n", 0, nil},
		{"retries until 2xx", []string{"testapp", "get", "-wait", "5s", srv.URL + "/flaky"}, "up\n", 0,
			[]string{"attempt 1: status 503 Service Unavailable", "attempt 2: status 503"}},
		{"5xx until the wait is over", []string{"testapp", "get", "-wait", "300ms", srv.URL + "/broken"}, "", 1,
			[]string{"status 500 Internal Server Error: \"boom\"", "testapp: get " + srv.URL + "/broken: failed"}},
		{"404 is a failure", []string{"testapp", "get", "-wait", "100ms", srv.URL + "/missing"}, "", 1, []string{"status 404 Not Found"}},
		{"connection refused", []string{"testapp", "get", "-wait", "200ms", refused}, "", 1, []string{"connection refused"}},
		{"usage", []string{"testapp", "get"}, "", 2, []string{"usage: get [-wait DURATION] URL"}},
		{"not a URL", []string{"testapp", "get", "echo"}, "", 2, []string{"want an http:// or https:// URL"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(tc.argv, &out, &errb)
			if code != tc.wantCode || out.String() != tc.wantOut {
				t.Errorf("code %d out %q, want %d %q (stderr %q)", code, out.String(), tc.wantCode, tc.wantOut, errb.String())
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(errb.String(), w) {
					t.Errorf("stderr %q, want %q in it", errb.String(), w)
				}
			}
		})
	}
	if n := flaky.Load(); n != 3 {
		t.Errorf("/flaky was asked %d times, want 3 (two 503s, then 200)", n)
	}

	t.Run("each attempt times out", func(t *testing.T) {
		attemptTimeout = 100 * time.Millisecond
		defer func() { attemptTimeout = time.Second }()
		var out, errb bytes.Buffer
		start := time.Now()
		code := run([]string{"testapp", "get", "-wait", "400ms", srv.URL + "/hang"}, &out, &errb)
		if code != 1 || !strings.Contains(errb.String(), "context deadline exceeded") {
			t.Errorf("code %d, stderr %q: want 1 and a deadline error", code, errb.String())
		}
		if n := strings.Count(errb.String(), ": attempt "); n < 2 {
			t.Errorf("%d attempts in 400ms with 100ms timeouts, want at least 2:\n%s", n, errb.String())
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("took %s, want about the 400ms wait", d)
		}
	})
}

// fakeDNS answers A queries on loopback UDP: names in a (lower case, with the
// trailing dot) get their address once they have been asked for more than
// failFirst[name] times; everything else is NXDOMAIN. AAAA gets an empty
// answer. It is just enough DNS for Go's resolver.
type fakeDNS struct {
	conn      net.PacketConn
	a         map[string]net.IP
	failFirst map[string]int
	mu        sync.Mutex
	asked     map[string]int
}

func startFakeDNS(t *testing.T, a map[string]net.IP, failFirst map[string]int) *fakeDNS {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d := &fakeDNS{conn: c, a: a, failFirst: failFirst, asked: map[string]int{}}
	go d.serve()
	t.Cleanup(func() { c.Close() })
	// Every lookup in this test goes to d, whatever /etc/resolv.conf names.
	old := resolver
	resolver = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var dl net.Dialer
		return dl.DialContext(ctx, network, c.LocalAddr().String())
	}}
	t.Cleanup(func() { resolver = old })
	return d
}

func (d *fakeDNS) queries(name string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.asked[name]
}

func (d *fakeDNS) serve() {
	buf := make([]byte, 1500)
	for {
		n, from, err := d.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		if resp := d.answer(buf[:n]); resp != nil {
			d.conn.WriteTo(resp, from)
		}
	}
}

func (d *fakeDNS) answer(q []byte) []byte {
	if len(q) < 12 || binary.BigEndian.Uint16(q[4:]) != 1 {
		return nil
	}
	// The question: labels up to a zero byte, then type and class.
	var labels []string
	i := 12
	for i < len(q) && q[i] != 0 {
		l := int(q[i])
		if i+1+l > len(q) {
			return nil
		}
		labels = append(labels, string(q[i+1:i+1+l]))
		i += 1 + l
	}
	if i+5 > len(q) {
		return nil
	}
	qend := i + 5
	qtype := binary.BigEndian.Uint16(q[i+1:])
	name := strings.ToLower(strings.Join(labels, ".")) + "."

	rcode := uint16(3) // NXDOMAIN
	var answer []byte
	if ip, ok := d.a[name]; ok {
		d.mu.Lock()
		if qtype == 1 {
			d.asked[name]++
		}
		late := d.asked[name] <= d.failFirst[name]
		d.mu.Unlock()
		if !late {
			rcode = 0
			if qtype == 1 {
				// Name as a pointer to the question, type A, class IN, TTL 5, 4 bytes.
				answer = append([]byte{0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 5, 0, 4}, ip.To4()...)
			}
		}
	} else {
		d.mu.Lock()
		d.asked[name]++
		d.mu.Unlock()
	}
	resp := append([]byte(nil), q[:qend]...)
	flags := binary.BigEndian.Uint16(q[2:])&0x0100 | 0x8000 | 0x0080 | rcode // RD copied, QR, RA
	binary.BigEndian.PutUint16(resp[2:], flags)
	binary.BigEndian.PutUint16(resp[6:], 0)  // ANCOUNT
	binary.BigEndian.PutUint16(resp[8:], 0)  // NSCOUNT
	binary.BigEndian.PutUint16(resp[10:], 0) // ARCOUNT (the query's EDNS0 OPT is dropped)
	if answer != nil {
		binary.BigEndian.PutUint16(resp[6:], 1)
		resp = append(resp, answer...)
	}
	return resp
}

func TestLookup(t *testing.T) {
	fastRetries(t)
	dns := startFakeDNS(t,
		map[string]net.IP{"echo.e2e.test.": net.IPv4(10, 1, 2, 3), "late.e2e.test.": net.IPv4(10, 9, 8, 7)},
		map[string]int{"late.e2e.test.": 2})

	for _, tc := range []struct {
		name     string
		argv     []string
		wantOut  string
		wantCode int
		wantErr  []string
	}{
		{"a DNS name", []string{"testapp", "lookup", "echo.e2e.test"}, "10.1.2.3\n", 0, nil},
		{"through the sh shim", []string{"sh", "-c", "lookup echo.e2e.test."}, "10.1.2.3\n", 0, nil},
		{"retries until the record exists", []string{"testapp", "lookup", "-wait", "5s", "late.e2e.test"}, "10.9.8.7\n", 0,
			[]string{"attempt 1: lookup late.e2e.test", "no such host", "attempt 2:"}},
		{"a name that does not resolve", []string{"testapp", "lookup", "-wait", "300ms", "name.invalid"}, "", 1,
			[]string{"no such host", "testapp: lookup name.invalid: failed"}},
		{"usage", []string{"testapp", "lookup", "a", "b"}, "", 2, []string{"usage: lookup [-wait DURATION] NAME"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(tc.argv, &out, &errb)
			if code != tc.wantCode || out.String() != tc.wantOut {
				t.Errorf("code %d out %q, want %d %q (stderr %q)", code, out.String(), tc.wantCode, tc.wantOut, errb.String())
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(errb.String(), w) {
					t.Errorf("stderr %q, want %q in it", errb.String(), w)
				}
			}
		})
	}
	// /etc/hosts answers for localhost (the resolver reads the system's
	// files first); it may list ::1 as well as 127.0.0.1.
	t.Run("localhost", func(t *testing.T) {
		var out, errb bytes.Buffer
		code := run([]string{"testapp", "lookup", "localhost"}, &out, &errb)
		lines := strings.Fields(out.String())
		has4 := false
		for _, l := range lines {
			ip := net.ParseIP(l)
			if ip == nil || !ip.IsLoopback() {
				t.Errorf("localhost resolved to %q, not a loopback address", l)
			}
			has4 = has4 || l == "127.0.0.1"
		}
		if code != 0 || !has4 {
			t.Errorf("code %d out %q, want 0 and 127.0.0.1 (stderr %q)", code, out.String(), errb.String())
		}
	})
	if n := dns.queries("late.e2e.test."); n != 3 {
		t.Errorf("late.e2e.test was asked %d times, want 3 (two NXDOMAINs, then the answer)", n)
	}
	if n := dns.queries("name.invalid."); n < 2 {
		t.Errorf("name.invalid was asked %d times, want retries (at least 2)", n)
	}
	if n := dns.queries("localhost."); n != 0 {
		t.Errorf("localhost went to DNS %d times; /etc/hosts should answer it", n)
	}
}
