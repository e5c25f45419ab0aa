package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/go-multierror"

	"github.com/kubewright/kubewright/installer/inventory"
	"github.com/kubewright/kubewright/installer/remote"
)

// Connector opens a connection to an inventory host. The CLI dials SSH;
// tests pass enginetest's local fake. The engine calls it at most once per
// host per run and closes what it returns when the run ends.
type Connector interface {
	Connect(ctx context.Context, h *inventory.Host) (remote.Host, error)
}

// ConnectorFunc adapts a function to Connector.
type ConnectorFunc func(ctx context.Context, h *inventory.Host) (remote.Host, error)

// Connect calls f.
func (f ConnectorFunc) Connect(ctx context.Context, h *inventory.Host) (remote.Host, error) {
	return f(ctx, h)
}

// HostSelector resolves a play's "hosts:" selector. *inventory.Cluster
// implements it; tests may pass their own.
type HostSelector interface {
	Select(selector string) ([]*inventory.Host, error)
}

// Defaults for Options fields left zero.
const (
	DefaultConcurrency  = 20
	DefaultStepTimeout  = 30 * time.Minute
	DefaultFactsTimeout = 2 * time.Minute
	// DefaultAbandonGrace is how long a step gets to return after its context
	// ended (timeout or cancel) before the engine stops waiting for it.
	DefaultAbandonGrace = 5 * time.Second
)

// Options configure one run. Playbook, Cluster, Registry, Connector and
// StateDir are required.
type Options struct {
	Playbook *Playbook
	Cluster  *inventory.Cluster
	// Selector resolves plays' host selectors; nil uses Cluster when it
	// implements HostSelector.
	Selector  HostSelector
	Registry  *Registry
	Connector Connector
	// Concurrency bounds how many hosts run at once across the whole run
	// (all plays and batches share it). Zero means DefaultConcurrency.
	Concurrency int
	// DryRun runs only Plan (and fact gathering): nothing is changed.
	DryRun bool
	// StateDir is the cluster's state directory; the run writes
	// StateDir/runs/<timestamp>-<playbook>/{journal.json,hosts/*.log}.
	StateDir string
	// Events receives progress; nil discards it.
	Events EventSink
	// Secrets are literal values replaced by [REDACTED] in host logs, the
	// journal and events; Redactor, if set, is applied after them.
	Secrets  []string
	Redactor func(string) string
	// StepTimeout applies to steps that set no timeout; zero means DefaultStepTimeout.
	StepTimeout time.Duration
	// FactsTimeout bounds connecting plus fact gathering per host.
	FactsTimeout time.Duration
	// AbandonGrace: see DefaultAbandonGrace.
	AbandonGrace time.Duration
	// JournalInterval: see DefaultJournalInterval.
	JournalInterval time.Duration
	// Now and Sleep are the clock; tests inject them to observe backoff
	// without waiting. Sleep must return early with ctx's error when ctx ends.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
	// Logger, if set, gets one debug line per remote command (--verbose).
	Logger *slog.Logger
	// Shared, if set, is the run-wide data steps see as Target.Shared; the
	// caller pre-populates it with what it prepared before any host is
	// touched (e.g. the verified artifacts source). nil means a fresh one.
	Shared *SharedData
}

// SleepContext is the default Options.Sleep.
func SleepContext(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Backoff returns the wait before retry number n (1-based): base doubled per
// retry, capped at MaxRetryDelay.
func Backoff(base time.Duration, n int) time.Duration {
	if base <= 0 {
		base = DefaultRetryDelay
	}
	d := base
	for i := 1; i < n; i++ {
		d *= 2
		if d >= MaxRetryDelay {
			return MaxRetryDelay
		}
	}
	return min(d, MaxRetryDelay)
}

func (o *Options) setDefaults() error {
	switch {
	case o.Playbook == nil:
		return errors.New("run: no playbook")
	case o.Registry == nil:
		return errors.New("run: no step registry")
	case o.Connector == nil:
		return errors.New("run: no connector")
	case o.StateDir == "":
		return errors.New("run: no state directory (the journal must go somewhere)")
	case o.Concurrency < 0:
		return fmt.Errorf("run: concurrency must be positive, got %d", o.Concurrency)
	}
	if o.Selector == nil {
		if s, ok := any(o.Cluster).(HostSelector); ok && o.Cluster != nil {
			o.Selector = s
		} else {
			return errors.New("run: no host selector")
		}
	}
	if o.Concurrency == 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.StepTimeout <= 0 {
		o.StepTimeout = DefaultStepTimeout
	}
	if o.FactsTimeout <= 0 {
		o.FactsTimeout = DefaultFactsTimeout
	}
	if o.AbandonGrace <= 0 {
		o.AbandonGrace = DefaultAbandonGrace
	}
	if o.JournalInterval <= 0 {
		o.JournalInterval = DefaultJournalInterval
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Sleep == nil {
		o.Sleep = SleepContext
	}
	if o.Events == nil {
		o.Events = discardSink{}
	}
	return nil
}

// runner is the state of one Run.
type runner struct {
	opts   Options
	redact func(string) string
	sem    chan struct{}
	shared *SharedData
	steps  [][]Step

	mu      sync.Mutex // guards res and everything reachable from it, and hosts
	res     *Result
	hosts   map[string]*hostState
	journal *journal

	eventMu sync.Mutex
}

// hostState is a host across plays: one connection, facts gathered once.
type hostState struct {
	inv    *inventory.Host
	res    *HostResult
	log    *hostLog
	failed bool // failed or unreachable: excluded from later plays

	setupOnce sync.Once
	conn      remote.Host
	target    *Target
	setupErr  error
}

// Run executes a playbook. It validates everything first (step names, step
// parameters, host selectors) and returns an *InvalidError without touching a
// host if anything is wrong. Otherwise it always returns a Result, written to
// the journal, and an error aggregating every host's failure.
func Run(ctx context.Context, opts Options) (*Result, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	steps, err := opts.Playbook.build(opts.Registry)
	if err != nil {
		return nil, err
	}
	selected, err := selectHosts(opts.Playbook, opts.Selector)
	if err != nil {
		return nil, err
	}

	if opts.Shared == nil {
		opts.Shared = NewSharedData()
	}
	r := &runner{
		opts:   opts,
		redact: newRedactor(opts.Secrets, opts.Redactor),
		sem:    make(chan struct{}, opts.Concurrency),
		shared: opts.Shared,
		steps:  steps,
		hosts:  map[string]*hostState{},
	}
	start := opts.Now()
	runDir, err := newRunDir(opts.StateDir, opts.Playbook.Name, start)
	if err != nil {
		return nil, err
	}
	r.res = &Result{
		Version:  1,
		Playbook: opts.Playbook.Name,
		Source:   opts.Playbook.Source,
		DryRun:   opts.DryRun,
		Status:   RunRunning,
		Started:  start,
		RunDir:   runDir,
	}
	if opts.Cluster != nil {
		r.res.Cluster = opts.Cluster.Metadata.Name
	}
	r.initResult(selected)
	r.journal = startJournal(filepath.Join(runDir, JournalFile), opts.JournalInterval, r.captureResult)
	r.journal.flush(false) // the run directory is never without a journal

	r.emit(Event{Type: EventRunStart, Playbook: r.res.Playbook, DryRun: opts.DryRun, RunDir: runDir})
	r.gatherAllFacts(ctx, selected)
	runErr := r.runPlays(ctx, selected)
	return r.finish(ctx, runErr)
}

// selectHosts resolves every play's selector up front so a typo fails the
// run before the first play changes anything.
func selectHosts(pb *Playbook, sel HostSelector) ([][]*inventory.Host, error) {
	var problems []Problem
	out := make([][]*inventory.Host, len(pb.Plays))
	for i, pl := range pb.Plays {
		hosts, err := sel.Select(pl.Hosts)
		if err != nil {
			problems = append(problems, Problem{Pos: pl.Pos, Path: fmt.Sprintf("plays[%d].hosts", i), Msg: err.Error()})
			continue
		}
		seen := map[string]bool{}
		for _, h := range hosts {
			if !seen[h.Name] {
				seen[h.Name] = true
				out[i] = append(out[i], h)
			}
		}
	}
	if len(problems) > 0 {
		return nil, &InvalidError{Source: pb.Source, Problems: problems}
	}
	return out, nil
}

// initResult lays out every (host, play, step) as pending, so a journal read
// after a crash shows what had not run yet.
func (r *runner) initResult(selected [][]*inventory.Host) {
	for i, pl := range r.opts.Playbook.Plays {
		pr := &PlayResult{Name: pl.Name, Selector: pl.Hosts, Status: PlayPending, Selected: []string{}}
		for _, h := range selected[i] {
			pr.Selected = append(pr.Selected, h.Name)
			hs := r.hostState(h)
			for _, ref := range pl.Steps {
				hs.res.Steps = append(hs.res.Steps, &StepResult{Play: pl.Name, PlayIndex: i, Step: ref.Name, Status: StatusPending})
			}
		}
		r.res.Plays = append(r.res.Plays, pr)
	}
}

func (r *runner) hostState(h *inventory.Host) *hostState {
	if hs, ok := r.hosts[h.Name]; ok {
		return hs
	}
	logRel := filepath.Join("hosts", safeName(h.Name)+".log")
	hs := &hostState{
		inv: h,
		res: &HostResult{Name: h.Name, Status: HostPending, Log: logRel},
		log: &hostLog{path: filepath.Join(r.res.RunDir, logRel), redact: r.redact, now: r.opts.Now},
	}
	r.hosts[h.Name] = hs
	r.res.Hosts = append(r.res.Hosts, hs.res)
	return hs
}

// captureResult copies the result for the journal. Only the copy is taken
// under the lock; the journal marshals and writes it without holding r.mu,
// so a host recording a step waits at most for the copy, not for a
// marshal that takes tens of milliseconds at 1,000 hosts.
func (r *runner) captureResult() *Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	return copyResult(r.res)
}

// update mutates the result under the lock and schedules a journal write.
func (r *runner) update(f func()) {
	r.mu.Lock()
	f()
	r.mu.Unlock()
	r.journal.markDirty()
}

func (r *runner) emit(e Event) {
	e.Time = r.opts.Now()
	e.Error = r.redact(e.Error)
	r.eventMu.Lock()
	defer r.eventMu.Unlock()
	r.opts.Events.Event(e)
}

// runPlays returns the reason the run stopped early (abort), or nil.
func (r *runner) runPlays(ctx context.Context, selected [][]*inventory.Host) error {
	var stopErr error
	for i := range r.opts.Playbook.Plays {
		pl := &r.opts.Playbook.Plays[i]
		pr := r.res.Plays[i]
		if stopErr != nil || ctx.Err() != nil {
			reason := "run cancelled"
			if stopErr != nil {
				reason = "run stopped: " + stopErr.Error()
			}
			r.skipPlay(i, selected[i], reason)
			continue
		}
		if len(selected[i]) == 0 {
			r.update(func() { pr.Status = PlaySkipped; pr.Error = "no hosts matched " + pl.Hosts })
			r.emit(Event{Type: EventPlayStart, Play: pl.Name})
			r.emit(Event{Type: EventPlayDone, Play: pl.Name, Status: string(PlaySkipped)})
			continue
		}
		stopErr = r.runPlay(ctx, i, selected[i])
	}
	return stopErr
}

func (r *runner) skipPlay(i int, hosts []*inventory.Host, reason string) {
	r.update(func() {
		r.res.Plays[i].Status = PlaySkipped
		r.res.Plays[i].Error = reason
		for _, h := range hosts {
			for _, sr := range r.hosts[h.Name].res.Steps {
				if sr.PlayIndex == i && sr.Status == StatusPending {
					sr.Status, sr.Reason = StatusSkipped, reason
				}
			}
		}
	})
}

// runPlay runs one play batch by batch. It returns an error when the play
// was aborted (max_fail_percentage, any_errors_fatal), which stops the run.
func (r *runner) runPlay(ctx context.Context, idx int, selected []*inventory.Host) error {
	pl := &r.opts.Playbook.Plays[idx]
	pr := r.res.Plays[idx]

	// Hosts that failed in an earlier play sit this one out.
	var hosts []*inventory.Host
	r.update(func() {
		for _, h := range selected {
			hs := r.hosts[h.Name]
			if hs.failed {
				for _, sr := range hs.res.Steps {
					if sr.PlayIndex == idx && sr.Status == StatusPending {
						sr.Status, sr.Reason = StatusSkipped, "host failed earlier in the run"
					}
				}
				continue
			}
			hosts = append(hosts, h)
		}
		size := pl.Serial.BatchSize(len(hosts))
		pr.Batches = [][]string{}
		for s := 0; s < len(hosts); s += size {
			var names []string
			for _, h := range hosts[s:min(s+size, len(hosts))] {
				names = append(names, h.Name)
			}
			pr.Batches = append(pr.Batches, names)
		}
		pr.Status = PlayRunning
	})
	r.emit(Event{Type: EventPlayStart, Play: pl.Name, Hosts: pr.Selected, Batches: len(pr.Batches)})

	size := pl.Serial.BatchSize(len(hosts))
	failed := 0
	var abortErr error
	stop := &stopFlag{}
	for b := 0; b*size < len(hosts); b++ {
		batch := hosts[b*size : min((b+1)*size, len(hosts))]
		if ctx.Err() != nil || abortErr != nil {
			reason := "run cancelled"
			if abortErr != nil {
				reason = "play aborted: " + abortErr.Error()
			}
			r.update(func() {
				for _, h := range batch {
					for _, sr := range r.hosts[h.Name].res.Steps {
						if sr.PlayIndex == idx && sr.Status == StatusPending {
							sr.Status, sr.Reason = StatusSkipped, reason
						}
					}
				}
			})
			continue
		}
		r.emit(Event{Type: EventBatchStart, Play: pl.Name, Batch: b + 1, Hosts: pr.Batches[b]})
		var wg sync.WaitGroup
		results := make([]bool, len(batch))
		for k, h := range batch {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[k] = r.runHostPlay(ctx, idx, h, stop)
			}()
		}
		wg.Wait()
		for _, ok := range results {
			if !ok {
				failed++
			}
		}
		switch {
		case ctx.Err() != nil:
		case pl.AnyErrorsFatal && failed > 0:
			abortErr = fmt.Errorf("play %q: %d host(s) failed and any_errors_fatal is set", pl.Name, failed)
		case pl.MaxFailPercentage != nil && failed*100 > *pl.MaxFailPercentage*len(hosts):
			abortErr = fmt.Errorf("play %q: %d of %d hosts failed (%d%%), above max_fail_percentage %d%%",
				pl.Name, failed, len(hosts), failed*100/len(hosts), *pl.MaxFailPercentage)
		}
	}

	status := PlayOK
	switch {
	case abortErr != nil:
		status = PlayAborted
	case ctx.Err() != nil:
		status = PlaySkipped
		if failed > 0 {
			status = PlayFailed
		}
	case failed > 0:
		status = PlayFailed
	}
	r.update(func() {
		pr.Status = status
		if abortErr != nil {
			pr.Error = abortErr.Error()
		}
	})
	e := Event{Type: EventPlayDone, Play: pl.Name, Status: string(status)}
	if abortErr != nil {
		e.Error = abortErr.Error()
	}
	r.emit(e)
	return abortErr
}

// stopFlag is set by any_errors_fatal so hosts in the same batch stop after
// the step they are on.
type stopFlag struct {
	mu  sync.Mutex
	set bool
}

func (s *stopFlag) raise() { s.mu.Lock(); s.set = true; s.mu.Unlock() }
func (s *stopFlag) up() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.set
}

// acquire takes a slot of the global concurrency limit.
func (r *runner) acquire(ctx context.Context) bool {
	select {
	case r.sem <- struct{}{}:
		if ctx.Err() != nil { // both were ready: select picks at random
			<-r.sem
			return false
		}
		return true
	case <-ctx.Done():
		return false
	}
}

func (r *runner) release() { <-r.sem }

// runHostPlay runs a play's steps on one host and reports whether the host
// is still healthy afterwards.
func (r *runner) runHostPlay(ctx context.Context, playIdx int, h *inventory.Host, stop *stopFlag) bool {
	pl := &r.opts.Playbook.Plays[playIdx]
	r.mu.Lock()
	hs := r.hosts[h.Name]
	r.mu.Unlock()
	mine := func() []*StepResult {
		var out []*StepResult
		for _, sr := range hs.res.Steps {
			if sr.PlayIndex == playIdx {
				out = append(out, sr)
			}
		}
		return out
	}()
	skipRest := func(from int, reason string) {
		r.update(func() {
			for _, sr := range mine[from:] {
				if sr.Status == StatusPending {
					sr.Status, sr.Reason = StatusSkipped, reason
				}
			}
		})
	}

	if !r.acquire(ctx) {
		skipRest(0, "run cancelled")
		return true
	}
	defer r.release()

	r.emit(Event{Type: EventHostStart, Play: pl.Name, Host: h.Name})
	t, err := r.setup(ctx, hs)
	if err != nil {
		msg := r.redact(err.Error())
		r.update(func() {
			hs.failed = true
			hs.res.Status = HostUnreachable
			hs.res.Error = msg
		})
		skipRest(0, "host unreachable")
		r.emit(Event{Type: EventHostDone, Play: pl.Name, Host: h.Name, Status: string(HostUnreachable), Error: msg})
		return ctx.Err() != nil // a cancelled connect is not the host's fault
	}

	ok := true
	for j, ref := range pl.Steps {
		switch {
		case ctx.Err() != nil:
			skipRest(j, "run cancelled")
		case stop.up():
			skipRest(j, "play aborted: another host failed and any_errors_fatal is set")
		case !ref.When.Eval(h, t.Facts):
			r.update(func() { mine[j].Status, mine[j].Reason = StatusSkipped, "when: "+ref.When.Source+" is false" })
			r.emit(Event{Type: EventStepDone, Play: pl.Name, Host: h.Name, Step: ref.Name, Status: string(StatusSkipped)})
			continue
		default:
			status := r.runStep(ctx, pl, &pl.Steps[j], r.steps[playIdx][j], t, mine[j])
			if status != StatusFailed && status != StatusCancelled {
				continue
			}
			if status == StatusFailed {
				ok = false
				r.update(func() { hs.failed = true })
				if pl.AnyErrorsFatal {
					stop.raise()
				}
			}
			reason := "an earlier step failed on this host"
			if status == StatusCancelled {
				reason = "run cancelled"
			}
			skipRest(j+1, reason)
		}
		break
	}
	hostStatus := "ok"
	if !ok {
		hostStatus = string(HostFailed)
	}
	r.emit(Event{Type: EventHostDone, Play: pl.Name, Host: h.Name, Status: hostStatus})
	return ok
}

// SharedFactsKey is the SharedData key under which every run publishes the
// facts of all hosts it selected (map[string]*Facts by host name, read-only),
// before the first step runs. Steps that judge one host against the others
// read it: preflight's unique hostname, machine-id and address checks, and
// whether the VIP is held by one of our own masters. A host that could not be
// reached is absent. The engine sets it on every run, replacing any value a
// caller put in Options.Shared under the same key.
const SharedFactsKey = "facts"

// gatherAllFacts connects to every host the run selected, in any play, and
// gathers its facts before the first play starts, within the concurrency
// limit; then it publishes them under SharedFactsKey. Gathering lazily, when
// a host's first play starts, would leave a step on a master without the
// facts of workers that later plays select. Failures are kept in the host's
// state and reported when the host's first play runs, as if it had connected
// then, so the schedule (batches, max-fail) is unchanged; a dead host only
// costs its connect timeout once, up front.
func (r *runner) gatherAllFacts(ctx context.Context, selected [][]*inventory.Host) {
	var hosts []*hostState
	seen := map[string]bool{}
	r.mu.Lock()
	for _, play := range selected {
		for _, h := range play {
			if !seen[h.Name] {
				seen[h.Name] = true
				hosts = append(hosts, r.hosts[h.Name])
			}
		}
	}
	r.mu.Unlock()
	var wg sync.WaitGroup
	for _, hs := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !r.acquire(ctx) {
				return // cancelled: runPlays skips every play
			}
			defer r.release()
			_, _ = r.setup(ctx, hs) // the error is reported by runHostPlay
		}()
	}
	wg.Wait()
	all := make(map[string]*Facts, len(hosts))
	for _, hs := range hosts {
		if hs.target != nil {
			all[hs.inv.Name] = hs.target.Facts
		}
	}
	r.shared.Set(SharedFactsKey, all)
}

// setup connects to a host and gathers its facts, once per run; normally
// from gatherAllFacts, before any play touches the host.
func (r *runner) setup(ctx context.Context, hs *hostState) (*Target, error) {
	hs.setupOnce.Do(func() {
		sctx, cancel := context.WithTimeout(ctx, r.opts.FactsTimeout)
		defer cancel()
		conn, err := r.opts.Connector.Connect(sctx, hs.inv)
		if err != nil {
			hs.setupErr = fmt.Errorf("connect: %w", err)
			return
		}
		lh := &loggedHost{inner: conn, log: hs.log, logger: r.opts.Logger, now: r.opts.Now}
		r.mu.Lock()
		hs.conn = lh
		r.mu.Unlock()
		facts, err := GatherFacts(sctx, lh)
		if err != nil {
			hs.setupErr = err
			return
		}
		r.update(func() { hs.res.Facts = facts })
		hs.target = &Target{
			Host:     lh,
			Inv:      hs.inv,
			Cluster:  r.opts.Cluster,
			Facts:    facts,
			Log:      slog.New(slog.NewTextHandler(hs.log, &slog.HandlerOptions{Level: slog.LevelDebug})).With("host", hs.inv.Name),
			StateDir: r.opts.StateDir,
			Shared:   r.shared,
		}
	})
	return hs.target, hs.setupErr
}

// runStep runs one step on one host with timeout and retries and records the
// outcome.
func (r *runner) runStep(ctx context.Context, pl *Play, ref *StepRef, st Step, base *Target, sr *StepResult) StepStatus {
	host := base.Inv.Name
	t := *base
	t.Vars = ref.With
	timeout := ref.Timeout
	if timeout <= 0 {
		timeout = r.opts.StepTimeout
	}
	start := r.opts.Now()
	r.update(func() { sr.Status, sr.Started = StatusRunning, &start })

	var (
		changes []Change
		err     error
		status  StepStatus
		// transportRetried: the one extra attempt a lost connection earns.
		transportRetried bool
	)
	for attempt := 1; ; attempt++ {
		r.update(func() { sr.Attempts = attempt })
		var abandoned bool
		changes, err, abandoned = r.attempt(ctx, pl, ref, st, &t, timeout, attempt)
		if err == nil {
			status = StatusUnchanged
			if len(changes) > 0 {
				status = StatusApplied
				if r.opts.DryRun {
					status = StatusPlanned
				}
			}
			break
		}
		if ctx.Err() != nil {
			status = StatusCancelled
			break
		}
		if abandoned {
			status = StatusFailed
			break
		}
		if attempt > ref.Retries {
			// A connection cut under a command or an upload is not the
			// step's doing, and every attempt plans again before it applies:
			// one more attempt on a new connection is safe even when the
			// playbook asks for no retries.
			if transportRetried || !remote.ConnectionLost(err) {
				status = StatusFailed
				break
			}
			transportRetried = true
		}
		delay := Backoff(ref.RetryDelay, attempt)
		r.emit(Event{Type: EventStepRetry, Play: pl.Name, Host: host, Step: ref.Name, Attempt: attempt + 1, Delay: delay.String(), Error: err.Error()})
		base.Log.Warn("step failed, retrying", "step", ref.Name, "attempt", attempt, "delay", delay, "error", err)
		if serr := r.opts.Sleep(ctx, delay); serr != nil {
			status = StatusCancelled
			break
		}
	}

	dur := r.opts.Now().Sub(start)
	var errMsg string
	if err != nil {
		errMsg = r.redact(err.Error())
		base.Log.Error("step "+string(status), "step", ref.Name, "error", errMsg)
	}
	redacted := r.redactChanges(changes)
	r.update(func() {
		sr.Status = status
		sr.Changes = redacted
		sr.Duration = Duration(dur)
		sr.Error = errMsg
	})
	typ := EventStepDone
	if status == StatusFailed || status == StatusCancelled {
		typ = EventStepFailed
	}
	r.emit(Event{Type: typ, Play: pl.Name, Host: host, Step: ref.Name, Status: string(status), Changes: redacted, Attempt: sr.Attempts, Duration: dur, Error: errMsg})
	return status
}

// attempt is one Plan (+ Apply) under the step timeout. A step that ignores
// its context is abandoned after AbandonGrace so a hung host cannot hang the
// run; abandoned attempts are never retried because the step may still be
// running.
func (r *runner) attempt(ctx context.Context, pl *Play, ref *StepRef, st Step, t *Target, timeout time.Duration, n int) ([]Change, error, bool) {
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	type outcome struct {
		changes []Change
		err     error
	}
	done := make(chan outcome, 1)
	host := t.Inv.Name
	go func() {
		var o outcome
		defer func() {
			if p := recover(); p != nil {
				o.err = fmt.Errorf("step panicked: %v", p)
			}
			done <- o
		}()
		o.changes, o.err = st.Plan(actx, t)
		if o.err != nil {
			o.err = fmt.Errorf("plan: %w", o.err)
			return
		}
		r.emit(Event{Type: EventStepPlan, Play: pl.Name, Host: host, Step: ref.Name, Attempt: n, Changes: r.redactChanges(o.changes)})
		if len(o.changes) == 0 || r.opts.DryRun {
			return
		}
		r.emit(Event{Type: EventStepApply, Play: pl.Name, Host: host, Step: ref.Name, Attempt: n})
		if err := st.Apply(actx, t, o.changes); err != nil {
			o.err = fmt.Errorf("apply: %w", err)
		}
	}()

	var o outcome
	abandoned := false
	select {
	case o = <-done:
	case <-actx.Done():
		grace := time.NewTimer(r.opts.AbandonGrace)
		select {
		case o = <-done:
		case <-grace.C:
			o.err = fmt.Errorf("did not stop within %s after its context ended; abandoned: %w", r.opts.AbandonGrace, actx.Err())
			abandoned = true
		}
		grace.Stop()
	}
	if o.err != nil && ctx.Err() == nil && errors.Is(actx.Err(), context.DeadlineExceeded) {
		o.err = fmt.Errorf("timed out after %s: %w", timeout, o.err)
	}
	return o.changes, o.err, abandoned
}

func (r *runner) redactChanges(cs []Change) []Change {
	if len(cs) == 0 {
		return nil
	}
	out := make([]Change, len(cs))
	for i, c := range cs {
		out[i] = Change{Action: c.Action, Object: r.redact(c.Object), Detail: r.redact(c.Detail)}
	}
	return out
}

// finish settles statuses, closes connections, writes the final journal and
// builds the aggregated error.
func (r *runner) finish(ctx context.Context, stopErr error) (*Result, error) {
	var errs *multierror.Error
	end := r.opts.Now()
	r.mu.Lock()
	for _, hr := range r.res.Hosts {
		hs := r.hosts[hr.Name]
		for _, sr := range hr.Steps {
			switch sr.Status {
			case StatusPending:
				sr.Status, sr.Reason = StatusSkipped, "not reached"
			case StatusRunning: // only if a step goroutine was abandoned mid-update
				sr.Status = StatusCancelled
			}
			if sr.Status == StatusFailed {
				errs = multierror.Append(errs, fmt.Errorf("host %s: step %s: %s", hr.Name, sr.Step, sr.Error))
			}
		}
		hr.Status = hostStatus(hr)
		if hr.Status == HostUnreachable {
			errs = multierror.Append(errs, fmt.Errorf("host %s: %s", hr.Name, hr.Error))
		}
		if hs.conn != nil {
			if err := hs.conn.Close(); err != nil && r.opts.Logger != nil {
				r.opts.Logger.Warn("close connection", "host", hr.Name, "error", err)
			}
		}
	}
	if stopErr != nil {
		errs = multierror.Append(errs, stopErr)
	}
	status := RunOK
	switch {
	case ctx.Err() != nil:
		status = RunCancelled
		errs = multierror.Append(errs, fmt.Errorf("run cancelled: %w", ctx.Err()))
	case errs.ErrorOrNil() != nil:
		status = RunFailed
	}
	r.res.Status = status
	r.res.Finished = &end
	r.res.Duration = Duration(end.Sub(r.res.Started))
	if err := errs.ErrorOrNil(); err != nil {
		r.res.Error = r.redact(err.Error())
	}
	r.mu.Unlock()

	if err := r.journal.close(); err != nil {
		errs = multierror.Append(errs, err)
	}
	for _, hs := range r.hosts {
		if hs.log.err != nil {
			errs = multierror.Append(errs, fmt.Errorf("write log for host %s: %w", hs.inv.Name, hs.log.err))
		}
	}
	r.emit(Event{Type: EventRunDone, Playbook: r.res.Playbook, Status: string(status), Duration: time.Duration(r.res.Duration), DryRun: r.opts.DryRun, Result: r.res, RunDir: r.res.RunDir})
	return r.res, errs.ErrorOrNil()
}

func hostStatus(hr *HostResult) HostStatus {
	if hr.Status == HostUnreachable {
		return HostUnreachable
	}
	st := HostSkipped
	for _, s := range hr.Steps {
		switch s.Status {
		case StatusFailed:
			return HostFailed
		case StatusCancelled:
			st = HostCancelled
		case StatusApplied, StatusPlanned:
			if st != HostCancelled {
				st = HostChanged
			}
		case StatusUnchanged:
			if st == HostSkipped {
				st = HostOK
			}
		}
	}
	return st
}
