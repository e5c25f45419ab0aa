//go:build e2e

package artifacts

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// artifactsDirForE2E is the directory `make artifacts` wrote.
func artifactsDirForE2E(t *testing.T) string {
	dir := os.Getenv("KUBEWRIGHT_ARTIFACTS_DIR")
	if dir == "" {
		dir = filepath.Join("..", "..", "_output", "artifacts")
	}
	if _, err := os.Stat(filepath.Join(dir, ManifestFile)); err != nil {
		t.Fatalf("no artifacts at %s (run `make artifacts` first, or set KUBEWRIGHT_ARTIFACTS_DIR): %v", dir, err)
	}
	return dir
}

// TestBuiltArtifactsVerifyAndRun checks what hack/build-artifacts.sh made:
// every checksum, the version stamps, and that containerd imports the image
// tarballs under their names with the manifest's image IDs and runs the test
// image's sh shim. It starts a private containerd (own root, state and socket)
// and stops it by PID.
func TestBuiltArtifactsVerifyAndRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	d, err := OpenDir(artifactsDirForE2E(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.VerifyAll(ctx); err != nil {
		t.Fatalf("VerifyAll: %v", err)
	}
	m := d.Manifest()

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"kube-apiserver", []string{"--version"}, "Kubernetes " + m.KubernetesVersion},
		{"kubelet", []string{"--version"}, "Kubernetes " + m.KubernetesVersion},
		{"kube-controller-manager", []string{"--version"}, "Kubernetes " + m.KubernetesVersion},
		{"kube-scheduler", []string{"--version"}, "Kubernetes " + m.KubernetesVersion},
		{"kube-proxy", []string{"--version"}, "Kubernetes " + m.KubernetesVersion},
		{"kubectl", []string{"version", "--client"}, "Client Version: " + m.KubernetesVersion},
		{"etcd", []string{"--version"}, "etcd Version: " + strings.TrimPrefix(m.EtcdVersion, "v")},
		{"etcdctl", []string{"version"}, "etcdctl version: " + strings.TrimPrefix(m.EtcdVersion, "v")},
	} {
		t.Run("version/"+tc.name, func(t *testing.T) {
			p, err := d.Path(tc.name)
			if err != nil {
				t.Fatal(err)
			}
			out, err := exec.CommandContext(ctx, p, tc.args...).CombinedOutput()
			if err != nil || !strings.Contains(string(out), tc.want) {
				t.Errorf("%s %v: %v\n%s\nwant %q", tc.name, tc.args, err, out, tc.want)
			}
		})
	}

	for _, bin := range []string{"containerd", "ctr"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s not found: install Debian's containerd package (hack/install-deps.sh) to check the images", bin)
		}
	}
	tmp, err := os.MkdirTemp("", "kw-containerd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(tmp) })
	sock := filepath.Join(tmp, "containerd.sock")
	cfg := fmt.Sprintf(`version = 2
root = %q
state = %q
[grpc]
  address = %q
[ttrpc]
  address = %q
`, filepath.Join(tmp, "root"), filepath.Join(tmp, "state"), sock, sock+".ttrpc")
	if err := os.WriteFile(filepath.Join(tmp, "config.toml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	logf, _ := os.Create(filepath.Join(tmp, "containerd.log"))
	daemon := exec.Command("containerd", "--config", filepath.Join(tmp, "config.toml"))
	daemon.Stdout, daemon.Stderr = logf, logf
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		daemon.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { daemon.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			daemon.Process.Kill()
			<-done
		}
	})
	ctr := func(args ...string) (string, error) {
		out, err := exec.CommandContext(ctx, "ctr", append([]string{"--address", sock, "-n", "k8s.io"}, args...)...).CombinedOutput()
		return string(out), err
	}
	for deadline := time.Now().Add(20 * time.Second); ; {
		if _, err := ctr("version"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(tmp, "containerd.log"))
			t.Fatalf("containerd did not start:\n%s", log)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, img := range m.Images {
		p, err := d.Path(img.File)
		if err != nil {
			t.Fatal(err)
		}
		if out, err := ctr("images", "import", p); err != nil {
			t.Fatalf("import %s: %v\n%s", img.Name, err, out)
		}
		out, err := ctr("images", "ls", "name=="+img.Name)
		if err != nil || !strings.Contains(out, img.Name) {
			t.Errorf("image %s not listed after import: %v\n%s", img.Name, err, out)
		}
		// containerd names the image by its ID too: the manifest's digest.
		if out, _ := ctr("images", "ls", "-q"); !strings.Contains(out, img.Digest) {
			t.Errorf("image ID %s of %s not among imported images:\n%s", img.Digest, img.Name, out)
		}
	}
	// runc needs root; the test image's /bin/sh is testapp's own shim.
	if os.Geteuid() == 0 {
		out, err := ctr("run", "--rm", "kubewright.io/testapp:v1", "kw-e2e-testapp", "/bin/sh", "-c", "echo hello from testapp")
		if err != nil || strings.TrimSpace(out) != "hello from testapp" {
			t.Errorf("run testapp sh -c: %v\n%s", err, out)
		}
		t.Run("coredns serves DNS", func(t *testing.T) { checkCoreDNSImage(t, ctx, m, sock, tmp) })
	}
}

// imageFile returns the image-kind file entry whose component is comp.
func imageFile(t *testing.T, m *Manifest, comp string) (Image, File) {
	t.Helper()
	for _, img := range m.Images {
		if f, ok := m.File(img.File); ok && f.Component == comp {
			return img, f
		}
	}
	t.Fatalf("manifest has no image of component %s", comp)
	return Image{}, File{}
}

// TestBuiltArtifactsHaveClusterImages: install puts these on every node
// (flannel and CoreDNS are the add-ons), so the artifacts must carry them.
func TestBuiltArtifactsHaveClusterImages(t *testing.T) {
	d, err := OpenDir(artifactsDirForE2E(t))
	if err != nil {
		t.Fatal(err)
	}
	m := d.Manifest()
	for _, comp := range []string{"pause", "testapp", "coredns", "flannel", "flannel-cni-plugin"} {
		img, f := imageFile(t, m, comp)
		if img.Digest == "" || !strings.HasSuffix(img.Name, ":"+f.Version) {
			t.Errorf("image %s (file %s): digest %q, version %q: want a digest and the tag as version", img.Name, f.Name, img.Digest, f.Version)
		}
	}
	_, f := imageFile(t, m, "coredns")
	p, err := d.Path(f.Name)
	if err != nil {
		t.Fatal(err)
	}
	// Upstream's layout, which CoreDNS Deployments rely on: the args they
	// pass (-conf /etc/coredns/Corefile) go to /coredns.
	if ep := imageEntrypoint(t, p); len(ep) != 1 || ep[0] != "/coredns" {
		t.Errorf("coredns image entrypoint %q, want [/coredns]", ep)
	}
}

// imageEntrypoint reads a docker-archive tarball's image config.
func imageEntrypoint(t *testing.T, tarball string) []string {
	t.Helper()
	files := map[string][]byte{}
	f, err := os.Open(tarball)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", tarball, err)
		}
		// manifest.json and the config (named by its digest); not the layers.
		if h.Typeflag == tar.TypeReg && !strings.HasSuffix(h.Name, ".tar.gz") && h.Size < 1<<20 {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			files[h.Name] = b
		}
	}
	var manifest []struct{ Config string }
	if err := json.Unmarshal(files["manifest.json"], &manifest); err != nil || len(manifest) != 1 {
		t.Fatalf("%s: manifest.json: %v (%d images)", tarball, err, len(manifest))
	}
	var cfg struct {
		Config struct{ Entrypoint []string }
	}
	if err := json.Unmarshal(files[manifest[0].Config], &cfg); err != nil {
		t.Fatalf("%s: config %s: %v", tarball, manifest[0].Config, err)
	}
	return cfg.Config.Entrypoint
}

// checkCoreDNSImage runs the imported CoreDNS image as a Deployment would
// (-conf /etc/coredns/Corefile from a mounted directory) in the host's
// network namespace on a free loopback port, and resolves a name from the
// Corefile's hosts block through it. The container is killed and removed
// before the test ends.
func checkCoreDNSImage(t *testing.T, ctx context.Context, m *Manifest, sock, tmp string) {
	img, f := imageFile(t, m, "coredns")
	out, err := exec.CommandContext(ctx, "ctr", "--address", sock, "-n", "k8s.io", "run", "--rm", img.Name, "kw-e2e-coredns-version", "/coredns", "-version").CombinedOutput()
	if want := "CoreDNS-" + strings.TrimPrefix(f.Version, "v"); err != nil || !strings.HasPrefix(string(out), want+"\n") {
		t.Errorf("coredns -version: %v\n%s\nwant %s first", err, out, want)
	}

	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := pc.LocalAddr().(*net.UDPAddr).Port
	pc.Close()
	conf := filepath.Join(tmp, "coredns")
	if err := os.MkdirAll(conf, 0o755); err != nil {
		t.Fatal(err)
	}
	corefile := fmt.Sprintf(".:%d {\n    bind 127.0.0.1\n    hosts {\n        10.96.7.7 probe.kubewright.test\n    }\n}\n", port)
	if err := os.WriteFile(filepath.Join(conf, "Corefile"), []byte(corefile), 0o644); err != nil {
		t.Fatal(err)
	}
	var logb strings.Builder
	run := exec.Command("ctr", "--address", sock, "-n", "k8s.io", "run", "--rm", "--net-host",
		"--mount", "type=bind,src="+conf+",dst=/etc/coredns,options=rbind:ro",
		img.Name, "kw-e2e-coredns", "/coredns", "-conf", "/etc/coredns/Corefile")
	run.Stdout, run.Stderr = &logb, &logb
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- run.Wait() }()
	// stop kills and removes the container; after it, logb is safe to read.
	var once sync.Once
	stop := func() {
		once.Do(func() {
			kill := func(sig string) {
				exec.Command("ctr", "--address", sock, "-n", "k8s.io", "task", "kill", "-s", sig, "kw-e2e-coredns").Run()
			}
			kill("SIGTERM")
			select {
			case <-exited:
			case <-time.After(15 * time.Second):
				kill("SIGKILL")
				<-exited
			}
			exec.Command("ctr", "--address", sock, "-n", "k8s.io", "containers", "rm", "kw-e2e-coredns").Run()
		})
	}
	defer stop()

	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var dl net.Dialer
		return dl.DialContext(ctx, network, fmt.Sprintf("127.0.0.1:%d", port))
	}}
	deadline := time.Now().Add(20 * time.Second)
	for {
		qctx, cancel := context.WithTimeout(ctx, time.Second)
		addrs, err := r.LookupHost(qctx, "probe.kubewright.test")
		cancel()
		if err == nil && len(addrs) == 1 && addrs[0] == "10.96.7.7" {
			return
		}
		select {
		case werr := <-exited:
			exited <- werr // for stop
			stop()
			t.Fatalf("coredns exited (%v) before answering:\n%s", werr, logb.String())
		default:
		}
		if time.Now().After(deadline) {
			stop()
			t.Fatalf("coredns on 127.0.0.1:%d: lookup probe.kubewright.test = %v, %v; want [10.96.7.7]\n%s", port, addrs, err, logb.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
}
