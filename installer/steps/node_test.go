package steps

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kubewright/kubewright/installer/artifacts"
	"github.com/kubewright/kubewright/installer/engine"
	"github.com/kubewright/kubewright/installer/steps/stepkit/stepkittest"
)

// Fake node tools. Each keeps its state in files under the test root so the
// steps' real shell commands run against them.
const (
	// nodeSystemctl runs hooks/<unit> after a start or restart: the fake
	// kubelet's "TLS bootstrap".
	nodeSystemctl = `case "$1" in start|restart) h=$(dirname "$0")/../hooks/$2; [ -x "$h" ] && "$h";; esac
` + fakeSystemctlScript
	// fakeDetectVirt answers like systemd-detect-virt -c: a name, or none
	// with exit 1.
	fakeDetectVirt = `v=$(cat "$(dirname "$0")/../virt" 2>/dev/null); if [ -n "$v" ]; then echo "$v"; else echo none; exit 1; fi`
	// fakeStat reports the cgroup fs type from a file; everything else is
	// the real stat (PlanFiles uses it).
	fakeStat = `if [ "$1" = -fc ] && [ "$2" = %T ]; then cat "$(dirname "$0")/../cgroupfs-type" 2>/dev/null || echo tmpfs; else exec /usr/bin/stat "$@"; fi`
	// fakeCtr imports a "tarball" whose content is "ID NAME".
	fakeCtr = `d=$(dirname "$0")/..; echo "$*" >> "$d/ctr-log"; [ "$1 $2 $3 $4" = "-n k8s.io images import" ] || exit 2; cat "$5" >> "$d/cri-images"`
	// fakeCrictl lists what fakeCtr imported, as crictl images -o json does.
	fakeCrictl = `f=$(dirname "$0")/../cri-images; [ -e "$(dirname "$0")/../containerd-down" ] && { echo "connect: connection refused" >&2; exit 1; }
printf '{"images":['; sep=; if [ -f "$f" ]; then while read id name; do printf '%s{"id":"%s","repoTags":["%s"]}' "$sep" "$id" "$name"; sep=,; done < "$f"; fi; printf ']}\n'`
	// fakeDpkgQuery reports the conffile checksum of the distro default.
	fakeDpkgQuery = `echo " /etc/containerd/config.toml $(cat "$(dirname "$0")/../dpkg-md5" 2>/dev/null)"`
)

const (
	pauseDigest   = "sha256:cfa3765ac0bc0ea150f7da5944e6bf346beff1186847c85760be0e93f84b0761"
	testappDigest = "sha256:2f2b0497fd3a4ff220959b7a8c0f1c900886f333891e4ebafe2abec256fca986"
)

// nodeArtifacts is an artifacts dir with the node binaries and two images
// whose "tarballs" are what fakeCtr understands.
func nodeArtifacts(t *testing.T) artifacts.Source {
	t.Helper()
	dir := t.TempDir()
	m := &artifacts.Manifest{APIVersion: artifacts.APIVersion, Kind: artifacts.ManifestKind, KubernetesVersion: "v1.37.2", EtcdVersion: "v3.7.3"}
	add := func(name, rel, content string, kind artifacts.Kind, component string) {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256([]byte(content))
		m.Files = append(m.Files, artifacts.File{Name: name, Path: rel, SHA256: hex.EncodeToString(sum[:]), Size: int64(len(content)), Kind: kind, Component: component, Version: "v1"})
	}
	for _, n := range nodeBinaryNames {
		add(n, "bin/"+n, "#!/bin/sh\necho "+n+"\n", artifacts.KindBinary, "kubernetes")
	}
	add("pause-image", "images/pause.tar", pauseDigest+" registry.k8s.io/pause:3.10\n", artifacts.KindImage, "pause")
	add("testapp-image", "images/testapp.tar", testappDigest+" kubewright.io/testapp:v1\n", artifacts.KindImage, "testapp")
	for _, pkg := range []string{"containerd", "runc", "containernetworking-plugins"} {
		m.Files = append(m.Files, artifacts.File{Name: pkg, Kind: artifacts.KindOSPackage, Component: pkg, Package: pkg})
	}
	m.Images = []artifacts.Image{
		{Name: "registry.k8s.io/pause:3.10", File: "pause-image", Digest: pauseDigest},
		{Name: "kubewright.io/testapp:v1", File: "testapp-image", Digest: testappDigest},
	}
	data, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, artifacts.ManifestFile), data, 0o644); err != nil {
		t.Fatal(err)
	}
	src, err := artifacts.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// nodeTarget is a cpFixture target with the fake node tools and artifacts.
func (f *cpFixture) nodeTarget(t *testing.T, host string) (*engine.Target, *stepkittest.Host, string) {
	t.Helper()
	tg, h, root := f.target(t, host)
	for name, script := range map[string]string{
		"systemctl": nodeSystemctl, "systemd-detect-virt": fakeDetectVirt, "stat": fakeStat,
		"ctr": fakeCtr, "crictl": fakeCrictl, "dpkg-query": fakeDpkgQuery,
	} {
		stepkittest.FakeTool(t, root, name, script)
	}
	tg.Shared = engine.NewSharedData()
	tg.Shared.Set(SharedArtifacts, nodeArtifacts(t))
	return tg, h, root
}

func writeRootFile(t *testing.T, root, rel, content string) {
	t.Helper()
	stepkittest.WriteFile(t, root, rel, content, 0o644)
}

func TestCgroupDriverDetection(t *testing.T) {
	tests := []struct {
		name, fsType, virt string
		wantDriver         string
		wantV1, wantSwap   string
		wantOOM            string
	}{
		{"lab: nspawn on cgroup v1 hybrid", "tmpfs", "systemd-nspawn", "SystemdCgroup = false", "failCgroupV1: false", "failSwapOn: false", "restrict_oom_score_adj = true"},
		{"VM with systemd on cgroup v2", "cgroup2fs", "", "SystemdCgroup = true", "failCgroupV1: true", "failSwapOn: true", "restrict_oom_score_adj = false"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newCPFixture(t, cpInventory)
			tg, _, root := f.nodeTarget(t, "w1")
			writeRootFile(t, root, "/cgroupfs-type", tc.fsType+"\n")
			writeRootFile(t, root, "/virt", tc.virt)
			writeRootFile(t, root, "/proc/1/comm", "systemd\n")
			converge(t, Containerd{}, tg)
			g, err := Kubelet{}.group(context.Background(), tg)
			if err != nil {
				t.Fatal(err)
			}
			conf, _ := stepkittest.ReadFile(t, root, "/etc/containerd/config.toml")
			kc := string(g.files[1].Content)
			driver := "cgroupfs"
			if strings.HasSuffix(tc.wantDriver, "true") {
				driver = "systemd"
			}
			for _, want := range []string{tc.wantDriver, tc.wantOOM, `sandbox_image = "registry.k8s.io/pause:3.10"`, `bin_dir = "/usr/lib/cni"`} {
				if !strings.Contains(conf, want) {
					t.Errorf("containerd config lacks %q:\n%s", want, conf)
				}
			}
			for _, want := range []string{"cgroupDriver: " + driver, tc.wantV1, tc.wantSwap} {
				if !strings.Contains(kc, want) {
					t.Errorf("kubelet config lacks %q:\n%s", want, kc)
				}
			}
		})
	}
}

func TestContainerdRefusesForeignConfig(t *testing.T) {
	const distroDefault = "version = 2\n\n[plugins]\n  [plugins.\"io.containerd.grpc.v1.cri\"]\n"
	sum := md5.Sum([]byte(distroDefault))
	tests := []struct {
		name     string
		existing string
		force    bool
		wantErr  string
		wantPlan string
	}{
		{name: "no config", wantPlan: "create /etc/containerd/config.toml (mode 0644)"},
		{name: "package default is replaced", existing: distroDefault, wantPlan: "update /etc/containerd/config.toml (content differs)"},
		{name: "kubewright's own old config is replaced", existing: "# Managed by kubewright: x\nversion = 2\n", wantPlan: "update /etc/containerd/config.toml (content differs)"},
		{name: "operator's config is refused", existing: distroDefault + "# tuned by ops\n",
			wantErr: "/etc/containerd/config.toml on w1 was not written by kubewright"},
		{name: "operator's config with force", existing: distroDefault + "# tuned by ops\n", force: true,
			wantPlan: "update /etc/containerd/config.toml (content differs; forced over a config not written by kubewright)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newCPFixture(t, cpInventory)
			tg, _, root := f.nodeTarget(t, "w1")
			writeRootFile(t, root, "/dpkg-md5", hex.EncodeToString(sum[:]))
			if tc.existing != "" {
				writeRootFile(t, root, "/etc/containerd/config.toml", tc.existing)
			}
			if tc.force {
				tg.Shared.Set(SharedForce, true)
			}
			plan, err := Containerd{}.Plan(context.Background(), tg)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				// The refusal shows what would change, as a diff.
				for _, w := range []string{"--- w1:/etc/containerd/config.toml", "+++ kubewright", "-# tuned by ops", "+# Managed by kubewright", "--force"} {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("refusal lacks %q:\n%v", w, err)
					}
				}
				if c, _ := stepkittest.ReadFile(t, root, "/etc/containerd/config.toml"); c != tc.existing {
					t.Fatal("a refused config was changed")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, c := range plan {
				got = append(got, c.String())
			}
			if !slices.Contains(got, tc.wantPlan) {
				t.Fatalf("plan = %q, want it to contain %q", got, tc.wantPlan)
			}
			if err := (Containerd{}).Apply(context.Background(), tg, plan); err != nil {
				t.Fatal(err)
			}
			if again, err := (Containerd{}).Plan(context.Background(), tg); err != nil || len(again) != 0 {
				t.Fatalf("second plan = %v, %v", again, err)
			}
			log, _ := stepkittest.ReadFile(t, root, "/systemd-state/log")
			if !strings.Contains(log, "containerd.service") {
				t.Fatalf("containerd not (re)started; systemctl log:\n%s", log)
			}
		})
	}
}

func TestContainerdRestartsOnlyOnConfigChange(t *testing.T) {
	f := newCPFixture(t, cpInventory)
	tg, _, root := f.nodeTarget(t, "w1")
	converge(t, Containerd{}, tg)
	// crictl.yaml is not read by containerd: rewriting it restarts nothing.
	writeRootFile(t, root, "/etc/crictl.yaml", "timeout: 2\n")
	plan, err := Containerd{}.Plan(context.Background(), tg)
	if err != nil {
		t.Fatal(err)
	}
	if a := actions(plan); len(a) != 0 || len(plan) != 1 {
		t.Fatalf("plan after editing crictl.yaml = %v", plan)
	}
	// A registry mirror changes containerd's config: restart.
	f.cluster.Spec.RegistryMirror = "https://mirror.example:5000"
	plan, err = Containerd{}.Plan(context.Background(), tg)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(actions(plan), ","); got != "restart containerd.service" {
		t.Fatalf("actions after setting a mirror = %s", got)
	}
}

func TestImagesImportOnlyMissingByDigest(t *testing.T) {
	f := newCPFixture(t, cpInventory)
	tg, _, root := f.nodeTarget(t, "w1")
	// pause is already there with the right digest and tag; testapp is
	// there by digest but untagged (someone ran ctr images tag --rm).
	writeRootFile(t, root, "/cri-images", pauseDigest+" registry.k8s.io/pause:3.10\n"+testappDigest+" other/name:v0\n")
	plan := converge(t, Images{}, tg)
	if len(plan) != 1 || plan[0].Object != "image kubewright.io/testapp:v1" || !strings.Contains(plan[0].Detail, "not tagged") {
		t.Fatalf("plan = %v", plan)
	}
	log, _ := stepkittest.ReadFile(t, root, "/ctr-log")
	if strings.Count(log, "images import") != 1 || !strings.Contains(log, "testapp-image.tar") {
		t.Fatalf("ctr log:\n%s", log)
	}
	if _, ok := stepkittest.ReadFile(t, root, "/var/lib/kubewright/images/testapp-image.tar"); ok {
		t.Fatal("staged tarball not removed after import")
	}

	// A tarball whose image ID is not the manifest's is caught after import.
	tg2, _, root2 := f.nodeTarget(t, "w1")
	stepkittest.FakeTool(t, root2, "ctr", `echo "sha256:0000 registry.k8s.io/pause:3.10" >> "$(dirname "$0")/../cri-images"`)
	plan, err := Images{}.Plan(context.Background(), tg2)
	if err != nil {
		t.Fatal(err)
	}
	if err := (Images{}).Apply(context.Background(), tg2, plan); err == nil || !strings.Contains(err.Error(), "containerd has no image "+pauseDigest) {
		t.Fatalf("digest mismatch: %v", err)
	}

	// Containerd not answering (a dry run on a fresh host): plan everything.
	writeRootFile(t, root2, "/containerd-down", "")
	plan, err = Images{}.Plan(context.Background(), tg2)
	if err != nil || len(plan) != 2 || plan[0].Detail != "containerd not ready yet (a fresh host): import after it starts" {
		t.Fatalf("plan with containerd down = %v, %v", plan, err)
	}
}

func TestNodeBinariesConverge(t *testing.T) {
	f := newCPFixture(t, cpInventory)
	tg, _, root := f.nodeTarget(t, "m1")
	plan := converge(t, NodeBinaries{}, tg)
	if len(plan) != 3 {
		t.Fatalf("plan = %v", plan)
	}
	for _, n := range nodeBinaryNames {
		if st, err := os.Stat(filepath.Join(root, "usr/local/bin", n)); err != nil || st.Mode().Perm() != 0o755 {
			t.Fatalf("%s: %v", n, err)
		}
	}
}

func TestCheckNodeArtifacts(t *testing.T) {
	m := nodeArtifacts(t).Manifest()
	if err := CheckNodeArtifacts(m); err != nil {
		t.Fatal(err)
	}
	m.Files = slices.DeleteFunc(m.Files, func(f artifacts.File) bool { return f.Name == "kube-proxy" || f.Component == "pause" })
	m.Images = m.Images[1:]
	err := CheckNodeArtifacts(m)
	want := "artifacts for Kubernetes v1.37.2 lack what nodes need: binary kube-proxy; no pause image (an images: entry whose file has component: pause)"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant %s", err, want)
	}
}
