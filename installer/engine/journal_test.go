package engine

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// journalResult is a small run result with every kind of field the journal
// holds, including the nil slices that must stay null.
func journalResult() (*Result, *StepResult) {
	started := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	running := &StepResult{Play: "p", PlayIndex: 0, Step: "b", Status: StatusPending}
	return &Result{
		Version: 1, Playbook: "pb", Source: "pb.yaml", Status: RunRunning, Started: started, RunDir: "/x",
		Plays: []*PlayResult{
			{Name: "p", Selector: "all", Selected: []string{"h1", "h2"}, Batches: [][]string{{"h1"}, {"h2"}}, Status: PlayRunning},
			{Name: "q", Selector: "none", Selected: []string{}, Status: PlayPending},
		},
		Hosts: []*HostResult{
			{Name: "h1", Status: HostPending, Log: "hosts/h1.log", Facts: &Facts{OS: "debian", Addresses: []string{"10.0.0.1"}}, Steps: []*StepResult{
				{Play: "p", Step: "a", Status: StatusApplied, Attempts: 2, Started: &started, Duration: Duration(time.Second),
					Changes: []Change{{Action: "create", Object: "/etc/x", Detail: "mode 0600"}}},
				running,
			}},
			{Name: "h2", Status: HostUnreachable, Error: "connect: refused", Log: "hosts/h2.log"},
		},
	}, running
}

func TestCopyResultMarshalsLikeTheOriginal(t *testing.T) {
	orig, running := journalResult()
	cp := copyResult(orig)
	for _, final := range []bool{false, true} {
		want, err := marshalJournal(orig, final)
		if err != nil {
			t.Fatal(err)
		}
		got, err := marshalJournal(cp, final)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("final=%v: copy marshals as\n%s\nwant\n%s", final, got, want)
		}
	}
	before, _ := marshalJournal(cp, false)
	// Everything the runner modifies in place, at every level.
	orig.Status = RunOK
	orig.Plays[0].Status = PlayOK
	orig.Plays[0].Batches = append(orig.Plays[0].Batches, []string{"h3"})
	orig.Hosts[0].Status = HostChanged
	running.Status, running.Attempts, running.Reason = StatusSkipped, 3, "r"
	orig.Hosts[1].Facts = &Facts{OS: "rhel"}
	if after, _ := marshalJournal(cp, false); !bytes.Equal(after, before) {
		t.Errorf("changing the original changed the copy:\n%s\nwas\n%s", after, before)
	}
}

// TestJournalWriteDoesNotHoldTheRunLock: while the journal marshals (here:
// an encoder that blocks until released), a host recording a step must not
// wait for it, and the journal must be marshalling a copy, not the result
// the host is changing.
func TestJournalWriteDoesNotHoldTheRunLock(t *testing.T) {
	res, step := journalResult()
	r := &runner{res: res}
	path := filepath.Join(t.TempDir(), JournalFile)
	r.journal = newJournal(path, time.Hour, r.captureResult)
	marshalling, release := make(chan *Result), make(chan struct{})
	r.journal.encode = func(res *Result, final bool) ([]byte, error) {
		if !final {
			marshalling <- res
			<-release
		}
		return marshalJournal(res, final)
	}
	go r.journal.loop() // only so close() has a loop to stop
	flushed := make(chan struct{})
	go func() {
		r.journal.flush(false)
		close(flushed)
	}()
	snap := <-marshalling

	updated := make(chan struct{})
	go func() {
		r.update(func() { step.Status, step.Attempts = StatusRunning, 1 })
		close(updated)
	}()
	// The timer only keeps a broken journal from hanging the test; a
	// working one lets update return without waiting for anything.
	hang := time.NewTimer(time.Minute)
	defer hang.Stop()
	select {
	case <-updated:
	case <-hang.C:
		close(release)
		t.Fatal("update waited for the journal's marshal: the journal holds the runner's lock while marshalling")
	}
	if got := snap.Hosts[0].Steps[1].Status; got != StatusPending {
		t.Errorf("the journal's snapshot changed under it: step is %s, want pending", got)
	}
	close(release)
	<-flushed
	mid, err := ReadJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := mid.Hosts[0].Steps[1].Status; got != StatusPending {
		t.Errorf("journal written during the update shows %s, want the pending it was captured with", got)
	}

	// The final journal is exact: the whole result as it is at close.
	if err := r.journal.close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := marshalJournal(r.res, true)
	if !bytes.Equal(data, want) {
		t.Fatalf("final journal\n%s\nwant\n%s", data, want)
	}
	final, err := ReadJournal(path)
	if err != nil || final.Hosts[0].Steps[1].Status != StatusRunning || final.Hosts[0].Steps[1].Attempts != 1 {
		t.Fatalf("final journal: %+v, %v", final, err)
	}
}

// TestJournalIntervalStretches drives the journal with a fake clock: each
// write "takes" what the test says (the encoder advances the clock), and the
// loop's waits are observed rather than slept through.
func TestJournalIntervalStretches(t *testing.T) {
	const interval = 250 * time.Millisecond
	res, step := journalResult()
	r := &runner{res: res}
	path := filepath.Join(t.TempDir(), JournalFile)
	j := newJournal(path, interval, r.captureResult)
	r.journal = j

	var (
		mu     sync.Mutex
		clock  = time.Unix(1700000000, 0)
		cost   time.Duration // how long the next write takes
		writes int
	)
	j.now = func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return clock
	}
	j.encode = func(res *Result, final bool) ([]byte, error) {
		mu.Lock()
		clock = clock.Add(cost)
		writes++
		mu.Unlock()
		return marshalJournal(res, final)
	}
	waits, ticks := make(chan time.Duration), make(chan time.Time)
	j.after = func(d time.Duration) <-chan time.Time {
		waits <- d
		return ticks
	}
	go j.loop()

	expectWait := func(what string, want time.Duration) {
		t.Helper()
		if got := <-waits; got != want {
			t.Fatalf("%s: next write waits %s, want %s", what, got, want)
		}
	}
	tick := func(dirty bool, took time.Duration) {
		if dirty {
			r.update(func() { step.Attempts++ })
		}
		mu.Lock()
		cost = took
		mu.Unlock()
		ticks <- time.Time{}
	}
	expectWait("first", interval)
	tick(true, 100*time.Millisecond)
	expectWait("after a 100ms write", 10*100*time.Millisecond)
	tick(true, 10*time.Millisecond)
	expectWait("after a 10ms write", interval) // 100ms < interval
	tick(false, time.Hour)
	expectWait("nothing changed", interval)
	tick(true, 40*time.Millisecond)
	expectWait("after a 40ms write", 400*time.Millisecond)

	mu.Lock()
	if writes != 3 {
		t.Errorf("%d writes, want 3 (one per tick with changes)", writes)
	}
	mu.Unlock()
	r.update(func() { step.Status = StatusUnchanged })
	if err := j.close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var got Result
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	if s := got.Hosts[0].Steps[1]; s.Status != StatusUnchanged || s.Attempts != 3 {
		t.Errorf("final journal has step %+v, want unchanged after 3 attempts", s)
	}
}
