package main

import (
	"context"
	"flag"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/flannel-io/flannel/pkg/ip"
	"github.com/flannel-io/flannel/pkg/subnet"
)

func TestMain(m *testing.M) {
	if err := initKlog(); err != nil {
		panic(err)
	}
	os.Exit(m.Run())
}

// The DaemonSet in kube-flannel.yml passes these arguments; the defaults are
// upstream's.
func TestParseOptionsUpstreamDaemonSetArgsAndDefaults(t *testing.T) {
	opts, err := parseOptions([]string{"--ip-masq", "--kube-subnet-mgr", "--healthz-port=8081"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !opts.ipMasq || !opts.kubeSubnetMgr || opts.healthzPort != 8081 {
		t.Errorf("DaemonSet flags not applied: %+v", *opts)
	}
	for name, got := range map[string]any{
		"subnet-file":                  opts.subnetFile,
		"net-config-path":              opts.netConfPath,
		"healthz-ip":                   opts.healthzIP,
		"kube-annotation-prefix":       opts.kubeAnnotationPrefix,
		"iptables-forward-rules":       opts.iptablesForwardRules,
		"iptables-resync":              opts.iptablesResyncSeconds,
		"set-node-network-unavailable": opts.setNodeNetworkUnavailable,
	} {
		want := map[string]any{
			"subnet-file":                  "/run/flannel/subnet.env",
			"net-config-path":              "/etc/kube-flannel/net-conf.json",
			"healthz-ip":                   "0.0.0.0",
			"kube-annotation-prefix":       "flannel.alpha.coreos.com",
			"iptables-forward-rules":       true,
			"iptables-resync":              5,
			"set-node-network-unavailable": true,
		}[name]
		if got != want {
			t.Errorf("--%s default = %v, want %v", name, got, want)
		}
	}
}

func TestParseOptionsAllFlagsAndEnv(t *testing.T) {
	t.Setenv("FLANNELD_IFACE_REGEX", "^eth")
	t.Setenv("FLANNELD_PUBLIC_IP", "192.0.2.9") // overridden by the command line
	opts, err := parseOptions([]string{
		"--kube-subnet-mgr", "--kube-api-url=https://192.0.2.1:6443", "--kubeconfig-file=/etc/k.conf",
		"--iface=eth0", "--iface=eth1", "--public-ip=192.0.2.10", "--healthz-ip=127.0.0.1",
		"--subnet-file=/tmp/s.env", "--net-config-path=/tmp/n.json", "--iptables-forward-rules=false",
		"-v=2", "--version",
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(opts.iface, ",") != "eth0,eth1" || strings.Join(opts.ifaceRegex, ",") != "^eth" {
		t.Errorf("iface %v iface-regex %v", opts.iface, opts.ifaceRegex)
	}
	if opts.publicIP != "192.0.2.10" || opts.kubeApiUrl != "https://192.0.2.1:6443" || opts.kubeConfigFile != "/etc/k.conf" ||
		opts.healthzIP != "127.0.0.1" || opts.subnetFile != "/tmp/s.env" || opts.netConfPath != "/tmp/n.json" ||
		opts.iptablesForwardRules || !opts.version {
		t.Errorf("flags not applied: %+v", *opts)
	}
	if v := flag.Lookup("v").Value.String(); v != "2" {
		t.Errorf("klog -v = %s, want 2", v)
	}
	_ = flag.Set("v", "0")
}

func TestParseOptionsRejectsUnknownFlagsAndArguments(t *testing.T) {
	if _, err := parseOptions([]string{"--etcd-endpoints=http://x"}, io.Discard); err == nil ||
		!strings.Contains(err.Error(), "flag provided but not defined: -etcd-endpoints") {
		t.Errorf("etcd flag: err = %v", err)
	}
	if _, err := parseOptions([]string{"--kube-subnet-mgr", "extra"}, io.Discard); err == nil ||
		!strings.Contains(err.Error(), `unexpected arguments: ["extra"]`) {
		t.Errorf("extra argument: err = %v", err)
	}
	if code := run(&cmdLineOpts{}); code != 1 {
		t.Errorf("run without --kube-subnet-mgr = %d, want 1", code)
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestHealthzServesLivenessAndReadiness(t *testing.T) {
	// Find a free loopback port, then let runHealthz bind it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	var ready atomic.Bool
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	if err := runHealthz(ctx, addr, &ready, &wg); err != nil {
		t.Fatal(err)
	}
	if err := runHealthz(ctx, addr, &ready, &wg); err == nil {
		t.Error("a second server on the same address started")
	}
	if code, body := get(t, "http://"+addr+"/healthz"); code != 200 || body != "flanneld is running" {
		t.Errorf("/healthz = %d %q", code, body)
	}
	if code, body := get(t, "http://"+addr+"/readyz"); code != 503 || body != "flanneld is not ready yet" {
		t.Errorf("/readyz before ready = %d %q", code, body)
	}
	ready.Store(true)
	if code, body := get(t, "http://"+addr+"/readyz"); code != 200 || body != "flanneld is ready" {
		t.Errorf("/readyz when ready = %d %q", code, body)
	}
	if code, _ := get(t, "http://"+addr+"/other"); code != 404 {
		t.Errorf("/other = %d, want 404", code)
	}
	cancel()
	wg.Wait()
	if _, err := http.Get("http://" + addr + "/healthz"); err == nil {
		t.Error("healthz server still answers after the context ended")
	}
}

// subnet.env as flannel's subnet.WriteSubnetFile writes it (what the CNI plugin
// reads), and read back the way flanneld reads the previous one on restart.
func TestSubnetFileRoundTrip(t *testing.T) {
	cfg, err := subnet.ParseConfig(`{"Network": "10.244.0.0/16", "EnableNFTables": false, "Backend": {"Type": "vxlan"}}`)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.BackendType != "vxlan" || cfg.EnableNFTables || !cfg.EnableIPv4 {
		t.Fatalf("config %+v", cfg)
	}
	path := filepath.Join(t.TempDir(), "run", "flannel", "subnet.env")
	_, sn, _ := net.ParseCIDR("10.244.3.0/24")
	if err := subnet.WriteSubnetFile(path, cfg, true, ip.FromIPNet(sn), ip.IP6Net{}, 1450); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.3.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n"
	if string(b) != want {
		t.Errorf("subnet.env = %q, want %q", b, want)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o644 {
		t.Errorf("subnet.env mode %v, want 0644", st.Mode())
	}
	if got := readCIDRFromSubnetFile(path, "FLANNEL_NETWORK"); got.String() != "10.244.0.0/16" {
		t.Errorf("FLANNEL_NETWORK read back as %s", got)
	}
	// FLANNEL_SUBNET holds the first address; flannel compares it as a network.
	if got := readCIDRFromSubnetFile(path, "FLANNEL_SUBNET"); got.String() != "10.244.3.0/24" {
		t.Errorf("FLANNEL_SUBNET read back as %s", got)
	}
	if got := readCIDRFromSubnetFile(path, "FLANNEL_IPV6_SUBNET"); !got.Empty() {
		t.Errorf("missing key read as %s, want the zero network", got)
	}
	if got := readIP6CIDRFromSubnetFile(path, "FLANNEL_IPV6_SUBNET"); !got.Empty() {
		t.Errorf("missing IPv6 key read as %s, want the zero network", got)
	}
	if got := readCIDRFromSubnetFile(filepath.Join(t.TempDir(), "none"), "FLANNEL_SUBNET"); !got.Empty() {
		t.Errorf("missing file read as %s", got)
	}

	multi := filepath.Join(t.TempDir(), "multi.env")
	if err := os.WriteFile(multi, []byte("FLANNEL_NETWORK=10.244.0.0/16,10.245.0.0/16\nFLANNEL_IPV6_SUBNET=fd00:10:244:3::1/64\nFLANNEL_SUBNET=bogus\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := readCIDRFromSubnetFile(multi, "FLANNEL_NETWORK"); !got.Empty() {
		t.Errorf("two networks read as %s, want the zero network (upstream refuses to pick one)", got)
	}
	if got := readCIDRFromSubnetFile(multi, "FLANNEL_SUBNET"); !got.Empty() {
		t.Errorf("unparsable subnet read as %s", got)
	}
	if got := readIP6CIDRFromSubnetFile(multi, "FLANNEL_IPV6_SUBNET"); got.String() != "fd00:10:244:3::/64" {
		t.Errorf("FLANNEL_IPV6_SUBNET read back as %s", got)
	}
}
