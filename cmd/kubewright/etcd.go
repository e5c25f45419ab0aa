package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/go-multierror"
	"github.com/spf13/cobra"

	"github.com/kubewright/kubewright/installer/engine"
	"github.com/kubewright/kubewright/installer/etcdbackup"
	"github.com/kubewright/kubewright/installer/inventory"
	"github.com/kubewright/kubewright/installer/steps"
)

func newEtcdCmd(g *globalOptions) *cobra.Command {
	c := &cobra.Command{
		Use:   "etcd",
		Short: "Back up and restore the cluster's etcd",
	}
	c.AddCommand(newEtcdBackupCmd(g), newEtcdRestoreCmd(g))
	return c
}

func newEtcdBackupCmd(g *globalOptions) *cobra.Command {
	o := &runOptions{}
	var outDir, member string
	c := &cobra.Command{
		Use:   "backup -i FILE",
		Short: "Take an etcd snapshot and keep it, with its checksum, on this machine",
		Long: `backup asks one etcd member for a snapshot (etcdctl snapshot save through
the member's own client port, with the etcd healthcheck client certificate),
downloads it and writes it with a sha256sum file into --dir (default: the
cluster's state directory, backups/). Members are tried in inventory order
until one succeeds; --member picks one. The copy on the member is removed.

The snapshot is checked twice before it is kept: etcd's own SHA-256 inside
the snapshot, and the downloaded bytes. "sha256sum -c FILE.sha256" checks it
later without kubewright. Nothing on the cluster changes.

Masters also take scheduled snapshots themselves: see docs/day2.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if g.output != "text" && g.output != "json" {
				return badInput(fmt.Errorf("--output %q: want text or json", g.output))
			}
			cl, err := inventory.Load(o.inventory)
			if err != nil {
				return badInput(err)
			}
			base, err := labStateDir(g)
			if err != nil {
				return err
			}
			members := cl.Etcd()
			if member != "" {
				h := cl.Host(member)
				if h == nil || !h.IsIn(inventory.GroupEtcd) {
					return badInput(fmt.Errorf("--member %s: not an etcd member in %s (members: %s)", member, o.inventory, hostNames(members)))
				}
				members = []*inventory.Host{h}
			}
			dir := outDir
			if dir == "" {
				dir = etcdbackup.Dir(filepath.Join(base, "clusters", cl.Metadata.Name))
			}
			conn, closeConn, err := newSSHConnector(cl, clusterKnownHosts(base, cl), o.hostKeys)
			if err != nil {
				return err
			}
			defer closeConn()
			var errs *multierror.Error
			for _, m := range members {
				h, err := conn.Connect(cmd.Context(), m)
				if err != nil {
					errs = multierror.Append(errs, err)
					continue
				}
				snap, err := etcdbackup.Save(cmd.Context(), h, etcdbackup.SaveOptions{Cluster: cl.Metadata.Name, Dir: dir, Now: time.Now()})
				if err != nil && snap.Path == "" {
					errs = multierror.Append(errs, err)
					continue
				}
				if werr := writeSnapshot(cmd.OutOrStdout(), g.output, snap); werr != nil {
					return werr
				}
				if err != nil { // saved, but the member kept its copy
					fmt.Fprintln(cmd.ErrOrStderr(), "warning:", err)
				}
				return nil
			}
			return fmt.Errorf("etcd backup: no member gave a snapshot: %w", errs.ErrorOrNil())
		},
	}
	addInventoryFlag(c, &o.inventory)
	addHostKeyFlags(c, &o.hostKeys)
	c.Flags().StringVar(&outDir, "dir", "", "directory for the snapshot (default <state-dir>/clusters/<name>/backups)")
	c.Flags().StringVar(&member, "member", "", "take the snapshot from this etcd member (default: the first that answers)")
	return c
}

func writeSnapshot(w io.Writer, format string, s etcdbackup.Snapshot) error {
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(s)
	}
	_, err := fmt.Fprintf(w, "snapshot of %s saved: %s\n  %d bytes, sha256 %s\n  check: sha256sum -c %s.sha256\n", s.Member, s.Path, s.Size, s.SHA256, s.Path)
	return err
}

func hostNames(hs []*inventory.Host) string {
	names := make([]string, len(hs))
	for i, h := range hs {
		names[i] = h.Name
	}
	return strings.Join(names, ", ")
}

func newEtcdRestoreCmd(g *globalOptions) *cobra.Command {
	o := &runOptions{}
	var from string
	var yes, dryRun bool
	c := &cobra.Command{
		Use:   "restore -i FILE --from SNAPSHOT",
		Short: "Replace the cluster's etcd data with a snapshot (stops the API while it runs)",
		Long: `restore puts the cluster back to the state of a snapshot taken by
"kubewright etcd backup". Everything written after the snapshot is lost, so
it asks for the cluster's name unless --yes is given.

The snapshot is verified first (its .sha256 file and etcd's own hash); then
the embedded etcd-restore playbook runs:
  1. stop kubewright-agent, kube-apiserver, controller-manager and scheduler
     on every master and etcd host (no agent "repairs" the stopped API);
  2. on every member at once: stop etcd, move /var/lib/etcd to
     /var/lib/etcd.before-restore-<id> (nothing is deleted), upload the
     snapshot and restore it with etcdutl as a new cluster (new cluster ID,
     token kubewright-<cluster>-restore-<id>);
  3. start etcd and wait until every member is healthy;
  4. start the control plane one master at a time, each waiting for /readyz,
     then the agents.
Every etcd and master host is contacted before anything stops; if one is
unreachable nothing is changed. A failed run can be re-run with the same
snapshot. --dry-run prints the plan and changes nothing.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runEtcdRestore(cmd, g, o, from, yes, dryRun)
		},
	}
	o.addFlags(c)
	c.Flags().StringVar(&from, "from", "", "the snapshot file (with its .sha256 beside it) to restore")
	c.Flags().BoolVar(&yes, "yes", false, "do not ask for confirmation")
	c.Flags().BoolVar(&dryRun, "dry-run", false, "only plan: print every host's changes and change nothing")
	_ = c.MarkFlagFilename("from")
	return c
}

func runEtcdRestore(cmd *cobra.Command, g *globalOptions, o *runOptions, from string, yes, dryRun bool) error {
	if g.output != "text" && g.output != "json" {
		return badInput(fmt.Errorf("--output %q: want text or json", g.output))
	}
	if from == "" {
		return badInput(errors.New("--from is required: the snapshot to restore (kubewright etcd backup prints its path)"))
	}
	snap, err := etcdbackup.Verify(from)
	if err != nil {
		return badInput(fmt.Errorf("nothing was changed: %w", err))
	}
	pb, reg, err := loadPlaybook("etcd-restore")
	if err != nil {
		return err
	}
	cl, dir, err := certsClusterDir(g, o.inventory)
	if err != nil {
		return err
	}
	if err := o.hostKeys.check(cl); err != nil {
		return err
	}
	if !yes && !dryRun {
		q := fmt.Sprintf("This replaces all of cluster %s's etcd data with %s; everything written since is lost.", cl.Metadata.Name, from)
		if err := confirm(cmd, q, "Type the cluster name to go on", cl.Metadata.Name); err != nil {
			return err
		}
	}
	base := filepath.Dir(filepath.Dir(dir))
	conn, closeConn, err := newSSHConnector(cl, clusterKnownHosts(base, cl), o.hostKeys)
	if err != nil {
		return err
	}
	defer closeConn()
	if err := renewPreflight(cmd.Context(), conn, cl); err != nil {
		return fmt.Errorf("etcd restore: nothing was changed: %w", err)
	}
	out := cmd.OutOrStdout()
	id := time.Now().UTC().Format("20060102T150405Z")
	shared := engine.NewSharedData()
	shared.Set(steps.SharedEtcdSnapshot, snap.Path)
	shared.Set(steps.SharedEtcdRestoreID, id)
	if g.output != "json" {
		fmt.Fprintf(out, "restoring %s (sha256 %s, %d bytes) as restore %s\n", snap.Path, snap.SHA256, snap.Size, id)
	}
	_, err = runEngine(cmd, g, engine.Options{
		Playbook:    pb,
		Cluster:     cl,
		Registry:    reg,
		Connector:   conn,
		Concurrency: o.concurrency,
		DryRun:      dryRun,
		StateDir:    dir,
		Secrets:     runSecrets(cl, dir),
		StepTimeout: o.stepTimeout,
		Shared:      shared,
	})
	if isBadInput(err) {
		return err
	}
	if err != nil {
		return fmt.Errorf("etcd restore %s: %w; the members' previous data is kept in /var/lib/etcd.before-restore-%s; re-run the same command to finish", id, err, id)
	}
	if !dryRun && g.output != "json" {
		fmt.Fprintf(out, "\netcd restored from %s. Each member's previous data is in /var/lib/etcd.before-restore-%s; remove it once the cluster looks right.\n", filepath.Base(snap.Path), id)
	}
	return nil
}
