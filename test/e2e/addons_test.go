//go:build e2e

// Add-on variants (issue 6) that cannot run for real here: Calico and Weave
// images cannot be built from Go modules, and neither can kube-dns or
// NodeLocal DNSCache. Each variant is installed on a fresh one-master lab, so
// the real API server must accept every object (CRDs Established, no apply
// error); install then fails, as it should, because the pods cannot start,
// and the test asserts that the failure names the objects and why. The live
// objects carry the rendered pod CIDR, MTU and encapsulation.
package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/kubewright/kubewright/installer/kube"
	"github.com/kubewright/kubewright/installer/lab"
)

const addonVariantTimeout = 15 * time.Minute

// addonLab is a fresh one-master lab and the inventory to install on it.
type addonLab struct {
	lab      *lab.Lab
	stateDir string
	inv      string
}

// pullGuard is the registry the variants' inventories name: the images this
// lab cannot build are then pulled from the machine's own loopback, which
// refuses at once, so no pull ever leaves the lab for a public registry. It
// also proves the registry override reaches the live objects.
const pullGuard = "127.0.0.1:1"

// newAddonLab boots a one-master lab and writes its inventory with network
// replaced by the given YAML block (indented for spec) and the registry
// mirror set to pullGuard.
func newAddonLab(t *testing.T, ctx context.Context, name, network string) *addonLab {
	t.Helper()
	m, l := newLab(t, ctx, name, 1, 0)
	a := &addonLab{lab: l, stateDir: filepath.Dir(filepath.Dir(m.Dir(l.Name)))}
	b, err := os.ReadFile(l.Inventory)
	if err != nil {
		t.Fatal(err)
	}
	const labNetwork = "  network:\n    plugin: flannel\n"
	if !strings.Contains(string(b), labNetwork) {
		t.Fatalf("lab inventory has no %q block:\n%s", labNetwork, b)
	}
	a.inv = filepath.Join(t.TempDir(), "inventory.yaml")
	network += "  registryMirror: http://" + pullGuard + "\n"
	if err := os.WriteFile(a.inv, []byte(strings.Replace(string(b), labNetwork, network, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			a.dump(t)
		}
	})
	return a
}

func (a *addonLab) adminConf(t *testing.T) string {
	return filepath.Join(a.stateDir, "clusters", a.lab.Name, "pki", "admin.conf")
}

func (a *addonLab) clients(t *testing.T) (kubernetes.Interface, dynamic.Interface) {
	t.Helper()
	b, err := os.ReadFile(a.adminConf(t))
	if err != nil {
		t.Fatal(err)
	}
	c, err := kube.NewClient(b)
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	return c.Clientset, dyn
}

func (a *addonLab) dump(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	kubectl := filepath.Join(artifactsDir(t), "bin", "kubectl")
	out, err := exec.CommandContext(ctx, kubectl, "--kubeconfig", a.adminConf(t), "get", "nodes,all,crd", "-A", "-o", "wide").CombinedOutput()
	t.Logf("==== kubectl get nodes,all,crd -A (%v)\n%s", err, out)
	out, err = exec.CommandContext(ctx, kubectl, "--kubeconfig", a.adminConf(t), "get", "events", "-A").CombinedOutput()
	t.Logf("==== kubectl get events -A (%v)\n%s", err, out)
}

// installExpectingPods runs install, which must get every object accepted and
// then fail only because the named workloads' pods cannot start here.
func (a *addonLab) installExpectingPods(t *testing.T, ctx context.Context, workloads ...string) kwResult {
	t.Helper()
	r := kw(t, ctx, a.stateDir, "install", "-i", a.inv, "--addons-timeout", "40s")
	if r.code != 1 {
		t.Fatalf("install exit %d, want 1 (the add-on pods cannot start without their images):\n%s", r.code, r.out)
	}
	for _, w := range workloads {
		if !strings.Contains(r.out, "kube-system/"+w+" not ready after") {
			t.Errorf("install's failure does not name %s as not ready:\n%s", w, r.out)
		}
	}
	// The reason comes from the pods: the images cannot be pulled.
	if !strings.Contains(r.out, "ImagePullBackOff") && !strings.Contains(r.out, "ErrImagePull") {
		t.Errorf("install's failure does not say the images cannot be pulled:\n%s", r.out)
	}
	lines := strings.Split(strings.TrimSpace(r.out), "\n")
	t.Logf("install failed as expected after %s; its last lines:\n%s", r.duration.Round(time.Second), strings.Join(lines[max(0, len(lines)-12):], "\n"))
	if m := regexp.MustCompile(`add-on [a-z-]+: apply [A-Z]\S* \S+`).FindString(r.out); m != "" {
		t.Errorf("the API server refused an object (%s):\n%s", m, r.out)
	}
	for _, bad := range []string{"is invalid", "no matches for kind", "not Established"} {
		if strings.Contains(r.out, bad) {
			t.Errorf("an object was refused by the API server (%q):\n%s", bad, r.out)
		}
	}
	return r
}

func envOf(t *testing.T, ds *appsv1.DaemonSet, container, name string) string {
	t.Helper()
	for _, c := range ds.Spec.Template.Spec.Containers {
		if c.Name != container {
			continue
		}
		for _, e := range c.Env {
			if e.Name == name {
				return e.Value
			}
		}
	}
	t.Errorf("DaemonSet %s: container %s has no env %s", ds.Name, container, name)
	return ""
}

// checkImagesFrom asserts every container of ds runs an image from registry
// (the inventory's registry override).
func checkImagesFrom(t *testing.T, ds *appsv1.DaemonSet, registry string) {
	t.Helper()
	spec := ds.Spec.Template.Spec
	for _, c := range append(spec.InitContainers, spec.Containers...) {
		if !strings.HasPrefix(c.Image, registry+"/") {
			t.Errorf("DaemonSet %s container %s image %s, want one from the registry override %s", ds.Name, c.Name, c.Image, registry)
		}
	}
}

func checkKubeDNSService(t *testing.T, ctx context.Context, cs kubernetes.Interface) {
	t.Helper()
	svc, err := cs.CoreV1().Services("kube-system").Get(ctx, "kube-dns", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if svc.Spec.ClusterIP != "10.96.0.10" {
		t.Errorf("kube-dns Service ClusterIP %s, want 10.96.0.10", svc.Spec.ClusterIP)
	}
}

func TestAddonsCalicoAndKubeDNS(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), addonVariantTimeout)
	defer cancel()
	a := newAddonLab(t, ctx, "calic", "  network:\n    plugin: calico\n    podCIDR: 10.245.0.0/16\n    mtu: 1400\n    encapsulation: ipip\n  dns:\n    provider: kube-dns\n")
	a.installExpectingPods(t, ctx, "calico-node", "kube-dns")
	cs, dyn := a.clients(t)

	t.Run("every Calico CRD is Established", func(t *testing.T) {
		crds, err := dyn.Resource(schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, u := range crds.Items {
			var crd struct {
				Spec struct {
					Group string `json:"group"`
				} `json:"spec"`
				Status struct {
					Conditions []struct{ Type, Status string } `json:"conditions"`
				} `json:"status"`
			}
			b, _ := json.Marshal(u.Object)
			if err := json.Unmarshal(b, &crd); err != nil {
				t.Fatal(err)
			}
			if crd.Spec.Group != "crd.projectcalico.org" {
				continue
			}
			n++
			established := false
			for _, c := range crd.Status.Conditions {
				established = established || (c.Type == "Established" && c.Status == "True")
			}
			if !established {
				t.Errorf("CRD %s not Established: %+v", u.GetName(), crd.Status.Conditions)
			}
		}
		if n < 10 {
			t.Errorf("%d Calico CRDs in the cluster, want all of calico.yaml's", n)
		}
	})

	t.Run("live calico objects carry the pod CIDR, MTU and encapsulation", func(t *testing.T) {
		ds, err := cs.AppsV1().DaemonSets("kube-system").Get(ctx, "calico-node", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		checkImagesFrom(t, ds, pullGuard)
		if got := envOf(t, ds, "calico-node", "CALICO_IPV4POOL_CIDR"); got != "10.245.0.0/16" {
			t.Errorf("CALICO_IPV4POOL_CIDR %q", got)
		}
		if got := envOf(t, ds, "calico-node", "CALICO_IPV4POOL_IPIP"); got != "Always" {
			t.Errorf("CALICO_IPV4POOL_IPIP %q, want Always for encapsulation ipip", got)
		}
		if got := envOf(t, ds, "calico-node", "CALICO_IPV4POOL_VXLAN"); got != "Never" {
			t.Errorf("CALICO_IPV4POOL_VXLAN %q, want Never for encapsulation ipip", got)
		}
		cm, err := cs.CoreV1().ConfigMaps("kube-system").Get(ctx, "calico-config", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if cm.Data["veth_mtu"] != "1400" || cm.Data["calico_backend"] != "bird" {
			t.Errorf("calico-config veth_mtu %q calico_backend %q, want 1400 and bird", cm.Data["veth_mtu"], cm.Data["calico_backend"])
		}
		for _, v := range ds.Spec.Template.Spec.Volumes {
			if v.Name == "cni-bin-dir" && (v.HostPath == nil || v.HostPath.Path != "/usr/lib/cni") {
				t.Errorf("calico installs its CNI plugins into %+v, want containerd's bin_dir /usr/lib/cni", v.HostPath)
			}
		}
	})

	t.Run("kube-dns is the DNS Service at the 10th service address", func(t *testing.T) {
		checkKubeDNSService(t, ctx, cs)
		if _, err := cs.AppsV1().Deployments("kube-system").Get(ctx, "kube-dns", metav1.GetOptions{}); err != nil {
			t.Errorf("kube-dns Deployment: %v", err)
		}
		if _, err := cs.AppsV1().Deployments("kube-system").Get(ctx, "coredns", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("coredns Deployment exists although dns.provider is kube-dns (err %v)", err)
		}
	})

	t.Run("changing the network plugin is refused and changes nothing", func(t *testing.T) {
		b, err := os.ReadFile(a.inv)
		if err != nil {
			t.Fatal(err)
		}
		weave := filepath.Join(t.TempDir(), "weave.yaml")
		if err := os.WriteFile(weave, []byte(strings.Replace(string(b), "plugin: calico", "plugin: weave", 1)), 0o600); err != nil {
			t.Fatal(err)
		}
		r := kw(t, ctx, a.stateDir, "install", "-i", weave, "--addons-timeout", "20s")
		if r.code != 1 || !strings.Contains(r.out, "spec.network.plugin is weave, but this cluster runs calico") || !strings.Contains(r.out, "fix: set spec.network.plugin: calico again") {
			t.Errorf("plugin switch: exit %d\n%s", r.code, r.out)
		}
		if _, err := cs.AppsV1().DaemonSets("kube-system").Get(ctx, "weave-net", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("weave-net exists after a refused switch (err %v)", err)
		}
		if _, err := cs.AppsV1().DaemonSets("kube-system").Get(ctx, "calico-node", metav1.GetOptions{}); err != nil {
			t.Errorf("calico-node after a refused switch: %v", err)
		}
	})
}

func TestAddonsWeaveAndNodeLocalDNS(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), addonVariantTimeout)
	defer cancel()
	const password = "e2e-weave-Pa55word-not-for-logs"
	t.Setenv("KW_E2E_WEAVE_PASSWORD", password)
	a := newAddonLab(t, ctx, "weave", "  network:\n    plugin: weave\n    podCIDR: 10.246.0.0/16\n    mtu: 1300\n    weavePasswordEnv: KW_E2E_WEAVE_PASSWORD\n  dns:\n    nodeLocalDNS: true\n")
	r := a.installExpectingPods(t, ctx, "weave-net", "node-local-dns")
	cs, _ := a.clients(t)

	t.Run("live weave objects carry the pod CIDR, MTU and the password Secret", func(t *testing.T) {
		ds, err := cs.AppsV1().DaemonSets("kube-system").Get(ctx, "weave-net", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		checkImagesFrom(t, ds, pullGuard)
		if got := envOf(t, ds, "weave", "IPALLOC_RANGE"); got != "10.246.0.0/16" {
			t.Errorf("IPALLOC_RANGE %q", got)
		}
		if got := envOf(t, ds, "weave", "WEAVE_MTU"); got != "1300" {
			t.Errorf("WEAVE_MTU %q", got)
		}
		var ref *corev1.SecretKeySelector
		for _, c := range ds.Spec.Template.Spec.Containers {
			for _, e := range c.Env {
				if e.Name == "WEAVE_PASSWORD" && e.ValueFrom != nil {
					ref = e.ValueFrom.SecretKeyRef
				}
			}
		}
		if ref == nil {
			t.Fatal("weave container has no WEAVE_PASSWORD from a Secret")
		}
		sec, err := cs.CoreV1().Secrets("kube-system").Get(ctx, ref.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if string(sec.Data[ref.Key]) != password {
			t.Errorf("Secret %s key %s does not hold the inventory's password", ref.Name, ref.Key)
		}
	})

	t.Run("the Weave password appears in no output, journal or log", func(t *testing.T) {
		encoded := base64.StdEncoding.EncodeToString([]byte(password))
		if strings.Contains(r.out, password) || strings.Contains(r.out, encoded) {
			t.Errorf("install printed the Weave password")
		}
		runs := filepath.Join(a.stateDir, "clusters", a.lab.Name, "runs")
		err := filepath.Walk(runs, func(p string, info os.FileInfo, err error) error {
			if err != nil || info.IsDir() {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if strings.Contains(string(b), password) || strings.Contains(string(b), encoded) {
				t.Errorf("%s contains the Weave password (or its base64)", p)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})

	t.Run("NodeLocal DNSCache listens on the link-local address and forwards to kube-dns", func(t *testing.T) {
		checkKubeDNSService(t, ctx, cs)
		ds, err := cs.AppsV1().DaemonSets("kube-system").Get(ctx, "node-local-dns", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// iptables mode: it answers on the link-local address and on the
		// kube-dns Service IP itself, and forwards misses to kube-dns'
		// pods through the kube-dns-upstream Service.
		args := strings.Join(ds.Spec.Template.Spec.Containers[0].Args, " ")
		if !strings.Contains(args, "-localip 169.254.20.10,10.96.0.10") || !strings.Contains(args, "-upstreamsvc kube-dns-upstream") {
			t.Errorf("node-local-dns args %q: want -localip 169.254.20.10,10.96.0.10 and -upstreamsvc kube-dns-upstream", args)
		}
		if _, err := cs.CoreV1().Services("kube-system").Get(ctx, "kube-dns-upstream", metav1.GetOptions{}); err != nil {
			t.Errorf("kube-dns-upstream Service: %v", err)
		}
		cm, err := cs.CoreV1().ConfigMaps("kube-system").Get(ctx, "node-local-dns", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if cf := cm.Data["Corefile"]; !strings.Contains(cf, "cluster.local") || strings.Contains(cf, "__PILLAR__DNS__DOMAIN__") {
			t.Errorf("node-local-dns Corefile not rendered:\n%s", cf)
		}
	})

	t.Run("switching NodeLocal DNSCache off prunes exactly its objects", func(t *testing.T) {
		b, err := os.ReadFile(a.inv)
		if err != nil {
			t.Fatal(err)
		}
		off := filepath.Join(t.TempDir(), "off.yaml")
		if err := os.WriteFile(off, []byte(strings.Replace(string(b), "nodeLocalDNS: true", "nodeLocalDNS: false", 1)), 0o600); err != nil {
			t.Fatal(err)
		}
		// weave-net still cannot start, so install fails after applying.
		r := kw(t, ctx, a.stateDir, "install", "-i", off, "--addons-timeout", "20s")
		if r.code != 1 || !strings.Contains(r.out, "weave-net") {
			t.Fatalf("install with nodeLocalDNS off: exit %d\n%s", r.code, r.out)
		}
		if _, err := cs.AppsV1().DaemonSets("kube-system").Get(ctx, "node-local-dns", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("node-local-dns DaemonSet still there after switching it off (err %v)", err)
		}
		if _, err := cs.CoreV1().ConfigMaps("kube-system").Get(ctx, "node-local-dns", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("node-local-dns ConfigMap still there after switching it off (err %v)", err)
		}
		if _, err := cs.CoreV1().Services("kube-system").Get(ctx, "kube-dns-upstream", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("kube-dns-upstream Service still there after switching NodeLocal DNSCache off (err %v)", err)
		}
		rec, err := kube.ReadRecord(ctx, cs)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(rec.Addons["nodelocaldns"].Objects); n != 0 {
			t.Errorf("the add-on record still lists %d nodelocaldns objects", n)
		}
		if len(rec.Addons["weave"].Objects) == 0 || len(rec.Addons["coredns"].Objects) == 0 {
			t.Errorf("the add-on record lost weave or coredns: %+v", rec.Addons)
		}
		for _, name := range []string{"weave-net"} {
			if _, err := cs.AppsV1().DaemonSets("kube-system").Get(ctx, name, metav1.GetOptions{}); err != nil {
				t.Errorf("%s was removed with NodeLocal DNSCache: %v", name, err)
			}
		}
		checkKubeDNSService(t, ctx, cs)
	})
}
