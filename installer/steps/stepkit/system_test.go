package stepkit_test

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kubewright/kubewright/installer/engine"
	"github.com/kubewright/kubewright/installer/steps/stepkit"
	"github.com/kubewright/kubewright/installer/steps/stepkit/stepkittest"
)

func TestSysctlPlanApplyIdempotent(t *testing.T) {
	ctx := context.Background()
	tg, _, root := stepkittest.NewTarget(t, "h1", nil)
	stepkittest.WriteFile(t, root, "/proc/sys/net/ipv4/ip_forward", "0\n", 0o644)
	stepkittest.WriteFile(t, root, "/proc/sys/net/ipv4/ip_local_port_range", "32768\t60999\n", 0o644)
	s := stepkit.Sysctl{Values: []stepkit.KV{
		{Key: "net.ipv4.ip_forward", Value: "1"},
		{Key: "net.ipv4.ip_local_port_range", Value: "32768 60999"},
		{Key: "net.bridge.bridge-nf-call-iptables", Value: "1"},
	}}
	plan, err := s.Plan(ctx, tg)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"create /etc/sysctl.d/99-kubewright.conf (mode 0644)",
		"set sysctl net.ipv4.ip_forward (0 -> 1)",
		"set sysctl net.bridge.bridge-nf-call-iptables (not present yet -> 1)",
	}
	if !reflect.DeepEqual(strs(plan), want) {
		t.Fatalf("plan = %q\nwant %q", strs(plan), want)
	}
	// br_netfilter not loaded: the bridge key cannot be set and the error says why.
	err = s.Apply(ctx, tg, plan)
	if err == nil || !strings.Contains(err.Error(), "set sysctl net.bridge.bridge-nf-call-iptables=1") || !strings.Contains(err.Error(), "kernel-modules step") {
		t.Fatalf("apply error = %v", err)
	}
	// The module appears (kernel-modules ran): the next run converges.
	stepkittest.WriteFile(t, root, "/proc/sys/net/bridge/bridge-nf-call-iptables", "0\n", 0o644)
	plan, err = s.Plan(ctx, tg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(ctx, tg, plan); err != nil {
		t.Fatal(err)
	}
	for p, v := range map[string]string{"/proc/sys/net/ipv4/ip_forward": "1\n", "/proc/sys/net/bridge/bridge-nf-call-iptables": "1\n"} {
		if got, _ := stepkittest.ReadFile(t, root, p); got != v {
			t.Errorf("%s = %q, want %q", p, got, v)
		}
	}
	conf, _ := stepkittest.ReadFile(t, root, stepkit.SysctlFile)
	wantConf := "# Managed by kubewright: changes are overwritten on the next run.\nnet.ipv4.ip_forward = 1\nnet.ipv4.ip_local_port_range = 32768 60999\nnet.bridge.bridge-nf-call-iptables = 1\n"
	if conf != wantConf {
		t.Fatalf("persisted file = %q", conf)
	}
	again, err := s.Plan(ctx, tg)
	if err != nil || len(again) != 0 {
		t.Fatalf("second plan = %q, %v", strs(again), err)
	}
}

func TestModulesPlanApplyIdempotent(t *testing.T) {
	ctx := context.Background()
	tg, _, root := stepkittest.NewTarget(t, "h1", nil)
	// overlay shows up in /proc/modules only (as lsmod sees it).
	stepkittest.WriteFile(t, root, "/proc/modules", "overlay 151552 0 - Live 0x0000000000000000\n", 0o644)
	modprobe := stepkittest.FakeTool(t, root, "modprobe", `[ "$1" = -- ] || exit 2; mkdir -p "$(dirname "$0")/../sys/module/$2" && echo "$2" >> "$(dirname "$0")/../modprobe.log"`)
	m := stepkit.Modules{Names: []string{"overlay", "br_netfilter"}, Modprobe: modprobe}
	plan, err := m.Plan(ctx, tg)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"create /etc/modules-load.d/kubewright.conf (mode 0644)", "load module br_netfilter"}
	if !reflect.DeepEqual(strs(plan), want) {
		t.Fatalf("plan = %q, want %q", strs(plan), want)
	}
	if err := m.Apply(ctx, tg, plan); err != nil {
		t.Fatal(err)
	}
	if log, _ := stepkittest.ReadFile(t, root, "/modprobe.log"); log != "br_netfilter\n" {
		t.Fatalf("modprobe calls = %q, want only br_netfilter", log)
	}
	if c, _ := stepkittest.ReadFile(t, root, stepkit.ModulesFile); !strings.HasSuffix(c, "\noverlay\nbr_netfilter\n") {
		t.Fatalf("modules-load file = %q", c)
	}
	again, err := m.Plan(ctx, tg)
	if err != nil || len(again) != 0 {
		t.Fatalf("second plan = %q, %v", strs(again), err)
	}
}

// fakeSystemctl keeps unit state as files next to it, like systemd would in
// its own state, and logs every mutating call.
const fakeSystemctl = `d=$(dirname "$0")/../systemd-state; mkdir -p "$d"; echo "$*" >> "$d/log"
case "$1" in
is-enabled) if [ -e "$d/enabled-$2" ]; then echo enabled; else echo disabled; exit 1; fi ;;
is-active) if [ -e "$d/active-$2" ]; then echo active; elif [ -e "$d/broken-$2" ]; then echo failed; exit 3; else echo inactive; exit 3; fi ;;
enable) touch "$d/enabled-$2" ;;
start|restart) [ -e "$d/broken-$2" ] || touch "$d/active-$2" ;;
daemon-reload) ;;
*) exit 1 ;;
esac`

func mutating(t *testing.T, root string) []string {
	log, _ := stepkittest.ReadFile(t, root, "/systemd-state/log")
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(log), "\n") {
		if l != "" && !strings.HasPrefix(l, "is-") {
			out = append(out, l)
		}
	}
	stepkittest.WriteFile(t, root, "/systemd-state/log", "", 0o644)
	return out
}

func TestUnitLifecycle(t *testing.T) {
	ctx := context.Background()
	tg, _, root := stepkittest.NewTarget(t, "h1", nil)
	sc := stepkittest.FakeTool(t, root, "systemctl", fakeSystemctl)
	u := stepkit.Unit{
		Name:        "etcd.service",
		Content:     []byte("[Service]\nExecStart=/usr/local/bin/etcd\n"),
		ConfigFiles: []stepkit.File{{Path: "/etc/etcd/etcd.conf", Content: []byte("name: m1\n"), Mode: 0o600}},
		Systemctl:   sc,
	}
	steps := []struct {
		name     string
		before   func()
		wantPlan []string
		wantCall []string
	}{
		{
			name: "fresh host",
			wantPlan: []string{
				"create /etc/systemd/system/etcd.service (mode 0644)",
				"create /etc/etcd/etcd.conf (mode 0600)",
				"enable etcd.service", "start etcd.service (not active)",
			},
			wantCall: []string{"daemon-reload", "enable etcd.service", "start etcd.service"},
		},
		{name: "re-run changes nothing"},
		{
			name:     "config change restarts without daemon-reload",
			before:   func() { u.ConfigFiles[0].Content = []byte("name: m1\nquota: 8G\n") },
			wantPlan: []string{"update /etc/etcd/etcd.conf (content differs)", "restart etcd.service (configuration changed)"},
			wantCall: []string{"restart etcd.service"},
		},
		{
			name:     "unit file change reloads then restarts",
			before:   func() { u.Content = []byte("[Service]\nExecStart=/usr/local/bin/etcd --v\n") },
			wantPlan: []string{"update /etc/systemd/system/etcd.service (content differs)", "restart etcd.service (configuration changed)"},
			wantCall: []string{"daemon-reload", "restart etcd.service"},
		},
		{
			name:     "stopped service is started, not rewritten",
			before:   func() { mustRemove(t, root, "/systemd-state/active-etcd.service") },
			wantPlan: []string{"start etcd.service (not active)"},
			wantCall: []string{"start etcd.service"},
		},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if st.before != nil {
				st.before()
			}
			mutating(t, root)
			plan, err := u.Plan(ctx, tg)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(strs(plan), st.wantPlan) {
				t.Fatalf("plan = %q\nwant %q", strs(plan), st.wantPlan)
			}
			if len(plan) == 0 {
				return
			}
			if err := u.Apply(ctx, tg, plan); err != nil {
				t.Fatal(err)
			}
			if got := mutating(t, root); !reflect.DeepEqual(got, st.wantCall) {
				t.Fatalf("systemctl calls = %q, want %q", got, st.wantCall)
			}
		})
	}
}

func TestUnitThatDoesNotStartFailsWithItsState(t *testing.T) {
	tg, _, root := stepkittest.NewTarget(t, "h1", nil)
	sc := stepkittest.FakeTool(t, root, "systemctl", fakeSystemctl)
	stepkittest.WriteFile(t, root, "/systemd-state/broken-kubelet.service", "", 0o644)
	u := stepkit.Unit{Name: "kubelet.service", Systemctl: sc, ActiveTimeout: 300 * time.Millisecond}
	plan, err := u.Plan(context.Background(), tg)
	if err != nil {
		t.Fatal(err)
	}
	err = u.Apply(context.Background(), tg, plan)
	want := `unit kubelet.service not active after 300ms (state "enabled failed"); see journalctl -u kubelet.service`
	if err == nil || err.Error() != want {
		t.Fatalf("error = %v\nwant  %s", err, want)
	}
}

func mustRemove(t *testing.T, root, p string) {
	t.Helper()
	if _, err := (&stepkittest.Host{}).Exec(context.Background(), "rm -f "+stepkit.Quote(root+p)); err != nil {
		t.Fatal(err)
	}
}

func fakeManager(root string) *stepkit.PackageManager {
	db := stepkit.Quote(root + "/pkgdb")
	return &stepkit.PackageManager{
		Name:     "fake",
		QueryCmd: func([]string) string { return "cat " + db + " 2>/dev/null; true" },
		ParseInstalled: func(out string) map[string]bool {
			m := map[string]bool{}
			for _, l := range strings.Fields(out) {
				m[l] = true
			}
			return m
		},
		InstallCmds: func(names []string) []string {
			return []string{"false", "printf '%s\\n' " + stepkit.QuoteAll(names) + " >> " + db}
		},
	}
}

func TestPackagesPlanApplyIdempotent(t *testing.T) {
	ctx := context.Background()
	tg, h, root := stepkittest.NewTarget(t, "h1", nil)
	stepkittest.WriteFile(t, root, "/pkgdb", "socat\n", 0o644)
	p := stepkit.Packages{Names: []string{"socat", "ipset", "conntrack"}, Manager: fakeManager(root)}
	plan, err := p.Plan(ctx, tg)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"install package conntrack", "install package ipset"}; !reflect.DeepEqual(strs(plan), want) {
		t.Fatalf("plan = %q, want %q", strs(plan), want)
	}
	h.Reset()
	if err := p.Apply(ctx, tg, plan); err != nil {
		t.Fatal(err)
	}
	// The first install command fails; the fallback (apt's "update, then
	// install") must run and succeed.
	if cmds := h.Commands(); len(cmds) != 2 || cmds[0] != "false" {
		t.Fatalf("install commands = %q", cmds)
	}
	again, err := p.Plan(ctx, tg)
	if err != nil || len(again) != 0 {
		t.Fatalf("second plan = %q, %v", strs(again), err)
	}
}

func TestAptQueryAgainstRealDpkg(t *testing.T) {
	if _, err := (&stepkittest.Host{}).Exec(context.Background(), "command -v dpkg-query"); err != nil {
		t.Fatal("dpkg-query missing: these tests run on Debian (CI and the lab are Debian)")
	}
	tg, _, _ := stepkittest.NewTarget(t, "h1", &engine.Facts{PackageManager: "apt"})
	missing, err := stepkit.Packages{Names: []string{"dpkg", "kubewright-no-such-package"}}.Missing(context.Background(), tg)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(missing, []string{"kubewright-no-such-package"}) {
		t.Fatalf("missing = %q", missing)
	}
}

func TestPackageManagerErrors(t *testing.T) {
	tg, _, _ := stepkittest.NewTarget(t, "h1", &engine.Facts{PackageManager: "unknown"})
	_, err := stepkit.Packages{Names: []string{"socat"}}.Plan(context.Background(), tg)
	if err == nil || err.Error() != `unsupported package manager "unknown" (kubewright supports apt, dnf and yum)` {
		t.Fatalf("error = %v", err)
	}
}

// A kernel with the features compiled in and no /lib/modules (VM and
// container kernels): the features are visible in /proc, nothing is loaded,
// and modprobe must not be called (it would fail there).
func TestModulesBuiltInWithoutModuleTree(t *testing.T) {
	ctx := context.Background()
	tg, _, root := stepkittest.NewTarget(t, "h1", nil)
	stepkittest.WriteFile(t, root, "/proc/sys/net/bridge/bridge-nf-call-iptables", "1\n", 0o644)
	stepkittest.WriteFile(t, root, "/proc/filesystems", "nodev\tsysfs\nnodev\toverlay\n", 0o644)
	modprobe := stepkittest.FakeTool(t, root, "modprobe", `echo "$2" >> "$(dirname "$0")/../modprobe.log"; exit 1`)
	m := stepkit.Modules{Names: []string{"overlay", "br_netfilter"}, Modprobe: modprobe}
	plan, err := m.Plan(ctx, tg)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"create /etc/modules-load.d/kubewright.conf (mode 0644)"}; !reflect.DeepEqual(strs(plan), want) {
		t.Fatalf("plan = %q, want %q", strs(plan), want)
	}
	if err := m.Apply(ctx, tg, plan); err != nil {
		t.Fatal(err)
	}
	if log, ok := stepkittest.ReadFile(t, root, "/modprobe.log"); ok {
		t.Fatalf("modprobe was called for built-in features: %q", log)
	}
}
