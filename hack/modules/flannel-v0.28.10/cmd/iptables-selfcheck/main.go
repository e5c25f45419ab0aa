// Command iptables-selfcheck proves that the iptables bundled in the flannel
// image works for flanneld. hack/build-artifacts.sh extracts the image's root
// file system, copies this program in (it is not part of the image) and runs it
// there with chroot in a new, empty network namespace, so nothing on the build
// host changes:
//
//	unshare --net chroot ROOTFS /iptables-selfcheck
//
// It drives the same code flanneld runs: coreos/go-iptables' version and mode
// detection (which must say nf_tables: the image ships Debian's
// xtables-nft-multi) and flannel's iptables traffic manager, which sets up the
// masquerade and forward rules for a sample lease through iptables and
// iptables-restore. flannel's manager only logs iptables failures, so the check
// then reads the rules back and fails unless every expected one is there,
// including the extension matches and targets (comment, mark, MASQUERADE
// --random-fully) whose modules live in /usr/lib/x86_64-linux-gnu/xtables.
package main

import (
	"context"
	"fmt"
	"math/big"
	"net"
	"os"
	"reflect"
	"strings"
	"time"

	goiptables "github.com/coreos/go-iptables/iptables"
	"github.com/flannel-io/flannel/pkg/ip"
	"github.com/flannel-io/flannel/pkg/lease"
	"github.com/flannel-io/flannel/pkg/trafficmngr/iptables"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "iptables-selfcheck: FAIL:", err)
		os.Exit(1)
	}
	fmt.Println("iptables-selfcheck: ok")
}

func mustCIDR4(s string) ip.IP4Net {
	_, n, err := net.ParseCIDR(s)
	if err != nil {
		panic(err)
	}
	return ip.FromIPNet(n)
}

func mustCIDR6(s string) ip.IP6Net {
	_, n, err := net.ParseCIDR(s)
	if err != nil {
		panic(err)
	}
	return ip.FromIP6Net(n)
}

func run() error {
	for _, proto := range []goiptables.Protocol{goiptables.ProtocolIPv4, goiptables.ProtocolIPv6} {
		ipt, err := goiptables.NewWithProtocol(proto)
		if err != nil {
			return fmt.Errorf("go-iptables (proto %v): %w", proto, err)
		}
		// go-iptables keeps the mode it parsed from `iptables --version` unexported;
		// reading it is the only way to see what it detected.
		mode := reflect.ValueOf(ipt).Elem().FieldByName("mode").String()
		v1, v2, v3 := ipt.GetIptablesVersion()
		fmt.Printf("go-iptables proto %v: version %d.%d.%d mode %q random-fully %t\n", proto, v1, v2, v3, mode, ipt.HasRandomFully())
		if mode != "nf_tables" {
			return fmt.Errorf("go-iptables detected mode %q for proto %v, want nf_tables", mode, proto)
		}
		if !ipt.HasRandomFully() {
			return fmt.Errorf("go-iptables says iptables %d.%d.%d has no --random-fully", v1, v2, v3)
		}
		if _, err := iptables.NewIPTablesRestoreWithProtocol(proto); err != nil {
			return fmt.Errorf("flannel's iptables-restore wrapper (proto %v): %w", proto, err)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	network4, subnet4 := mustCIDR4("10.244.0.0/16"), mustCIDR4("10.244.3.0/24")
	network6, subnet6 := mustCIDR6("fd00:10:244::/56"), mustCIDR6("fd00:10:244:3::/64")
	l := &lease.Lease{EnableIPv4: true, EnableIPv6: true, Subnet: subnet4, IPv6Subnet: subnet6}
	m := &iptables.IPTablesManager{}
	if err := m.Init(ctx); err != nil {
		return err
	}
	// No previous subnet.env: the zero "previous" networks flanneld passes on a
	// first start (an IPv6 zero needs a non-nil address).
	zero6 := func() ip.IP6Net { return ip.IP6Net{IP: (*ip.IP6)(big.NewInt(0)), PrefixLen: 0} }
	if err := m.SetupAndEnsureMasqRules(ctx, network4, ip.IP4Net{}, ip.IP4Net{},
		network6, zero6(), zero6(), l, 3600, false); err != nil {
		return fmt.Errorf("SetupAndEnsureMasqRules: %w", err)
	}
	m.SetupAndEnsureForwardRules(ctx, network4, network6, 3600)
	// The setup is synchronous; give nothing time to retry, read back now.
	time.Sleep(100 * time.Millisecond)

	want := map[goiptables.Protocol]map[string][]string{
		goiptables.ProtocolIPv4: {
			"nat/POSTROUTING": {`-A POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG`},
			"nat/FLANNEL-POSTRTG": {
				`-A FLANNEL-POSTRTG -m mark --mark 0x4000/0x4000 -m comment --comment "flanneld masq" -j RETURN`,
				`-A FLANNEL-POSTRTG -s 10.244.3.0/24 -d 10.244.0.0/16 -m comment --comment "flanneld masq" -j RETURN`,
				`-A FLANNEL-POSTRTG -s 10.244.0.0/16 -d 10.244.3.0/24 -m comment --comment "flanneld masq" -j RETURN`,
				`-A FLANNEL-POSTRTG ! -s 10.244.0.0/16 -d 10.244.3.0/24 -m comment --comment "flanneld masq" -j RETURN`,
				`-A FLANNEL-POSTRTG -s 10.244.0.0/16 ! -d 224.0.0.0/4 -m comment --comment "flanneld masq" -j MASQUERADE --random-fully`,
				`-A FLANNEL-POSTRTG ! -s 10.244.0.0/16 -d 10.244.0.0/16 -m comment --comment "flanneld masq" -j MASQUERADE --random-fully`,
			},
			"filter/FORWARD": {`-A FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD`},
			"filter/FLANNEL-FWD": {
				`-A FLANNEL-FWD -s 10.244.0.0/16 -m comment --comment "flanneld forward" -j ACCEPT`,
				`-A FLANNEL-FWD -d 10.244.0.0/16 -m comment --comment "flanneld forward" -j ACCEPT`,
			},
		},
		goiptables.ProtocolIPv6: {
			"nat/POSTROUTING": {`-A POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG`},
			"nat/FLANNEL-POSTRTG": {
				`-A FLANNEL-POSTRTG -s fd00:10:244::/56 ! -d ff00::/8 -m comment --comment "flanneld masq" -j MASQUERADE --random-fully`,
			},
			"filter/FLANNEL-FWD": {
				`-A FLANNEL-FWD -s fd00:10:244::/56 -m comment --comment "flanneld forward" -j ACCEPT`,
			},
		},
	}
	for proto, chains := range want {
		ipt, err := goiptables.NewWithProtocol(proto)
		if err != nil {
			return err
		}
		for tc, rules := range chains {
			table, chain, _ := strings.Cut(tc, "/")
			got, err := ipt.List(table, chain)
			if err != nil {
				return fmt.Errorf("list %s (proto %v): %w", tc, proto, err)
			}
			for _, r := range rules {
				found := false
				for _, g := range got {
					found = found || g == r
				}
				if !found {
					return fmt.Errorf("proto %v: %s lacks rule %q; it has:\n  %s", proto, tc, r, strings.Join(got, "\n  "))
				}
			}
			fmt.Printf("proto %v %s: %d rules, all %d expected present\n", proto, tc, len(got), len(rules))
		}
		// flannel's resync loop checks its rules with `iptables -C` (go-iptables'
		// Exists); a missing rule must read as missing, not as an error.
		mark := []string{"-m", "mark", "--mark", "0x4000/0x4000", "-m", "comment", "--comment", "flanneld masq", "-j", "RETURN"}
		if ok, err := ipt.Exists("nat", "FLANNEL-POSTRTG", mark...); err != nil || !ok {
			return fmt.Errorf("proto %v: iptables -C %q = %t, %v; want true", proto, mark, ok, err)
		}
		absent := map[goiptables.Protocol]string{goiptables.ProtocolIPv4: "192.0.2.0/24", goiptables.ProtocolIPv6: "2001:db8::/64"}[proto]
		if ok, err := ipt.Exists("nat", "FLANNEL-POSTRTG", "-s", absent, "-j", "RETURN"); err != nil || ok {
			return fmt.Errorf("proto %v: iptables -C on an absent rule = %t, %v; want false", proto, ok, err)
		}
	}
	return nil
}
