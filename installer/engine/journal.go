package engine

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// JournalFile is the name of the journal inside a run directory.
const JournalFile = "journal.json"

// DefaultJournalInterval bounds how stale journal.json can be after a crash;
// rewriting it on every step change would cost O(hosts²) bytes on big runs.
const DefaultJournalInterval = 250 * time.Millisecond

// newRunDir creates <stateDir>/runs/<UTC timestamp>-<playbook>, adding a
// suffix when two runs start in the same second.
func newRunDir(stateDir, playbook string, now time.Time) (string, error) {
	base := filepath.Join(stateDir, "runs")
	if err := os.MkdirAll(base, 0o700); err != nil {
		return "", fmt.Errorf("create run directory: %w", err)
	}
	name := now.UTC().Format("20060102T150405Z") + "-" + safeName(playbook)
	for i := 1; ; i++ {
		dir := filepath.Join(base, name)
		if i > 1 {
			dir = fmt.Sprintf("%s-%d", dir, i)
		}
		err := os.Mkdir(dir, 0o700)
		if err == nil {
			if err := os.Mkdir(filepath.Join(dir, "hosts"), 0o700); err != nil {
				return "", fmt.Errorf("create run directory: %w", err)
			}
			return dir, nil
		}
		if !os.IsExist(err) || i > 1000 {
			return "", fmt.Errorf("create run directory: %w", err)
		}
	}
}

// safeName keeps a name usable as one path element.
func safeName(s string) string {
	if s == "" {
		return "playbook"
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		}
		return '_'
	}, s)
}

// writeFileAtomic writes data to a temp file beside path and renames it, so a
// reader (or a crash) sees either the old or the new journal, never half.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// journal rewrites journal.json when the run's state changed, at most once
// per interval, plus once at the end.
type journal struct {
	path     string
	snapshot func() ([]byte, error) // marshals the result under the run's lock
	interval time.Duration

	mu    sync.Mutex
	dirty bool
	err   error // first write error, reported at the end of the run
	stop  chan struct{}
	done  chan struct{}
}

func startJournal(path string, interval time.Duration, snapshot func() ([]byte, error)) *journal {
	j := &journal{path: path, snapshot: snapshot, interval: interval, stop: make(chan struct{}), done: make(chan struct{})}
	go j.loop()
	return j
}

func (j *journal) markDirty() {
	j.mu.Lock()
	j.dirty = true
	j.mu.Unlock()
}

func (j *journal) loop() {
	defer close(j.done)
	t := time.NewTicker(j.interval)
	defer t.Stop()
	for {
		select {
		case <-j.stop:
			return
		case <-t.C:
			j.mu.Lock()
			d := j.dirty
			j.dirty = false
			j.mu.Unlock()
			if d {
				j.flush()
			}
		}
	}
}

func (j *journal) flush() {
	data, err := j.snapshot()
	if err == nil {
		err = writeFileAtomic(j.path, data)
	}
	if err != nil {
		j.mu.Lock()
		if j.err == nil {
			j.err = fmt.Errorf("write journal %s: %w", j.path, err)
		}
		j.mu.Unlock()
	}
}

// close stops the background writer and writes the final journal.
func (j *journal) close() error {
	close(j.stop)
	<-j.done
	j.flush()
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.err
}

func marshalJournal(r *Result) ([]byte, error) {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}

// ReadJournal loads a journal written by Run.
func ReadJournal(path string) (*Result, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read journal: %w", err)
	}
	var r Result
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("parse journal %s: %w", path, err)
	}
	r.RunDir = filepath.Dir(path)
	return &r, nil
}
