package steps

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/kubewright/kubewright/addons"
	"github.com/kubewright/kubewright/installer/artifacts"
	"github.com/kubewright/kubewright/installer/engine"
	"github.com/kubewright/kubewright/installer/inventory"
	"github.com/kubewright/kubewright/installer/kube"
	"github.com/kubewright/kubewright/installer/render"
)

// SharedAddonsTimeout carries install's --addons-timeout: how long the
// `addons` step waits for the add-ons' DaemonSets and Deployments to be ready.
const SharedAddonsTimeout = "addons.timeout"

// DefaultAddonsTimeout bounds the rollout wait when install sets none: long
// enough for every node to start the CNI and DNS pods from imported images.
const DefaultAddonsTimeout = 5 * time.Minute

// Addons is the `addons` step: it renders the network plugin, cluster DNS,
// optional NodeLocal DNSCache and the optional add-ons of spec.addons
// (storage, metrics-server, monitoring, logging, ingress) from the
// inventory (package addons) and
// applies them through the VIP with server-side apply (installer/kube),
// from the operator's machine, so like cluster-bootstrap it acts once per
// run, on the first master. Plan is a server-side dry run, so a re-run on an
// up-to-date cluster plans nothing; Apply applies, prunes what is no longer
// rendered and waits for the rollouts.
type Addons struct{}

func (Addons) Name() string { return "addons" }

// networkAddons are the add-ons that are a cluster's CNI plugin; at most one
// may ever be in the record.
var networkAddons = []string{addons.Calico, addons.Flannel, addons.Weave}

// dnsAddons are the cluster DNS providers; both serve the kube-dns Service.
var dnsAddons = []string{addons.CoreDNS, addons.KubeDNS}

// AddonParams builds the add-on parameters from the inventory, the artifacts
// (their images win, since they are what nodes imported) and the
// environment (the Weave password).
func AddonParams(c *inventory.Cluster, m *artifacts.Manifest) (addons.Params, error) {
	p := addons.ParamsFromInventory(c)
	p.CNIBinDir = render.CNIBinDirDebian
	p.Images = map[string]string{}
	if m != nil {
		for _, img := range m.Images {
			if f, ok := m.File(img.File); ok && f.Component != "" {
				p.Images[f.Component] = img.Name
			}
		}
	}
	if p.NodeLocalDNS && p.ProxyMode == "ipvs" {
		// In ipvs mode node-local-dns cannot take over the kube-dns IP, so
		// kubelets would have to point pods at 169.254.20.10 instead.
		return p, fmt.Errorf("%s: spec.dns.nodeLocalDNS with spec.kubernetes.proxyMode ipvs needs the kubelets' clusterDNS set to %s, which kubewright does not do yet; fix: use proxyMode iptables, or set nodeLocalDNS: false", inventoryName(c), addons.NodeLocalDNSIP)
	}
	if env := c.Spec.Network.WeavePasswordEnv; env != "" && p.Plugin == addons.Weave {
		v := os.Getenv(env)
		if v == "" {
			return p, fmt.Errorf("spec.network.weavePasswordEnv names %s, which is empty or unset; fix: export %s=<password> before running kubewright, or remove weavePasswordEnv", env, env)
		}
		p.WeavePassword = v
	}
	if err := monitoringSecrets(c, &p); err != nil {
		return p, err
	}
	return p, nil
}

// monitoringSecrets resolves the monitoring add-on's secrets from the
// environment: the SMTP login and Grafana's admin password. A variable the
// inventory names must be set and non-empty.
func monitoringSecrets(c *inventory.Cluster, p *addons.Params) error {
	m := c.Spec.Addons.Monitoring
	if !p.Monitoring.Enabled {
		return nil
	}
	get := func(field, env string) (string, error) {
		if env == "" {
			return "", nil
		}
		v := os.Getenv(env)
		if v == "" {
			return "", fmt.Errorf("%s: spec.addons.monitoring.%s names %s, which is empty or unset; fix: export %s before running kubewright, or remove %s", inventoryName(c), field, env, env, lastField(field))
		}
		return v, nil
	}
	var err error
	if p.Monitoring.GrafanaAdminPassword, err = get("grafanaAdminPasswordEnv", m.GrafanaAdminPasswordEnv); err != nil {
		return err
	}
	if s := m.Receivers.SMTP; s != nil && p.Monitoring.SMTP != nil {
		if p.Monitoring.SMTP.Username, err = get("receivers.smtp.authUsernameEnv", s.AuthUsernameEnv); err != nil {
			return err
		}
		if p.Monitoring.SMTP.Password, err = get("receivers.smtp.authPasswordEnv", s.AuthPasswordEnv); err != nil {
			return err
		}
	}
	return nil
}

func lastField(path string) string {
	if i := strings.LastIndex(path, "."); i >= 0 {
		return path[i+1:]
	}
	return path
}

// etcdClientForMonitoring gives Prometheus the etcd healthcheck client
// certificate from the state directory's PKI (the one etcd members' health
// checks use: signed by the etcd CA, client auth only).
func etcdClientForMonitoring(stateDir string, p *addons.Params) error {
	if !p.Monitoring.Enabled {
		return nil
	}
	dir := PKIDir(stateDir)
	read := func(rel string) (string, error) {
		b, err := os.ReadFile(filepath.Join(dir, rel))
		if err != nil {
			return "", fmt.Errorf("monitoring: the etcd client certificate for Prometheus: %w (the PKI step creates it)", err)
		}
		return string(b), nil
	}
	var tc addons.TLSClient
	var err error
	if tc.CA, err = read("etcd/ca.crt"); err != nil {
		return err
	}
	if tc.Cert, err = read("etcd/healthcheck-client.crt"); err != nil {
		return err
	}
	if tc.Key, err = read("etcd/healthcheck-client.key"); err != nil {
		return err
	}
	p.Monitoring.EtcdClient = &tc
	return nil
}

// RenderAddons renders the inventory's add-ons with the artifacts' images.
// install calls it before any host is touched, so a bad add-on setting stops
// the run at once instead of after the cluster is up.
func RenderAddons(c *inventory.Cluster, m *artifacts.Manifest) ([]addons.Addon, error) {
	return renderAddonsWith(c, m, "")
}

// renderAddonsWith renders with the state directory's credentials when
// stateDir is set (the etcd client certificate Prometheus scrapes etcd
// with); install's early check has none yet and renders without the etcd
// job.
func renderAddonsWith(c *inventory.Cluster, m *artifacts.Manifest, stateDir string) ([]addons.Addon, error) {
	p, err := AddonParams(c, m)
	if err != nil {
		return nil, err
	}
	if stateDir != "" {
		if err := etcdClientForMonitoring(stateDir, &p); err != nil {
			return nil, err
		}
	}
	rendered, err := addons.Render(p)
	if err != nil {
		return nil, fmt.Errorf("render add-ons from %s: %w", inventoryName(c), err)
	}
	return rendered, nil
}

// renderAddons renders the inventory's add-ons as apply sets. Without the
// run's artifacts it fails rather than fall back to upstream image refs,
// which would roll the nodes onto images they never imported.
func renderAddons(t *engine.Target) ([]kube.AddonSet, error) {
	src, err := sharedSource(t)
	if err != nil {
		return nil, err
	}
	rendered, err := renderAddonsWith(t.Cluster, src.Manifest(), t.StateDir)
	if err != nil {
		return nil, err
	}
	sets := make([]kube.AddonSet, 0, len(rendered))
	for _, a := range rendered {
		sets = append(sets, kube.AddonSet{Name: a.Name, Objects: a.Objects})
	}
	return sets, nil
}

func inventoryName(c *inventory.Cluster) string {
	if c.Path != "" {
		return c.Path
	}
	return "the inventory"
}

// CheckAddonSwitch refuses to replace the cluster's network plugin or DNS
// provider: the old one's interfaces, routes and pod addresses stay on every
// node, so a switch would leave pods on two networks (a silent half
// migration). It also refuses to drop or replace the storage add-on, whose
// prune would delete the volumes. rec is what earlier runs applied; sets is what this run renders.
func CheckAddonSwitch(c *inventory.Cluster, rec *kube.Record, sets []kube.AddonSet) error {
	want := map[string]bool{}
	for _, s := range sets {
		want[s.Name] = true
	}
	var errs []error
	for _, group := range []struct {
		field, value string
		names        []string
	}{
		{"spec.network.plugin", c.Spec.Network.Plugin, networkAddons},
		{"spec.dns.provider", c.Spec.DNS.Provider, dnsAddons},
	} {
		for _, name := range group.names {
			if want[name] || len(rec.Addons[name].Objects) == 0 {
				continue
			}
			errs = append(errs, fmt.Errorf("%s: %s is %s, but this cluster runs %s; changing it on a running cluster is not supported (the old add-on's interfaces, routes and pod addresses stay on every node); fix: set %s: %s again, or rebuild the cluster with %s",
				inventoryName(c), group.field, group.value, name, group.field, name, group.value))
		}
	}
	// Removing or replacing the storage add-on deletes its CRDs and
	// controllers, and with them every volume it holds.
	for _, name := range storageAddons {
		if want[name] || len(rec.Addons[name].Objects) == 0 {
			continue
		}
		errs = append(errs, fmt.Errorf("%s: spec.addons.storage.provider is %s, but this cluster runs %s; removing it would delete every volume it holds; fix: set spec.addons.storage.provider: %s again (to retire it, move the data off and uninstall it by hand first)",
			inventoryName(c), orNone(c.Spec.Addons.Storage.Provider), name, name))
	}
	return errors.Join(errs...)
}

// storageAddons are the distributed storage add-ons; pruning one deletes
// its volumes.
var storageAddons = []string{addons.Longhorn, addons.RookCeph}

func orNone(s string) string {
	if s == "" {
		return inventory.StorageNone
	}
	return s
}

func (s Addons) applies(t *engine.Target) bool { return ClusterBootstrap{}.applies(t) }

// applier returns an apply engine for the cluster and the API endpoint (the
// VIP) it talks to.
func (s Addons) applier(t *engine.Target, timeout time.Duration) (*kube.Applier, string, error) {
	c, _, err := ClusterBootstrap{}.client(t)
	if err != nil {
		return nil, "", err
	}
	opts := kube.ApplyOptions{RolloutTimeout: timeout, Logf: func(format string, args ...any) {
		if t.Log != nil {
			t.Log.Info(fmt.Sprintf(format, args...), "host", t.Inv.Name, "step", "addons")
		}
	}}
	a, err := kube.NewApplier(c.Config, opts)
	return a, c.Config.Host, err
}

func addonsTimeout(t *engine.Target) time.Duration {
	if t.Shared != nil {
		if v, ok := t.Shared.Get(SharedAddonsTimeout); ok {
			if d, ok := v.(time.Duration); ok && d > 0 {
				return d
			}
		}
	}
	return DefaultAddonsTimeout
}

// reconcileSets reads the cluster's record of applied add-ons, refuses a
// plugin or provider switch, and adds an empty set for every other recorded
// add-on the inventory no longer enables (NodeLocal DNSCache switched off),
// so the applier prunes its objects instead of leaving them running.
func (s Addons) reconcileSets(ctx context.Context, t *engine.Target, a *kube.Applier, sets []kube.AddonSet) ([]kube.AddonSet, error) {
	rec, err := kube.ReadRecord(ctx, a.Clientset())
	if err != nil {
		return nil, err
	}
	if err := CheckAddonSwitch(t.Cluster, rec, sets); err != nil {
		return nil, err
	}
	return withRemovedAddons(rec, sets), nil
}

// withRemovedAddons appends an empty set for each add-on in rec that sets
// does not render, in name order.
func withRemovedAddons(rec *kube.Record, sets []kube.AddonSet) []kube.AddonSet {
	have := map[string]bool{}
	for _, s := range sets {
		have[s.Name] = true
	}
	var gone []string
	for name, r := range rec.Addons {
		if !have[name] && len(r.Objects) > 0 {
			gone = append(gone, name)
		}
	}
	sort.Strings(gone)
	for _, name := range gone {
		sets = append(sets, kube.AddonSet{Name: name})
	}
	return sets
}

func (s Addons) Plan(ctx context.Context, t *engine.Target) ([]engine.Change, error) {
	if !s.applies(t) {
		return nil, nil
	}
	sets, err := renderAddons(t)
	if err != nil {
		return nil, err
	}
	a, host, err := s.applier(t, addonsTimeout(t))
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := kube.WaitReadyz(pctx, host, time.Second); err != nil {
		// A cluster still being installed (or the dry run of a fresh one)
		// has no API to ask yet: plan every add-on; Apply waits for it.
		return []engine.Change{{Action: "apply", Object: "add-ons " + strings.Join(addonNames(sets), ", "), Detail: "API at " + host + " not answering yet: " + err.Error()}}, nil
	}
	sets, err = s.reconcileSets(ctx, t, a, sets)
	if err != nil {
		return nil, err
	}
	res, err := a.Plan(ctx, sets)
	if err != nil {
		return nil, err
	}
	changed := res.Changed()
	if len(changed) == 0 {
		// Nothing to apply, but a workload not ready (a rollout that timed
		// out last run, a node that just joined) is still this step's job.
		changed = a.NotReady(ctx, sets)
	}
	var out []engine.Change
	for _, c := range changed {
		ch := engine.Change{Action: string(c.Action), Object: c.Addon + ": " + c.Ref.String()}
		if len(c.Fields) > 0 {
			ch.Detail = strings.Join(c.Fields, ", ")
		}
		out = append(out, ch)
	}
	return out, nil
}

func (s Addons) Apply(ctx context.Context, t *engine.Target, _ []engine.Change) error {
	sets, err := renderAddons(t)
	if err != nil {
		return err
	}
	a, host, err := s.applier(t, addonsTimeout(t))
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	err = kube.WaitReadyz(wctx, host, time.Second)
	cancel()
	if err != nil {
		return fmt.Errorf("control-plane endpoint: %w", err)
	}
	sets, err = s.reconcileSets(ctx, t, a, sets)
	if err != nil {
		return err
	}
	if _, err := a.Apply(ctx, sets); err != nil {
		return err
	}
	return nil
}

// addonNames lists the add-ons an inventory renders, for messages.
func addonNames(sets []kube.AddonSet) []string {
	var names []string
	for _, s := range sets {
		names = append(names, s.Name)
	}
	return names
}
