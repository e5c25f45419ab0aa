package steps

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/kubewright/kubewright/installer/engine"
	"github.com/kubewright/kubewright/installer/steps/stepkit"
)

// Command is the `command` step: a shell command run on the host as root,
// for what no other step does. A command cannot tell kubewright whether it
// would change something, so the playbook says how to decide:
//
//	run       the command, through /bin/sh (required; a host template)
//	unless    a check command (a host template): when it exits 0 the host is
//	          up to date and run is not run; its output is discarded
//	readonly  "true": run only inspects (uname -r, a health probe). It runs
//	          while planning, also in --dry-run, never reports a change, and
//	          fails the step when it fails, so it can serve as an assertion.
//	          Its output goes to the host's log.
//
// With neither unless nor readonly, run is planned as a change and run on
// every run, like Ansible's command module without changed_when.
type Command struct {
	run, unless hostTemplate
	hasUnless   bool
	readonly    bool
}

func newCommand(with map[string]string) (engine.Step, error) {
	if err := checkParams(with, "run", "unless", "readonly"); err != nil {
		return nil, err
	}
	run := with["run"]
	if strings.TrimSpace(run) == "" {
		return nil, errors.New(`parameter "run" is required`)
	}
	s := &Command{}
	var err error
	if s.run, err = parseHostTemplate("run", run); err != nil {
		return nil, err
	}
	if s.readonly, err = parseBool(with, "readonly"); err != nil {
		return nil, err
	}
	if u, ok := with["unless"]; ok {
		switch {
		case strings.TrimSpace(u) == "":
			return nil, errors.New(`parameter "unless" is empty`)
		case s.readonly:
			return nil, errors.New(`"unless" and "readonly: true" exclude each other: a read-only command never needs skipping`)
		}
		if s.unless, err = parseHostTemplate("unless", u); err != nil {
			return nil, err
		}
		s.hasUnless = true
	}
	return s, nil
}

// Name implements engine.Step.
func (*Command) Name() string { return "command" }

// Plan implements engine.Step.
func (s *Command) Plan(ctx context.Context, t *engine.Target) ([]engine.Change, error) {
	run, err := s.run.render(t)
	if err != nil {
		return nil, err
	}
	switch {
	case s.readonly:
		out, err := stepkit.RunAsRoot(ctx, t, run)
		if err != nil {
			return nil, fmt.Errorf("readonly command: %w", err)
		}
		if t.Log != nil {
			t.Log.Info("readonly command", "cmd", run, "stdout", strings.TrimRight(out, "\n"))
		}
		return nil, nil
	case s.hasUnless:
		unless, err := s.unless.render(t)
		if err != nil {
			return nil, err
		}
		// The check runs in a subshell so its exit (or exit status) cannot
		// end the script; the script itself always succeeds, so only a
		// transport failure is an error.
		out, err := stepkit.RunAsRoot(ctx, t, "if (\n"+unless+"\n) >/dev/null 2>&1 </dev/null; then echo @@skip; else echo @@run; fi")
		if err != nil {
			return nil, fmt.Errorf("unless: %w", err)
		}
		if strings.TrimSpace(out) == "@@skip" {
			return nil, nil
		}
		return []engine.Change{{Action: "run", Object: "command " + run, Detail: "unless check failed"}}, nil
	}
	return []engine.Change{{Action: "run", Object: "command " + run}}, nil
}

// Apply implements engine.Step.
func (s *Command) Apply(ctx context.Context, t *engine.Target, _ []engine.Change) error {
	run, err := s.run.render(t)
	if err != nil {
		return err
	}
	if _, err := stepkit.RunAsRoot(ctx, t, run); err != nil {
		return fmt.Errorf("command: %w", err)
	}
	return nil
}
