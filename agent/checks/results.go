package checks

import (
	"context"
	"fmt"
	"time"

	"github.com/kubewright/kubewright/agent"
)

// Reasons shared by every check. Reasons specific to one check live in its
// file.
const (
	// ReasonInvalidConfig: the check's own configuration is unusable (an
	// address that does not parse, a threshold out of range). The node may be
	// fine; fix agent.yaml.
	ReasonInvalidConfig = "InvalidConfig"
	// ReasonCheckCanceled: the check's context ended before it could look,
	// usually because the agent is shutting down.
	ReasonCheckCanceled = "CheckCanceled"
)

func okf(format string, a ...any) agent.Result {
	return agent.Result{Status: agent.OK, Reason: "OK", Message: fmt.Sprintf(format, a...)}
}

func problemf(reason, format string, a ...any) agent.Result {
	return agent.Result{Status: agent.Problem, Reason: reason, Message: fmt.Sprintf(format, a...)}
}

func unknownf(reason, format string, a ...any) agent.Result {
	return agent.Result{Status: agent.Unknown, Reason: reason, Message: fmt.Sprintf(format, a...)}
}

// canceled is the result for a check whose parent context ended: the check
// found nothing about the node, so it must not report a Problem.
func canceled(ctx context.Context, what string) agent.Result {
	return unknownf(ReasonCheckCanceled, "%s: check interrupted before an answer: %v", what, context.Cause(ctx))
}

// defaultProbeTimeout bounds one probe when a check sets no Timeout; it is
// below the agent's default 4s check timeout.
const defaultProbeTimeout = 3 * time.Second

// probeContext bounds one probe to d (defaultProbeTimeout when zero) and
// makes it end a little before ctx does. The margin lets a check turn "the
// peer never answered" into its own Problem result before the runner gives
// up on the whole check and records an Unknown overrun. It returns the
// effective timeout, for messages.
func probeContext(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc, time.Duration) {
	if d <= 0 {
		d = defaultProbeTimeout
	}
	if dl, ok := ctx.Deadline(); ok {
		left := time.Until(dl)
		margin := left / 5
		if margin > 500*time.Millisecond {
			margin = 500 * time.Millisecond
		}
		if limit := left - margin; limit < d {
			d = limit
		}
	}
	if d < time.Millisecond {
		d = time.Millisecond
	}
	pctx, cancel := context.WithTimeout(ctx, d)
	return pctx, cancel, d
}

// round makes durations readable in messages (1.2s, 300ms).
func round(d time.Duration) time.Duration {
	switch {
	case d >= 10*time.Second:
		return d.Round(time.Second)
	case d >= time.Second:
		return d.Round(100 * time.Millisecond)
	default:
		return d.Round(time.Millisecond)
	}
}
