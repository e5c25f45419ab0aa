// Copyright 2015 flannel authors
// Copyright 2025 kubewright authors
//
// Licensed under the Apache License, Version 2.0 (the "License");
// you may not use this file except in compliance with the License.
// You may obtain a copy of the License at
//
//     http://www.apache.org/licenses/LICENSE-2.0
//
// Unless required by applicable law or agreed to in writing, software
// distributed under the License is distributed on an "AS IS" BASIS,
// WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
// See the License for the specific language governing permissions and
// limitations under the License.

// Command flanneld is kubewright's build of flannel's node agent, for the image
// ghcr.io/flannel-io/flannel:v0.28.10 that hack/build-artifacts.sh makes.
//
// It is based on main.go of github.com/flannel-io/flannel v0.28.10 (Apache-2.0,
// "Copyright 2015 flannel authors") and follows its startup sequence step by step:
// kube subnet manager, network config, interface lookup, backend registration
// (which acquires the node's lease from node.spec.podCIDR), iptables masquerade
// and forward rules, /run/flannel/subnet.env, then the backend's run loop and the
// NodeNetworkUnavailable=false condition. The flags keep upstream's names,
// defaults and FLANNELD_* environment variables, so the upstream kube-flannel.yml
// DaemonSet runs it unchanged.
//
// Why our own main: flannel's main package imports every backend, and the
// tencentvpc backend's tencentcloud SDK modules are not served by the Go module
// proxy this project builds from, so `go build github.com/flannel-io/flannel`
// cannot work here; the udp backend also needs cgo. flannel's packages build
// fine, so this main imports only what a Kubernetes cluster needs. Changes from
// upstream's main.go, all deliberate:
//   - backends: vxlan and host-gw only (no udp, ipip, ipsec, wireguard,
//     extension, alloc, tencentvpc); other types fail with "unknown backend type";
//   - subnet manager: --kube-subnet-mgr only; the etcd flags are gone and running
//     without --kube-subnet-mgr is an error;
//   - traffic manager: iptables only. The image ships Debian's iptables (nf_tables
//     backend) but no nft binary, so "EnableNFTables": true is refused up front,
//     and upstream's clean-up of leftover nftables rules (which needs nft) is skipped;
//   - flags are parsed in main instead of init, and the flag set, the health
//     handlers and the subnet-file readers are small functions with tests.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/coreos/pkg/flagutil"
	"github.com/flannel-io/flannel/pkg/backend"
	"github.com/flannel-io/flannel/pkg/ip"
	"github.com/flannel-io/flannel/pkg/ipmatch"
	"github.com/flannel-io/flannel/pkg/subnet"
	"github.com/flannel-io/flannel/pkg/subnet/kube"
	"github.com/flannel-io/flannel/pkg/trafficmngr/iptables"
	"github.com/flannel-io/flannel/pkg/version"
	"github.com/joho/godotenv"
	log "k8s.io/klog/v2"

	// Backends register themselves in init().
	_ "github.com/flannel-io/flannel/pkg/backend/hostgw"
	_ "github.com/flannel-io/flannel/pkg/backend/vxlan"
)

type flagSlice []string

func (t *flagSlice) String() string       { return fmt.Sprintf("%v", *t) }
func (t *flagSlice) Set(val string) error { *t = append(*t, val); return nil }

// cmdLineOpts are upstream's CmdLineOpts without the etcd fields.
type cmdLineOpts struct {
	version                   bool
	kubeSubnetMgr             bool
	kubeApiUrl                string
	kubeAnnotationPrefix      string
	kubeConfigFile            string
	iface                     flagSlice
	ifaceRegex                flagSlice
	ipMasq                    bool
	ipMasqRandomFullyDisable  bool
	ifaceCanReach             string
	subnetFile                string
	publicIP                  string
	publicIPv6                string
	healthzIP                 string
	healthzPort               int
	iptablesResyncSeconds     int
	iptablesForwardRules      bool
	blackholeRoute            bool
	netConfPath               string
	setNodeNetworkUnavailable bool
}

var errCanceled = errors.New("canceled")

// errInterrupted is what upstream compares CompleteLease's error with.
var errInterrupted = errors.New("interrupted")

// newFlagSet defines upstream's flags (same names, defaults and help) on a new
// flag set, plus klog's -v, -vmodule and -log_backtrace_at, as upstream does.
func newFlagSet(opts *cmdLineOpts, errorHandling flag.ErrorHandling) *flag.FlagSet {
	fs := flag.NewFlagSet("flanneld", errorHandling)
	fs.Var(&opts.iface, "iface", "interface to use (IP or name) for inter-host communication. Can be specified multiple times to check each option in order. Returns the first match found.")
	fs.Var(&opts.ifaceRegex, "iface-regex", "regex expression to match the first interface to use (IP or name) for inter-host communication. Can be specified multiple times to check each regex in order. Returns the first match found. Regexes are checked after specific interfaces specified by the iface option have already been checked.")
	fs.StringVar(&opts.ifaceCanReach, "iface-can-reach", "", "detect interface to use (IP or name) for inter-host communication based on which will be used for provided IP. This is exactly the interface to use of command 'ip route get <ip-address>'")
	fs.StringVar(&opts.subnetFile, "subnet-file", "/run/flannel/subnet.env", "filename where env variables (subnet, MTU, ... ) will be written to")
	fs.StringVar(&opts.publicIP, "public-ip", "", "IP accessible by other nodes for inter-host communication")
	fs.StringVar(&opts.publicIPv6, "public-ipv6", "", "IPv6 accessible by other nodes for inter-host communication")
	fs.BoolVar(&opts.ipMasq, "ip-masq", false, "setup IP masquerade rule for traffic destined outside of overlay network")
	fs.BoolVar(&opts.ipMasqRandomFullyDisable, "ip-masq-fully-random-disable", false, "disable fully-random mode for MASQUERADE")
	fs.BoolVar(&opts.kubeSubnetMgr, "kube-subnet-mgr", false, "contact the Kubernetes API for subnet assignment (required: this build has no etcd subnet manager)")
	fs.StringVar(&opts.kubeApiUrl, "kube-api-url", "", "Kubernetes API server URL. Does not need to be specified if flannel is running in a pod.")
	fs.StringVar(&opts.kubeAnnotationPrefix, "kube-annotation-prefix", "flannel.alpha.coreos.com", `Kubernetes annotation prefix. Can contain single slash "/", otherwise it will be appended at the end.`)
	fs.StringVar(&opts.kubeConfigFile, "kubeconfig-file", "", "kubeconfig file location. Does not need to be specified if flannel is running in a pod.")
	fs.BoolVar(&opts.version, "version", false, "print version and exit")
	fs.StringVar(&opts.healthzIP, "healthz-ip", "0.0.0.0", "the IP address for healthz server to listen")
	fs.IntVar(&opts.healthzPort, "healthz-port", 0, "the port for healthz server to listen(0 to disable)")
	fs.IntVar(&opts.iptablesResyncSeconds, "iptables-resync", 5, "resync period for iptables rules, in seconds")
	fs.BoolVar(&opts.iptablesForwardRules, "iptables-forward-rules", true, "add default accept rules to FORWARD chain in iptables")
	fs.BoolVar(&opts.blackholeRoute, "ip-blackhole-route", false, "add blackroute route ont the node for the local podCIDR")
	fs.StringVar(&opts.netConfPath, "net-config-path", "/etc/kube-flannel/net-conf.json", "path to the network configuration file")
	fs.BoolVar(&opts.setNodeNetworkUnavailable, "set-node-network-unavailable", true, "set NodeNetworkUnavailable after ready")
	for _, name := range []string{"v", "vmodule", "log_backtrace_at"} {
		f := flag.Lookup(name)
		fs.Var(f.Value, f.Name, f.Usage)
	}
	return fs
}

// initKlog registers klog's flags on flag.CommandLine (newFlagSet copies three of
// them) and sends every entry to stderr, as upstream's init does.
func initKlog() error {
	log.InitFlags(nil)
	for k, v := range map[string]string{
		"logtostderr": "true",
		// Honor --stderrthreshold with --logtostderr (kubernetes/klog#432).
		"legacy_stderr_threshold_behavior": "false",
		"stderrthreshold":                  "INFO",
	} {
		if err := flag.Set(k, v); err != nil {
			return fmt.Errorf("klog flag %s: %w", k, err)
		}
	}
	return nil
}

// parseOptions parses the command line and then, like upstream, fills flags not
// given on it from FLANNELD_<FLAG> environment variables (FLANNELD_IFACE, ...).
func parseOptions(args []string, stderr io.Writer) (*cmdLineOpts, error) {
	opts := &cmdLineOpts{}
	fs := newFlagSet(opts, flag.ContinueOnError)
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if err := flagutil.SetFlagsFromEnv(fs, "FLANNELD"); err != nil {
		return nil, fmt.Errorf("flags from FLANNELD_* environment: %w", err)
	}
	return opts, nil
}

func main() {
	if err := initKlog(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	opts, err := parseOptions(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "flanneld:", err)
		os.Exit(2)
	}
	if opts.version {
		// Upstream prints the version to stderr.
		fmt.Fprintln(os.Stderr, version.Version)
		os.Exit(0)
	}
	os.Exit(run(opts))
}

// run is upstream's main after flag parsing; it returns the exit code.
func run(opts *cmdLineOpts) int {
	log.Infof("CLI flags config: %+v", *opts)
	if !opts.kubeSubnetMgr {
		log.Error("This flanneld has only the Kubernetes subnet manager: run it with --kube-subnet-mgr")
		return 1
	}

	// The main context: every goroutine exits when it is canceled; those started
	// here are tracked by wg so shutdown waits for them.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wg := sync.WaitGroup{}
	exit := func(code int) int {
		cancel()
		wg.Wait()
		return code
	}

	sm, err := kube.NewSubnetManager(ctx, opts.kubeApiUrl, opts.kubeConfigFile, opts.kubeAnnotationPrefix,
		opts.netConfPath, opts.setNodeNetworkUnavailable)
	if err != nil {
		if os.Getenv("CONT_WHEN_CACHE_NOT_READY") == "true" && errors.Is(err, context.DeadlineExceeded) && sm != nil {
			log.Error("Timed out waiting for node controller sync. Continuing anyway.")
		} else {
			log.Error("Failed to create SubnetManager: ", err)
			return 1
		}
	}
	log.Infof("Created subnet manager: %s", sm.Name())

	log.Info("Installing signal handlers")
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	wg.Add(1)
	go func() {
		shutdownHandler(ctx, sigs, cancel)
		wg.Done()
	}()

	var ready atomic.Bool
	if opts.healthzPort > 0 {
		if err := runHealthz(ctx, net.JoinHostPort(opts.healthzIP, strconv.Itoa(opts.healthzPort)), &ready, &wg); err != nil {
			log.Errorf("Start healthz server error. %v", err)
			return exit(1)
		}
	}

	// Fetch the network config (backend type etc.).
	config, err := getConfig(ctx, sm)
	if err == errCanceled {
		return exit(0)
	}
	if config.EnableNFTables {
		log.Error(`net-conf.json sets "EnableNFTables": true, but this flanneld and its image have only the iptables traffic manager (no nft binary); set it to false`)
		return exit(1)
	}

	ipStack, err := ipmatch.GetIPFamily(config.EnableIPv4, config.EnableIPv6)
	if err != nil {
		log.Error(err.Error())
		return exit(1)
	}

	// Since Kubernetes 1.30 kubeadm does not check that br_netfilter is loaded;
	// without it pod traffic on the bridge bypasses iptables, so refuse to start.
	if config.EnableIPv4 {
		if _, err := os.Stat("/proc/sys/net/bridge/bridge-nf-call-iptables"); os.IsNotExist(err) {
			log.Error("Failed to check br_netfilter: ", err)
			return exit(1)
		}
	}
	if config.EnableIPv6 {
		if _, err := os.Stat("/proc/sys/net/bridge/bridge-nf-call-ip6tables"); os.IsNotExist(err) {
			log.Error("Failed to check br_netfilter: ", err)
			return exit(1)
		}
	}

	extIface, err := lookupExtIface(ctx, opts, sm, ipStack)
	if err != nil {
		log.Error(err)
		return exit(1)
	}

	// Create the backend and register the network with it; registering acquires
	// this node's lease (its podCIDR) from the subnet manager.
	bm := backend.NewManager(ctx, sm, extIface)
	be, err := bm.GetBackend(config.BackendType)
	if err != nil {
		log.Errorf("Error fetching backend: %s (this flanneld has vxlan and host-gw)", err)
		return exit(1)
	}
	bn, err := be.RegisterNetwork(ctx, &wg, config)
	if err != nil {
		log.Errorf("Error registering network: %s", err)
		return exit(1)
	}

	trafficMngr := &iptables.IPTablesManager{}
	if err := trafficMngr.Init(ctx); err != nil {
		log.Error(err)
		return exit(1)
	}

	if opts.ipMasq {
		prevNetwork := readCIDRFromSubnetFile(opts.subnetFile, "FLANNEL_NETWORK")
		prevSubnet := readCIDRFromSubnetFile(opts.subnetFile, "FLANNEL_SUBNET")
		prevIPv6Network := readIP6CIDRFromSubnetFile(opts.subnetFile, "FLANNEL_IPV6_NETWORK")
		prevIPv6Subnet := readIP6CIDRFromSubnetFile(opts.subnetFile, "FLANNEL_IPV6_SUBNET")
		err = trafficMngr.SetupAndEnsureMasqRules(ctx,
			config.Network, prevSubnet, prevNetwork,
			config.IPv6Network, prevIPv6Subnet, prevIPv6Network,
			bn.Lease(), opts.iptablesResyncSeconds, opts.ipMasqRandomFullyDisable)
		if err != nil {
			log.Errorf("Failed to setup masq rules, %v", err)
			return exit(1)
		}
	}

	// ACCEPT rules in FORWARD for the flannel network: Docker >= 1.13 and some
	// distributions default the FORWARD policy to DROP.
	if opts.iptablesForwardRules {
		trafficMngr.SetupAndEnsureForwardRules(ctx, config.Network, config.IPv6Network, opts.iptablesResyncSeconds)
	}

	// A blackhole route for the local pod CIDR, for setups without the bridge plugin.
	if opts.blackholeRoute {
		resync := time.Duration(opts.iptablesResyncSeconds) * time.Second
		if config.EnableIPv4 {
			go keepRoute(ctx, resync, func() error { return ip.AddBlackholeV4Route(bn.Lease().Subnet.ToIPNet()) })
		}
		if config.EnableIPv6 {
			go keepRoute(ctx, resync, func() error { return ip.AddBlackholeV6Route(bn.Lease().IPv6Subnet.ToIPNet()) })
		}
	}

	// subnet.env is what the flannel CNI plugin reads; the kube subnet manager
	// writes it (atomically) and remembers it for later cluster-CIDR updates.
	if err := sm.HandleSubnetFile(opts.subnetFile, config, opts.ipMasq, bn.Lease().Subnet, bn.Lease().IPv6Subnet, bn.MTU()); err != nil {
		// Upstream continues, but stays not ready.
		log.Warningf("Failed to write subnet file: %s", err)
	} else {
		log.Infof("Wrote subnet file to %s", opts.subnetFile)
		ready.Store(true)
		log.Info("flannel is ready")
	}

	// Run the backend (watches other nodes' leases, programs routes/FDB) until ctx is done.
	log.Info("Running backend.")
	wg.Add(1)
	go func() {
		bn.Run(ctx)
		wg.Done()
	}()

	if _, err := daemon.SdNotify(false, "READY=1"); err != nil {
		log.Errorf("Failed to notify systemd the message READY=1 %v", err)
	}

	// Sets the node's NetworkUnavailable condition to false.
	if err := sm.CompleteLease(ctx, bn.Lease(), &wg); err != nil {
		log.Errorf("CompleteLease execute error err: %v", err)
		if strings.EqualFold(err.Error(), errInterrupted.Error()) {
			cancel()
		}
	}

	log.Info("Waiting for all goroutines to exit")
	wg.Wait()
	log.Info("Exiting cleanly...")
	return 0
}

// lookupExtIface picks the interface for inter-host traffic exactly as upstream:
// the node's stored public-ip annotation wins over --public-ip; with no
// --iface/--iface-regex/--iface-can-reach, the default route's interface.
func lookupExtIface(ctx context.Context, opts *cmdLineOpts, sm subnet.Manager, ipStack int) (*backend.ExternalInterface, error) {
	annotatedPublicIP, annotatedPublicIPv6 := sm.GetStoredPublicIP(ctx)
	if annotatedPublicIP != "" {
		opts.publicIP = annotatedPublicIP
	}
	if annotatedPublicIPv6 != "" {
		opts.publicIPv6 = annotatedPublicIPv6
	}
	optsPublicIP := ipmatch.PublicIPOpts{PublicIP: opts.publicIP, PublicIPv6: opts.publicIPv6}

	if len(opts.iface) == 0 && len(opts.ifaceRegex) == 0 && len(opts.ifaceCanReach) == 0 {
		var extIface *backend.ExternalInterface
		var err error
		if len(opts.publicIP) > 0 {
			extIface, err = ipmatch.LookupExtIface(opts.publicIP, "", "", ipStack, optsPublicIP)
		} else {
			extIface, err = ipmatch.LookupExtIface(opts.publicIPv6, "", "", ipStack, optsPublicIP)
		}
		if err != nil {
			return nil, fmt.Errorf("Failed to find any valid interface to use: %w", err)
		}
		return extIface, nil
	}
	for _, iface := range opts.iface {
		extIface, err := ipmatch.LookupExtIface(iface, "", "", ipStack, optsPublicIP)
		if err != nil {
			log.Infof("Could not find valid interface matching %s: %s", iface, err)
		}
		if extIface != nil {
			return extIface, nil
		}
	}
	for _, ifaceRegex := range opts.ifaceRegex {
		extIface, err := ipmatch.LookupExtIface("", ifaceRegex, "", ipStack, optsPublicIP)
		if err != nil {
			log.Infof("Could not find valid interface matching %s: %s", ifaceRegex, err)
		}
		if extIface != nil {
			return extIface, nil
		}
	}
	if len(opts.ifaceCanReach) > 0 {
		extIface, err := ipmatch.LookupExtIface("", "", opts.ifaceCanReach, ipStack, optsPublicIP)
		if err != nil {
			log.Infof("Could not find valid interface matching ifaceCanReach: %s: %s", opts.ifaceCanReach, err)
		}
		if extIface != nil {
			return extIface, nil
		}
	}
	return nil, errors.New("Failed to find interface to use that matches the interfaces and/or regexes provided")
}

func keepRoute(ctx context.Context, every time.Duration, add func() error) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
			if err := add(); err != nil {
				log.Errorf("Failed to setup blackhole route, %v", err)
			}
		}
	}
}

func shutdownHandler(ctx context.Context, sigs chan os.Signal, cancel context.CancelFunc) {
	select {
	case <-ctx.Done():
		log.Info("Stopping shutdownHandler...")
	case <-sigs:
		cancel()
		log.Info("shutdownHandler sent cancel signal...")
	}
	// Back to the default behaviour in case we do not exit cleanly.
	signal.Stop(sigs)
}

// getConfig retries every second until the subnet manager has the network config.
func getConfig(ctx context.Context, sm subnet.Manager) (*subnet.Config, error) {
	for {
		config, err := sm.GetNetworkConfig(ctx)
		if err != nil {
			log.Errorf("Couldn't fetch network config: %s", err)
		} else if config == nil {
			log.Warningf("Couldn't find network config: %s", err)
		} else {
			log.Infof("Found network config - Backend type: %s", config.BackendType)
			return config, nil
		}
		select {
		case <-ctx.Done():
			return nil, errCanceled
		case <-time.After(1 * time.Second):
		}
	}
}

// healthzHandler serves upstream's two endpoints: /healthz answers 200 while the
// process runs, /readyz 200 once subnet.env is written (the lease is acquired,
// the backend registered and the traffic rules in place), else 503.
func healthzHandler(ready *atomic.Bool) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("flanneld is running"))
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		if ready.Load() {
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write([]byte("flanneld is ready"))
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("flanneld is not ready yet"))
	})
	return mux
}

// runHealthz listens on address and serves healthzHandler until ctx is done.
// Upstream panics when the listener fails; here a bind error is returned.
func runHealthz(ctx context.Context, address string, ready *atomic.Bool, wg *sync.WaitGroup) error {
	log.Infof("Start healthz server on %s", address)
	l, err := net.Listen("tcp", address)
	if err != nil {
		return err
	}
	server := &http.Server{Handler: healthzHandler(ready), ReadHeaderTimeout: 10 * time.Second}
	wg.Add(2)
	go func() {
		defer wg.Done()
		if err := server.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Errorf("healthz server: %v", err)
		}
	}()
	go func() {
		defer wg.Done()
		<-ctx.Done()
		sctx, scancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer scancel()
		if err := server.Shutdown(sctx); err != nil {
			log.Errorf("Shutdown healthz server error. %v", err)
		}
	}()
	return nil
}

// readCIDRFromSubnetFile returns the one IPv4 CIDR stored under key in a
// previous subnet.env, or the zero network when there is none or several.
func readCIDRFromSubnetFile(path, key string) ip.IP4Net {
	cidrs := readCIDRsFromSubnetFile(path, key)
	switch len(cidrs) {
	case 0:
		log.Warningf("no subnet found for key: %s in file: %s", key, path)
		return ip.IP4Net{IP: 0, PrefixLen: 0}
	case 1:
		return cidrs[0]
	default:
		log.Errorf("error reading subnet: more than 1 entry found for key: %s in file %s: ", key, path)
		return ip.IP4Net{IP: 0, PrefixLen: 0}
	}
}

func readCIDRsFromSubnetFile(path, key string) []ip.IP4Net {
	var out []ip.IP4Net
	for _, n := range subnetFileNets(path, key) {
		if n.IP.To4() != nil {
			out = append(out, ip.FromIPNet(n))
		}
	}
	return out
}

// readIP6CIDRFromSubnetFile is readCIDRFromSubnetFile for IPv6.
func readIP6CIDRFromSubnetFile(path, key string) ip.IP6Net {
	var cidrs []ip.IP6Net
	for _, n := range subnetFileNets(path, key) {
		cidrs = append(cidrs, ip.FromIP6Net(n))
	}
	if len(cidrs) == 1 {
		return cidrs[0]
	}
	if len(cidrs) == 0 {
		log.Warningf("no subnet found for key: %s in file: %s", key, path)
	} else {
		log.Errorf("error reading subnet: more than 1 entry found for key: %s in file %s: ", key, path)
	}
	return ip.IP6Net{IP: (*ip.IP6)(big.NewInt(0)), PrefixLen: 0}
}

// subnetFileNets parses the comma-separated CIDRs under key in an env file,
// skipping (and logging) unparsable ones, as upstream's readers do.
func subnetFileNets(path, key string) []*net.IPNet {
	if _, err := os.Stat(path); os.IsNotExist(err) {
		return nil
	}
	vals, err := godotenv.Read(path)
	if err != nil {
		log.Errorf("Couldn't fetch previous %s from subnet file at %s: %s", key, path, err)
		return nil
	}
	s, ok := vals[key]
	if !ok {
		return nil
	}
	var out []*net.IPNet
	for _, c := range strings.Split(s, ",") {
		_, n, err := net.ParseCIDR(c)
		if err != nil {
			log.Errorf("Couldn't parse previous %s from subnet file at %s: %s", key, path, err)
			continue
		}
		out = append(out, n)
	}
	return out
}
