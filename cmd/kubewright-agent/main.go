// Command kubewright-agent is the per-node daemon: it runs health checks on
// an interval and repairs what it safely can, within a cluster-wide budget.
// This package is wiring only: flags, signals and exit codes; the work lives
// in agent/ and agent/daemon.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/kubewright/kubewright/agent"
	"github.com/kubewright/kubewright/agent/daemon"
)

// version is set at build time (-X main.version=...).
var version = "dev"

// errProblems makes `check` exit 1 without printing an error line: the
// table already said what is wrong.
var errProblems = errors.New("problems found")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := newRootCmd().ExecuteContext(ctx)
	switch {
	case err == nil:
		os.Exit(0)
	case errors.Is(err, errProblems):
		os.Exit(1)
	default:
		fmt.Fprintln(os.Stderr, "Error:", err)
		os.Exit(2)
	}
}

func newRootCmd() *cobra.Command {
	var configPath string
	root := &cobra.Command{
		Use:   "kubewright-agent",
		Short: "Per-node health checks and safe automatic repairs for a kubewright cluster",
		Long: `kubewright-agent runs on every node of a kubewright cluster (installed by
"kubewright install" as the systemd unit kubewright-agent.service). It checks
the node's health on an interval, reports each check as a NodeCondition
(kubewright.io/<Check>Problem) on its own Node, and repairs lasting problems
through a ladder of safe actions, within a cluster-wide budget held in Leases
in kube-system. It serves /healthz, /metrics and /status on the configured
listen address (default 127.0.0.1:9469).`,
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := agent.LoadConfig(configPath)
			if err != nil {
				return err
			}
			return daemon.Run(cmd.Context(), cfg, daemon.Options{Version: version})
		},
	}
	root.PersistentFlags().StringVarP(&configPath, "config", "c", agent.DefaultConfigPath, "agent configuration file")
	root.AddCommand(&cobra.Command{
		Use:   "check",
		Short: "Run every check once, print a table and exit 1 if any found a problem (repairs nothing)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := agent.LoadConfig(configPath)
			if err != nil {
				return err
			}
			problems, err := daemon.CheckOnce(cmd.Context(), cfg, cmd.OutOrStdout())
			if err != nil {
				return err
			}
			if problems > 0 {
				return errProblems
			}
			return nil
		},
	})
	return root
}
