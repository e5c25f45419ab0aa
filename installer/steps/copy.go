package steps

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/kubewright/kubewright/installer/engine"
	"github.com/kubewright/kubewright/installer/steps/stepkit"
)

// MaxCopySize bounds the `copy` step's source: the bytes are held in memory
// (hashed once, compared with every host's sha256, written over SFTP).
const MaxCopySize = 256 << 20

// Copy is the `copy` step: a local file copied to the host, byte for byte.
// Like `file` it plans with one remote stat (sha256, mode, owner), writes
// atomically as root, creates missing parent directories and changes
// nothing on a re-run when the host's file already matches.
//
// Parameters:
//
//	src    the local file (required); a relative path is relative to the
//	       directory kubewright runs in. It is read when the playbook is loaded.
//	path   absolute path on the host (required; a host template, e.g.
//	       /srv/{{ .Host.Name }}/blob)
//	mode   octal permissions, default 0644
//	owner  user:group; when empty, ownership is neither set nor compared
type Copy struct {
	path    hostPath
	content []byte
	mode    os.FileMode
	owner   string
}

func newCopy(with map[string]string) (engine.Step, error) {
	if err := checkParams(with, "src", "path", "mode", "owner"); err != nil {
		return nil, err
	}
	src := with["src"]
	if src == "" {
		return nil, errors.New(`parameter "src" is required`)
	}
	fi, err := os.Stat(src)
	switch {
	case err != nil:
		return nil, fmt.Errorf("src: %w", err)
	case !fi.Mode().IsRegular():
		return nil, fmt.Errorf("src %s is not a regular file", src)
	case fi.Size() > MaxCopySize:
		return nil, fmt.Errorf("src %s is %d bytes, more than the %d the copy step holds in memory", src, fi.Size(), MaxCopySize)
	}
	content, err := os.ReadFile(src)
	if err != nil {
		return nil, fmt.Errorf("src: %w", err)
	}
	p, err := parseHostPath(with, "path")
	if err != nil {
		return nil, err
	}
	mode, err := parseMode(with, "mode", DefaultFileMode)
	if err != nil {
		return nil, err
	}
	owner, err := parseOwner(with)
	if err != nil {
		return nil, err
	}
	return &Copy{path: p, content: content, mode: mode, owner: owner}, nil
}

// Name implements engine.Step.
func (*Copy) Name() string { return "copy" }

func (s *Copy) file(t *engine.Target) (stepkit.File, error) {
	p, err := s.path.render(t)
	if err != nil {
		return stepkit.File{}, err
	}
	return stepkit.File{Path: p, Content: s.content, Mode: s.mode, Owner: s.owner}, nil
}

// Plan implements engine.Step: one remote stat of the file.
func (s *Copy) Plan(ctx context.Context, t *engine.Target) ([]engine.Change, error) {
	f, err := s.file(t)
	if err != nil {
		return nil, err
	}
	return stepkit.PlanFiles(ctx, t, []stepkit.File{f})
}

// Apply implements engine.Step.
func (s *Copy) Apply(ctx context.Context, t *engine.Target, plan []engine.Change) error {
	f, err := s.file(t)
	if err != nil {
		return err
	}
	if _, err := stepkit.ApplyFiles(ctx, t, []stepkit.File{f}, plan); err != nil {
		return fmt.Errorf("copy: %w", err)
	}
	return nil
}
