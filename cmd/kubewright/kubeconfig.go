package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/kubewright/kubewright/installer/inventory"
	"github.com/kubewright/kubewright/installer/pki"
	"github.com/kubewright/kubewright/installer/steps"
)

func newKubeconfigCmd(g *globalOptions) *cobra.Command {
	var invPath, target string
	var merge bool
	c := &cobra.Command{
		Use:   "kubeconfig -i FILE [--merge]",
		Short: "Print the path of the cluster's admin kubeconfig, or merge it into ~/.kube/config",
		Long: `kubeconfig prints the path of the admin kubeconfig install wrote to the state
directory (it points at the control-plane VIP). With --merge it adds the
cluster, user and context to ~/.kube/config (or --kubeconfig), keeping every
other context, and makes it the current context.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := inventory.Load(invPath)
			if err != nil {
				return badInput(err)
			}
			base, err := labStateDir(g)
			if err != nil {
				return err
			}
			admin := pki.NewStore(steps.PKIDir(filepath.Join(base, "clusters", cl.Metadata.Name)), nil).AdminKubeconfigPath()
			if _, err := os.Stat(admin); err != nil {
				return fmt.Errorf("no admin kubeconfig for cluster %s at %s (run kubewright install -i %s first): %w", cl.Metadata.Name, admin, invPath, err)
			}
			if !merge {
				fmt.Fprintln(cmd.OutOrStdout(), admin)
				return nil
			}
			if target == "" {
				home, err := os.UserHomeDir()
				if err != nil {
					return fmt.Errorf("find home directory (set --kubeconfig): %w", err)
				}
				target = filepath.Join(home, ".kube", "config")
			}
			ctxName, err := mergeKubeconfig(admin, target)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "merged context %q into %s and made it current\n", ctxName, target)
			return nil
		},
	}
	addInventoryFlag(c, &invPath)
	c.Flags().BoolVar(&merge, "merge", false, "merge into the user's kubeconfig instead of printing the path")
	c.Flags().StringVar(&target, "kubeconfig", "", "kubeconfig to merge into (default ~/.kube/config)")
	return c
}

// mergeKubeconfig adds src's clusters, users and contexts to dst (entries of
// the same name are replaced, others kept) and sets src's current context.
func mergeKubeconfig(src, dst string) (string, error) {
	in, err := clientcmd.LoadFromFile(src)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", src, err)
	}
	out := clientcmdapi.NewConfig()
	if _, err := os.Stat(dst); err == nil {
		if out, err = clientcmd.LoadFromFile(dst); err != nil {
			return "", fmt.Errorf("read %s (fix or move it away, nothing was changed): %w", dst, err)
		}
	}
	for k, v := range in.Clusters {
		out.Clusters[k] = v
	}
	for k, v := range in.AuthInfos {
		out.AuthInfos[k] = v
	}
	for k, v := range in.Contexts {
		out.Contexts[k] = v
	}
	out.CurrentContext = in.CurrentContext
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return "", fmt.Errorf("create %s: %w", filepath.Dir(dst), err)
	}
	// WriteToFile is not atomic: write next to it and rename, so a failure
	// never leaves the user's kubeconfig half-written.
	tmp := dst + ".kubewright.tmp"
	if err := clientcmd.WriteToFile(*out, tmp); err != nil {
		return "", fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Chmod(tmp, 0o600); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, dst); err != nil {
		return "", fmt.Errorf("replace %s: %w", dst, err)
	}
	return in.CurrentContext, nil
}
