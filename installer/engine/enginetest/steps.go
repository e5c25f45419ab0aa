package enginetest

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/kubewright/kubewright/installer/engine"
)

// FileStep makes sure a file under the host's directory has some content:
// a small but real idempotent step (Plan reads the host, Apply writes it).
// Path is taken relative to the fake host's directory, absolute or not.
type FileStep struct {
	StepName string
	Path     string
	Content  string

	mu      sync.Mutex
	plans   int
	applies int
}

// Name implements engine.Step.
func (s *FileStep) Name() string { return s.StepName }

// Plan reads the file over Exec and compares.
func (s *FileStep) Plan(ctx context.Context, t *engine.Target) ([]engine.Change, error) {
	s.mu.Lock()
	s.plans++
	s.mu.Unlock()
	// The fake's commands run in its directory, where Upload roots paths.
	out, err := t.Host.Exec(ctx, fmt.Sprintf("cat %q 2>/dev/null || echo '@@missing'", "./"+strings.TrimPrefix(s.Path, "/")))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", s.Path, err)
	}
	switch {
	case strings.TrimRight(out, "\n") == "@@missing":
		return []engine.Change{{Action: "create", Object: s.Path}}, nil
	case out != s.Content:
		return []engine.Change{{Action: "update", Object: s.Path, Detail: "content differs"}}, nil
	}
	return nil, nil
}

// Apply uploads the content.
func (s *FileStep) Apply(ctx context.Context, t *engine.Target, _ []engine.Change) error {
	s.mu.Lock()
	s.applies++
	s.mu.Unlock()
	if _, err := t.Host.Upload(ctx, strings.NewReader(s.Content), s.Path, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", s.Path, err)
	}
	return nil
}

// Calls returns how often Plan and Apply ran, over all hosts.
func (s *FileStep) Calls() (plans, applies int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.plans, s.applies
}

// FuncStep is a step made of functions, for tests that script failures,
// delays and changes. Nil functions plan nothing and apply nothing.
type FuncStep struct {
	StepName string
	PlanFn   func(ctx context.Context, t *engine.Target) ([]engine.Change, error)
	ApplyFn  func(ctx context.Context, t *engine.Target, plan []engine.Change) error

	mu      sync.Mutex
	plans   map[string]int
	applies map[string]int
}

// Name implements engine.Step.
func (s *FuncStep) Name() string { return s.StepName }

// Plan implements engine.Step.
func (s *FuncStep) Plan(ctx context.Context, t *engine.Target) ([]engine.Change, error) {
	s.count(&s.plans, t.Inv.Name)
	if s.PlanFn == nil {
		return nil, nil
	}
	return s.PlanFn(ctx, t)
}

// Apply implements engine.Step.
func (s *FuncStep) Apply(ctx context.Context, t *engine.Target, plan []engine.Change) error {
	s.count(&s.applies, t.Inv.Name)
	if s.ApplyFn == nil {
		return nil
	}
	return s.ApplyFn(ctx, t, plan)
}

func (s *FuncStep) count(m *map[string]int, host string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if *m == nil {
		*m = map[string]int{}
	}
	(*m)[host]++
}

// Plans returns how often Plan ran on host ("" for all hosts).
func (s *FuncStep) Plans(host string) int { return s.get(s.plans, host) }

// Applies returns how often Apply ran on host ("" for all hosts).
func (s *FuncStep) Applies(host string) int { return s.get(s.applies, host) }

func (s *FuncStep) get(m map[string]int, host string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if host != "" {
		return m[host]
	}
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
