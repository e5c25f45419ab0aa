//go:build e2e

// End-to-end tests of `kubewright lab` on this host: real namespaces, bridge,
// cgroups and systemd-nspawn machines. They need root and a cgroup v1 host;
// the kubelet test needs the artifacts `make artifacts` builds.
package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/kubewright/kubewright/installer/lab"
	"github.com/kubewright/kubewright/installer/remote"
)

const labTestTimeout = 12 * time.Minute

// runSuffix makes this test process's lab names its own. Lab names become
// host-wide interface, namespace and machine names, so two runs on one host
// (a CI run next to a developer's, or one started while a killed run's labs
// are still being torn down) would otherwise find each other's labs as
// "leftovers" and fail at once.
var runSuffix = func() string {
	const digits = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("reading random bytes for lab names: %v", err))
	}
	for i := range b {
		b[i] = digits[int(b[i])%len(digits)]
	}
	return string(b)
}()

// labName is base (at most 5 characters) plus this run's suffix: a valid lab
// name of at most 9 characters.
func labName(t *testing.T, base string) string {
	t.Helper()
	name := base + runSuffix
	if err := lab.ValidateName(name); err != nil {
		t.Fatalf("test lab base name %q: %v", base, err)
	}
	return name
}

// newLab brings a lab up in a private state dir and always takes it down,
// failing the test if anything of it is left on the host. The lab's name is
// base plus this run's suffix (see labName); l.Name has it.
func newLab(t *testing.T, ctx context.Context, base string, masters, workers int) (*lab.Manager, *lab.Lab) {
	t.Helper()
	name := labName(t, base)
	if os.Geteuid() != 0 {
		t.Fatal("lab e2e tests need root (network namespaces, cgroups, systemd-nspawn)")
	}
	var out bytes.Buffer
	// The lab's state dir is kubewright's state dir too, which kubewright
	// refuses when group or others can read it (t.TempDir is 0755).
	stateDir := t.TempDir()
	if err := os.Chmod(stateDir, 0o700); err != nil {
		t.Fatal(err)
	}
	m := lab.New(lab.Config{StateDir: stateDir, Out: &out, BootTimeout: 3 * time.Minute, InstallHostTools: true})
	if left := m.Leftovers(name); len(left) > 0 {
		t.Fatalf("lab %s has leftovers from an earlier run, remove them first:\n%s", name, strings.Join(left, "\n"))
	}
	t.Cleanup(func() {
		if t.Failed() {
			dumpLab(t, m, name)
		}
		start := time.Now()
		removed, err := m.Down(context.Background(), name)
		if err != nil {
			t.Errorf("lab down: %v", err)
		}
		if !removed {
			t.Errorf("lab down found nothing to remove")
		}
		t.Logf("lab down %s: %s", name, time.Since(start).Round(time.Millisecond))
		if left := m.Leftovers(name); len(left) > 0 {
			t.Errorf("lab down left %d things behind:\n%s", len(left), strings.Join(left, "\n"))
		}
		if removed, err := m.Down(context.Background(), name); err != nil || removed {
			t.Errorf("second lab down: removed=%v err=%v, want a no-op", removed, err)
		}
	})
	start := time.Now()
	l, err := m.Up(ctx, lab.UpOptions{Name: name, Masters: masters, Workers: workers})
	t.Logf("lab up %s (%d machines): %s\n%s", name, masters+workers, time.Since(start).Round(time.Millisecond), out.String())
	if err != nil {
		t.Fatalf("lab up: %v", err)
	}
	return m, l
}

func dumpLab(t *testing.T, m *lab.Manager, name string) {
	t.Helper()
	if st, err := m.Status(context.Background(), name); err == nil && st != nil {
		for _, ms := range st.Machines {
			t.Logf("machine %s %s running=%v reachable=%v", ms.Name, ms.Address, ms.Running, ms.Reachable)
		}
	}
	logs, _ := filepath.Glob(filepath.Join(m.Dir(name), "machines", "*", "console.log"))
	for _, p := range logs {
		b, _ := os.ReadFile(p)
		lines := strings.Split(string(b), "\n")
		if len(lines) > 40 {
			lines = lines[len(lines)-40:]
		}
		t.Logf("--- %s (last 40 lines)\n%s", p, strings.Join(lines, "\n"))
	}
}

// kubewrightLab readies a lab for kubewright: the cluster's state directory
// (kubewright's state dir is the lab's) holding the lab's known_hosts, so
// every run checks host keys strictly from the first, and an SSH connection
// to every machine, closed when the test ends. When the test fails, each
// machine's failed units and the last journal lines of units are logged.
func kubewrightLab(t *testing.T, ctx context.Context, m *lab.Manager, l *lab.Lab, units ...string) (stateDir, clusterDir string, hosts map[string]*remote.SSHHost) {
	t.Helper()
	stateDir = filepath.Dir(filepath.Dir(m.Dir(l.Name)))
	clusterDir = filepath.Join(stateDir, "clusters", l.Name)
	if err := os.MkdirAll(clusterDir, 0o700); err != nil {
		t.Fatal(err)
	}
	kh, err := os.ReadFile(l.KnownHosts)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(clusterDir, "known_hosts"), kh, 0o600); err != nil {
		t.Fatal(err)
	}
	hosts = map[string]*remote.SSHHost{}
	// Cleanups run last-in first-out: the dump runs before the close, and
	// a test's own dumps, registered later, before both.
	t.Cleanup(func() {
		for _, h := range hosts {
			h.Close()
		}
	})
	for _, ms := range l.Machines {
		h, err := dial(ctx, l, ms, l.KnownHosts)
		if err != nil {
			t.Fatalf("ssh %s: %v", ms.Name, err)
		}
		hosts[ms.Name] = h
	}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		dctx, dcancel := context.WithTimeout(context.Background(), time.Minute)
		defer dcancel()
		for name, h := range hosts {
			out, _ := run(dctx, h, "systemctl --no-pager --failed; for u in "+strings.Join(units, " ")+"; do echo \"== $u\"; journalctl -u $u --no-pager -n 30; done; true")
			t.Logf("==== %s\n%s", name, out)
		}
	})
	return stateDir, clusterDir, hosts
}

// dial connects as install will: kubewright's remote package with the lab
// key, root, and strict host-key checking against knownHostsFile.
func dial(ctx context.Context, l *lab.Lab, ms lab.MachineStatus, knownHostsFile string) (*remote.SSHHost, error) {
	return remote.Dial(ctx, remote.Config{
		Name: ms.Name, Address: ms.Address, User: "root",
		KeyFile: l.KeyFile, KnownHostsFile: knownHostsFile,
		ConnectTimeout: 10 * time.Second, ReconnectAttempts: 1,
	})
}

// run returns stdout, and stdout+stderr in the error of a failed command.
func run(ctx context.Context, h *remote.SSHHost, cmd string) (string, error) {
	out, err := h.Exec(ctx, cmd, remote.WithTimeout(time.Minute))
	if err != nil {
		return out, fmt.Errorf("%s: %w", cmd, err)
	}
	return out, nil
}

func TestLabFiveMachines(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), labTestTimeout)
	defer cancel()
	m, l := newLab(t, ctx, "five", 3, 2)
	if len(l.Machines) != 5 {
		t.Fatalf("got %d machines, want 5", len(l.Machines))
	}
	inv, err := os.ReadFile(l.Inventory)
	if err != nil {
		t.Fatalf("inventory: %v", err)
	}
	for _, want := range []string{"kind: Cluster", "vip: " + l.VIP, l.Name + "-master3", l.Name + "-worker2", "keyFile: " + l.KeyFile} {
		if !strings.Contains(string(inv), want) {
			t.Errorf("inventory lacks %q:\n%s", want, inv)
		}
	}

	for _, ms := range l.Machines {
		t.Run("ssh/"+ms.Name, func(t *testing.T) {
			c, err := dial(ctx, l, ms, l.KnownHosts)
			if err != nil {
				t.Fatalf("ssh with strict host-key checking: %v", err)
			}
			defer c.Close()
			out, err := run(ctx, c, "systemctl is-system-running --wait; hostname; ip -4 -o addr show eth0; cat /etc/machine-id")
			if err != nil {
				sys, _ := run(ctx, c, "systemctl --failed --no-legend")
				t.Fatalf("is-system-running: %v\n%s\nfailed units:\n%s", err, out, sys)
			}
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if len(lines) != 4 || lines[0] != "running" || lines[1] != ms.Name || !strings.Contains(lines[2], ms.Address+"/24") {
				t.Fatalf("unexpected machine state:\n%s", out)
			}
		})
	}
	t.Run("machine-ids-differ", func(t *testing.T) {
		seen := map[string]string{}
		for _, ms := range l.Machines {
			b, err := os.ReadFile(filepath.Join(m.Dir(l.Name), "machines", ms.Name, "root", "etc", "machine-id"))
			if err != nil {
				t.Fatal(err)
			}
			id := strings.TrimSpace(string(b))
			if other, ok := seen[id]; ok || len(id) != 32 {
				t.Fatalf("machine-id %q of %s invalid or shared with %s", id, ms.Name, other)
			}
			seen[id] = ms.Name
		}
	})
	t.Run("wrong-host-key-refused", func(t *testing.T) {
		// Swap two machines' keys in a copy of known_hosts: strict checking
		// must refuse, or the check above proved nothing.
		b, err := os.ReadFile(l.KnownHosts)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		f0, f1 := strings.Fields(lines[0]), strings.Fields(lines[1])
		lines[0] = strings.Join(append([]string{f0[0]}, f1[1:]...), " ")
		bad := filepath.Join(t.TempDir(), "known_hosts")
		if err := os.WriteFile(bad, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := dial(ctx, l, l.Machines[0], bad)
		if err == nil {
			c.Close()
			t.Fatal("ssh accepted a host key that known_hosts does not list for the machine")
		}
		if !strings.Contains(strings.ToLower(err.Error()), "host key") {
			t.Fatalf("want a host key error, got %v", err)
		}
		t.Logf("refused as expected: %v", err)
	})
	t.Run("vrrp-vip-free", func(t *testing.T) {
		for _, ms := range l.Machines {
			if ms.Address == l.VIP {
				t.Fatalf("VIP %s collides with %s", l.VIP, ms.Name)
			}
		}
	})
	// The lab was made through the Go API in a private state dir
	// (<stateDir>/labs/<name>); the CLI finds it with the same --state-dir.
	stateDir := filepath.Dir(filepath.Dir(m.Dir(l.Name)))
	t.Run("kubewright-check-passes", func(t *testing.T) {
		// The preflight of every later install, on the lab's own inventory
		// and the cluster known_hosts lab up wrote: strict host keys, no
		// --accept-new-host-keys.
		r := kw(t, ctx, stateDir, "check", "-i", l.Inventory)
		if r.code != 0 || !strings.Contains(r.out, "0 fail") || !strings.Contains(r.out, "5 hosts") {
			t.Fatalf("kubewright check: exit %d\n%s", r.code, r.out)
		}
	})
	t.Run("cli-lab-status", func(t *testing.T) {
		r := kw(t, ctx, stateDir, "lab", "status", "--name", l.Name)
		if r.code != 0 {
			t.Fatalf("kubewright lab status: exit %d\n%s", r.code, r.out)
		}
		lines := strings.Split(r.out, "\n")
		for _, ms := range l.Machines {
			// One row per machine: name, role, address, state, ssh.
			found := false
			for _, line := range lines {
				f := strings.Fields(line)
				if len(f) >= 5 && f[0] == ms.Name {
					found = true
					if f[1] != ms.Role || f[2] != ms.Address || f[3] != "running" || f[len(f)-1] != "ok" {
						t.Errorf("row for %s = %q, want role %s, address %s, running, ssh ok", ms.Name, line, ms.Role, ms.Address)
					}
				}
			}
			if !found {
				t.Errorf("lab status has no row for %s:\n%s", ms.Name, r.out)
			}
		}
		for _, want := range []string{"inventory: " + l.Inventory + "\n", "VIP " + l.VIP, "subnet " + l.Subnet, "bridge " + l.Bridge} {
			if !strings.Contains(r.out, want) {
				t.Errorf("lab status lacks %q:\n%s", want, r.out)
			}
		}
		r = kw(t, ctx, stateDir, "lab", "status", "--name", "nosuchlab")
		if r.code != 0 || !strings.Contains(r.out, "lab nosuchlab does not exist") {
			t.Errorf("status of a missing lab: exit %d\n%s", r.code, r.out)
		}
	})
	t.Run("cli-lab-ssh", func(t *testing.T) {
		// lab ssh execs the ssh client with the lab key and strict checking
		// against the lab's known_hosts: its exit code is the command's.
		for _, ms := range l.Machines {
			if r := kw(t, ctx, stateDir, "lab", "ssh", "--name", l.Name, ms.Name, "--", "true"); r.code != 0 {
				t.Errorf("lab ssh %s -- true: exit %d\n%s", ms.Name, r.code, r.out)
			}
			// The short name (master1 for LAB-master1) reaches the same machine.
			short := strings.TrimPrefix(ms.Name, l.Name+"-")
			r := kw(t, ctx, stateDir, "lab", "ssh", "--name", l.Name, short, "hostname")
			if r.code != 0 || strings.TrimSpace(r.out) != ms.Name {
				t.Errorf("lab ssh %s hostname: exit %d, printed %q, want %q", short, r.code, r.out, ms.Name)
			}
		}
		if r := kw(t, ctx, stateDir, "lab", "ssh", "--name", l.Name, l.Machines[0].Name, "--", "exit 7"); r.code != 7 {
			t.Errorf("lab ssh -- exit 7: exit %d, want the remote command's 7\n%s", r.code, r.out)
		}
		r := kw(t, ctx, stateDir, "lab", "ssh", "--name", l.Name, "nosuch", "true")
		if r.code != 2 || !strings.Contains(r.out, l.Machines[0].Name) {
			t.Errorf("lab ssh to an unknown machine: exit %d, want 2 listing the machines\n%s", r.code, r.out)
		}
	})
	t.Run("kubelet-runs-pod", func(t *testing.T) { kubeletPod(t, ctx, m, l) })
}

func TestLabUpIsIdempotent(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), labTestTimeout)
	defer cancel()
	m, first := newLab(t, ctx, "idem", 1, 1)
	if first.AlreadyRunning {
		t.Fatal("first up reported an already running lab")
	}
	pids := map[string]int{}
	for _, ms := range first.Machines {
		pids[ms.Name] = ms.PID
	}
	inv1, _ := os.ReadFile(first.Inventory)
	kh1, _ := os.ReadFile(first.KnownHosts)

	second, err := m.Up(ctx, lab.UpOptions{Name: first.Name, Masters: 1, Workers: 1})
	if err != nil {
		t.Fatalf("second up: %v", err)
	}
	if !second.AlreadyRunning {
		t.Error("second up did not report the lab as already running")
	}
	for _, ms := range second.Machines {
		if ms.PID != pids[ms.Name] || !ms.Reachable {
			t.Errorf("%s: pid %d -> %d reachable=%v; a second up must not restart machines", ms.Name, pids[ms.Name], ms.PID, ms.Reachable)
		}
	}
	inv2, _ := os.ReadFile(second.Inventory)
	kh2, _ := os.ReadFile(second.KnownHosts)
	if !bytes.Equal(inv1, inv2) || !bytes.Equal(kh1, kh2) {
		t.Error("second up changed the inventory or known_hosts")
	}

	if _, err := m.Up(ctx, lab.UpOptions{Name: first.Name, Masters: 2, Workers: 1}); err == nil || !strings.Contains(err.Error(), "lab down") {
		t.Errorf("reshaping an existing lab: got %v, want an error telling to run lab down", err)
	}

	// A machine that died is restarted by the next up; the other is left alone,
	// and the restarted one keeps its host key (known_hosts still valid).
	victim := first.Machines[1]
	p, err := os.FindProcess(victim.PID)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Signal(os.Kill); err != nil {
		t.Fatalf("kill %s: %v", victim.Name, err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := m.Status(ctx, first.Name)
		if err != nil {
			t.Fatal(err)
		}
		if !st.Machines[1].Running {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still running after SIGKILL", victim.Name)
		}
		time.Sleep(200 * time.Millisecond)
	}
	third, err := m.Up(ctx, lab.UpOptions{Name: first.Name, Masters: 1, Workers: 1})
	if err != nil {
		t.Fatalf("up after a machine died: %v", err)
	}
	if third.AlreadyRunning || third.Machines[0].PID != pids[third.Machines[0].Name] || third.Machines[1].PID == victim.PID {
		t.Errorf("up after a death should restart only %s: %+v", victim.Name, third.Machines)
	}
	for _, ms := range third.Machines {
		if !ms.Reachable {
			t.Errorf("%s not reachable after restart", ms.Name)
		}
	}
	kh3, _ := os.ReadFile(third.KnownHosts)
	if !bytes.Equal(kh1, kh3) {
		t.Error("restarting a machine changed known_hosts")
	}
}

// kubeletPod proves a machine can host a node: containerd with the imported
// pause and test images, and a kubelet (standalone, static pod) running a pod.
func kubeletPod(t *testing.T, ctx context.Context, m *lab.Manager, l *lab.Lab) {
	arts := os.Getenv("KUBEWRIGHT_ARTIFACTS")
	if arts == "" {
		arts = filepath.Join(lab.DefaultCacheDir(), "artifacts")
	}
	kubelet := newest(t, filepath.Join(arts, "kubernetes-v*", "kubelet"))
	crictl := newest(t, filepath.Join(arts, "crictl-v*", "crictl"))
	pause := newest(t, filepath.Join(arts, "images-*", "pause.tar"))
	testapp := newest(t, filepath.Join(arts, "images-*", "testapp.tar"))

	ms := l.Machines[0]
	root := filepath.Join(m.Dir(l.Name), "machines", ms.Name, "root")
	copyFile(t, kubelet, filepath.Join(root, "usr/local/bin/kubelet"), 0o755)
	copyFile(t, crictl, filepath.Join(root, "usr/local/bin/crictl"), 0o755)
	copyFile(t, pause, filepath.Join(root, "root/pause.tar"), 0o644)
	copyFile(t, testapp, filepath.Join(root, "root/testapp.tar"), 0o644)
	files := map[string]string{
		"etc/containerd/config.toml": `version = 2
[plugins."io.containerd.grpc.v1.cri"]
  restrict_oom_score_adj = true
  sandbox_image = "registry.k8s.io/pause:3.10"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
    SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "/etc/cni/net.d"
`,
		"etc/kubernetes/kubelet-e2e.yaml": `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
cgroupRoot: /
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: unix:///run/containerd/containerd.sock
staticPodPath: /etc/kubernetes/manifests
authentication:
  anonymous: {enabled: true}
  webhook: {enabled: false}
authorization: {mode: AlwaysAllow}
`,
		"etc/kubernetes/manifests/testapp.yaml": `apiVersion: v1
kind: Pod
metadata: {name: testapp, namespace: default}
spec:
  hostNetwork: true
  containers:
  - name: testapp
    image: kubewright.io/testapp:v1
    imagePullPolicy: Never
`,
		"etc/crictl.yaml": "runtime-endpoint: unix:///run/containerd/containerd.sock\nimage-endpoint: unix:///run/containerd/containerd.sock\n",
	}
	for p, c := range files {
		dst := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c, err := dial(ctx, l, ms, l.KnownHosts)
	if err != nil {
		t.Fatalf("ssh: %v", err)
	}
	defer c.Close()
	setup := "set -e; systemctl restart containerd; " +
		"ctr -n k8s.io images import /root/pause.tar; ctr -n k8s.io images import /root/testapp.tar; " +
		"systemd-run --unit=kubelet-e2e /usr/local/bin/kubelet --config=/etc/kubernetes/kubelet-e2e.yaml " +
		"--node-ip=" + ms.Address + " --hostname-override=" + ms.Name
	if out, err := run(ctx, c, setup); err != nil {
		t.Fatalf("start containerd + kubelet: %v\n%s", err, out)
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		out, err := run(ctx, c, "curl -fsS http://127.0.0.1:8080/healthz && crictl pods --name testapp --state ready -q | grep -q . && crictl ps --name testapp --state running -q | grep -q . && echo POD-RUNNING")
		if err == nil && strings.Contains(out, "POD-RUNNING") {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			dbg, _ := run(ctx, c, "crictl pods; crictl ps -a; journalctl -u kubelet-e2e --no-pager | tail -40")
			t.Fatalf("static pod did not run: %v\n%s\n%s", err, out, dbg)
		}
		time.Sleep(2 * time.Second)
	}
	out, _ := run(ctx, c, "cat /proc/$(pgrep -f /testapp | head -1)/cgroup | grep memory")
	t.Logf("testapp runs in a pod cgroup: %s", strings.TrimSpace(out))
	if !strings.Contains(out, "kubepods") {
		t.Errorf("testapp is not in a kubelet pod cgroup: %q", out)
	}
}

func newest(t *testing.T, pattern string) string {
	t.Helper()
	m, _ := filepath.Glob(pattern)
	if len(m) == 0 {
		t.Fatalf("no artifact matches %s: build them first with `make artifacts`", pattern)
	}
	sort.Strings(m)
	return m[len(m)-1]
}

func copyFile(t *testing.T, src, dst string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, mode); err != nil {
		t.Fatal(fmt.Errorf("copy %s: %w", src, err))
	}
}
