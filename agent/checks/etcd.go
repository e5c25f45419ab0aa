package checks

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/kubewright/kubewright/agent"
)

// EtcdName is the local etcd member check's name.
const EtcdName = "etcd"

const (
	// ReasonEtcdUnhealthy: the local member's /health is not "true", or it
	// did not answer.
	ReasonEtcdUnhealthy = "EtcdUnhealthy"
	// ReasonEtcdTLSUnreadable: the client certificate, key or CA bundle
	// cannot be read, so the check cannot talk to etcd.
	ReasonEtcdTLSUnreadable = "EtcdTLSUnreadable"
)

// Defaults for the local member and the health-check client certificate
// install writes on every etcd host.
const (
	DefaultEtcdEndpoint = "https://127.0.0.1:2379"
	DefaultEtcdCACert   = "/etc/kubernetes/pki/etcd/ca.crt"
	DefaultEtcdCert     = "/etc/kubernetes/pki/etcd/healthcheck-client.crt"
	DefaultEtcdKey      = "/etc/kubernetes/pki/etcd/healthcheck-client.key"
)

// Etcd asks the local etcd member's /health. etcd answers "true" only when
// the member is connected to a leader and can serve, so a running member cut
// off from the cluster shows here.
type Etcd struct {
	// Endpoint is the member's client URL; DefaultEtcdEndpoint when empty.
	Endpoint string
	// CACert, Cert and Key are PEM files: the etcd CA and a client
	// certificate it accepts. Empty fields take the Default* paths.
	CACert, Cert, Key string
	// Client is used as is when set (and the files ignored).
	Client *http.Client
	// Timeout bounds the request (default 3s, ending before the check's
	// context).
	Timeout time.Duration
}

func (e Etcd) Name() string { return EtcdName }

func (e Etcd) Run(ctx context.Context) agent.Result {
	ep := e.Endpoint
	if ep == "" {
		ep = DefaultEtcdEndpoint
	}
	what := "etcd /health at " + redact(healthURL(ep))
	if err := validURL(ep); err != nil {
		return unknownf(ReasonInvalidConfig, "%s: bad endpoint: %v", what, err)
	}
	client := e.Client
	if client == nil {
		var err error
		client, err = NewEtcdClient(e.CACert, e.Cert, e.Key)
		if err != nil {
			return unknownf(ReasonEtcdTLSUnreadable, "%s: %v", what, err)
		}
	}
	pctx, cancel, timeout := probeContext(ctx, e.Timeout)
	defer cancel()
	healthy, detail := memberHealth(pctx, client, ep, timeout)
	if ctx.Err() != nil {
		return canceled(ctx, what)
	}
	if !healthy {
		return problemf(ReasonEtcdUnhealthy, "%s: %s", what, detail)
	}
	return okf("%s: %s", what, detail)
}

// NewEtcdClient returns an HTTP client that verifies etcd with the CA
// bundle at caCert and presents the client certificate cert/key. Empty
// paths take the Default* ones. The quorum guard builds its client here
// too, so both see etcd the same way.
func NewEtcdClient(caCert, cert, key string) (*http.Client, error) {
	if caCert == "" {
		caCert = DefaultEtcdCACert
	}
	if cert == "" {
		cert = DefaultEtcdCert
	}
	if key == "" {
		key = DefaultEtcdKey
	}
	pool, err := loadCAPool(caCert)
	if err != nil {
		return nil, fmt.Errorf("etcd client TLS: %w", err)
	}
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		// The error names the files, never their contents.
		return nil, fmt.Errorf("etcd client TLS: load client certificate %s: %w", cert, err)
	}
	return newHTTPClient(&tls.Config{
		MinVersion:   tls.VersionTLS12,
		RootCAs:      pool,
		Certificates: []tls.Certificate{pair},
	}), nil
}

func healthURL(endpoint string) string {
	return strings.TrimRight(endpoint, "/") + "/health"
}

// memberHealth asks one member's /health and says what it found in a short
// phrase ("healthy", "health false (RAFT NO LEADER)", "connection refused").
// etcd answers 503 with a JSON body when unhealthy, so the body is read
// whatever the status code.
func memberHealth(ctx context.Context, client *http.Client, endpoint string, timeout time.Duration) (bool, string) {
	code, _, body, err := get(ctx, client, healthURL(endpoint))
	if err != nil {
		return false, describe(err, timeout)
	}
	var h struct {
		Health json.RawMessage `json:"health"`
		Reason string          `json:"reason"`
	}
	if err := json.Unmarshal(body, &h); err != nil || len(h.Health) == 0 {
		return false, fmt.Sprintf("HTTP %d with an unexpected body %s", code, quote(body))
	}
	if !condTrue(h.Health) {
		if h.Reason != "" {
			return false, fmt.Sprintf("health %s (%s)", strings.Trim(string(h.Health), `"`), h.Reason)
		}
		return false, fmt.Sprintf("health %s (HTTP %d)", strings.Trim(string(h.Health), `"`), code)
	}
	return true, "healthy"
}
