package agent

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

// scripted returns the statuses it is given, one per run, then repeats the last.
type scripted struct {
	name string
	mu   sync.Mutex
	seq  []Status
	runs int
	pan  bool
}

func (s *scripted) Name() string { return s.name }
func (s *scripted) Run(ctx context.Context) Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pan {
		panic("boom")
	}
	st := s.seq[min(s.runs, len(s.seq)-1)]
	s.runs++
	if st == Problem {
		return Result{Status: st, Reason: "Broken", Message: s.name + " is broken"}
	}
	return Result{Status: st, Reason: "Fine"}
}
func (s *scripted) set(seq ...Status) { s.mu.Lock(); s.seq, s.runs = seq, 0; s.mu.Unlock() }

type countingRepair struct {
	name  string
	scope Scope
	units []string
	mu    sync.Mutex
	calls int
	err   error
}

func (r *countingRepair) Name() string    { return r.name }
func (r *countingRepair) Scope() Scope    { return r.scope }
func (r *countingRepair) Units() []string { return r.units }
func (r *countingRepair) Act(context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	return r.err
}
func (r *countingRepair) n() int { r.mu.Lock(); defer r.mu.Unlock(); return r.calls }

type recSink struct {
	mu      sync.Mutex
	acts    []Action
	blocked []string
}

func (s *recSink) Observe(string, Result, time.Duration) {}
func (s *recSink) Act(a Action)                          { s.mu.Lock(); s.acts = append(s.acts, a); s.mu.Unlock() }
func (s *recSink) Blocked(repair, rule string) {
	s.mu.Lock()
	s.blocked = append(s.blocked, repair+"/"+rule)
	s.mu.Unlock()
}
func (s *recSink) outcomes() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var o []string
	for _, a := range s.acts {
		x := a.Outcome
		if a.Repair != "" {
			x += ":" + a.Repair
		}
		o = append(o, x)
	}
	return strings.Join(o, " ")
}

type harness struct {
	t     *testing.T
	clk   *clocktesting.FakeClock
	a     *Agent
	sink  *recSink
	check *scripted
}

func newHarness(t *testing.T, cfg *Config, gate Gate, units UnitStarter, ladder ...Repair) *harness {
	t.Helper()
	clk := clocktesting.NewFakeClock(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	sink := &recSink{}
	chk := &scripted{name: "kubelet", seq: []Status{OK}}
	if cfg == nil {
		cfg = &Config{}
	}
	a := New(Options{Config: cfg, Entries: []Entry{{Check: chk, Ladder: ladder}}, Gate: gate, Units: units, Clock: clk, Sink: sink})
	return &harness{t: t, clk: clk, a: a, sink: sink, check: chk}
}

// tick advances the fake clock by d, runs one round and waits for repairs.
func (h *harness) tick(d time.Duration) CheckStatus {
	h.clk.Step(d)
	h.a.Tick(context.Background())
	h.a.WaitRepairs()
	return h.a.Status()[0]
}

func TestHysteresis(t *testing.T) {
	rep := &countingRepair{name: "restart-kubelet", scope: ScopeNode}
	h := newHarness(t, &Config{FailAfter: 2, ClearAfter: 2}, nil, nil, rep)
	if s := h.tick(0); s.State != StateOK {
		t.Fatalf("first OK: state %s, want OK", s.State)
	}
	// A blip: one Problem between OKs changes nothing and repairs nothing.
	h.check.set(Problem, OK)
	if s := h.tick(5 * time.Second); s.State != StateOK || s.Last.Status != Problem {
		t.Fatalf("after one problem: state %s last %s, want OK with last Problem", s.State, s.Last.Status)
	}
	h.tick(5 * time.Second)
	if rep.n() != 0 {
		t.Fatalf("a blip triggered %d repairs", rep.n())
	}
	// Two in a row is a lasting problem: the first rung runs at once.
	h.check.set(Problem)
	h.tick(5 * time.Second)
	if s := h.tick(5 * time.Second); s.State != StateProblem || rep.n() != 1 {
		t.Fatalf("after two problems: state %s repairs %d, want Problem and 1", s.State, rep.n())
	}
	// One OK does not clear; two do.
	h.check.set(OK)
	if s := h.tick(5 * time.Second); s.State != StateProblem {
		t.Fatalf("one OK cleared the problem (state %s)", s.State)
	}
	if s := h.tick(5 * time.Second); s.State != StateOK {
		t.Fatalf("two OKs: state %s, want OK", s.State)
	}
	if got, want := h.sink.outcomes(), "problem started:restart-kubelet succeeded:restart-kubelet cleared"; got != want {
		t.Fatalf("actions %q, want %q", got, want)
	}
}

func TestCrashedAndHungChecksAreUnknownAndNeverRepaired(t *testing.T) {
	rep := &countingRepair{name: "restart-kubelet"}
	h := newHarness(t, &Config{FailAfter: 2, Timeout: Duration{50 * time.Millisecond}}, nil, nil, rep)
	h.check.pan = true
	h.tick(time.Second)
	s := h.tick(time.Second)
	if s.State != StateUnknown || s.Last.Reason != "CheckCrashed" || !strings.Contains(s.Last.Message, "boom") {
		t.Fatalf("panicking check: %+v, want Unknown/CheckCrashed", s)
	}
	hung := New(Options{Config: &Config{Timeout: Duration{50 * time.Millisecond}}, Entries: []Entry{{Check: hangCheck{}}}})
	hung.Tick(context.Background())
	if st := hung.Status()[0]; st.Last.Reason != "CheckTimedOut" {
		t.Fatalf("hung check: %+v, want CheckTimedOut", st)
	}
	if rep.n() != 0 {
		t.Fatalf("an Unknown check was repaired %d times", rep.n())
	}
}

type hangCheck struct{}

func (hangCheck) Name() string { return "hang" }
func (hangCheck) Run(ctx context.Context) Result {
	time.Sleep(time.Second) // ignores ctx on purpose
	return Result{Status: OK}
}

func TestLadderBackoffAndExhaustion(t *testing.T) {
	r1 := &countingRepair{name: "restart-kubelet"}
	r2 := &countingRepair{name: "restart-containerd-kubelet", err: fmt.Errorf("containerd did not come back")}
	cfg := &Config{FailAfter: 1, BackoffBase: Duration{10 * time.Second}, BackoffMax: Duration{15 * time.Second}}
	h := newHarness(t, cfg, nil, nil, r1, r2)
	h.check.set(Problem)
	h.tick(time.Second)
	if r1.n() != 1 || r2.n() != 0 {
		t.Fatalf("first round: rungs ran %d/%d times, want 1/0", r1.n(), r2.n())
	}
	// The second rung waits the base backoff after the first.
	h.tick(9 * time.Second)
	if r2.n() != 0 {
		t.Fatal("second rung ran before the backoff passed")
	}
	h.tick(time.Second)
	if r2.n() != 1 {
		t.Fatalf("second rung ran %d times after the backoff, want 1", r2.n())
	}
	// Backoff doubles (20 s) but is capped at BackoffMax (15 s); then the
	// ladder is exhausted, reported once, and nothing runs again.
	h.tick(14 * time.Second)
	if s := h.a.Status()[0]; s.Exhausted {
		t.Fatal("exhausted before the capped backoff passed")
	}
	s := h.tick(time.Second)
	if !s.Exhausted {
		t.Fatalf("not exhausted after every rung: %+v", s)
	}
	for range 20 {
		h.tick(time.Minute)
	}
	if r1.n() != 1 || r2.n() != 1 {
		t.Fatalf("exhausted ladder kept repairing: %d/%d", r1.n(), r2.n())
	}
	if got, want := h.sink.outcomes(), "problem started:restart-kubelet succeeded:restart-kubelet started:restart-containerd-kubelet failed:restart-containerd-kubelet exhausted"; got != want {
		t.Fatalf("actions %q\nwant    %q", got, want)
	}
	// Clearing resets the ladder: a new episode starts at the first rung.
	h.check.set(OK)
	h.tick(time.Second)
	h.tick(time.Second)
	h.check.set(Problem)
	h.tick(time.Second)
	if r1.n() != 2 {
		t.Fatalf("new episode did not start at the first rung (rung 1 ran %d times)", r1.n())
	}
}

type fixedStart struct{ at time.Time }

func (f fixedStart) LastStart(context.Context, string) (time.Time, error) { return f.at, nil }

func TestCooldownFromUnitLastStart(t *testing.T) {
	rep := &countingRepair{name: "restart-kubelet", units: []string{"kubelet.service"}}
	h := newHarness(t, &Config{FailAfter: 1, Cooldown: Duration{30 * time.Second}}, nil, nil, rep)
	// The unit started 5 s before the problem: systemd is restarting it.
	h.a.units = fixedStart{at: h.clk.Now().Add(-5 * time.Second)}
	h.check.set(Problem)
	s := h.tick(0)
	if rep.n() != 0 || !strings.Contains(s.Repair, "cooldown") {
		t.Fatalf("repair ran inside the cooldown (calls %d, status %q)", rep.n(), s.Repair)
	}
	h.tick(24 * time.Second)
	if rep.n() != 0 {
		t.Fatal("repair ran 29 s after the unit started, cooldown is 30 s")
	}
	h.tick(time.Second)
	if rep.n() != 1 {
		t.Fatalf("repair did not run once the cooldown passed (calls %d)", rep.n())
	}
}

type toggleGate struct {
	mu       sync.Mutex
	open     bool
	acquired int
	released int
}

func (g *toggleGate) Acquire(context.Context, string, Scope) (func(), error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.open {
		return nil, &BlockedError{Rule: "budget", Reason: "1/1 repair slots held by node-b"}
	}
	g.acquired++
	return func() { g.mu.Lock(); g.released++; g.mu.Unlock() }, nil
}

func TestGateBlocksThenAdmits(t *testing.T) {
	g := &toggleGate{}
	rep := &countingRepair{name: "restart-kubelet"}
	h := newHarness(t, &Config{FailAfter: 1}, g, nil, rep)
	h.check.set(Problem)
	for range 3 {
		h.tick(5 * time.Second)
	}
	if rep.n() != 0 {
		t.Fatal("repair ran while the gate was closed")
	}
	if len(h.sink.blocked) != 3 {
		t.Fatalf("blocked counted %d times, want 3 (one per round)", len(h.sink.blocked))
	}
	if got := strings.Count(h.sink.outcomes(), "blocked:"); got != 1 {
		t.Fatalf("blocked reported %d times, want once per rule: %s", got, h.sink.outcomes())
	}
	g.mu.Lock()
	g.open = true
	g.mu.Unlock()
	h.tick(5 * time.Second)
	if rep.n() != 1 || g.acquired != 1 || g.released != 1 {
		t.Fatalf("after the gate opened: repairs %d acquired %d released %d, want 1/1/1", rep.n(), g.acquired, g.released)
	}
}

func TestReportOnlyChangesNothing(t *testing.T) {
	r1 := &countingRepair{name: "restart-kubelet"}
	r2 := &countingRepair{name: "restart-containerd-kubelet"}
	g := &toggleGate{open: true}
	cfg := &Config{FailAfter: 1, Mode: ModeReportOnly, BackoffBase: Duration{time.Second}, BackoffMax: Duration{time.Second}}
	h := newHarness(t, cfg, g, nil, r1, r2)
	h.check.set(Problem)
	for range 10 {
		h.tick(time.Second)
	}
	if r1.n()+r2.n() != 0 || g.acquired != 0 {
		t.Fatalf("report-only acted: repairs %d/%d, budget taken %d times", r1.n(), r2.n(), g.acquired)
	}
	if got, want := h.sink.outcomes(), "problem report-only:restart-kubelet report-only:restart-containerd-kubelet exhausted"; got != want {
		t.Fatalf("actions %q, want %q", got, want)
	}
	// prune-images only reports unless repairs: names it.
	d := &Config{}
	d.Defaults()
	if d.ModeFor("prune-images") != ModeReportOnly || d.ModeFor("restart-kubelet") != ModeRepair {
		t.Fatalf("default modes: prune-images %s, restart-kubelet %s", d.ModeFor("prune-images"), d.ModeFor("restart-kubelet"))
	}
	if d := (&Config{Repairs: map[string]Mode{"prune-images": ModeRepair}}); d.ModeFor("prune-images") != ModeRepair {
		t.Fatal("repairs: prune-images: repair did not enable pruning")
	}
	// Per-repair override: only the second rung acts.
	h2 := newHarness(t, &Config{FailAfter: 1, Repairs: map[string]Mode{"restart-kubelet": ModeReportOnly}, BackoffBase: Duration{time.Second}, BackoffMax: Duration{time.Second}}, g, nil, r1, r2)
	h2.check.set(Problem)
	for range 3 {
		h2.tick(time.Second)
	}
	if r1.n() != 0 || r2.n() != 1 {
		t.Fatalf("per-repair report-only: repairs %d/%d, want 0/1", r1.n(), r2.n())
	}
}

func TestConfigValidation(t *testing.T) {
	c := &Config{NodeName: "", Role: "boss", Mode: "fix-it", Interval: Duration{time.Second}, Timeout: Duration{2 * time.Second}}
	c.Defaults()
	err := c.Validate("/etc/kubewright/agent.yaml")
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, want := range []string{"/etc/kubewright/agent.yaml: nodeName is empty", `role is "boss": set it to master or worker`, `mode is "fix-it"`, "timeout 2s is longer than interval 1s"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}
