package engine

import (
	"bufio"
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/kubewright/kubewright/installer/remote"
)

// FactsScript prints everything Facts needs in one remote command, section by
// section, because every round trip costs (see BENCH.md: remote execs dominate
// a run). Each probe tolerates a missing tool so one gap does not lose the rest.
const FactsScript = `LC_ALL=C; export LC_ALL
echo '@@os-release'; cat /etc/os-release 2>/dev/null || cat /usr/lib/os-release 2>/dev/null
echo '@@arch'; uname -m
echo '@@kernel'; uname -r
echo '@@nproc'; nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null
echo '@@meminfo'; cat /proc/meminfo 2>/dev/null
echo '@@hostname'; hostname 2>/dev/null || cat /proc/sys/kernel/hostname 2>/dev/null
if command -v ip >/dev/null 2>&1; then
echo '@@addr'; ip -o addr show 2>/dev/null
echo '@@link'; ip -o link show 2>/dev/null
else
echo '@@netdev'; ls -1 /sys/class/net 2>/dev/null
fi
echo '@@machine-id'; cat /etc/machine-id 2>/dev/null || cat /var/lib/dbus/machine-id 2>/dev/null
echo '@@init'; cat /proc/1/comm 2>/dev/null
echo '@@pkg'; command -v apt-get dnf yum 2>/dev/null
echo '@@date'; date +%s.%N
echo '@@end'
true`

// GatherFacts runs FactsScript on h and parses its output.
func GatherFacts(ctx context.Context, h remote.Host) (*Facts, error) {
	out, err := h.Exec(ctx, FactsScript)
	if err != nil {
		return nil, fmt.Errorf("gather facts on %s: %w", h.Name(), err)
	}
	f, err := ParseFacts(out)
	if err != nil {
		return nil, fmt.Errorf("gather facts on %s: %w", h.Name(), err)
	}
	return f, nil
}

// ParseFacts parses FactsScript output. Only a truncated output (no end
// marker) is an error; unknown or missing values stay empty so preflight can
// report them as a check result rather than as a crash.
func ParseFacts(out string) (*Facts, error) {
	sections := map[string][]string{}
	cur := ""
	ended := false
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if name, ok := strings.CutPrefix(line, "@@"); ok && !strings.ContainsAny(name, " \t") {
			cur = name
			if name == "end" {
				ended = true
			}
			continue
		}
		if cur != "" {
			sections[cur] = append(sections[cur], line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read facts output: %w", err)
	}
	if !ended {
		return nil, fmt.Errorf("facts output truncated (no @@end marker; got %d bytes)", len(out))
	}

	f := &Facts{OSFamily: "other", InitSystem: "other", PackageManager: "unknown"}
	osr := parseKeyValues(sections["os-release"])
	f.OS = osr["ID"]
	f.OSVersion = osr["VERSION_ID"]
	f.OSFamily = osFamily(f.OS, osr["ID_LIKE"])
	f.Arch = first(sections["arch"])
	f.Kernel = first(sections["kernel"])
	f.CPUs, _ = strconv.Atoi(first(sections["nproc"]))
	mem := parseMeminfo(sections["meminfo"])
	f.MemoryMiB = int(mem["MemTotal"] / 1024)
	f.SwapMiB = int(mem["SwapTotal"] / 1024)
	f.Hostname = first(sections["hostname"])
	f.Addresses = parseIPAddr(sections["addr"])
	if links, ok := sections["link"]; ok {
		f.Interfaces = parseIPLink(links)
	} else {
		f.Interfaces = nonEmpty(sections["netdev"])
	}
	f.MachineID = first(sections["machine-id"])
	if first(sections["init"]) == "systemd" {
		f.InitSystem = "systemd"
	}
	f.PackageManager = packageManager(sections["pkg"])
	f.EpochSeconds = parseEpoch(first(sections["date"]))
	return f, nil
}

func first(lines []string) string {
	for _, l := range lines {
		if s := strings.TrimSpace(l); s != "" {
			return s
		}
	}
	return ""
}

func nonEmpty(lines []string) []string {
	var out []string
	for _, l := range lines {
		if s := strings.TrimSpace(l); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func parseKeyValues(lines []string) map[string]string {
	out := map[string]string{}
	for _, l := range lines {
		k, v, ok := strings.Cut(strings.TrimSpace(l), "=")
		if !ok || strings.HasPrefix(k, "#") {
			continue
		}
		out[k] = unquote(v)
	}
	return out
}

func osFamily(id, like string) string {
	words := append([]string{id}, strings.Fields(like)...)
	for _, w := range words {
		switch w {
		case "debian", "ubuntu":
			return "debian"
		case "rhel", "centos", "fedora", "rocky", "almalinux", "ol", "amzn":
			return "rhel"
		}
	}
	return "other"
}

// parseMeminfo returns /proc/meminfo values in kB.
func parseMeminfo(lines []string) map[string]int64 {
	out := map[string]int64{}
	for _, l := range lines {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		fs := strings.Fields(v)
		if len(fs) == 0 {
			continue
		}
		n, err := strconv.ParseInt(fs[0], 10, 64)
		if err == nil {
			out[k] = n
		}
	}
	return out
}

// parseIPAddr extracts global-scope addresses from `ip -o addr show`:
//
//	2: eth0    inet 10.0.0.5/24 brd 10.0.0.255 scope global eth0\       valid_lft forever ...
func parseIPAddr(lines []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, l := range lines {
		fs := strings.Fields(l)
		if len(fs) < 4 || (fs[2] != "inet" && fs[2] != "inet6") {
			continue
		}
		scope := ""
		for i := 4; i+1 < len(fs); i++ {
			if fs[i] == "scope" {
				scope = fs[i+1]
				break
			}
		}
		if scope != "global" {
			continue
		}
		addr, _, _ := strings.Cut(fs[3], "/")
		if !seen[addr] {
			seen[addr] = true
			out = append(out, addr)
		}
	}
	return out
}

// parseIPLink extracts link names from `ip -o link show`:
//
//	3: eth0@if4: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 ...
func parseIPLink(lines []string) []string {
	var out []string
	for _, l := range lines {
		fs := strings.Fields(l)
		if len(fs) < 2 {
			continue
		}
		name := strings.TrimSuffix(fs[1], ":")
		name, _, _ = strings.Cut(name, "@")
		if name != "" {
			out = append(out, name)
		}
	}
	return out
}

func packageManager(lines []string) string {
	found := map[string]bool{}
	for _, l := range lines {
		s := strings.TrimSpace(l)
		if i := strings.LastIndexByte(s, '/'); i >= 0 {
			s = s[i+1:]
		}
		found[s] = true
	}
	order := []struct{ bin, name string }{{"apt-get", "apt"}, {"dnf", "dnf"}, {"yum", "yum"}}
	for _, o := range order {
		if found[o.bin] {
			return o.name
		}
	}
	return "unknown"
}

// parseEpoch accepts "1700000000.123456789" and busybox's "1700000000.N".
func parseEpoch(s string) float64 {
	if v, err := strconv.ParseFloat(s, 64); err == nil {
		return v
	}
	sec, _, _ := strings.Cut(s, ".")
	v, _ := strconv.ParseFloat(sec, 64)
	return v
}

// sortedKeys is used by renderers that must be deterministic.
func sortedKeys[M ~map[string]V, V any](m M) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
