//go:build e2e

package artifacts

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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
	}
}
