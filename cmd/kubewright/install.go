package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kubewright/kubewright/installer/artifacts"
	"github.com/kubewright/kubewright/installer/engine"
	"github.com/kubewright/kubewright/installer/inventory"
	"github.com/kubewright/kubewright/installer/pki"
	"github.com/kubewright/kubewright/installer/steps"
)

func newInstallCmd(g *globalOptions) *cobra.Command {
	o := &runOptions{}
	var dryRun, force bool
	var playbook, agentBinary string
	var addonsTimeout time.Duration
	c := &cobra.Command{
		Use:   "install -i FILE",
		Short: "Install a highly available Kubernetes cluster on the inventory's hosts",
		Long: `install takes bare hosts to a running multi-master cluster: etcd with TLS,
kube-apiserver, controller-manager and scheduler as systemd units, haproxy and
keepalived holding the control-plane VIP, then every host (masters and
workers) joined as a node: containerd with the artifacts' images imported,
kubelet joined through TLS bootstrap with a short-lived token, kube-proxy,
and kubewright-agent (the node's health checks and repairs, see docs/AGENT.md);
then the add-ons through the VIP with server-side apply: the network plugin
(spec.network.plugin), cluster DNS (spec.dns) and, if enabled, NodeLocal
DNSCache, waiting until their DaemonSets and Deployments are ready.

Before any host is touched it validates the inventory, verifies every
artifact's checksum and that the artifacts hold what nodes need, and
generates (or reuses) the PKI and cluster secrets in the state directory.
Re-running install on an installed cluster changes nothing; --dry-run prints
every host's planned changes and changes no host.

Configuration kubewright did not write (for example a hand-made
/etc/containerd/config.toml) is never overwritten silently: the run stops and
names the file; --force replaces it. Changing spec.network.plugin or
spec.dns.provider of an installed cluster is refused.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runInstall(cmd, g, o, installFlags{playbook: playbook, agentBinary: agentBinary, dryRun: dryRun, force: force, addonsTimeout: addonsTimeout})
		},
	}
	o.addFlags(c)
	c.Flags().BoolVar(&dryRun, "dry-run", false, "only plan: print every host's changes and change no host")
	c.Flags().BoolVar(&force, "force", false, "replace configuration files kubewright did not write (e.g. /etc/containerd/config.toml) instead of stopping")
	c.Flags().StringVar(&playbook, "playbook", "install", "playbook to run (embedded name or path); for custom install flows")
	c.Flags().DurationVar(&addonsTimeout, "addons-timeout", steps.DefaultAddonsTimeout, "how long to wait for the add-ons' DaemonSets and Deployments to be ready; on timeout install fails naming each one and why")
	c.Flags().StringVar(&agentBinary, "agent-binary", "", "the `PATH` of the kubewright-agent executable to install on every node, built for the nodes' OS and architecture (default: kubewright-agent beside this kubewright executable, as make build puts it)")
	_ = c.MarkFlagFilename("agent-binary")
	return c
}

// installFlags are install's own flags besides the shared run options.
type installFlags struct {
	playbook, agentBinary string
	dryRun, force         bool
	addonsTimeout         time.Duration
	// limit, when set, restricts every play to these hosts (repair --node).
	limit map[string]bool
}

// usesStep reports whether any play of pb runs the named step: only then
// does install need what that step needs (the agent binary).
func usesStep(pb *engine.Playbook, name string) bool {
	for _, p := range pb.Plays {
		for _, s := range p.Steps {
			if s.Name == name {
				return true
			}
		}
	}
	return false
}

// prepared is what install readies on the operator's machine before any
// host is touched.
type prepared struct {
	cluster  *inventory.Cluster
	stateDir string // <base>/clusters/<name>
	source   artifacts.Source
	pki      pki.Report
}

func prepareInstall(ctx context.Context, base, invPath string, hk hostKeyOptions) (*prepared, error) {
	cl, err := inventory.Load(invPath)
	if err != nil {
		return nil, badInput(err)
	}
	// Before the state directory, PKI and secrets are written.
	if err := hk.check(cl); err != nil {
		return nil, err
	}
	p := &prepared{cluster: cl, stateDir: filepath.Join(base, "clusters", cl.Metadata.Name)}
	if err := os.MkdirAll(p.stateDir, 0o700); err != nil {
		return nil, fmt.Errorf("create state directory: %w", err)
	}
	src, err := openArtifacts(ctx, cl, p.stateDir)
	if err != nil {
		return nil, err
	}
	// What the manifest says is checked first: a download source fetches
	// every file in VerifyAll, and a manifest that cannot work should not
	// cost that.
	if v := src.Manifest().KubernetesVersion; v != cl.Spec.Kubernetes.Version {
		return nil, badInput(fmt.Errorf("%s: spec.kubernetes.version is %s but the artifacts are Kubernetes %s; fix: set spec.kubernetes.version: %s or point spec.artifacts at %s artifacts",
			invPath, cl.Spec.Kubernetes.Version, v, v, cl.Spec.Kubernetes.Version))
	}
	if err := refuseReleaseChange(ctx, p.stateDir, invPath, src.Manifest().KubernetesVersion); err != nil {
		return nil, err
	}
	if err := steps.CheckNodeArtifacts(src.Manifest()); err != nil {
		if cl.Spec.Artifacts.Source == "download" {
			// Upstream publishes binaries, not image tarballs.
			return nil, badInput(fmt.Errorf("spec.artifacts.source download: no host was touched: %w; fix: upstream releases carry no image tarballs, so install from source: dir (make artifacts) or source: bundle (kubewright bundle create)", err))
		}
		return nil, badInput(fmt.Errorf("spec.artifacts.path %s: no host was touched: %w; fix: rebuild them with `make artifacts`", cl.Spec.Artifacts.Path, err))
	}
	// Add-on settings (CIDRs, encapsulation, the Weave password variable)
	// are checked now, not at the last play after the cluster is up.
	if _, err := steps.RenderAddons(cl, src.Manifest()); err != nil {
		return nil, badInput(fmt.Errorf("no host was touched: %w", err))
	}
	if err := src.VerifyAll(ctx); err != nil {
		return nil, badInput(fmt.Errorf("artifacts failed verification, no host was touched: %w", err))
	}
	p.source = src
	spec, err := pki.SpecFromCluster(cl)
	if err != nil {
		return nil, badInput(err)
	}
	rep, err := pki.NewStore(steps.PKIDir(p.stateDir), nil).EnsureAll(spec)
	if err != nil {
		return nil, fmt.Errorf("certificates: %w", err)
	}
	p.pki = rep
	if err := steps.EnsureClusterSecrets(p.stateDir); err != nil {
		return nil, err
	}
	return p, nil
}

// openArtifacts opens the inventory's artifacts source. Only local sources
// are wired today: a directory (what hack/build-artifacts.sh writes) or an
// offline bundle, extracted into the state directory.
func openArtifacts(ctx context.Context, cl *inventory.Cluster, stateDir string) (artifacts.Source, error) {
	a := cl.Spec.Artifacts
	switch a.Source {
	case "dir", "":
		d, err := artifacts.OpenDir(a.Path)
		if err != nil {
			return nil, badInput(fmt.Errorf("spec.artifacts.path %s: %w; fix: build them with `make artifacts` or point spec.artifacts.path at an artifacts directory", a.Path, err))
		}
		return d, nil
	case "bundle":
		d, err := artifacts.ExtractBundle(ctx, a.Path, filepath.Join(stateDir, "artifacts"))
		if err != nil {
			return nil, badInput(fmt.Errorf("spec.artifacts.path bundle %s: %w", a.Path, err))
		}
		return d, nil
	case "download":
		return openDownloadArtifacts(cl, stateDir, os.Stderr)
	default:
		return nil, badInput(fmt.Errorf("spec.artifacts.source %q is not supported; use dir, bundle or download", a.Source))
	}
}

func runInstall(cmd *cobra.Command, g *globalOptions, o *runOptions, f installFlags) error {
	playbook, dryRun, force, addonsTimeout := f.playbook, f.dryRun, f.force, f.addonsTimeout
	if o.concurrency < 1 {
		return badInput(fmt.Errorf("--concurrency must be at least 1, got %d", o.concurrency))
	}
	if addonsTimeout <= 0 {
		return badInput(fmt.Errorf("--addons-timeout must be positive, got %s", addonsTimeout))
	}
	// The add-ons step also waits up to 2m for the API and 1m per CRD set;
	// a step timeout below that would cut the rollout diagnosis short.
	if o.stepTimeout > 0 && addonsTimeout+3*time.Minute > o.stepTimeout {
		return badInput(fmt.Errorf("--addons-timeout %s does not fit in --step-timeout %s (the add-ons step needs up to 3m more); fix: raise --step-timeout to at least %s or lower --addons-timeout", addonsTimeout, o.stepTimeout, addonsTimeout+3*time.Minute))
	}
	pb, err := engine.ResolvePlaybook(playbook)
	if err != nil {
		return badInput(err)
	}
	reg := engine.NewRegistry()
	steps.Register(reg)
	if err := pb.Validate(reg); err != nil {
		return badInput(err)
	}
	if f.agentBinary != "" && !usesStep(pb, "agent") {
		return badInput(fmt.Errorf("--agent-binary %s: playbook %s has no agent step to install it", f.agentBinary, pb.Name))
	}
	base, err := labStateDir(g)
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	// Refuse a bad -o before prepareInstall writes the PKI and secrets.
	sink, closeSink, err := engine.NewConsoleSink(out, g.output)
	if err != nil {
		return badInput(err)
	}
	defer closeSink() // idempotent; also closed before the plan is printed
	p, err := prepareInstall(cmd.Context(), base, o.inventory, o.hostKeys)
	if err != nil {
		return err
	}
	// The agent executable is on this machine: a missing one stops install
	// here, not on the first node after everything else was installed.
	var agentBin string
	if usesStep(pb, "agent") {
		if agentBin, err = steps.ResolveAgentBinary(f.agentBinary); err != nil {
			return badInput(fmt.Errorf("no host was touched: %w", err))
		}
		if err := steps.CheckAgentBinary(agentBin, p.source.Manifest().Arch); err != nil {
			return badInput(fmt.Errorf("no host was touched: %w", err))
		}
	}
	if g.output != "json" {
		fmt.Fprintf(out, "artifacts: Kubernetes %s, etcd %s verified\n", p.source.Manifest().KubernetesVersion, p.source.Manifest().EtcdVersion)
		fmt.Fprintf(out, "certificates: %s\n", pkiSummary(p.pki))
	}
	conn, closeConn, err := newSSHConnector(p.cluster, clusterKnownHosts(base, p.cluster), o.hostKeys)
	if err != nil {
		return err
	}
	defer closeConn()
	var logger *slog.Logger
	if g.verbose {
		logger = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	shared := engine.NewSharedData()
	shared.Set(steps.SharedArtifacts, p.source)
	shared.Set(steps.SharedForce, force)
	shared.Set(steps.SharedAddonsTimeout, addonsTimeout)
	if agentBin != "" {
		shared.Set(steps.SharedAgentBinary, agentBin)
	}
	var sel engine.HostSelector
	if f.limit != nil {
		sel = limitedSelector{cl: p.cluster, names: f.limit}
	}
	res, err := engine.Run(cmd.Context(), engine.Options{
		Selector:    sel,
		Playbook:    pb,
		Cluster:     p.cluster,
		Registry:    reg,
		Connector:   conn,
		Concurrency: o.concurrency,
		DryRun:      dryRun,
		StateDir:    p.stateDir,
		Events:      sink,
		Secrets:     runSecrets(p.cluster, p.stateDir),
		StepTimeout: o.stepTimeout,
		Logger:      logger,
		Shared:      shared,
	})
	closeSink()
	var invalid *engine.InvalidError
	if errors.As(err, &invalid) {
		return badInput(err)
	}
	if res != nil && dryRun && g.output != "json" {
		fmt.Fprintln(out)
		engine.RenderPlan(out, res)
	}
	if err != nil {
		return fmt.Errorf("install: %w", err)
	}
	if !dryRun && g.output != "json" {
		printKubeconfigHint(out, p)
	}
	return nil
}

func pkiSummary(r pki.Report) string {
	counts := map[pki.Action]int{}
	for _, it := range r.Items {
		counts[it.Action]++
	}
	var parts []string
	for _, a := range []pki.Action{pki.Created, pki.Reissued, pki.Renewed, pki.Updated, pki.Chmod, pki.Removed, pki.Reused} {
		if counts[a] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[a], a))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func printKubeconfigHint(w io.Writer, p *prepared) {
	store := pki.NewStore(steps.PKIDir(p.stateDir), nil)
	ep := p.cluster.Endpoint()
	fmt.Fprintf(w, "\nThe control plane of %s is up at https://%s.\n", p.cluster.Metadata.Name, ep)
	fmt.Fprintf(w, "Admin kubeconfig: %s\n  export KUBECONFIG=%s\n  kubectl get --raw /readyz\n", store.AdminKubeconfigPath(), store.AdminKubeconfigPath())
}
