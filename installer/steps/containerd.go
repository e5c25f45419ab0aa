package steps

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/kubewright/kubewright/installer/engine"
	"github.com/kubewright/kubewright/installer/remote"
	"github.com/kubewright/kubewright/installer/render"
	"github.com/kubewright/kubewright/installer/steps/stepkit"
)

// Containerd is the `containerd` step: containerd's config (cgroup driver
// detected on the host, sandbox image pinned to the artifacts' pause image,
// Debian's CNI plugin dir, optional registry mirror) and crictl's, then
// containerd restarted only when its config changed.
//
// A config that kubewright did not write (no managed marker) and that is not
// the distro package's untouched default is someone else's: the step refuses
// to replace it, showing the diff, unless forced (parameter force: "true" or
// the run's SharedForce).
type Containerd struct {
	force bool
}

func newContainerd(with map[string]string) (engine.Step, error) {
	if err := checkParams(with, "force"); err != nil {
		return nil, err
	}
	return Containerd{force: with["force"] == "true"}, nil
}

func (Containerd) Name() string { return "containerd" }

const unitContainerd = "containerd.service"

func (s Containerd) forced(t *engine.Target) bool {
	if s.force {
		return true
	}
	if t.Shared != nil {
		if v, ok := t.Shared.Get(SharedForce); ok {
			b, _ := v.(bool)
			return b
		}
	}
	return false
}

func (s Containerd) group(ctx context.Context, t *engine.Target) (serviceGroup, error) {
	src, err := sharedSource(t)
	if err != nil {
		return serviceGroup{}, err
	}
	pause, err := pauseImage(src.Manifest())
	if err != nil {
		return serviceGroup{}, fmt.Errorf("containerd sandbox image: artifacts have %w", err)
	}
	rt, err := detectRuntime(ctx, t)
	if err != nil {
		return serviceGroup{}, err
	}
	conf, err := render.ContainerdConfigFile(render.ContainerdParams{
		SandboxImage:        pause.Name,
		SystemdCgroup:       rt.CgroupDriver() == "systemd",
		RestrictOOMScoreAdj: rt.Container != "",
		CNIBinDir:           render.CNIBinDirDebian,
		CNIConfDir:          render.CNIConfDir,
		RegistryMirror:      t.Cluster.Spec.RegistryMirror,
	})
	if err != nil {
		return serviceGroup{}, err
	}
	return serviceGroup{
		files: []stepkit.File{
			{Path: render.ContainerdConfig, Content: []byte(conf), Mode: 0o644, Owner: "root:root"},
			{Path: render.CrictlConfig, Content: []byte(render.CrictlConfigFile()), Mode: 0o644, Owner: "root:root"},
		},
		services:      []service{{unit: unitContainerd, dependsOn: func(p string) bool { return p == render.ContainerdConfig }}},
		activeTimeout: time.Minute,
	}, nil
}

// ownershipScript prints managed, distro-default, foreign or missing for the
// containerd config. The distro default is recognised by the checksum dpkg
// recorded for the package's conffile, so an operator's edit of it counts as
// foreign.
func ownershipScript(t *engine.Target) string {
	p := stepkit.Quote(stepkit.HostPath(t, render.ContainerdConfig))
	return fmt.Sprintf(`f=%s; if [ ! -e "$f" ]; then echo missing; exit 0; fi; if head -n 1 "$f" | grep -q '^%s'; then echo managed; exit 0; fi; m=$(md5sum < "$f" | cut -d' ' -f1); c=$(dpkg-query -W -f='${Conffiles}\n' containerd 2>/dev/null | awk '$1=="%s"{print $2}'); if [ -n "$c" ] && [ "$m" = "$c" ]; then echo distro-default; else echo foreign; fi`,
		p, render.ManagedMarker, render.ContainerdConfig)
}

func (s Containerd) Plan(ctx context.Context, t *engine.Target) ([]engine.Change, error) {
	g, err := s.group(ctx, t)
	if err != nil {
		return nil, err
	}
	changes, err := g.plan(ctx, t)
	if err != nil {
		return nil, err
	}
	if !stepkit.HasObject(changes, render.ContainerdConfig) {
		return changes, nil
	}
	out, err := stepkit.RunAsRoot(ctx, t, ownershipScript(t))
	if err != nil {
		return nil, fmt.Errorf("inspect %s on %s: %w", render.ContainerdConfig, t.Inv.Name, err)
	}
	if owner := strings.TrimSpace(out); owner == "foreign" {
		diff, derr := stepkit.RunAsRoot(ctx, t, fmt.Sprintf("diff -u --label %s --label kubewright %s - ; true",
			stepkit.Quote(t.Inv.Name+":"+render.ContainerdConfig), stepkit.Quote(stepkit.HostPath(t, render.ContainerdConfig))),
			remote.WithStdin(strings.NewReader(string(g.files[0].Content))))
		if derr != nil {
			diff = "(diff unavailable: " + derr.Error() + ")"
		}
		if !s.forced(t) {
			return nil, fmt.Errorf("%s on %s was not written by kubewright (no %q header, not the package default); refusing to replace it. Re-run with --force to replace it (or the containerd step's force: \"true\"), or remove it. Changes kubewright would make:\n%s",
				render.ContainerdConfig, t.Inv.Name, render.ManagedMarker, diff)
		}
		for i := range changes {
			if changes[i].Object == render.ContainerdConfig {
				changes[i].Detail += "; forced over a config not written by kubewright"
			}
		}
	}
	return changes, nil
}

func (s Containerd) Apply(ctx context.Context, t *engine.Target, plan []engine.Change) error {
	g, err := s.group(ctx, t)
	if err != nil {
		return err
	}
	return g.apply(ctx, t, plan)
}
