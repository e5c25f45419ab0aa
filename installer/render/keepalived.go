package render

import (
	"fmt"
	"net"
	"strings"
)

// KeepalivedPeer is another master taking part in VRRP.
type KeepalivedPeer struct {
	Name    string
	Address string
}

// KeepalivedParams describes keepalived on one master.
type KeepalivedParams struct {
	HostName  string
	Address   string // this master's address on Interface (unicast source)
	Interface string
	VIP       string
	// VIPPrefix is the prefix length the VIP is added with (e.g. 24).
	VIPPrefix int
	RouterID  int
	// Priority orders masters: the first master starts as the preferred holder.
	Priority int
	// AuthPass is the VRRP PASS authentication (keepalived uses 8 chars at most).
	AuthPass string
	// Unicast sends adverts to Peers directly, for networks without multicast.
	Unicast bool
	Peers   []KeepalivedPeer
	// CheckScript is the track script's path (default KeepalivedCheck).
	CheckScript string
}

// KeepalivedConfig renders keepalived.conf. Every master starts as BACKUP with
// nopreempt so a recovered master does not take the VIP back and cause a
// second interruption; the track script puts a master whose local haproxy
// cannot reach a ready apiserver into FAULT, which releases the VIP to a
// healthy master.
func KeepalivedConfig(p KeepalivedParams) (string, error) {
	if net.ParseIP(p.VIP) == nil {
		return "", fmt.Errorf("keepalived: VIP %q is not an IP address", p.VIP)
	}
	if p.Interface == "" {
		return "", fmt.Errorf("keepalived: no interface for the VIP")
	}
	if p.RouterID < 1 || p.RouterID > 255 {
		return "", fmt.Errorf("keepalived: virtual router id %d out of range 1-255", p.RouterID)
	}
	if p.Priority < 1 || p.Priority > 254 {
		return "", fmt.Errorf("keepalived: priority %d out of range 1-254", p.Priority)
	}
	if len(p.AuthPass) > 8 {
		return "", fmt.Errorf("keepalived: auth password longer than 8 characters is silently truncated by keepalived; use at most 8")
	}
	script := p.CheckScript
	if script == "" {
		script = KeepalivedCheck
	}
	prefix := p.VIPPrefix
	if prefix == 0 {
		prefix = 32
	}
	var b strings.Builder
	b.WriteString("# Managed by kubewright: changes are overwritten by the next install/upgrade.\n")
	fmt.Fprintf(&b, `global_defs {
    router_id kubewright-%s
    enable_script_security
    script_user root
}

vrrp_script check_apiserver {
    script "%s"
    interval 1
    timeout 2
    fall 2
    rise 2
}

vrrp_instance kubewright_api {
    state BACKUP
    nopreempt
    interface %s
    virtual_router_id %d
    priority %d
    advert_int 1
`, p.HostName, script, p.Interface, p.RouterID, p.Priority)
	if p.AuthPass != "" {
		fmt.Fprintf(&b, "    authentication {\n        auth_type PASS\n        auth_pass %s\n    }\n", p.AuthPass)
	}
	if p.Unicast {
		fmt.Fprintf(&b, "    unicast_src_ip %s\n    unicast_peer {\n", p.Address)
		for _, peer := range p.Peers {
			fmt.Fprintf(&b, "        %s\n", peer.Address)
		}
		b.WriteString("    }\n")
	}
	fmt.Fprintf(&b, `    virtual_ipaddress {
        %s/%d dev %s
    }
    track_script {
        check_apiserver
    }
}
`, p.VIP, prefix, p.Interface)
	return b.String(), nil
}

// KeepalivedCheckScript probes /readyz through the local haproxy (the port the
// VIP serves; anonymous access is allowed for health paths only, see
// AuthenticationConfig). It checks haproxy rather than the local apiserver on
// purpose: haproxy already steers around a stopped or restarting apiserver,
// so a rolling restart of the apiservers (certs renew, upgrade) leaves the VIP
// where it is instead of moving it, and with it every client connection,
// once per master. The VIP moves when this host cannot serve the API at all:
// haproxy down, or no apiserver anywhere ready.
func KeepalivedCheckScript(endpointPort int) string {
	return fmt.Sprintf(`#!/bin/sh
# Managed by kubewright. keepalived runs this every second; two failures in a
# row move this master to FAULT so the VIP goes to a master that serves the API.
exec curl --silent --fail --max-time 2 --insecure --output /dev/null https://127.0.0.1:%d/readyz
`, endpointPort)
}
