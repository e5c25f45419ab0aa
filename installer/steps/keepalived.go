package steps

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/kubewright/kubewright/installer/engine"
	"github.com/kubewright/kubewright/installer/render"
	"github.com/kubewright/kubewright/installer/steps/stepkit"
)

// Keepalived is the `keepalived` step: VRRP on every master holding the
// control-plane VIP, with a track script on /readyz through the local haproxy
// so a master that cannot serve the API gives the VIP up (a restarting local
// apiserver does not: haproxy routes around it). Masters get priorities in
// inventory order (150, 140, ...), all start as BACKUP with nopreempt.
type Keepalived struct{}

func (Keepalived) Name() string { return "keepalived" }

func (Keepalived) group(t *engine.Target) (serviceGroup, error) {
	c := t.Cluster
	idx := masterIndex(c, t.Inv.Name)
	if idx < 0 {
		return serviceGroup{}, fmt.Errorf("keepalived runs on masters only; %s is not in the masters group", t.Inv.Name)
	}
	ep := c.Spec.ControlPlaneEndpoint
	pass, err := vrrpPassword(t)
	if err != nil {
		return serviceGroup{}, err
	}
	var peers []render.KeepalivedPeer
	for _, m := range c.Masters() {
		if m.Name != t.Inv.Name {
			peers = append(peers, render.KeepalivedPeer{Name: m.Name, Address: internalAddress(m)})
		}
	}
	vip, prefix := ep.VIP, ep.VIPPrefix
	if p, err := netip.ParsePrefix(vip); err == nil {
		vip, prefix = p.Addr().String(), p.Bits()
	}
	cfg, err := render.KeepalivedConfig(render.KeepalivedParams{
		HostName:  t.Inv.Name,
		Address:   internalAddress(t.Inv),
		Interface: ep.Interface,
		VIP:       vip,
		VIPPrefix: prefix,
		RouterID:  ep.RouterID,
		Priority:  max(150-10*idx, 1),
		AuthPass:  pass,
		Unicast:   ep.UnicastPeers,
		Peers:     peers,
	})
	if err != nil {
		return serviceGroup{}, err
	}
	return serviceGroup{
		files: []stepkit.File{
			{Path: render.KeepalivedConf, Content: []byte(cfg), Mode: 0o600, Owner: "root:root"},
			{Path: render.KeepalivedCheck, Content: []byte(render.KeepalivedCheckScript(c.Spec.ControlPlaneEndpoint.Port)), Mode: 0o700, Owner: "root:root"},
		},
		services:      []service{{unit: "keepalived.service", dependsOn: func(string) bool { return true }}},
		activeTimeout: 30 * time.Second,
	}, nil
}

// vrrpPassword comes from the environment variable the inventory names, or
// else from the password install generated in the state directory.
func vrrpPassword(t *engine.Target) (string, error) {
	if env := t.Cluster.Spec.ControlPlaneEndpoint.AuthPassEnv; env != "" {
		v, ok := os.LookupEnv(env)
		if !ok || v == "" {
			return "", fmt.Errorf("controlPlaneEndpoint.authPassEnv names %s, which is not set; export it or remove authPassEnv to use a generated password", env)
		}
		return v, nil
	}
	b, err := readSecret(t, vrrpPassFile)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

func (s Keepalived) Plan(ctx context.Context, t *engine.Target) ([]engine.Change, error) {
	g, err := s.group(t)
	if err != nil {
		return nil, err
	}
	return g.plan(ctx, t)
}

func (s Keepalived) Apply(ctx context.Context, t *engine.Target, plan []engine.Change) error {
	g, err := s.group(t)
	if err != nil {
		return err
	}
	return g.apply(ctx, t, plan)
}
