package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"
)

// failoverDial dials the kubeconfig's server address and, when that fails,
// each fallback (every apiserver's host:port) in turn. A master's agent
// talks to the API through its local haproxy; when that haproxy is the
// thing that is down, the repair that restarts it still needs the
// cluster's Leases, so it must reach an apiserver some other way. TLS is
// unaffected: the server name stays the kubeconfig's, and every apiserver
// certificate carries it (127.0.0.1, the VIP).
func failoverDial(fallbacks []string, timeout time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err == nil || ctx.Err() != nil {
			return c, err
		}
		errs := []error{err}
		for _, fb := range fallbacks {
			if fb == addr {
				continue
			}
			c, ferr := d.DialContext(ctx, network, fb)
			if ferr == nil {
				return c, nil
			}
			errs = append(errs, ferr)
			if ctx.Err() != nil {
				break
			}
		}
		return nil, fmt.Errorf("no API endpoint answers: %w", errors.Join(errs...))
	}
}
