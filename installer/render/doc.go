// Package render turns cluster settings into the exact files kubewright puts on
// hosts: systemd units, component configs, keepalived and haproxy configs.
//
// Rendering is pure (no I/O, no clock, no randomness) so that a re-run renders
// byte-identical files and the steps' Plan can compare them with what is on the
// host: that is what makes a re-run on an up-to-date cluster change nothing.
// Every renderer has a golden test in testdata/.
package render

import (
	"fmt"
	"sort"
	"strings"
)

// Paths on hosts. They follow kubeadm's layout so operators' habits and tools
// (etcdctl flags, kubeadm certs) keep working.
const (
	PKIDir            = "/etc/kubernetes/pki"
	KubernetesDir     = "/etc/kubernetes"
	BinDir            = "/usr/local/bin"
	SystemdDir        = "/etc/systemd/system"
	EtcdDataDir       = "/var/lib/etcd"
	AuditLogPath      = "/var/log/kubernetes/audit/audit.log"
	KeepalivedConf    = "/etc/keepalived/keepalived.conf"
	KeepalivedCheck   = "/etc/keepalived/check-apiserver.sh"
	HAProxyConf       = "/etc/haproxy/haproxy.cfg"
	EncryptionConfig  = "/etc/kubernetes/encryption-config.yaml"
	AuditPolicyPath   = "/etc/kubernetes/audit-policy.yaml"
	AuthnConfigPath   = "/etc/kubernetes/authentication-config.yaml"
	EtcdClientPort    = 2379
	EtcdPeerPort      = 2380
	EtcdMetricsPort   = 2381
	ControllerMgrPort = 10257
	SchedulerPort     = 10259
)

// Unit is a systemd service unit. ExecStart is rendered one flag per line so
// that diffs of a changed flag are readable in --dry-run output.
type Unit struct {
	Description string
	Docs        string
	After       []string
	Wants       []string
	Type        string // simple | notify
	Exec        string
	Args        []string // already formatted "--flag=value"
	Restart     string   // always | on-failure
	RestartSec  int
	// StartLimit guards against tight crash loops flooding the journal.
	StartLimitIntervalSec int
	StartLimitBurst       int
	LimitNOFILE           int
	Environment           []string
	// NotifyAccess and WatchdogSec go with Type=notify: systemd kills and
	// restarts a service that stops sending WATCHDOG=1 (a hung loop), not
	// only one that exits. WatchdogSec is in seconds; 0 means no watchdog.
	NotifyAccess string
	WatchdogSec  int
	// MemoryMax caps the service's cgroup (systemd syntax, e.g. "64M").
	MemoryMax string
	// StateDirectory is created by systemd under /var/lib before start.
	StateDirectory string
}

// String renders the unit file.
func (u Unit) String() string {
	var b strings.Builder
	b.WriteString("# Managed by kubewright: changes are overwritten by the next install/upgrade.\n")
	b.WriteString("[Unit]\n")
	fmt.Fprintf(&b, "Description=%s\n", u.Description)
	if u.Docs != "" {
		fmt.Fprintf(&b, "Documentation=%s\n", u.Docs)
	}
	if len(u.Wants) > 0 {
		fmt.Fprintf(&b, "Wants=%s\n", strings.Join(u.Wants, " "))
	}
	if len(u.After) > 0 {
		fmt.Fprintf(&b, "After=%s\n", strings.Join(u.After, " "))
	}
	if u.StartLimitIntervalSec > 0 {
		fmt.Fprintf(&b, "StartLimitIntervalSec=%d\nStartLimitBurst=%d\n", u.StartLimitIntervalSec, u.StartLimitBurst)
	}
	b.WriteString("\n[Service]\n")
	typ := u.Type
	if typ == "" {
		typ = "simple"
	}
	fmt.Fprintf(&b, "Type=%s\n", typ)
	for _, e := range u.Environment {
		fmt.Fprintf(&b, "Environment=%s\n", e)
	}
	b.WriteString("ExecStart=" + u.Exec)
	for _, a := range u.Args {
		b.WriteString(" \\\n  " + a)
	}
	b.WriteString("\n")
	restart := u.Restart
	if restart == "" {
		restart = "always"
	}
	fmt.Fprintf(&b, "Restart=%s\n", restart)
	sec := u.RestartSec
	if sec == 0 {
		sec = 5
	}
	fmt.Fprintf(&b, "RestartSec=%d\n", sec)
	if u.LimitNOFILE > 0 {
		fmt.Fprintf(&b, "LimitNOFILE=%d\n", u.LimitNOFILE)
	}
	if u.NotifyAccess != "" {
		fmt.Fprintf(&b, "NotifyAccess=%s\n", u.NotifyAccess)
	}
	if u.WatchdogSec > 0 {
		fmt.Fprintf(&b, "WatchdogSec=%ds\n", u.WatchdogSec)
	}
	if u.MemoryMax != "" {
		fmt.Fprintf(&b, "MemoryMax=%s\n", u.MemoryMax)
	}
	if u.StateDirectory != "" {
		fmt.Fprintf(&b, "StateDirectory=%s\n", u.StateDirectory)
	}
	b.WriteString("\n[Install]\nWantedBy=multi-user.target\n")
	return b.String()
}

// flags renders a map as sorted --key=value arguments; sorting keeps output
// stable across runs (Go map order is random).
func flags(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, fmt.Sprintf("--%s=%s", k, m[k]))
	}
	return out
}

func pki(rel string) string { return PKIDir + "/" + rel }
