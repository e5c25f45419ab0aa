package steps

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"text/template"

	"github.com/kubewright/kubewright/installer/engine"
	"github.com/kubewright/kubewright/installer/steps/stepkit"
)

// Template is the `template` step: a file rendered per host from a Go
// template (text/template) with HostData (.Host.Name, .Host.Address,
// .Host.Labels, .Facts.Hostname, .Facts.CPUs, .Cluster, ...), then managed
// like the `file` step: one remote stat to plan, an atomic write as root
// when the rendered content, mode or owner differ, nothing on a re-run.
//
// Parameters:
//
//	path      absolute path on the host (required; itself a host template)
//	template  the template text (required)
//	mode      octal permissions, default 0644
//	owner     user:group; when empty, ownership is neither set nor compared
//
// The template is parsed when the playbook is loaded. A label the host lacks
// fails the step on that host when written {{ .Host.Labels.zone }}; write
// {{ index .Host.Labels "zone" }} to get "" instead.
type Template struct {
	path  hostPath
	tpl   *template.Template
	mode  os.FileMode
	owner string
}

func newTemplate(with map[string]string) (engine.Step, error) {
	if err := checkParams(with, "path", "template", "mode", "owner"); err != nil {
		return nil, err
	}
	p, err := parseHostPath(with, "path")
	if err != nil {
		return nil, err
	}
	src, ok := with["template"]
	if !ok {
		return nil, errors.New(`parameter "template" is required`)
	}
	tpl, err := template.New("template").Option("missingkey=error").Parse(src)
	if err != nil {
		return nil, fmt.Errorf("parameter \"template\" is not a valid template: %w", err)
	}
	mode, err := parseMode(with, "mode", DefaultFileMode)
	if err != nil {
		return nil, err
	}
	owner, err := parseOwner(with)
	if err != nil {
		return nil, err
	}
	return &Template{path: p, tpl: tpl, mode: mode, owner: owner}, nil
}

// Name implements engine.Step.
func (*Template) Name() string { return "template" }

func (s *Template) file(t *engine.Target) (stepkit.File, error) {
	p, err := s.path.render(t)
	if err != nil {
		return stepkit.File{}, err
	}
	var b strings.Builder
	if err := s.tpl.Execute(&b, NewHostData(t)); err != nil {
		return stepkit.File{}, fmt.Errorf("render %s: %w", p, err)
	}
	return stepkit.File{Path: p, Content: []byte(b.String()), Mode: s.mode, Owner: s.owner}, nil
}

// Plan implements engine.Step: render locally, one remote stat.
func (s *Template) Plan(ctx context.Context, t *engine.Target) ([]engine.Change, error) {
	f, err := s.file(t)
	if err != nil {
		return nil, err
	}
	return stepkit.PlanFiles(ctx, t, []stepkit.File{f})
}

// Apply implements engine.Step.
func (s *Template) Apply(ctx context.Context, t *engine.Target, plan []engine.Change) error {
	f, err := s.file(t)
	if err != nil {
		return err
	}
	if _, err := stepkit.ApplyFiles(ctx, t, []stepkit.File{f}, plan); err != nil {
		return fmt.Errorf("template: %w", err)
	}
	return nil
}
