package lab

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubewright/kubewright/installer/inventory"
	goldenfile "github.com/kubewright/kubewright/internal/golden"
)

// golden compares got with testdata/NAME.golden (rewritten with -update).
func golden(t *testing.T, name, got string) {
	t.Helper()
	goldenfile.AssertString(t, filepath.Join("testdata", name+".golden"), got)
}

func TestValidateUp(t *testing.T) {
	cases := []struct {
		name string
		in   UpOptions
	}{
		{"ok", UpOptions{Name: "demo", Masters: 3, Workers: 2}},
		{"ok-no-workers", UpOptions{Name: "a1", Masters: 1}},
		{"empty-name", UpOptions{Name: "", Masters: 1}},
		{"dash", UpOptions{Name: "my-lab", Masters: 1}},
		{"too-long", UpOptions{Name: "abcdefghij", Masters: 1}},
		{"uppercase", UpOptions{Name: "Demo", Masters: 1}},
		{"no-masters", UpOptions{Name: "demo", Masters: 0, Workers: 2}},
		{"negative-workers", UpOptions{Name: "demo", Masters: 1, Workers: -1}},
		{"too-many", UpOptions{Name: "demo", Masters: 30, Workers: 21}},
	}
	var b strings.Builder
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := ValidateUp(c.in)
			msg := "ok"
			if err != nil {
				msg = err.Error()
			}
			if strings.HasPrefix(c.name, "ok") != (err == nil) {
				t.Errorf("ValidateUp(%+v) = %v", c.in, err)
			}
			b.WriteString(c.name + ": " + msg + "\n")
		})
	}
	golden(t, "validate", b.String())
}

func TestInterfaceNamesFit(t *testing.T) {
	// The longest valid name with the largest machine index must fit IFNAMSIZ-1.
	long := "abcdefghi"
	if err := ValidateName(long); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{bridgeName(long), vethName(long, maxMachines)} {
		if len(n) > 15 {
			t.Errorf("interface name %q is %d characters, over 15", n, len(n))
		}
	}
}

func TestPlanMachines(t *testing.T) {
	got := planMachines(UpOptions{Name: "demo", Masters: 3, Workers: 2})
	want := []string{"demo-master1/master/1", "demo-master2/master/2", "demo-master3/master/3", "demo-worker1/worker/4", "demo-worker2/worker/5"}
	if len(got) != len(want) {
		t.Fatalf("got %d machines", len(got))
	}
	for i, m := range got {
		if s := m.Name + "/" + m.Role + "/" + string(rune('0'+m.Index)); s != want[i] {
			t.Errorf("machine %d = %s, want %s", i, s, want[i])
		}
	}
}

func cidr(s string) *net.IPNet {
	_, n, err := net.ParseCIDR(s)
	if err != nil {
		panic(err)
	}
	return n
}

func TestPickSubnet(t *testing.T) {
	first, err := pickSubnet("demo", nil)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		used []*net.IPNet
		want func(*net.IPNet) bool
	}{
		{"deterministic", nil, func(n *net.IPNet) bool { return n.String() == first.String() }},
		{"default-route-ignored", []*net.IPNet{cidr("0.0.0.0/0")}, func(n *net.IPNet) bool { return n.String() == first.String() }},
		{"exact-collision-skipped", []*net.IPNet{first}, func(n *net.IPNet) bool { return n.String() != first.String() }},
		{"covering-route-skipped", []*net.IPNet{cidr(first.IP.String() + "/16")}, func(n *net.IPNet) bool { return !cidr(first.IP.String() + "/16").Contains(n.IP) }},
		{"host-address-inside-skipped", []*net.IPNet{{IP: hostAddr(first, 7), Mask: net.CIDRMask(32, 32)}}, func(n *net.IPNet) bool { return n.String() != first.String() }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n, err := pickSubnet("demo", c.used)
			if err != nil {
				t.Fatal(err)
			}
			if !c.want(n) {
				t.Errorf("pickSubnet = %s (first choice %s, used %v)", n, first, c.used)
			}
			if ones, _ := n.Mask.Size(); ones != 24 || n.IP[0] != 10 || n.IP[1] < subnetFirstX || n.IP[1] >= subnetFirstX+subnetCountX {
				t.Errorf("subnet %s outside 10.%d-%d.x.0/24", n, subnetFirstX, subnetFirstX+subnetCountX-1)
			}
		})
	}
	t.Run("exhausted", func(t *testing.T) {
		_, err := pickSubnet("demo", []*net.IPNet{cidr("10.0.0.0/8")})
		if err == nil || !strings.Contains(err.Error(), "no free /24") {
			t.Fatalf("want exhaustion error, got %v", err)
		}
	})
	if got := hostAddr(cidr("10.150.3.0/24"), vipHost).String(); got != "10.150.3.100" {
		t.Errorf("VIP = %s", got)
	}
}

func TestMirror(t *testing.T) {
	read := func(name string) *os.File {
		f, err := os.Open(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	cases := []struct {
		name  string
		srcs  []aptSource
		suite string
		want  string
	}{
		{"one-line", parseOneLineSources(read("sources-oneline.list")), "bookworm", "http://mirror.example/debian"},
		{"deb822", parseDeb822Sources(read("sources-deb822.sources")), "bookworm", "http://deb.debian.org/debian"},
		{"deb822-disabled-and-src-ignored", parseDeb822Sources(read("sources-deb822.sources")), "trixie", "http://deb.debian.org/debian"},
		{"other-suite-falls-back-to-release-entry", []aptSource{{"http://sec/debian-security", "trixie-security"}, {"http://m/debian", "trixie"}}, "bookworm", "http://m/debian"},
		{"nothing", nil, "bookworm", DefaultMirror},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := chooseMirror(c.srcs, c.suite); got != c.want {
				t.Errorf("mirror = %q, want %q (sources %+v)", got, c.want, c.srcs)
			}
		})
	}
	t.Run("host-layout", func(t *testing.T) {
		root := t.TempDir()
		os.MkdirAll(filepath.Join(root, "etc/apt/sources.list.d"), 0o755)
		b, _ := os.ReadFile(filepath.Join("testdata", "sources-deb822.sources"))
		os.WriteFile(filepath.Join(root, "etc/apt/sources.list.d/debian.sources"), b, 0o644)
		os.WriteFile(filepath.Join(root, "etc/apt/sources.list.d/other.list.disabled"), []byte("deb http://no/debian bookworm main\n"), 0o644)
		if got := hostMirror(root, "bookworm"); got != "http://deb.debian.org/debian" {
			t.Errorf("hostMirror = %q", got)
		}
	})
}

func TestImageKey(t *testing.T) {
	k := imageKey(ImagePackages)
	rev := append([]string(nil), ImagePackages...)
	for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
		rev[i], rev[j] = rev[j], rev[i]
	}
	if imageKey(rev) != k {
		t.Error("image key depends on package order")
	}
	if imageKey(append(rev, "vim")) == k {
		t.Error("image key ignores an added package")
	}
	if len(k) != 16 {
		t.Errorf("key %q", k)
	}
}

func TestFinishImage(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"etc/ssh/sshd_config.d", "etc/apt", "etc/systemd/system", "var/lib/dbus"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	for _, f := range []string{"etc/ssh/ssh_host_rsa_key", "etc/ssh/ssh_host_ed25519_key.pub", "var/lib/dbus/machine-id"} {
		os.WriteFile(filepath.Join(root, f), []byte("x"), 0o600)
	}
	os.WriteFile(filepath.Join(root, "etc/machine-id"), []byte("d9ff2a249c3746e4bee6bcc7db8222a9\n"), 0o444)
	if err := finishImage(root, "http://m/debian"); err != nil {
		t.Fatal(err)
	}
	if keys, _ := filepath.Glob(filepath.Join(root, "etc/ssh/ssh_host_*")); len(keys) != 0 {
		t.Errorf("host keys left in the image: %v", keys)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "etc/machine-id")); len(b) != 0 {
		t.Errorf("machine-id not emptied: %q", b)
	}
	if l, _ := os.Readlink(filepath.Join(root, "var/lib/dbus/machine-id")); l != "/etc/machine-id" {
		t.Errorf("dbus machine-id link = %q", l)
	}
	if l, _ := os.Readlink(filepath.Join(root, "etc/systemd/system/apt-daily.timer")); l != "/dev/null" {
		t.Errorf("apt-daily.timer not masked: %q", l)
	}
	b, _ := os.ReadFile(filepath.Join(root, "etc/apt/sources.list"))
	c, _ := os.ReadFile(filepath.Join(root, "etc/ssh/sshd_config.d/kubewright-lab.conf"))
	golden(t, "image-files", "sources.list:\n"+string(b)+"sshd_config.d/kubewright-lab.conf:\n"+string(c))
}

func TestMissingHostPackages(t *testing.T) {
	cases := []struct {
		name    string
		present map[string]bool
		want    string
	}{
		{"all", map[string]bool{"debootstrap": true, "systemd-nspawn": true}, ""},
		{"no-nspawn", map[string]bool{"debootstrap": true}, "systemd-container"},
		{"none", map[string]bool{}, "debootstrap systemd-container"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := missingHostPackages(func(b string) (string, error) {
				if c.present[b] {
					return "/usr/bin/" + b, nil
				}
				return "", os.ErrNotExist
			})
			if strings.Join(got, " ") != c.want {
				t.Errorf("missing = %v, want %q", got, c.want)
			}
		})
	}
	if got := installCommand([]string{"debootstrap", "systemd-container"}); got != "apt-get install -y --no-install-recommends debootstrap systemd-container" {
		t.Errorf("install command %q", got)
	}
}

func TestInventoryAndKnownHosts(t *testing.T) {
	ms := []machineState{
		{Name: "demo-master1", Role: "master", Address: "10.150.7.11"},
		{Name: "demo-worker1", Role: "worker", Address: "10.150.7.12"},
	}
	inv, err := renderInventory(inventoryParams{
		Lab: "demo", KeyFile: "/state/labs/demo/id_ed25519", KnownHosts: "/state/labs/demo/known_hosts",
		ArtifactsDir: "/var/cache/kubewright/artifacts", VIP: "10.150.7.100", Machines: ms,
	})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "inventory.yaml", string(inv))

	_, pub, err := newKeyPair("root@demo-master1")
	if err != nil {
		t.Fatal(err)
	}
	kh, err := knownHostsLines([]knownHost{{Name: "demo-master1", Address: "10.150.7.11", PublicKey: pub}})
	if err != nil {
		t.Fatal(err)
	}
	if want := "10.150.7.11,demo-master1 " + strings.Join(strings.Fields(string(pub))[:2], " ") + "\n"; string(kh) != want {
		t.Errorf("known_hosts line\n got %q\nwant %q", kh, want)
	}
	if _, err := knownHostsLines([]knownHost{{Name: "x", PublicKey: []byte("garbage")}}); err == nil {
		t.Error("a bad host key was accepted")
	}
}

// TestInventoryLoads proves the generated inventory is one install accepts:
// the inventory package parses, defaults and validates it without error.
func TestInventoryLoads(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "inventory.yaml.golden"))
	if err != nil {
		t.Fatal(err)
	}
	c, _, err := inventory.Parse("inventory.yaml", b)
	if err != nil {
		t.Fatalf("generated inventory does not load: %v", err)
	}
	if len(c.Spec.Hosts) != 2 || c.Spec.ControlPlaneEndpoint.VIP != "10.150.7.100" || c.Spec.HostDefaults.User != "root" {
		t.Errorf("loaded inventory lost fields: %+v", c.Spec)
	}
}
