package steps

import (
	"context"
	"encoding/json"
	"fmt"
	"path"
	"slices"

	"github.com/kubewright/kubewright/installer/artifacts"
	"github.com/kubewright/kubewright/installer/engine"
	"github.com/kubewright/kubewright/installer/remote"
	"github.com/kubewright/kubewright/installer/render"
	"github.com/kubewright/kubewright/installer/steps/stepkit"
)

// Images is the `images` step: every image the artifacts manifest lists is
// imported into containerd's k8s.io namespace (the one the CRI uses) from its
// verified tarball, so nodes never need a registry. An image already present
// with the manifest's digest (its image ID) and tag is skipped.
type Images struct{}

func (Images) Name() string { return "images" }

// imageStage is where tarballs are uploaded before the import; each is
// removed once imported.
const imageStage = "/var/lib/kubewright/images"

// crictlImages is `crictl images -o json`'s shape, for the fields we read.
type crictlImages struct {
	Images []struct {
		ID       string   `json:"id"`
		RepoTags []string `json:"repoTags"`
	} `json:"images"`
}

// presentImages returns image ID -> tags known to the CRI.
func presentImages(ctx context.Context, t *engine.Target) (map[string][]string, error) {
	out, err := stepkit.RunAsRoot(ctx, t, "crictl --runtime-endpoint "+render.ContainerdSocket+" images -o json")
	if err != nil {
		return nil, fmt.Errorf("list images on %s: %w", t.Inv.Name, err)
	}
	var ci crictlImages
	if err := json.Unmarshal([]byte(out), &ci); err != nil {
		return nil, fmt.Errorf("list images on %s: parse crictl output: %w", t.Inv.Name, err)
	}
	have := map[string][]string{}
	for _, im := range ci.Images {
		have[im.ID] = append(have[im.ID], im.RepoTags...)
	}
	return have, nil
}

func imageObject(img artifacts.Image) string { return "image " + img.Name }

func (Images) Plan(ctx context.Context, t *engine.Target) ([]engine.Change, error) {
	src, err := sharedSource(t)
	if err != nil {
		return nil, err
	}
	m := src.Manifest()
	have, err := presentImages(ctx, t)
	if err != nil {
		// Before the runtime is running (a dry run of a fresh host: no crictl,
		// no socket) nothing can be present: plan every import.
		var out []engine.Change
		for _, img := range m.Images {
			out = append(out, engine.Change{Action: "import", Object: imageObject(img), Detail: "containerd not ready yet (a fresh host): import after it starts"})
		}
		return out, nil
	}
	var out []engine.Change
	for _, img := range m.Images {
		tags, ok := have[img.Digest]
		switch {
		case !ok:
			out = append(out, engine.Change{Action: "import", Object: imageObject(img), Detail: img.Digest})
		case !slices.Contains(tags, img.Name):
			out = append(out, engine.Change{Action: "import", Object: imageObject(img), Detail: "present by digest but not tagged " + img.Name})
		}
	}
	return out, nil
}

func (s Images) Apply(ctx context.Context, t *engine.Target, plan []engine.Change) error {
	src, err := sharedSource(t)
	if err != nil {
		return err
	}
	m := src.Manifest()
	stage := stepkit.HostPath(t, imageStage)
	if _, err := stepkit.RunAsRoot(ctx, t, "mkdir -p -m 0700 "+stepkit.Quote(stage)); err != nil {
		return fmt.Errorf("create %s on %s: %w", imageStage, t.Inv.Name, err)
	}
	for _, img := range m.Images {
		if !stepkit.HasObject(plan, imageObject(img)) {
			continue
		}
		if err := importImage(ctx, t, src, img, path.Join(stage, img.File+".tar")); err != nil {
			return err
		}
	}
	// Verify by digest what the plan promised: a tarball whose config does
	// not match the manifest would otherwise pass silently.
	have, err := presentImages(ctx, t)
	if err != nil {
		return err
	}
	for _, img := range m.Images {
		if stepkit.HasObject(plan, imageObject(img)) && !slices.Contains(have[img.Digest], img.Name) {
			return fmt.Errorf("imported %s on %s but containerd has no image %s tagged %s; is the manifest's digest that of the tarball's config?", img.File, t.Inv.Name, img.Digest, img.Name)
		}
	}
	return nil
}

func importImage(ctx context.Context, t *engine.Target, src artifacts.Source, img artifacts.Image, dst string) error {
	r, err := src.Open(ctx, img.File)
	if err != nil {
		return fmt.Errorf("open artifact %s: %w", img.File, err)
	}
	defer r.Close()
	if _, err := t.Host.Upload(ctx, r, dst, 0o600, remote.UploadAsRoot()); err != nil {
		return fmt.Errorf("upload %s to %s: %w", img.File, t.Inv.Name, err)
	}
	cmd := fmt.Sprintf("ctr -n k8s.io images import %s; rc=$?; rm -f %s; exit $rc", stepkit.Quote(dst), stepkit.Quote(dst))
	if _, err := stepkit.RunAsRoot(ctx, t, cmd); err != nil {
		return fmt.Errorf("import image %s on %s: %w", img.Name, t.Inv.Name, err)
	}
	return nil
}
