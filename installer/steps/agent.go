package steps

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/kubewright/kubewright/addons"
	"github.com/kubewright/kubewright/installer/engine"
	"github.com/kubewright/kubewright/installer/inventory"
	"github.com/kubewright/kubewright/installer/kube"
	"github.com/kubewright/kubewright/installer/pki"
	"github.com/kubewright/kubewright/installer/remote"
	"github.com/kubewright/kubewright/installer/render"
	"github.com/kubewright/kubewright/installer/steps/stepkit"
)

// SharedAgentBinary is the engine.SharedData key (a string) with which the
// install command's --agent-binary names the kubewright-agent executable on
// the operator's machine.
const SharedAgentBinary = "agent.binary"

// AgentBinaryName is the agent's file name: `make build` puts it beside
// kubewright in bin/, which is where the agent step looks by default.
const AgentBinaryName = "kubewright-agent"

// Agent is the `agent` step: kubewright-agent on every node, as the systemd
// unit kubewright-agent.service, with its own client certificate (CN
// kubewright:agent:NODE, O kubewright:agents, issued from the cluster CA on
// the operator's machine) bound to the kubewright:agent roles, its
// kubeconfig through the VIP and /etc/kubewright/agent.yaml. The binary is
// sent only when its sha256 differs from the node's, and the unit restarts
// only when the binary, its config or its credential changed.
//
// It runs after the node joined: the agent reports on its own Node object.
type Agent struct {
	// AgentBinary is the kubewright-agent executable to install. Empty: the
	// run's SharedAgentBinary, else DefaultAgentBinary.
	AgentBinary string
	// Client is the API client (nil: super-admin from the state directory).
	Client clientFunc
	// Now is the clock for certificate renewal (nil: time.Now).
	Now func() time.Time
}

func newAgent(with map[string]string) (engine.Step, error) {
	if err := checkParams(with, "binary"); err != nil {
		return nil, err
	}
	return Agent{AgentBinary: with["binary"]}, nil
}

func (Agent) Name() string { return "agent" }

// agentRBACObject is the change object for the agent's roles and bindings.
const agentRBACObject = "RBAC " + kube.AgentRBACName + " (ClusterRole, kube-system Role, bindings to group " + kube.AgentGroup + ")"

// DefaultAgentBinary is kubewright-agent in the directory of the running
// kubewright executable (symlinks resolved): where `make build` puts it.
func DefaultAgentBinary() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find the kubewright executable (to look for %s beside it): %w; fix: pass --agent-binary PATH", AgentBinaryName, err)
	}
	if real, err := filepath.EvalSymlinks(exe); err == nil {
		exe = real
	}
	return filepath.Join(filepath.Dir(exe), AgentBinaryName), nil
}

// ResolveAgentBinary returns the agent executable to install: path when set
// (from --agent-binary), else DefaultAgentBinary. It fails when that is not
// a regular file, naming the path and the fix, so install can stop before
// any host is touched.
func ResolveAgentBinary(path string) (string, error) {
	explicit := path != ""
	if !explicit {
		p, err := DefaultAgentBinary()
		if err != nil {
			return "", err
		}
		path = p
	}
	st, err := os.Stat(path)
	if err == nil && !st.Mode().IsRegular() {
		err = errors.New("not a regular file")
	}
	if err != nil {
		where := "expected beside the kubewright executable"
		if explicit {
			where = "given by --agent-binary"
		}
		if errors.Is(err, fs.ErrNotExist) {
			err = errors.New("no such file")
		}
		return "", fmt.Errorf("%s %s (%s): %v; install puts it on every node. Fix: run `make build` (it builds bin/%s beside bin/kubewright), or pass --agent-binary PATH",
			AgentBinaryName, path, where, err, AgentBinaryName)
	}
	return path, nil
}

func (s Agent) binaryPath(t *engine.Target) (string, error) {
	p := s.AgentBinary
	if p == "" && t.Shared != nil {
		p, _ = t.Shared.String(SharedAgentBinary)
	}
	return ResolveAgentBinary(p)
}

// agentBinary is what the step knows of the local executable.
type agentBinary struct {
	path    string
	size    int64
	modTime time.Time
	sha256  string
	isELF   bool
	machine elf.Machine
}

// localAgentBinary hashes the executable once per run (every host's Plan and
// Apply need the sum; the run's shared data remembers it, keyed by path,
// size and mtime so a rebuilt binary is hashed again) and checks it can run
// on the host's architecture.
func (s Agent) localAgentBinary(t *engine.Target) (agentBinary, error) {
	p, err := s.binaryPath(t)
	if err != nil {
		return agentBinary{}, err
	}
	st, err := os.Stat(p)
	if err != nil {
		return agentBinary{}, fmt.Errorf("agent binary: %w", err)
	}
	key := "agent.binary.sum:" + p
	var b agentBinary
	if t.Shared != nil {
		if v, ok := t.Shared.Get(key); ok {
			if c, ok := v.(agentBinary); ok && c.size == st.Size() && c.modTime.Equal(st.ModTime()) {
				b = c
			}
		}
	}
	if b.sha256 == "" {
		if b, err = readAgentBinary(p, st); err != nil {
			return agentBinary{}, err
		}
		if t.Shared != nil {
			t.Shared.Set(key, b)
		}
	}
	if err := b.runsOn(t); err != nil {
		return agentBinary{}, err
	}
	return b, nil
}

func readAgentBinary(p string, st fs.FileInfo) (agentBinary, error) {
	f, err := os.Open(p)
	if err != nil {
		return agentBinary{}, fmt.Errorf("agent binary: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return agentBinary{}, fmt.Errorf("read agent binary %s: %w", p, err)
	}
	b := agentBinary{path: p, size: st.Size(), modTime: st.ModTime(), sha256: hex.EncodeToString(h.Sum(nil))}
	if ef, err := elf.NewFile(f); err == nil {
		b.isELF = ef.OSABI == elf.ELFOSABI_NONE || ef.OSABI == elf.ELFOSABI_LINUX
		b.machine = ef.Machine
	}
	return b, nil
}

// goarchByUname maps `uname -m` to the GOARCH that builds for it, and
// elfMachineByUname to the ELF machine such a binary carries.
var (
	goarchByUname = map[string]string{
		"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64", "armv7l": "arm", "armv6l": "arm",
		"ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64",
	}
	elfMachineByGoarch = map[string]elf.Machine{
		"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64, "arm": elf.EM_ARM,
		"ppc64le": elf.EM_PPC64, "s390x": elf.EM_S390, "riscv64": elf.EM_RISCV,
	}
)

// runsOn refuses a binary that cannot run on the host: an operator on a Mac
// or an arm64 laptop must not install an agent that crash-loops on every
// node. Hosts whose architecture the facts do not give are not checked.
func (b agentBinary) runsOn(t *engine.Target) error {
	if t.Facts == nil || t.Facts.Arch == "" {
		return nil
	}
	goarch, ok := goarchByUname[t.Facts.Arch]
	if !ok {
		return nil
	}
	return b.builtFor(goarch, fmt.Sprintf("%s is %s", t.Inv.Name, t.Facts.Arch))
}

// builtFor checks the binary is a Linux executable for goarch; where says
// what needs that ("w1 is x86_64").
func (b agentBinary) builtFor(goarch, where string) error {
	want, ok := elfMachineByGoarch[goarch]
	if !ok {
		return nil
	}
	fix := fmt.Sprintf("fix: build it for the nodes (GOOS=linux GOARCH=%s make build) or pass --agent-binary PATH", goarch)
	if !b.isELF {
		return fmt.Errorf("%s is not a Linux executable, but %s (linux/%s); %s", b.path, where, goarch, fix)
	}
	if b.machine != want {
		return fmt.Errorf("%s is built for %s, but %s (%s); %s", b.path, b.machine, where, want, fix)
	}
	return nil
}

// CheckAgentBinary refuses, before any host is touched, an agent executable
// that cannot run on nodes of goarch (the artifacts' architecture; "" or an
// unknown one is not checked). The agent step checks each host again
// against its facts.
func CheckAgentBinary(path, goarch string) error {
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("agent binary: %w", err)
	}
	b, err := readAgentBinary(path, st)
	if err != nil {
		return err
	}
	return b.builtFor(goarch, "the artifacts are for "+goarch)
}

// The agents' certificates live in the state directory beside the PKI, one
// per node: a node's agent can then be told apart in the audit log, and a
// removed node's credential is one file to revoke.
const (
	agentCertDir      = "agents"
	agentCertValidity = 365 * 24 * time.Hour
	agentCertRenew    = 30 * 24 * time.Hour
)

func agentCertPaths(stateDir, node string) (certPath, keyPath string) {
	base := filepath.Join(PKIDir(stateDir), agentCertDir, node)
	return base + ".crt", base + ".key"
}

// ensureAgentCert returns node's agent certificate and key (PEM), issuing
// them when missing, not signed by the current CA, for another identity,
// not matching their key or within 30 days of expiry.
func ensureAgentCert(stateDir, node string, now time.Time) (certPEM, keyPEM []byte, err error) {
	return clientCert{
		rel:      filepath.Join(agentCertDir, node),
		req:      pki.CertRequest{CommonName: kube.AgentUser(node), Organization: []string{kube.AgentGroup}, Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}},
		validity: agentCertValidity,
		renew:    agentCertRenew,
	}.ensure(stateDir, now)
}

func (s Agent) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// agentParams are the node's facts for agent.yaml, from the inventory.
func agentParams(t *engine.Target) (render.AgentParams, error) {
	c := t.Cluster
	dns, err := addons.DNSServiceIP(c.Spec.Network.ServiceCIDR)
	if err != nil {
		return render.AgentParams{}, fmt.Errorf("agent config for %s: %w", t.Inv.Name, err)
	}
	ep := c.Spec.ControlPlaneEndpoint
	p := render.AgentParams{
		NodeName:      t.Inv.Name,
		Role:          render.AgentRoleWorker,
		NodeIP:        internalAddress(t.Inv),
		APIServerPort: c.Spec.Kubernetes.APIServerPort,
		HAProxyPort:   ep.Port,
		VIP:           ep.VIP,
		VIPInterface:  ep.Interface,
		ClusterDNS:    dns,
		ClusterDomain: c.Spec.DNS.ClusterDomain,
	}
	if t.Inv.IsIn(inventory.GroupMasters) {
		p.Role = render.AgentRoleMaster
	}
	for _, m := range c.Masters() {
		p.Masters = append(p.Masters, internalAddress(m))
	}
	for _, e := range c.Etcd() {
		p.EtcdMembers = append(p.EtcdMembers, internalAddress(e))
		if e.Name == t.Inv.Name {
			p.EtcdMember = true
		}
	}
	// The clock is compared with the masters only: they are few and stable,
	// so adding or removing a worker does not rewrite (and restart) the
	// agent on every other node.
	for _, h := range c.Masters() {
		if h.Name != t.Inv.Name {
			p.Peers = append(p.Peers, internalAddress(h))
		}
	}
	return p, nil
}

// currentAgentConfig reads agent.yaml from the host ("" when there is none):
// the operator's policy in it survives the re-render.
func currentAgentConfig(ctx context.Context, t *engine.Target) ([]byte, error) {
	f := stepkit.Quote(stepkit.HostPath(t, render.AgentConfigPath))
	out, err := stepkit.RunAsRoot(ctx, t, fmt.Sprintf(`if [ -f %s ]; then cat %s; fi`, f, f))
	if err != nil {
		return nil, fmt.Errorf("read %s on %s: %w", render.AgentConfigPath, t.Inv.Name, err)
	}
	return []byte(out), nil
}

func (s Agent) group(ctx context.Context, t *engine.Target) (serviceGroup, error) {
	c := t.Cluster
	p, err := agentParams(t)
	if err != nil {
		return serviceGroup{}, err
	}
	current, err := currentAgentConfig(ctx, t)
	if err != nil {
		return serviceGroup{}, err
	}
	conf, err := render.AgentConfigFile(p, current)
	if err != nil {
		return serviceGroup{}, err
	}
	certPEM, keyPEM, err := ensureAgentCert(t.StateDir, t.Inv.Name, s.now())
	if err != nil {
		return serviceGroup{}, err
	}
	ca, err := clusterCAPEM(t)
	if err != nil {
		return serviceGroup{}, err
	}
	name := c.Spec.Kubernetes.ClusterName
	if name == "" {
		name = c.Metadata.Name
	}
	// A master's agent reaches the API through its own haproxy, not the
	// VIP: the repair that brings a lost VIP back (restart keepalived)
	// needs the cluster's Leases, so it must not depend on the VIP. The
	// agent falls back to each apiserver directly when haproxy is down
	// (endpoints.apiservers); the apiserver certificates carry 127.0.0.1.
	server := "https://" + c.Endpoint()
	if t.Inv.IsIn(inventory.GroupMasters) {
		server = "https://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(c.Spec.ControlPlaneEndpoint.Port))
	}
	kc, err := pki.RenderKubeconfig(pki.KubeconfigData{ClusterName: name, Server: server, CAPEM: ca, User: kube.AgentUser(t.Inv.Name), ClientCertPEM: certPEM, ClientKeyPEM: keyPEM})
	if err != nil {
		return serviceGroup{}, err
	}
	return serviceGroup{
		files: []stepkit.File{
			{Path: render.AgentKubeconfig, Content: kc, Mode: 0o600, Owner: "root:root"},
			{Path: render.AgentConfigPath, Content: []byte(conf), Mode: 0o644, Owner: "root:root"},
		},
		services:      []service{{unit: render.AgentUnitName, content: []byte(render.AgentUnit()), dependsOn: func(string) bool { return true }}},
		activeTimeout: time.Minute,
	}, nil
}

// planBinary compares the node's agent executable with the local one.
func planBinary(ctx context.Context, t *engine.Target, b agentBinary) (*engine.Change, error) {
	states, err := stepkit.StatFiles(ctx, t, []string{render.AgentBinary})
	if err != nil {
		return nil, err
	}
	st := states[0]
	switch {
	case !st.Exists:
		return &engine.Change{Action: "create", Object: render.AgentBinary, Detail: "from " + b.path}, nil
	case st.SHA256 != b.sha256:
		return &engine.Change{Action: "update", Object: render.AgentBinary, Detail: "sha256 differs from " + b.path}, nil
	case st.Mode.Perm() != 0o755:
		return &engine.Change{Action: "update", Object: render.AgentBinary, Detail: fmt.Sprintf("mode %04o -> 0755", st.Mode.Perm())}, nil
	}
	return nil, nil
}

func (s Agent) Plan(ctx context.Context, t *engine.Target) ([]engine.Change, error) {
	b, err := s.localAgentBinary(t)
	if err != nil {
		return nil, err
	}
	g, err := s.group(ctx, t)
	if err != nil {
		return nil, err
	}
	var changes []engine.Change
	cs, err := s.Client.get(ctx, t)
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	need, err := kube.EnsureAgentRBAC(pctx, cs, true)
	switch {
	case err != nil:
		changes = append(changes, engine.Change{Action: "apply", Object: agentRBACObject, Detail: "API not answering yet: " + err.Error()})
	case need:
		changes = append(changes, engine.Change{Action: "apply", Object: agentRBACObject})
	}
	bin, err := planBinary(ctx, t, b)
	if err != nil {
		return nil, err
	}
	if bin != nil {
		changes = append(changes, *bin)
	}
	gc, err := g.plan(ctx, t)
	if err != nil {
		return nil, err
	}
	// A new binary needs a restart of a running agent, like a new config;
	// a mode fix alone does not.
	if bin != nil && !strings.HasPrefix(bin.Detail, "mode ") {
		restart := false
		for i, c := range gc {
			if c.Object == render.AgentUnitName && (c.Action == stepkit.ActionRestart || c.Action == stepkit.ActionStart) {
				restart = true
				if c.Action == stepkit.ActionRestart {
					gc[i].Detail += ", binary changed"
				}
			}
		}
		if !restart {
			gc = append(gc, engine.Change{Action: stepkit.ActionRestart, Object: render.AgentUnitName, Detail: "binary changed"})
		}
	}
	return append(changes, gc...), nil
}

func (s Agent) Apply(ctx context.Context, t *engine.Target, plan []engine.Change) error {
	b, err := s.localAgentBinary(t)
	if err != nil {
		return err
	}
	g, err := s.group(ctx, t)
	if err != nil {
		return err
	}
	// RBAC first: the agent's first round of checks reports to the API.
	if stepkit.HasObject(plan, agentRBACObject) {
		cs, err := s.Client.get(ctx, t)
		if err != nil {
			return err
		}
		if _, err := kube.EnsureAgentRBAC(ctx, cs, false); err != nil {
			return fmt.Errorf("agent RBAC: %w", err)
		}
	}
	if stepkit.HasObject(plan, render.AgentBinary) {
		if err := uploadAgentBinary(ctx, t, b); err != nil {
			return err
		}
	}
	return g.apply(ctx, t, plan)
}

// uploadAgentBinary streams the executable to the host. The upload writes a
// temporary file and renames it, so the running agent's binary is replaced,
// never written in place ("text file busy").
func uploadAgentBinary(ctx context.Context, t *engine.Target, b agentBinary) error {
	if _, err := stepkit.RunAsRoot(ctx, t, "mkdir -p "+stepkit.Quote(stepkit.HostPath(t, render.BinDir))); err != nil {
		return err
	}
	f, err := os.Open(b.path)
	if err != nil {
		return fmt.Errorf("agent binary: %w", err)
	}
	defer f.Close()
	if _, err := t.Host.Upload(ctx, f, stepkit.HostPath(t, render.AgentBinary), 0o755, remote.UploadAsRoot(), remote.UploadOwner("root:root")); err != nil {
		return fmt.Errorf("upload %s to %s on %s: %w", b.path, render.AgentBinary, t.Inv.Name, err)
	}
	return nil
}
