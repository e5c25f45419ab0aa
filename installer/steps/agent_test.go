package steps

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubewright/kubewright/agent"
	"github.com/kubewright/kubewright/installer/engine"
	"github.com/kubewright/kubewright/installer/kube"
	"github.com/kubewright/kubewright/installer/steps/stepkit/stepkittest"
)

// agentBin writes a small stand-in for the kubewright-agent executable.
func agentBin(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "kubewright-agent")
	if err := os.WriteFile(p, []byte(content), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

type agentFixture struct {
	f    *cpFixture
	cs   *fake.Clientset
	bin  string
	step Agent
}

func newAgentFixture(t *testing.T) *agentFixture {
	t.Helper()
	a := &agentFixture{f: newCPFixture(t, cpInventory), cs: fake.NewClientset(), bin: agentBin(t, "#!/bin/sh\necho agent v1\n")}
	a.step = Agent{AgentBinary: a.bin, Client: func(context.Context, *engine.Target) (kubernetes.Interface, error) { return a.cs, nil }}
	return a
}

func planStrings(plan []engine.Change) []string {
	var out []string
	for _, c := range plan {
		out = append(out, c.String())
	}
	return out
}

func TestAgentConvergesOnFreshHost(t *testing.T) {
	ctx := context.Background()
	a := newAgentFixture(t)
	tg, _, root := a.f.target(t, "m1")
	plan, err := a.step.Plan(ctx, tg)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"apply " + agentRBACObject,
		"create /usr/local/bin/kubewright-agent (from " + a.bin + ")",
		"create /etc/kubewright/agent.kubeconfig (mode 0600)",
		"create /etc/kubewright/agent.yaml (mode 0644)",
		"create /etc/systemd/system/kubewright-agent.service (mode 0644)",
		"enable kubewright-agent.service",
		"start kubewright-agent.service (not active)",
	}
	if got := planStrings(plan); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("plan on a fresh host:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	converge(t, a.step, tg)

	// The RBAC is in place, pods and leases only in kube-system.
	if _, err := a.cs.RbacV1().ClusterRoleBindings().Get(ctx, kube.AgentRBACName, metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.cs.RbacV1().RoleBindings("kube-system").Get(ctx, kube.AgentRBACName, metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	}
	// The binary, byte for byte and executable.
	if got, _ := stepkittest.ReadFile(t, root, "/usr/local/bin/kubewright-agent"); got != "#!/bin/sh\necho agent v1\n" {
		t.Fatalf("binary on the host: %q", got)
	}
	if st, err := os.Stat(filepath.Join(root, "usr/local/bin/kubewright-agent")); err != nil || st.Mode().Perm() != 0o755 {
		t.Fatalf("binary mode: %v %v", st, err)
	}
	// agent.yaml is what the agent itself loads.
	cfg, err := agent.LoadConfig(filepath.Join(root, "etc/kubewright/agent.yaml"))
	if err != nil {
		t.Fatalf("the agent refuses the installed config: %v", err)
	}
	e := cfg.Endpoints
	for _, c := range []struct{ name, got, want string }{
		{"nodeName", cfg.NodeName, "m1"},
		{"role", cfg.Role, "master"},
		{"kubeconfig", cfg.Kubeconfig, "/etc/kubewright/agent.kubeconfig"},
		{"vip", e.VIP, "10.20.0.100"},
		{"vipInterface", e.VIPInterface, "eth0"},
		{"apiserverReadyz", e.APIServerReadyz, "https://127.0.0.1:6443/readyz"},
		{"etcdEndpoint", e.EtcdEndpoint, "https://10.20.0.11:2379"},
		{"etcdCert", e.EtcdCert, "/etc/kubernetes/pki/etcd/healthcheck-client.crt"},
		{"etcdKey", e.EtcdKey, "/etc/kubernetes/pki/etcd/healthcheck-client.key"},
		{"etcdCACert", e.EtcdCACert, "/etc/kubernetes/pki/etcd/ca.crt"},
		{"caCert", e.CACert, "/etc/kubernetes/pki/ca.crt"},
		{"clusterDNS", e.ClusterDNS, "10.96.0.10"},
		{"haproxyFrontend", e.HAProxyFrontend, "127.0.0.1:8443"},
		{"peers", strings.Join(cfg.Peers, ","), "10.20.0.12:10250,10.20.0.13:10250"},
		{"etcdMembers", strings.Join(e.EtcdMembers, ","), "https://10.20.0.11:2379,https://10.20.0.12:2379,https://10.20.0.13:2379"},
	} {
		if c.got != c.want {
			t.Errorf("agent.yaml %s = %q, want %q", c.name, c.got, c.want)
		}
	}
	// A master's kubeconfig goes through its own haproxy (not the VIP,
	// whose repair needs the API) with the node's own certificate.
	kc, _ := stepkittest.ReadFile(t, root, "/etc/kubewright/agent.kubeconfig")
	if !strings.Contains(kc, "server: https://127.0.0.1:8443") || !strings.Contains(kc, "client-certificate-data:") {
		t.Fatalf("agent kubeconfig:\n%s", kc)
	}
	if st, _ := os.Stat(filepath.Join(root, "etc/kubewright/agent.kubeconfig")); st.Mode().Perm() != 0o600 {
		t.Fatalf("kubeconfig mode %o", st.Mode().Perm())
	}
	cert := readAgentCert(t, a.f.stateDir, "m1")
	if cert.Subject.CommonName != "kubewright:agent:m1" || strings.Join(cert.Subject.Organization, ",") != "kubewright:agents" || cert.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth {
		t.Fatalf("agent certificate subject %+v usages %v", cert.Subject, cert.ExtKeyUsage)
	}
	if st, _ := os.Stat(filepath.Join(PKIDir(a.f.stateDir), "agents", "m1.key")); st.Mode().Perm() != 0o600 {
		t.Fatalf("key mode %o", st.Mode().Perm())
	}
	unit, _ := stepkittest.ReadFile(t, root, "/etc/systemd/system/kubewright-agent.service")
	for _, w := range []string{"Type=notify", "NotifyAccess=main", "WatchdogSec=30s", "Restart=always", "RestartSec=5", "MemoryMax=64M", "After=network-online.target kubelet.service", "--config=/etc/kubewright/agent.yaml"} {
		if !strings.Contains(unit, w) {
			t.Errorf("unit lacks %s", w)
		}
	}

	// Another node gets its own certificate; m1's is not re-issued.
	before, _ := os.ReadFile(filepath.Join(PKIDir(a.f.stateDir), "agents", "m1.crt"))
	tgw, _, rootw := a.f.target(t, "w1")
	wplan := converge(t, a.step, tgw)
	if got := planStrings(wplan); strings.Contains(strings.Join(got, "\n"), "apply RBAC") {
		t.Errorf("RBAC planned again on the second node: %v", got)
	}
	if readAgentCert(t, a.f.stateDir, "w1").Subject.CommonName != "kubewright:agent:w1" {
		t.Fatal("w1 does not have its own agent certificate")
	}
	after, _ := os.ReadFile(filepath.Join(PKIDir(a.f.stateDir), "agents", "m1.crt"))
	if string(before) != string(after) {
		t.Fatal("m1's agent certificate re-issued while installing w1")
	}
	wcfg, err := agent.LoadConfig(filepath.Join(rootw, "etc/kubewright/agent.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if wcfg.Role != "worker" || wcfg.Endpoints.EtcdEndpoint != "" || wcfg.Endpoints.APIServerReadyz != "" || wcfg.Endpoints.HAProxyFrontend != "" {
		t.Fatalf("worker config: %+v", wcfg)
	}
}

func readAgentCert(t *testing.T, stateDir, node string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(PKIDir(stateDir), "agents", node+".crt"))
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// What changed decides what is planned: one file and a restart, never the
// whole set; the operator's policy in agent.yaml is not a change at all.
func TestAgentPlansOnlyWhatChanged(t *testing.T) {
	ctx := context.Background()
	a := newAgentFixture(t)
	tg, _, root := a.f.target(t, "w1")
	converge(t, a.step, tg)
	const conf = "/etc/kubewright/agent.yaml"
	orig, _ := stepkittest.ReadFile(t, root, conf)

	plan := func() []string {
		t.Helper()
		p, err := a.step.Plan(ctx, tg)
		if err != nil {
			t.Fatal(err)
		}
		return planStrings(p)
	}
	t.Run("a fact edited on the host", func(t *testing.T) {
		writeRootFile(t, root, conf, strings.Replace(orig, "vip: 10.20.0.100", "vip: 10.20.0.99", 1))
		got := plan()
		want := []string{"update /etc/kubewright/agent.yaml (content differs)", "restart kubewright-agent.service (/etc/kubewright/agent.yaml changed)"}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("plan:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		p, _ := a.step.Plan(ctx, tg)
		if err := a.step.Apply(ctx, tg, p); err != nil {
			t.Fatal(err)
		}
		if again := plan(); len(again) != 0 {
			t.Fatalf("plan after apply: %v", again)
		}
	})
	t.Run("the operator's report-only is kept", func(t *testing.T) {
		writeRootFile(t, root, conf, strings.Replace(orig, "mode: repair", "mode: report-only", 1))
		if got := plan(); len(got) != 0 {
			t.Fatalf("plan after setting report-only: %v", got)
		}
	})
	t.Run("an agent.yaml the agent would refuse stops the plan", func(t *testing.T) {
		writeRootFile(t, root, conf, orig+"mdoe: report-only\n")
		_, err := a.step.Plan(ctx, tg)
		if err == nil || !strings.Contains(err.Error(), "/etc/kubewright/agent.yaml on w1") || !strings.Contains(err.Error(), "mdoe") {
			t.Fatalf("err = %v", err)
		}
		writeRootFile(t, root, conf, orig)
	})
	t.Run("a new binary", func(t *testing.T) {
		if err := os.WriteFile(a.bin, []byte("#!/bin/sh\necho agent v2\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		// A new mtime even on coarse clocks, so the run's cache sees it.
		if err := os.Chtimes(a.bin, time.Now(), time.Now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		got := plan()
		want := []string{"update /usr/local/bin/kubewright-agent (sha256 differs from " + a.bin + ")", "restart kubewright-agent.service (binary changed)"}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("plan:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})
	t.Run("a certificate within 30 days of expiry", func(t *testing.T) {
		a := *a
		a.step.Now = func() time.Time { return time.Now().Add(340 * 24 * time.Hour) }
		old := readAgentCert(t, a.f.stateDir, "w1")
		p, err := a.step.Plan(ctx, tg)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(strings.Join(planStrings(p), "\n"), "update /etc/kubewright/agent.kubeconfig (content differs)") {
			t.Fatalf("plan near expiry: %v", planStrings(p))
		}
		if renewed := readAgentCert(t, a.f.stateDir, "w1"); !renewed.NotAfter.After(old.NotAfter) {
			t.Fatalf("certificate not renewed: %s -> %s", old.NotAfter, renewed.NotAfter)
		}
	})
}

func TestAgentBinaryErrors(t *testing.T) {
	ctx := context.Background()
	a := newAgentFixture(t)
	tg, _, _ := a.f.target(t, "w1")

	// No binary beside kubewright (this test binary's directory).
	s := a.step
	s.AgentBinary = ""
	exe, _ := os.Executable()
	exe, _ = filepath.EvalSymlinks(exe)
	_, err := s.Plan(ctx, tg)
	for _, w := range []string{filepath.Join(filepath.Dir(exe), "kubewright-agent"), "expected beside the kubewright executable", "no such file", "run `make build`", "--agent-binary"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("err = %v, want it to contain %q", err, w)
		}
	}
	// The run's --agent-binary, missing.
	tg.Shared = engine.NewSharedData()
	tg.Shared.Set(SharedAgentBinary, "/nonexistent/kubewright-agent")
	_, err = s.Plan(ctx, tg)
	if err == nil || !strings.Contains(err.Error(), "kubewright-agent /nonexistent/kubewright-agent (given by --agent-binary): no such file") {
		t.Errorf("err = %v", err)
	}
	// A binary for another machine. The test binary is an ELF for this one.
	for _, tc := range []struct{ bin, arch, want string }{
		{a.bin, "x86_64", "is not a Linux executable, but w1 is x86_64 (linux/amd64); fix: build it for the nodes (GOOS=linux GOARCH=amd64 make build)"},
		{exe, otherArch(), "is built for "},
	} {
		s := a.step
		s.AgentBinary = tc.bin
		tg.Facts = &engine.Facts{Arch: tc.arch}
		_, err := s.Plan(ctx, tg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s on %s: err = %v, want %q", tc.bin, tc.arch, err, tc.want)
		}
	}
	tg.Facts = &engine.Facts{Arch: thisArch()}
	s.AgentBinary = exe
	if _, err := s.Plan(ctx, tg); err != nil && strings.Contains(err.Error(), "built for") {
		t.Errorf("a binary for this machine refused: %v", err)
	}
	// What install checks against the artifacts' architecture.
	if err := CheckAgentBinary(exe, runtime.GOARCH); err != nil {
		t.Errorf("CheckAgentBinary(test binary, %s): %v", runtime.GOARCH, err)
	}
	if err := CheckAgentBinary(a.bin, "arm64"); err == nil || !strings.Contains(err.Error(), "is not a Linux executable, but the artifacts are for arm64") {
		t.Errorf("CheckAgentBinary(script, arm64): %v", err)
	}
	if _, err := newAgent(map[string]string{"bianry": "x"}); err == nil || !strings.Contains(err.Error(), "unknown parameter(s) bianry") {
		t.Errorf("typo in a parameter: %v", err)
	}
}

// thisArch and otherArch are uname -m names for the test machine and one it
// is not.
func thisArch() string {
	for uname, goarch := range goarchByUname {
		if goarch == runtime.GOARCH && uname != "arm64" && uname != "armv6l" {
			return uname
		}
	}
	return runtime.GOARCH
}

func otherArch() string {
	if thisArch() == "aarch64" {
		return "x86_64"
	}
	return "aarch64"
}

// kube reads the agent's conditions without importing the agent: the two
// prefixes must not drift apart.
func TestAgentConditionPrefixMatches(t *testing.T) {
	if kube.AgentConditionPrefix != agent.ConditionPrefix {
		t.Fatalf("kube.AgentConditionPrefix %q != agent.ConditionPrefix %q", kube.AgentConditionPrefix, agent.ConditionPrefix)
	}
}
