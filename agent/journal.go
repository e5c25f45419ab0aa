package agent

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// Journal appends every action as one JSON line to a local file: the record
// of what the agent did that survives an API outage and the agent's own
// restarts.
type Journal struct {
	Path string
	mu   sync.Mutex
}

func (j *Journal) Append(a Action) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := os.MkdirAll(filepath.Dir(j.Path), 0o700); err != nil {
		return fmt.Errorf("journal dir: %w", err)
	}
	f, err := os.OpenFile(j.Path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("open journal: %w", err)
	}
	defer f.Close()
	b, err := json.Marshal(a)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("write journal %s: %w", j.Path, err)
	}
	return nil
}
