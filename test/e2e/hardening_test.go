//go:build e2e

package e2e

import (
	"context"
	"strings"
	"testing"
)

// hardeningCheck is one CIS Kubernetes Benchmark recommendation, asserted on
// a live master: a shell command whose output must contain want (and, with
// not, must not contain it). The numbers are the benchmark's sections; the
// same table is in docs/SECURITY.md.
type hardeningCheck struct {
	cis, what, cmd, want string
	not                  bool
}

// procFlags prints a running process's command line one argument per line.
// It matches the full command line: process names are cut at 15 characters
// (kube-controller-manager is "kube-controller"), so pgrep -x cannot.
func procFlags(name string) string {
	return `pid=$(pgrep -of '^/usr/local/bin/` + name + `( |$)'); [ -n "$pid" ] || { echo "no ` + name + ` process"; exit 1; }; tr '\0' '\n' < /proc/$pid/cmdline`
}

var hardeningChecks = []hardeningCheck{
	{"1.1.1", "apiserver unit file 644 root:root", "stat -c '%a %U:%G' /etc/systemd/system/kube-apiserver.service", "644 root:root", false},
	{"1.1.7", "etcd unit file 644 root:root", "stat -c '%a %U:%G' /etc/systemd/system/etcd.service", "644 root:root", false},
	{"1.1.11", "etcd data directory 700", "stat -c '%a' /var/lib/etcd", "700", false},
	{"1.1.13", "kubeconfigs on masters 600", "stat -c '%a %n' /etc/kubernetes/*.conf | grep -v '^600 ' || echo all-600", "all-600", false},
	{"1.1.19", "everything under /etc/kubernetes owned by root", "find /etc/kubernetes ! -user root | head -5; echo end", "end", false},
	{"1.1.21", "no private key readable by others", "find /etc/kubernetes/pki -name '*.key' ! -perm 600 | head -5; echo end", "end", false},
	{"1.2.1", "anonymous requests refused outside the health endpoints", "curl -sk -o /dev/null -w '%{http_code}' https://127.0.0.1:6443/api", "401", false},
	{"1.2.1", "anonymous health probes allowed", "curl -sk https://127.0.0.1:6443/readyz", "ok", false},
	{"1.2.5", "apiserver verifies kubelets' serving certificates", procFlags("kube-apiserver"), "--kubelet-certificate-authority=", false},
	{"1.2.6-1.2.8", "authorization Node,RBAC", procFlags("kube-apiserver"), "--authorization-mode=Node,RBAC", false},
	{"1.2.15", "NodeRestriction admission", procFlags("kube-apiserver"), "--enable-admission-plugins=NodeRestriction", false},
	{"1.2.16", "apiserver profiling off", procFlags("kube-apiserver"), "--profiling=false", false},
	{"1.2.17", "audit log on", procFlags("kube-apiserver"), "--audit-log-path=/var/log/kubernetes/audit/audit.log", false},
	{"1.2.18-1.2.20", "audit log rotation", procFlags("kube-apiserver") + " | grep -c -- '--audit-log-max'", "3", false},
	{"1.2.17", "audit log written", "test -s /var/log/kubernetes/audit/audit.log && echo written", "written", false},
	{"1.2.27", "Secrets encryption at rest configured", procFlags("kube-apiserver"), "--encryption-provider-config=/etc/kubernetes/encryption-config.yaml", false},
	{"1.2.29", "etcd reached over TLS with a client certificate", procFlags("kube-apiserver"), "--etcd-certfile=", false},
	{"1.3.2", "controller-manager profiling off", procFlags("kube-controller-manager"), "--profiling=false", false},
	{"1.3.3", "controller-manager uses per-controller service accounts", procFlags("kube-controller-manager"), "--use-service-account-credentials=true", false},
	{"1.3.7", "controller-manager bound to localhost", "ss -Hltn 'sport = :10257' | awk '{print $4}'", "127.0.0.1:10257", false},
	{"1.4.1", "scheduler profiling off", procFlags("kube-scheduler"), "--profiling=false", false},
	{"1.4.2", "scheduler bound to localhost", "ss -Hltn 'sport = :10259' | awk '{print $4}'", "127.0.0.1:10259", false},
	{"2.1", "etcd serves clients over TLS only to client certificates", "curl -sk --max-time 5 https://127.0.0.1:2379/health; echo rc=$?", "rc=0", true},
	{"2.1", "etcd answers with a client certificate", "curl -s --max-time 5 --cacert /etc/kubernetes/pki/etcd/ca.crt --cert /etc/kubernetes/pki/etcd/healthcheck-client.crt --key /etc/kubernetes/pki/etcd/healthcheck-client.key https://127.0.0.1:2379/health", `"health":"true"`, false},
	{"2.2", "etcd client cert auth", procFlags("etcd"), "--client-cert-auth=true", false},
	{"2.5", "etcd peer cert auth", procFlags("etcd"), "--peer-client-cert-auth=true", false},
	{"4.1.1", "kubelet unit file 644 root:root", "stat -c '%a %U:%G' /etc/systemd/system/kubelet.service", "644 root:root", false},
	{"4.2.1", "kubelet refuses anonymous requests", "curl -sk -o /dev/null -w '%{http_code}' https://127.0.0.1:10250/pods", "401", false},
	{"4.2.2", "kubelet authorizes through the API (webhook)", "grep -A1 '^authorization:' /var/lib/kubelet/config.yaml", "mode: Webhook", false},
	{"4.2.4", "kubelet read-only port closed", "ss -Hltn 'sport = :10255' | wc -l", "0", false},
	{"4.2.10", "kubelet rotates its client certificate", "grep '^rotateCertificates:' /var/lib/kubelet/config.yaml", "true", false},
	{"4.2.11", "kubelet serving certificate from an approved CSR", "grep '^serverTLSBootstrap:' /var/lib/kubelet/config.yaml", "true", false},
}

// checkHardening asserts hardeningChecks on every master of c.
func checkHardening(t *testing.T, ctx context.Context, c *cpCluster) {
	t.Run("hardened by default (CIS checks on every master)", func(t *testing.T) {
		for _, ms := range c.lab.Machines {
			for _, hc := range hardeningChecks {
				out, err := c.hosts[ms.Name].Exec(ctx, hc.cmd+" 2>&1")
				got := strings.TrimSpace(out)
				has := strings.Contains(got, hc.want)
				switch {
				case hc.want == "end" && got != "end":
					t.Errorf("CIS %s %s on %s: found\n%s", hc.cis, hc.what, ms.Name, got)
				case hc.want != "end" && has == hc.not:
					t.Errorf("CIS %s %s on %s: %q (err %v); want it %s %q", hc.cis, hc.what, ms.Name, got, err, map[bool]string{true: "not to contain", false: "to contain"}[hc.not], hc.want)
				}
			}
		}
	})
}
