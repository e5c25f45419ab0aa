package engine

import (
	"context"
	"fmt"
	"sync"
)

// SharedData is run-wide state that steps publish for later steps on other
// hosts (the bootstrap token made on the first master, the etcd initial
// cluster string). It lives for one run only: anything that must survive a
// run belongs in the state directory.
type SharedData struct {
	mu      sync.Mutex
	values  map[string]any
	waiters map[string]chan struct{}
}

// NewSharedData returns empty shared data.
func NewSharedData() *SharedData {
	return &SharedData{values: map[string]any{}, waiters: map[string]chan struct{}{}}
}

// Set publishes a value and wakes every Wait for key.
func (s *SharedData) Set(key string, v any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.values[key] = v
	if ch, ok := s.waiters[key]; ok {
		close(ch)
		delete(s.waiters, key)
	}
}

// Get returns the value for key and whether it was set.
func (s *SharedData) Get(key string) (any, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.values[key]
	return v, ok
}

// String returns a string value; a value of another type is reported as unset.
func (s *SharedData) String(key string) (string, bool) {
	v, ok := s.Get(key)
	if !ok {
		return "", false
	}
	str, ok := v.(string)
	return str, ok
}

// Wait blocks until key is set or ctx ends. Steps running in parallel use it
// when one host produces what the others consume within the same play.
func (s *SharedData) Wait(ctx context.Context, key string) (any, error) {
	s.mu.Lock()
	if v, ok := s.values[key]; ok {
		s.mu.Unlock()
		return v, nil
	}
	ch, ok := s.waiters[key]
	if !ok {
		ch = make(chan struct{})
		s.waiters[key] = ch
	}
	s.mu.Unlock()
	select {
	case <-ch:
		v, _ := s.Get(key)
		return v, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("wait for shared %q: %w", key, ctx.Err())
	}
}
