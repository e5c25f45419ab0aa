package agent

import (
	"context"
	"log/slog"
	"time"
)

// Fanout is the daemon's Sink: metrics at once, and the journal and Events
// from a queue drained by Drain, so a slow or unreachable API never holds
// the agent's lock.
type Fanout struct {
	Metrics *Metrics
	Journal *Journal
	Events  *Events
	Logger  *slog.Logger
	queue   chan Action
}

// NewFanout returns a Fanout with a queue of n actions.
func NewFanout(m *Metrics, j *Journal, e *Events, log *slog.Logger, n int) *Fanout {
	return &Fanout{Metrics: m, Journal: j, Events: e, Logger: log, queue: make(chan Action, n)}
}

func (f *Fanout) Observe(name string, r Result, took time.Duration) {
	if f.Metrics != nil {
		f.Metrics.Observe(name, r, took)
	}
}

func (f *Fanout) Act(a Action) {
	if f.Metrics != nil {
		f.Metrics.Act(a)
	}
	f.Logger.Info("agent action", "check", a.Check, "repair", a.Repair, "outcome", a.Outcome, "message", a.Message)
	select {
	case f.queue <- a:
	default:
		f.Logger.Warn("action queue full; journal and event dropped", "check", a.Check, "outcome", a.Outcome)
	}
}

func (f *Fanout) Blocked(repair, rule string) {
	if f.Metrics != nil {
		f.Metrics.Blocked(repair, rule)
	}
}

// Drain writes queued actions to the journal and as Events until ctx ends.
func (f *Fanout) Drain(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case a := <-f.queue:
			if f.Journal != nil {
				if err := f.Journal.Append(a); err != nil {
					f.Logger.Warn("journal", "err", err)
				}
			}
			if f.Events != nil {
				f.Events.Emit(ctx, a)
			}
		}
	}
}
