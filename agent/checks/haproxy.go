package checks

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/kubewright/kubewright/agent"
)

// HAProxyName is the haproxy check's name.
const HAProxyName = "haproxy"

const (
	// ReasonHAProxyDown: haproxy's frontend does not accept connections.
	ReasonHAProxyDown = "HAProxyDown"
	// ReasonHAProxyNoBackends: the frontend is up but no apiserver behind it
	// accepts connections, so every request through it fails.
	ReasonHAProxyNoBackends = "HAProxyNoBackends"
)

// DefaultHAProxyFrontend is haproxy's listener on this master.
const DefaultHAProxyFrontend = "127.0.0.1:8443"

// HAProxy checks the local load balancer in front of the apiservers: its
// frontend accepts TCP, and at least one backend does too. Backends are
// probed from this node, which is where haproxy probes them from.
type HAProxy struct {
	// Backends are every apiserver, host:port.
	Backends []string
	// Frontend is haproxy's listener, host:port; DefaultHAProxyFrontend when
	// empty.
	Frontend string
	// Timeout bounds each connection attempt; all run in parallel (default
	// 3s, ending before the check's context).
	Timeout time.Duration
}

func (h HAProxy) Name() string { return HAProxyName }

func (h HAProxy) Run(ctx context.Context) agent.Result {
	front := h.Frontend
	if front == "" {
		front = DefaultHAProxyFrontend
	}
	for _, a := range append([]string{front}, h.Backends...) {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return unknownf(ReasonInvalidConfig, "haproxy: address %q is not host:port: %v", a, err)
		}
	}
	pctx, cancel, timeout := probeContext(ctx, h.Timeout)
	defer cancel()
	addrs := append([]string{front}, h.Backends...)
	errs := make([]error, len(addrs))
	var wg sync.WaitGroup
	for i, a := range addrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = dial(pctx, a)
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return canceled(ctx, "haproxy at "+front)
	}
	if errs[0] != nil {
		return problemf(ReasonHAProxyDown, "haproxy frontend %s does not accept TCP: %s", front, describe(errs[0], timeout))
	}
	n := len(h.Backends)
	if n == 0 {
		return okf("haproxy frontend %s accepts TCP; no backends configured to check", front)
	}
	up := 0
	var down []string
	for i, err := range errs[1:] {
		if err == nil {
			up++
		} else {
			down = append(down, fmt.Sprintf("%s: %s", h.Backends[i], describe(err, timeout)))
		}
	}
	if up == 0 {
		return problemf(ReasonHAProxyNoBackends, "haproxy frontend %s accepts TCP but none of its %d backends do (%s)", front, n, strings.Join(down, "; "))
	}
	if len(down) > 0 {
		return okf("haproxy frontend %s accepts TCP; %d/%d backends up (down: %s)", front, up, n, strings.Join(down, "; "))
	}
	return okf("haproxy frontend %s accepts TCP; %d/%d backends up", front, up, n)
}
