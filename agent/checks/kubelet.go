package checks

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/kubewright/kubewright/agent"
)

// KubeletName is the kubelet check's name.
const KubeletName = "kubelet"

// ReasonKubeletUnhealthy: the kubelet's /healthz refused, failed or hung.
const ReasonKubeletUnhealthy = "KubeletUnhealthy"

// DefaultKubeletHealthz is the kubelet's plain-HTTP health endpoint on
// loopback (healthzBindAddress/healthzPort).
const DefaultKubeletHealthz = "http://127.0.0.1:10248/healthz"

// Kubelet asks the kubelet's /healthz. The endpoint answers "ok" only when
// the kubelet's sync loop is alive, so a kubelet that is running but stuck
// shows up here while systemd still calls it active.
type Kubelet struct {
	// URL of /healthz; DefaultKubeletHealthz when empty.
	URL string
	// Client is used when set (tests, custom transports); otherwise a
	// proxy-less client without keep-alives.
	Client *http.Client
	// Timeout bounds the request (default 3s, always ending before the
	// check's context). A kubelet that does not answer in time is hung, which
	// is a Problem, not an Unknown.
	Timeout time.Duration
}

func (k Kubelet) Name() string { return KubeletName }

func (k Kubelet) Run(ctx context.Context) agent.Result {
	url := k.URL
	if url == "" {
		url = DefaultKubeletHealthz
	}
	what := "kubelet /healthz at " + redact(url)
	if err := validURL(url); err != nil {
		return unknownf(ReasonInvalidConfig, "%s: bad URL: %v", what, err)
	}
	client := k.Client
	if client == nil {
		client = newHTTPClient(nil)
	}
	pctx, cancel, timeout := probeContext(ctx, k.Timeout)
	defer cancel()
	code, _, body, err := get(pctx, client, url)
	if ctx.Err() != nil {
		return canceled(ctx, what)
	}
	if err != nil {
		return problemf(ReasonKubeletUnhealthy, "%s: %s", what, describe(err, timeout))
	}
	if code != http.StatusOK {
		return problemf(ReasonKubeletUnhealthy, "%s: HTTP %d %s", what, code, quote(body))
	}
	if strings.TrimSpace(string(body)) != "ok" {
		return problemf(ReasonKubeletUnhealthy, "%s: HTTP 200 but body %s, want \"ok\"", what, quote(body))
	}
	return okf("%s: ok", what)
}
