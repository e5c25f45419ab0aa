package main

import (
	"github.com/spf13/cobra"
)

// globalOptions are the flags every command shares. They are passed explicitly
// to each command constructor; there are no package-level option globals.
type globalOptions struct {
	stateDir string // overrides ~/.kubewright
	output   string // text | json
	verbose  bool
}

func newRootCmd() *cobra.Command {
	g := &globalOptions{}
	root := &cobra.Command{
		Use:   "kubewright",
		Short: "Install, upgrade and heal highly available Kubernetes clusters over SSH",
		Long: `kubewright provisions bare-metal or VM hosts, reached over SSH, into
multi-master Kubernetes clusters behind a keepalived VIP, and keeps them healthy.

Exit codes: 0 success, 1 operation failed, 2 bad input (inventory, flags).`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	// Flag parse errors (unknown flag, bad value) are the operator's input.
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return badInput(err) })
	root.PersistentFlags().StringVar(&g.stateDir, "state-dir", "", "state directory (default ~/.kubewright; env KUBEWRIGHT_STATE_DIR)")
	root.PersistentFlags().StringVarP(&g.output, "output", "o", "text", "output format: text or json (one event per line)")
	root.PersistentFlags().BoolVarP(&g.verbose, "verbose", "v", false, "log every command run on hosts to stderr")

	root.AddCommand(
		newVersionCmd(),
		newLabCmd(g),
		newInventoryCmd(g),
		newInstallCmd(g),
		newKubeconfigCmd(g),
		newRunCmd(g),
		newPlanCmd(g),
		newBundleCmd(g),
		newCheckCmd(g),
		newCertsCmd(g),
		// Each command lives in its own file; add new ones here.
	)
	return root
}
