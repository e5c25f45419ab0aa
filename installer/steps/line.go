package steps

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"regexp"
	"strconv"
	"strings"

	"github.com/kubewright/kubewright/installer/engine"
	"github.com/kubewright/kubewright/installer/remote"
	"github.com/kubewright/kubewright/installer/steps/stepkit"
)

// Line is the `line` step: one line present in a text file, the rest of the
// file left as it is (Ansible's lineinfile). It suits files other tools
// also edit: /etc/hosts, an /etc/default file, a key = value config.
//
// Parameters:
//
//	path    absolute path on the host (required; a host template)
//	line    the line, without its newline (required; a host template)
//	regexp  optional RE2 expression: the last line matching it is replaced
//	        by line (e.g. ^vm\.swappiness\s*= to set a value whatever it
//	        was); when none matches, line is appended
//	mode    octal permissions when the file is created, default 0644; an
//	        existing file keeps its mode
//
// Without regexp, a line equal to line anywhere in the file satisfies the
// step; otherwise line is appended. A missing file (and its parent
// directories) is created holding just the line. Planning reads the file
// with one remote command; applying reads it again and writes the whole
// file atomically as root, so a concurrent edit is never half-overwritten.
type Line struct {
	path hostPath
	line hostTemplate
	re   *regexp.Regexp
	mode os.FileMode
}

func newLine(with map[string]string) (engine.Step, error) {
	if err := checkParams(with, "path", "line", "regexp", "mode"); err != nil {
		return nil, err
	}
	p, err := parseHostPath(with, "path")
	if err != nil {
		return nil, err
	}
	l, ok := with["line"]
	if !ok {
		return nil, errors.New(`parameter "line" is required`)
	}
	if strings.ContainsAny(l, "\n\r") {
		return nil, errors.New(`parameter "line" must be one line (no newline)`)
	}
	lt, err := parseHostTemplate("line", l)
	if err != nil {
		return nil, err
	}
	s := &Line{path: p, line: lt}
	if v, ok := with["regexp"]; ok {
		if v == "" {
			return nil, errors.New(`parameter "regexp" is empty (leave it out to match the line itself)`)
		}
		if s.re, err = regexp.Compile(v); err != nil {
			return nil, fmt.Errorf("regexp: %w", err)
		}
	}
	if s.mode, err = parseMode(with, "mode", DefaultFileMode); err != nil {
		return nil, err
	}
	return s, nil
}

// Name implements engine.Step.
func (*Line) Name() string { return "line" }

// lineState is the file as the host reported it.
type lineState struct {
	exists  bool
	mode    os.FileMode
	content []byte
}

// read prints "missing", "notfile", or the mode then the content.
func (s *Line) read(ctx context.Context, t *engine.Target, p string) (lineState, error) {
	hp := stepkit.Quote(stepkit.HostPath(t, p))
	out, err := stepkit.RunAsRoot(ctx, t, `f=`+hp+`; if [ -f "$f" ]; then stat -L -c %a -- "$f" && cat -- "$f"; elif [ -e "$f" ]; then echo notfile; else echo missing; fi`)
	if err != nil {
		return lineState{}, fmt.Errorf("read %s: %w", p, err)
	}
	head, rest, _ := strings.Cut(out, "\n")
	switch head {
	case "missing":
		return lineState{}, nil
	case "notfile":
		return lineState{}, fmt.Errorf("%s exists and is not a regular file", p)
	}
	m, err := strconv.ParseUint(head, 8, 32)
	if err != nil {
		return lineState{}, fmt.Errorf("read %s: unexpected mode %q", p, head)
	}
	return lineState{exists: true, mode: os.FileMode(m), content: []byte(rest)}, nil
}

// edit returns the file with the line in place and what was done ("" when
// the content already has it).
func (s *Line) edit(content []byte, line string) ([]byte, string) {
	lines := strings.Split(string(content), "\n")
	if n := len(lines); n > 0 && lines[n-1] == "" {
		lines = lines[:n-1] // the file's final newline
	}
	at := -1
	for i, l := range lines {
		if s.re != nil && s.re.MatchString(l) || s.re == nil && l == line {
			at = i
		}
	}
	var what string
	switch {
	case at >= 0 && lines[at] == line:
		return content, ""
	case at >= 0:
		lines[at] = line
		what = fmt.Sprintf("replace line %d", at+1)
	default:
		lines = append(lines, line)
		what = "append line"
	}
	var b bytes.Buffer
	for _, l := range lines {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.Bytes(), what
}

func (s *Line) desired(ctx context.Context, t *engine.Target) (string, lineState, []byte, string, error) {
	p, err := s.path.render(t)
	if err != nil {
		return "", lineState{}, nil, "", err
	}
	line, err := s.line.render(t)
	if err != nil {
		return "", lineState{}, nil, "", err
	}
	if strings.ContainsAny(line, "\n\r") {
		return "", lineState{}, nil, "", fmt.Errorf("rendered line %q is not one line", line)
	}
	st, err := s.read(ctx, t, p)
	if err != nil {
		return "", lineState{}, nil, "", err
	}
	if !st.exists {
		return p, st, []byte(line + "\n"), "create", nil
	}
	content, what := s.edit(st.content, line)
	return p, st, content, what, nil
}

// Plan implements engine.Step: one remote read.
func (s *Line) Plan(ctx context.Context, t *engine.Target) ([]engine.Change, error) {
	p, st, _, what, err := s.desired(ctx, t)
	switch {
	case err != nil:
		return nil, err
	case !st.exists:
		return []engine.Change{{Action: "create", Object: p, Detail: fmt.Sprintf("mode %04o", s.mode.Perm())}}, nil
	case what == "":
		return nil, nil
	}
	return []engine.Change{{Action: "update", Object: p, Detail: what}}, nil
}

// Apply implements engine.Step.
func (s *Line) Apply(ctx context.Context, t *engine.Target, _ []engine.Change) error {
	p, st, content, what, err := s.desired(ctx, t)
	if err != nil || what == "" {
		return err
	}
	mode := s.mode
	if st.exists {
		mode = st.mode
	} else if _, err := stepkit.RunAsRoot(ctx, t, "mkdir -p -- "+stepkit.Quote(stepkit.HostPath(t, path.Dir(p)))); err != nil {
		return fmt.Errorf("create directory of %s: %w", p, err)
	}
	if _, err := t.Host.Upload(ctx, bytes.NewReader(content), stepkit.HostPath(t, p), mode.Perm(), remote.UploadAsRoot()); err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	return nil
}
