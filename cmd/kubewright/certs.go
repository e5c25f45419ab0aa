package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/go-multierror"
	"github.com/spf13/cobra"

	"github.com/kubewright/kubewright/installer/engine"
	"github.com/kubewright/kubewright/installer/inventory"
	"github.com/kubewright/kubewright/installer/pki"
	"github.com/kubewright/kubewright/installer/steps"
	"github.com/kubewright/kubewright/installer/steps/stepkit"
)

func newCertsCmd(g *globalOptions) *cobra.Command {
	c := &cobra.Command{
		Use:   "certs",
		Short: "Check and renew the cluster's certificates",
	}
	c.AddCommand(newCertsCheckCmd(g), newCertsRenewCmd(g))
	return c
}

// certsClusterDir loads the inventory and returns the cluster and its state
// directory, refusing when install never wrote a PKI there.
func certsClusterDir(g *globalOptions, invPath string) (*inventory.Cluster, string, error) {
	cl, err := inventory.Load(invPath)
	if err != nil {
		return nil, "", badInput(err)
	}
	base, err := labStateDir(g)
	if err != nil {
		return nil, "", err
	}
	dir := filepath.Join(base, "clusters", cl.Metadata.Name)
	if _, err := os.Stat(filepath.Join(steps.PKIDir(dir), "ca.crt")); err != nil {
		return nil, "", badInput(fmt.Errorf("no PKI for cluster %s in %s (run kubewright install -i %s first)", cl.Metadata.Name, steps.PKIDir(dir), invPath))
	}
	return cl, dir, nil
}

func newCertsCheckCmd(g *globalOptions) *cobra.Command {
	var invPath string
	var warnWithin time.Duration
	c := &cobra.Command{
		Use:   "check -i FILE",
		Short: "List every certificate of the cluster, where hosts keep it, and its expiry",
		Long: `check inspects the certificates and kubeconfigs in the cluster's state
directory (the copies install uploads to hosts) and prints each one's name,
host, remote path, expiry and days left, with any problem: not signed by the
cluster's CAs, or expiring within --warn-within.

Expiring within --warn-within is a failure, not a warning: check exits 1
when any certificate has a problem, so a cron job or CI gate notices in time
to run "kubewright certs renew". Nothing is changed, and no host is contacted.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if g.output != "text" && g.output != "json" {
				return badInput(fmt.Errorf("--output %q: want text or json", g.output))
			}
			if warnWithin < 0 {
				return badInput(fmt.Errorf("--warn-within must not be negative, got %s", warnWithin))
			}
			_, dir, err := certsClusterDir(g, invPath)
			if err != nil {
				return err
			}
			infos, err := pki.Check(steps.PKIDir(dir), time.Now(), warnWithin)
			if err != nil {
				return fmt.Errorf("check certificates: %w", err)
			}
			if err := writeCertInfos(cmd.OutOrStdout(), g.output, infos); err != nil {
				return err
			}
			if n := countProblems(infos); n > 0 {
				return fmt.Errorf("%d of %d certificates have problems (renew leaves with kubewright certs renew -i %s)", n, len(infos), invPath)
			}
			return nil
		},
	}
	addInventoryFlag(c, &invPath)
	c.Flags().DurationVar(&warnWithin, "warn-within", 30*24*time.Hour, "fail for certificates expiring within this duration")
	return c
}

func writeCertInfos(w io.Writer, format string, infos []pki.CertInfo) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if infos == nil {
			infos = []pki.CertInfo{}
		}
		return enc.Encode(infos)
	case "text", "":
		return pki.WriteCheckTable(w, infos)
	default:
		return badInput(fmt.Errorf("--output %q: want text or json", format))
	}
}

func countProblems(infos []pki.CertInfo) int {
	n := 0
	for _, i := range infos {
		if len(i.Problems) > 0 {
			n++
		}
	}
	return n
}

func newCertsRenewCmd(g *globalOptions) *cobra.Command {
	o := &runOptions{}
	c := &cobra.Command{
		Use:   "renew -i FILE [NAME...]",
		Short: "Renew leaf certificates and restart the affected components one host at a time",
		Long: `renew re-issues leaf certificates and kubeconfigs (with new keys) in the
state directory, then runs the embedded certs-renew playbook: etcd members one
at a time, each followed by a wait until every member reports healthy, then
the control plane one master at a time, each waiting for its /readyz. Only
the files that changed are uploaded and only the services reading them are
restarted. CAs and the service-account key are never renewed.

NAMEs are kubeadm's (` + strings.Join(pki.RenewableNames(), ", ") + `); none or
"all" renews every leaf.

Order: every etcd and master host is connected to first; when one cannot be
reached nothing is renewed, so the state directory never holds certificates
that no host has. Once the store is renewed, a failure in the rollout leaves
the new files in the state directory; re-running renew (or install) finishes
the rollout.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runCertsRenew(cmd, g, o, args)
		},
	}
	o.addFlags(c)
	return c
}

func runCertsRenew(cmd *cobra.Command, g *globalOptions, o *runOptions, names []string) error {
	// Checked before anything is renewed: a typo in -o must not leave a
	// renewed store that no host has.
	if g.output != "text" && g.output != "json" {
		return badInput(fmt.Errorf("--output %q: want text or json", g.output))
	}
	if o.concurrency < 1 {
		return badInput(fmt.Errorf("--concurrency must be at least 1, got %d", o.concurrency))
	}
	for _, n := range names {
		if n != "all" && !containsString(pki.RenewableNames(), n) {
			return badInput(fmt.Errorf("unknown certificate %q (want all or one of %s)", n, strings.Join(pki.RenewableNames(), ", ")))
		}
	}
	pb, err := engine.ResolvePlaybook("certs-renew")
	if err != nil {
		return err
	}
	reg := engine.NewRegistry()
	steps.Register(reg)
	if err := pb.Validate(reg); err != nil {
		return err
	}
	cl, dir, err := certsClusterDir(g, o.inventory)
	if err != nil {
		return err
	}
	spec, err := pki.SpecFromCluster(cl)
	if err != nil {
		return badInput(err)
	}
	base := filepath.Dir(filepath.Dir(dir))
	conn, closeConn, err := newSSHConnector(cl, clusterKnownHosts(base, cl), o.hostKeys)
	if err != nil {
		return err
	}
	defer closeConn()
	if err := renewPreflight(cmd.Context(), conn, cl); err != nil {
		return fmt.Errorf("certs renew: nothing was renewed: %w", err)
	}
	store := pki.NewStore(steps.PKIDir(dir), nil)
	rep, restarts, err := store.Renew(spec, names...)
	if err != nil {
		return fmt.Errorf("renew certificates in %s: %w", steps.PKIDir(dir), err)
	}
	out := cmd.OutOrStdout()
	if g.output != "json" {
		writeRenewReport(out, rep, restarts)
	}
	sink, closeSink, err := engine.NewConsoleSink(out, g.output)
	if err != nil {
		return badInput(err)
	}
	var logger *slog.Logger
	if g.verbose {
		logger = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	res, err := engine.Run(cmd.Context(), engine.Options{
		Playbook:    pb,
		Cluster:     cl,
		Registry:    reg,
		Connector:   conn,
		Concurrency: o.concurrency,
		StateDir:    dir,
		Events:      sink,
		Secrets:     runSecrets(cl, dir), // after Renew: the new keys too
		StepTimeout: o.stepTimeout,
		Logger:      logger,
		Shared:      engine.NewSharedData(),
	})
	closeSink()
	var invalid *engine.InvalidError
	if errors.As(err, &invalid) {
		return badInput(err)
	}
	if res != nil && g.output != "json" {
		writeRestarted(out, res)
	}
	if err != nil {
		return fmt.Errorf("certs renew: the state directory holds the renewed certificates; re-run to finish the rollout: %w", err)
	}
	return nil
}

// renewPreflight connects to every etcd and master host and runs a no-op, so
// an unreachable host stops renew before the store changes.
func renewPreflight(ctx context.Context, conn engine.Connector, cl *inventory.Cluster) error {
	seen := map[string]bool{}
	var errs *multierror.Error
	for _, h := range append(cl.Etcd(), cl.Masters()...) {
		if seen[h.Name] {
			continue
		}
		seen[h.Name] = true
		rh, err := conn.Connect(ctx, h)
		if err != nil {
			errs = multierror.Append(errs, fmt.Errorf("connect to %s: %w", h.Name, err))
			continue
		}
		if _, err := rh.Exec(ctx, "true"); err != nil {
			errs = multierror.Append(errs, fmt.Errorf("run a command on %s: %w", h.Name, err))
		}
	}
	return errs.ErrorOrNil()
}

func writeRenewReport(w io.Writer, rep pki.Report, restarts []pki.Restart) {
	var renewed []string
	for _, it := range rep.Items {
		if it.Action == pki.Renewed {
			if it.Host != "" {
				renewed = append(renewed, it.Name+"@"+it.Host)
			} else {
				renewed = append(renewed, it.Name)
			}
		}
	}
	fmt.Fprintf(w, "renewed %d certificates in the state directory: %s\n", len(renewed), strings.Join(renewed, ", "))
	for _, r := range restarts {
		fmt.Fprintf(w, "  %s will restart: %s\n", r.Host, strings.Join(r.Components, ", "))
	}
}

// writeRestarted prints, per host, the services the playbook restarted, as
// the steps journaled them.
func writeRestarted(w io.Writer, res *engine.Result) {
	fmt.Fprintln(w, "restarted:")
	hosts := append([]*engine.HostResult(nil), res.Hosts...)
	sort.Slice(hosts, func(i, j int) bool { return hosts[i].Name < hosts[j].Name })
	for _, h := range hosts {
		var units []string
		for _, s := range h.Steps {
			if s.Status != engine.StatusApplied {
				continue
			}
			for _, c := range s.Changes {
				if c.Action == stepkit.ActionRestart || c.Action == stepkit.ActionStart {
					units = append(units, c.Object)
				}
			}
		}
		if len(units) == 0 {
			units = []string{"nothing"}
		}
		fmt.Fprintf(w, "  %s: %s\n", h.Name, strings.Join(units, ", "))
	}
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
