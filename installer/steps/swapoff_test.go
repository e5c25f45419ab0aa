package steps

import (
	"context"
	"reflect"
	"slices"
	"testing"

	"github.com/kubewright/kubewright/installer/engine"
	"github.com/kubewright/kubewright/installer/steps/stepkit/stepkittest"
)

func changeStrings(cs []engine.Change) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.String())
	}
	return out
}

const fstabWithSwap = `# /etc/fstab: static file system information.
UUID=0a1b / ext4 errors=remount-ro 0 1
/dev/sda5 none swap sw 0 0
# /swapfile none swap sw 0 0
/swap.img	none	swap	sw	0	0
`

func TestCommentSwap(t *testing.T) {
	tests := []struct {
		name, in, want string
		hit            []string
	}{
		{"two entries, one already commented", fstabWithSwap, `# /etc/fstab: static file system information.
UUID=0a1b / ext4 errors=remount-ro 0 1
#/dev/sda5 none swap sw 0 0
# /swapfile none swap sw 0 0
#/swap.img	none	swap	sw	0	0
`, []string{"/dev/sda5", "/swap.img"}},
		{"no swap", "UUID=0a1b / ext4 defaults 0 1\n", "UUID=0a1b / ext4 defaults 0 1\n", nil},
		{"no trailing newline", "/dev/sdb1 none swap sw 0 0", "#/dev/sdb1 none swap sw 0 0", []string{"/dev/sdb1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, hit := commentSwap(tc.in)
			if got != tc.want || !reflect.DeepEqual(hit, tc.hit) {
				t.Fatalf("got %q %q\nwant %q %q", got, hit, tc.want, tc.hit)
			}
		})
	}
}

func TestSwapOffIdempotent(t *testing.T) {
	ctx := context.Background()
	tg, _, root := stepkittest.NewTarget(t, "w1", nil)
	stepkittest.WriteFile(t, root, "/proc/swaps", "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n/dev/sda5                               partition\t1003516\t\t0\t\t-2\n", 0o644)
	stepkittest.WriteFile(t, root, "/etc/fstab", fstabWithSwap, 0o644)
	// The fake swapoff empties the (fake) /proc/swaps like the kernel would.
	s := &SwapOff{swapoff: "printf 'Filename\\tType\\tSize\\tUsed\\tPriority\\n' > " + root + "/proc/swaps"}
	plan, err := s.Plan(ctx, tg)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"run swapoff (active: /dev/sda5)", "update /etc/fstab (comment out swap /dev/sda5, /swap.img)"}
	if !reflect.DeepEqual(changeStrings(plan), want) {
		t.Fatalf("plan = %q\nwant %q", changeStrings(plan), want)
	}
	if err := s.Apply(ctx, tg, plan); err != nil {
		t.Fatal(err)
	}
	if got, _ := stepkittest.ReadFile(t, root, "/etc/fstab"); got == fstabWithSwap {
		t.Fatal("fstab unchanged")
	}
	again, err := s.Plan(ctx, tg)
	if err != nil || len(again) != 0 {
		t.Fatalf("second plan = %q, %v", changeStrings(again), err)
	}
}

func TestSwapOffNoFstab(t *testing.T) {
	tg, _, root := stepkittest.NewTarget(t, "w1", nil)
	stepkittest.WriteFile(t, root, "/proc/swaps", "Filename\tType\tSize\tUsed\tPriority\n", 0o644)
	plan, err := NewSwapOff().Plan(context.Background(), tg)
	if err != nil || len(plan) != 0 {
		t.Fatalf("plan = %q, %v", changeStrings(plan), err)
	}
}

func TestRegisterAndParams(t *testing.T) {
	r := engine.NewRegistry()
	Register(r)
	for _, name := range []string{"kernel-modules", "packages", "preflight", "swap-off", "sysctl"} {
		if !slices.Contains(r.Names(), name) {
			t.Errorf("step %q not registered (have %q)", name, r.Names())
		}
	}
	tests := []struct {
		step    string
		with    map[string]string
		wantErr string
	}{
		{"packages", map[string]string{"list": "socat, ipset"}, ""},
		{"packages", map[string]string{"list": " , "}, `parameter "list" is empty`},
		{"packages", map[string]string{"lsit": "socat"}, "unknown parameter(s) lsit (known: list)"},
		{"kernel-modules", map[string]string{"modules": "overlay ip_vs"}, ""},
		{"sysctl", map[string]string{"fs.inotify.max_user_instances": "8192"}, ""},
		{"sysctl", map[string]string{"ip_forward": "1"}, `parameter "ip_forward" is not a sysctl key (like net.ipv4.ip_forward)`},
		{"preflight", map[string]string{"x": "1"}, "takes no parameters, got x"},
		{"swap-off", nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.step+"/"+tc.wantErr, func(t *testing.T) {
			s, err := r.Build(tc.step, tc.with)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("error = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || s.Name() != tc.step {
				t.Fatalf("build = %v, %v", s, err)
			}
		})
	}
	s, _ := r.Build("sysctl", map[string]string{"net.ipv4.ip_forward": "0", "fs.inotify.max_user_instances": "8192"})
	got := s.(*Sysctl).s.Values
	if len(got) != 4 || got[0].Value != "0" || got[3].Key != "fs.inotify.max_user_instances" {
		t.Fatalf("sysctl values = %+v", got)
	}
	p, _ := r.Build("packages", map[string]string{"list": "socat, ipset"})
	if l := p.(*Packages).list; !reflect.DeepEqual(l, []string{"socat", "ipset"}) {
		t.Fatalf("list = %q", l)
	}
}

func TestDefaultPackages(t *testing.T) {
	tests := []struct {
		name      string
		family    string
		proxyMode string
		artifacts bool
		want      []string
	}{
		{"debian iptables", "debian", "iptables", false, []string{"socat", "conntrack", "ipset"}},
		{"rhel ipvs", "rhel", "ipvs", false, []string{"socat", "conntrack-tools", "ipset", "ipvsadm"}},
		// The container runtime comes from the OS: the manifest's os-package entries.
		{"with artifacts", "debian", "iptables", true, []string{"socat", "conntrack", "ipset", "containerd", "runc", "containernetworking-plugins"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tg := &engine.Target{Facts: &engine.Facts{OSFamily: tc.family}, Cluster: clusterWith(func(s *inventorySpec) { s.Kubernetes.ProxyMode = tc.proxyMode })}
			if tc.artifacts {
				tg.Shared = engine.NewSharedData()
				tg.Shared.Set(SharedArtifacts, nodeArtifacts(t))
			}
			if got := defaultPackages(tg); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}
