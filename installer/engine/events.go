package engine

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"
)

// EventType names a progress event.
type EventType string

// Event types, in the order a run produces them.
const (
	EventRunStart   EventType = "run_start"
	EventPlayStart  EventType = "play_start"
	EventBatchStart EventType = "batch_start"
	EventHostStart  EventType = "host_start" // a host begins a play (after acquiring a concurrency slot)
	EventStepPlan   EventType = "step_plan"  // Plan returned; Changes is the plan
	EventStepApply  EventType = "step_apply" // Apply is starting
	EventStepRetry  EventType = "step_retry" // an attempt failed; another follows after Delay
	EventStepDone   EventType = "step_done"  // applied | unchanged | planned | skipped
	EventStepFailed EventType = "step_failed"
	EventHostDone   EventType = "host_done"
	EventPlayDone   EventType = "play_done"
	EventRunDone    EventType = "run_done"
)

// Event is one progress report. The engine never calls a sink concurrently,
// so sinks need no locking of their own for Event.
type Event struct {
	Type     EventType     `json:"type"`
	Time     time.Time     `json:"time"`
	Playbook string        `json:"playbook,omitempty"`
	Play     string        `json:"play,omitempty"`
	Batch    int           `json:"batch,omitempty"`
	Batches  int           `json:"batches,omitempty"`
	Hosts    []string      `json:"hosts,omitempty"`
	Host     string        `json:"host,omitempty"`
	Step     string        `json:"step,omitempty"`
	Status   string        `json:"status,omitempty"`
	Changes  []Change      `json:"changes,omitempty"`
	Attempt  int           `json:"attempt,omitempty"`
	Delay    string        `json:"delay,omitempty"`
	Duration time.Duration `json:"-"`
	Error    string        `json:"error,omitempty"`
	DryRun   bool          `json:"dryRun,omitempty"`
	RunDir   string        `json:"runDir,omitempty"`
	// Result is set on run_done so sinks can print the recap.
	Result *Result `json:"-"`
}

// MarshalJSON adds durationSeconds and, on run_done, the per-host summary.
func (e Event) MarshalJSON() ([]byte, error) {
	type plain Event
	w := struct {
		plain
		DurationSeconds float64       `json:"durationSeconds,omitempty"`
		Summary         []HostSummary `json:"summary,omitempty"`
	}{plain: plain(e), DurationSeconds: e.Duration.Seconds()}
	if e.Type == EventRunDone && e.Result != nil {
		w.Summary = e.Result.Summary()
	}
	return json.Marshal(w)
}

// EventSink receives progress events.
type EventSink interface {
	Event(e Event)
}

type discardSink struct{}

func (discardSink) Event(Event) {}

// Sinks fans events out to several sinks.
type Sinks []EventSink

// Event forwards e to every sink.
func (s Sinks) Event(e Event) {
	for _, x := range s {
		x.Event(e)
	}
}

// JSONSink writes one JSON object per line (--output json).
type JSONSink struct {
	enc *json.Encoder
}

// NewJSONSink writes events to w.
func NewJSONSink(w io.Writer) *JSONSink { return &JSONSink{enc: json.NewEncoder(w)} }

// Event writes e as one line.
func (s *JSONSink) Event(e Event) { _ = s.enc.Encode(e) }

// PlainSink writes one line per interesting event, for logs and pipes:
//
//	[prepare hosts] host=master1 step=sysctl applied (2 changes) 1.2s
type PlainSink struct {
	w io.Writer
}

// NewPlainSink writes lines to w.
func NewPlainSink(w io.Writer) *PlainSink { return &PlainSink{w: w} }

// Event prints e.
func (s *PlainSink) Event(e Event) {
	switch e.Type {
	case EventRunStart:
		mode := ""
		if e.DryRun {
			mode = " (dry run: nothing will be changed)"
		}
		fmt.Fprintf(s.w, "run %s%s\n", e.Playbook, mode)
	case EventPlayStart:
		fmt.Fprintf(s.w, "== play %q: %d host(s) in %d batch(es)\n", e.Play, len(e.Hosts), e.Batches)
	case EventBatchStart:
		if e.Batch > 0 {
			fmt.Fprintf(s.w, "[%s] batch %d: %s\n", e.Play, e.Batch, strings.Join(e.Hosts, ", "))
		}
	case EventStepRetry:
		fmt.Fprintf(s.w, "[%s] host=%s step=%s retry (attempt %d) in %s: %s\n", e.Play, e.Host, e.Step, e.Attempt, e.Delay, e.Error)
	case EventStepDone, EventStepFailed:
		fmt.Fprintf(s.w, "[%s] host=%s step=%s %s%s\n", e.Play, e.Host, e.Step, describeStep(e), errSuffix(e.Error))
		if e.Status == string(StatusPlanned) {
			for _, c := range e.Changes {
				fmt.Fprintf(s.w, "    ~ %s\n", c)
			}
		}
	case EventHostDone:
		if e.Status == string(HostUnreachable) {
			fmt.Fprintf(s.w, "[%s] host=%s unreachable%s\n", e.Play, e.Host, errSuffix(e.Error))
		}
	case EventPlayDone:
		if e.Error != "" {
			fmt.Fprintf(s.w, "== play %q %s: %s\n", e.Play, e.Status, e.Error)
		}
	case EventRunDone:
		if e.Result != nil {
			fmt.Fprintln(s.w)
			RenderRecap(s.w, e.Result)
		}
	}
}

func describeStep(e Event) string {
	var b strings.Builder
	b.WriteString(e.Status)
	if n := len(e.Changes); n > 0 {
		fmt.Fprintf(&b, " (%d change%s)", n, plural(n))
	}
	if e.Attempt > 1 {
		fmt.Fprintf(&b, " after %d attempts", e.Attempt)
	}
	if e.Type != EventStepDone || e.Status != string(StatusSkipped) {
		fmt.Fprintf(&b, " %s", e.Duration.Round(100*time.Millisecond))
	}
	return b.String()
}

func errSuffix(s string) string {
	if s == "" {
		return ""
	}
	return ": " + s
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// NewConsoleSink picks the progress output for a CLI: "json" gives JSON
// lines; "text" gives a live table when w is a terminal and plain lines
// otherwise. Close the returned sink when the run ends.
func NewConsoleSink(w io.Writer, format string) (EventSink, func(), error) {
	switch format {
	case "json":
		return NewJSONSink(w), func() {}, nil
	case "text", "":
		if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			l := NewLiveSink(w, 100*time.Millisecond)
			return l, l.Close, nil
		}
		return NewPlainSink(w), func() {}, nil
	}
	return nil, nil, fmt.Errorf("unknown output format %q: want text or json", format)
}

// LiveSink redraws a compact per-host status table for the current play on a
// terminal, at most once per interval, and leaves a one-line summary per
// play plus the recap behind when done.
type LiveSink struct {
	w        io.Writer
	interval time.Duration
	maxRows  int

	mu      sync.Mutex
	play    string
	order   []string
	rows    map[string]*liveRow
	drawn   int // lines of the last frame, erased before the next
	dirty   bool
	stop    chan struct{}
	stopped sync.Once
	done    chan struct{}
}

type liveRow struct {
	state   string // waiting | running | ok | changed | failed | unreachable
	step    string
	done    int
	changed int
	total   int
	err     string
}

// NewLiveSink starts the redraw loop; call Close when the run ends.
func NewLiveSink(w io.Writer, interval time.Duration) *LiveSink {
	l := &LiveSink{w: w, interval: interval, maxRows: 20, rows: map[string]*liveRow{}, stop: make(chan struct{}), done: make(chan struct{})}
	go l.loop()
	return l
}

func (l *LiveSink) loop() {
	defer close(l.done)
	t := time.NewTicker(l.interval)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			l.mu.Lock()
			if l.dirty {
				l.redraw()
			}
			l.mu.Unlock()
		}
	}
}

// Close stops redrawing.
func (l *LiveSink) Close() {
	l.stopped.Do(func() { close(l.stop); <-l.done })
}

// Event updates the table.
func (l *LiveSink) Event(e Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	row := func() *liveRow {
		r, ok := l.rows[e.Host]
		if !ok {
			r = &liveRow{state: "waiting"}
			l.rows[e.Host] = r
			l.order = append(l.order, e.Host)
		}
		return r
	}
	switch e.Type {
	case EventRunStart:
		mode := ""
		if e.DryRun {
			mode = " (dry run)"
		}
		fmt.Fprintf(l.w, "run %s%s\n", e.Playbook, mode)
	case EventPlayStart:
		l.play, l.order, l.rows = e.Play, nil, map[string]*liveRow{}
		for _, h := range e.Hosts {
			e.Host = h
			row()
		}
	case EventHostStart:
		row().state = "running"
	case EventStepPlan, EventStepApply, EventStepRetry:
		r := row()
		r.state, r.step = "running", e.Step
		if e.Type == EventStepRetry {
			r.step = fmt.Sprintf("%s (retry %d)", e.Step, e.Attempt)
		}
	case EventStepDone:
		r := row()
		r.done++
		if e.Status == string(StatusApplied) || e.Status == string(StatusPlanned) {
			r.changed++
		}
	case EventStepFailed:
		r := row()
		r.state, r.err = e.Status, e.Error
	case EventHostDone:
		r := row()
		r.step = ""
		switch {
		case e.Status == string(HostUnreachable):
			r.state, r.err = "unreachable", e.Error
		case r.state == "running" && r.changed > 0:
			r.state = "changed"
		case r.state == "running":
			r.state = "ok"
		}
	case EventPlayDone:
		l.erase()
		counts := map[string]int{}
		for _, h := range l.order {
			counts[l.rows[h].state]++
		}
		fmt.Fprintf(l.w, "play %-24q %-8s ok=%d changed=%d failed=%d unreachable=%d%s\n", l.play, e.Status,
			counts["ok"], counts["changed"], counts["failed"]+counts["cancelled"], counts["unreachable"], errSuffix(e.Error))
		for _, h := range l.order {
			if r := l.rows[h]; r.err != "" {
				fmt.Fprintf(l.w, "  %s: %s\n", h, r.err)
			}
		}
		l.order, l.rows = nil, map[string]*liveRow{}
		return
	case EventRunDone:
		l.erase()
		if e.Result != nil {
			fmt.Fprintln(l.w)
			RenderRecap(l.w, e.Result)
		}
		return
	}
	l.dirty = true
}

func (l *LiveSink) erase() {
	if l.drawn > 0 {
		fmt.Fprintf(l.w, "\x1b[%dA\x1b[J", l.drawn)
		l.drawn = 0
	}
	l.dirty = false
}

// redraw draws the frame: running and failed hosts first, capped at maxRows.
func (l *LiveSink) redraw() {
	var b strings.Builder
	lines := 0
	fmt.Fprintf(&b, "\x1b[1mplay %s\x1b[0m\n", l.play)
	lines++
	prio := map[string]int{"failed": 0, "cancelled": 0, "unreachable": 0, "running": 1, "waiting": 2, "changed": 3, "ok": 3}
	shown := 0
	counts := map[string]int{}
	for _, h := range l.order {
		counts[l.rows[h].state]++
	}
	for p := 0; p <= 3; p++ {
		for _, h := range l.order {
			r := l.rows[h]
			if prio[r.state] != p {
				continue
			}
			if shown >= l.maxRows {
				continue
			}
			shown++
			color := map[string]string{"failed": "31", "cancelled": "31", "unreachable": "31", "running": "33", "changed": "33", "ok": "32", "waiting": "90"}[r.state]
			line := fmt.Sprintf("  %-20s \x1b[%sm%-11s\x1b[0m %-28s done=%d changed=%d", h, color, r.state, r.step, r.done, r.changed)
			if r.err != "" {
				line += "  " + firstLine(r.err)
			}
			b.WriteString(line + "\x1b[K\n")
			lines++
		}
	}
	if len(l.order) > shown {
		fmt.Fprintf(&b, "  ... %d more hosts\n", len(l.order)-shown)
		lines++
	}
	fmt.Fprintf(&b, "  running=%d waiting=%d ok=%d changed=%d failed=%d\n", counts["running"], counts["waiting"], counts["ok"], counts["changed"], counts["failed"]+counts["cancelled"]+counts["unreachable"])
	lines++
	l.erase()
	io.WriteString(l.w, b.String())
	l.drawn = lines
}
