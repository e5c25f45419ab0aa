//go:build e2e

// End-to-end test of issue 5 (every host becomes a node) on 3 masters and 2
// workers: containerd configured and images imported offline, kubelets joined
// by TLS bootstrap with one-time tokens, serving certificates only through
// approved CSRs, kube-proxy running, roles/labels/taints from the inventory,
// NotReady only for the missing CNI, a re-run that changes nothing, and a
// foreign containerd config refused.
package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	certsv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubewright/kubewright/installer/kube"
	"github.com/kubewright/kubewright/installer/remote"
)

const nodesTimeout = 25 * time.Minute

func nodesRepoPath(t *testing.T, rel, env string) string {
	t.Helper()
	if p := os.Getenv(env); p != "" {
		return p
	}
	p, err := filepath.Abs(filepath.Join("../..", rel))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s not found (run make build and make artifacts, or set %s): %v", p, env, err)
	}
	return p
}

// nodesKW runs kubewright with the test's state dir; it returns the combined
// output and exit code.
func nodesKW(t *testing.T, ctx context.Context, stateDir string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.CommandContext(ctx, nodesRepoPath(t, "bin/kubewright", "KUBEWRIGHT_BIN"), append([]string{"--state-dir", stateDir}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return out.String(), ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run kubewright %v: %v", args, err)
	}
	return out.String(), 0
}

func TestNodesJoin(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), nodesTimeout)
	defer cancel()
	m, l := newLab(t, ctx, "nodes", 3, 2)
	stateDir, clusterDir, hosts := kubewrightLab(t, ctx, m, l, "containerd", "kubelet", "kube-proxy")
	arts := nodesRepoPath(t, "_output/artifacts", "KUBEWRIGHT_ARTIFACTS_DIR")

	var masters, workers []string
	addr := map[string]string{}
	for _, ms := range l.Machines {
		addr[ms.Name] = ms.Address
		if ms.Role == "master" || strings.Contains(ms.Name, "master") {
			masters = append(masters, ms.Name)
		} else {
			workers = append(workers, ms.Name)
		}
	}
	if len(masters) != 3 || len(workers) != 2 {
		t.Fatalf("lab machines: masters %v workers %v", masters, workers)
	}

	// The lab's inventory, pointed at the built artifacts, with a label on
	// one worker and a taint on the other.
	invBytes, err := os.ReadFile(l.Inventory)
	if err != nil {
		t.Fatal(err)
	}
	inv := regexp.MustCompile(`(?m)^(\s+)path: .*$`).ReplaceAllString(string(invBytes), "${1}path: "+arts)
	inv = strings.Replace(inv, "address: "+addr[workers[0]]+"\n", "address: "+addr[workers[0]]+"\n      labels: {kubewright.io/e2e: nodes}\n", 1)
	inv = strings.Replace(inv, "address: "+addr[workers[1]]+"\n", "address: "+addr[workers[1]]+"\n      taints: [{key: kubewright.io/e2e, value: nodes, effect: PreferNoSchedule}]\n", 1)
	invPath := filepath.Join(t.TempDir(), "inventory.yaml")
	if err := os.WriteFile(invPath, []byte(inv), 0o600); err != nil {
		t.Fatal(err)
	}
	// The first install leaves the last worker out; it is added later.
	w2 := workers[1]
	w2Host := regexp.MustCompile(`(?m)^\s+- name: ` + regexp.QuoteMeta(w2) + `\n(\s{6}\S.*\n)+`)
	w2Group := regexp.MustCompile(`(?m)^\s+- ` + regexp.QuoteMeta(w2) + `\n`)
	smaller := w2Group.ReplaceAllString(w2Host.ReplaceAllString(inv, ""), "")
	if strings.Contains(smaller, w2) {
		t.Fatalf("could not remove %s from the inventory:\n%s", w2, smaller)
	}
	smallPath := filepath.Join(t.TempDir(), "inventory-4.yaml")
	if err := os.WriteFile(smallPath, []byte(smaller), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		dctx, dcancel := context.WithTimeout(context.Background(), time.Minute)
		defer dcancel()
		for name, h := range hosts {
			out, _ := run(dctx, h, "ls -l /var/lib/kubelet/pki /etc/kubernetes; true")
			t.Logf("==== %s\n%s", name, out)
		}
		kubectl := filepath.Join(arts, "bin", "kubectl")
		out, err := exec.CommandContext(dctx, kubectl, "--kubeconfig", filepath.Join(clusterDir, "pki", "admin.conf"), "get", "nodes,csr", "-o", "wide").CombinedOutput()
		t.Logf("==== kubectl get nodes,csr (%v)\n%s", err, out)
	})

	// Every output of the installs below is searched for secrets; the
	// bootstrap tokens are known only to a watch that saw them.
	tokens := watchBootstrapTokens(ctx, filepath.Join(clusterDir, "pki", "admin.conf"))
	outputs := map[string][]byte{}
	out, code := nodesKW(t, ctx, stateDir, "install", "-i", smallPath)
	outputs["output of install (4 hosts)"] = []byte(out)
	if code != 0 {
		t.Fatalf("install of 3 masters and 1 worker: exit %d:\n%s", code, out)
	}
	// Adding a worker joins only that host: every other host plans no change.
	// This run's events go out as JSON, the third output format searched.
	out, code = nodesKW(t, ctx, stateDir, "--output", "json", "install", "-i", invPath)
	outputs["output of install -o json (5 hosts)"] = []byte(out)
	if code != 0 {
		t.Fatalf("install after adding %s: exit %d:\n%s", w2, code, out)
	}
	// The journal says what each host's steps did: only the new worker
	// changes anything; the add-ons step (on the first master) may only wait
	// for the new node's flannel pod, changing no object.
	for host, changes := range journalChanges(t, clusterDir, 5) {
		real := objectChanges(changes)
		if (host == w2) != (len(real) > 0) {
			t.Errorf("after adding %s, %s changed: %v\n%s", w2, host, real, out)
		}
	}
	adminConf, err := os.ReadFile(filepath.Join(clusterDir, "pki", "admin.conf"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := kube.NewClient(adminConf)
	if err != nil {
		t.Fatal(err)
	}
	cs := c.Clientset

	t.Run("all nodes registered with roles, labels and taints", func(t *testing.T) {
		nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		byName := map[string]corev1.Node{}
		for _, n := range nodes.Items {
			byName[n.Name] = n
		}
		if len(byName) != 5 {
			t.Fatalf("%d nodes registered, want 5: %v", len(byName), byName)
		}
		hasTaint := func(n corev1.Node, key, value string, eff corev1.TaintEffect) bool {
			for _, tt := range n.Spec.Taints {
				if tt.Key == key && tt.Value == value && tt.Effect == eff {
					return true
				}
			}
			return false
		}
		for _, name := range masters {
			n, ok := byName[name]
			if !ok {
				t.Fatalf("master %s not registered", name)
			}
			if _, ok := n.Labels["node-role.kubernetes.io/control-plane"]; !ok || !hasTaint(n, "node-role.kubernetes.io/control-plane", "", corev1.TaintEffectNoSchedule) {
				t.Errorf("master %s: labels %v taints %v", name, n.Labels, n.Spec.Taints)
			}
		}
		for _, name := range workers {
			n, ok := byName[name]
			if !ok {
				t.Fatalf("worker %s not registered", name)
			}
			if _, ok := n.Labels["node-role.kubernetes.io/worker"]; !ok || hasTaint(n, "node-role.kubernetes.io/control-plane", "", corev1.TaintEffectNoSchedule) {
				t.Errorf("worker %s: labels %v taints %v", name, n.Labels, n.Spec.Taints)
			}
		}
		if byName[workers[0]].Labels["kubewright.io/e2e"] != "nodes" {
			t.Errorf("inventory label missing on %s: %v", workers[0], byName[workers[0]].Labels)
		}
		if !hasTaint(byName[workers[1]], "kubewright.io/e2e", "nodes", corev1.TaintEffectPreferNoSchedule) {
			t.Errorf("inventory taint missing on %s: %v", workers[1], byName[workers[1]].Spec.Taints)
		}
		for name, n := range byName {
			var ip string
			for _, a := range n.Status.Addresses {
				if a.Type == corev1.NodeInternalIP {
					ip = a.Address
				}
			}
			if ip != addr[name] {
				t.Errorf("node %s InternalIP %q, want the inventory address %s", name, ip, addr[name])
			}
		}
	})

	t.Run("every kubelet serving certificate came from an approved CSR", func(t *testing.T) {
		csrs, err := cs.CertificatesV1().CertificateSigningRequests().List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		issued := map[string][][]byte{} // node -> approved certificates
		for _, r := range csrs.Items {
			if r.Spec.SignerName != certsv1.KubeletServingSignerName {
				continue
			}
			ok := false
			for _, cond := range r.Status.Conditions {
				ok = ok || cond.Type == certsv1.CertificateApproved
			}
			if ok && len(r.Status.Certificate) > 0 {
				node := strings.TrimPrefix(r.Spec.Username, "system:node:")
				b, _ := pem.Decode(r.Status.Certificate)
				issued[node] = append(issued[node], b.Bytes)
			}
		}
		for name, a := range addr {
			conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", net.JoinHostPort(a, "10250"), &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // compared with the CSR below
			if err != nil {
				t.Errorf("kubelet %s: %v", name, err)
				continue
			}
			peer := conn.ConnectionState().PeerCertificates[0]
			conn.Close()
			found := false
			for _, der := range issued[name] {
				found = found || bytes.Equal(der, peer.Raw)
			}
			if !found {
				t.Errorf("kubelet %s serves a certificate (issuer %s) that no approved CSR of its node issued", name, peer.Issuer)
			}
		}
	})

	t.Run("no bootstrap token left", func(t *testing.T) {
		secrets, err := cs.CoreV1().Secrets("kube-system").List(ctx, metav1.ListOptions{FieldSelector: "type=" + string(corev1.SecretTypeBootstrapToken)})
		if err != nil {
			t.Fatal(err)
		}
		if len(secrets.Items) != 0 {
			t.Fatalf("%d bootstrap token(s) left: %s", len(secrets.Items), secrets.Items[0].Name)
		}
		for name, h := range hosts {
			if out, _ := run(ctx, h, "ls /etc/kubernetes/bootstrap-kubelet.conf 2>&1; true"); !strings.Contains(out, "No such file") {
				t.Errorf("%s still has a bootstrap kubeconfig", name)
			}
		}
	})

	// With flannel and CoreDNS installed by the add-ons play, every node is
	// Ready and pods talk across nodes, by Service and by name.
	kubectl := filepath.Join(arts, "bin", "kubectl")
	checkNetwork(t, ctx, &netCheck{cs: cs, ns: "e2e-net", workers: workers, kubectl: func(ctx context.Context, args ...string) (string, error) {
		out, err := exec.CommandContext(ctx, kubectl, append([]string{"--kubeconfig", filepath.Join(clusterDir, "pki", "admin.conf")}, args...)...).CombinedOutput()
		return string(out), err
	}})

	t.Run("runtime, images and kube-proxy on every node", func(t *testing.T) {
		for name, h := range hosts {
			out, err := run(ctx, h, "systemctl is-active containerd kubelet kube-proxy; crictl images -q | wc -l; iptables-save -t nat | grep -c '^:KUBE-SERVICES'")
			if err != nil || strings.Fields(out)[0] != "active" || strings.Count(out, "active") != 3 {
				t.Errorf("%s: %s %v", name, out, err)
			}
		}
	})

	t.Run("re-running install changes nothing", func(t *testing.T) {
		out, code := nodesKW(t, ctx, stateDir, "install", "-i", invPath)
		outputs["output of the install re-run"] = []byte(out)
		if code != 0 {
			t.Fatalf("re-run exit %d:\n%s", code, out)
		}
		for host, changed := range recapChanges(t, out) {
			if changed != 0 {
				t.Errorf("re-run changed %d things on %s:\n%s", changed, host, out)
			}
		}
		// Re-applying the add-ons is a server-side dry run that finds
		// nothing to change.
		d := stepDuration(t, clusterDir, "addons")
		t.Logf("add-ons re-apply (plan, nothing changed): %s", d)
		if d > 5*time.Second {
			t.Errorf("re-applying the add-ons took %s, want <= 5s", d)
		}
	})

	t.Run("no secret in any output of the installs", func(t *testing.T) {
		seen := tokens.stop()
		// Two installs joined nodes, each with its own token.
		if len(seen) < 2 {
			t.Fatalf("the watch saw %d bootstrap token(s), want one per joining install (2)", len(seen))
		}
		secrets := clusterSecrets(t, clusterDir)
		for i, v := range seen {
			secrets = append(secrets, secret{fmt.Sprintf("bootstrap token secret #%d", i+1), v})
		}
		if key, err := os.ReadFile(l.KeyFile); err != nil {
			t.Fatal(err)
		} else if line := pemBodyLine(key); line != "" {
			secrets = append(secrets, secret{"the operator's SSH key", line})
		}
		for rel, data := range stateOutputs(t, clusterDir) {
			outputs["state "+rel] = data
		}
		for name, h := range hosts {
			log, err := run(ctx, h, "journalctl -u kubewright-agent --no-pager -o cat")
			if err != nil {
				t.Fatalf("agent log on %s: %v", name, err)
			}
			outputs["agent log on "+name] = []byte(log)
		}
		t.Logf("searched %d outputs for %d secrets", len(outputs), len(secrets))
		checkNoSecrets(t, secrets, outputs)
	})

	t.Run("a containerd config written by someone else is refused", func(t *testing.T) {
		w := workers[0]
		orig, err := run(ctx, hosts[w], "cat /etc/containerd/config.toml")
		if err != nil {
			t.Fatal(err)
		}
		foreign := "version = 2\n# tuned by the ops team\n"
		if _, err := hosts[w].Exec(ctx, "cat > /etc/containerd/config.toml", remote.WithStdin(strings.NewReader(foreign))); err != nil {
			t.Fatal(err)
		}
		out, code := nodesKW(t, ctx, stateDir, "install", "-i", invPath)
		if code == 0 || !strings.Contains(out, "/etc/containerd/config.toml on "+w+" was not written by kubewright") || !strings.Contains(out, "-# tuned by the ops team") {
			t.Errorf("foreign containerd config: exit %d\n%s", code, out)
		}
		now, _ := run(ctx, hosts[w], "cat /etc/containerd/config.toml")
		if now != foreign {
			t.Errorf("the refused config was changed:\n%s", now)
		}
		if _, err := hosts[w].Exec(ctx, "cat > /etc/containerd/config.toml", remote.WithStdin(strings.NewReader(orig))); err != nil {
			t.Fatal(err)
		}
	})
	checkAgent(t, ctx, &agentEnv{
		cs: cs, hosts: hosts, masters: masters, workers: workers, vip: l.VIP,
		pkiDir: filepath.Join(clusterDir, "pki"),
		status: func(ctx context.Context) (string, int) { return nodesKW(t, ctx, stateDir, "status", "-i", invPath) },
		agentLog: func(ctx context.Context, host string) string {
			out, _ := run(ctx, hosts[host], "journalctl -u kubewright-agent --no-pager -n 40; tail -n 20 /var/lib/kubewright-agent/journal.jsonl")
			return "==== agent on " + host + "\n" + out
		},
	})
	kwNodes := func(ctx context.Context, args ...string) (string, int) { return nodesKW(t, ctx, stateDir, args...) }
	checkRepair(t, ctx, cs, hosts[workers[0]], workers[0], invPath, kwNodes,
		func(t *testing.T) map[string][]string { return journalChanges(t, clusterDir, 1) })
	checkRemoveAndReadd(t, ctx, cs, hosts[w2], w2, invPath,
		func(ctx context.Context, args ...string) (string, int) { return nodesKW(t, ctx, stateDir, args...) },
		func(t *testing.T) {
			out, code := nodesKW(t, ctx, stateDir, "install", "-i", invPath)
			if code != 0 {
				t.Fatalf("install to re-join %s: exit %d:\n%s", w2, code, out)
			}
			for host, changes := range journalChanges(t, clusterDir, 5) {
				real := objectChanges(changes)
				if host != w2 && len(real) > 0 {
					t.Errorf("re-joining %s changed %s: %v", w2, host, real)
				}
			}
		})
}

// newestJournal returns the path and content of the cluster's newest run
// journal (run directories are named by their UTC start time).
func newestJournal(t *testing.T, clusterDir string) (string, []byte) {
	t.Helper()
	runs, err := filepath.Glob(filepath.Join(clusterDir, "runs", "*", "journal.json"))
	if err != nil || len(runs) == 0 {
		t.Fatalf("no journal in %s: %v", clusterDir, err)
	}
	sort.Strings(runs)
	b, err := os.ReadFile(runs[len(runs)-1])
	if err != nil {
		t.Fatal(err)
	}
	return runs[len(runs)-1], b
}

// stepDuration is the longest time step took on any host in the newest
// run's journal (steps such as addons act on one host and return at once
// on the others).
func stepDuration(t *testing.T, clusterDir, step string) time.Duration {
	t.Helper()
	path, b := newestJournal(t, clusterDir)
	var j struct {
		Hosts []struct {
			Steps []struct {
				Step     string `json:"step"`
				Status   string `json:"status"`
				Duration struct {
					Seconds float64 `json:"seconds"`
				} `json:"duration"`
			} `json:"steps"`
		} `json:"hosts"`
	}
	if err := json.Unmarshal(b, &j); err != nil {
		t.Fatal(err)
	}
	var longest time.Duration
	ran := false
	for _, h := range j.Hosts {
		for _, s := range h.Steps {
			if s.Step == step && s.Status != "skipped" {
				ran = true
				longest = max(longest, time.Duration(s.Duration.Seconds*float64(time.Second)))
			}
		}
	}
	if !ran {
		t.Fatalf("step %s did not run in %s", step, path)
	}
	return longest
}

// journalChanges reads the newest run's journal: host -> "step: action
// object" for every change a step planned and applied. It fails unless it
// lists want hosts (5: every lab host).
func journalChanges(t *testing.T, clusterDir string, want int) map[string][]string {
	t.Helper()
	path, b := newestJournal(t, clusterDir)
	var j struct {
		Hosts []struct {
			Name  string `json:"name"`
			Steps []struct {
				Step    string `json:"step"`
				Changes []struct {
					Action string `json:"action"`
					Object string `json:"object"`
				} `json:"changes"`
			} `json:"steps"`
		} `json:"hosts"`
	}
	if err := json.Unmarshal(b, &j); err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, h := range j.Hosts {
		got[h.Name] = nil
		for _, s := range h.Steps {
			for _, c := range s.Changes {
				got[h.Name] = append(got[h.Name], s.Step+": "+c.Action+" "+c.Object)
			}
		}
	}
	if len(got) != want {
		t.Fatalf("journal %s lists %d hosts, want %d", path, len(got), want)
	}
	return got
}

// objectChanges drops the add-ons step's rollout waits, which change no
// object, from a host's journalChanges.
func objectChanges(changes []string) []string {
	var real []string
	for _, c := range changes {
		if !strings.HasPrefix(c, "addons: wait ") {
			real = append(real, c)
		}
	}
	return real
}

// recapChanges reads install's RECAP: host -> number of steps that changed
// something. It fails unless all 5 lab hosts are there.
func recapChanges(t *testing.T, out string) map[string]int {
	t.Helper()
	got := map[string]int{}
	for _, m := range regexp.MustCompile(`(?m)^(\S+)\s+: ok=\d+\s+changed=(\d+)`).FindAllStringSubmatch(out, -1) {
		var n int
		fmt.Sscan(m[2], &n)
		got[m[1]] = n
	}
	if len(got) != 5 {
		t.Fatalf("install recap lists %d hosts, want 5:\n%s", len(got), out)
	}
	return got
}
