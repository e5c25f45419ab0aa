//go:build e2e

// Cluster faults on the three-master control-plane lab: a master cut off
// the network (its link down, inside its namespace) and a master powered
// off in the middle of an install. Each counts the cluster's objects before
// and after: nothing may be lost.
package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kubewright/kubewright/installer/kube"
	"github.com/kubewright/kubewright/installer/lab"
)

// faultTimeout bounds each wait for the cluster to notice or get over a fault.
const faultTimeout = 2 * time.Minute

// The partition lasts partitionHold. Every apiserver's etcd client keeps its
// connection to the partitioned member until gRPC keepalive gives up on it
// (30 s without an answer, then a 10 s ping timeout, both fixed in
// kube-apiserver), and until then the share of requests it sends there time
// out: reads may fail, one at a time (maxPartitionGap), until
// partitionSettle, and none after.
const (
	partitionHold   = 65 * time.Second
	partitionSettle = 50 * time.Second
	maxPartitionGap = 12 * time.Second
)

// machineInit returns the PID of a lab machine's init: nspawn's only child,
// PID 1 of the machine's PID namespace, living in the machine's network
// namespace. Killing it with SIGKILL kills every process of the machine at
// once, the nearest thing to pulling the power cord.
func (c *cpCluster) machineInit(t *testing.T, ctx context.Context, name string) int {
	t.Helper()
	st, err := c.m.Status(ctx, c.lab.Name)
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	for _, ms := range st.Machines {
		if ms.Name == name {
			pid = ms.PID
		}
	}
	if pid == 0 {
		t.Fatalf("no PID for machine %s", name)
	}
	children, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil || len(strings.Fields(string(children))) != 1 {
		t.Fatalf("find the init of %s under nspawn %d: %q %v", name, pid, children, err)
	}
	var initPID int
	if _, err := fmt.Sscan(strings.Fields(string(children))[0], &initPID); err != nil {
		t.Fatalf("init of %s: %v", name, err)
	}
	return initPID
}

// powerOff kills a machine's init; powerOn (the lab's Up) powers it back
// on. If the test ends first, failed or not, a cleanup powers it on, so
// the tests after it find three masters.
func (c *cpCluster) powerOff(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	if err := syscall.Kill(c.machineInit(t, ctx, name), syscall.SIGKILL); err != nil {
		t.Fatalf("power off %s: %v", name, err)
	}
	c.off = true
	t.Cleanup(func() {
		if c.off {
			pctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			c.powerOn(t, pctx)
		}
	})
}

// powerOn restarts every stopped machine of the lab and reconnects.
func (c *cpCluster) powerOn(t *testing.T, ctx context.Context) {
	t.Helper()
	if _, err := c.m.Up(ctx, lab.UpOptions{Name: c.lab.Name, Masters: 3}); err != nil {
		t.Fatalf("power the lab machines back on: %v", err)
	}
	c.off = false
	c.connect(t, ctx)
}

// objectCounts counts the cluster's objects of every kind that only
// changes when someone writes it (not Events, Leases or Pods), by kind.
func (c *cpCluster) objectCounts(t *testing.T, ctx context.Context) map[string]int {
	t.Helper()
	kinds := "namespaces,configmaps,secrets,serviceaccounts,services,clusterroles,clusterrolebindings,roles,rolebindings,deployments,daemonsets"
	out, err := c.kubectl(t, ctx, "get", kinds, "--all-namespaces", "-o", "name")
	if err != nil {
		t.Fatalf("count the cluster's objects: %s %v", out, err)
	}
	counts := map[string]int{}
	for _, line := range strings.Fields(out) {
		kind, _, ok := strings.Cut(line, "/")
		if !ok {
			t.Fatalf("kubectl get -o name printed %q", line)
		}
		counts[kind]++
	}
	// Kinds print as kind.group ("clusterrole.rbac.authorization.k8s.io").
	if counts["namespace"] == 0 || counts["clusterrole.rbac.authorization.k8s.io"] == 0 {
		t.Fatalf("implausible object counts %v from:\n%s", counts, out)
	}
	return counts
}

// compareCounts fails for every kind whose count is not before+added.
func compareCounts(t *testing.T, fault string, before, after map[string]int, added map[string]int) {
	t.Helper()
	seen := map[string]bool{}
	var kinds []string
	for _, m := range []map[string]int{before, after} {
		for k := range m {
			if !seen[k] {
				seen[k] = true
				kinds = append(kinds, k)
			}
		}
	}
	sort.Strings(kinds)
	var summary []string
	for _, k := range kinds {
		want := before[k] + added[k]
		summary = append(summary, fmt.Sprintf("%s %d", k, after[k]))
		if after[k] != want {
			t.Errorf("after %s: %d %s, want %d (%d before, %d written during the fault)", fault, after[k], k, want, before[k], added[k])
		}
	}
	t.Logf("objects after %s: %s", fault, strings.Join(summary, ", "))
}

// waitEtcdHealthy waits until etcd, asked through via, reports three
// healthy members.
func (c *cpCluster) waitEtcdHealthy(t *testing.T, ctx context.Context, via string) {
	t.Helper()
	deadline := time.Now().Add(faultTimeout)
	var out string
	var err error
	for time.Now().Before(deadline) {
		out, err = c.etcdHealth(ctx, via)
		if err == nil && strings.Count(out, "is healthy") == 3 {
			return
		}
		time.Sleep(2 * time.Second)
	}
	t.Fatalf("etcd asked through %s is not three healthy members after %s:\n%s %v", via, faultTimeout, out, err)
}

func checkPartition(t *testing.T, ctx context.Context, c *cpCluster) {
	t.Run("a partitioned master: the API stays up through the VIP, etcd keeps quorum, the master rejoins", func(t *testing.T) {
		before := c.objectCounts(t, ctx)
		victim := c.waitVIPHolder(t, ctx, "", 10*time.Second)
		netns := fmt.Sprintf("--net=/proc/%d/ns/net", c.machineInit(t, ctx, victim))
		// Its own deadline, not the test's: the link must come back up
		// even when the test failed because its context expired.
		inNetns := func(cmd string) (string, error) {
			nctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			out, err := exec.CommandContext(nctx, "nsenter", netns, "sh", "-c", cmd).CombinedOutput()
			return strings.TrimSpace(string(out)), err
		}
		route, err := inNetns("ip -4 route show default")
		if err != nil || !strings.HasPrefix(route, "default via ") {
			t.Fatalf("default route of %s: %q %v", victim, route, err)
		}
		// Bringing the link down drops its routes; bringing it back up
		// restores the default route as the machine's network setup would.
		heal := func() error {
			if out, err := inNetns("ip link set eth0 up && ip route replace " + route); err != nil {
				return fmt.Errorf("heal %s: %s: %w", victim, out, err)
			}
			return nil
		}
		healed := false
		defer func() {
			if !healed {
				if err := heal(); err != nil {
					t.Error(err)
				}
			}
		}()
		if out, err := inNetns("ip link set eth0 down"); err != nil {
			t.Fatalf("link down on %s: %s %v", victim, out, err)
		}
		cut := time.Now()
		t.Logf("%s (VIP holder) cut off at %s", victim, cut.Format("15:04:05.000"))

		next := c.waitVIPHolderAmong(t, ctx, victim, faultTimeout)
		t.Logf("VIP moved from partitioned %s to %s after %s", victim, next, time.Since(cut).Round(100*time.Millisecond))
		readyCtx, cancel := context.WithTimeout(ctx, faultTimeout)
		var out string
		for readyCtx.Err() == nil {
			if out, err = c.kubectl(t, readyCtx, "get", "--raw", "/readyz"); err == nil && strings.TrimSpace(out) == "ok" {
				break
			}
			time.Sleep(time.Second)
		}
		cancel()
		if err != nil {
			t.Fatalf("API through the VIP with %s partitioned: %q %v", victim, out, err)
		}
		t.Logf("API ready through the VIP %s after the cut", time.Since(cut).Round(100*time.Millisecond))

		// Reads through the VIP for the whole partition. Each apiserver's
		// etcd client spreads requests over every member and keeps the
		// partitioned one's connection until its keepalive gives up (30 s +
		// 10 s, fixed in kube-apiserver), so a read may time out now and
		// then until partitionSettle; after it, none may.
		stopReads := c.recordAPI(t, ctx, 200*time.Millisecond)
		// Writes need an etcd quorum: two of three members. A write whose
		// answer timed out may still have been made: AlreadyExists on the
		// retry means it was.
		var wout string
		for wctx, wcancel := context.WithTimeout(ctx, faultTimeout); ; {
			wout, err = c.kubectl(t, wctx, "create", "configmap", "partition-during", "--from-literal=at="+time.Now().Format(time.RFC3339))
			if err == nil || strings.Contains(wout, "AlreadyExists") || wctx.Err() != nil {
				wcancel()
				break
			}
			time.Sleep(time.Second)
		}
		if err != nil && !strings.Contains(wout, "AlreadyExists") {
			t.Fatalf("write through the VIP with %s partitioned: %s %v", victim, wout, err)
		}
		out, _ = c.etcdHealth(ctx, next)
		if got := strings.Count(out, "is healthy"); got != 2 {
			t.Errorf("etcd asked through %s with %s partitioned: %d healthy members, want 2:\n%s", next, victim, got, out)
		}
		time.Sleep(time.Until(cut.Add(partitionHold)))
		reads := stopReads()
		var failed []string
		var lastOK, lastFail time.Time
		var gap time.Duration
		for _, r := range reads {
			if r.err != nil {
				failed = append(failed, fmt.Sprintf("cut%+.1fs: %v", r.start.Sub(cut).Seconds(), r.err))
				lastFail = r.start
				continue
			}
			if !lastOK.IsZero() && r.start.Sub(lastOK) > gap {
				gap = r.start.Sub(lastOK)
			}
			lastOK = r.start
		}
		t.Logf("%d reads through the VIP during the partition, %d timed out, longest gap between answered reads %s:\n%s",
			len(reads), len(failed), gap.Round(10*time.Millisecond), strings.Join(failed, "\n"))
		if gap > maxPartitionGap {
			t.Errorf("the API through the VIP did not answer for %s with %s partitioned (at most %s)", gap.Round(10*time.Millisecond), victim, maxPartitionGap)
		}
		if !lastFail.IsZero() && lastFail.After(cut.Add(partitionSettle)) {
			t.Errorf("reads through the VIP still failed %s after the cut (the partitioned member should be dropped by %s)", lastFail.Sub(cut).Round(100*time.Millisecond), partitionSettle)
		}
		if lastOK.IsZero() || lastOK.Before(cut.Add(partitionSettle)) {
			t.Errorf("no read answered after %s into the partition", partitionSettle)
		}

		if err := heal(); err != nil {
			t.Fatal(err)
		}
		healed = true
		t.Logf("%s back on the network after %s", victim, time.Since(cut).Round(100*time.Millisecond))
		c.connect(t, ctx)
		c.waitEtcdHealthy(t, ctx, victim)
		// The member caught up: its own copy (a serializable read, answered
		// locally) has the write made while it was away.
		got := c.exec(t, ctx, victim, "etcdctl --endpoints=https://127.0.0.1:2379 --cacert=/etc/kubernetes/pki/etcd/ca.crt "+
			"--cert=/etc/kubernetes/pki/apiserver-etcd-client.crt --key=/etc/kubernetes/pki/apiserver-etcd-client.key "+
			"--command-timeout=5s get --consistency=s --keys-only /registry/configmaps/default/partition-during")
		if !strings.Contains(got, "/registry/configmaps/default/partition-during") {
			t.Errorf("%s's etcd member lacks the write made during its partition: %q", victim, got)
		}
		wctx, cancel := context.WithTimeout(ctx, faultTimeout)
		defer cancel()
		if err := kube.WaitReadyz(wctx, "https://"+c.addrs[victim]+":6443", time.Second); err != nil {
			t.Fatalf("apiserver on %s after the partition: %v", victim, err)
		}
		c.waitVIPHolder(t, ctx, "", 30*time.Second)
		compareCounts(t, "the partition", before, c.objectCounts(t, ctx), map[string]int{"configmap": 1})
	})
}

// waitVIPHolderAmong waits until a master other than gone holds the VIP,
// asking only the others: gone cannot be reached, and what it believes is
// beside the point while it is cut off.
func (c *cpCluster) waitVIPHolderAmong(t *testing.T, ctx context.Context, gone string, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		for name, h := range c.hosts {
			if name == gone {
				continue
			}
			ectx, cancel := context.WithTimeout(ctx, 5*time.Second)
			s, err := h.Exec(ectx, "ip -o -4 addr show dev eth0")
			cancel()
			if err == nil && strings.Contains(s, " "+c.lab.VIP+"/") {
				return name
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("no master but %s holds the VIP %s after %s", gone, c.lab.VIP, timeout)
	return ""
}

func checkPowerOffDuringInstall(t *testing.T, ctx context.Context, c *cpCluster) {
	t.Run("a master powered off during install: the run names it, a re-run after it is back converges", func(t *testing.T) {
		before := c.objectCounts(t, ctx)
		victim := c.lab.Machines[1].Name
		// Power the victim off as its etcd play begins: the run is then
		// in the middle of changing (or checking) the cluster's data store.
		off := false
		var failed []string
		events, stderr, err := kwStream(t, ctx, c.stateDir, func(ev kwEvent, _ *exec.Cmd) {
			if !off && ev.Type == "host_start" && ev.Host == victim && ev.Play == "etcd" {
				c.powerOff(t, ctx, victim)
				off = true
				t.Logf("powered %s off as its etcd play started", victim)
			}
			if ev.Type == "step_failed" {
				failed = append(failed, ev.Host+": "+ev.Step+": "+ev.Error)
			}
		}, "install", "-i", c.inv)
		all := events + stderr
		if !off {
			t.Fatalf("the install never started the etcd play on %s:\n%s", victim, all)
		}
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("install with %s powered off: %v, want a failed run:\n%s", victim, err, all)
		}
		named := false
		for _, f := range failed {
			t.Logf("failed: %s", f)
			if strings.HasPrefix(f, victim+": ") {
				named = true
			}
		}
		if !named || !strings.Contains(stderr, victim) {
			t.Errorf("the failed install does not name %s as the failed host (step failures %v):\n%s", victim, failed, stderr)
		}

		c.powerOn(t, ctx)
		r := kw(t, ctx, c.stateDir, "install", "-i", c.inv)
		if r.code != 0 {
			t.Fatalf("re-run after %s is back: exit %d:\n%s", victim, r.code, r.out)
		}
		t.Logf("re-run after %s came back converged in %s", victim, r.duration.Round(time.Second))
		c.waitEtcdHealthy(t, ctx, victim)
		compareCounts(t, "the power-off during install", before, c.objectCounts(t, ctx), nil)
	})
}
