package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sort"
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// Entry is one check with its repair ladder (rungs tried in order, one per
// backoff period, until the problem clears). An entry without rungs only
// reports.
type Entry struct {
	Check  Check
	Ladder []Repair
}

// UnitRepair is a repair that (re)starts systemd units: its cooldown is
// measured from the units' last start, so a unit systemd or a person
// restarted a moment ago is left alone to come up.
type UnitRepair interface {
	Units() []string
}

// State is a check's lasting state after hysteresis.
type State string

const (
	StateOK      State = "OK"
	StateProblem State = "Problem"
	StateUnknown State = "Unknown"
	// StatePending: the check has not run often enough to tell.
	StatePending State = "Pending"
)

// CheckStatus is what the agent reports for one check.
type CheckStatus struct {
	Name  string `json:"name"`
	State State  `json:"state"`
	// Last is the latest single result (a blip shows here, not in State).
	Last     Result    `json:"last"`
	Since    time.Time `json:"since"`
	LastRun  time.Time `json:"lastRun"`
	Duration string    `json:"duration"`
	// Repair describes the ladder: the next rung, what blocks it, or that
	// it is exhausted.
	Repair    string `json:"repair,omitempty"`
	Exhausted bool   `json:"exhausted,omitempty"`
}

// Action is one entry of the agent's journal and of its Events.
type Action struct {
	Time    time.Time `json:"time"`
	Check   string    `json:"check"`
	Repair  string    `json:"repair,omitempty"`
	Outcome string    `json:"outcome"` // started | succeeded | failed | blocked | report-only | exhausted | cleared | problem
	Message string    `json:"message"`
}

// Sink receives what the agent does: the journal, Events, metrics and the
// NodeConditions hang off it. Calls come from the agent's goroutines and
// must not block for long.
type Sink interface {
	// Observe is called after every check run.
	Observe(name string, r Result, took time.Duration)
	// Act is called for every repair decision.
	Act(a Action)
	// Blocked counts a repair held back by a safety rule.
	Blocked(repair, rule string)
}

// Options configure an Agent; zero values get Config's defaults.
type Options struct {
	Config  *Config
	Entries []Entry
	Gate    Gate
	Units   UnitStarter
	Clock   clock.WithTicker
	Sink    Sink
	Logger  *slog.Logger
}

// Agent runs checks and their ladders. Its methods are safe for concurrent
// use; Tick is the whole loop body, so tests drive it with a fake clock.
type Agent struct {
	cfg    *Config
	gate   Gate
	units  UnitStarter
	clock  clock.WithTicker
	sink   Sink
	log    *slog.Logger
	checks []*checkState

	repairs sync.WaitGroup
	mu      sync.Mutex
}

type checkState struct {
	entry Entry

	// Hysteresis counters: consecutive results of one kind.
	problems, oks, unknowns int
	state                   State
	since                   time.Time
	last                    Result
	lastRun                 time.Time
	took                    time.Duration

	// Ladder progress within one problem episode.
	rung        int
	nextAttempt time.Time
	repairing   bool
	exhausted   bool
	blockedBy   string
	reported    map[string]bool // report-only rungs already reported this episode
	note        string
}

// New builds an Agent.
func New(o Options) *Agent {
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Sink == nil {
		o.Sink = nopSink{}
	}
	if o.Config == nil {
		o.Config = &Config{}
	}
	o.Config.Defaults()
	a := &Agent{cfg: o.Config, gate: o.Gate, units: o.Units, clock: o.Clock, sink: o.Sink, log: o.Logger}
	now := o.Clock.Now()
	for _, e := range o.Entries {
		a.checks = append(a.checks, &checkState{entry: e, state: StatePending, since: now, reported: map[string]bool{}})
	}
	return a
}

// Run ticks every Interval until ctx ends. It never returns early on a
// failed check.
func (a *Agent) Run(ctx context.Context, afterTick func()) {
	t := a.clock.NewTicker(a.cfg.Interval.Duration)
	defer t.Stop()
	for {
		a.Tick(ctx)
		if afterTick != nil {
			afterTick()
		}
		select {
		case <-ctx.Done():
			a.repairs.Wait()
			return
		case <-t.C():
		}
	}
}

// Tick runs every check once, in parallel, each bounded by the timeout, then
// updates states and starts due repairs (asynchronously: a slow repair does
// not delay the next round of checks).
func (a *Agent) Tick(ctx context.Context) {
	results := make([]Result, len(a.checks))
	took := make([]time.Duration, len(a.checks))
	var wg sync.WaitGroup
	for i, cs := range a.checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := a.clock.Now()
			results[i] = a.runCheck(ctx, cs.entry.Check)
			took[i] = a.clock.Since(start)
		}()
	}
	wg.Wait()
	for i, cs := range a.checks {
		a.sink.Observe(cs.entry.Check.Name(), results[i], took[i])
		a.update(ctx, cs, results[i], took[i])
	}
}

// WaitRepairs blocks until every started repair has finished (tests, and
// shutdown).
func (a *Agent) WaitRepairs() { a.repairs.Wait() }

// runCheck turns a panic or an overrun into Unknown: a broken check must
// never take the agent down or hang a round.
func (a *Agent) runCheck(ctx context.Context, c Check) (r Result) {
	ctx, cancel := context.WithTimeout(ctx, a.cfg.Timeout.Duration)
	defer cancel()
	done := make(chan Result, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				a.log.Error("check panicked", "check", c.Name(), "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				done <- Result{Status: Unknown, Reason: "CheckCrashed", Message: fmt.Sprintf("check %s crashed: %v", c.Name(), p)}
			}
		}()
		done <- c.Run(ctx)
	}()
	select {
	case r = <-done:
	case <-ctx.Done():
		r = Result{Status: Unknown, Reason: "CheckTimedOut", Message: fmt.Sprintf("check %s did not finish within %s", c.Name(), a.cfg.Timeout)}
	}
	if r.Status != OK && r.Status != Problem && r.Status != Unknown {
		r = Result{Status: Unknown, Reason: "BadResult", Message: fmt.Sprintf("check %s returned status %q", c.Name(), r.Status)}
	}
	return r
}

func (a *Agent) update(ctx context.Context, cs *checkState, r Result, took time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.clock.Now()
	cs.last, cs.lastRun, cs.took = r, now, took
	switch r.Status {
	case OK:
		cs.oks++
		cs.problems, cs.unknowns = 0, 0
	case Problem:
		cs.problems++
		cs.oks, cs.unknowns = 0, 0
	default:
		cs.unknowns++
		cs.oks, cs.problems = 0, 0
	}
	prev := cs.state
	switch {
	case cs.problems >= a.cfg.FailAfter:
		cs.state = StateProblem
	case cs.oks >= a.cfg.ClearAfter, cs.state == StatePending && cs.oks > 0:
		// A fresh agent believes the first OK: there is nothing to clear.
		cs.state = StateOK
	case cs.unknowns >= a.cfg.FailAfter:
		cs.state = StateUnknown
	}
	if cs.state != prev {
		cs.since = now
		name := cs.entry.Check.Name()
		a.log.Info("check state changed", "check", name, "from", prev, "to", cs.state, "reason", r.Reason, "message", r.Message)
		switch {
		case cs.state == StateProblem:
			a.sink.Act(Action{Time: now, Check: name, Outcome: "problem", Message: r.Message})
		case cs.state == StateOK && prev == StateProblem:
			msg := "problem cleared"
			if cs.rung > 0 {
				msg = fmt.Sprintf("problem cleared after %d repair(s)", cs.rung)
			}
			a.sink.Act(Action{Time: now, Check: name, Outcome: "cleared", Message: msg})
		}
		if cs.state == StateOK {
			// A new episode starts with the first rung again.
			cs.rung, cs.exhausted, cs.nextAttempt, cs.blockedBy, cs.note = 0, false, time.Time{}, "", ""
			cs.reported = map[string]bool{}
		}
	}
	if cs.state == StateProblem && r.Status == Problem {
		a.maybeRepair(ctx, cs, now)
	}
}

// maybeRepair starts the next rung when it is due. Called with a.mu held.
func (a *Agent) maybeRepair(ctx context.Context, cs *checkState, now time.Time) {
	name := cs.entry.Check.Name()
	if cs.repairing || cs.exhausted || len(cs.entry.Ladder) == 0 || now.Before(cs.nextAttempt) {
		return
	}
	if cs.rung >= len(cs.entry.Ladder) {
		cs.exhausted = true
		cs.note = "ladder exhausted: the node needs a person"
		a.sink.Act(Action{Time: now, Check: name, Outcome: "exhausted", Message: fmt.Sprintf("%s still failing after %d repair(s) (%s); the agent stops repairing it until it clears: %s", name, len(cs.entry.Ladder), ladderNames(cs.entry.Ladder), cs.last.Message)})
		return
	}
	rep := cs.entry.Ladder[cs.rung]
	if a.cfg.ModeFor(rep.Name()) == ModeReportOnly {
		if !cs.reported[rep.Name()] {
			cs.reported[rep.Name()] = true
			a.sink.Act(Action{Time: now, Check: name, Repair: rep.Name(), Outcome: "report-only", Message: fmt.Sprintf("would run %s for %s (mode report-only): %s", rep.Name(), name, cs.last.Message)})
		}
		// Report-only walks the ladder on the same schedule, so the journal
		// shows every rung a real repair would take, but changes nothing.
		cs.rung++
		cs.nextAttempt = now.Add(a.backoff(cs.rung))
		cs.note = "report-only"
		return
	}
	if ur, ok := rep.(UnitRepair); ok && a.units != nil {
		for _, u := range ur.Units() {
			started, err := a.units.LastStart(ctx, u)
			if err != nil {
				a.log.Warn("unit last start unknown; cooldown not applied", "unit", u, "err", err)
				continue
			}
			if wait := started.Add(a.cfg.Cooldown.Duration).Sub(now); !started.IsZero() && wait > 0 {
				cs.note = fmt.Sprintf("%s: %s started %s ago, cooldown %s", rep.Name(), u, now.Sub(started).Round(time.Second), a.cfg.Cooldown)
				cs.nextAttempt = now.Add(wait)
				return
			}
		}
	}
	var release func()
	if a.gate != nil {
		var err error
		release, err = a.gate.Acquire(ctx, rep.Name(), rep.Scope())
		if err != nil {
			rule := "gate-error"
			var be *BlockedError
			if errors.As(err, &be) {
				rule = be.Rule
			}
			a.sink.Blocked(rep.Name(), rule)
			if cs.blockedBy != rule {
				cs.blockedBy = rule
				a.sink.Act(Action{Time: now, Check: name, Repair: rep.Name(), Outcome: "blocked", Message: fmt.Sprintf("%s waits: %v", rep.Name(), err)})
			}
			cs.note = fmt.Sprintf("%s waits: %v", rep.Name(), err)
			return
		}
	}
	cs.blockedBy = ""
	cs.repairing = true
	cs.note = "running " + rep.Name()
	a.sink.Act(Action{Time: now, Check: name, Repair: rep.Name(), Outcome: "started", Message: fmt.Sprintf("%s for %s: %s", rep.Name(), name, cs.last.Message)})
	a.repairs.Add(1)
	go func() {
		defer a.repairs.Done()
		start := a.clock.Now()
		err := rep.Act(ctx)
		if release != nil {
			release()
		}
		a.mu.Lock()
		defer a.mu.Unlock()
		end := a.clock.Now()
		cs.repairing = false
		cs.rung++
		// The next rung waits a backoff measured from this repair's end,
		// so the check gets time to see the effect.
		cs.nextAttempt = end.Add(a.backoff(cs.rung))
		took := end.Sub(start).Round(time.Millisecond)
		if err != nil {
			cs.note = fmt.Sprintf("%s failed: %v", rep.Name(), err)
			a.sink.Act(Action{Time: end, Check: name, Repair: rep.Name(), Outcome: "failed", Message: fmt.Sprintf("%s failed after %s: %v", rep.Name(), took, err)})
			return
		}
		cs.note = fmt.Sprintf("%s done, waiting for %s to clear", rep.Name(), name)
		a.sink.Act(Action{Time: end, Check: name, Repair: rep.Name(), Outcome: "succeeded", Message: fmt.Sprintf("%s finished in %s", rep.Name(), took)})
	}()
}

// backoff before rung n (1-based count of rungs already tried): BackoffBase
// doubled per rung, capped at BackoffMax.
func (a *Agent) backoff(n int) time.Duration {
	d := a.cfg.BackoffBase.Duration
	for i := 1; i < n && d < a.cfg.BackoffMax.Duration; i++ {
		d *= 2
	}
	return min(d, a.cfg.BackoffMax.Duration)
}

// Status is a snapshot for /status, NodeConditions and metrics.
func (a *Agent) Status() []CheckStatus {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]CheckStatus, 0, len(a.checks))
	for _, cs := range a.checks {
		s := CheckStatus{Name: cs.entry.Check.Name(), State: cs.state, Last: cs.last, Since: cs.since, LastRun: cs.lastRun, Duration: cs.took.Round(time.Millisecond).String(), Exhausted: cs.exhausted}
		switch {
		case cs.state != StateProblem:
		case cs.note != "":
			s.Repair = cs.note
		case len(cs.entry.Ladder) == 0:
			s.Repair = "no automatic repair for this check"
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func ladderNames(l []Repair) string {
	s := ""
	for i, r := range l {
		if i > 0 {
			s += ", then "
		}
		s += r.Name()
	}
	return s
}

type nopSink struct{}

func (nopSink) Observe(string, Result, time.Duration) {}
func (nopSink) Act(Action)                            {}
func (nopSink) Blocked(string, string)                {}
