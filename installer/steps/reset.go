package steps

import (
	"context"
	"fmt"
	"strings"

	"github.com/kubewright/kubewright/installer/engine"
	"github.com/kubewright/kubewright/installer/render"
	"github.com/kubewright/kubewright/installer/steps/stepkit"
)

// Reset is the `reset` step: it stops and removes everything kubewright
// put on the host — its systemd units, binaries, configuration, certificates,
// data directories (etcd's included), pods and their mounts, CNI interfaces
// and configuration, kube-proxy's and the CNI plugins' iptables and IPVS
// rules — so the host is as before install, but for OS packages
// (containerd, haproxy, keepalived, socat, ...) which stay installed,
// stopped and disabled where kubewright enabled them. It is what
// `kubewright reset` runs; there is no undo.
//
// Plan lists what is there (one remote command); Apply tears it down in
// dependency order (agent first, so it repairs nothing; pods before the
// runtime; mounts before the directories under them) and then lists again,
// failing with whatever is left.
type Reset struct{}

// Name implements engine.Step.
func (Reset) Name() string { return "reset" }

// resetUnits are stopped in this order: the agent first, so it does not
// restart what reset stops; etcd last, after everything that talks to it.
var resetUnits = []string{
	"kubewright-agent.service", render.EtcdBackupTimer, render.EtcdBackupService,
	"kubelet.service", "kube-proxy.service",
	"kube-scheduler.service", "kube-controller-manager.service", "kube-apiserver.service",
	"keepalived.service", "haproxy.service", "etcd.service",
}

// resetUnitFiles are the units kubewright wrote (haproxy, keepalived and
// containerd come from OS packages and keep their unit files).
var resetUnitFiles = []string{
	"kubewright-agent.service", render.EtcdBackupTimer, render.EtcdBackupService,
	"kubelet.service", "kube-proxy.service", "kube-scheduler.service",
	"kube-controller-manager.service", "kube-apiserver.service", "etcd.service",
}

// resetPaths are kubewright's files and directories (globs allowed).
var resetPaths = []string{
	render.KubernetesDir, render.EtcdDataDir, render.EtcdDataDir + ".before-restore-*",
	"/var/lib/kubelet", "/var/lib/kube-proxy", "/var/lib/kubewright", "/var/lib/kubewright-agent",
	"/etc/kubewright", "/usr/local/lib/kubewright", "/var/backups/kubewright", "/var/log/kubernetes",
	render.KeepalivedConf, render.KeepalivedCheck, render.HAProxyConf,
	stepkit.SysctlFile, stepkit.ModulesFile, "/etc/crictl.yaml",
	// CNI: configs and state written by the network add-ons and the
	// plugins they install next to the distro's.
	"/etc/cni/net.d/10-flannel.conflist", "/etc/cni/net.d/10-calico.conflist", "/etc/cni/net.d/calico-kubeconfig",
	"/etc/cni/net.d/10-weave.conflist", "/var/lib/cni", "/run/flannel", "/var/lib/calico", "/var/run/calico",
	"/var/log/calico", "/var/lib/weave",
}

// resetBinaries are what the binaries, node-binaries and agent steps put in
// /usr/local/bin.
var resetBinaries = []string{
	"etcd", "etcdctl", "etcdutl", "kube-apiserver", "kube-controller-manager", "kube-scheduler",
	"kubectl", "kubelet", "kube-proxy", "crictl", "kubewright-agent",
}

// cniPlugins are the plugins the network add-ons copy into the CNI bin dir.
var cniPlugins = []string{"flannel", "calico", "calico-ipam", "weave-net", "weave-ipam", "weave-plugin-latest"}

// resetLinks are interfaces kube-proxy and the CNI plugins create; pod veths
// go with their network namespaces.
var resetLinks = []string{"cni0", "flannel.1", "tunl0", "vxlan.calico", "weave", "datapath", "vethwe-datapath", "vethwe-bridge", "kube-ipvs0", "nodelocaldns"}

// iptablesPattern matches the chains and rules kube-proxy and the CNI
// plugins own, in iptables-save output.
const iptablesPattern = `KUBE-|CNI-|FLANNEL|cali-|cali:|WEAVE`

// resetPathList is every path reset removes, with the host root applied.
func resetPathList(t *engine.Target) []string {
	var out []string
	for _, p := range resetPaths {
		out = append(out, stepkit.HostPath(t, p))
	}
	for _, u := range resetUnitFiles {
		out = append(out, stepkit.HostPath(t, render.SystemdDir+"/"+u))
	}
	for _, b := range resetBinaries {
		out = append(out, stepkit.HostPath(t, render.BinDir+"/"+b))
	}
	for _, dir := range []string{render.CNIBinDirDebian, "/opt/cni/bin"} {
		for _, p := range cniPlugins {
			out = append(out, stepkit.HostPath(t, dir+"/"+p))
		}
	}
	return out
}

// probeScript prints one line per thing reset would remove:
// "path P", "unit U", "link L", "mount M", "iptables N", "ipvs N",
// "containerd-config P", "pods N".
func probeScript(t *engine.Target) string {
	var b strings.Builder
	b.WriteString("for p in")
	for _, p := range resetPathList(t) {
		b.WriteString(" " + p) // globs must expand: paths are kubewright's constants, no spaces
	}
	b.WriteString(`; do [ -e "$p" ] || [ -L "$p" ] && echo "path $p"; done` + "\n")
	b.WriteString("for u in " + strings.Join(resetUnits, " ") + `; do s=$(systemctl is-active "$u" 2>/dev/null); e=$(systemctl is-enabled "$u" 2>/dev/null); ` +
		`case "$s" in active|activating|reloading|deactivating) echo "unit $u $s"; continue;; esac; ` +
		`case "$e" in enabled*) echo "unit $u $e";; esac; done` + "\n")
	b.WriteString("for l in " + strings.Join(resetLinks, " ") + `; do ip link show "$l" >/dev/null 2>&1 && echo "link $l"; done` + "\n")
	b.WriteString(`ip -o link show 2>/dev/null | awk -F': ' '{sub(/@.*/, "", $2); if ($2 ~ /^(cali|vxlan-v6)/) print "link " $2}'` + "\n")
	b.WriteString(`awk '$2 ~ "^(/var/lib/kubelet/|/run/containerd/|/run/netns/cni-)" {print "mount " $2}' /proc/mounts` + "\n")
	b.WriteString(`for ipt in iptables ip6tables; do command -v $ipt-save >/dev/null || continue; n=$($ipt-save 2>/dev/null | grep -cE '` + iptablesPattern + `'); [ "$n" -gt 0 ] && echo "iptables $ipt $n"; done` + "\n")
	b.WriteString(`command -v ipvsadm >/dev/null && ip link show kube-ipvs0 >/dev/null 2>&1 && echo "ipvs kube-ipvs0"` + "\n")
	c := stepkit.HostPath(t, render.ContainerdConfig)
	b.WriteString(`grep -qs '` + render.ManagedMarker + `' ` + c + ` && echo "containerd-config ` + c + `"` + "\n")
	b.WriteString(`if command -v crictl >/dev/null && [ -S /run/containerd/containerd.sock ]; then n=$(crictl --runtime-endpoint unix:///run/containerd/containerd.sock pods -q 2>/dev/null | wc -l); [ "$n" -gt 0 ] && echo "pods $n"; fi` + "\n")
	b.WriteString("true\n")
	return b.String()
}

func parseProbe(out string) []engine.Change {
	var changes []engine.Change
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		kind, rest, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok {
			continue
		}
		obj, detail, _ := strings.Cut(rest, " ")
		c := engine.Change{Action: "remove", Object: obj, Detail: detail}
		switch kind {
		case "unit":
			c.Action = "stop and disable"
		case "mount":
			c.Action = "unmount"
		case "iptables":
			c.Action, c.Detail = "flush kubernetes rules", detail+" rules"
		case "ipvs":
			c.Action, c.Object = "clear", "ipvs services"
		case "pods":
			c.Action, c.Object, c.Detail = "remove", "pods", rest+" pod sandboxes"
		case "path", "link", "containerd-config":
		default:
			continue
		}
		changes = append(changes, c)
	}
	return changes
}

// Plan implements engine.Step.
func (Reset) Plan(ctx context.Context, t *engine.Target) ([]engine.Change, error) {
	out, err := stepkit.RunAsRoot(ctx, t, probeScript(t))
	if err != nil {
		return nil, fmt.Errorf("list what kubewright installed on %s: %w", t.Inv.Name, err)
	}
	return parseProbe(out), nil
}

// teardownScript removes everything, each part best effort: one thing that
// cannot go must not leave the rest in place. Apply checks afterwards.
func teardownScript(t *engine.Target) string {
	sock := "unix:///run/containerd/containerd.sock"
	lines := []string{
		"for u in " + strings.Join(resetUnits, " ") + `; do systemctl disable --now "$u" >/dev/null 2>&1 || true; done`,
		// Pods before the runtime: their mounts and network namespaces go with them.
		`if command -v crictl >/dev/null && [ -S /run/containerd/containerd.sock ]; then crictl --runtime-endpoint ` + sock + ` rmp -fa >/dev/null 2>&1 || true; fi`,
		`if command -v ctr >/dev/null && [ -S /run/containerd/containerd.sock ]; then ctr -n k8s.io images ls -q 2>/dev/null | xargs -r ctr -n k8s.io images rm >/dev/null 2>&1 || true; fi`,
		`systemctl disable --now containerd.service >/dev/null 2>&1 || true`,
		`awk '$2 ~ "^(/var/lib/kubelet/|/run/containerd/|/run/netns/cni-)" {print $2}' /proc/mounts | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done`,
		`for n in $(ip netns list 2>/dev/null | awk '$1 ~ /^cni-/ {print $1}'); do ip netns delete "$n" 2>/dev/null || true; done`,
		"for l in " + strings.Join(resetLinks, " ") + `; do ip link delete "$l" 2>/dev/null || true; done`,
		`for l in $(ip -o link show 2>/dev/null | awk -F': ' '{sub(/@.*/, "", $2); if ($2 ~ /^(cali|vxlan-v6)/) print $2}'); do ip link delete "$l" 2>/dev/null || true; done`,
		`for ipt in iptables ip6tables; do command -v $ipt-save >/dev/null || continue; $ipt-save 2>/dev/null | grep -vE '` + iptablesPattern + `' | $ipt-restore 2>/dev/null || true; done`,
		`command -v ipvsadm >/dev/null && ipvsadm --clear 2>/dev/null || true`,
		`grep -qs '` + render.ManagedMarker + `' ` + stepkit.HostPath(t, render.ContainerdConfig) + ` && rm -f ` + stepkit.HostPath(t, render.ContainerdConfig),
		"rm -rf " + strings.Join(resetPathList(t), " "),
		"systemctl daemon-reload >/dev/null 2>&1 || true",
		"true",
	}
	return strings.Join(lines, "\n")
}

// Apply implements engine.Step.
func (Reset) Apply(ctx context.Context, t *engine.Target, _ []engine.Change) error {
	if out, err := stepkit.RunAsRoot(ctx, t, teardownScript(t)+" 2>&1"); err != nil {
		return fmt.Errorf("reset %s: %w (%s)", t.Inv.Name, err, strings.TrimSpace(out))
	}
	out, err := stepkit.RunAsRoot(ctx, t, probeScript(t))
	if err != nil {
		return fmt.Errorf("list what is left on %s: %w", t.Inv.Name, err)
	}
	if left := parseProbe(out); len(left) > 0 {
		var items []string
		for _, c := range left {
			items = append(items, c.String())
		}
		return fmt.Errorf("reset %s left %d things behind (remove them by hand or re-run reset): %s", t.Inv.Name, len(left), strings.Join(items, "; "))
	}
	return nil
}
