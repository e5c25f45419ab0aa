package render

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// HAProxyBackend is one apiserver behind the VIP.
type HAProxyBackend struct {
	Name    string
	Address string
}

// HAProxyParams describes haproxy on one master.
type HAProxyParams struct {
	// BindPort is the control-plane endpoint port (the VIP's port).
	BindPort int
	// APIServerPort is where every apiserver listens.
	APIServerPort int
	Backends      []HAProxyBackend
}

// HAProxyConfig renders haproxy.cfg: TCP passthrough (TLS ends at the
// apiservers, so client certificates keep working) with an HTTPS /readyz health
// check so a starting or broken apiserver gets no traffic.
func HAProxyConfig(p HAProxyParams) (string, error) {
	if p.BindPort == 0 || p.APIServerPort == 0 {
		return "", fmt.Errorf("haproxy: bind and apiserver ports are required")
	}
	if p.BindPort == p.APIServerPort {
		return "", fmt.Errorf("haproxy: bind port %d equals the apiserver port; they listen on the same hosts and must differ", p.BindPort)
	}
	if len(p.Backends) == 0 {
		return "", fmt.Errorf("haproxy: no apiserver backends")
	}
	var b strings.Builder
	b.WriteString("# Managed by kubewright: changes are overwritten by the next install/upgrade.\n")
	// No global maxconn: haproxy derives it from the file-descriptor limit it
	// is given (systemd's LimitNOFILE). A fixed maxconn makes haproxy refuse
	// to start where it cannot raise that limit (containers without
	// CAP_SYS_RESOURCE), and the apiservers' own limits cap real load anyway.
	fmt.Fprintf(&b, `global
    log stdout format raw local0 info

defaults
    mode tcp
    log global
    option tcplog
    option dontlognull
    timeout connect 5s
    # A refused connection (an apiserver that just stopped, before the health
    # check notices) is retried, the last time on another server.
    retries 3
    option redispatch
    # Long client/server timeouts: watches and exec sessions are long-lived.
    timeout client 4h
    timeout server 4h
    timeout tunnel 4h

frontend kube-apiserver
    bind *:%d
    default_backend kube-apiserver

backend kube-apiserver
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    default-server check check-ssl verify none inter 1s fall 2 rise 2 on-marked-down shutdown-sessions
`, p.BindPort)
	for _, be := range p.Backends {
		fmt.Fprintf(&b, "    server %s %s\n", be.Name, net.JoinHostPort(be.Address, strconv.Itoa(p.APIServerPort)))
	}
	return b.String(), nil
}
