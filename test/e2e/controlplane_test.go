//go:build e2e

// End-to-end test of the HA control plane (issue: install PKI and control
// plane behind a keepalived VIP) on three lab masters: dry-run, install,
// the API through the VIP, etcd health, encryption at rest, certificate
// SANs, an idempotent re-run, VIP failover on a dead apiserver and on a
// powered-off master with a client writing throughout, then the faults of
// faults_test.go: a partitioned master and a master powered off mid-install.
package e2e

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubewright/kubewright/installer/kube"
	"github.com/kubewright/kubewright/installer/lab"
	"github.com/kubewright/kubewright/installer/remote"
)

const controlPlaneTimeout = 20 * time.Minute

// kwBin is the kubewright binary under test (make e2e builds it).
func kwBin(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("KUBEWRIGHT_BIN"); p != "" {
		return p
	}
	p, err := filepath.Abs("../../bin/kubewright")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("kubewright binary not found at %s (run make build or set KUBEWRIGHT_BIN): %v", p, err)
	}
	return p
}

// artifactsDir is what `make artifacts` produced, at the stable path lab
// inventories point at.
func artifactsDir(t *testing.T) string {
	t.Helper()
	d := os.Getenv("KUBEWRIGHT_ARTIFACTS_DIR")
	if d == "" {
		d = filepath.Join(lab.DefaultCacheDir(), "artifacts", "latest")
	}
	if _, err := os.Stat(filepath.Join(d, "manifest.yaml")); err != nil {
		t.Fatalf("no artifacts at %s (run make artifacts): %v", d, err)
	}
	return d
}

// kwResult is one kubewright invocation.
type kwResult struct {
	out      string
	code     int
	duration time.Duration
}

func kw(t *testing.T, ctx context.Context, stateDir string, args ...string) kwResult {
	t.Helper()
	cmd := exec.CommandContext(ctx, kwBin(t), append([]string{"--state-dir", stateDir}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	r := kwResult{out: out.String(), duration: time.Since(start)}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run kubewright %v: %v", args, err)
	}
	return r
}

// cpCluster is a lab with the control plane installed, shared by the
// subtests that can share it.
type cpCluster struct {
	m        *lab.Manager
	lab      *lab.Lab
	stateDir string
	inv      string
	hosts    map[string]remote.Host // machine name -> connection
	addrs    map[string]string      // machine name -> address
	off      bool                   // a machine was powered off and not yet back on
}

func (c *cpCluster) exec(t *testing.T, ctx context.Context, machine, cmd string) string {
	t.Helper()
	out, err := c.hosts[machine].Exec(ctx, cmd)
	if err != nil {
		t.Fatalf("%s: %s: %v", machine, cmd, err)
	}
	return out
}

// connect dials every machine with kubewright's own remote package and the
// cluster's known_hosts: strict host-key checking, no acceptance of new keys.
func (c *cpCluster) connect(t *testing.T, ctx context.Context) {
	t.Helper()
	for _, ms := range c.lab.Machines {
		if h, ok := c.hosts[ms.Name]; ok {
			h.Close()
		}
		h, err := remote.Dial(ctx, remote.Config{
			Name: ms.Name, Address: ms.Address, User: "root", KeyFile: c.lab.KeyFile,
			KnownHostsFile: filepath.Join(c.stateDir, "clusters", c.lab.Name, "known_hosts"),
		})
		if err != nil {
			t.Fatalf("ssh %s with strict host-key checking: %v", ms.Name, err)
		}
		c.hosts[ms.Name] = h
		c.addrs[ms.Name] = ms.Address
	}
}

func (c *cpCluster) close() {
	for _, h := range c.hosts {
		h.Close()
	}
}

func (c *cpCluster) adminConfig(t *testing.T) string {
	return filepath.Join(c.stateDir, "clusters", c.lab.Name, "pki", "admin.conf")
}

func (c *cpCluster) kubectl(t *testing.T, ctx context.Context, args ...string) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(ctx, filepath.Join(artifactsDir(t), "bin", "kubectl"), append([]string{"--kubeconfig", c.adminConfig(t), "--request-timeout=10s"}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// apiRead is one read made by pollAPI.
type apiRead struct {
	start time.Time
	err   error
}

// pollAPI reads the default namespace through the VIP with the admin
// credentials every interval until the returned function is called, which
// reports how many reads were made and which failed. A real read, not
// /readyz: an apiserver in its shutdown delay answers /readyz with an error
// on purpose (so load balancers drain it) while still serving requests.
func (c *cpCluster) pollAPI(t *testing.T, ctx context.Context, interval time.Duration) func() (int, []string) {
	t.Helper()
	stop := c.recordAPI(t, ctx, interval)
	return func() (int, []string) {
		reads := stop()
		var failures []string
		for _, r := range reads {
			if r.err != nil {
				failures = append(failures, fmt.Sprintf("%s: %v", r.start.Format("15:04:05.000"), r.err))
			}
		}
		return len(reads), failures
	}
}

// recordAPI is pollAPI's loop, returning every read with its start time.
func (c *cpCluster) recordAPI(t *testing.T, ctx context.Context, interval time.Duration) func() []apiRead {
	t.Helper()
	cfg, err := os.ReadFile(c.adminConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	kc, err := kube.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	kc.Config.Timeout = 5 * time.Second
	client, err := kube.NewClientFromConfig(kc.Config)
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		reads []apiRead
	)
	pollCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for pollCtx.Err() == nil {
			start := time.Now()
			_, err := client.Clientset.CoreV1().Namespaces().Get(pollCtx, "default", metav1.GetOptions{})
			if pollCtx.Err() != nil {
				return
			}
			mu.Lock()
			reads = append(reads, apiRead{start: start, err: err})
			mu.Unlock()
			select {
			case <-pollCtx.Done():
			case <-time.After(interval):
			}
		}
	}()
	return func() []apiRead {
		stop()
		<-done
		mu.Lock()
		defer mu.Unlock()
		return reads
	}
}

// vipHolders lists the machines that have the VIP on eth0 right now.
func (c *cpCluster) vipHolders(t *testing.T, ctx context.Context) []string {
	t.Helper()
	var out []string
	for name, h := range c.hosts {
		s, err := h.Exec(ctx, "ip -o -4 addr show dev eth0", remote.WithTimeout(5*time.Second))
		if err != nil {
			continue // a powered-off or unreachable machine
		}
		if strings.Contains(s, " "+c.lab.VIP+"/") {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

func (c *cpCluster) waitVIPHolder(t *testing.T, ctx context.Context, not string, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last []string
	for time.Now().Before(deadline) {
		last = c.vipHolders(t, ctx)
		if len(last) == 1 && last[0] != not {
			return last[0]
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("VIP %s not held by exactly one master other than %q after %s (holders: %v)", c.lab.VIP, not, timeout, last)
	return ""
}

func (c *cpCluster) etcdHealth(ctx context.Context, via string) (string, error) {
	return c.hosts[via].Exec(ctx, "etcdctl --endpoints=https://127.0.0.1:2379 --cacert=/etc/kubernetes/pki/etcd/ca.crt "+
		"--cert=/etc/kubernetes/pki/apiserver-etcd-client.crt --key=/etc/kubernetes/pki/apiserver-etcd-client.key "+
		"--command-timeout=5s endpoint health --cluster")
}

func (c *cpCluster) dump(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for name, h := range c.hosts {
		out, _ := h.Exec(ctx, "systemctl --no-pager --failed; for u in etcd kube-apiserver kube-controller-manager kube-scheduler haproxy keepalived; do echo \"== $u\"; journalctl -u $u --no-pager -n 25; done")
		t.Logf("==== %s\n%s", name, out)
	}
	runs, _ := filepath.Glob(filepath.Join(c.stateDir, "clusters", c.lab.Name, "runs", "*", "journal.json"))
	if len(runs) > 0 {
		b, _ := os.ReadFile(runs[len(runs)-1])
		t.Logf("==== last journal %s\n%s", runs[len(runs)-1], b)
	}
}

func TestControlPlane(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), controlPlaneTimeout)
	defer cancel()
	m, l := newLab(t, ctx, "cp", 3, 0)
	// The lab's state dir is kubewright's state dir for this test.
	stateDir := filepath.Dir(filepath.Dir(m.Dir(l.Name)))
	c := &cpCluster{m: m, lab: l, stateDir: stateDir, hosts: map[string]remote.Host{}, addrs: map[string]string{}}
	defer c.close()
	t.Cleanup(func() {
		if t.Failed() {
			c.dump(t)
		}
	})

	// The inventory and the cluster's known_hosts are exactly what `lab up`
	// wrote: the path an operator follows (lab up, then install -i).
	c.inv = l.Inventory
	inv, err := os.ReadFile(l.Inventory)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(inv), "path: "+artifactsDir(t)) {
		t.Fatalf("the lab inventory does not point at the built artifacts %s:\n%s", artifactsDir(t), inv)
	}
	c.connect(t, ctx)

	t.Run("dry-run on fresh machines lists changes and touches nothing", func(t *testing.T) {
		r := kw(t, ctx, c.stateDir, "install", "-i", c.inv, "--dry-run")
		if r.code != 0 {
			t.Fatalf("dry run exit %d:\n%s", r.code, r.out)
		}
		for _, want := range []string{"/etc/systemd/system/etcd.service", "/etc/kubernetes/pki/apiserver.crt", "/usr/local/bin/kube-apiserver", "/etc/keepalived/keepalived.conf"} {
			if !strings.Contains(r.out, want) {
				t.Errorf("dry-run output does not list %s", want)
			}
		}
		for name := range c.hosts {
			out := c.exec(t, ctx, name, "ls /etc/kubernetes /usr/local/bin/kube-apiserver /etc/systemd/system/etcd.service 2>&1; true")
			if strings.Count(out, "No such file") != 3 {
				t.Errorf("%s was changed by a dry run:\n%s", name, out)
			}
		}
	})

	untouched := func(t *testing.T) {
		t.Helper()
		for name := range c.hosts {
			out := c.exec(t, ctx, name, "ls /etc/kubernetes /usr/local/bin/kube-apiserver 2>&1; true")
			if strings.Count(out, "No such file") != 2 {
				t.Errorf("%s was changed although preflight refused:\n%s", name, out)
			}
		}
	}
	t.Run("bad input is refused in preflight before anything changes", func(t *testing.T) {
		inv, err := os.ReadFile(c.inv)
		if err != nil {
			t.Fatal(err)
		}
		badIface := filepath.Join(t.TempDir(), "bad-interface.yaml")
		if err := os.WriteFile(badIface, []byte(strings.Replace(string(inv), "interface: eth0", "interface: eth9", 1)), 0o600); err != nil {
			t.Fatal(err)
		}
		r := kw(t, ctx, c.stateDir, "install", "-i", badIface)
		if r.code != 1 || !strings.Contains(r.out, "interface eth9 not found") || !strings.Contains(r.out, l.Machines[0].Name) {
			t.Errorf("missing VIP interface: exit %d\n%s", r.code, r.out)
		}
		untouched(t)

		// Someone else answers at the VIP: the host itself, on the lab bridge.
		if out, err := exec.Command("ip", "addr", "add", l.VIP+"/32", "dev", l.Bridge).CombinedOutput(); err != nil {
			t.Fatalf("put the VIP on %s: %s %v", l.Bridge, out, err)
		}
		r = kw(t, ctx, c.stateDir, "install", "-i", c.inv)
		if out, err := exec.Command("ip", "addr", "del", l.VIP+"/32", "dev", l.Bridge).CombinedOutput(); err != nil {
			t.Fatalf("remove the VIP from %s: %s %v", l.Bridge, out, err)
		}
		if r.code != 1 || !strings.Contains(r.out, "the VIP must be an unused address") {
			t.Errorf("VIP in use: exit %d\n%s", r.code, r.out)
		}
		untouched(t)
		// The machines remember who answered at the VIP (a REACHABLE ARP
		// entry, which preflight rightly counts as in use): forget it.
		for name := range c.hosts {
			c.exec(t, ctx, name, "ip neigh flush to "+l.VIP)
		}

		// Two masters with the same hostname.
		m1, m2 := l.Machines[0].Name, l.Machines[1].Name
		c.exec(t, ctx, m2, "hostname "+m1)
		r = kw(t, ctx, c.stateDir, "install", "-i", c.inv)
		c.exec(t, ctx, m2, "hostname "+m2)
		if r.code != 1 || !strings.Contains(r.out, "hostname") || !strings.Contains(r.out, m2) {
			t.Errorf("duplicate hostname: exit %d\n%s", r.code, r.out)
		}
		untouched(t)
	})

	t.Run("install", func(t *testing.T) {
		r := kw(t, ctx, c.stateDir, "install", "-i", c.inv)
		t.Logf("install took %s", r.duration.Round(time.Millisecond))
		if r.code != 0 {
			t.Fatalf("install exit %d:\n%s", r.code, r.out)
		}
	})
	if t.Failed() {
		return
	}

	checkHardening(t, ctx, c)
	t.Run("API answers through the VIP", func(t *testing.T) {
		out, err := c.kubectl(t, ctx, "get", "--raw", "/readyz")
		if err != nil || strings.TrimSpace(out) != "ok" {
			t.Fatalf("kubectl get --raw /readyz through the VIP: %q %v", out, err)
		}
		if holders := c.vipHolders(t, ctx); len(holders) != 1 {
			t.Fatalf("VIP holders %v, want exactly one", holders)
		}
	})

	t.Run("etcd has three healthy members", func(t *testing.T) {
		out, err := c.etcdHealth(ctx, l.Machines[0].Name)
		if err != nil || strings.Count(out, "is healthy") != 3 {
			t.Fatalf("etcdctl endpoint health --cluster:\n%s %v", out, err)
		}
	})

	t.Run("Secrets are encrypted at rest", func(t *testing.T) {
		if out, err := c.kubectl(t, ctx, "create", "secret", "generic", "e2e-secret", "--from-literal=password=hunter2"); err != nil {
			t.Fatalf("create secret: %s %v", out, err)
		}
		raw := c.exec(t, ctx, l.Machines[1].Name, "etcdctl --endpoints=https://127.0.0.1:2379 --cacert=/etc/kubernetes/pki/etcd/ca.crt "+
			"--cert=/etc/kubernetes/pki/apiserver-etcd-client.crt --key=/etc/kubernetes/pki/apiserver-etcd-client.key get --print-value-only /registry/secrets/default/e2e-secret")
		if !strings.HasPrefix(raw, "k8s:enc:aescbc:v1:") || strings.Contains(raw, "hunter2") {
			t.Fatalf("secret in etcd is not encrypted: %q", raw[:min(len(raw), 80)])
		}
	})

	t.Run("certificates carry the expected SANs", func(t *testing.T) {
		for _, ms := range l.Machines {
			data := c.exec(t, ctx, ms.Name, "cat /etc/kubernetes/pki/apiserver.crt")
			block, _ := pem.Decode([]byte(data))
			if block == nil {
				t.Fatalf("%s: apiserver.crt is not PEM", ms.Name)
			}
			cert, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			var sans []string
			sans = append(sans, cert.DNSNames...)
			for _, ip := range cert.IPAddresses {
				sans = append(sans, ip.String())
			}
			want := []string{l.VIP, "10.96.0.1", "127.0.0.1", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"}
			for _, m := range l.Machines {
				want = append(want, m.Address, m.Name)
			}
			for _, w := range want {
				found := false
				for _, s := range sans {
					found = found || s == w
				}
				if !found {
					t.Errorf("%s: apiserver.crt lacks SAN %s (has %v)", ms.Name, w, sans)
				}
			}
			if days := time.Until(cert.NotAfter).Hours() / 24; days < 360 || days > 366 {
				t.Errorf("%s: apiserver.crt valid for %.0f days, want about a year", ms.Name, days)
			}
		}
	})

	t.Run("re-running install changes nothing", func(t *testing.T) {
		r := kw(t, ctx, c.stateDir, "install", "-i", c.inv, "-o", "json")
		if r.code != 0 {
			t.Fatalf("re-run exit %d:\n%s", r.code, r.out)
		}
		t.Logf("re-run took %s (target 15s)", r.duration.Round(time.Millisecond))
		if r.duration > 60*time.Second {
			t.Errorf("re-run took %s; it should only inspect hosts", r.duration)
		}
		for _, line := range strings.Split(r.out, "\n") {
			var ev struct {
				Type    string          `json:"type"`
				Host    string          `json:"host"`
				Step    string          `json:"step"`
				Changes json.RawMessage `json:"changes"`
			}
			if json.Unmarshal([]byte(line), &ev) != nil {
				continue
			}
			if ev.Type == "step_apply" {
				t.Errorf("re-run applied %s on %s: %s", ev.Step, ev.Host, ev.Changes)
			}
		}
	})

	t.Run("a stopped apiserver on the VIP holder costs no request and keeps the VIP", func(t *testing.T) {
		holder := c.waitVIPHolder(t, ctx, "", 10*time.Second)
		stopPoll := c.pollAPI(t, ctx, 100*time.Millisecond)
		c.exec(t, ctx, holder, "systemctl stop kube-apiserver")
		time.Sleep(5 * time.Second)
		polls, failures := stopPoll()
		c.exec(t, ctx, holder, "systemctl start kube-apiserver")
		t.Logf("%d reads through the VIP while %s's apiserver stopped, %d failed", polls, holder, len(failures))
		if len(failures) > 0 {
			t.Errorf("reads failed while an apiserver stopped (haproxy should drain it during its shutdown delay):\n%s", strings.Join(failures, "\n"))
		}
		if got := c.vipHolders(t, ctx); len(got) != 1 || got[0] != holder {
			t.Errorf("VIP holders %v after the apiserver stopped, want it still on %s (haproxy routes around it)", got, holder)
		}
		if err := kube.WaitReadyz(ctx, "https://"+c.addrs[holder]+":6443", time.Second); err != nil {
			t.Fatalf("apiserver on %s after restart: %v", holder, err)
		}
	})

	t.Run("a master whose haproxy dies gives the VIP up", func(t *testing.T) {
		holder := c.waitVIPHolder(t, ctx, "", 10*time.Second)
		c.exec(t, ctx, holder, "systemctl stop haproxy")
		defer c.exec(t, ctx, holder, "systemctl start haproxy")
		start := time.Now()
		next := c.waitVIPHolder(t, ctx, holder, 30*time.Second)
		t.Logf("VIP moved from %s to %s %s after its haproxy stopped", holder, next, time.Since(start).Round(100*time.Millisecond))
		out, err := c.kubectl(t, ctx, "get", "--raw", "/readyz")
		if err != nil || strings.TrimSpace(out) != "ok" {
			t.Fatalf("API through the VIP after the move: %q %v", out, err)
		}
	})

	t.Run("powering off the VIP holder keeps the API and every acknowledged write", func(t *testing.T) {
		w := startWriter(t, ctx, c.adminConfig(t), "failover", 200*time.Millisecond)
		time.Sleep(3 * time.Second)
		holder := c.waitVIPHolder(t, ctx, "", 10*time.Second)
		off := time.Now()
		c.powerOff(t, ctx, holder)
		next := c.waitVIPHolder(t, ctx, holder, 30*time.Second)
		t.Logf("VIP moved from powered-off %s to %s after %s", holder, next, time.Since(off).Round(100*time.Millisecond))
		time.Sleep(8 * time.Second)
		w.finish()

		gap := w.gapAcross(off)
		if gap == 0 {
			t.Fatalf("no write was acknowledged after %s was powered off", holder)
		}
		t.Logf("API write gap across the failover: %s (target 5s); %s; failed at off%v", gap.Round(10*time.Millisecond), w.summary(), w.failedSince(off))
		if gap > 30*time.Second {
			t.Errorf("writes stopped for %s", gap)
		}
		w.checkNoneLost(t, ctx)

		// Power the machine back on: etcd returns to three healthy members.
		c.powerOn(t, ctx)
		c.waitEtcdHealthy(t, ctx, holder)
	})
	checkPartition(t, ctx, c)
	checkPowerOffDuringInstall(t, ctx, c)
}
