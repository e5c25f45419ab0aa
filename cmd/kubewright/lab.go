package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/kubewright/kubewright/installer/lab"
)

// labStateDir resolves the state directory: --state-dir, then
// KUBEWRIGHT_STATE_DIR, then ~/.kubewright; one that group or others can
// reach is refused (checkStateDir).
func labStateDir(g *globalOptions) (string, error) {
	dir := g.stateDir
	if dir == "" {
		dir = os.Getenv("KUBEWRIGHT_STATE_DIR")
	}
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("find home directory for the state dir (set --state-dir): %w", err)
		}
		dir = filepath.Join(home, ".kubewright")
	}
	if err := checkStateDir(dir); err != nil {
		return "", err
	}
	return dir, nil
}

func newLabManager(cmd *cobra.Command, g *globalOptions, bootTimeout time.Duration) (*lab.Manager, error) {
	dir, err := labStateDir(g)
	if err != nil {
		return nil, err
	}
	return lab.New(lab.Config{
		StateDir:         dir,
		Out:              cmd.OutOrStdout(),
		BootTimeout:      bootTimeout,
		InstallHostTools: true,
		ArtifactsDir:     os.Getenv("KUBEWRIGHT_ARTIFACTS_DIR"),
	}), nil
}

func newLabCmd(g *globalOptions) *cobra.Command {
	c := &cobra.Command{
		Use:   "lab",
		Short: "Local machines (systemd-nspawn + network namespaces) to try and test kubewright",
		Long: `lab makes local machines that behave like small servers: systemd, sshd, their
own network namespace and static address on a lab bridge. It needs root and a
Linux host with cgroup v1 (hybrid or legacy); see docs/lab.md.`,
	}
	c.AddCommand(newLabUpCmd(g), newLabDownCmd(g), newLabStatusCmd(g), newLabSSHCmd(g))
	return c
}

func newLabUpCmd(g *globalOptions) *cobra.Command {
	var o lab.UpOptions
	var timeout time.Duration
	c := &cobra.Command{
		Use:   "up",
		Short: "Create (or restart) a lab and write its inventory",
		Long: `up boots the lab's machines (building the Debian image once, cached under
$KUBEWRIGHT_CACHE) and writes an inventory for them. The inventory's
artifacts path is $KUBEWRIGHT_ARTIFACTS_DIR, or else
$KUBEWRIGHT_CACHE/artifacts/latest, which make artifacts keeps current. The
machines' host keys go to the lab's known_hosts and to the cluster's
(<state-dir>/clusters/NAME/known_hosts), so install checks them strictly.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := lab.ValidateUp(o); err != nil {
				return badInput(err)
			}
			m, err := newLabManager(cmd, g, timeout)
			if err != nil {
				return err
			}
			start := time.Now()
			l, err := m.Up(cmd.Context(), o)
			if err != nil {
				return fmt.Errorf("lab up %s: %w", o.Name, err)
			}
			out := cmd.OutOrStdout()
			if l.AlreadyRunning {
				fmt.Fprintf(out, "lab %s is already up (%d machines, all reachable); nothing to do\n", l.Name, len(l.Machines))
			} else {
				fmt.Fprintf(out, "lab %s is up: %d machines on %s (bridge %s, VIP %s) in %s\n", l.Name, len(l.Machines), l.Subnet, l.Bridge, l.VIP, time.Since(start).Round(100*time.Millisecond))
			}
			fmt.Fprintf(out, "inventory:   %s\nknown_hosts: %s\n\nnext:\n  kubewright install -i %s\n", l.Inventory, l.KnownHosts, l.Inventory)
			return nil
		},
	}
	c.Flags().StringVar(&o.Name, "name", "demo", "lab name (1-9 lowercase letters or digits)")
	c.Flags().IntVar(&o.Masters, "masters", 3, "number of master machines")
	c.Flags().IntVar(&o.Workers, "workers", 2, "number of worker machines")
	c.Flags().DurationVar(&timeout, "boot-timeout", lab.DefaultBootTimeout, "how long to wait for every machine's sshd")
	return c
}

func newLabDownCmd(g *globalOptions) *cobra.Command {
	var name string
	c := &cobra.Command{
		Use:   "down",
		Short: "Stop a lab and remove everything it made",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := lab.ValidateName(name); err != nil {
				return badInput(err)
			}
			m, err := newLabManager(cmd, g, 0)
			if err != nil {
				return err
			}
			start := time.Now()
			removed, err := m.Down(cmd.Context(), name)
			if err != nil {
				return fmt.Errorf("lab down %s: %w", name, err)
			}
			if !removed {
				fmt.Fprintf(cmd.OutOrStdout(), "lab %s does not exist; nothing to do\n", name)
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "lab %s removed in %s\n", name, time.Since(start).Round(100*time.Millisecond))
			return nil
		},
	}
	c.Flags().StringVar(&name, "name", "demo", "lab name")
	return c
}

func newLabStatusCmd(g *globalOptions) *cobra.Command {
	var name string
	c := &cobra.Command{
		Use:   "status",
		Short: "Show a lab's machines, addresses and state",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := lab.ValidateName(name); err != nil {
				return badInput(err)
			}
			m, err := newLabManager(cmd, g, 0)
			if err != nil {
				return err
			}
			l, err := m.Status(cmd.Context(), name)
			if err != nil {
				return fmt.Errorf("lab status %s: %w", name, err)
			}
			out := cmd.OutOrStdout()
			if l == nil {
				fmt.Fprintf(out, "lab %s does not exist\n", name)
				return nil
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "MACHINE\tROLE\tADDRESS\tSTATE\tSSH")
			for _, ms := range l.Machines {
				state, reach := "stopped", "-"
				if ms.Running {
					state = fmt.Sprintf("running (pid %d)", ms.PID)
					reach = "unreachable"
					if ms.Reachable {
						reach = "ok"
					}
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", ms.Name, ms.Role, ms.Address, state, reach)
			}
			tw.Flush()
			fmt.Fprintf(out, "\nsubnet %s  bridge %s  VIP %s\ninventory: %s\n", l.Subnet, l.Bridge, l.VIP, l.Inventory)
			return nil
		},
	}
	c.Flags().StringVar(&name, "name", "demo", "lab name")
	return c
}

func newLabSSHCmd(g *globalOptions) *cobra.Command {
	var name string
	c := &cobra.Command{
		Use:   "ssh MACHINE [command...]",
		Short: "Open a shell (or run a command) on a lab machine",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := lab.ValidateName(name); err != nil {
				return badInput(err)
			}
			m, err := newLabManager(cmd, g, 0)
			if err != nil {
				return err
			}
			argv, err := m.SSHArgs(name, args[0], args[1:])
			if err != nil {
				return badInput(err)
			}
			bin, err := exec.LookPath(argv[0])
			if err != nil {
				return fmt.Errorf("lab ssh needs the ssh client (apt-get install openssh-client): %w", err)
			}
			// Replace this process so the terminal, signals and exit code are ssh's.
			return syscall.Exec(bin, argv, os.Environ())
		},
	}
	c.Flags().StringVar(&name, "name", "demo", "lab name")
	c.Flags().SetInterspersed(false)
	return c
}
