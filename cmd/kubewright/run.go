package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/kubewright/kubewright/installer/engine"
	"github.com/kubewright/kubewright/installer/inventory"
	"github.com/kubewright/kubewright/installer/remote"
)

// runOptions are the flags shared by `run` and `plan`.
type runOptions struct {
	inventory   string
	concurrency int
	hostKeys    hostKeyOptions
	stepTimeout time.Duration
}

func (o *runOptions) addFlags(c *cobra.Command) {
	addInventoryFlag(c, &o.inventory)
	c.Flags().IntVar(&o.concurrency, "concurrency", engine.DefaultConcurrency, "hosts worked on at once, across all plays")
	addHostKeyFlags(c, &o.hostKeys)
	c.Flags().DurationVar(&o.stepTimeout, "step-timeout", engine.DefaultStepTimeout, "timeout of one step attempt when the playbook sets none")
}

func newRunCmd(g *globalOptions) *cobra.Command {
	o := &runOptions{}
	var dryRun bool
	c := &cobra.Command{
		Use:   "run -i FILE PLAYBOOK",
		Short: "Run a playbook (embedded name like check, or a path to your own YAML)",
		Long: `run executes a playbook on the inventory's hosts over SSH: plays in order,
hosts in serial batches, at most --concurrency hosts at once. Each step first
plans (inspects the host) and applies only when something differs, so a re-run
on an up-to-date cluster changes nothing.

Every run writes a journal and per-host command logs (secrets redacted) under
<state-dir>/clusters/<name>/runs/. Ctrl-C stops promptly and still writes them.
Exit codes: 0 ok, 1 a host failed, 2 bad playbook, inventory or flags.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPlaybook(cmd, g, o, args[0], dryRun)
		},
	}
	o.addFlags(c)
	c.Flags().BoolVar(&dryRun, "dry-run", false, "only plan: print every host's changes and change nothing")
	return c
}

// runPlaybook is `run` and `plan`: everything that can be checked without a
// host (playbook, step names, inventory, selectors) is checked first and
// reported as bad input.
func runPlaybook(cmd *cobra.Command, g *globalOptions, o *runOptions, arg string, dryRun bool) error {
	if o.concurrency < 1 {
		return badInput(fmt.Errorf("--concurrency must be at least 1, got %d", o.concurrency))
	}
	if o.stepTimeout <= 0 {
		return badInput(fmt.Errorf("--step-timeout must be positive, got %s", o.stepTimeout))
	}
	pb, reg, err := loadPlaybook(arg)
	if err != nil {
		return err
	}
	cl, err := inventory.Load(o.inventory)
	if err != nil {
		return badInput(err)
	}
	if err := checkEventOutput(g); err != nil {
		return err
	}
	base, err := labStateDir(g)
	if err != nil {
		return err
	}
	conn, closeConn, err := newSSHConnector(cl, clusterKnownHosts(base, cl), o.hostKeys)
	if err != nil {
		return err
	}
	defer closeConn()
	dir := filepath.Join(base, "clusters", cl.Metadata.Name)
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
	})
	if isBadInput(err) {
		return err
	}
	if err != nil {
		return fmt.Errorf("playbook %s: %w", pb.Name, err)
	}
	return nil
}

// clusterSecrets are the values the inventory names by environment variable;
// the engine redacts them from logs, the journal and events.
func clusterSecrets(cl *inventory.Cluster) []string {
	names := []string{
		cl.Spec.HostDefaults.PasswordEnv, cl.Spec.HostDefaults.SudoPasswordEnv,
		cl.Spec.ControlPlaneEndpoint.AuthPassEnv, cl.Spec.Network.WeavePasswordEnv,
	}
	for _, h := range cl.Spec.Hosts {
		names = append(names, h.PasswordEnv, h.SudoPasswordEnv)
	}
	var out []string
	for _, n := range names {
		if n == "" {
			continue
		}
		if v := os.Getenv(n); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// sshConnector dials inventory hosts with the cluster's own known_hosts.
type sshConnector struct {
	cl         *inventory.Cluster
	knownHosts string
	acceptNew  bool
	replace    map[string]bool // hosts whose changed key is accepted (--replace-host-key)

	mu     sync.Mutex
	opened []*closeOnce
}

// newSSHConnector returns an engine.Connector over SSH and a function that
// closes every connection it opened (the engine closes its own; callers
// that are not the engine rely on the function). Host keys are checked
// strictly; hk.replaceKeys names the inventory hosts whose changed key is
// accepted and recorded instead (each must be a host of cl).
func newSSHConnector(cl *inventory.Cluster, knownHosts string, hk hostKeyOptions) (engine.Connector, func(), error) {
	if err := hk.check(cl); err != nil {
		return nil, nil, err
	}
	if err := os.MkdirAll(filepath.Dir(knownHosts), 0o700); err != nil {
		return nil, nil, fmt.Errorf("create state directory for known_hosts: %w", err)
	}
	c := &sshConnector{cl: cl, knownHosts: knownHosts, acceptNew: hk.acceptNew, replace: hk.replace()}
	return c, c.closeAll, nil
}

func (c *sshConnector) config(h *inventory.Host) remote.Config {
	return remote.Config{
		Name:              h.Name,
		Address:           h.Address,
		Port:              h.Port,
		User:              h.User,
		KeyFile:           h.KeyFile,
		Password:          envValue(h.PasswordEnv),
		SudoPassword:      envValue(h.SudoPasswordEnv),
		KnownHostsFile:    c.knownHosts,
		AcceptNewHostKeys: c.acceptNew,
		ReplaceHostKey:    c.replace[h.Name],
	}
}

// Connect implements engine.Connector, following the host's bastion chain.
func (c *sshConnector) Connect(ctx context.Context, h *inventory.Host) (remote.Host, error) {
	cfg := c.config(h)
	chain, err := c.cl.BastionChain(h)
	if err != nil {
		return nil, err
	}
	// chain is outermost first; each hop is reached through the previous one.
	var via *remote.Config
	for _, b := range chain {
		var hop remote.Config
		if b.Host != nil {
			hop = c.config(b.Host)
		} else {
			hop = remote.Config{Name: b.Address, Address: b.Address, Port: b.Port, User: b.User, KeyFile: h.KeyFile,
				KnownHostsFile: c.knownHosts, AcceptNewHostKeys: c.acceptNew, NotInInventory: true}
		}
		if b.User != "" {
			hop.User = b.User
		}
		if b.Port != 0 {
			hop.Port = b.Port
		}
		hop.Bastion = via
		via = &hop
	}
	cfg.Bastion = via
	sh, err := remote.Dial(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("ssh %s@%s: %w", cfg.User, netAddr(cfg.Address, cfg.Port), err)
	}
	co := &closeOnce{Host: sh}
	c.mu.Lock()
	c.opened = append(c.opened, co)
	c.mu.Unlock()
	return co, nil
}

func (c *sshConnector) closeAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, h := range c.opened {
		_ = h.Close() // best effort at exit; the engine reports its own close errors
	}
	c.opened = nil
}

// closeOnce lets both the engine and closeAll close a connection.
type closeOnce struct {
	remote.Host
	once sync.Once
	err  error
}

func (c *closeOnce) Close() error {
	c.once.Do(func() { c.err = c.Host.Close() })
	return c.err
}

func envValue(name string) string {
	if name == "" {
		return ""
	}
	return os.Getenv(name)
}

func netAddr(host string, port int) string {
	if port == 0 {
		return host
	}
	return host + ":" + strconv.Itoa(port)
}
