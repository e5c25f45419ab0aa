//go:build linux

package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-multierror"
	"github.com/vishvananda/netlink"
	"golang.org/x/crypto/ssh"
)

func requireRoot() error {
	if os.Geteuid() != 0 {
		return errors.New("lab needs root: it creates network namespaces, a bridge, cgroups and overlay mounts and runs systemd-nspawn (run it with sudo)")
	}
	return nil
}

// hostCgroups returns the host's cgroup mode and this process's cgroups.
func hostCgroups() (string, []cgroupMount, []procCgroup, error) {
	mi, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", nil, nil, err
	}
	defer mi.Close()
	mounts := parseCgroupMounts(mi)
	pc, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return "", nil, nil, err
	}
	defer pc.Close()
	return detectCgroupMode(mounts), mounts, parseProcCgroup(pc), nil
}

// errUnifiedCgroups explains the one host shape this release cannot run.
var errUnifiedCgroups = errors.New("this host runs cgroup v2 only (unified hierarchy); kubewright lab supports cgroup v1 hybrid and legacy hosts (tested: v1 hybrid without systemd as PID 1). " +
	"On a unified host kubelet inside nspawn needs the machine's cgroup delegated by the host's systemd (systemd-run --property=Delegate=yes around nspawn, registered with machined), which is not implemented yet; " +
	"boot the host with systemd.unified_cgroup_hierarchy=0 or use the Vagrant topology in vagrant/")

// Up brings the lab to the requested shape: it builds what is missing and
// (re)starts machines that are not running; a fully running lab is only
// reported.
func (m *Manager) Up(ctx context.Context, o UpOptions) (*Lab, error) {
	if err := ValidateUp(o); err != nil {
		return nil, err
	}
	if err := requireRoot(); err != nil {
		return nil, err
	}
	if err := m.ensureHostTools(ctx); err != nil {
		return nil, err
	}
	mode, mounts, self, err := hostCgroups()
	if err != nil {
		return nil, fmt.Errorf("inspect cgroups: %w", err)
	}
	if mode == cgroupUnified {
		return nil, errUnifiedCgroups
	}
	if err := m.raiseHostSysctls(); err != nil {
		return nil, err
	}
	dir := m.cfg.labDir(o.Name)
	st, err := loadState(dir)
	if err != nil {
		return nil, err
	}
	plan := planMachines(o)
	if st != nil {
		if err := sameShape(st, plan); err != nil {
			return nil, err
		}
	} else {
		if st, err = newState(o.Name, plan); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("create lab dir: %w", err)
		}
	}
	st.CgroupMode = mode
	if err := saveState(dir, st); err != nil {
		return nil, err
	}

	image, _, err := m.ensureImage(ctx)
	if err != nil {
		return nil, err
	}
	st.Image = image
	keyFile := filepath.Join(dir, "id_ed25519")
	pub, err := ensureLabKey(keyFile, o.Name)
	if err != nil {
		return nil, err
	}
	_, subnet, _ := net.ParseCIDR(st.Subnet)
	gw := &net.IPNet{IP: net.ParseIP(st.Gateway).To4(), Mask: subnet.Mask}
	if err := ensureBridge(st.Bridge, gw); err != nil {
		return nil, err
	}
	hosts := etcHosts(st)

	running := map[string]bool{}
	for _, ms := range st.Machines {
		running[ms.Name] = nspawnAlive(ms.PID, ms.Netns)
	}
	started := map[string]<-chan error{}
	for i := range st.Machines {
		ms := &st.Machines[i]
		if running[ms.Name] {
			fmt.Fprintf(m.cfg.Out, "%-16s %-15s running (pid %d)\n", ms.Name, ms.Address, ms.PID)
			continue
		}
		done, err := m.startMachine(ms, st, dir, image, hosts, pub, gw.IP, subnet, mounts, self)
		saveErr := saveState(dir, st)
		if err != nil {
			return nil, fmt.Errorf("start %s: %w", ms.Name, err)
		}
		if saveErr != nil {
			return nil, saveErr
		}
		started[ms.Name] = done
		fmt.Fprintf(m.cfg.Out, "%-16s %-15s starting (pid %d)\n", ms.Name, ms.Address, ms.PID)
	}

	lab, err := m.writeClientFiles(st, dir)
	if err != nil {
		return nil, err
	}
	if err := m.waitReachable(ctx, st, dir, started); err != nil {
		return nil, err
	}
	lab.AlreadyRunning = len(started) == 0
	lab.Machines = m.machineStatuses(ctx, st, dir)
	return lab, nil
}

func newState(name string, plan []machinePlan) (*state, error) {
	used, err := usedNetworks()
	if err != nil {
		return nil, err
	}
	subnet, err := pickSubnet(name, used)
	if err != nil {
		return nil, err
	}
	st := &state{
		Name:    name,
		Subnet:  subnet.String(),
		Bridge:  bridgeName(name),
		Gateway: hostAddr(subnet, gatewayHost).String(),
		VIP:     hostAddr(subnet, vipHost).String(),
	}
	for _, p := range plan {
		st.Machines = append(st.Machines, machineState{
			Name:     p.Name,
			Role:     p.Role,
			Index:    p.Index,
			Address:  hostAddr(subnet, firstMachineHost+p.Index).String(),
			Netns:    netnsName(p.Name),
			HostVeth: vethName(name, p.Index),
		})
	}
	return st, nil
}

// sameShape refuses to silently reshape an existing lab.
func sameShape(st *state, plan []machinePlan) error {
	var have, want []string
	for _, ms := range st.Machines {
		have = append(have, ms.Name)
	}
	for _, p := range plan {
		want = append(want, p.Name)
	}
	if strings.Join(have, ",") != strings.Join(want, ",") {
		return fmt.Errorf("lab %s already exists with machines %s; run `kubewright lab down --name %s` first to change its shape", st.Name, strings.Join(have, ", "), st.Name)
	}
	return nil
}

func etcHosts(st *state) string {
	var b strings.Builder
	b.WriteString("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\n# kubewright lab " + st.Name + "\n")
	for _, ms := range st.Machines {
		fmt.Fprintf(&b, "%s\t%s\n", ms.Address, ms.Name)
	}
	return b.String()
}

// startMachine (re)creates everything a stopped machine needs and launches it.
func (m *Manager) startMachine(ms *machineState, st *state, dir, image, hosts string, pub []byte, gw net.IP, subnet *net.IPNet, mounts []cgroupMount, self []procCgroup) (<-chan error, error) {
	mdir := machineDir(dir, ms.Name)
	if err := os.MkdirAll(mdir, 0o755); err != nil {
		return nil, err
	}
	// Cgroups of an earlier run may sit below another launcher's cgroup.
	// and a guest whose nspawn died may still run in them.
	for _, cg := range ms.Cgroups {
		if err := killCgroupTree(cg, 10*time.Second); err != nil {
			return nil, err
		}
		if err := removeCgroupTree(cg, 5*time.Second); err != nil {
			return nil, err
		}
	}
	ms.Cgroups = nil
	_ = os.RemoveAll(propagateDir(ms.Name)) // left by an nspawn that was killed
	root, err := mountRoot(ms, image, mdir)
	if err != nil {
		return nil, err
	}
	if err := prepareRoot(root, mdir, identity{Hostname: ms.Name, Hosts: hosts, AuthorizedKey: pub}); err != nil {
		return nil, fmt.Errorf("prepare root: %w", err)
	}
	// A fresh namespace drops whatever the guest's CNI left in the old one.
	if err := deleteNetns(ms.Netns); err != nil {
		return nil, err
	}
	if err := createNetns(ms.Netns); err != nil {
		return nil, err
	}
	addr := &net.IPNet{IP: net.ParseIP(ms.Address).To4(), Mask: subnet.Mask}
	if err := connectMachine(st.Bridge, ms.HostVeth, ms.Netns, addr, gw); err != nil {
		return nil, err
	}
	cgs, err := planCgroups(mounts, self, st.Name, ms.Name)
	if err != nil {
		return nil, err
	}
	for _, c := range cgs {
		ms.Cgroups = append(ms.Cgroups, c.Dir)
		if err := makeCgroup(c); err != nil {
			return nil, err
		}
	}
	args := nspawnArgs(root, ms.Name, filepath.Join(netnsDir, ms.Netns), filepath.Join(mdir, "containerd"), cgs)
	return launch(ms, args, cgs, filepath.Join(mdir, "console.log"))
}

// writeClientFiles writes known_hosts and the inventory.
func (m *Manager) writeClientFiles(st *state, dir string) (*Lab, error) {
	var entries []knownHost
	for _, ms := range st.Machines {
		pub, err := os.ReadFile(filepath.Join(machineDir(dir, ms.Name), "ssh_host_ed25519_key.pub"))
		if err != nil {
			return nil, fmt.Errorf("host key of %s: %w", ms.Name, err)
		}
		entries = append(entries, knownHost{Name: ms.Name, Address: ms.Address, PublicKey: pub})
	}
	kh, err := knownHostsLines(entries)
	if err != nil {
		return nil, err
	}
	lab := &Lab{
		Name:       st.Name,
		Dir:        dir,
		Inventory:  filepath.Join(dir, "inventory.yaml"),
		KnownHosts: filepath.Join(dir, "known_hosts"),
		KeyFile:    filepath.Join(dir, "id_ed25519"),
		Subnet:     st.Subnet,
		Bridge:     st.Bridge,
		VIP:        st.VIP,
	}
	if err := writeFileAtomic(lab.KnownHosts, kh, 0o644); err != nil {
		return nil, fmt.Errorf("write known_hosts: %w", err)
	}
	// install checks host keys against the cluster's own known_hosts
	// (<state>/clusters/<name>/known_hosts; the inventory's metadata.name is
	// the lab's name). The lab knows its machines' keys, so it writes them
	// there too and install connects with strict checking from the first run.
	// A lab made again under the same name has new keys: replace the file.
	clusterKH := filepath.Join(m.cfg.StateDir, "clusters", st.Name, "known_hosts")
	if err := os.MkdirAll(filepath.Dir(clusterKH), 0o700); err != nil {
		return nil, fmt.Errorf("create cluster state dir: %w", err)
	}
	if err := writeFileAtomic(clusterKH, kh, 0o600); err != nil {
		return nil, fmt.Errorf("write cluster known_hosts: %w", err)
	}
	inv, err := renderInventory(inventoryParams{
		Lab: st.Name, KeyFile: lab.KeyFile, KnownHosts: lab.KnownHosts,
		ArtifactsDir: m.cfg.artifactsDir(), VIP: st.VIP, Machines: st.Machines,
	})
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(lab.Inventory, inv, 0o644); err != nil {
		return nil, fmt.Errorf("write inventory: %w", err)
	}
	return lab, nil
}

// waitReachable waits until every machine's sshd accepts the lab key with
// strict host-key checking. A machine whose nspawn exits fails at once.
func (m *Manager) waitReachable(ctx context.Context, st *state, dir string, started map[string]<-chan error) error {
	cfg, err := clientConfig(filepath.Join(dir, "id_ed25519"), filepath.Join(dir, "known_hosts"))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, m.cfg.BootTimeout)
	defer cancel()
	var mu sync.Mutex
	var errs *multierror.Error
	var wg sync.WaitGroup
	for _, ms := range st.Machines {
		wg.Add(1)
		go func(ms machineState) {
			defer wg.Done()
			start := time.Now()
			err := waitSSH(ctx, ms, cfg, started[ms.Name])
			if err != nil {
				logPath := filepath.Join(machineDir(dir, ms.Name), "console.log")
				err = fmt.Errorf("machine %s (%s): %w; last lines of %s:\n%s", ms.Name, ms.Address, err, logPath, tailFile(logPath, 25))
				mu.Lock()
				errs = multierror.Append(errs, err)
				mu.Unlock()
				return
			}
			m.cfg.Logger.Debug("sshd reachable", "host", ms.Name, "after", time.Since(start).Round(time.Millisecond))
		}(ms)
	}
	wg.Wait()
	return errs.ErrorOrNil()
}

func waitSSH(ctx context.Context, ms machineState, cfg *ssh.ClientConfig, exited <-chan error) error {
	var last error
	for {
		if err := sshPing(ctx, ms.Address, cfg, 3*time.Second); err == nil {
			return nil
		} else {
			last = err
		}
		select {
		case err := <-exited:
			return fmt.Errorf("systemd-nspawn exited before sshd answered: %v", err)
		case <-ctx.Done():
			return fmt.Errorf("sshd did not answer in time: %w (last error: %v)", ctx.Err(), last)
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// sshPing opens an SSH session, authenticated and host-key checked, and closes it.
func sshPing(ctx context.Context, addr string, cfg *ssh.ClientConfig, timeout time.Duration) error {
	c := *cfg
	c.Timeout = timeout
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(addr, "22"))
	if err != nil {
		return err
	}
	_ = conn.SetDeadline(time.Now().Add(timeout))
	sc, chans, reqs, err := ssh.NewClientConn(conn, net.JoinHostPort(addr, "22"), &c)
	if err != nil {
		conn.Close()
		return err
	}
	client := ssh.NewClient(sc, chans, reqs)
	defer client.Close()
	sess, err := client.NewSession()
	if err != nil {
		return err
	}
	return sess.Close()
}

func (m *Manager) machineStatuses(ctx context.Context, st *state, dir string) []MachineStatus {
	cfg, cfgErr := clientConfig(filepath.Join(dir, "id_ed25519"), filepath.Join(dir, "known_hosts"))
	out := make([]MachineStatus, len(st.Machines))
	var wg sync.WaitGroup
	for i, ms := range st.Machines {
		out[i] = MachineStatus{Name: ms.Name, Role: ms.Role, Address: ms.Address, PID: ms.PID, Running: nspawnAlive(ms.PID, ms.Netns)}
		if !out[i].Running || cfgErr != nil {
			continue
		}
		wg.Add(1)
		go func(i int, addr string) {
			defer wg.Done()
			out[i].Reachable = sshPing(ctx, addr, cfg, 3*time.Second) == nil
		}(i, ms.Address)
	}
	wg.Wait()
	return out
}

// Status reports the lab's machines; nil, nil when the lab does not exist.
func (m *Manager) Status(ctx context.Context, name string) (*Lab, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	dir := m.cfg.labDir(name)
	st, err := loadState(dir)
	if err != nil || st == nil {
		return nil, err
	}
	return &Lab{
		Name: name, Dir: dir, Subnet: st.Subnet, Bridge: st.Bridge, VIP: st.VIP,
		Inventory:  filepath.Join(dir, "inventory.yaml"),
		KnownHosts: filepath.Join(dir, "known_hosts"),
		KeyFile:    filepath.Join(dir, "id_ed25519"),
		Machines:   m.machineStatuses(ctx, st, dir),
	}, nil
}

// SSHArgs returns the ssh command line that reaches machine with the lab key
// and strict checking against the lab's known_hosts.
func (m *Manager) SSHArgs(name, machine string, command []string) ([]string, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	dir := m.cfg.labDir(name)
	st, err := loadState(dir)
	if err != nil {
		return nil, err
	}
	if st == nil {
		return nil, fmt.Errorf("lab %s does not exist (no %s)", name, statePath(dir))
	}
	ms := st.machine(machine)
	if ms == nil {
		ms = st.machine(name + "-" + machine) // "master1" for "demo-master1"
	}
	if ms == nil {
		var names []string
		for _, x := range st.Machines {
			names = append(names, x.Name)
		}
		return nil, fmt.Errorf("lab %s has no machine %q (machines: %s)", name, machine, strings.Join(names, ", "))
	}
	args := []string{"ssh",
		"-i", filepath.Join(dir, "id_ed25519"),
		"-o", "IdentitiesOnly=yes",
		"-o", "UserKnownHostsFile=" + filepath.Join(dir, "known_hosts"),
		"-o", "StrictHostKeyChecking=yes",
		"-o", "LogLevel=ERROR",
		"root@" + ms.Address,
	}
	return append(args, command...), nil
}

// Down removes everything the lab made. It returns false when there was
// nothing to remove.
func (m *Manager) Down(ctx context.Context, name string) (bool, error) {
	if err := ValidateName(name); err != nil {
		return false, err
	}
	if err := requireRoot(); err != nil {
		return false, err
	}
	dir := m.cfg.labDir(name)
	st, err := loadState(dir)
	if err != nil {
		return false, err
	}
	if st == nil && len(m.Leftovers(name)) == 0 {
		return false, nil
	}
	var errs *multierror.Error
	if st != nil {
		var mu sync.Mutex
		var wg sync.WaitGroup
		for i := range st.Machines {
			wg.Add(1)
			go func(ms *machineState) {
				defer wg.Done()
				if err := stopMachine(ctx, ms, m.cfg.StopTimeout); err != nil {
					mu.Lock()
					errs = multierror.Append(errs, err)
					mu.Unlock()
				}
			}(&st.Machines[i])
		}
		wg.Wait()
		if errs.ErrorOrNil() != nil {
			return true, fmt.Errorf("stop machines of lab %s (nothing else removed): %w", name, errs)
		}
		for _, ms := range st.Machines {
			if err := unmountRoot(filepath.Join(machineDir(dir, ms.Name), "root")); err != nil {
				errs = multierror.Append(errs, err)
			}
			for _, cg := range ms.Cgroups {
				if err := killCgroupTree(cg, 10*time.Second); err != nil {
					errs = multierror.Append(errs, err)
				}
				if err := removeCgroupTree(cg, 10*time.Second); err != nil {
					errs = multierror.Append(errs, err)
				}
				_ = os.Remove(filepath.Dir(cg)) // the lab's group; fails while other machines remain
			}
			if err := deleteNetns(ms.Netns); err != nil {
				errs = multierror.Append(errs, err)
			}
			if err := deleteLink(ms.HostVeth); err != nil {
				errs = multierror.Append(errs, err)
			}
		}
	}
	// Sweep by name whatever the state did not record (a crash between
	// creating something and saving the state).
	if err := m.sweep(name); err != nil {
		errs = multierror.Append(errs, err)
	}
	if errs.ErrorOrNil() == nil {
		if err := os.RemoveAll(dir); err != nil {
			errs = multierror.Append(errs, fmt.Errorf("remove lab dir: %w", err))
		}
	}
	return true, errs.ErrorOrNil()
}

// sweep removes the lab's named host objects: namespaces, links, cgroups (and
// any process still inside the lab's own cgroups, which can only be a
// machine's), nspawn's propagation dirs and mounts under the lab dir. No other
// process is ever signalled: nspawn itself only by its recorded PID.
func (m *Manager) sweep(name string) error {
	var errs *multierror.Error
	dir := m.cfg.labDir(name)
	var mps []string
	for mp := range mountPoints() {
		if strings.HasPrefix(mp, dir+"/") {
			mps = append(mps, mp)
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(mps)))
	for _, mp := range mps {
		if err := unmountRoot(mp); err != nil {
			errs = multierror.Append(errs, err)
		}
	}
	for _, ns := range labNetns(name) {
		if err := deleteNetns(ns); err != nil {
			errs = multierror.Append(errs, err)
		}
	}
	for _, l := range labLinks(name) {
		if err := deleteLink(l); err != nil {
			errs = multierror.Append(errs, err)
		}
	}
	for _, cg := range labCgroups(name) {
		if err := killCgroupTree(cg, 10*time.Second); err != nil {
			errs = multierror.Append(errs, err)
		}
		if err := removeCgroupTree(cg, 10*time.Second); err != nil {
			errs = multierror.Append(errs, err)
		}
	}
	props, _ := filepath.Glob(propagateDir(name + "-*"))
	for _, p := range props {
		if err := os.RemoveAll(p); err != nil {
			errs = multierror.Append(errs, err)
		}
	}
	return errs.ErrorOrNil()
}

func labNetns(name string) []string {
	var out []string
	entries, _ := os.ReadDir(netnsDir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "kw-"+name+"-") {
			out = append(out, e.Name())
		}
	}
	return out
}

func labLinks(name string) []string {
	var out []string
	links, _ := netlink.LinkList()
	for _, l := range links {
		n := l.Attrs().Name
		if n == bridgeName(name) || strings.HasPrefix(n, "kw-"+name+"-") {
			out = append(out, n)
		}
	}
	return out
}

// labCgroups finds kubewright-lab-NAME directories in every cgroup hierarchy.
func labCgroups(name string) []string {
	mi, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	mounts := parseCgroupMounts(mi)
	mi.Close()
	var out []string
	want := cgroupGroup(name)
	for _, mnt := range mounts {
		base := strings.Count(mnt.Mountpoint, "/")
		_ = filepath.WalkDir(mnt.Mountpoint, func(p string, e os.DirEntry, err error) error {
			if err != nil || !e.IsDir() {
				return nil
			}
			if e.Name() == want {
				out = append(out, p)
				return filepath.SkipDir
			}
			if strings.Count(p, "/")-base > 6 {
				return filepath.SkipDir
			}
			return nil
		})
	}
	return out
}

// Leftovers lists everything of lab name still present on the host:
// processes, namespaces, links, cgroups, mounts and directories. An empty
// list after Down is the proof that Down cleaned up.
func (m *Manager) Leftovers(name string) []string {
	var out []string
	procs, _ := os.ReadDir("/proc")
	needle := "--network-namespace-path=" + filepath.Join(netnsDir, "kw-"+name+"-")
	for _, p := range procs {
		if p.Name()[0] < '0' || p.Name()[0] > '9' {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", p.Name(), "cmdline"))
		if err == nil && strings.Contains(string(b), needle) {
			out = append(out, "process "+p.Name()+": "+strings.ReplaceAll(strings.TrimRight(string(b), "\x00"), "\x00", " "))
		}
	}
	for _, ns := range labNetns(name) {
		out = append(out, "netns "+ns)
	}
	for _, l := range labLinks(name) {
		out = append(out, "link "+l)
	}
	for _, cg := range labCgroups(name) {
		out = append(out, "cgroup "+cg)
	}
	dir := m.cfg.labDir(name)
	for mp := range mountPoints() {
		if strings.HasPrefix(mp, dir+"/") || strings.HasPrefix(mp, filepath.Join(netnsDir, "kw-"+name+"-")) {
			out = append(out, "mount "+mp)
		}
	}
	if _, err := os.Stat(dir); err == nil {
		out = append(out, "dir "+dir)
	}
	props, _ := filepath.Glob(propagateDir(name + "-*"))
	for _, p := range props {
		out = append(out, "dir "+p)
	}
	sort.Strings(out)
	return out
}

// propagateDir is where nspawn keeps a machine's mount-propagation directory;
// an nspawn that is killed leaves it behind.
func propagateDir(machine string) string {
	return filepath.Join("/run/systemd/nspawn/propagate", machine)
}
