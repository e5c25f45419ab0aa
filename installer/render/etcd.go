package render

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// EtcdMember is one member of the etcd cluster.
type EtcdMember struct {
	Name    string
	Address string // internal address peers and apiservers use
}

// EtcdParams describes one member's unit.
type EtcdParams struct {
	Self    EtcdMember
	Members []EtcdMember
	// ClusterToken distinguishes this cluster's bootstrap from any other on the
	// same network (derived from the cluster name by the caller).
	ClusterToken string
	// InitialState is "new" for the first bootstrap and "existing" when this
	// member joins a running cluster (add-node, replacement).
	InitialState string
}

// URL formats an https URL, bracketing IPv6 hosts.
func URL(host string, port int) string {
	return "https://" + net.JoinHostPort(host, strconv.Itoa(port))
}

// EtcdInitialCluster is the --initial-cluster value for members.
func EtcdInitialCluster(members []EtcdMember) string {
	parts := make([]string, 0, len(members))
	for _, m := range members {
		parts = append(parts, m.Name+"="+URL(m.Address, EtcdPeerPort))
	}
	return strings.Join(parts, ",")
}

// EtcdEndpoints is the comma list of client URLs, as the apiserver wants it.
func EtcdEndpoints(members []EtcdMember) string {
	parts := make([]string, 0, len(members))
	for _, m := range members {
		parts = append(parts, URL(m.Address, EtcdClientPort))
	}
	return strings.Join(parts, ",")
}

// EtcdUnit renders /etc/systemd/system/etcd.service. TLS with client-cert auth
// is on for both the client and the peer port: etcd holds every Secret.
func EtcdUnit(p EtcdParams) (string, error) {
	if p.Self.Name == "" || p.Self.Address == "" {
		return "", fmt.Errorf("etcd member needs a name and an address")
	}
	state := p.InitialState
	if state == "" {
		state = "new"
	}
	if state != "new" && state != "existing" {
		return "", fmt.Errorf("etcd initial state %q: want new or existing", state)
	}
	f := map[string]string{
		"name":                        p.Self.Name,
		"data-dir":                    EtcdDataDir,
		"listen-client-urls":          URL(p.Self.Address, EtcdClientPort) + "," + URL("127.0.0.1", EtcdClientPort),
		"advertise-client-urls":       URL(p.Self.Address, EtcdClientPort),
		"listen-peer-urls":            URL(p.Self.Address, EtcdPeerPort),
		"initial-advertise-peer-urls": URL(p.Self.Address, EtcdPeerPort),
		"initial-cluster":             EtcdInitialCluster(p.Members),
		"initial-cluster-state":       state,
		"initial-cluster-token":       p.ClusterToken,
		"listen-metrics-urls":         "http://127.0.0.1:" + strconv.Itoa(EtcdMetricsPort),
		"cert-file":                   pki("etcd/server.crt"),
		"key-file":                    pki("etcd/server.key"),
		"trusted-ca-file":             pki("etcd/ca.crt"),
		"client-cert-auth":            "true",
		"peer-cert-file":              pki("etcd/peer.crt"),
		"peer-key-file":               pki("etcd/peer.key"),
		"peer-trusted-ca-file":        pki("etcd/ca.crt"),
		"peer-client-cert-auth":       "true",
		"snapshot-count":              "10000",
		"auto-compaction-retention":   "8",
		"quota-backend-bytes":         strconv.Itoa(8 << 30),
	}
	u := Unit{
		Description:           "etcd key-value store (kubewright)",
		Docs:                  "https://etcd.io/docs/",
		After:                 []string{"network-online.target"},
		Wants:                 []string{"network-online.target"},
		Type:                  "notify",
		Exec:                  BinDir + "/etcd",
		Args:                  flags(f),
		Restart:               "always",
		RestartSec:            5,
		StartLimitIntervalSec: 0,
		LimitNOFILE:           65536,
	}
	return u.String(), nil
}
