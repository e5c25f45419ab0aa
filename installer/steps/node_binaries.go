package steps

import (
	"context"
	"fmt"
	"path"

	"github.com/kubewright/kubewright/installer/artifacts"
	"github.com/kubewright/kubewright/installer/engine"
	"github.com/kubewright/kubewright/installer/render"
	"github.com/kubewright/kubewright/installer/steps/stepkit"
)

// nodeBinaryNames run on every node, masters included.
var nodeBinaryNames = []string{"kubelet", "kube-proxy", "crictl"}

// NodeBinaries is the `node-binaries` step: kubelet, kube-proxy and crictl
// into /usr/local/bin on every node, from the verified artifacts. Like
// `binaries`, a file whose sha256 already matches is not sent again.
type NodeBinaries struct{}

func (NodeBinaries) Name() string { return "node-binaries" }

func (NodeBinaries) wanted(t *engine.Target) ([]binaryFile, artifacts.Source, error) {
	src, err := sharedSource(t)
	if err != nil {
		return nil, nil, err
	}
	m := src.Manifest()
	var out []binaryFile
	for _, name := range nodeBinaryNames {
		f, ok := m.File(name)
		if !ok || f.Kind != artifacts.KindBinary {
			return nil, nil, fmt.Errorf("artifacts manifest has no binary %q (Kubernetes %s); rebuild the artifacts or pick another source", name, m.KubernetesVersion)
		}
		out = append(out, binaryFile{name: name, remotePath: path.Join(render.BinDir, name), sha256: f.SHA256})
	}
	return out, src, nil
}

func (s NodeBinaries) Plan(ctx context.Context, t *engine.Target) ([]engine.Change, error) {
	want, _, err := s.wanted(t)
	if err != nil {
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
	var out []engine.Change
	for i, b := range want {
		st := states[i]
		switch {
		case !st.Exists:
			out = append(out, engine.Change{Action: "create", Object: b.remotePath, Detail: b.name})
		case st.SHA256 != b.sha256:
			out = append(out, engine.Change{Action: "update", Object: b.remotePath, Detail: "sha256 differs from the artifacts manifest"})
		case st.Mode.Perm() != 0o755:
			out = append(out, engine.Change{Action: "update", Object: b.remotePath, Detail: fmt.Sprintf("mode %04o -> 0755", st.Mode.Perm())})
		}
	}
	return out, nil
}

func (s NodeBinaries) Apply(ctx context.Context, t *engine.Target, plan []engine.Change) error {
	want, src, err := s.wanted(t)
	if err != nil {
		return err
	}
	if _, err := stepkit.RunAsRoot(ctx, t, "mkdir -p "+stepkit.Quote(stepkit.HostPath(t, render.BinDir))); err != nil {
		return err
	}
	for _, b := range want {
		if stepkit.HasObject(plan, b.remotePath) {
			if err := uploadArtifact(ctx, t, src, b.name, b.remotePath); err != nil {
				return err
			}
		}
	}
	return nil
}
