package engine

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// JournalFile is the name of the journal inside a run directory.
const JournalFile = "journal.json"

// DefaultJournalInterval bounds how stale journal.json can be after a crash;
// rewriting it on every step change would cost O(hosts²) bytes on big runs.
// Runs whose journal takes long to write wait longer (see journalStretch).
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

// journalStretch is how many times its own cost the journal waits between
// writes: the next write waits at least journalStretch × the last write's
// wall time (copy, marshal, fsync), so however large the run grows, the
// journal uses at most about 1/journalStretch of one core.
const journalStretch = 10

// journal rewrites journal.json when the run's state changed, at most once
// per interval (stretched as writes get slower), plus once at the end.
type journal struct {
	path string
	// capture copies the result under the run's lock; everything slow
	// (marshalling, writing) happens on the copy, outside that lock, so the
	// host goroutines recording steps never wait for the journal.
	capture func() *Result
	// encode marshals a captured result; marshalJournal except in tests.
	encode   func(r *Result, final bool) ([]byte, error)
	interval time.Duration
	// now and after are the clock the interval is measured and waited with;
	// tests replace them to check the stretching without waiting.
	now   func() time.Time
	after func(time.Duration) <-chan time.Time

	mu    sync.Mutex
	dirty bool
	err   error // first write error, reported at the end of the run
	stop  chan struct{}
	done  chan struct{}
}

func newJournal(path string, interval time.Duration, capture func() *Result) *journal {
	return &journal{
		path: path, capture: capture, encode: marshalJournal, interval: interval,
		now: time.Now, after: time.After,
		stop: make(chan struct{}), done: make(chan struct{}),
	}
}

func startJournal(path string, interval time.Duration, capture func() *Result) *journal {
	j := newJournal(path, interval, capture)
	go j.loop()
	return j
}

func (j *journal) markDirty() {
	j.mu.Lock()
	j.dirty = true
	j.mu.Unlock()
}

func (j *journal) takeDirty() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	d := j.dirty
	j.dirty = false
	return d
}

func (j *journal) loop() {
	defer close(j.done)
	wait := j.interval
	for {
		select {
		case <-j.stop:
			return
		case <-j.after(wait):
		}
		wait = j.interval
		if !j.takeDirty() {
			continue
		}
		start := j.now()
		j.flush(false)
		wait = max(j.interval, journalStretch*j.now().Sub(start))
	}
}

// flush writes the current result; final selects the indented form.
func (j *journal) flush(final bool) {
	data, err := j.encode(j.capture(), final)
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

// close stops the background writer and writes the final journal, which
// reflects every update made before close was called.
func (j *journal) close() error {
	close(j.stop)
	<-j.done
	j.flush(true)
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.err
}

// marshalJournal renders the journal file. Writes during the run are compact:
// indentation was half the cost of each write at 1,000 hosts, and those
// writes exist only so a crash leaves a recent journal. The final write,
// the one people read, is indented. Both are the same JSON document.
func marshalJournal(r *Result, final bool) ([]byte, error) {
	var data []byte
	var err error
	if final {
		data, err = json.MarshalIndent(r, "", "  ")
	} else {
		data, err = json.Marshal(r)
	}
	if err != nil {
		return nil, fmt.Errorf("marshal journal: %w", err)
	}
	return append(data, '\n'), nil
}

// copyResult copies r deeply enough that the copy can be marshalled while
// the run goes on updating r: every struct the runner modifies in place
// (Result, PlayResult, HostResult, StepResult) and the slices holding them
// are copied. What is shared is only ever replaced, never modified, once
// recorded: strings, Facts (also shared read-only with steps), a step's
// Started time and Changes, and the inner batch lists. nil slices stay nil
// so the copy marshals exactly like the original. The structs are allocated
// in a few blocks, not one by one: this runs under the runner's lock.
func copyResult(r *Result) *Result {
	out := *r
	if r.Plays != nil {
		plays := make([]PlayResult, len(r.Plays))
		out.Plays = make([]*PlayResult, len(r.Plays))
		for i, p := range r.Plays {
			plays[i] = *p
			plays[i].Selected = slices.Clone(p.Selected)
			plays[i].Batches = slices.Clone(p.Batches)
			out.Plays[i] = &plays[i]
		}
	}
	if r.Hosts != nil {
		n := 0
		for _, h := range r.Hosts {
			n += len(h.Steps)
		}
		hosts := make([]HostResult, len(r.Hosts))
		steps := make([]StepResult, n)
		stepPtrs := make([]*StepResult, n)
		out.Hosts = make([]*HostResult, len(r.Hosts))
		k := 0
		for i, h := range r.Hosts {
			hosts[i] = *h
			if h.Steps != nil {
				mine := stepPtrs[k : k+len(h.Steps) : k+len(h.Steps)]
				for m, s := range h.Steps {
					steps[k+m] = *s
					mine[m] = &steps[k+m]
				}
				k += len(h.Steps)
				hosts[i].Steps = mine
			}
			out.Hosts[i] = &hosts[i]
		}
	}
	return &out
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
