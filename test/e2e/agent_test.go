//go:build e2e

package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math"
	"math/big"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kubewright/kubewright/installer/pki"
	"github.com/kubewright/kubewright/installer/remote"
)

// agentEnv is what the agent faults need of the shared 3+2 cluster that
// TestNodesJoin installed.
type agentEnv struct {
	cs       kubernetes.Interface
	hosts    map[string]*remote.SSHHost
	masters  []string
	workers  []string
	vip      string
	pkiDir   string // the operator's state dir PKI (cluster CA)
	status   func(ctx context.Context) (string, int)
	agentLog func(ctx context.Context, host string) string
}

// agentFaultTimeout bounds each fault from injection to healthy.
const agentFaultTimeout = 2 * time.Minute

// checkAgent injects real faults on the lab cluster and measures the time
// from each fault to the node being healthy again, reporting who repaired it.
// It runs last on the shared cluster: repairs restart units.
func checkAgent(t *testing.T, ctx context.Context, e *agentEnv) {
	t.Run("every agent reports its node healthy", func(t *testing.T) {
		e.waitHealthy(t, ctx, nil, 3*time.Minute)
		out, code := e.status(ctx)
		t.Logf("kubewright status:\n%s", out)
		if code != 0 {
			t.Errorf("kubewright status exit %d, want 0 on a healthy cluster", code)
		}
		for _, n := range append(append([]string{}, e.masters...), e.workers...) {
			if !strings.Contains(out, n) {
				t.Errorf("kubewright status does not list %s", n)
			}
		}
	})

	t.Run("agent memory", func(t *testing.T) {
		for name, h := range e.hosts {
			out, err := run(ctx, h, "ps -o rss= -C kubewright-agent | head -1")
			kib, perr := strconv.Atoi(strings.TrimSpace(out))
			if err != nil || perr != nil {
				t.Errorf("%s: agent RSS unreadable: %q %v", name, out, err)
				continue
			}
			t.Logf("%s: kubewright-agent RSS %d KiB", name, kib)
			if kib > 40*1024 {
				t.Errorf("%s: kubewright-agent RSS %d KiB, want <= 40 MiB", name, kib)
			}
		}
	})

	t.Run("containerd stopped on a worker is restarted by the agent", func(t *testing.T) {
		w := e.workers[0]
		e.fault(t, ctx, w, "systemctl stop containerd", "systemctl is-active containerd kubelet", "restart-containerd")
	})

	t.Run("kubelet killed on a worker comes back", func(t *testing.T) {
		w := e.workers[1]
		// systemd's Restart=always may win the race with the agent; the
		// measure is fault to healthy either way, and the journal says who.
		e.fault(t, ctx, w, "systemctl kill -s KILL kubelet", "systemctl is-active kubelet && curl -sf http://127.0.0.1:10248/healthz", "")
	})

	t.Run("etcd stopped on one master: restarted, quorum kept throughout", func(t *testing.T) {
		m := e.masters[1]
		stop := e.writeLoop(t, ctx)
		e.fault(t, ctx, m, "systemctl stop etcd", "systemctl is-active etcd", "restart-etcd")
		writes, failures := stop()
		t.Logf("API writes through the VIP during the etcd fault: %d, failed %d", writes, len(failures))
		if len(failures) > 0 {
			t.Errorf("writes failed while one etcd member was down (quorum must hold): %v", failures)
		}
	})

	t.Run("VIP deleted from its holder comes back", func(t *testing.T) {
		holder := e.vipHolder(t, ctx)
		if holder == "" {
			t.Fatal("no single master holds the VIP before the fault")
		}
		// A live keepalived notices its address gone and puts it back by
		// itself; the measure is the API answering through the VIP again.
		e.fault(t, ctx, holder, e.delVIP(), e.vipAnswers(), "")
		if h := e.vipHolder(t, ctx); h == "" {
			t.Fatalf("no master holds the VIP after the fault")
		}
	})

	t.Run("VIP missing everywhere with keepalived hung: the agent restarts keepalived", func(t *testing.T) {
		holder := e.vipHolder(t, ctx)
		if holder == "" {
			t.Fatal("no single master holds the VIP before the fault")
		}
		// Every keepalived frozen (its unit still active), then the VIP
		// removed: nothing but the agent's restart-keepalived brings it
		// back. The agents take turns through the control-plane Lease.
		thaw := func() {
			for _, m := range e.masters {
				_, _ = run(context.WithoutCancel(ctx), e.hosts[m], "pkill -CONT keepalived || true")
			}
		}
		defer thaw()
		before := map[string]string{}
		for _, m := range e.masters {
			before[m], _ = run(ctx, e.hosts[m], "wc -l < /var/lib/kubewright-agent/journal.jsonl")
			if _, err := run(ctx, e.hosts[m], "pkill -STOP keepalived"); err != nil {
				t.Fatal(err)
			}
		}
		e.fault(t, ctx, holder, e.delVIP(), e.vipAnswers(), "")
		var by []string
		for _, m := range e.masters {
			if e.journalHas(ctx, m, before[m], "restart-keepalived") {
				by = append(by, m)
			}
		}
		t.Logf("VIP back on %s; keepalived restarted by the agent on %v", e.vipHolder(t, ctx), by)
		if len(by) == 0 {
			t.Errorf("the VIP came back without any agent restarting keepalived")
		}
		thaw()
		e.waitHealthy(t, ctx, e.masters, 2*time.Minute)
	})

	t.Run("a certificate two days from expiry is renewed", func(t *testing.T) {
		m := e.masters[2]
		e.plantExpiringCert(t, ctx, m, "/etc/kubernetes/pki/e2e-expiring")
		start := time.Now()
		deadline := start.Add(agentFaultTimeout)
		for {
			out, _ := run(ctx, e.hosts[m], "openssl x509 -noout -enddate -in /etc/kubernetes/pki/e2e-expiring.crt")
			end, err := time.Parse("Jan _2 15:04:05 2006 MST", strings.TrimPrefix(strings.TrimSpace(out), "notAfter="))
			if err == nil && time.Until(end) > 300*24*time.Hour {
				t.Logf("fault to healthy: %s on %s: certificate renewed, now expires %s", time.Since(start).Round(100*time.Millisecond), m, end.Format(time.RFC3339))
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("certificate on %s not renewed after %s (notAfter %q)\n%s", m, agentFaultTimeout, out, e.agentLog(ctx, m))
			}
			time.Sleep(time.Second)
		}
		e.waitHealthy(t, ctx, []string{m}, 2*time.Minute)
		_, _ = run(ctx, e.hosts[m], "rm -f /etc/kubernetes/pki/e2e-expiring.crt /etc/kubernetes/pki/e2e-expiring.key")
	})

	t.Run("the containerd filesystem past the threshold: prune reported, then exhausted and marked", func(t *testing.T) {
		// The lab's disk is the host's, far from full: the threshold is
		// set above today's use and a file pushes use past it. The margin
		// (1.5 points) lets the host's own writes meanwhile (builds, logs)
		// grow by gigabytes without pushing use past it on their own.
		// prune-images is report-only by default (an air-gapped node must
		// keep its bundle's images) and could not free a file anyway, so
		// the ladder must end exhausted with the node marked, not loop;
		// removing the file clears it.
		w := e.workers[0]
		h := e.hosts[w]
		df, err := run(ctx, h, "df -B1 --output=size,used,avail /var/lib/containerd | tail -1")
		f := strings.Fields(df)
		if err != nil || len(f) != 3 {
			t.Fatalf("df on %s: %q %v", w, df, err)
		}
		size, _ := strconv.ParseFloat(f[0], 64)
		used, _ := strconv.ParseFloat(f[1], 64)
		avail, _ := strconv.ParseFloat(f[2], 64)
		// The check's measure is df's Use%: used / (used + available).
		pct := used / (used + avail) * 100
		threshold := int(math.Ceil(pct + 1.5))
		fill := int64((float64(threshold)+0.3)/100*(used+avail) - used)
		t.Logf("%s: /var/lib/containerd %.1f%% used (%.0f GiB of a %.0f GiB filesystem); threshold %d%%, writing %d MiB", w, pct, used/(1<<30), size/(1<<30), threshold, fill>>20)
		restore, _ := run(ctx, h, "cat /etc/kubewright/agent.yaml")
		defer func() {
			dctx := context.WithoutCancel(ctx)
			_, _ = run(dctx, h, "rm -f /var/lib/containerd/e2e-fill")
			if _, err := h.Exec(dctx, "cat > /etc/kubewright/agent.yaml && systemctl restart kubewright-agent", remote.WithStdin(strings.NewReader(restore))); err != nil {
				t.Errorf("restore agent.yaml on %s: %v", w, err)
			}
		}()
		if _, err := run(ctx, h, fmt.Sprintf("sed -i 's/^diskPercent: .*/diskPercent: %d/' /etc/kubewright/agent.yaml && systemctl restart kubewright-agent", threshold)); err != nil {
			t.Fatal(err)
		}
		e.waitHealthy(t, ctx, []string{w}, time.Minute)
		before, _ := run(ctx, h, "wc -l < /var/lib/kubewright-agent/journal.jsonl")
		start := time.Now()
		if _, err := run(ctx, h, fmt.Sprintf("fallocate -l %d /var/lib/containerd/e2e-fill", fill)); err != nil {
			t.Fatal(err)
		}
		deadline := start.Add(agentFaultTimeout)
		for {
			n, err := e.cs.CoreV1().Nodes().Get(ctx, w, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			var disk corev1.NodeCondition
			for _, c := range n.Status.Conditions {
				if c.Type == "kubewright.io/DiskProblem" {
					disk = c
				}
			}
			if disk.Status == corev1.ConditionTrue && disk.Reason == "RepairExhausted" {
				t.Logf("fault to marked: %s: %s", time.Since(start).Round(100*time.Millisecond), disk.Message)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("DiskProblem not marked exhausted after %s: %+v\n%s", agentFaultTimeout, disk, e.agentLog(ctx, w))
			}
			time.Sleep(time.Second)
		}
		n, _ := strconv.Atoi(strings.TrimSpace(before))
		if j, _ := run(ctx, h, fmt.Sprintf("tail -n +%d /var/lib/kubewright-agent/journal.jsonl | grep '\"repair\":\"prune-images\"' | grep -c '\"outcome\":\"report-only\"' || true", n+1)); strings.TrimSpace(j) == "0" {
			t.Errorf("%s: prune-images was not reported (report-only) before the ladder was exhausted", w)
		}
		if _, err := run(ctx, h, "rm -f /var/lib/containerd/e2e-fill"); err != nil {
			t.Fatal(err)
		}
		e.waitHealthy(t, ctx, []string{w}, time.Minute)
	})

	t.Run("a repair waits while the budget is held elsewhere, then runs", func(t *testing.T) {
		// Another holder (standing in for a node already repairing) takes
		// the only budget slot for 20 s; both workers then lose containerd.
		// Each agent must wait (journal: blocked by budget) and repair
		// only after the holder's lease has expired.
		const hold = 20 * time.Second
		e.holdBudget(t, ctx, hold)
		start := time.Now()
		before := map[string]string{}
		for _, w := range e.workers {
			before[w], _ = run(ctx, e.hosts[w], "wc -l < /var/lib/kubewright-agent/journal.jsonl")
		}
		var wg sync.WaitGroup
		for _, w := range e.workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := run(ctx, e.hosts[w], "systemctl stop containerd"); err != nil {
					t.Errorf("%s: %v", w, err)
				}
			}()
		}
		wg.Wait()
		deadline := start.Add(agentFaultTimeout + hold)
		done := map[string]time.Duration{}
		for len(done) < len(e.workers) {
			for _, w := range e.workers {
				if _, ok := done[w]; ok {
					continue
				}
				if _, err := run(ctx, e.hosts[w], "systemctl is-active containerd"); err == nil {
					done[w] = time.Since(start)
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("not both workers repaired after %s: %v\n%s\n%s", agentFaultTimeout+hold, done, e.agentLog(ctx, e.workers[0]), e.agentLog(ctx, e.workers[1]))
			}
			time.Sleep(250 * time.Millisecond)
		}
		t.Logf("fault to healthy with the budget held for %s: %v", hold, done)
		for _, w := range e.workers {
			if done[w] < hold-2*time.Second {
				t.Errorf("%s repaired after %s, while the budget was still held (%s)", w, done[w], hold)
			}
			n, _ := strconv.Atoi(strings.TrimSpace(before[w]))
			j, _ := run(ctx, e.hosts[w], fmt.Sprintf("tail -n +%d /var/lib/kubewright-agent/journal.jsonl | grep '\"outcome\":\"blocked\"' | grep -c 'blocked by budget' || true", n+1))
			if strings.TrimSpace(j) == "0" {
				t.Errorf("%s: no 'blocked by budget' in its agent journal", w)
			}
		}
		e.waitHealthy(t, ctx, e.workers, 2*time.Minute)
	})
}

// holdBudget takes every repair budget Lease for d as a holder that is not
// a node, the way a node in the middle of a repair holds it.
func (e *agentEnv) holdBudget(t *testing.T, ctx context.Context, d time.Duration) {
	t.Helper()
	leases := e.cs.CoordinationV1().Leases("kube-system")
	now := metav1.NewMicroTime(time.Now())
	secs := int32(d / time.Second)
	holder := "e2e-test-holder"
	l, err := leases.Get(ctx, "kubewright-repair-0", metav1.GetOptions{})
	if err != nil {
		l = &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "kubewright-repair-0", Namespace: "kube-system"}}
		l.Spec = coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &secs, AcquireTime: &now, RenewTime: &now}
		if _, err := leases.Create(ctx, l, metav1.CreateOptions{}); err != nil {
			t.Fatalf("hold the budget lease: %v", err)
		}
		return
	}
	if l.Spec.HolderIdentity != nil && *l.Spec.HolderIdentity != "" && l.Spec.RenewTime != nil && l.Spec.LeaseDurationSeconds != nil &&
		time.Since(l.Spec.RenewTime.Time) < time.Duration(*l.Spec.LeaseDurationSeconds)*time.Second {
		t.Fatalf("budget lease is held by %s already", *l.Spec.HolderIdentity)
	}
	l.Spec = coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &secs, AcquireTime: &now, RenewTime: &now}
	if _, err := leases.Update(ctx, l, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("hold the budget lease: %v", err)
	}
}

// delVIP is a shell command removing the VIP, with its real prefix, from
// eth0.
func (e *agentEnv) delVIP() string {
	return "ip addr del $(ip -o -4 addr show dev eth0 | awk '$4 ~ /^" + strings.ReplaceAll(e.vip, ".", "\\.") + "\\// {print $4}') dev eth0"
}

// vipAnswers succeeds when the apiserver answers through the VIP.
func (e *agentEnv) vipAnswers() string {
	return "curl -sk -o /dev/null --max-time 2 https://" + e.vip + ":8443/readyz"
}

// fault runs cmd on host, then polls healthy (a shell command that succeeds
// when the node is well again; empty: the agent's conditions) and logs the
// time from fault to healthy. repair, when set, must appear as succeeded in
// the node's agent journal.
func (e *agentEnv) fault(t *testing.T, ctx context.Context, host, cmd, healthy, repair string) {
	t.Helper()
	h := e.hosts[host]
	before, _ := run(ctx, h, "wc -l < /var/lib/kubewright-agent/journal.jsonl 2>/dev/null || echo 0")
	start := time.Now()
	if _, err := run(ctx, h, cmd); err != nil {
		t.Fatalf("fault %q on %s: %v", cmd, host, err)
	}
	deadline := start.Add(agentFaultTimeout)
	for {
		ok := false
		if healthy != "" {
			_, err := run(ctx, h, healthy)
			ok = err == nil
		} else {
			ok = e.nodeHealthy(ctx, host) == ""
		}
		if ok && repair != "" {
			ok = e.journalHas(ctx, host, before, repair)
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not healthy %s after %q (repair %q): %s\n%s", host, agentFaultTimeout, cmd, repair, e.nodeHealthy(ctx, host), e.agentLog(ctx, host))
		}
		time.Sleep(250 * time.Millisecond)
	}
	took := time.Since(start).Round(100 * time.Millisecond)
	by := "systemd or the agent"
	if repair != "" {
		by = "the agent's " + repair
	}
	t.Logf("fault to healthy: %s on %s: %q repaired by %s", took, host, cmd, by)
	e.waitHealthy(t, ctx, []string{host}, 2*time.Minute)
}

// journalHas tells whether the agent journal on host, past its first skip
// lines, records repair as succeeded.
func (e *agentEnv) journalHas(ctx context.Context, host, skip, repair string) bool {
	n, _ := strconv.Atoi(strings.TrimSpace(skip))
	out, err := run(ctx, e.hosts[host], fmt.Sprintf("tail -n +%d /var/lib/kubewright-agent/journal.jsonl | grep '\"outcome\":\"succeeded\"' | grep -c '\"repair\":\"%s\"'", n+1, repair))
	return err == nil && strings.TrimSpace(out) != "0"
}

// nodeHealthy returns "" when the node's agent conditions are all False and
// fresh, else what is wrong.
func (e *agentEnv) nodeHealthy(ctx context.Context, node string) string {
	n, err := e.cs.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
	if err != nil {
		return err.Error()
	}
	var bad []string
	ours := 0
	for _, c := range n.Status.Conditions {
		if !strings.HasPrefix(string(c.Type), "kubewright.io/") {
			continue
		}
		ours++
		if c.Status != corev1.ConditionFalse {
			bad = append(bad, fmt.Sprintf("%s=%s (%s: %s)", c.Type, c.Status, c.Reason, c.Message))
		}
		if time.Since(c.LastHeartbeatTime.Time) > 2*time.Minute {
			bad = append(bad, fmt.Sprintf("%s heartbeat %s old", c.Type, time.Since(c.LastHeartbeatTime.Time).Round(time.Second)))
		}
	}
	if ours == 0 {
		return "no kubewright.io conditions yet"
	}
	sort.Strings(bad)
	return strings.Join(bad, "; ")
}

// waitHealthy waits until every named node (nil: all) reports healthy.
func (e *agentEnv) waitHealthy(t *testing.T, ctx context.Context, nodes []string, timeout time.Duration) {
	t.Helper()
	if nodes == nil {
		nodes = append(append([]string{}, e.masters...), e.workers...)
	}
	deadline := time.Now().Add(timeout)
	for {
		var bad []string
		for _, n := range nodes {
			if why := e.nodeHealthy(ctx, n); why != "" {
				bad = append(bad, n+": "+why)
			}
		}
		if len(bad) == 0 {
			return
		}
		if time.Now().After(deadline) {
			var logs []string
			for _, n := range nodes {
				logs = append(logs, e.agentLog(ctx, n))
			}
			t.Fatalf("nodes not healthy after %s:\n%s\n%s", timeout, strings.Join(bad, "\n"), strings.Join(logs, "\n"))
		}
		time.Sleep(time.Second)
	}
}

func (e *agentEnv) vipHolder(t *testing.T, ctx context.Context) string {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		var holders []string
		for _, m := range e.masters {
			s, err := e.hosts[m].Exec(ctx, "ip -o -4 addr show dev eth0")
			if err == nil && strings.Contains(s, " "+e.vip+"/") {
				holders = append(holders, m)
			}
		}
		if len(holders) == 1 {
			return holders[0]
		}
		time.Sleep(250 * time.Millisecond)
	}
	return ""
}

// writeLoop writes a ConfigMap through the VIP every 250 ms until stopped:
// a write needs an etcd quorum, so no failure means quorum held.
func (e *agentEnv) writeLoop(t *testing.T, ctx context.Context) func() (int, []string) {
	t.Helper()
	var (
		mu       sync.Mutex
		writes   int
		failures []string
	)
	lctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "e2e-agent-quorum", Namespace: "default"}, Data: map[string]string{}}
		for lctx.Err() == nil {
			cm.Data["n"] = strconv.Itoa(writes)
			wctx, cancel := context.WithTimeout(lctx, 5*time.Second)
			_, err := e.cs.CoreV1().ConfigMaps("default").Update(wctx, cm, metav1.UpdateOptions{})
			if err != nil && strings.Contains(err.Error(), "not found") {
				_, err = e.cs.CoreV1().ConfigMaps("default").Create(wctx, cm, metav1.CreateOptions{})
			}
			cancel()
			if lctx.Err() != nil {
				return
			}
			mu.Lock()
			writes++
			if err != nil {
				failures = append(failures, time.Now().Format("15:04:05.000")+": "+err.Error())
			}
			mu.Unlock()
			time.Sleep(250 * time.Millisecond)
		}
	}()
	return func() (int, []string) {
		stop()
		<-done
		_ = e.cs.CoreV1().ConfigMaps("default").Delete(ctx, "e2e-agent-quorum", metav1.DeleteOptions{})
		mu.Lock()
		defer mu.Unlock()
		return writes, failures
	}
}

// plantExpiringCert puts a leaf signed by the cluster CA, valid for a year
// and two days from expiry, at base.crt/base.key on host.
func (e *agentEnv) plantExpiringCert(t *testing.T, ctx context.Context, host, base string) {
	t.Helper()
	ca, caKey, err := pki.NewStore(e.pkiDir, nil).CA(pki.CACluster)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	// Built by hand: the validity must be a year (so a renewal gives a
	// year again) while only two days are left of it.
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(now.UnixNano()),
		Subject:      pkix.Name{CommonName: "e2e-expiring"},
		NotBefore:    now.Add(-363 * 24 * time.Hour),
		NotAfter:     now.Add(48 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	certDER, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certDER})
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
	h := e.hosts[host]
	if _, err := h.Upload(ctx, strings.NewReader(string(keyPEM)), base+".key", 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Upload(ctx, strings.NewReader(string(certPEM)), base+".crt", 0o644); err != nil {
		t.Fatal(err)
	}
}
