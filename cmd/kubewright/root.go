package main

import (
	"github.com/spf13/cobra"
)

// globalOptions are the flags every command shares. They are passed explicitly
// to each command constructor; there are no package-level option globals.
type globalOptions struct {
	stateDir string // overrides ~/.kubewright
	output   string // text | json (| yaml for inventory show); see outputUsage
	verbose  bool
}

// outputUsage says what -o does where: the flag is global, but what json
// means (and whether yaml is accepted) differs by command. Commands that take
// -o refuse any other value; the ones not listed print text whatever -o says.
const outputUsage = "output format: text (default) or json; json is one document from check, status, inventory, " +
	"certs check, etcd backup and bundle, and one event per line from install, run, plan, certs renew and etcd restore; " +
	"inventory show also takes yaml (the same as text); lab, kubeconfig and version print text only"

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
	root.PersistentFlags().StringVarP(&g.output, "output", "o", "text", outputUsage)
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
		newStatusCmd(g),
		newEtcdCmd(g),
		newResetCmd(g),
		newRemoveNodeCmd(g),
		newRepairCmd(g),
		newUpgradeCmd(g),
		// Each command lives in its own file; add new ones here.
	)
	return root
}
