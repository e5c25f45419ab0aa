package steps

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubewright/kubewright/installer/engine"
	"github.com/kubewright/kubewright/installer/render"
	"github.com/kubewright/kubewright/installer/steps/stepkit/stepkittest"
)

// resetHost is a target under a temp root whose systemd, ip, iptables,
// crictl and umount are stand-ins over files in $ROOT (PATH holds nothing
// else that could touch the machine running the test).
func resetHost(t *testing.T) (*engine.Target, string) {
	t.Helper()
	tg, h, root := stepkittest.NewTarget(t, "w1", nil)
	tg.Inv = &clusterWith(nil).Spec.Hosts[2]
	log := `echo "$(basename "$0") $*" >> "$ROOT/calls"`
	stepkittest.FakeTool(t, root, "systemctl", log+`
case "$1" in
is-active) grep -qx "$2" "$ROOT/active" 2>/dev/null && echo active || echo inactive ;;
is-enabled) grep -qx "$2" "$ROOT/enabled" 2>/dev/null && echo enabled || echo disabled ;;
disable) for f in active enabled; do grep -vx "$3" "$ROOT/$f" > "$ROOT/$f.new"; mv "$ROOT/$f.new" "$ROOT/$f"; done ;;
esac`)
	stepkittest.FakeTool(t, root, "ip", log+`
case "$1 $2" in
"link show") [ -e "$ROOT/links/$3" ] ;;
"link delete") [ -e "$ROOT/links/sticky-$3" ] || rm -f "$ROOT/links/$3" ;;
"-o link") for l in "$ROOT"/links/*; do [ -e "$l" ] && echo "9: $(basename "$l"): <UP> mtu 1500"; done ;;
esac`)
	stepkittest.FakeTool(t, root, "iptables-save", `cat "$ROOT/iptables"`)
	// iptables-save reads the file iptables-restore rewrites in the same
	// pipe: the new rules go to a temporary file first.
	stepkittest.FakeTool(t, root, "iptables-restore", log+`
cat > "$ROOT/iptables.new" && mv "$ROOT/iptables.new" "$ROOT/iptables"`)
	// Everything else reset may call that could be installed on the test
	// machine is a logging stand-in, so the test never touches this host.
	for _, tool := range []string{"umount", "ctr", "crictl", "ipvsadm", "ip6tables-save", "ip6tables-restore"} {
		stepkittest.FakeTool(t, root, tool, log)
	}
	h.Env = []string{"PATH=" + filepath.Join(root, "bin") + ":/usr/bin:/bin", "ROOT=" + root}

	for _, p := range []string{"/etc/kubernetes/admin.conf", "/etc/kubernetes/pki/ca.key", "/usr/local/bin/kubelet",
		"/etc/systemd/system/kubelet.service", "/var/lib/kubelet/config.yaml", "/usr/lib/cni/flannel", "/etc/cni/net.d/10-flannel.conflist",
		"/var/lib/etcd.before-restore-20261202T000000Z/member/x", "/links/cni0", "/links/flannel.1", "/links/cali12345"} {
		stepkittest.WriteFile(t, root, p, "x", 0o600)
	}
	stepkittest.WriteFile(t, root, render.ContainerdConfig, render.ManagedMarker+": ...\nversion = 2\n", 0o644)
	stepkittest.WriteFile(t, root, "/usr/lib/cni/bridge", "distro plugin", 0o755)
	stepkittest.WriteFile(t, root, "/active", "kubewright-agent.service\nkubelet.service\n", 0o644)
	stepkittest.WriteFile(t, root, "/enabled", "kubewright-agent.service\nkubelet.service\nhaproxy.service\n", 0o644)
	stepkittest.WriteFile(t, root, "/iptables", "*nat\n:PREROUTING ACCEPT [0:0]\n:KUBE-SERVICES - [0:0]\n-A PREROUTING -j KUBE-SERVICES\n-A POSTROUTING -s 10.0.0.0/8 -j MASQUERADE\n-A FLANNEL-POSTRTG -j RETURN\nCOMMIT\n", 0o644)
	return tg, root
}

func TestResetRemovesWhatKubewrightInstalled(t *testing.T) {
	tg, root := resetHost(t)
	ctx := context.Background()
	plan, err := Reset{}.Plan(ctx, tg)
	if err != nil {
		t.Fatal(err)
	}
	got := objects(plan)
	for _, want := range []string{
		"remove " + filepath.Join(root, "/etc/kubernetes"),
		"remove " + filepath.Join(root, "/usr/local/bin/kubelet"),
		"remove " + filepath.Join(root, "/var/lib/etcd.before-restore-20261202T000000Z"),
		"remove " + filepath.Join(root, "/usr/lib/cni/flannel"),
		"stop and disable kubelet.service", "stop and disable kubewright-agent.service", "stop and disable haproxy.service",
		"remove cni0", "remove flannel.1", "remove cali12345",
		"flush kubernetes rules iptables",
		"remove " + filepath.Join(root, render.ContainerdConfig),
	} {
		if !strings.Contains(got, want) {
			t.Errorf("plan lacks %q:\n%s", want, strings.ReplaceAll(got, ", ", "\n"))
		}
	}
	if strings.Contains(got, "/usr/lib/cni/bridge") {
		t.Error("plan removes the distro's CNI plugin")
	}

	if err := (Reset{}).Apply(ctx, tg, plan); err != nil {
		t.Fatal(err)
	}
	if plan, err := (Reset{}).Plan(ctx, tg); err != nil || len(plan) != 0 {
		t.Fatalf("after reset the plan is %q (%v), want nothing left", objects(plan), err)
	}
	calls, _ := stepkittest.ReadFile(t, root, "/calls")
	if a, k := strings.Index(calls, "disable --now kubewright-agent.service"), strings.Index(calls, "disable --now kubelet.service"); a < 0 || k < 0 || a > k {
		t.Errorf("the agent was not stopped first:\n%s", calls)
	}
	rules, _ := stepkittest.ReadFile(t, root, "/iptables")
	if strings.Contains(rules, "KUBE-") || strings.Contains(rules, "FLANNEL") || !strings.Contains(rules, "MASQUERADE") || !strings.Contains(rules, "COMMIT") {
		t.Errorf("iptables after reset (only kubernetes' rules should go):\n%s", rules)
	}
	if _, ok := stepkittest.ReadFile(t, root, "/usr/lib/cni/bridge"); !ok {
		t.Error("reset removed the distro's CNI plugin")
	}
}

func TestResetKeepsForeignContainerdConfigAndReportsLeftovers(t *testing.T) {
	tg, root := resetHost(t)
	stepkittest.WriteFile(t, root, render.ContainerdConfig, "version = 2\n# the operator's own\n", 0o644)
	stepkittest.WriteFile(t, root, "/links/sticky-cni0", "", 0o600)
	ctx := context.Background()
	plan, err := Reset{}.Plan(ctx, tg)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(objects(plan), render.ContainerdConfig) {
		t.Error("plan removes a containerd config kubewright did not write")
	}
	err = Reset{}.Apply(ctx, tg, plan)
	if err == nil || !strings.Contains(err.Error(), "reset w1 left 1 things behind") || !strings.Contains(err.Error(), "cni0") {
		t.Fatalf("err %v, want the host and what is left", err)
	}
	if _, ok := stepkittest.ReadFile(t, root, render.ContainerdConfig); !ok {
		t.Error("foreign containerd config removed")
	}
}
