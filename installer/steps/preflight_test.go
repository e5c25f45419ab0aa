package steps

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kubewright/kubewright/installer/engine"
	"github.com/kubewright/kubewright/installer/steps/stepkit/stepkittest"
)

func expect(t *testing.T, got verdict, status Status, reason string) {
	t.Helper()
	if got.status != status || got.reason != reason {
		t.Fatalf("got %s %q\nwant %s %q", got.status, got.reason, status, reason)
	}
}

func TestCheckOS(t *testing.T) {
	tests := []struct {
		name, os, ver, family string
		status                Status
		reason                string
	}{
		{"debian 12", "debian", "12", "debian", StatusPass, "debian 12"},
		{"ubuntu 24.04", "ubuntu", "24.04", "debian", StatusPass, "ubuntu 24.04"},
		{"ubuntu 18.04", "ubuntu", "18.04", "debian", StatusWarn, "ubuntu 18.04 is older than the oldest tested release (ubuntu 20.04)"},
		{"rocky 9.3", "rocky", "9.3", "rhel", StatusPass, "rocky 9.3"},
		{"centos 7", "centos", "7", "rhel", StatusWarn, "centos 7 is older than the oldest tested release (centos 8)"},
		{"fedora", "fedora", "40", "rhel", StatusWarn, "fedora 40 is in the rhel family but not tested"},
		{"alpine", "alpine", "3.19.1", "other", StatusFail, "alpine 3.19.1 is not supported: use Debian/Ubuntu or the RHEL family (RHEL, Rocky, AlmaLinux, CentOS Stream, Oracle Linux)"},
		{"debian testing", "debian", "", "debian", StatusWarn, "debian: cannot read the version; tested from debian 11 on"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			expect(t, checkOS(&engine.Facts{OS: tc.os, OSVersion: tc.ver, OSFamily: tc.family}), tc.status, tc.reason)
		})
	}
}

func TestCheckKernel(t *testing.T) {
	tests := []struct {
		release string
		status  Status
		reason  string
	}{
		{"6.18.44-fc-v857", StatusPass, "6.18.44-fc-v857"},
		{"5.8.0", StatusPass, "5.8.0"},
		{"5.4.0-150-generic", StatusWarn, "kernel 5.4.0-150-generic works with cgroup v1 only; 5.8 or newer is recommended"},
		{"4.19.0-25-amd64", StatusWarn, "kernel 4.19.0-25-amd64 works with cgroup v1 only; 5.8 or newer is recommended"},
		{"4.18.0-553.el8_10.x86_64", StatusFail, "kernel 4.18.0-553.el8_10.x86_64 is older than 4.19, the oldest Kubernetes supports"},
		{"3.10.0-1160.el7.x86_64", StatusFail, "kernel 3.10.0-1160.el7.x86_64 is older than 4.19, the oldest Kubernetes supports"},
		{"6.1rc1", StatusPass, "6.1rc1"},
		{"", StatusFail, `cannot read kernel release ""`},
	}
	for _, tc := range tests {
		t.Run(tc.release, func(t *testing.T) { expect(t, checkKernel(tc.release), tc.status, tc.reason) })
	}
}

func TestCheckSwap(t *testing.T) {
	expect(t, checkSwap(0), StatusPass, "off")
	expect(t, checkSwap(2047), StatusWarn, "2047 MiB of swap is on; the swap-off step turns it off (kubelet refuses to start with swap by default)")
}

func TestCheckResources(t *testing.T) {
	tests := []struct {
		name   string
		cpus   int
		mem    int
		roles  []string
		status Status
		reason string
	}{
		{"master ok", 4, 7900, []string{"etcd", "masters"}, StatusPass, "4 CPU, 7900 MiB"},
		{"master 2 cpu", 2, 7900, []string{"etcd", "masters"}, StatusWarn, "2 CPU, 7900 MiB; 4 CPU and 3800 MiB recommended for role etcd+masters"},
		{"master 1 cpu", 1, 7900, []string{"masters"}, StatusFail, "1 CPU, 7900 MiB; role masters needs at least 2 CPU and 1700 MiB"},
		{"master low memory", 2, 1600, []string{"masters"}, StatusFail, "2 CPU, 1600 MiB; role masters needs at least 2 CPU and 1700 MiB"},
		{"worker small", 1, 900, []string{"workers"}, StatusWarn, "1 CPU, 900 MiB; 2 CPU and 1800 MiB recommended for role workers"},
		{"worker tiny", 1, 512, []string{"workers"}, StatusFail, "1 CPU, 512 MiB; role workers needs at least 1 CPU and 700 MiB"},
		{"master+worker takes the stricter", 2, 1800, []string{"masters", "workers"}, StatusWarn, "2 CPU, 1800 MiB; 4 CPU and 3800 MiB recommended for role masters+workers"},
		{"custom group only", 2, 2000, []string{"ingress"}, StatusPass, "2 CPU, 2000 MiB"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			expect(t, checkResources(&engine.Facts{CPUs: tc.cpus, MemoryMiB: tc.mem}, tc.roles), tc.status, tc.reason)
		})
	}
}

func TestDecideCommands(t *testing.T) {
	expect(t, decideCommands(""), StatusPass, "all present")
	expect(t, decideCommands("missing modprobe\nmissing iptables|nft\n"), StatusFail, "missing: modprobe, iptables or nft")
}

func TestDecideModules(t *testing.T) {
	expect(t, decideModules("overlay loaded\nbr_netfilter available\n"), StatusPass, "overlay loaded, br_netfilter available")
	expect(t, decideModules("overlay builtin\nbr_netfilter missing 6.8.0-31-generic\n"), StatusFail,
		"br_netfilter not found for kernel 6.8.0-31-generic; install the kernel's modules package (e.g. linux-modules-extra-6.8.0-31-generic)")
}

// ssOutput is real `ss -ltnpH` output from a master on a re-run, plus a
// stranger on 10259 and an sshd.
const ssOutput = `LISTEN 0      4096       127.0.0.1:2379       0.0.0.0:*    users:(("etcd",pid=812,fd=7))
LISTEN 0      4096      10.0.0.11:2379       0.0.0.0:*    users:(("etcd",pid=812,fd=8))
LISTEN 0      4096      10.0.0.11:2380       0.0.0.0:*    users:(("etcd",pid=812,fd=6))
LISTEN 0      128         0.0.0.0:22         0.0.0.0:*    users:(("sshd",pid=601,fd=3))
LISTEN 0      4096              *:6443             *:*    users:(("kube-apiserver",pid=901,fd=3))
LISTEN 0      4096              *:10257            *:*    users:(("kube-controller",pid=933,fd=3))
LISTEN 0      4096              *:10259            *:*    users:(("python3",pid=77,fd=3))
LISTEN 0      4096           [::]:10250          [::]:*    users:(("kubelet",pid=1201,fd=20))
LISTEN 0      4096     127.0.0.53%lo:53        0.0.0.0:*    users:(("systemd-resolve",pid=500,fd=14))
`

func TestParseSSAndDecidePorts(t *testing.T) {
	ls := parseSS(ssOutput)
	if len(ls) != 9 || ls[4].Port != 6443 || ls[4].Processes[0] != "kube-apiserver" || ls[7].Addr != "[::]" || ls[8].Port != 53 {
		t.Fatalf("parsed %+v", ls)
	}
	master := []portUse{{2379, "etcd"}, {2380, "etcd"}, {6443, "kube-apiserver"}, {8443, "haproxy"}, {10250, "kubelet"}, {10257, "kube-controller-manager"}, {10259, "kube-scheduler"}}
	tests := []struct {
		name   string
		out    string
		want   []portUse
		status Status
		reason string
	}{
		{"stranger on the scheduler port", ssOutput, master, StatusFail, "10259 (kube-scheduler's) in use by python3"},
		{"re-run: our own components", strings.Replace(ssOutput, `"python3"`, `"kube-scheduler"`, 1), master, StatusPass,
			"2379,2380,6443,8443,10250,10257,10259 free or held by kubewright's own components (2379,2380,6443,10250,10257,10259)"},
		{"fresh host", "LISTEN 0 128 0.0.0.0:22 0.0.0.0:* users:((\"sshd\",pid=601,fd=3))\n", []portUse{{10250, "kubelet"}}, StatusPass, "10250 free"},
		{"no process info (ss without root)", "LISTEN 0 4096 *:10250 *:*\n", []portUse{{10250, "kubelet"}}, StatusFail, "10250 (kubelet's) in use by an unknown process"},
		{"old ss without -H support prints State column only", "0 4096 *:8443 *:* users:((\"nginx\",pid=3,fd=6))\n", []portUse{{8443, "haproxy"}}, StatusFail, "8443 (haproxy's) in use by nginx"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { expect(t, decidePorts(parseSS(tc.out), tc.want), tc.status, tc.reason) })
	}
}

func TestRequiredPorts(t *testing.T) {
	c := clusterWith(nil)
	got := func(name string) string {
		var ps []string
		for _, p := range requiredPorts(&engine.Target{Inv: c.Host(name), Cluster: c}) {
			ps = append(ps, p.Component+":"+strconv.Itoa(p.Port))
		}
		return strings.Join(ps, " ")
	}
	if g := got("m1"); g != "etcd:2379 etcd:2380 kube-apiserver:6443 haproxy:8443 kubelet:10250 kube-controller-manager:10257 kube-scheduler:10259" {
		t.Fatalf("master ports: %s", g)
	}
	if g := got("w1"); g != "kubelet:10250" {
		t.Fatalf("worker ports: %s", g)
	}
}

func TestDecideClock(t *testing.T) {
	base := time.Unix(1_700_000_000, 0)
	sample := func(rtt time.Duration, remoteOffset float64) clockSample {
		return clockSample{before: base, after: base.Add(rtt), remote: float64(base.Unix()) + rtt.Seconds()/2 + remoteOffset}
	}
	tests := []struct {
		name   string
		s      clockSample
		status Status
		reason string
	}{
		{"in sync", sample(20*time.Millisecond, 0.05), StatusPass, "+0.050s vs operator (±0.010s)"},
		{"behind, close to limit", sample(20*time.Millisecond, -1.5), StatusWarn, "-1.500s vs operator (±0.010s): close to the 2s limit; enable NTP"},
		{"far ahead", sample(20*time.Millisecond, 30), StatusFail, "+30.000s vs operator (±0.010s), over the 2s limit; enable NTP (chrony or systemd-timesyncd)"},
		{"slow link hides the answer", sample(3*time.Second, 1.8), StatusWarn, "+1.800s vs operator (±1.500s): may exceed the 2s limit (slow connection)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { expect(t, decideClock(tc.s, 2*time.Second), tc.status, tc.reason) })
	}
}

func TestUniqueness(t *testing.T) {
	c := clusterWith(nil)
	facts := map[string]*engine.Facts{
		"m1": {Hostname: "node-a", MachineID: "aaaa", Addresses: []string{"10.0.0.11", "10.0.2.15"}},
		"m2": {Hostname: "NODE-A", MachineID: "aaaa", Addresses: []string{"10.0.0.12", "10.0.2.15", "10.0.0.21"}},
		"w1": {Hostname: "w1", MachineID: "cccc", Addresses: []string{"10.0.2.15"}},
	}
	tg := func(name string) *engine.Target {
		return &engine.Target{Host: &stepkittest.Host{HostName: name}, Inv: c.Host(name), Cluster: c, Facts: facts[name]}
	}
	expect(t, checkUniqueHostname(tg("m1"), facts), StatusFail, `hostname "node-a" is also the hostname of m2; node names must be unique`)
	expect(t, checkUniqueHostname(tg("w1"), facts), StatusPass, "w1")
	expect(t, checkUniqueMachineID(tg("m2"), facts), StatusFail, "machine-id aaaa is shared with m1 (cloned image?); regenerate: rm /etc/machine-id && systemd-machine-id-setup")
	expect(t, checkUniqueMachineID(tg("w1"), facts), StatusPass, "cccc")
	// The NAT address every VM shares (10.0.2.15) is not a finding; w1's
	// inventory address configured on m2 is, and w1 lacks it itself.
	expect(t, checkAddress(tg("m1"), facts), StatusPass, "10.0.0.11")
	expect(t, checkAddress(tg("w1"), facts), StatusFail, "10.0.0.21 is also configured on m2")
	facts["m2"].Addresses = []string{"10.0.0.12"}
	expect(t, checkAddress(tg("w1"), facts), StatusFail, "10.0.0.21 is not configured on any interface of this host (has: 10.0.2.15)")
	expect(t, checkUniqueHostname(tg("m1"), nil), StatusSkip, needsAllFacts)
	expect(t, checkAddress(tg("m1"), nil), StatusPass, "10.0.0.11 on this host (other hosts not compared: no facts for them)")
	facts["m1"].MachineID = ""
	expect(t, checkUniqueMachineID(tg("m1"), facts), StatusFail, "no /etc/machine-id; run systemd-machine-id-setup")
}

func TestCheckVIPInterface(t *testing.T) {
	c := clusterWith(nil)
	tg := &engine.Target{Inv: c.Host("m1"), Cluster: c}
	expect(t, checkVIPInterface(tg, &engine.Facts{Interfaces: []string{"lo", "eth0"}}), StatusPass, "eth0 present")
	expect(t, checkVIPInterface(tg, &engine.Facts{Interfaces: []string{"lo", "ens3"}}), StatusFail, "interface eth0 not found (host has: ens3, lo); set controlPlaneEndpoint.interface")
}

func TestDecideVIPProbe(t *testing.T) {
	tests := []struct {
		name   string
		out    string
		status Status
		reason string
	}{
		{"nobody", "tcp 124 \nping noreply\nneigh 10.0.0.100 dev eth0 FAILED\n", StatusPass, "no answer from 10.0.0.100 (TCP 8443, ping, ARP)"},
		{"no route", "tcp 1 bash: connect: No route to host\nping unavailable\n", StatusPass, "no answer from 10.0.0.100 (TCP 8443, ping, ARP)"},
		{"open port", "tcp 0 \nping reply\n", StatusFail, "10.0.0.100:8443 accepts TCP connections; 10.0.0.100 answers ping; the VIP must be an unused address"},
		{"refused", "tcp 1 bash: connect: Connection refused\nping unavailable\n", StatusFail, "10.0.0.100 refused a TCP connection (a machine answered); the VIP must be an unused address"},
		{"arp only", "tcp unavailable\nping noreply\nneigh 10.0.0.100 dev eth0 lladdr 52:54:00:12:34:56 REACHABLE\n", StatusFail,
			"10.0.0.100 is at 52:54:00:12:34:56 (REACHABLE in ARP/ND cache); the VIP must be an unused address"},
		{"stale arp", "tcp 124 \nping noreply\nneigh 10.0.0.100 dev eth0 lladdr 52:54:00:12:34:56 STALE\n", StatusWarn,
			"no answer now, but ARP cache has a stale entry 52:54:00:12:34:56 for 10.0.0.100"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { expect(t, decideVIPProbe(tc.out, "10.0.0.100", 8443), tc.status, tc.reason) })
	}
}

// TestRunPreflightOnThisMachine runs every probe for real (local shell) with
// facts the test controls, and asserts the rows whose outcome it controls.
func TestRunPreflightOnThisMachine(t *testing.T) {
	c := clusterWith(nil)
	facts := map[string]*engine.Facts{
		"m1": {OS: "debian", OSVersion: "12", OSFamily: "debian", Kernel: "6.1.0-18-amd64", CPUs: 1, MemoryMiB: 8000,
			Hostname: "m1", MachineID: "same", Addresses: []string{"10.0.0.11"}, Interfaces: []string{"lo", "eth0"}},
		"m2": {Hostname: "m2", MachineID: "same", Addresses: []string{"10.0.0.12", "10.0.0.100"}},
		"w1": {Hostname: "w1", MachineID: "other", Addresses: []string{"10.0.0.21"}},
	}
	tg := &engine.Target{Host: &stepkittest.Host{HostName: "m1"}, Inv: c.Host("m1"), Cluster: c, Facts: facts["m1"]}
	skewed := func() time.Time { return time.Now().Add(-10 * time.Second) }
	res := RunPreflight(context.Background(), tg, PeerInfo{Facts: facts, Now: skewed})
	got := map[string]CheckResult{}
	var order []string
	for _, r := range res {
		if r.Host != "m1" {
			t.Fatalf("row for host %q", r.Host)
		}
		got[r.Check] = r
		order = append(order, r.Check)
	}
	wantOrder := "sudo os kernel swap resources commands kernel-modules ports clock unique-hostname unique-machine-id address vip-interface vip-free"
	if strings.Join(order, " ") != wantOrder {
		t.Fatalf("checks = %s", strings.Join(order, " "))
	}
	rows := []struct {
		check  string
		status Status
		prefix string
	}{
		{CheckSudo, StatusPass, "root works"}, // tests run as root, like CI
		{CheckOS, StatusPass, "debian 12"},
		{CheckResources, StatusFail, "1 CPU, 8000 MiB; role etcd+masters needs at least 2 CPU"},
		{CheckClock, StatusFail, "+10.0"},
		{CheckMachineID, StatusFail, "machine-id same is shared with m2"},
		{CheckHostname, StatusPass, "m1"},
		{CheckVIPFree, StatusPass, "10.0.0.100 held by master m2"},
	}
	for _, w := range rows {
		r := got[w.check]
		if r.Status != w.status || !strings.HasPrefix(r.Reason, w.prefix) {
			t.Errorf("%s = %s %q, want %s %q...", w.check, r.Status, r.Reason, w.status, w.prefix)
		}
	}
	// The step form fails the host and names every failing check.
	tg.Shared = engine.NewSharedData()
	tg.Shared.Set(PeersSharedKey, &PeerInfo{Facts: facts, Now: skewed})
	_, err := Preflight{}.Plan(context.Background(), tg)
	if err == nil || !strings.Contains(err.Error(), "preflight failed on m1: ") || !strings.Contains(err.Error(), "unique-machine-id: machine-id same is shared with m2") || !strings.Contains(err.Error(), "resources: ") {
		t.Fatalf("step error = %v", err)
	}
}
