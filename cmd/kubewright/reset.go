package main

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kubewright/kubewright/installer/engine"
	"github.com/kubewright/kubewright/installer/inventory"
)

func newResetCmd(g *globalOptions) *cobra.Command {
	o := &runOptions{}
	var nodes []string
	var yes, dryRun bool
	c := &cobra.Command{
		Use:   "reset -i FILE [--node NAME]... [--yes]",
		Short: "Remove everything kubewright installed from the hosts (no undo)",
		Long: `reset stops and removes what kubewright put on each host: its systemd units
(agent, kubelet, kube-proxy, control plane, etcd, scheduled etcd snapshots),
binaries in /usr/local/bin, /etc/kubernetes, /var/lib/etcd and the other data
directories, pods and their mounts, CNI interfaces and configuration, and
kube-proxy's and the CNI plugins' iptables and IPVS rules. OS packages
(containerd, haproxy, keepalived, ...) stay installed, stopped and disabled.
After the teardown each host is inspected again and anything left is named.

Every host by default; --node limits it to the named hosts. A single etcd
member or master cannot be reset alone: the cluster would keep a dead etcd
member and apiserver endpoint (reset the whole cluster instead). Without
--yes it asks for the cluster's name. --dry-run lists what would go.

The state directory on this machine (PKI, known_hosts, backups) is kept, so
a later install re-creates the same cluster identity.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runReset(cmd, g, o, nodes, yes, dryRun)
		},
	}
	o.addFlags(c)
	c.Flags().StringSliceVar(&nodes, "node", nil, "reset only this host (repeat or comma-separate); default every host")
	c.Flags().BoolVar(&yes, "yes", false, "do not ask for confirmation")
	c.Flags().BoolVar(&dryRun, "dry-run", false, "only list what would be removed; change nothing")
	return c
}

// limitedSelector resolves plays' selectors within a set of host names.
type limitedSelector struct {
	cl    *inventory.Cluster
	names map[string]bool
}

func (s limitedSelector) Select(sel string) ([]*inventory.Host, error) {
	hosts, err := s.cl.Select(sel)
	if err != nil {
		return nil, err
	}
	var out []*inventory.Host
	for _, h := range hosts {
		if s.names[h.Name] {
			out = append(out, h)
		}
	}
	return out, nil
}

// resetTargets checks --node values against the inventory.
func resetTargets(cl *inventory.Cluster, invPath string, nodes []string) (map[string]bool, error) {
	if len(nodes) == 0 {
		return nil, nil
	}
	names := map[string]bool{}
	for _, n := range nodes {
		h := cl.Host(n)
		if h == nil {
			return nil, fmt.Errorf("--node %s: no such host in %s (hosts: %s)", n, invPath, hostNames(cl.HostsInGroup(inventory.GroupAll)))
		}
		names[n] = true
	}
	for _, group := range []struct {
		name  string
		hosts []*inventory.Host
	}{{"etcd member", cl.Etcd()}, {"master", cl.Masters()}} {
		var picked int
		for _, h := range group.hosts {
			if names[h.Name] {
				picked++
			}
		}
		if picked > 0 && picked < len(group.hosts) {
			return nil, fmt.Errorf("--node: resetting %d of %d %ss would leave the cluster with a dead %s; reset every host (no --node), or remove the node from the cluster first", picked, len(group.hosts), group.name, group.name)
		}
	}
	return names, nil
}

func runReset(cmd *cobra.Command, g *globalOptions, o *runOptions, nodes []string, yes, dryRun bool) error {
	if g.output != "text" && g.output != "json" {
		return badInput(fmt.Errorf("--output %q: want text or json", g.output))
	}
	if o.concurrency < 1 {
		return badInput(fmt.Errorf("--concurrency must be at least 1, got %d", o.concurrency))
	}
	pb, reg, err := loadPlaybook("reset")
	if err != nil {
		return err
	}
	cl, err := inventory.Load(o.inventory)
	if err != nil {
		return badInput(err)
	}
	limit, err := resetTargets(cl, o.inventory, nodes)
	if err != nil {
		return badInput(err)
	}
	if err := o.hostKeys.check(cl); err != nil {
		return err
	}
	what := "every host of cluster " + cl.Metadata.Name
	if limit != nil {
		what = strings.Join(nodes, ", ") + " of cluster " + cl.Metadata.Name
	}
	if !yes && !dryRun {
		q := "This removes Kubernetes, etcd and their data from " + what + ". There is no undo."
		if err := confirm(cmd, q, "Type the cluster name to go on", cl.Metadata.Name); err != nil {
			return err
		}
	}
	base, err := labStateDir(g)
	if err != nil {
		return err
	}
	conn, closeConn, err := newSSHConnector(cl, clusterKnownHosts(base, cl), o.hostKeys)
	if err != nil {
		return err
	}
	defer closeConn()
	dir := filepath.Join(base, "clusters", cl.Metadata.Name)
	opts := engine.Options{
		Playbook:    pb,
		Cluster:     cl,
		Registry:    reg,
		Connector:   conn,
		Concurrency: o.concurrency,
		DryRun:      dryRun,
		StateDir:    dir,
		Secrets:     runSecrets(cl, dir),
		StepTimeout: o.stepTimeout,
	}
	if limit != nil {
		opts.Selector = limitedSelector{cl: cl, names: limit}
	}
	_, err = runEngine(cmd, g, opts)
	if isBadInput(err) {
		return err
	}
	if err != nil {
		return fmt.Errorf("reset: %w", err)
	}
	return nil
}
