package engine

import (
	"encoding/json"
	"time"
)

// StepStatus is where one step stands on one host.
type StepStatus string

// Step statuses. pending and running only appear in a journal written while
// the run was still going (or after a crash); a finished run has none.
const (
	StatusPending   StepStatus = "pending"
	StatusRunning   StepStatus = "running"
	StatusPlanned   StepStatus = "planned"   // dry-run: changes planned, nothing applied
	StatusApplied   StepStatus = "applied"   // changes were applied
	StatusUnchanged StepStatus = "unchanged" // plan was empty: already up to date
	StatusFailed    StepStatus = "failed"
	StatusSkipped   StepStatus = "skipped" // not run: see Reason
	StatusCancelled StepStatus = "cancelled"
)

// HostStatus summarises a host over the whole run.
type HostStatus string

// Host statuses.
const (
	HostPending     HostStatus = "pending"
	HostOK          HostStatus = "ok"      // nothing needed changing
	HostChanged     HostStatus = "changed" // something was applied (or planned in dry-run)
	HostFailed      HostStatus = "failed"
	HostUnreachable HostStatus = "unreachable" // connect or fact gathering failed
	HostCancelled   HostStatus = "cancelled"
	HostSkipped     HostStatus = "skipped" // never got to run a step
)

// RunStatus is the outcome of the whole run.
type RunStatus string

// Run statuses.
const (
	RunRunning   RunStatus = "running"
	RunOK        RunStatus = "ok"
	RunFailed    RunStatus = "failed"
	RunCancelled RunStatus = "cancelled"
)

// PlayStatus is the outcome of one play.
type PlayStatus string

// Play statuses.
const (
	PlayPending PlayStatus = "pending"
	PlayRunning PlayStatus = "running"
	PlayOK      PlayStatus = "ok"
	PlayFailed  PlayStatus = "failed"  // some hosts failed, within max_fail_percentage
	PlayAborted PlayStatus = "aborted" // max_fail_percentage exceeded or any_errors_fatal
	PlaySkipped PlayStatus = "skipped" // no hosts, or the run stopped before it
)

// Result is the journal of a run; the same value is written to
// journal.json and returned by Run.
type Result struct {
	Version  int           `json:"version"`
	Playbook string        `json:"playbook"`
	Source   string        `json:"source"`
	Cluster  string        `json:"cluster,omitempty"`
	DryRun   bool          `json:"dryRun"`
	Status   RunStatus     `json:"status"`
	Error    string        `json:"error,omitempty"`
	Started  time.Time     `json:"started"`
	Finished *time.Time    `json:"finished,omitempty"`
	Duration Duration      `json:"duration"`
	Plays    []*PlayResult `json:"plays"`
	Hosts    []*HostResult `json:"hosts"`

	// RunDir holds journal.json and hosts/*.log.
	RunDir string `json:"-"`
}

// PlayResult records how a play was scheduled.
type PlayResult struct {
	Name     string     `json:"name"`
	Selector string     `json:"hosts"`
	Selected []string   `json:"selected"`
	Batches  [][]string `json:"batches"`
	Status   PlayStatus `json:"status"`
	Error    string     `json:"error,omitempty"`
}

// HostResult is one host's part of the run.
type HostResult struct {
	Name   string     `json:"name"`
	Status HostStatus `json:"status"`
	Error  string     `json:"error,omitempty"`
	Facts  *Facts     `json:"facts,omitempty"`
	// Log is the host's command log, relative to the run directory.
	Log   string        `json:"log"`
	Steps []*StepResult `json:"steps"`
}

// StepResult is one step on one host.
type StepResult struct {
	Play string `json:"play"`
	// PlayIndex tells apart plays that share a name.
	PlayIndex int        `json:"playIndex"`
	Step      string     `json:"step"`
	Status    StepStatus `json:"status"`
	Changes   []Change   `json:"changes,omitempty"`
	Attempts  int        `json:"attempts,omitempty"`
	Started   *time.Time `json:"started,omitempty"`
	Duration  Duration   `json:"duration"`
	Error     string     `json:"error,omitempty"`
	// Reason says why a step was skipped.
	Reason string `json:"reason,omitempty"`
}

// Duration marshals as a string ("1.2s") for people and seconds for tools.
type Duration time.Duration

// MarshalJSON writes {"text":"1.2s","seconds":1.2}.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Text    string  `json:"text"`
		Seconds float64 `json:"seconds"`
	}{time.Duration(d).Round(time.Millisecond).String(), time.Duration(d).Seconds()})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var v struct {
		Seconds float64 `json:"seconds"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*d = Duration(time.Duration(v.Seconds * float64(time.Second)))
	return nil
}

// Host returns the result for a host by name, or nil.
func (r *Result) Host(name string) *HostResult {
	for _, h := range r.Hosts {
		if h.Name == name {
			return h
		}
	}
	return nil
}

// Step returns the result of a step in a play on this host, or nil.
func (h *HostResult) Step(play, step string) *StepResult {
	for _, s := range h.Steps {
		if s.Play == play && s.Step == step {
			return s
		}
	}
	return nil
}

// HostSummary is one recap line: counts of step outcomes on a host.
type HostSummary struct {
	Host        string `json:"host"`
	OK          int    `json:"ok"`      // succeeded: applied + unchanged (+ planned in dry-run)
	Changed     int    `json:"changed"` // applied, or planned in dry-run
	Unchanged   int    `json:"unchanged"`
	Failed      int    `json:"failed"`
	Skipped     int    `json:"skipped"`
	Cancelled   int    `json:"cancelled"`
	Unreachable bool   `json:"unreachable,omitempty"`
}

// Summary returns per-host counts in host order.
func (r *Result) Summary() []HostSummary {
	out := make([]HostSummary, 0, len(r.Hosts))
	for _, h := range r.Hosts {
		s := HostSummary{Host: h.Name, Unreachable: h.Status == HostUnreachable}
		for _, st := range h.Steps {
			switch st.Status {
			case StatusApplied, StatusPlanned:
				s.OK++
				s.Changed++
			case StatusUnchanged:
				s.OK++
				s.Unchanged++
			case StatusFailed:
				s.Failed++
			case StatusSkipped, StatusPending:
				s.Skipped++
			case StatusCancelled, StatusRunning:
				s.Cancelled++
			}
		}
		out = append(out, s)
	}
	return out
}
