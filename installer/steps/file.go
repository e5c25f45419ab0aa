package steps

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"strconv"

	"github.com/kubewright/kubewright/installer/engine"
	"github.com/kubewright/kubewright/installer/steps/stepkit"
)

// File is the `file` step: one file on the host with exactly the given
// content and mode (and owner, when set). kubewright's own steps write their
// files themselves; this one is for operators' playbooks (`kubewright run`),
// for what kubewright has no step for: a registry mirror's hosts.toml, a
// systemd drop-in, a login banner. Like every step it plans first, so a dry
// run shows "create" or "update (content differs; mode 0600 -> 0644)" and a
// re-run with the file in place changes nothing.
//
// Parameters:
//
//	path     absolute path on the host (required)
//	content  the whole content, byte for byte (required; "" for an empty file)
//	mode     octal permissions, default 0644
//	owner    user:group; when empty, ownership is neither set nor compared
//
// Missing parent directories are created. The write is atomic (temp file,
// then rename) and done as root.
type File struct{ f stepkit.File }

// DefaultFileMode is the `file` step's mode when the playbook sets none.
const DefaultFileMode fs.FileMode = 0o644

var ownerRe = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*:[A-Za-z0-9_][A-Za-z0-9_.-]*$`)

func newFile(with map[string]string) (engine.Step, error) {
	if err := checkParams(with, "path", "content", "mode", "owner"); err != nil {
		return nil, err
	}
	p, ok := with["path"]
	switch {
	case !ok || p == "":
		return nil, errors.New(`parameter "path" is required`)
	case !path.IsAbs(p):
		return nil, fmt.Errorf("path %q is not absolute", p)
	case path.Clean(p) != p:
		return nil, fmt.Errorf("path %q is not clean (did you mean %q?)", p, path.Clean(p))
	case p == "/":
		return nil, errors.New(`path "/" is a directory`)
	}
	content, ok := with["content"]
	if !ok {
		return nil, errors.New(`parameter "content" is required (use "" for an empty file)`)
	}
	mode := DefaultFileMode
	if v, ok := with["mode"]; ok {
		m, err := strconv.ParseUint(v, 8, 32)
		if err != nil || m > 0o777 {
			return nil, fmt.Errorf("mode %q is not an octal permission from 0000 to 0777 (like \"0644\")", v)
		}
		mode = fs.FileMode(m)
	}
	owner := with["owner"]
	if owner != "" && !ownerRe.MatchString(owner) {
		return nil, fmt.Errorf("owner %q is not user:group", owner)
	}
	return &File{f: stepkit.File{Path: p, Content: []byte(content), Mode: mode, Owner: owner}}, nil
}

// Name implements engine.Step.
func (*File) Name() string { return "file" }

// Plan implements engine.Step: one remote stat of the file.
func (s *File) Plan(ctx context.Context, t *engine.Target) ([]engine.Change, error) {
	return stepkit.PlanFiles(ctx, t, []stepkit.File{s.f})
}

// Apply implements engine.Step.
func (s *File) Apply(ctx context.Context, t *engine.Target, plan []engine.Change) error {
	if _, err := stepkit.ApplyFiles(ctx, t, []stepkit.File{s.f}, plan); err != nil {
		return fmt.Errorf("file: %w", err)
	}
	return nil
}
