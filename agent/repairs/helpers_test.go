package repairs

import (
	"context"
	"strings"
	"sync"
)

// recorder is a Runner that records each command as one string and
// answers from a script.
type recorder struct {
	mu     sync.Mutex
	calls  []string
	answer func(cmd string) (string, error)
}

func (r *recorder) run(_ context.Context, name string, args ...string) ([]byte, error) {
	cmd := strings.Join(append([]string{name}, args...), " ")
	r.mu.Lock()
	r.calls = append(r.calls, cmd)
	r.mu.Unlock()
	if r.answer == nil {
		return nil, nil
	}
	out, err := r.answer(cmd)
	return []byte(out), err
}

func (r *recorder) commands() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.calls...)
}

// activeAfter answers is-active with "activating" n times, then "active";
// everything else succeeds silently.
func activeAfter(n int) func(string) (string, error) {
	polls := map[string]int{}
	return func(cmd string) (string, error) {
		if strings.HasPrefix(cmd, "systemctl is-active ") {
			polls[cmd]++
			if polls[cmd] <= n {
				return "activating\n", errExit3
			}
			return "active\n", nil
		}
		return "", nil
	}
}

type exitError string

func (e exitError) Error() string { return string(e) }

const errExit3 = exitError("exit status 3")
