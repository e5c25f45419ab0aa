package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubewright/kubewright/installer/inventory"
	"github.com/kubewright/kubewright/installer/kube"
)

func newRemoveNodeCmd(g *globalOptions) *cobra.Command {
	o := &runOptions{}
	var yes bool
	var drainTimeout time.Duration
	c := &cobra.Command{
		Use:   "remove-node -i FILE NAME",
		Short: "Drain a worker, delete its Node and reset the host",
		Long: `remove-node takes a worker out of the cluster: it cordons the node and
drains it through the eviction API (PodDisruptionBudgets are respected;
DaemonSet and static pods stay), then resets the host (the reset playbook on
that host only: see kubewright reset --help) and deletes its Node object.
Remove the host from the inventory afterwards; while it is still listed,
kubewright install joins it again (that is also how a node is added back).

If the drain does not finish within --drain-timeout, nothing is reset or
deleted: the node stays cordoned and the pods left are named. Masters and
etcd members cannot be removed this way yet (their etcd membership and
apiserver endpoint would have to go too).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRemoveNode(cmd, g, o, args[0], yes, drainTimeout)
		},
	}
	o.addFlags(c)
	c.Flags().BoolVar(&yes, "yes", false, "do not ask for confirmation")
	c.Flags().DurationVar(&drainTimeout, "drain-timeout", 5*time.Minute, "how long the drain may take before remove-node gives up (node left cordoned)")
	return c
}

func runRemoveNode(cmd *cobra.Command, g *globalOptions, o *runOptions, name string, yes bool, drainTimeout time.Duration) error {
	if drainTimeout <= 0 {
		return badInput(fmt.Errorf("--drain-timeout must be positive, got %s", drainTimeout))
	}
	cl, dir, err := certsClusterDir(g, o.inventory)
	if err != nil {
		return err
	}
	h := cl.Host(name)
	switch {
	case h == nil:
		return badInput(fmt.Errorf("%s: no host %s (hosts: %s)", o.inventory, name, hostNames(cl.HostsInGroup(inventory.GroupAll))))
	case h.IsIn(inventory.GroupEtcd) || h.IsIn(inventory.GroupMasters):
		return badInput(fmt.Errorf("%s is a master or etcd member: remove-node handles workers only (removing a master also means removing its etcd member and apiserver endpoint, which kubewright does not do yet)", name))
	}
	// Before the drain: the reset that follows it dials the host.
	if err := o.hostKeys.check(cl); err != nil {
		return err
	}
	if !yes {
		q := fmt.Sprintf("This drains %s, resets the host and deletes its Node from cluster %s.", name, cl.Metadata.Name)
		if err := confirm(cmd, q, "Type the node name to go on", name); err != nil {
			return err
		}
	}
	client, err := adminClient(dir)
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	out := cmd.OutOrStdout()
	_, err = client.Clientset.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	nodeExists := err == nil
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("get node %s: %w", name, err)
	}
	if nodeExists {
		fmt.Fprintf(out, "draining %s (timeout %s)\n", name, drainTimeout)
		if err := kube.Drain(ctx, client.Clientset, name, kube.DrainOptions{Timeout: drainTimeout}); err != nil {
			return fmt.Errorf("remove-node %s: nothing was reset or deleted: %w", name, err)
		}
	} else {
		fmt.Fprintf(out, "node %s is not registered; resetting the host only\n", name)
	}
	if err := runReset(cmd, g, o, []string{name}, true, false); err != nil {
		return fmt.Errorf("remove-node %s: drained and cordoned, but %w", name, err)
	}
	if nodeExists {
		err := client.Clientset.CoreV1().Nodes().Delete(ctx, name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("remove-node %s: host reset, but delete the Node: %w (delete it with kubectl delete node %s)", name, err, name)
		}
	}
	fmt.Fprintf(out, "\n%s removed. Remove it from %s now; while it is listed there, kubewright install joins it again.\n", name, o.inventory)
	return nil
}
