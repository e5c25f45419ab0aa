package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kubewright/kubewright/installer/inventory"
	"github.com/kubewright/kubewright/installer/kube"
)

func newStatusCmd(g *globalOptions) *cobra.Command {
	var invPath string
	var timeout time.Duration
	c := &cobra.Command{
		Use:   "status -i FILE",
		Short: "Show what every node's kubewright-agent reports (exit code 1 on a problem)",
		Long: `status reads the cluster's Nodes through the VIP with the admin kubeconfig
from the state directory and prints one row per node: its role, whether its
agent is reporting (ok; stale when the newest heartbeat of its conditions is
older than 2m; missing when it has none), one column per agent check with the
state of its kubewright.io/<Check>Problem condition (OK, Problem, Unknown; "-"
when the node does not run that check) and the agent's last repair. Below the
table, every condition that is not OK is listed with its reason and message.
A host of the inventory that is not a Node is listed as no-node.

No host is contacted over SSH. -o json prints the same as one JSON document.
Exit codes: 0 every agent reporting and no Problem (Unknown alone does not
fail), 1 a Problem, a stale or missing agent, or the API unreachable, 2 bad
inventory or flags.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if g.output != "text" && g.output != "json" {
				return badInput(fmt.Errorf("--output %q: want text or json", g.output))
			}
			if timeout <= 0 {
				return badInput(fmt.Errorf("--timeout must be positive, got %s", timeout))
			}
			cl, dir, err := certsClusterDir(g, invPath)
			if err != nil {
				return err
			}
			client, err := adminClient(dir)
			if err != nil {
				return err
			}
			var expected []string
			for _, h := range cl.HostsInGroup(inventory.GroupAll) {
				expected = append(expected, h.Name)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			rep, err := kube.AgentStatus(ctx, client.Clientset, expected, time.Now())
			if err != nil {
				return fmt.Errorf("cluster %s at %s: %w", cl.Metadata.Name, client.Config.Host, err)
			}
			if g.output == "json" {
				err = rep.WriteJSON(cmd.OutOrStdout())
			} else {
				err = rep.WriteTable(cmd.OutOrStdout())
			}
			if err != nil {
				return fmt.Errorf("write status: %w", err)
			}
			if rep.Failed {
				return errors.New(statusFailureMessage(rep))
			}
			return nil
		},
	}
	addInventoryFlag(c, &invPath)
	c.Flags().DurationVar(&timeout, "timeout", 30*time.Second, "how long to wait for the API's answer")
	return c
}

func statusFailureMessage(rep *kube.AgentStatusReport) string {
	var bad []string
	for _, n := range rep.Nodes {
		ok := n.Agent == kube.AgentOK
		for _, c := range n.Conditions {
			ok = ok && c.Status != kube.ConditionProblem
		}
		if !ok {
			bad = append(bad, n.Node)
		}
	}
	return fmt.Sprintf("%d of %d nodes not healthy: %s", len(bad), len(rep.Nodes), strings.Join(bad, ", "))
}
