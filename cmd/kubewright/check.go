package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/kubewright/kubewright/installer/engine"
	"github.com/kubewright/kubewright/installer/inventory"
	"github.com/kubewright/kubewright/installer/steps"
)

// checkOptions are `kubewright check`'s own flags.
type checkOptions struct {
	inventory   string
	hostKeys    hostKeyOptions
	concurrency int
	timeout     time.Duration
}

func newCheckCmd(g *globalOptions) *cobra.Command {
	o := &checkOptions{}
	c := &cobra.Command{
		Use:   "check -i FILE",
		Short: "Preflight: check every host is ready for an install (exit code 1 if a check fails)",
		Long: `check connects to every host, gathers facts from all of them, then runs the
preflight checks on each: supported OS, kernel, swap, CPU and memory per role,
required ports free, unique hostnames, machine-ids and addresses, clock skew
against this machine, sudo, required commands, kernel modules, and the VIP.

It changes nothing. Output is one row per host and check (pass, WARN, FAIL)
with the reason; -o json prints the same as one JSON document.
Exit codes: 0 all pass or warn, 1 a check failed, 2 bad inventory or flags.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if g.output != "text" && g.output != "json" {
				return badInput(fmt.Errorf("unknown output format %q: use text or json", g.output))
			}
			if o.concurrency < 0 {
				return badInput(fmt.Errorf("--concurrency must be positive, got %d", o.concurrency))
			}
			cl, err := inventory.Load(o.inventory)
			if err != nil {
				return badInput(err)
			}
			stateDir, err := labStateDir(g)
			if err != nil {
				return err
			}
			conn, closeConn, err := newSSHConnector(cl, clusterKnownHosts(stateDir, cl), o.hostKeys)
			if err != nil {
				return err
			}
			defer closeConn()
			rep := steps.CheckCluster(cmd.Context(), cl, conn, steps.CheckOptions{Concurrency: o.concurrency, Timeout: o.timeout})
			if g.output == "json" {
				err = rep.WriteJSON(cmd.OutOrStdout())
			} else {
				err = rep.WriteTable(cmd.OutOrStdout())
			}
			if err != nil {
				return fmt.Errorf("write report: %w", err)
			}
			if err := cmd.Context().Err(); err != nil {
				return fmt.Errorf("check interrupted: %w", err)
			}
			if rep.Failed() {
				return errors.New(checkFailureMessage(rep))
			}
			return nil
		},
	}
	addInventoryFlag(c, &o.inventory)
	addHostKeyFlags(c, &o.hostKeys)
	c.Flags().IntVar(&o.concurrency, "concurrency", engine.DefaultConcurrency, "hosts checked at once")
	c.Flags().DurationVar(&o.timeout, "timeout", 2*time.Minute, "per host: connect, gather facts and run the checks")
	return c
}

// clusterKnownHosts is the cluster's own known_hosts: host keys are pinned per
// cluster so a re-installed machine never silently inherits trust.
func clusterKnownHosts(stateDir string, cl *inventory.Cluster) string {
	return filepath.Join(stateDir, "clusters", cl.Metadata.Name, "known_hosts")
}

func checkFailureMessage(rep *steps.CheckReport) string {
	failed := map[string]bool{}
	for _, r := range rep.Results {
		if r.Status == steps.StatusFail {
			failed[r.Host] = true
		}
	}
	return fmt.Sprintf("preflight failed: %d failed checks on %d of %d hosts", rep.Summary.Fail, len(failed), rep.Summary.Hosts)
}
