package engine_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-multierror"

	"github.com/kubewright/kubewright/installer/engine"
	"github.com/kubewright/kubewright/installer/engine/enginetest"
	goldenfile "github.com/kubewright/kubewright/internal/golden"
)

// env is one engine test setup: a fleet of local fake hosts, an inventory,
// a registry and a state directory.
type env struct {
	t       *testing.T
	fleet   *enginetest.Fleet
	cluster *enginetest.Cluster
	reg     *engine.Registry
	state   string

	mu     sync.Mutex
	events []engine.Event
	sleeps []time.Duration
}

func newEnv(t *testing.T, groups map[string][]string) *env {
	t.Helper()
	return &env{
		t:       t,
		fleet:   enginetest.NewFleet(t),
		cluster: enginetest.NewCluster("test", groups),
		reg:     engine.NewRegistry(),
		state:   t.TempDir(),
	}
}

func (e *env) register(steps ...engine.Step) {
	e.t.Helper()
	for _, s := range steps {
		if err := e.reg.Register(s.Name(), engine.Static(s)); err != nil {
			e.t.Fatal(err)
		}
	}
}

// Event records events (the engine serializes calls).
func (e *env) Event(ev engine.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.events = append(e.events, ev)
}

func (e *env) eventsOf(typ engine.EventType) []engine.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []engine.Event
	for _, ev := range e.events {
		if ev.Type == typ {
			out = append(out, ev)
		}
	}
	return out
}

func (e *env) options(pb *engine.Playbook) engine.Options {
	return engine.Options{
		Playbook:  pb,
		Cluster:   e.cluster.Cluster,
		Selector:  e.cluster,
		Registry:  e.reg,
		Connector: e.fleet,
		StateDir:  e.state,
		Events:    e,
		Sleep: func(ctx context.Context, d time.Duration) error {
			e.mu.Lock()
			e.sleeps = append(e.sleeps, d)
			e.mu.Unlock()
			return ctx.Err()
		},
	}
}

func (e *env) run(ctx context.Context, yaml string, mod func(*engine.Options)) (*engine.Result, error) {
	e.t.Helper()
	pb, err := engine.LoadPlaybook("test.yaml", []byte(yaml))
	if err != nil {
		e.t.Fatalf("load playbook: %v", err)
	}
	opts := e.options(pb)
	if mod != nil {
		mod(&opts)
	}
	return engine.Run(ctx, opts)
}

func statuses(r *engine.Result, host string) []string {
	var out []string
	for _, s := range r.Host(host).Steps {
		out = append(out, s.Step+"="+string(s.Status))
	}
	return out
}

func slowStep(name string, d time.Duration) *enginetest.FuncStep {
	return &enginetest.FuncStep{StepName: name, PlanFn: func(ctx context.Context, t *engine.Target) ([]engine.Change, error) {
		_, err := t.Host.Exec(ctx, fmt.Sprintf("sleep %g", d.Seconds()))
		return nil, err
	}}
}

func TestConcurrencyLimit(t *testing.T) {
	for _, limit := range []int{1, 3, 8} {
		t.Run(fmt.Sprintf("concurrency=%d", limit), func(t *testing.T) {
			e := newEnv(t, map[string][]string{"workers": enginetest.Names("w", 8)})
			e.fleet.Latency = 40 * time.Millisecond
			e.register(&enginetest.FuncStep{StepName: "probe", PlanFn: func(ctx context.Context, t *engine.Target) ([]engine.Change, error) {
				_, err := t.Host.Exec(ctx, "true")
				return nil, err
			}})
			// Two plays: the limit is global, not per play or batch.
			_, err := e.run(context.Background(), `
name: c
plays:
  - {hosts: workers, steps: [probe]}
  - {hosts: workers, serial: 4, steps: [probe]}
`, func(o *engine.Options) { o.Concurrency = limit })
			if err != nil {
				t.Fatal(err)
			}
			if got := e.fleet.MaxInFlight(); got != limit {
				t.Errorf("max in-flight = %d, want exactly %d", got, limit)
			}
		})
	}
}

func TestSerialBatches(t *testing.T) {
	hosts := enginetest.Names("n", 5)
	tests := []struct {
		serial string
		want   [][]string
	}{
		{"", [][]string{hosts}},
		{"serial: 2", [][]string{hosts[0:2], hosts[2:4], hosts[4:5]}},
		{"serial: 1", [][]string{{hosts[0]}, {hosts[1]}, {hosts[2]}, {hosts[3]}, {hosts[4]}}},
		{`serial: "30%"`, [][]string{hosts[0:2], hosts[2:4], hosts[4:5]}},
		{`serial: "60%"`, [][]string{hosts[0:3], hosts[3:5]}},
	}
	for _, tt := range tests {
		t.Run(tt.serial, func(t *testing.T) {
			e := newEnv(t, map[string][]string{"all5": hosts})
			e.register(slowStep("s1", 10*time.Millisecond), slowStep("s2", 10*time.Millisecond))
			res, err := e.run(context.Background(), fmt.Sprintf("name: b\nplays:\n  - hosts: all5\n    %s\n    steps: [s1, s2]\n", tt.serial), nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := res.Plays[0].Batches; !slices.EqualFunc(got, tt.want, slices.Equal) {
				t.Fatalf("batches = %v, want %v", got, tt.want)
			}
			// Observed order: no host of batch k+1 starts before every host
			// of batch k is done.
			batchOf := map[string]int{}
			for i, b := range tt.want {
				for _, h := range b {
					batchOf[h] = i
				}
			}
			done := map[int]int{}
			e.mu.Lock()
			defer e.mu.Unlock()
			for _, ev := range e.events {
				switch ev.Type {
				case engine.EventHostStart:
					b := batchOf[ev.Host]
					if b > 0 && done[b-1] != len(tt.want[b-1]) {
						t.Errorf("host %s (batch %d) started before batch %d finished", ev.Host, b+1, b)
					}
				case engine.EventHostDone:
					done[batchOf[ev.Host]]++
				}
			}
		})
	}
}

func TestRetriesAndBackoff(t *testing.T) {
	tests := []struct {
		name       string
		step       string
		failures   int
		wantStatus engine.StepStatus
		wantTries  int
		wantSleeps []time.Duration
	}{
		{"no retries", "{name: flaky}", 1, engine.StatusFailed, 1, nil},
		{"recovers on third try", "{name: flaky, retries: 3, retry_delay: 1s}", 2, engine.StatusApplied, 3, []time.Duration{time.Second, 2 * time.Second}},
		{"exhausts retries", "{name: flaky, retries: 3, retry_delay: 1s}", 10, engine.StatusFailed, 4, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}},
		{"default delay", "{name: flaky, retries: 1}", 1, engine.StatusApplied, 2, []time.Duration{engine.DefaultRetryDelay}},
		{"capped", "{name: flaky, retries: 3, retry_delay: 40s}", 3, engine.StatusApplied, 4, []time.Duration{40 * time.Second, engine.MaxRetryDelay, engine.MaxRetryDelay}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, map[string][]string{"masters": {"m1"}})
			attempts := 0
			flaky := &enginetest.FuncStep{
				StepName: "flaky",
				PlanFn: func(context.Context, *engine.Target) ([]engine.Change, error) {
					return []engine.Change{{Action: "restart", Object: "etcd"}}, nil
				},
				ApplyFn: func(context.Context, *engine.Target, []engine.Change) error {
					attempts++
					if attempts <= tt.failures {
						return fmt.Errorf("etcd not healthy yet (attempt %d)", attempts)
					}
					return nil
				},
			}
			e.register(flaky)
			res, err := e.run(context.Background(), "name: r\nplays:\n  - hosts: masters\n    steps: ["+tt.step+"]\n", nil)
			sr := res.Host("m1").Steps[0]
			if sr.Status != tt.wantStatus || sr.Attempts != tt.wantTries || flaky.Applies("m1") != tt.wantTries {
				t.Errorf("status %s attempts %d applies %d, want %s %d", sr.Status, sr.Attempts, flaky.Applies("m1"), tt.wantStatus, tt.wantTries)
			}
			if !slices.Equal(e.sleeps, tt.wantSleeps) {
				t.Errorf("backoff delays = %v, want %v", e.sleeps, tt.wantSleeps)
			}
			if (err != nil) != (tt.wantStatus == engine.StatusFailed) {
				t.Errorf("err = %v", err)
			}
			if len(e.eventsOf(engine.EventStepRetry)) != len(tt.wantSleeps) {
				t.Errorf("retry events = %d, want %d", len(e.eventsOf(engine.EventStepRetry)), len(tt.wantSleeps))
			}
		})
	}
}

func TestStepTimeout(t *testing.T) {
	tests := []struct {
		name        string
		step        string
		stepTimeout time.Duration // Options.StepTimeout
		want        engine.StepStatus
		wantErr     string
	}{
		{"playbook timeout fires", "{name: slow, timeout: 100ms}", 0, engine.StatusFailed, "timed out after 100ms"},
		{"playbook timeout long enough", "{name: slow, timeout: 5s}", 0, engine.StatusUnchanged, ""},
		{"default from options fires", "slow", 150 * time.Millisecond, engine.StatusFailed, "timed out after 150ms"},
		{"default from options long enough", "slow", 5 * time.Second, engine.StatusUnchanged, ""},
		{"timeout applies per attempt", "{name: slow, timeout: 100ms, retries: 1}", 0, engine.StatusFailed, "timed out after 100ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, map[string][]string{"masters": {"m1"}})
			e.register(slowStep("slow", 400*time.Millisecond))
			start := time.Now()
			res, _ := e.run(context.Background(), "name: t\nplays:\n  - hosts: masters\n    steps: ["+tt.step+"]\n", func(o *engine.Options) { o.StepTimeout = tt.stepTimeout })
			sr := res.Host("m1").Steps[0]
			if sr.Status != tt.want || !strings.Contains(sr.Error, tt.wantErr) {
				t.Errorf("status %s error %q, want %s containing %q", sr.Status, sr.Error, tt.want, tt.wantErr)
			}
			if tt.want == engine.StatusFailed && time.Since(start) > 3*time.Second {
				t.Errorf("timeout did not stop the step promptly: %s", time.Since(start))
			}
		})
	}

	t.Run("step ignoring its context is abandoned after the grace", func(t *testing.T) {
		e := newEnv(t, map[string][]string{"masters": {"m1"}})
		release := make(chan struct{})
		t.Cleanup(func() { close(release) })
		e.register(&enginetest.FuncStep{StepName: "stuck", PlanFn: func(context.Context, *engine.Target) ([]engine.Change, error) {
			<-release // ignores ctx on purpose
			return nil, nil
		}})
		start := time.Now()
		res, err := e.run(context.Background(), "name: t\nplays:\n  - hosts: masters\n    steps: [{name: stuck, timeout: 50ms, retries: 5}]\n",
			func(o *engine.Options) { o.AbandonGrace = 100 * time.Millisecond })
		if err == nil || time.Since(start) > 2*time.Second {
			t.Fatalf("err = %v after %s, want failure within the grace", err, time.Since(start))
		}
		sr := res.Host("m1").Steps[0]
		if sr.Status != engine.StatusFailed || sr.Attempts != 1 || !strings.Contains(sr.Error, "abandoned") {
			t.Errorf("got %s attempts=%d %q; want failed, 1 attempt (no retry of an abandoned step), abandoned", sr.Status, sr.Attempts, sr.Error)
		}
	})
}

func TestMaxFailPercentage(t *testing.T) {
	hosts := enginetest.Names("w", 10)
	failing := map[string]bool{"w01": true, "w02": true, "w03": true, "w04": true}
	tests := []struct {
		name         string
		settings     string
		wantStatus   engine.PlayStatus
		wantPlanned  int // hosts that ran "check" in play 1
		wantNextPlay bool
		// any_errors_fatal lets a batch peer that had not started yet stop
		// before its first step, so it may run check or not.
		orOneLess bool
	}{
		{"no limit: failed hosts drop out, others go on", "serial: 2", engine.PlayFailed, 10, true, false},
		{"limit 30%: stops after the 2nd batch", "serial: 2\n    max_fail_percentage: 30", engine.PlayAborted, 4, false, false},
		{"limit 50%: 40% failed is within it", "serial: 2\n    max_fail_percentage: 50", engine.PlayFailed, 10, true, false},
		{"any_errors_fatal: stops after the 1st batch", "serial: 2\n    any_errors_fatal: true", engine.PlayAborted, 2, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, map[string][]string{"workers": hosts})
			check := &enginetest.FuncStep{StepName: "check", PlanFn: func(_ context.Context, t *engine.Target) ([]engine.Change, error) {
				if failing[t.Inv.Name] {
					return nil, errors.New("disk full")
				}
				return nil, nil
			}}
			after := &enginetest.FuncStep{StepName: "after"}
			next := &enginetest.FuncStep{StepName: "next"}
			e.register(check, after, next)
			res, err := e.run(context.Background(), fmt.Sprintf(`
name: mf
plays:
  - name: one
    hosts: workers
    %s
    steps: [check, after]
  - name: two
    hosts: workers
    steps: [next]
`, tt.settings), nil)
			if err == nil {
				t.Fatal("run succeeded with failing hosts")
			}
			if res.Plays[0].Status != tt.wantStatus {
				t.Errorf("play status %s, want %s (%s)", res.Plays[0].Status, tt.wantStatus, res.Plays[0].Error)
			}
			if got := check.Plans(""); got != tt.wantPlanned && !(tt.orOneLess && got == tt.wantPlanned-1) {
				t.Errorf("check planned on %d hosts, want %d", got, tt.wantPlanned)
			}
			if got := after.Plans("w01"); got != 0 {
				t.Errorf("a failed host ran its next step")
			}
			if tt.wantNextPlay {
				// Failed hosts are excluded from later plays.
				if next.Plans("") != 6 || next.Plans("w01") != 0 {
					t.Errorf("play two ran on %d hosts (w01: %d), want the 6 healthy ones", next.Plans(""), next.Plans("w01"))
				}
				if s := res.Host("w01").Step("two", "next"); s.Status != engine.StatusSkipped || s.Reason != "host failed earlier in the run" {
					t.Errorf("w01 in play two: %+v", s)
				}
			} else {
				if next.Plans("") != 0 || res.Plays[1].Status != engine.PlaySkipped {
					t.Errorf("play two ran after an abort (status %s)", res.Plays[1].Status)
				}
				if !strings.Contains(err.Error(), tt.settings[strings.LastIndex(tt.settings, " ")+1:]) && !strings.Contains(err.Error(), "any_errors_fatal") {
					t.Errorf("error does not explain the abort: %v", err)
				}
				if s := res.Host("w10").Step("one", "check"); s.Status != engine.StatusSkipped || !strings.HasPrefix(s.Reason, "play aborted") {
					t.Errorf("w10 in unscheduled batch: %+v", s)
				}
			}
			// One error per failed host, aggregated.
			var me *multierror.Error
			if !errors.As(err, &me) {
				t.Fatalf("error %T is not a multierror", err)
			}
			if !strings.Contains(err.Error(), "host w01: step check: plan: disk full") && !strings.Contains(err.Error(), "host w02: step check: plan: disk full") {
				t.Errorf("per-host error missing: %v", err)
			}
		})
	}
}

func TestAnyErrorsFatalStopsBatchPeersAfterTheirStep(t *testing.T) {
	e := newEnv(t, map[string][]string{"masters": {"m1", "m2"}})
	m2Started := make(chan struct{})
	boom := &enginetest.FuncStep{StepName: "boom", PlanFn: func(ctx context.Context, t *engine.Target) ([]engine.Change, error) {
		if t.Inv.Name == "m1" {
			<-m2Started
			return nil, errors.New("boom")
		}
		close(m2Started)
		_, err := t.Host.Exec(ctx, "sleep 0.3") // m2 is mid-step when m1 fails
		return nil, err
	}}
	second := &enginetest.FuncStep{StepName: "second"}
	e.register(boom, second)
	res, _ := e.run(context.Background(), "name: f\nplays:\n  - hosts: masters\n    any_errors_fatal: true\n    steps: [boom, second]\n", nil)
	if got := statuses(res, "m2"); !slices.Equal(got, []string{"boom=unchanged", "second=skipped"}) {
		t.Errorf("m2 = %v: it should finish its step, then stop", got)
	}
	if r := res.Host("m2").Steps[1].Reason; !strings.Contains(r, "any_errors_fatal") {
		t.Errorf("skip reason %q", r)
	}
}

func TestUnreachableHost(t *testing.T) {
	e := newEnv(t, map[string][]string{"masters": {"m1", "m2"}})
	e.fleet.FailConnect("m2", errors.New("dial tcp 10.0.0.2:22: connection refused"))
	s := &enginetest.FuncStep{StepName: "s"}
	e.register(s)
	res, err := e.run(context.Background(), "name: u\nplays:\n  - {hosts: masters, steps: [s]}\n  - {hosts: masters, steps: [s]}\n", nil)
	if err == nil || !strings.Contains(err.Error(), "host m2: connect: dial tcp 10.0.0.2:22: connection refused") {
		t.Fatalf("err = %v", err)
	}
	if h := res.Host("m2"); h.Status != engine.HostUnreachable || s.Plans("m2") != 0 {
		t.Errorf("m2 status %s, plans %d", h.Status, s.Plans("m2"))
	}
	if e.fleet.Connects() != 2 {
		t.Errorf("connects = %d, want 2 (an unreachable host is not retried in play two)", e.fleet.Connects())
	}
	if s.Plans("m1") != 2 {
		t.Errorf("m1 plans = %d, want 2", s.Plans("m1"))
	}
}

func TestFactsGatheredOncePerHost(t *testing.T) {
	e := newEnv(t, map[string][]string{"masters": {"m1", "m2"}, "workers": {"w1"}})
	var mu sync.Mutex
	seen := map[string]*engine.Facts{}
	probe := &enginetest.FuncStep{StepName: "probe", PlanFn: func(_ context.Context, t *engine.Target) ([]engine.Change, error) {
		mu.Lock()
		defer mu.Unlock()
		if prev, ok := seen[t.Inv.Name]; ok && prev != t.Facts {
			return nil, errors.New("facts object changed between plays")
		}
		seen[t.Inv.Name] = t.Facts
		return nil, nil
	}}
	e.register(probe)
	res, err := e.run(context.Background(), `
name: f
plays:
  - {hosts: masters, steps: [probe]}
  - {hosts: all, steps: [probe, {name: probe, when: facts.cpus != 0}]}
  - {hosts: "masters,workers", steps: [probe]}
`, nil)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := os.ReadFile("/proc/sys/kernel/hostname")
	for _, h := range []string{"m1", "m2", "w1"} {
		fh := e.fleet.Host(h)
		if n := fh.CountCommands("@@os-release"); n != 1 {
			t.Errorf("%s: facts gathered %d times, want 1", h, n)
		}
		if fh.Connects() != 1 || fh.Closes() != 1 {
			t.Errorf("%s: connects=%d closes=%d, want 1/1", h, fh.Connects(), fh.Closes())
		}
		f := res.Host(h).Facts
		if f == nil || f.CPUs < 1 || f.MemoryMiB < 1 || f.Kernel == "" || f.Hostname != strings.TrimSpace(string(out)) || f.EpochSeconds < 1.7e9 {
			t.Errorf("%s: facts from the real local shell look wrong: %+v", h, f)
		}
	}
}

// TestAllHostsFactsShared: before the first step, every step can see the
// facts of every host the run selected, in any play (what preflight needs to
// find duplicate hostnames and machine-ids), and unreachable hosts are absent
// but still reported when their play runs.
func TestAllHostsFactsShared(t *testing.T) {
	e := newEnv(t, map[string][]string{"masters": {"m1"}, "workers": {"w1", "w2", "w3"}})
	e.fleet.FailConnect("w3", errors.New("dial tcp 10.0.0.23:22: no route to host"))
	var mu sync.Mutex
	seen := map[string][]string{}
	probe := &enginetest.FuncStep{StepName: "probe", PlanFn: func(_ context.Context, t *engine.Target) ([]engine.Change, error) {
		v, ok := t.Shared.Get(engine.SharedFactsKey)
		if !ok {
			return nil, errors.New("no shared facts")
		}
		all, ok := v.(map[string]*engine.Facts)
		if !ok {
			return nil, fmt.Errorf("shared facts are %T", v)
		}
		if all[t.Inv.Name] != t.Facts {
			return nil, errors.New("shared facts of this host differ from Target.Facts")
		}
		mu.Lock()
		defer mu.Unlock()
		seen[t.Inv.Name] = sortedNames(all)
		return nil, nil
	}}
	e.register(probe)
	stale := engine.NewSharedData()
	stale.Set(engine.SharedFactsKey, map[string]*engine.Facts{"ghost": {}})
	// The master's play runs first and alone: workers are only selected by
	// a later play, and their facts must already be there.
	res, err := e.run(context.Background(), `
name: f
plays:
  - {hosts: masters, steps: [probe]}
  - {hosts: workers, serial: 1, steps: [probe]}
`, func(o *engine.Options) { o.Shared = stale; o.Concurrency = 2 })
	if err == nil || !strings.Contains(err.Error(), "host w3: connect: dial tcp 10.0.0.23:22: no route to host") {
		t.Fatalf("err = %v, want w3 unreachable", err)
	}
	want := []string{"m1", "w1", "w2"}
	for _, h := range want {
		if !slices.Equal(seen[h], want) {
			t.Errorf("%s saw facts of %v, want %v", h, seen[h], want)
		}
		if n := e.fleet.Host(h).CountCommands("@@os-release"); n != 1 {
			t.Errorf("%s: facts gathered %d times, want 1", h, n)
		}
	}
	if st := res.Host("w3").Status; st != engine.HostUnreachable || probe.Plans("w3") != 0 {
		t.Errorf("w3: status %s, plans %d; want unreachable, 0", st, probe.Plans("w3"))
	}
	if e.fleet.Connects() != 4 {
		t.Errorf("connects = %d, want one per host (4)", e.fleet.Connects())
	}
}

func TestDryRunChangesNothing(t *testing.T) {
	e := newEnv(t, map[string][]string{"masters": {"m1", "m2"}})
	conf := &enginetest.FileStep{StepName: "write-conf", Path: "/etc/kubewright/app.conf", Content: "a=1\n"}
	unit := &enginetest.FileStep{StepName: "write-unit", Path: "/etc/systemd/system/app.service", Content: "[Unit]\n"}
	e.register(conf, unit)
	pb := "name: dry\nplays:\n  - {name: files, hosts: masters, serial: 1, steps: [write-conf, write-unit]}\n"
	fixed := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	var plain bytes.Buffer
	dry := func(o *engine.Options) {
		o.DryRun = true
		o.Now = func() time.Time { return fixed }
		o.Events = engine.Sinks{e, engine.NewPlainSink(&plain)}
	}

	res, err := e.run(context.Background(), pb, dry)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"m1", "m2"} {
		if _, err := os.Stat(e.fleet.Host(h).Path("/etc/kubewright/app.conf")); !os.IsNotExist(err) {
			t.Errorf("%s: dry run wrote a file (stat err %v)", h, err)
		}
		if e.fleet.Host(h).Uploads() != 0 {
			t.Errorf("%s: dry run uploaded", h)
		}
		if got := statuses(res, h); !slices.Equal(got, []string{"write-conf=planned", "write-unit=planned"}) {
			t.Errorf("%s: %v", h, got)
		}
	}
	if _, applies := conf.Calls(); applies != 0 {
		t.Errorf("Apply called %d times in dry run", applies)
	}
	if n := len(e.eventsOf(engine.EventStepApply)); n != 0 {
		t.Errorf("%d step_apply events in dry run", n)
	}
	var plan bytes.Buffer
	engine.RenderPlan(&plan, res)
	golden(t, "dry-run-plan", plan.String())
	golden(t, "dry-run-plain-events", strings.ReplaceAll(plain.String(), e.state, "STATE"))

	// A real run applies, and a dry run after it plans nothing.
	if _, err := e.run(context.Background(), pb, nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(e.fleet.Host("m1").Path("/etc/kubewright/app.conf")); string(got) != "a=1\n" {
		t.Fatalf("real run did not write the file: %q", got)
	}
	res, err = e.run(context.Background(), pb, dry)
	if err != nil {
		t.Fatal(err)
	}
	if got := statuses(res, "m2"); !slices.Equal(got, []string{"write-conf=unchanged", "write-unit=unchanged"}) {
		t.Errorf("after apply, dry run shows %v", got)
	}
}

func TestUnknownStepFailsBeforeTouchingHosts(t *testing.T) {
	e := newEnv(t, map[string][]string{"masters": {"m1"}})
	e.register(&enginetest.FuncStep{StepName: "preflight"}, &enginetest.FuncStep{StepName: "etcd"}, &enginetest.FuncStep{StepName: "etcd-certs"})
	e.reg.MustRegister("sysctl", func(with map[string]string) (engine.Step, error) {
		if _, ok := with["key"]; !ok {
			return nil, errors.New(`parameter "key" is required`)
		}
		return &enginetest.FuncStep{StepName: "sysctl"}, nil
	})
	_, err := e.run(context.Background(), `
name: typos
plays:
  - hosts: masters
    steps: [prefligth, etcd, {name: etcd-cert}, kubelet]
  - hosts: masters
    steps: [sysctl, {name: preflight, with: {strict: "true"}}]
`, nil)
	var inv *engine.InvalidError
	if !errors.As(err, &inv) {
		t.Fatalf("err = %v (%T), want *InvalidError", err, err)
	}
	golden(t, "unknown-steps", err.Error()+"\n")
	if e.fleet.Connects() != 0 {
		t.Errorf("a host was contacted before validation finished")
	}
	if _, err := os.Stat(filepath.Join(e.state, "runs")); !os.IsNotExist(err) {
		t.Errorf("a run directory was created for an invalid playbook")
	}
}

func TestBadSelectorFailsBeforeTouchingHosts(t *testing.T) {
	e := newEnv(t, map[string][]string{"masters": {"m1"}})
	e.register(&enginetest.FuncStep{StepName: "s"})
	_, err := e.run(context.Background(), "name: sel\nplays:\n  - {hosts: masters, steps: [s]}\n  - {hosts: mastres, steps: [s]}\n", nil)
	want := `test.yaml:4:5: plays[1].hosts: selector "mastres": no group, host or label matches "mastres"`
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant %s", err, want)
	}
	if e.fleet.Connects() != 0 {
		t.Error("host contacted")
	}
}

func TestCancellationOnSIGINTLeavesJournal(t *testing.T) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	e := newEnv(t, map[string][]string{"masters": {"m1", "m2", "m3"}})
	started := make(chan struct{}, 3)
	long := &enginetest.FuncStep{StepName: "long", PlanFn: func(ctx context.Context, t *engine.Target) ([]engine.Change, error) {
		return []engine.Change{{Action: "run", Object: "long job"}}, nil
	}, ApplyFn: func(ctx context.Context, t *engine.Target, _ []engine.Change) error {
		started <- struct{}{}
		_, err := t.Host.Exec(ctx, "sleep 30")
		return err
	}}
	e.register(&enginetest.FuncStep{StepName: "first"}, long, &enginetest.FuncStep{StepName: "never"})
	go func() {
		<-started
		<-started // two of three hosts are mid-apply (concurrency 2)
		syscall.Kill(os.Getpid(), syscall.SIGINT)
	}()
	begin := time.Now()
	res, err := e.run(ctx, `
name: cancel
plays:
  - {hosts: masters, steps: [first, long, never]}
  - {hosts: masters, steps: [never]}
`, func(o *engine.Options) { o.Concurrency = 2 })
	if time.Since(begin) > 5*time.Second {
		t.Errorf("cancellation took %s", time.Since(begin))
	}
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled in it", err)
	}
	j, jerr := engine.ReadJournal(filepath.Join(res.RunDir, engine.JournalFile))
	if jerr != nil {
		t.Fatal(jerr)
	}
	if j.Status != engine.RunCancelled {
		t.Errorf("journal status %s", j.Status)
	}
	cancelled := 0
	for _, h := range j.Hosts {
		for _, s := range h.Steps {
			switch s.Status {
			case engine.StatusCancelled:
				cancelled++
				if s.Step != "long" {
					t.Errorf("%s: step %s cancelled, only long was running", h.Name, s.Step)
				}
			case engine.StatusPending, engine.StatusRunning:
				t.Errorf("%s: step %s left %s in the final journal", h.Name, s.Step, s.Status)
			}
		}
	}
	if cancelled != 2 {
		t.Errorf("cancelled entries = %d, want 2", cancelled)
	}
	// The third host never got a concurrency slot.
	waiting := 0
	for _, h := range j.Hosts {
		if s := h.Step("plays[0]", "first"); s.Status == engine.StatusSkipped && s.Reason == "run cancelled" {
			waiting++
		}
		if s := h.Step("plays[1]", "never"); s.Status != engine.StatusSkipped {
			t.Errorf("%s: play two step %s", h.Name, s.Status)
		}
	}
	if waiting != 1 {
		t.Errorf("%d hosts skipped while waiting for a slot, want 1", waiting)
	}
}

func TestJournalIsWrittenWhileRunning(t *testing.T) {
	e := newEnv(t, map[string][]string{"masters": {"m1"}})
	var runDir string
	hold := make(chan struct{})
	inStep := make(chan struct{})
	e.register(&enginetest.FuncStep{StepName: "hold", PlanFn: func(context.Context, *engine.Target) ([]engine.Change, error) {
		close(inStep)
		<-hold
		return nil, nil
	}}, &enginetest.FuncStep{StepName: "later"})
	done := make(chan error)
	go func() {
		res, err := e.run(context.Background(), "name: inc\nplays:\n  - {hosts: masters, steps: [hold, later]}\n",
			func(o *engine.Options) { o.JournalInterval = 10 * time.Millisecond })
		runDir = res.RunDir
		done <- err
	}()
	<-inStep
	runs, _ := filepath.Glob(filepath.Join(e.state, "runs", "*-inc", engine.JournalFile))
	if len(runs) != 1 {
		close(hold)
		t.Fatalf("journal files: %v", runs)
	}
	var j *engine.Result
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		var err error
		if j, err = engine.ReadJournal(runs[0]); err == nil && j.Hosts[0].Steps[0].Status == engine.StatusRunning {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(hold)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if j == nil || j.Status != engine.RunRunning || !slices.Equal(stepStates(j.Hosts[0]), []string{"running", "pending"}) {
		t.Fatalf("mid-run journal: %+v", j)
	}
	if filepath.Dir(runs[0]) != runDir {
		t.Errorf("run dir %s vs %s", filepath.Dir(runs[0]), runDir)
	}
	final, err := engine.ReadJournal(runs[0])
	if err != nil || final.Status != engine.RunOK || !slices.Equal(stepStates(final.Hosts[0]), []string{"unchanged", "unchanged"}) {
		t.Fatalf("final journal: %+v %v", final, err)
	}
}

func stepStates(h *engine.HostResult) []string {
	var out []string
	for _, s := range h.Steps {
		out = append(out, string(s.Status))
	}
	return out
}

func TestHostLogRedactsSecrets(t *testing.T) {
	e := newEnv(t, map[string][]string{"masters": {"m1"}})
	const secret = "hunter2-sudo-pw"
	e.register(&enginetest.FuncStep{StepName: "leaky", PlanFn: func(ctx context.Context, t *engine.Target) ([]engine.Change, error) {
		if _, err := t.Host.Exec(ctx, "echo token="+secret+"; echo on-stderr >&2"); err != nil {
			return nil, err
		}
		t.Log.Info("configured", "password", secret)
		_, err := t.Host.Exec(ctx, "echo 'bad password "+secret+"' >&2; exit 3")
		return nil, err
	}})
	res, err := e.run(context.Background(), "name: log\nplays:\n  - {hosts: masters, steps: [leaky]}\n",
		func(o *engine.Options) { o.Secrets = []string{secret} })
	if err == nil {
		t.Fatal("want failure")
	}
	logData, rerr := os.ReadFile(filepath.Join(res.RunDir, res.Host("m1").Log))
	if rerr != nil {
		t.Fatal(rerr)
	}
	journal, _ := os.ReadFile(filepath.Join(res.RunDir, engine.JournalFile))
	for name, data := range map[string]string{"host log": string(logData), "journal": string(journal), "error": err.Error()} {
		if strings.Contains(data, secret) {
			t.Errorf("%s contains the secret:\n%s", name, data)
		}
	}
	for _, want := range []string{"$ echo token=[REDACTED]; echo on-stderr >&2", "--- stdout\ntoken=[REDACTED]\n", "exit status 3: bad password [REDACTED]", "@@os-release", "msg=configured host=m1 password=[REDACTED]"} {
		if !strings.Contains(string(logData), want) {
			t.Errorf("host log lacks %q:\n%s", want, logData)
		}
	}
}

func TestJSONEvents(t *testing.T) {
	e := newEnv(t, map[string][]string{"masters": {"m1"}})
	e.register(&enginetest.FileStep{StepName: "conf", Path: "a.conf", Content: "x"})
	var buf bytes.Buffer
	_, err := e.run(context.Background(), "name: ev\nplays:\n  - {name: p, hosts: masters, steps: [conf]}\n",
		func(o *engine.Options) { o.Events = engine.NewJSONSink(&buf) })
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var ev map[string]any
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("not one JSON object per line: %q: %v", line, err)
		}
		types = append(types, ev["type"].(string))
		if ev["type"] == "step_done" && (ev["status"] != "applied" || ev["host"] != "m1" || ev["step"] != "conf" || len(ev["changes"].([]any)) != 1) {
			t.Errorf("step_done = %v", ev)
		}
		if ev["type"] == "run_done" && len(ev["summary"].([]any)) != 1 {
			t.Errorf("run_done without summary: %v", ev)
		}
	}
	want := []string{"run_start", "play_start", "batch_start", "host_start", "step_plan", "step_apply", "step_done", "host_done", "play_done", "run_done"}
	if !slices.Equal(types, want) {
		t.Errorf("event types %v\nwant %v", types, want)
	}
}

func TestLiveSinkDrawsTable(t *testing.T) {
	var buf syncBuffer
	l := engine.NewLiveSink(&buf, 5*time.Millisecond)
	l.Event(engine.Event{Type: engine.EventPlayStart, Play: "etcd", Hosts: []string{"m1", "m2"}})
	l.Event(engine.Event{Type: engine.EventHostStart, Play: "etcd", Host: "m1"})
	l.Event(engine.Event{Type: engine.EventStepApply, Play: "etcd", Host: "m1", Step: "etcd-certs"})
	time.Sleep(50 * time.Millisecond)
	frame := buf.String()
	l.Event(engine.Event{Type: engine.EventStepFailed, Play: "etcd", Host: "m1", Step: "etcd-certs", Status: "failed", Error: "no space"})
	l.Event(engine.Event{Type: engine.EventPlayDone, Play: "etcd", Status: "failed"})
	l.Close()
	for _, want := range []string{"play etcd", "m1", "running", "etcd-certs", "m2", "waiting", "running=1 waiting=1"} {
		if !strings.Contains(frame, want) {
			t.Errorf("live frame lacks %q:\n%q", want, frame)
		}
	}
	if out := buf.String(); !strings.Contains(out, "\x1b[") || !strings.Contains(out, `play "etcd"`) || !strings.Contains(out, "m1: no space") {
		t.Errorf("final output %q", out)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestSharedDataBetweenHosts(t *testing.T) {
	e := newEnv(t, map[string][]string{"masters": {"m1"}, "workers": {"w1", "w2"}})
	var mu sync.Mutex
	got := map[string]string{}
	e.register(&enginetest.FuncStep{StepName: "make-token", PlanFn: func(_ context.Context, t *engine.Target) ([]engine.Change, error) {
		t.Shared.Set("token", "abc.123")
		return nil, nil
	}}, &enginetest.FuncStep{StepName: "join", PlanFn: func(ctx context.Context, t *engine.Target) ([]engine.Change, error) {
		v, err := t.Shared.Wait(ctx, "token")
		mu.Lock()
		got[t.Inv.Name] = fmt.Sprint(v)
		mu.Unlock()
		return nil, err
	}})
	if _, err := e.run(context.Background(), "name: s\nplays:\n  - {hosts: masters, steps: [make-token]}\n  - {hosts: workers, steps: [join]}\n", nil); err != nil {
		t.Fatal(err)
	}
	if got["w1"] != "abc.123" || got["w2"] != "abc.123" {
		t.Errorf("workers saw %v", got)
	}
}

// golden compares got with testdata/<name>.golden (rewritten with -update).
func golden(t *testing.T, name, got string) {
	t.Helper()
	goldenfile.AssertString(t, filepath.Join("testdata", name+".golden"), got)
}

func TestCallerSharedDataReachesSteps(t *testing.T) {
	e := newEnv(t, map[string][]string{"masters": {"m1", "m2"}})
	var mu sync.Mutex
	got := map[string]string{}
	probe := &enginetest.FuncStep{StepName: "probe", PlanFn: func(_ context.Context, t *engine.Target) ([]engine.Change, error) {
		v, _ := t.Shared.String("prepared")
		mu.Lock()
		defer mu.Unlock()
		got[t.Inv.Name] = v
		return nil, nil
	}}
	e.register(probe)
	shared := engine.NewSharedData()
	shared.Set("prepared", "by the caller")
	if _, err := e.run(context.Background(), "name: s\nplays:\n  - {hosts: masters, steps: [probe]}\n", func(o *engine.Options) { o.Shared = shared }); err != nil {
		t.Fatal(err)
	}
	if got["m1"] != "by the caller" || got["m2"] != "by the caller" {
		t.Fatalf("steps saw %v", got)
	}
}
