package checks

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"
)

// maxBody caps how much of a health endpoint's answer a check reads: enough
// for a verbose /readyz, never a whole unexpected page.
const maxBody = 64 << 10

// newHTTPClient is the client a check uses when none is injected. It never
// goes through a proxy (the endpoints are this node's or its peers', and a
// proxy would check the proxy instead), and it keeps no idle connections, so
// every run measures a fresh connection and leaves nothing behind.
func newHTTPClient(tlsConf *tls.Config) *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:             nil,
		DialContext:       (&net.Dialer{}).DialContext,
		TLSClientConfig:   tlsConf,
		DisableKeepAlives: true,
	}}
}

// get fetches url within ctx and returns the status code, headers and at
// most maxBody bytes of the body.
func get(ctx context.Context, client *http.Client, url string) (int, http.Header, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return resp.StatusCode, resp.Header, body, fmt.Errorf("read answer: %w", err)
	}
	return resp.StatusCode, resp.Header, body, nil
}

// validURL reports whether s is an absolute http(s) URL; a check given
// anything else says so instead of failing with a transport error.
func validURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%q is not an http or https URL", s)
	}
	if u.Host == "" {
		return fmt.Errorf("%q has no host", s)
	}
	return nil
}

// redact hides a password in a URL's userinfo, so a URL can go in a
// message; anything that does not parse is returned as is (it holds no
// parsed userinfo to hide, and the check reports it as bad config).
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	return u.Redacted()
}

// dial opens and closes one TCP connection to addr within ctx.
func dial(ctx context.Context, addr string) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	return c.Close()
}

// describe turns a probe error into a short phrase for a message: the cause
// a person acts on ("connection refused", "no answer within 3s"), not the
// whole wrapped chain.
func describe(err error, timeout time.Duration) string {
	if err == nil {
		return "no error"
	}
	var ve *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	var ci x509.CertificateInvalidError
	var rh tls.RecordHeaderError
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		if timeout <= 0 {
			return "timed out"
		}
		return fmt.Sprintf("no answer within %s", round(timeout))
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.EHOSTUNREACH):
		return "no route to host"
	case errors.Is(err, syscall.ENETUNREACH):
		return "network unreachable"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.As(err, &ve):
		return "TLS verification failed: " + ve.Err.Error()
	case errors.As(err, &ua), errors.As(err, &hn), errors.As(err, &ci):
		return "TLS verification failed: " + err.Error()
	case errors.As(err, &rh):
		return "TLS handshake failed: the endpoint does not speak TLS"
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return strings.TrimPrefix(ue.Err.Error(), "net/http: ")
	}
	return err.Error()
}

// loadCAPool reads a PEM bundle of CA certificates.
func loadCAPool(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read CA bundle: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("CA bundle %s holds no PEM certificate", path)
	}
	return pool, nil
}

// quote shortens an unexpected body for a message.
func quote(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 120 {
		s = s[:120] + "..."
	}
	return fmt.Sprintf("%q", s)
}
