package steps

import (
	"context"
	"fmt"
	"math"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/kubewright/kubewright/installer/engine"
	"github.com/kubewright/kubewright/installer/inventory"
	"github.com/kubewright/kubewright/installer/steps/stepkit"
)

// Checks in this file run one remote command each; the parsing and the
// decision are separate pure functions so tests can feed real outputs.

// firstLine keeps error messages to one table row.
func firstLine(err error) string {
	s := strings.TrimSpace(err.Error())
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

func checkSudo(ctx context.Context, t *engine.Target) verdict {
	out, err := stepkit.RunAsRoot(ctx, t, "id -u")
	if err != nil {
		return fail("cannot run commands as root: %s; allow passwordless sudo or set sudoPasswordEnv", firstLine(err))
	}
	if strings.TrimSpace(out) != "0" {
		return fail("commands run as uid %s, not root", strings.TrimSpace(out))
	}
	return pass("root works")
}

// requiredCommands are used by kubewright's steps on every host. Packages the
// packages step installs (socat, conntrack, ipset) are not listed: their
// absence is not a preflight failure.
var requiredCommands = []string{"sh", "systemctl", "ip", "mount", "tar", "sha256sum", "stat", "ss", "modprobe", "swapoff"}

// commandsScript prints "missing NAME" per absent command, and one line for
// the firewall pair where either iptables or nft is enough. It runs as root so
// /usr/sbin is on PATH even for a non-root SSH user.
func commandsScript() string {
	return `for c in ` + strings.Join(requiredCommands, " ") + `; do command -v "$c" >/dev/null 2>&1 || echo "missing $c"; done; ` +
		`command -v iptables >/dev/null 2>&1 || command -v nft >/dev/null 2>&1 || echo "missing iptables|nft"; true`
}

func decideCommands(out string) verdict {
	var missing []string
	for _, l := range strings.Split(out, "\n") {
		if c, ok := strings.CutPrefix(strings.TrimSpace(l), "missing "); ok {
			missing = append(missing, strings.ReplaceAll(c, "|", " or "))
		}
	}
	if len(missing) > 0 {
		return fail("missing: %s", strings.Join(missing, ", "))
	}
	return pass("all present")
}

func checkCommands(ctx context.Context, t *engine.Target) verdict {
	out, err := stepkit.RunAsRoot(ctx, t, commandsScript())
	if err != nil {
		return fail("cannot look up commands: %s", firstLine(err))
	}
	return decideCommands(out)
}

// requiredModules must be loadable for containerd (overlay) and for
// kube-proxy/CNI bridge traffic to pass through iptables (br_netfilter).
var requiredModules = []string{"overlay", "br_netfilter"}

// modulesScript reports per module: loaded (or visible in /sys/module, which
// is also how a container sees the host's modules), builtin, available (a
// .ko exists for the running kernel) or missing.
func modulesScript() string {
	s := `k=$(uname -r); a() { if [ -d /sys/module/"$1" ] || grep -q "^$1 " /proc/modules 2>/dev/null; then echo "$1 loaded"; ` +
		`elif grep -q "/$1\.ko" /lib/modules/"$k"/modules.builtin 2>/dev/null; then echo "$1 builtin"; ` +
		`elif modinfo "$1" >/dev/null 2>&1 || [ -n "$(find /lib/modules/"$k" -name "$1.ko*" 2>/dev/null | head -n 1)" ]; then echo "$1 available"; ` +
		`else echo "$1 missing $k"; fi; }`
	for _, m := range requiredModules {
		s += "; if " + stepkit.FeatureProbe("", m) + "; then echo " + m + " builtin; else a " + m + "; fi"
	}
	return s
}

func decideModules(out string) verdict {
	state := map[string]string{}
	kernel := ""
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 {
			state[f[0]] = f[1]
			if len(f) == 3 {
				kernel = f[2]
			}
		}
	}
	var missing, info []string
	for _, m := range requiredModules {
		switch s := state[m]; s {
		case "loaded", "builtin", "available":
			info = append(info, m+" "+s)
		default:
			missing = append(missing, m)
		}
	}
	if len(missing) > 0 {
		return fail("%s not found for kernel %s; install the kernel's modules package (e.g. linux-modules-extra-%s)", strings.Join(missing, ", "), kernel, kernel)
	}
	return pass("%s", strings.Join(info, ", "))
}

func checkModules(ctx context.Context, t *engine.Target) verdict {
	out, err := t.Host.Exec(ctx, modulesScript())
	if err != nil {
		return fail("cannot inspect kernel modules: %s", firstLine(err))
	}
	return decideModules(out)
}

// portUse is one required port and the processes allowed to hold it: our own
// component, found listening on a re-run of install.
type portUse struct {
	Port      int
	Component string // full process name; ss shows comm, cut to 15 chars
}

// requiredPorts lists the ports this host's roles will listen on.
func requiredPorts(t *engine.Target) []portUse {
	var ps []portUse
	roles := map[string]bool{}
	for _, r := range hostRoles(t) {
		roles[r] = true
	}
	apiPort := inventory.DefaultAPIServerPort
	epPort := 0
	if t.Cluster != nil {
		if p := t.Cluster.Spec.Kubernetes.APIServerPort; p != 0 {
			apiPort = p
		}
		epPort = t.Cluster.Spec.ControlPlaneEndpoint.Port
	}
	if roles[inventory.GroupMasters] {
		ps = append(ps, portUse{apiPort, "kube-apiserver"}, portUse{10257, "kube-controller-manager"}, portUse{10259, "kube-scheduler"})
		if epPort != 0 {
			ps = append(ps, portUse{epPort, "haproxy"})
		}
	}
	if roles[inventory.GroupEtcd] {
		ps = append(ps, portUse{2379, "etcd"}, portUse{2380, "etcd"})
	}
	ps = append(ps, portUse{10250, "kubelet"})
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].Port < ps[j].Port })
	return ps
}

// listener is one line of `ss -ltnpH`.
type listener struct {
	Addr      string
	Port      int
	Processes []string // empty when ss could not tell (no -p or no root)
}

// parseSS reads `ss -ltnH` / `ss -ltnpH` output, e.g.
//
//	LISTEN 0      4096   127.0.0.1:2379   0.0.0.0:*  users:(("etcd",pid=812,fd=7))
//	LISTEN 0      128         [::]:22        [::]:*  users:(("sshd",pid=1,fd=4))
//	LISTEN 0      4096           *:10250        *:*  users:(("kubelet",pid=9,fd=20))
func parseSS(out string) []listener {
	var ls []listener
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) < 4 {
			continue
		}
		// With -H there is no header; State may be missing when -l filters
		// (older ss prints it), so find the first field that looks like addr:port.
		idx := -1
		for i := 0; i < len(f); i++ {
			if _, _, ok := splitAddrPort(f[i]); ok && i >= 1 {
				idx = i
				break
			}
		}
		if idx < 0 {
			continue
		}
		addr, port, _ := splitAddrPort(f[idx])
		lst := listener{Addr: addr, Port: port}
		for _, x := range f[idx+1:] {
			if strings.HasPrefix(x, "users:") {
				lst.Processes = parseUsers(x)
			}
		}
		ls = append(ls, lst)
	}
	return ls
}

func splitAddrPort(s string) (string, int, bool) {
	i := strings.LastIndexByte(s, ':')
	if i <= 0 {
		return "", 0, false
	}
	p, err := strconv.Atoi(s[i+1:])
	if err != nil || p <= 0 || p > 65535 {
		return "", 0, false
	}
	return s[:i], p, true
}

// parseUsers reads users:(("etcd",pid=812,fd=7),("etcd",pid=812,fd=8)).
func parseUsers(s string) []string {
	var names []string
	seen := map[string]bool{}
	for _, part := range strings.Split(s, `("`)[1:] {
		name, _, ok := strings.Cut(part, `"`)
		if ok && !seen[name] {
			seen[name] = true
			names = append(names, name)
		}
	}
	return names
}

// ours reports whether a process name (comm, at most 15 chars) is component.
func ours(comm, component string) bool {
	return comm == component || len(comm) == 15 && strings.HasPrefix(component, comm)
}

func decidePorts(ls []listener, want []portUse) verdict {
	var busy, reused []string
	for _, w := range want {
		var procs []string
		found := false
		for _, l := range ls {
			if l.Port != w.Port {
				continue
			}
			found = true
			procs = append(procs, l.Processes...)
		}
		if !found {
			continue
		}
		foreign := ""
		for _, p := range procs {
			if !ours(p, w.Component) {
				foreign = p
				break
			}
		}
		switch {
		case len(procs) == 0:
			busy = append(busy, fmt.Sprintf("%d (%s's) in use by an unknown process", w.Port, w.Component))
		case foreign != "":
			busy = append(busy, fmt.Sprintf("%d (%s's) in use by %s", w.Port, w.Component, foreign))
		default:
			reused = append(reused, fmt.Sprintf("%d", w.Port))
		}
	}
	ports := make([]string, len(want))
	for i, w := range want {
		ports[i] = strconv.Itoa(w.Port)
	}
	if len(busy) > 0 {
		return fail("%s", strings.Join(busy, "; "))
	}
	if len(reused) > 0 {
		return pass("%s free or held by kubewright's own components (%s)", strings.Join(ports, ","), strings.Join(reused, ","))
	}
	return pass("%s free", strings.Join(ports, ","))
}

func checkPorts(ctx context.Context, t *engine.Target) verdict {
	out, err := stepkit.RunAsRoot(ctx, t, "ss -ltnpH 2>/dev/null || ss -ltnH")
	if err != nil {
		return fail("cannot list listening ports (ss): %s", firstLine(err))
	}
	return decidePorts(parseSS(out), requiredPorts(t))
}

// clockSample is one remote clock reading taken between two local ones.
type clockSample struct {
	before, after time.Time
	remote        float64 // seconds since the epoch
}

// decideClock compares the remote clock with the midpoint of the local
// readings; half the round trip is the measurement's uncertainty, so a skew
// fails only when it is certainly over the limit.
func decideClock(s clockSample, maxSkew time.Duration) verdict {
	rtt := s.after.Sub(s.before)
	mid := float64(s.before.UnixNano())/1e9 + rtt.Seconds()/2
	skew := s.remote - mid
	unc := rtt.Seconds() / 2
	limit := maxSkew.Seconds()
	desc := fmt.Sprintf("%+.3fs vs operator (±%.3fs)", skew, unc)
	switch abs := math.Abs(skew); {
	case abs-unc > limit:
		return fail("%s, over the %gs limit; enable NTP (chrony or systemd-timesyncd)", desc, limit)
	case abs+unc > limit:
		return warn("%s: may exceed the %gs limit (slow connection)", desc, limit)
	case abs > limit/2:
		return warn("%s: close to the %gs limit; enable NTP", desc, limit)
	}
	return pass("%s", desc)
}

func checkClock(ctx context.Context, t *engine.Target, peers PeerInfo) verdict {
	now := peers.Now
	if now == nil {
		now = time.Now
	}
	maxSkew := peers.MaxClockSkew
	if maxSkew <= 0 {
		maxSkew = DefaultMaxClockSkew
	}
	before := now()
	out, err := t.Host.Exec(ctx, "date +%s.%N")
	after := now()
	if err != nil {
		return fail("cannot read the clock: %s", firstLine(err))
	}
	s := strings.TrimSpace(out)
	remote, perr := strconv.ParseFloat(s, 64)
	if perr != nil {
		// busybox date prints a literal N: whole seconds only.
		sec, _, _ := strings.Cut(s, ".")
		v, err := strconv.ParseFloat(sec, 64)
		if err != nil {
			return fail("cannot parse remote time %q", s)
		}
		remote = v + 0.5
		after = after.Add(time.Second) // widen the uncertainty by the lost fraction
	}
	return decideClock(clockSample{before: before, after: after, remote: remote}, maxSkew)
}

// vipHolder finds which inventory host has the VIP on an interface.
func vipHolder(vip netip.Addr, facts map[string]*engine.Facts) string {
	names := make([]string, 0, len(facts))
	for n := range facts {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		f := facts[n]
		if f == nil {
			continue
		}
		for _, a := range f.Addresses {
			if x, err := netip.ParseAddr(a); err == nil && x.Unmap() == vip {
				return n
			}
		}
	}
	return ""
}

// vipProbeScript asks from the host whether anything answers at the VIP:
// a TCP connect (bash's /dev/tcp; "refused" still means a machine answered),
// a ping, then the ARP/ND cache those attempts filled.
func vipProbeScript(vip string, port int) string {
	q := stepkit.Quote(vip)
	return fmt.Sprintf(`if command -v bash >/dev/null 2>&1 && command -v timeout >/dev/null 2>&1; then r=$(timeout 1 bash -c 'exec 3<>/dev/tcp/%[1]s/%[2]d' 2>&1); echo "tcp $? $(printf '%%s' "$r" | head -n 1)"; else echo "tcp unavailable"; fi; `+
		`if command -v ping >/dev/null 2>&1; then if ping -c 1 -W 1 %[1]s >/dev/null 2>&1; then echo "ping reply"; else echo "ping noreply"; fi; else echo "ping unavailable"; fi; `+
		`ip neigh show to %[1]s 2>/dev/null | sed 's/^/neigh /'; true`, q, port)
}

// decideVIPProbe reads vipProbeScript's output.
func decideVIPProbe(out, vip string, port int) verdict {
	var inUse, hints []string
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "tcp":
			if len(f) < 2 || f[1] == "unavailable" {
				continue
			}
			switch {
			case f[1] == "0":
				inUse = append(inUse, fmt.Sprintf("%s:%d accepts TCP connections", vip, port))
			case strings.Contains(l, "refused"):
				inUse = append(inUse, fmt.Sprintf("%s refused a TCP connection (a machine answered)", vip))
			}
		case "ping":
			if len(f) > 1 && f[1] == "reply" {
				inUse = append(inUse, vip+" answers ping")
			}
		case "neigh":
			state := f[len(f)-1]
			mac := ""
			for i := 1; i+1 < len(f); i++ {
				if f[i] == "lladdr" {
					mac = f[i+1]
				}
			}
			switch {
			case mac == "" || state == "FAILED" || state == "INCOMPLETE":
			case state == "STALE":
				hints = append(hints, fmt.Sprintf("ARP cache has a stale entry %s for %s", mac, vip))
			default:
				inUse = append(inUse, fmt.Sprintf("%s is at %s (%s in ARP/ND cache)", vip, mac, state))
			}
		}
	}
	if len(inUse) > 0 {
		return fail("%s; the VIP must be an unused address", strings.Join(inUse, "; "))
	}
	if len(hints) > 0 {
		return warn("no answer now, but %s", strings.Join(hints, "; "))
	}
	return pass("no answer from %s (TCP %d, ping, ARP)", vip, port)
}

func checkVIPFree(ctx context.Context, t *engine.Target, facts map[string]*engine.Facts) verdict {
	if t.Cluster == nil || t.Cluster.Spec.ControlPlaneEndpoint.VIP == "" {
		return skip("no VIP configured")
	}
	ep := t.Cluster.Spec.ControlPlaneEndpoint
	vip, err := netip.ParseAddr(ep.VIP)
	if err != nil {
		return fail("VIP %q is not an IP address", ep.VIP)
	}
	vip = vip.Unmap()
	known := facts
	if known == nil && t.Facts != nil {
		known = map[string]*engine.Facts{t.Host.Name(): t.Facts}
	}
	if h := vipHolder(vip, known); h != "" {
		hi := (*inventory.Host)(nil)
		if t.Cluster != nil {
			hi = t.Cluster.Host(h)
		}
		if hi != nil && hi.IsIn(inventory.GroupMasters) {
			return pass("%s held by master %s (kubewright's keepalived)", vip, h)
		}
		return fail("%s is configured on %s, which is not a master", vip, h)
	}
	out, err := t.Host.Exec(ctx, vipProbeScript(vip.String(), ep.Port))
	if err != nil {
		return fail("cannot probe the VIP: %s", firstLine(err))
	}
	v := decideVIPProbe(out, vip.String(), ep.Port)
	if v.status == StatusFail && facts == nil {
		// Without the other masters' facts a VIP held by our own keepalived
		// (a re-run) cannot be told from a stranger.
		return warn("%s (if one of this cluster's masters holds it, this is a re-run and fine; `kubewright check` can tell)", v.reason)
	}
	return v
}
