package render

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// requireTool finds a real binary to validate rendered configs with. CI installs
// keepalived and haproxy (hack/install-deps.sh), so a missing tool there is a
// failure, not a skip.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	for _, dir := range []string{"/usr/sbin", "/usr/bin", "/sbin"} {
		if p := filepath.Join(dir, name); fileExists(p) {
			return p
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is not installed; CI must install it (hack/install-deps.sh)", name)
	}
	t.Skipf("%s not installed (apt-get install %s); CI runs this check", name, name)
	return ""
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func TestHAProxyAcceptsRenderedConfig(t *testing.T) {
	bin := requireTool(t, "haproxy")
	cfg, err := HAProxyConfig(HAProxyParams{BindPort: 8443, APIServerPort: 6443, Backends: []HAProxyBackend{{"m1", "10.0.0.1"}, {"m2", "fd00::2"}}})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "-c", "-f", path).CombinedOutput(); err != nil {
		t.Fatalf("haproxy -c rejected the rendered config: %v\n%s", err, out)
	}
}

func TestKeepalivedAcceptsRenderedConfig(t *testing.T) {
	bin := requireTool(t, "keepalived")
	dir := t.TempDir()
	script := filepath.Join(dir, "check.sh")
	if err := os.WriteFile(script, []byte(KeepalivedCheckScript(6443)), 0o700); err != nil {
		t.Fatal(err)
	}
	// keepalived -t checks that the interface exists, is up, is not loopback and supports multicast.
	ifname := ""
	ifs, _ := net.Interfaces()
	for _, i := range ifs {
		if i.Flags&net.FlagLoopback == 0 && i.Flags&net.FlagMulticast != 0 && i.Flags&net.FlagUp != 0 {
			ifname = i.Name
			break
		}
	}
	if ifname == "" {
		t.Fatal("no non-loopback interface on this machine to validate keepalived's config against")
	}
	for _, unicast := range []bool{false, true} {
		cfg, err := KeepalivedConfig(KeepalivedParams{HostName: "m1", Address: "10.0.0.1", Interface: ifname, VIP: "10.0.0.100", VIPPrefix: 24,
			RouterID: 51, Priority: 150, AuthPass: "pass", Unicast: unicast, Peers: []KeepalivedPeer{{"m2", "10.0.0.2"}}, CheckScript: script})
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "keepalived.conf")
		if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(bin, "-t", "-f", path).CombinedOutput(); err != nil {
			t.Fatalf("keepalived -t rejected the rendered config (unicast=%v): %v\n%s", unicast, err, out)
		}
	}
}
