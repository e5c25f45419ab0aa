package steps

import (
	"context"
	"fmt"
	"path"

	"github.com/kubewright/kubewright/installer/artifacts"
	"github.com/kubewright/kubewright/installer/engine"
	"github.com/kubewright/kubewright/installer/inventory"
	"github.com/kubewright/kubewright/installer/remote"
	"github.com/kubewright/kubewright/installer/render"
	"github.com/kubewright/kubewright/installer/steps/stepkit"
)

// SharedArtifacts is the engine.SharedData key under which the install
// command publishes the verified artifacts.Source for this run.
const SharedArtifacts = "artifacts"

// Binaries is the `binaries` step: puts the Kubernetes and etcd executables a
// host's roles need into /usr/local/bin, streamed from the run's verified
// artifacts source. A binary whose sha256 already matches the manifest is
// not sent again, so a re-run moves no bytes.
type Binaries struct{}

func (Binaries) Name() string { return "binaries" }

// binariesFor lists the binaries by role. Every node runs kubelet and
// kube-proxy; etcdctl (health checks, backups) and etcdutl (restores) go
// with etcd; kubectl goes to masters for operators who log in there.
func binariesFor(h *inventory.Host) []string {
	var out []string
	if h.IsIn(inventory.GroupEtcd) {
		out = append(out, "etcd", "etcdctl", "etcdutl")
	}
	if h.IsIn(inventory.GroupMasters) {
		out = append(out, "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")
	}
	return out
}

func sharedSource(t *engine.Target) (artifacts.Source, error) {
	if t.Shared != nil {
		if v, ok := t.Shared.Get(SharedArtifacts); ok {
			if s, ok := v.(artifacts.Source); ok {
				return s, nil
			}
		}
	}
	return nil, fmt.Errorf("no artifacts source for this run (the install command opens and verifies it before any host is touched)")
}

type binaryFile struct {
	name, remotePath, sha256 string
}

func (Binaries) wanted(t *engine.Target) ([]binaryFile, artifacts.Source, error) {
	src, err := sharedSource(t)
	if err != nil {
		return nil, nil, err
	}
	m := src.Manifest()
	var out []binaryFile
	for _, name := range binariesFor(t.Inv) {
		f, ok := m.File(name)
		if !ok || f.Kind != artifacts.KindBinary {
			return nil, nil, fmt.Errorf("artifacts manifest has no binary %q (Kubernetes %s, etcd %s); rebuild the artifacts or pick another source", name, m.KubernetesVersion, m.EtcdVersion)
		}
		out = append(out, binaryFile{name: name, remotePath: path.Join(render.BinDir, name), sha256: f.SHA256})
	}
	return out, src, nil
}

func (s Binaries) Plan(ctx context.Context, t *engine.Target) ([]engine.Change, error) {
	want, src, err := s.wanted(t)
	if err != nil || len(want) == 0 {
		return nil, err
	}
	paths := make([]string, len(want))
	for i, b := range want {
		paths[i] = b.remotePath
	}
	states, err := stepkit.StatFiles(ctx, t, paths)
	if err != nil {
		return nil, err
	}
	version := src.Manifest().KubernetesVersion
	var out []engine.Change
	for i, b := range want {
		st := states[i]
		switch {
		case !st.Exists:
			out = append(out, engine.Change{Action: "create", Object: b.remotePath, Detail: b.name + " " + version})
		case st.SHA256 != b.sha256:
			out = append(out, engine.Change{Action: "update", Object: b.remotePath, Detail: "sha256 differs from the artifacts manifest"})
		case st.Mode.Perm() != 0o755:
			out = append(out, engine.Change{Action: "update", Object: b.remotePath, Detail: fmt.Sprintf("mode %04o -> 0755", st.Mode.Perm())})
		}
	}
	return out, nil
}

func (s Binaries) Apply(ctx context.Context, t *engine.Target, plan []engine.Change) error {
	want, src, err := s.wanted(t)
	if err != nil {
		return err
	}
	if _, err := stepkit.RunAsRoot(ctx, t, "mkdir -p "+stepkit.Quote(stepkit.HostPath(t, render.BinDir))); err != nil {
		return err
	}
	for _, b := range want {
		if !stepkit.HasObject(plan, b.remotePath) {
			continue
		}
		if err := uploadArtifact(ctx, t, src, b.name, b.remotePath); err != nil {
			return err
		}
	}
	return nil
}

// uploadArtifact streams a verified artifact to the host. The source's reader
// fails at EOF on a checksum mismatch, before the upload's rename, so a
// corrupted binary never replaces a working one.
func uploadArtifact(ctx context.Context, t *engine.Target, src artifacts.Source, name, dst string) error {
	r, err := src.Open(ctx, name)
	if err != nil {
		return fmt.Errorf("open artifact %s: %w", name, err)
	}
	defer r.Close()
	if _, err := t.Host.Upload(ctx, r, stepkit.HostPath(t, dst), 0o755, remote.UploadAsRoot(), remote.UploadOwner("root:root")); err != nil {
		return fmt.Errorf("upload %s to %s: %w", name, dst, err)
	}
	return nil
}
