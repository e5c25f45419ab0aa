package steps

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/kubewright/kubewright/installer/engine"
	"github.com/kubewright/kubewright/installer/steps/stepkit"
)

// DefaultDirectoryMode is the `directory` step's mode when the playbook sets none.
const DefaultDirectoryMode os.FileMode = 0o755

// Directory is the `directory` step: a directory exists with a mode (and
// owner, when set), its missing parents created as by mkdir -p, so one
// step makes a whole tree. Planning is one remote stat.
//
// Parameters:
//
//	path   absolute path on the host (required; a host template)
//	mode   octal permissions of the directory itself, default 0755
//	owner  user:group; when empty, ownership is neither set nor compared
type Directory struct {
	path  hostPath
	mode  os.FileMode
	owner string
}

func newDirectory(with map[string]string) (engine.Step, error) {
	if err := checkParams(with, "path", "mode", "owner"); err != nil {
		return nil, err
	}
	p, err := parseHostPath(with, "path")
	if err != nil {
		return nil, err
	}
	mode, err := parseMode(with, "mode", DefaultDirectoryMode)
	if err != nil {
		return nil, err
	}
	owner, err := parseOwner(with)
	if err != nil {
		return nil, err
	}
	return &Directory{path: p, mode: mode, owner: owner}, nil
}

// Name implements engine.Step.
func (*Directory) Name() string { return "directory" }

// Plan implements engine.Step.
func (s *Directory) Plan(ctx context.Context, t *engine.Target) ([]engine.Change, error) {
	p, err := s.path.render(t)
	if err != nil {
		return nil, err
	}
	out, err := stepkit.RunAsRoot(ctx, t, `d=`+stepkit.Quote(stepkit.HostPath(t, p))+`; if [ -d "$d" ]; then stat -L -c '%a %U:%G' -- "$d"; elif [ -e "$d" ]; then echo notdir; else echo missing; fi`)
	if err != nil {
		return nil, fmt.Errorf("inspect %s: %w", p, err)
	}
	switch out = strings.TrimSpace(out); out {
	case "missing":
		return []engine.Change{{Action: "create", Object: p, Detail: fmt.Sprintf("directory, mode %04o", s.mode.Perm())}}, nil
	case "notdir":
		return nil, fmt.Errorf("%s exists and is not a directory", p)
	}
	f := strings.Fields(out)
	if len(f) != 2 {
		return nil, fmt.Errorf("inspect %s: unexpected output %q", p, out)
	}
	m, err := strconv.ParseUint(f[0], 8, 32)
	if err != nil {
		return nil, fmt.Errorf("inspect %s: unexpected mode %q", p, f[0])
	}
	var why []string
	if cur := os.FileMode(m).Perm(); cur != s.mode.Perm() { // setgid and sticky bits are left alone
		why = append(why, fmt.Sprintf("mode %04o -> %04o", cur, s.mode.Perm()))
	}
	if s.owner != "" && s.owner != f[1] {
		why = append(why, fmt.Sprintf("owner %s -> %s", f[1], s.owner))
	}
	if len(why) == 0 {
		return nil, nil
	}
	return []engine.Change{{Action: "update", Object: p, Detail: strings.Join(why, "; ")}}, nil
}

// Apply implements engine.Step: one remote command.
func (s *Directory) Apply(ctx context.Context, t *engine.Target, _ []engine.Change) error {
	p, err := s.path.render(t)
	if err != nil {
		return err
	}
	q := stepkit.Quote(stepkit.HostPath(t, p))
	cmd := fmt.Sprintf("mkdir -p -- %[1]s && chmod %04[2]o -- %[1]s", q, s.mode.Perm())
	if s.owner != "" {
		cmd += " && chown " + stepkit.Quote(s.owner) + " -- " + q
	}
	if _, err := stepkit.RunAsRoot(ctx, t, cmd); err != nil {
		return fmt.Errorf("directory %s: %w", p, err)
	}
	return nil
}
