package checks

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/kubewright/kubewright/agent"
)

// APIServerName is the local kube-apiserver check's name.
const APIServerName = "apiserver"

const (
	// ReasonAPIServerNotReady: /readyz failed, or the apiserver did not
	// answer (refused, hung, or its serving certificate does not verify).
	ReasonAPIServerNotReady = "APIServerNotReady"
	// ReasonReadyzDenied: the apiserver answered 401/403, so anonymous
	// access to /readyz is switched off and the check cannot tell readiness.
	ReasonReadyzDenied = "ReadyzDenied"
	// ReasonCACertUnreadable: the CA bundle to verify the endpoint with
	// cannot be read.
	ReasonCACertUnreadable = "CACertUnreadable"
)

// DefaultAPIServerReadyz is the local apiserver's readiness endpoint.
const DefaultAPIServerReadyz = "https://127.0.0.1:6443/readyz?verbose"

// APIServer asks this master's kube-apiserver /readyz, anonymously (the
// default RBAC and kubewright's AuthenticationConfig allow anonymous health
// paths). It checks the local apiserver directly, not through the VIP, so
// the finding is about this node.
type APIServer struct {
	// URL of /readyz; DefaultAPIServerReadyz when empty. ?verbose is added
	// when missing, so a failure can name the failing checks.
	URL string
	// CACert is the cluster CA bundle (PEM) that signed the apiserver's
	// serving certificate. Empty means the system roots.
	CACert string
	// Client is used as is when set (and CACert ignored).
	Client *http.Client
	// Timeout bounds the request (default 3s, ending before the check's
	// context).
	Timeout time.Duration
}

func (a APIServer) Name() string { return APIServerName }

func (a APIServer) Run(ctx context.Context) agent.Result {
	raw := a.URL
	if raw == "" {
		raw = DefaultAPIServerReadyz
	}
	what := "apiserver /readyz at " + redact(raw)
	if err := validURL(raw); err != nil {
		return unknownf(ReasonInvalidConfig, "%s: bad URL: %v", what, err)
	}
	u, _ := url.Parse(raw)
	if !u.Query().Has("verbose") {
		if u.RawQuery != "" {
			u.RawQuery += "&"
		}
		u.RawQuery += "verbose"
	}
	client := a.Client
	if client == nil {
		conf := &tls.Config{MinVersion: tls.VersionTLS12}
		if a.CACert != "" {
			pool, err := loadCAPool(a.CACert)
			if err != nil {
				return unknownf(ReasonCACertUnreadable, "%s: cannot verify it: %v", what, err)
			}
			conf.RootCAs = pool
		}
		client = newHTTPClient(conf)
	}
	pctx, cancel, timeout := probeContext(ctx, a.Timeout)
	defer cancel()
	code, _, body, err := get(pctx, client, u.String())
	if ctx.Err() != nil {
		return canceled(ctx, what)
	}
	switch {
	case err != nil:
		return problemf(ReasonAPIServerNotReady, "%s: %s", what, describe(err, timeout))
	case code == http.StatusOK:
		return okf("%s: ready", what)
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return unknownf(ReasonReadyzDenied, "%s: HTTP %d, anonymous access to /readyz is not allowed, so readiness cannot be read", what, code)
	}
	if failing := failingReadyz(body); len(failing) > 0 {
		return problemf(ReasonAPIServerNotReady, "%s: HTTP %d, failing: %s", what, code, strings.Join(failing, ", "))
	}
	return problemf(ReasonAPIServerNotReady, "%s: HTTP %d %s", what, code, quote(body))
}

// failingReadyz returns the names of the "[-]name failed: ..." lines of a
// verbose /readyz or /livez answer.
func failingReadyz(body []byte) []string {
	var names []string
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		rest, ok := strings.CutPrefix(line, "[-]")
		if !ok {
			continue
		}
		name, _, _ := strings.Cut(rest, " ")
		if name != "" {
			names = append(names, name)
		}
	}
	return names
}
