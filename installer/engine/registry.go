package engine

import (
	"fmt"
	"sort"
	"strings"
)

// Factory builds a step from its playbook parameters (the step's "with:"
// map, nil when absent). It rejects unknown or invalid parameters so the
// playbook fails validation instead of failing half-way through a run.
type Factory func(with map[string]string) (Step, error)

// Registry maps step names, as written in playbooks, to factories. There is
// no global registry: the CLI builds one and passes it to Run, so tests can
// register fakes without touching shared state.
type Registry struct {
	factories map[string]Factory
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{factories: map[string]Factory{}}
}

// Register adds a factory under name. Registering a name twice is an error
// because the second one would silently change what a playbook means.
func (r *Registry) Register(name string, f Factory) error {
	switch {
	case strings.TrimSpace(name) == "" || strings.ContainsAny(name, " \t\n,"):
		return fmt.Errorf("register step %q: name must be non-empty without spaces or commas", name)
	case f == nil:
		return fmt.Errorf("register step %q: nil factory", name)
	}
	if _, dup := r.factories[name]; dup {
		return fmt.Errorf("register step %q: already registered", name)
	}
	r.factories[name] = f
	return nil
}

// MustRegister is Register for wiring code where a duplicate is a
// programming error found by the first test run.
func (r *Registry) MustRegister(name string, f Factory) {
	if err := r.Register(name, f); err != nil {
		panic(err)
	}
}

// Names returns the registered step names, sorted.
func (r *Registry) Names() []string {
	out := make([]string, 0, len(r.factories))
	for n := range r.factories {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func (r *Registry) lookup(name string) (Factory, bool) {
	f, ok := r.factories[name]
	return f, ok
}

// Build instantiates one step by name with its parameters.
func (r *Registry) Build(name string, with map[string]string) (Step, error) {
	f, ok := r.lookup(name)
	if !ok {
		msg := fmt.Sprintf("unknown step %q", name)
		if s := suggest(name, r.Names()); s != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", s)
		}
		return nil, fmt.Errorf("%s", msg)
	}
	return f(with)
}

// Static is a Factory for a step that takes no parameters; it rejects any
// "with:" so a misplaced parameter is not silently ignored.
func Static(s Step) Factory {
	return func(with map[string]string) (Step, error) {
		if len(with) > 0 {
			keys := make([]string, 0, len(with))
			for k := range with {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			return nil, fmt.Errorf("takes no parameters, got %s", strings.Join(keys, ", "))
		}
		return s, nil
	}
}
