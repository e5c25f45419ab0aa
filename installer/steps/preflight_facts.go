package steps

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/kubewright/kubewright/installer/engine"
	"github.com/kubewright/kubewright/installer/inventory"
)

// Checks in this file decide from facts alone (no remote command), so they
// are plain functions with table tests.

// minOSVersion is the oldest release per distribution kubewright is tested
// on; older releases of a supported family warn instead of failing because
// they often work but ship kernels and systemd versions we do not test.
var minOSVersion = map[string]float64{
	"debian": 11, "ubuntu": 20.04,
	"rhel": 8, "centos": 8, "rocky": 8, "almalinux": 8, "ol": 8,
}

func checkOS(f *engine.Facts) verdict {
	desc := strings.TrimSpace(f.OS + " " + f.OSVersion)
	if desc == "" {
		desc = "unknown"
	}
	if f.OSFamily != "debian" && f.OSFamily != "rhel" {
		return fail("%s is not supported: use Debian/Ubuntu or the RHEL family (RHEL, Rocky, AlmaLinux, CentOS Stream, Oracle Linux)", desc)
	}
	min, known := minOSVersion[f.OS]
	if !known {
		return warn("%s is in the %s family but not tested", desc, f.OSFamily)
	}
	v, err := strconv.ParseFloat(majorMinor(f.OSVersion), 64)
	if err != nil {
		return warn("%s: cannot read the version; tested from %s %g on", desc, f.OS, min)
	}
	if v < min {
		return warn("%s is older than the oldest tested release (%s %g)", desc, f.OS, min)
	}
	return pass("%s", desc)
}

// majorMinor keeps "22.04" from "22.04.3" and "9" from "9.3" → "9.3".
func majorMinor(v string) string {
	parts := strings.SplitN(v, ".", 3)
	if len(parts) >= 2 {
		return parts[0] + "." + parts[1]
	}
	return v
}

// Kernel thresholds. 4.19 is the oldest LTS kernel Kubernetes still supports
// (kubeadm's system verification rejects older ones); 5.8 is where cgroup v2
// has everything kubelet needs (the memory.high and cpu pressure files), so
// 4.19–5.7 works only on cgroup v1 and warns.
var (
	kernelMinimum     = [2]int{4, 19}
	kernelRecommended = [2]int{5, 8}
)

// parseKernel reads "6.18.44-fc-v857" or "4.19.0-25-amd64" as {6,18}.
func parseKernel(release string) ([2]int, bool) {
	var v [2]int
	parts := strings.SplitN(release, ".", 3)
	if len(parts) < 2 {
		return v, false
	}
	for i := 0; i < 2; i++ {
		digits := parts[i]
		if j := strings.IndexFunc(digits, func(r rune) bool { return r < '0' || r > '9' }); j >= 0 {
			digits = digits[:j]
		}
		n, err := strconv.Atoi(digits)
		if err != nil {
			return v, false
		}
		v[i] = n
	}
	return v, true
}

func kernelLess(a, b [2]int) bool { return a[0] < b[0] || a[0] == b[0] && a[1] < b[1] }

func checkKernel(release string) verdict {
	v, ok := parseKernel(release)
	switch {
	case !ok:
		return fail("cannot read kernel release %q", release)
	case kernelLess(v, kernelMinimum):
		return fail("kernel %s is older than %d.%d, the oldest Kubernetes supports", release, kernelMinimum[0], kernelMinimum[1])
	case kernelLess(v, kernelRecommended):
		return warn("kernel %s works with cgroup v1 only; %d.%d or newer is recommended", release, kernelRecommended[0], kernelRecommended[1])
	}
	return pass("%s", release)
}

func checkSwap(swapMiB int) verdict {
	if swapMiB > 0 {
		return warn("%d MiB of swap is on; the swap-off step turns it off (kubelet refuses to start with swap by default)", swapMiB)
	}
	return pass("off")
}

// roleMinimums are per-role resource floors. The hard minimums are kubeadm's
// (a control-plane node needs 2 CPUs and 1700 MiB: etcd, apiserver,
// controller-manager and scheduler do not fit in less); below them the
// install would fail or the node would be OOM-killed. Below the recommended
// values the cluster works but has no headroom for workloads or add-ons.
type resourceFloor struct {
	minCPU, minMiB int // fail below
	recCPU, recMiB int // warn below
}

var roleMinimums = map[string]resourceFloor{
	inventory.GroupMasters: {minCPU: 2, minMiB: 1700, recCPU: 4, recMiB: 3800},
	inventory.GroupEtcd:    {minCPU: 1, minMiB: 1000, recCPU: 2, recMiB: 1800},
	inventory.GroupWorkers: {minCPU: 1, minMiB: 700, recCPU: 2, recMiB: 1800},
}

// floorFor combines the floors of every role a host has: a master that is
// also a worker needs what the stricter role needs.
func floorFor(roles []string) (resourceFloor, []string) {
	var fl resourceFloor
	var used []string
	for _, r := range roles {
		m, ok := roleMinimums[r]
		if !ok {
			continue
		}
		used = append(used, r)
		fl.minCPU, fl.minMiB = max(fl.minCPU, m.minCPU), max(fl.minMiB, m.minMiB)
		fl.recCPU, fl.recMiB = max(fl.recCPU, m.recCPU), max(fl.recMiB, m.recMiB)
	}
	if len(used) == 0 {
		fl = roleMinimums[inventory.GroupWorkers]
		used = []string{"host"}
	}
	return fl, used
}

func checkResources(f *engine.Facts, roles []string) verdict {
	fl, used := floorFor(roles)
	have := fmt.Sprintf("%d CPU, %d MiB", f.CPUs, f.MemoryMiB)
	role := strings.Join(used, "+")
	switch {
	case f.CPUs < fl.minCPU || f.MemoryMiB < fl.minMiB:
		return fail("%s; role %s needs at least %d CPU and %d MiB", have, role, fl.minCPU, fl.minMiB)
	case f.CPUs < fl.recCPU || f.MemoryMiB < fl.recMiB:
		return warn("%s; %d CPU and %d MiB recommended for role %s", have, fl.recCPU, fl.recMiB, role)
	}
	return pass("%s", have)
}

func hostRoles(t *engine.Target) []string {
	if t.Inv == nil {
		return nil
	}
	return t.Inv.Groups
}

func isMaster(t *engine.Target) bool {
	return t.Inv != nil && slices.Contains(t.Inv.Groups, inventory.GroupMasters)
}

func checkVIPInterface(t *engine.Target, f *engine.Facts) verdict {
	if t.Cluster == nil {
		return skip("no cluster settings")
	}
	iface := t.Cluster.Spec.ControlPlaneEndpoint.Interface
	if iface == "" {
		return skip("no VIP interface configured")
	}
	if slices.Contains(f.Interfaces, iface) {
		return pass("%s present", iface)
	}
	have := append([]string(nil), f.Interfaces...)
	sort.Strings(have)
	return fail("interface %s not found (host has: %s); set controlPlaneEndpoint.interface", iface, strings.Join(have, ", "))
}

// othersWith lists the other hosts whose value equals this host's value.
func othersWith(self string, facts map[string]*engine.Facts, value func(*engine.Facts) string) []string {
	me := facts[self]
	if me == nil {
		return nil
	}
	mine := value(me)
	var dup []string
	for name, f := range facts {
		if name != self && f != nil && mine != "" && value(f) == mine {
			dup = append(dup, name)
		}
	}
	sort.Strings(dup)
	return dup
}

const needsAllFacts = "needs the facts of every host: run `kubewright check`"

func checkUniqueHostname(t *engine.Target, facts map[string]*engine.Facts) verdict {
	if facts == nil {
		return skip(needsAllFacts)
	}
	self := t.Host.Name()
	f := facts[self]
	if f == nil || f.Hostname == "" {
		return fail("hostname unknown")
	}
	dup := othersWith(self, facts, func(f *engine.Facts) string { return strings.ToLower(f.Hostname) })
	if len(dup) > 0 {
		return fail("hostname %q is also the hostname of %s; node names must be unique", f.Hostname, strings.Join(dup, ", "))
	}
	return pass("%s", f.Hostname)
}

func checkUniqueMachineID(t *engine.Target, facts map[string]*engine.Facts) verdict {
	if facts == nil {
		return skip(needsAllFacts)
	}
	self := t.Host.Name()
	f := facts[self]
	if f == nil || f.MachineID == "" {
		return fail("no /etc/machine-id; run systemd-machine-id-setup")
	}
	dup := othersWith(self, facts, func(f *engine.Facts) string { return f.MachineID })
	if len(dup) > 0 {
		return fail("machine-id %s is shared with %s (cloned image?); regenerate: rm /etc/machine-id && systemd-machine-id-setup", f.MachineID, strings.Join(dup, ", "))
	}
	return pass("%s", f.MachineID)
}

// checkAddress verifies the inventory's internal address belongs to this host
// and to no other: components advertise it, so a duplicate splits traffic and
// a missing one means kubelet would register with the wrong IP. Only the
// inventory address is compared, because unrelated addresses (a NAT interface
// every Vagrant VM has as 10.0.2.15) are legitimately shared.
func checkAddress(t *engine.Target, facts map[string]*engine.Facts) verdict {
	if t.Inv == nil || t.Inv.InternalAddress == "" {
		return skip("no internal address in the inventory")
	}
	want, err := netip.ParseAddr(t.Inv.InternalAddress)
	if err != nil {
		return fail("internal address %q is not an IP", t.Inv.InternalAddress)
	}
	want = want.Unmap()
	self := t.Host.Name()
	has := func(f *engine.Facts) bool {
		for _, a := range f.Addresses {
			if x, err := netip.ParseAddr(a); err == nil && x.Unmap() == want {
				return true
			}
		}
		return false
	}
	var others []string
	for name, f := range facts {
		if name != self && f != nil && has(f) {
			others = append(others, name)
		}
	}
	sort.Strings(others)
	if len(others) > 0 {
		return fail("%s is also configured on %s", want, strings.Join(others, ", "))
	}
	me := t.Facts
	if facts != nil && facts[self] != nil {
		me = facts[self]
	}
	switch {
	case want.IsLoopback():
		// Every 127/8 address routes to lo without being listed on it.
		return pass("%s (loopback)", want)
	case me == nil:
		return skip("no facts for this host")
	case !has(me):
		return fail("%s is not configured on any interface of this host (has: %s)", want, strings.Join(me.Addresses, ", "))
	}
	if facts == nil {
		return pass("%s on this host (other hosts not compared: no facts for them)", want)
	}
	return pass("%s", want)
}
