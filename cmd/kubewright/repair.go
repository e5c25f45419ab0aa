package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kubewright/kubewright/installer/inventory"
	"github.com/kubewright/kubewright/installer/remote"
	"github.com/kubewright/kubewright/installer/render"
	"github.com/kubewright/kubewright/installer/steps"
)

func newRepairCmd(g *globalOptions) *cobra.Command {
	o := &runOptions{}
	var nodes []string
	var dryRun, force bool
	var agentBinary string
	c := &cobra.Command{
		Use:   "repair -i FILE [--node NAME]...",
		Short: "Re-converge nodes to the inventory (reinstall what is missing or changed)",
		Long: `repair runs the install playbook again, limited with --node to the named
hosts (default: every host). Each step plans first, so on a healthy host
nothing changes, and on a damaged one only what is missing or differs is put
back: a deleted unit or config, a stopped service, a lost kubelet
credential (the node re-joins through TLS bootstrap), missing images.

An etcd member whose data directory is gone cannot be repaired this way (it
would have to be removed from the etcd cluster and added back as a new
member, which kubewright does not do yet): repair checks every named etcd
member first and refuses, changing nothing, when one has no data.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			base, err := labStateDir(g)
			if err != nil {
				return err
			}
			cl, err := inventory.Load(o.inventory)
			if err != nil {
				return badInput(err)
			}
			limit, err := repairTargets(cl, o.inventory, nodes)
			if err != nil {
				return badInput(err)
			}
			if err := checkEtcdData(cmd, cl, base, o.hostKeys, limit); err != nil {
				return err
			}
			return runInstall(cmd, g, o, installFlags{playbook: "install", agentBinary: agentBinary, dryRun: dryRun, force: force,
				addonsTimeout: steps.DefaultAddonsTimeout, limit: limit})
		},
	}
	o.addFlags(c)
	c.Flags().StringSliceVar(&nodes, "node", nil, "repair only this host (repeat or comma-separate); default every host")
	c.Flags().BoolVar(&dryRun, "dry-run", false, "only plan: print what repair would change")
	c.Flags().BoolVar(&force, "force", false, "replace configuration files kubewright did not write")
	c.Flags().StringVar(&agentBinary, "agent-binary", "", "the kubewright-agent executable to install (default: beside kubewright)")
	return c
}

func repairTargets(cl *inventory.Cluster, invPath string, nodes []string) (map[string]bool, error) {
	if len(nodes) == 0 {
		return nil, nil
	}
	names := map[string]bool{}
	for _, n := range nodes {
		if cl.Host(n) == nil {
			return nil, fmt.Errorf("--node %s: no such host in %s (hosts: %s)", n, invPath, hostNames(cl.HostsInGroup(inventory.GroupAll)))
		}
		names[n] = true
	}
	return names, nil
}

// checkEtcdData refuses to repair an etcd member that lost its data: the
// etcd step would start it as a fresh member that the others reject.
func checkEtcdData(cmd *cobra.Command, cl *inventory.Cluster, base string, hk hostKeyOptions, limit map[string]bool) error {
	conn, closeConn, err := newSSHConnector(cl, clusterKnownHosts(base, cl), hk)
	if err != nil {
		return err
	}
	defer closeConn()
	var lost []string
	for _, h := range cl.Etcd() {
		if limit != nil && !limit[h.Name] {
			continue
		}
		rh, err := conn.Connect(cmd.Context(), h)
		if err != nil {
			continue // install reports unreachable hosts itself
		}
		out, err := rh.Exec(cmd.Context(), "test -d "+render.EtcdDataDir+"/member && echo data || echo none", remote.WithSudo(), remote.WithTimeout(30*time.Second))
		if err == nil && strings.TrimSpace(out) == "none" {
			// A host etcd never ran on (a new member) has no unit either.
			unit, _ := rh.Exec(cmd.Context(), "test -e /etc/systemd/system/etcd.service && echo unit || true", remote.WithSudo(), remote.WithTimeout(30*time.Second))
			if strings.TrimSpace(unit) == "unit" {
				lost = append(lost, h.Name)
			}
		}
	}
	if len(lost) > 0 {
		return fmt.Errorf("repair: nothing was changed: etcd member %s has no data in %s; replacing a lost etcd member (remove it from the cluster, add it back as a new member) is not supported yet; restore the data from a snapshot with kubewright etcd restore, or reset and reinstall the whole cluster", strings.Join(lost, ", "), render.EtcdDataDir)
	}
	return nil
}
