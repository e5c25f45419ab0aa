package steps

import (
	"context"
	"fmt"
	"strings"

	"github.com/kubewright/kubewright/installer/engine"
	"github.com/kubewright/kubewright/installer/steps/stepkit"
)

// Absent is the `absent` step: nothing exists at a path. A file or symlink
// is removed; a directory is removed with everything in it (rm -rf), so
// point it at exactly what should go. Planning is one remote test.
//
// Parameters:
//
//	path  absolute path on the host (required; a host template; not "/")
type Absent struct{ path hostPath }

func newAbsent(with map[string]string) (engine.Step, error) {
	if err := checkParams(with, "path"); err != nil {
		return nil, err
	}
	p, err := parseHostPath(with, "path")
	if err != nil {
		return nil, err
	}
	return &Absent{path: p}, nil
}

// Name implements engine.Step.
func (*Absent) Name() string { return "absent" }

// Plan implements engine.Step.
func (s *Absent) Plan(ctx context.Context, t *engine.Target) ([]engine.Change, error) {
	p, err := s.path.render(t)
	if err != nil {
		return nil, err
	}
	out, err := stepkit.RunAsRoot(ctx, t, `p=`+stepkit.Quote(stepkit.HostPath(t, p))+`; if [ -d "$p" ] && [ ! -L "$p" ]; then echo directory; elif [ -e "$p" ] || [ -L "$p" ]; then echo file; else echo missing; fi`)
	if err != nil {
		return nil, fmt.Errorf("inspect %s: %w", p, err)
	}
	switch kind := strings.TrimSpace(out); kind {
	case "missing":
		return nil, nil
	case "directory":
		return []engine.Change{{Action: "delete", Object: p, Detail: "directory and its contents"}}, nil
	default:
		return []engine.Change{{Action: "delete", Object: p}}, nil
	}
}

// Apply implements engine.Step.
func (s *Absent) Apply(ctx context.Context, t *engine.Target, _ []engine.Change) error {
	p, err := s.path.render(t)
	if err != nil {
		return err
	}
	if _, err := stepkit.RunAsRoot(ctx, t, "rm -rf -- "+stepkit.Quote(stepkit.HostPath(t, p))); err != nil {
		return fmt.Errorf("remove %s: %w", p, err)
	}
	return nil
}
