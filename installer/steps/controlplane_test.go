package steps

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/kubewright/kubewright/installer/engine"
	"github.com/kubewright/kubewright/installer/inventory"
	"github.com/kubewright/kubewright/installer/pki"
	"github.com/kubewright/kubewright/installer/steps/stepkit/stepkittest"
)

const cpInventory = `apiVersion: kubewright.io/v1alpha1
kind: Cluster
metadata: {name: cp}
spec:
  hosts:
    - {name: "m[1:3]", address: "10.20.0.[11:13]"}
    - {name: w1, address: 10.20.0.21}
  groups:
    masters: ["m[1:3]"]
    workers: [w1]
  controlPlaneEndpoint: {vip: 10.20.0.100, interface: eth0}
`

// fakeSystemd is a systemctl that keeps unit state in files, and a curl that
// answers /readyz, so steps run their real shell commands against them.
const fakeSystemctlScript = `d=$(dirname "$0")/../systemd-state; mkdir -p "$d"; echo "$*" >> "$d/log"
[ "$1" = "--no-block" ] && shift
case "$1" in
is-enabled) if [ -e "$d/enabled-$2" ]; then echo enabled; else echo disabled; exit 1; fi ;;
is-active) if [ -e "$d/active-$2" ]; then echo active; else echo inactive; exit 3; fi ;;
enable) touch "$d/enabled-$2" ;;
start|restart) [ "$2" = --no-block ] && shift; touch "$d/active-$2" ;;
daemon-reload) ;;
*) exit 1 ;;
esac`

type cpFixture struct {
	cluster  *inventory.Cluster
	stateDir string
}

func newCPFixture(t *testing.T, yaml string) *cpFixture {
	t.Helper()
	c, _, err := inventory.Parse("inv.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	f := &cpFixture{cluster: c, stateDir: state}
	f.ensurePKI(t)
	if err := EnsureClusterSecrets(state); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *cpFixture) ensurePKI(t *testing.T) {
	t.Helper()
	spec, err := pki.SpecFromCluster(f.cluster)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pki.NewStore(PKIDir(f.stateDir), nil).EnsureAll(spec); err != nil {
		t.Fatal(err)
	}
}

func (f *cpFixture) target(t *testing.T, host string) (*engine.Target, *stepkittest.Host, string) {
	t.Helper()
	tg, h, root := stepkittest.NewTarget(t, host, &engine.Facts{OSFamily: "debian"})
	stepkittest.FakeTool(t, root, "systemctl", fakeSystemctlScript)
	stepkittest.FakeTool(t, root, "curl", `echo ok`)
	h.Env = []string{"PATH=" + root + "/bin:" + os.Getenv("PATH")}
	tg.Cluster = f.cluster
	tg.Inv = f.cluster.Host(host)
	tg.StateDir = f.stateDir
	return tg, h, root
}

func actions(plan []engine.Change) []string {
	var out []string
	for _, c := range plan {
		if c.Action != "create" && c.Action != "update" {
			out = append(out, c.Action+" "+c.Object)
		}
	}
	return out
}

// converge plans and applies a step, then checks that a second plan is empty:
// the property that makes re-running install a no-op.
func converge(t *testing.T, s engine.Step, tg *engine.Target) []engine.Change {
	t.Helper()
	ctx := context.Background()
	plan, err := s.Plan(ctx, tg)
	if err != nil {
		t.Fatalf("%s plan: %v", s.Name(), err)
	}
	if len(plan) == 0 {
		t.Fatalf("%s: first plan is empty", s.Name())
	}
	if err := s.Apply(ctx, tg, plan); err != nil {
		t.Fatalf("%s apply: %v", s.Name(), err)
	}
	again, err := s.Plan(ctx, tg)
	if err != nil {
		t.Fatal(err)
	}
	if len(again) != 0 {
		t.Fatalf("%s: plan after apply is not empty: %v", s.Name(), again)
	}
	return plan
}

func TestEtcdStepConvergesAndRestartsOnlyOnChange(t *testing.T) {
	f := newCPFixture(t, cpInventory)
	tg, _, root := f.target(t, "m2")
	plan := converge(t, Etcd{}, tg)
	if got := strings.Join(actions(plan), ","); got != "enable etcd.service,start etcd.service" {
		t.Fatalf("etcd actions = %s", got)
	}
	unit, _ := stepkittest.ReadFile(t, root, "/etc/systemd/system/etcd.service")
	for _, want := range []string{"--name=m2", "--initial-cluster=m1=https://10.20.0.11:2380,m2=https://10.20.0.12:2380,m3=https://10.20.0.13:2380", "--client-cert-auth=true", "--peer-client-cert-auth=true"} {
		if !strings.Contains(unit, want) {
			t.Errorf("etcd unit lacks %s", want)
		}
	}
	for _, p := range []string{"/etc/kubernetes/pki/etcd/ca.crt", "/etc/kubernetes/pki/etcd/server.key", "/etc/kubernetes/pki/etcd/peer.crt"} {
		if _, ok := stepkittest.ReadFile(t, root, p); !ok {
			t.Errorf("%s not written", p)
		}
	}
	if _, ok := stepkittest.ReadFile(t, root, "/etc/kubernetes/pki/etcd/ca.key"); ok {
		t.Error("the etcd CA key must stay on the operator's machine")
	}
	log, _ := stepkittest.ReadFile(t, root, "/systemd-state/log")
	if !strings.Contains(log, "start --no-block etcd.service") {
		t.Errorf("etcd must start without blocking on quorum; systemctl log:\n%s", log)
	}
}

func TestControlPlaneRestartsOnlyWhatChanged(t *testing.T) {
	f := newCPFixture(t, cpInventory)
	tg, _, root := f.target(t, "m1")
	plan := converge(t, ControlPlane{}, tg)
	want := "enable kube-apiserver.service,start kube-apiserver.service,enable kube-controller-manager.service,start kube-controller-manager.service,enable kube-scheduler.service,start kube-scheduler.service"
	if got := strings.Join(actions(plan), ","); got != want {
		t.Fatalf("actions = %s\nwant %s", got, want)
	}
	enc, _ := stepkittest.ReadFile(t, root, "/etc/kubernetes/encryption-config.yaml")
	if !strings.Contains(enc, "aescbc") {
		t.Fatal("encryption config not written")
	}
	api, _ := stepkittest.ReadFile(t, root, "/etc/systemd/system/kube-apiserver.service")
	for _, w := range []string{"--etcd-servers=https://10.20.0.11:2379,https://10.20.0.12:2379,https://10.20.0.13:2379", "--advertise-address=10.20.0.11", "--secure-port=6443", "--encryption-provider-config="} {
		if !strings.Contains(api, w) {
			t.Errorf("apiserver unit lacks %s", w)
		}
	}
	// Only the scheduler reads scheduler.conf: tampering with it restarts
	// the scheduler and nothing else.
	stepkittest.WriteFile(t, root, "/etc/kubernetes/scheduler.conf", "edited by hand\n", 0o600)
	plan, err := ControlPlane{}.Plan(context.Background(), tg)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(actions(plan), ","); got != "restart kube-scheduler.service" {
		t.Fatalf("after editing scheduler.conf: %s", got)
	}
}

func TestAddingAMasterChangesEtcdAndAPIServerConfig(t *testing.T) {
	f := newCPFixture(t, cpInventory)
	tg, _, _ := f.target(t, "m1")
	converge(t, ControlPlane{}, tg)
	grown := strings.Replace(cpInventory, `"m[1:3]", address: "10.20.0.[11:13]"`, `"m[1:4]", address: "10.20.0.[11:14]"`, 1)
	grown = strings.Replace(grown, `masters: ["m[1:3]"]`, `masters: ["m[1:4]"]`, 1)
	c, _, err := inventory.Parse("inv.yaml", []byte(grown))
	if err != nil {
		t.Fatal(err)
	}
	f.cluster = c
	f.ensurePKI(t)
	tg.Cluster, tg.Inv = c, c.Host("m1")
	plan, err := ControlPlane{}.Plan(context.Background(), tg)
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, ch := range plan {
		if ch.Action == "update" {
			files = append(files, ch.Object)
		}
	}
	got := strings.Join(files, ",")
	if !strings.Contains(got, "/etc/kubernetes/pki/apiserver.crt") || !strings.Contains(got, "kube-apiserver.service") {
		t.Fatalf("a new master must re-issue the apiserver cert and add the etcd member to the unit; updates: %s", got)
	}
	if strings.Contains(strings.Join(actions(plan), ","), "restart kube-scheduler") {
		t.Fatalf("the scheduler does not depend on the new master: %v", actions(plan))
	}
}

func TestKeepalivedPrioritiesAndPassword(t *testing.T) {
	f := newCPFixture(t, cpInventory)
	pass, err := os.ReadFile(SecretsDir(f.stateDir) + "/vrrp-auth-pass")
	if err != nil || len(pass) != 8 {
		t.Fatalf("generated VRRP password %q: %v", pass, err)
	}
	for host, prio := range map[string]string{"m1": "priority 150", "m3": "priority 130"} {
		tg, _, root := f.target(t, host)
		converge(t, Keepalived{}, tg)
		conf, _ := stepkittest.ReadFile(t, root, "/etc/keepalived/keepalived.conf")
		if !strings.Contains(conf, prio) || !strings.Contains(conf, "auth_pass "+string(pass)) || !strings.Contains(conf, "10.20.0.100/24 dev eth0") {
			t.Fatalf("%s keepalived.conf:\n%s", host, conf)
		}
	}
	f.cluster.Spec.ControlPlaneEndpoint.AuthPassEnv = "KW_TEST_UNSET_VRRP_PASS"
	tg, _, _ := f.target(t, "m1")
	_, err = Keepalived{}.Plan(context.Background(), tg)
	if err == nil || !strings.Contains(err.Error(), "KW_TEST_UNSET_VRRP_PASS, which is not set") {
		t.Fatalf("unset authPassEnv: %v", err)
	}
	tgw, _, _ := f.target(t, "w1")
	if _, err := (Keepalived{}).Plan(context.Background(), tgw); err == nil || !strings.Contains(err.Error(), "masters only") {
		t.Fatalf("keepalived on a worker: %v", err)
	}
}

func TestHAProxyConverges(t *testing.T) {
	f := newCPFixture(t, cpInventory)
	tg, _, root := f.target(t, "m2")
	converge(t, HAProxy{}, tg)
	cfg, _ := stepkittest.ReadFile(t, root, "/etc/haproxy/haproxy.cfg")
	if !strings.Contains(cfg, "bind *:8443") || !strings.Contains(cfg, "server m3 10.20.0.13:6443") {
		t.Fatalf("haproxy.cfg:\n%s", cfg)
	}
}

func TestEnsureClusterSecretsKeepsExistingKey(t *testing.T) {
	dir := t.TempDir()
	if err := EnsureClusterSecrets(dir); err != nil {
		t.Fatal(err)
	}
	key1, _ := os.ReadFile(SecretsDir(dir) + "/" + encryptionKeyFile)
	if err := EnsureClusterSecrets(dir); err != nil {
		t.Fatal(err)
	}
	key2, _ := os.ReadFile(SecretsDir(dir) + "/" + encryptionKeyFile)
	if len(key1) != 32 || string(key1) != string(key2) {
		t.Fatal("the Secrets encryption key must be generated once and never replaced")
	}
	st, _ := os.Stat(SecretsDir(dir) + "/" + encryptionKeyFile)
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("key mode %o", st.Mode().Perm())
	}
}
