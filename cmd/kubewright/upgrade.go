package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-multierror"
	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubewright/kubewright/installer/artifacts"
	"github.com/kubewright/kubewright/installer/engine"
	"github.com/kubewright/kubewright/installer/etcdbackup"
	"github.com/kubewright/kubewright/installer/inventory"
	"github.com/kubewright/kubewright/installer/kube"
	"github.com/kubewright/kubewright/installer/steps"
)

// upgradeWorkersPlay is the play of playbooks/upgrade.yaml whose batch size
// --max-unavailable sets.
const upgradeWorkersPlay = "workers"

type upgradeFlags struct {
	to             string
	step           bool
	via            []string
	maxUnavailable string
	drainTimeout   time.Duration
	dryRun         bool
}

func newUpgradeCmd(g *globalOptions) *cobra.Command {
	o := &runOptions{}
	f := &upgradeFlags{}
	c := &cobra.Command{
		Use:   "upgrade -i FILE --to VERSION",
		Short: "Upgrade the cluster to the Kubernetes release of the inventory's artifacts, node by node",
		Long: `upgrade moves an installed cluster to a new Kubernetes release: the one of
the artifacts spec.artifacts points at, which --to must name (so a changed
artifacts path never upgrades by surprise).

Before any host is touched it reads what the cluster runs (the apiserver's
/version and every node's kubelet version, with the admin kubeconfig in the
state directory) and applies the version-skew rules against the oldest of
them: one minor at a time (v1.36.x -> v1.37.y; --step with --via DIR walks
several minors, each a full pass with that directory's artifacts), no
downgrade. A cluster that already runs --to everywhere is left alone (exit 0).
Then it verifies the artifacts and takes an etcd snapshot to this machine:
<state-dir>/clusters/<name>/backups/etcd-<name>-pre-upgrade-<version>-<time>.db
with its .sha256 (see kubewright etcd restore).

Then the embedded upgrade playbook runs:
  1. etcd members that are not masters, one at a time, each waiting for the
     whole etcd cluster to be healthy;
  2. masters one at a time: cordon, new binaries, restart etcd (waiting for
     etcd health) and the control plane (waiting for this master's /readyz),
     then containerd's images, kube-proxy and the kubelet, wait until the
     Node reports the new release and is Ready, uncordon;
  3. the other nodes in batches of --max-unavailable: cordon, drain through
     the eviction API (PodDisruptionBudgets respected, at most
     --drain-timeout; a drain that does not finish uncordons the node, says
     so, and stops the upgrade), new binaries, kube-proxy, kubelet, wait
     for the release, uncordon;
  4. the add-ons of the new artifacts.
Any failure stops the upgrade; nodes already done stay done. Every run is
journaled under <state-dir>/clusters/<name>/runs/. Run the same command
again to resume: a node whose kubelet reports the release and whose binaries
match plans no change in any step, so it is not cordoned or drained again.
--dry-run prints the order and every node's changes and touches nothing.

If spec.kubernetes.version in the inventory differs from --to, --to is used
for this run and upgrade tells you to update the inventory (install and
repair refuse artifacts of another release than spec.kubernetes.version).
Exit codes: 0 ok, 1 a host failed, 2 bad input (nothing was changed).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runUpgrade(cmd, g, o, f)
		},
	}
	o.addFlags(c)
	c.Flags().StringVar(&f.to, "to", "", "the Kubernetes release to upgrade to, e.g. v1.37.2; must be the release of the inventory's spec.artifacts")
	c.Flags().BoolVar(&f.step, "step", false, "walk several minor releases, one full upgrade pass per minor, through the --via artifacts")
	c.Flags().StringSliceVar(&f.via, "via", nil, "with --step: an artifacts `DIR` of an intermediate release (repeat, one per minor between the cluster's and --to)")
	c.Flags().StringVar(&f.maxUnavailable, "max-unavailable", "1", "nodes (besides masters) upgraded at once: a count, or a percentage of the nodes like 10%")
	c.Flags().DurationVar(&f.drainTimeout, "drain-timeout", steps.DefaultDrainTimeout, "how long one node's drain may take; on timeout the node is uncordoned and the upgrade stops")
	c.Flags().BoolVar(&f.dryRun, "dry-run", false, "only plan: print the order and every node's changes, touch nothing (no snapshot either)")
	return c
}

// parseMaxUnavailable reads --max-unavailable as the workers play's serial.
func parseMaxUnavailable(s string) (engine.Serial, error) {
	bad := fmt.Errorf("--max-unavailable %q: want a node count like 2 or a percentage like 10%%", s)
	if p, ok := strings.CutSuffix(s, "%"); ok {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 100 {
			return engine.Serial{}, bad
		}
		return engine.Serial{Percent: n}, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return engine.Serial{}, bad
	}
	return engine.Serial{Count: n}, nil
}

// upgradePass is one release the cluster is moved to, with its artifacts.
type upgradePass struct {
	version kube.Version
	source  artifacts.Source
	// where names the artifacts for messages (the inventory field or --via).
	where string
}

func runUpgrade(cmd *cobra.Command, g *globalOptions, o *runOptions, f *upgradeFlags) error {
	ctx := cmd.Context()
	// Everything that needs no cluster is checked first.
	if f.to == "" {
		return badInput(errors.New("--to is required: the Kubernetes release to upgrade to, e.g. --to v1.37.2 (the release of the inventory's spec.artifacts)"))
	}
	to, err := kube.ParseVersion(f.to)
	if err != nil {
		return badInput(fmt.Errorf("--to: %w", err))
	}
	serial, err := parseMaxUnavailable(f.maxUnavailable)
	if err != nil {
		return badInput(err)
	}
	switch {
	case f.drainTimeout <= 0:
		return badInput(fmt.Errorf("--drain-timeout must be positive, got %s", f.drainTimeout))
	case o.concurrency < 1:
		return badInput(fmt.Errorf("--concurrency must be at least 1, got %d", o.concurrency))
	case o.stepTimeout > 0 && f.drainTimeout+time.Minute > o.stepTimeout:
		// The drain step also uncordons after a timeout; a step timeout
		// that cuts the drain first would leave the node cordoned.
		return badInput(fmt.Errorf("--drain-timeout %s does not fit in --step-timeout %s (the drain step needs up to 1m more); fix: raise --step-timeout to at least %s or lower --drain-timeout", f.drainTimeout, o.stepTimeout, f.drainTimeout+time.Minute))
	case len(f.via) > 0 && !f.step:
		return badInput(errors.New("--via gives the artifacts of intermediate releases, which only --step walks; fix: add --step, or drop --via"))
	}
	if err := checkEventOutput(g); err != nil {
		return err
	}
	pb, reg, err := loadPlaybook("upgrade")
	if err != nil {
		return err
	}
	if err := setPlaySerial(pb, upgradeWorkersPlay, serial); err != nil {
		return err
	}
	cl, dir, err := certsClusterDir(g, o.inventory)
	if err != nil {
		return err
	}
	if err := o.hostKeys.check(cl); err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	text := g.output != "json"
	invVersion := cl.Spec.Kubernetes.Version
	// --to is this run's release: a download source fetches that release,
	// and nothing else reads the field during the run.
	cl.Spec.Kubernetes.Version = to.String()
	target, err := openUpgradeArtifacts(ctx, cl, o.inventory, dir, to)
	if err != nil {
		return err
	}
	via, err := openViaArtifacts(f.via)
	if err != nil {
		return err
	}

	client, err := adminClient(dir)
	if err != nil {
		return err
	}
	cur, err := kube.ReadClusterVersions(ctx, client.Clientset)
	if err != nil {
		return fmt.Errorf("upgrade: nothing was changed: read what the cluster runs: %w", err)
	}
	if err := checkNodesJoined(cl, cur, o.inventory); err != nil {
		return err
	}
	versions := make([]kube.Version, len(via))
	for i, p := range via {
		versions[i] = p.version
	}
	passVersions, err := kube.UpgradePasses(cur, to, versions, f.step)
	var skew *kube.SkewError
	if errors.As(err, &skew) {
		return badInput(fmt.Errorf("upgrade: nothing was changed: %w", err))
	}
	if err != nil {
		return err
	}
	cordoned, err := upgradeCordonedNodes(ctx, client)
	if err != nil {
		return fmt.Errorf("upgrade: nothing was changed: %w", err)
	}
	if cur.AllAt(to) && len(cordoned) == 0 {
		if text {
			fmt.Fprintf(out, "cluster %s already runs %s (the apiserver and every kubelet): nothing to upgrade\n", cl.Metadata.Name, to)
			// Every node done says nothing of the last play: a run cut
			// there left the add-ons at the old release's manifests.
			fmt.Fprintf(out, "if an earlier upgrade stopped in its add-ons play, kubewright install -i %s applies the add-ons of these artifacts\n", o.inventory)
			inventoryVersionHint(out, o.inventory, invVersion, to)
		}
		return nil
	}
	passes := make([]upgradePass, 0, len(passVersions))
	for _, v := range passVersions {
		p := target
		for _, vp := range via {
			if vp.version.Compare(v) == 0 {
				p = vp
			}
		}
		passes = append(passes, p)
	}
	for _, p := range passes {
		if err := verifyUpgradeArtifacts(ctx, cl, p); err != nil {
			return err
		}
	}

	base := filepath.Dir(filepath.Dir(dir))
	conn, closeConn, err := newSSHConnector(cl, clusterKnownHosts(base, cl), o.hostKeys)
	if err != nil {
		return err
	}
	defer closeConn()
	// A master or etcd member that cannot be reached would stop the upgrade
	// half way with the API on fewer masters: find out before anything.
	if !f.dryRun {
		if err := renewPreflight(ctx, conn, cl); err != nil {
			return fmt.Errorf("upgrade: nothing was changed: %w", err)
		}
	}
	oldest, oldWho := cur.Oldest()
	if text {
		if invVersion != to.String() {
			fmt.Fprintf(out, "note: %s says spec.kubernetes.version: %s; this run uses --to %s\n", o.inventory, invVersion, to)
		}
		printUpgradeOrder(out, cl, serial, cur, passes, cordoned)
	}
	for i, p := range passes {
		if f.dryRun && i > 0 {
			if text {
				fmt.Fprintf(out, "\nthe pass to %s is planned once the pass to %s has run\n", p.version, passes[0].version)
			}
			break
		}
		if text {
			from := oldest.String() + " (" + oldWho + ")"
			if i > 0 {
				from = passes[i-1].version.String()
			}
			fmt.Fprintf(out, "\nupgrade pass %d of %d: %s -> %s, artifacts from %s\n", i+1, len(passes), from, p.version, p.where)
		}
		snapshot := ""
		if !f.dryRun {
			snap, err := upgradeSnapshot(ctx, conn, cl, dir, p.version, "")
			if err != nil {
				return fmt.Errorf("upgrade to %s: nothing was changed: %w", p.version, err)
			}
			snapshot = snap.Path
			if text {
				fmt.Fprintf(out, "etcd snapshot before the upgrade: %s (sha256 %s)\n", snap.Path, snap.SHA256)
			}
		}
		cl.Spec.Kubernetes.Version = p.version.String()
		shared := engine.NewSharedData()
		shared.Set(steps.SharedArtifacts, p.source)
		shared.Set(steps.SharedForce, false)
		shared.Set(steps.SharedDrainTimeout, f.drainTimeout)
		shared.Set(steps.SharedAddonsTimeout, steps.DefaultAddonsTimeout)
		_, err := runEngine(cmd, g, engine.Options{
			Playbook:    pb,
			Cluster:     cl,
			Registry:    reg,
			Connector:   conn,
			Concurrency: o.concurrency,
			DryRun:      f.dryRun,
			StateDir:    dir,
			Secrets:     runSecrets(cl, dir),
			StepTimeout: o.stepTimeout,
			Shared:      shared,
		})
		if isBadInput(err) {
			return err
		}
		if err != nil && f.dryRun {
			return fmt.Errorf("upgrade to %s --dry-run (nothing was changed): %w", p.version, err)
		}
		if err != nil {
			return fmt.Errorf("upgrade to %s stopped: %w; nodes already upgraded stay so; fix the cause and run the same command again to resume (finished nodes plan no change); etcd snapshot from before this pass: %s", p.version, err, snapshot)
		}
	}
	if !f.dryRun && text {
		fmt.Fprintf(out, "\ncluster %s upgraded to %s\n", cl.Metadata.Name, to)
		inventoryVersionHint(out, o.inventory, invVersion, to)
	}
	return nil
}

func setPlaySerial(pb *engine.Playbook, play string, s engine.Serial) error {
	for i := range pb.Plays {
		if pb.Plays[i].Name == play {
			pb.Plays[i].Serial = s
			return nil
		}
	}
	return badInput(fmt.Errorf("playbook %s has no play %q for --max-unavailable", pb.Name, play))
}

// openUpgradeArtifacts opens the inventory's artifacts and refuses them
// unless they are --to's release: the artifacts decide what the hosts run,
// so --to is the operator's confirmation of what that is.
func openUpgradeArtifacts(ctx context.Context, cl *inventory.Cluster, invPath, dir string, to kube.Version) (upgradePass, error) {
	src, err := openArtifacts(ctx, cl, dir)
	if err != nil {
		return upgradePass{}, err
	}
	where := fmt.Sprintf("%s spec.artifacts (%s %s)", invPath, cl.Spec.Artifacts.Source, cl.Spec.Artifacts.Path)
	if v := src.Manifest().KubernetesVersion; v != to.String() {
		return upgradePass{}, badInput(fmt.Errorf("--to %s, but %s holds Kubernetes %s; fix: point spec.artifacts.path in %s at artifacts built for %s (make artifacts builds the default release), or pass --to %s",
			to, where, v, invPath, to, v))
	}
	return upgradePass{version: to, source: src, where: where}, nil
}

func openViaArtifacts(dirs []string) ([]upgradePass, error) {
	var out []upgradePass
	for _, d := range dirs {
		src, err := artifacts.OpenDir(d)
		if err != nil {
			return nil, badInput(fmt.Errorf("--via %s: %w; fix: give an artifacts directory (hack/build-artifacts.sh writes one per release)", d, err))
		}
		v, err := kube.ParseVersion(src.Manifest().KubernetesVersion)
		if err != nil {
			return nil, badInput(fmt.Errorf("--via %s: manifest: %w", d, err))
		}
		out = append(out, upgradePass{version: v, source: src, where: "--via " + d})
	}
	return out, nil
}

// verifyUpgradeArtifacts checks, like install, what nodes need and every
// file's checksum before any host is touched.
func verifyUpgradeArtifacts(ctx context.Context, cl *inventory.Cluster, p upgradePass) error {
	m := p.source.Manifest()
	if err := steps.CheckNodeArtifacts(m); err != nil {
		return badInput(fmt.Errorf("%s: nothing was changed: %w; fix: rebuild them with `make artifacts`", p.where, err))
	}
	if _, err := steps.RenderAddons(cl, m); err != nil {
		return badInput(fmt.Errorf("%s: nothing was changed: %w", p.where, err))
	}
	if err := p.source.VerifyAll(ctx); err != nil {
		return badInput(fmt.Errorf("%s failed verification, nothing was changed: %w", p.where, err))
	}
	return nil
}

// checkNodesJoined refuses an upgrade while an inventory host has no Node:
// the kubelet step would join it, which is install's job, with its checks.
func checkNodesJoined(cl *inventory.Cluster, cur kube.ClusterVersions, invPath string) error {
	var missing []string
	for _, h := range cl.HostsInGroup(inventory.GroupAll) {
		if _, ok := cur.Kubelets[h.Name]; !ok {
			missing = append(missing, h.Name)
		}
	}
	if len(missing) > 0 {
		return badInput(fmt.Errorf("upgrade: nothing was changed: host %s in %s has no Node in the cluster; fix: join it first with kubewright install -i %s (at the cluster's current release), or remove it from the inventory",
			strings.Join(missing, ", "), invPath, invPath))
	}
	return nil
}

// upgradeCordonedNodes lists nodes a cut upgrade left cordoned: a cluster
// at the release with such a node still has an upgrade to finish.
func upgradeCordonedNodes(ctx context.Context, client *kube.Client) ([]string, error) {
	nodes, err := client.Clientset.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	var out []string
	for _, n := range nodes.Items {
		if _, ok := n.Annotations[steps.AnnotationUpgradeCordoned]; ok {
			out = append(out, n.Name)
		}
	}
	return out, nil
}

// upgradeSnapshot saves an etcd snapshot to the operator's machine from the
// first member that gives one, named after the release it precedes.
// remoteDir is where the member writes it first ("": etcdbackup.RemoteDir).
func upgradeSnapshot(ctx context.Context, conn engine.Connector, cl *inventory.Cluster, dir string, v kube.Version, remoteDir string) (etcdbackup.Snapshot, error) {
	var errs *multierror.Error
	for _, m := range cl.Etcd() {
		h, err := conn.Connect(ctx, m)
		if err != nil {
			errs = multierror.Append(errs, err)
			continue
		}
		snap, err := etcdbackup.Save(ctx, h, etcdbackup.SaveOptions{
			Cluster:   cl.Metadata.Name + "-pre-upgrade-" + v.String(),
			Dir:       etcdbackup.Dir(dir),
			RemoteDir: remoteDir,
			Now:       time.Now(),
		})
		if err != nil && snap.Path == "" {
			errs = multierror.Append(errs, err)
			continue
		}
		return snap, nil // a member that kept its copy is no reason to stop
	}
	return etcdbackup.Snapshot{}, fmt.Errorf("etcd snapshot before the upgrade: no member gave one: %w", errs.ErrorOrNil())
}

// printUpgradeOrder says, before anything runs, in what order hosts are
// upgraded, so a dry run shows the order as well as the changes.
func printUpgradeOrder(w io.Writer, cl *inventory.Cluster, serial engine.Serial, cur kube.ClusterVersions, passes []upgradePass, cordoned []string) {
	oldest, who := cur.Oldest()
	var rel []string
	for _, p := range passes {
		rel = append(rel, p.version.String())
	}
	fmt.Fprintf(w, "cluster %s: oldest component %s (%s), apiserver %s; upgrading to %s\n", cl.Metadata.Name, oldest, who, cur.APIServer, strings.Join(rel, " then "))
	if len(cordoned) > 0 {
		fmt.Fprintf(w, "left cordoned by an earlier upgrade: %s\n", strings.Join(cordoned, ", "))
	}
	var etcdOnly []string
	for _, h := range cl.Etcd() {
		if !h.IsIn(inventory.GroupMasters) {
			etcdOnly = append(etcdOnly, h.Name)
		}
	}
	if len(etcdOnly) > 0 {
		fmt.Fprintf(w, "  etcd members, one at a time: %s\n", strings.Join(etcdOnly, ", "))
	}
	fmt.Fprintf(w, "  masters, one at a time: %s\n", hostNames(cl.Masters()))
	var others []*inventory.Host
	for _, h := range cl.HostsInGroup(inventory.GroupAll) {
		if !h.IsIn(inventory.GroupMasters) {
			others = append(others, h)
		}
	}
	if len(others) > 0 {
		size := serial.BatchSize(len(cl.HostsInGroup(inventory.GroupAll)))
		fmt.Fprintf(w, "  then the other nodes, %d at a time (--max-unavailable %s), each drained first: %s\n", size, serial, hostNames(others))
	}
	var strays []string
	for name := range cur.Kubelets {
		if cl.Host(name) == nil {
			strays = append(strays, name)
		}
	}
	if len(strays) > 0 {
		sort.Strings(strays)
		fmt.Fprintf(w, "  not in the inventory, so not upgraded (they count for the version skew): %s\n", strings.Join(strays, ", "))
	}
	for _, h := range cl.HostsInGroup(inventory.GroupAll) {
		if v, ok := cur.Kubelets[h.Name]; ok && len(passes) > 0 && v.Compare(passes[len(passes)-1].version) == 0 {
			fmt.Fprintf(w, "  %s already reports %s: it plans no change\n", h.Name, v)
		}
	}
}

func inventoryVersionHint(w io.Writer, invPath, invVersion string, to kube.Version) {
	if invVersion != to.String() {
		fmt.Fprintf(w, "update %s: set spec.kubernetes.version: %s (it says %s; install and repair refuse artifacts of another release)\n", invPath, to, invVersion)
	}
}
