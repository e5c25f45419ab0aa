package engine

import (
	"fmt"
	"io"
	"path/filepath"
	"time"
)

// RenderRecap prints the end-of-run summary, one line per host (like
// Ansible's PLAY RECAP), then the total time and where the journal is.
func RenderRecap(w io.Writer, r *Result) {
	width := 4
	for _, h := range r.Hosts {
		width = max(width, len(h.Name))
	}
	fmt.Fprintf(w, "RECAP %s\n", r.Playbook)
	for i, s := range r.Summary() {
		h := r.Hosts[i]
		fmt.Fprintf(w, "%-*s : ok=%-3d changed=%-3d unchanged=%-3d failed=%-3d skipped=%-3d cancelled=%d",
			width, s.Host, s.OK, s.Changed, s.Unchanged, s.Failed, s.Skipped, s.Cancelled)
		if s.Unreachable {
			fmt.Fprintf(w, " unreachable: %s", h.Error)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "status %s in %s\n", r.Status, time.Duration(r.Duration).Round(time.Millisecond))
	if r.RunDir != "" {
		fmt.Fprintf(w, "journal %s\n", filepath.Join(r.RunDir, JournalFile))
	}
}

// RenderPlan prints every host's planned changes from a dry run.
func RenderPlan(w io.Writer, r *Result) {
	fmt.Fprintf(w, "Plan for playbook %s (dry run: nothing was changed)\n", r.Playbook)
	fmt.Fprintln(w, "Each step was planned against the host's current state. Steps marked * come after an")
	fmt.Fprintln(w, "earlier planned change on the same host, so applying may change more or less than shown.")
	total, hostsWithChanges := 0, 0
	for _, h := range r.Hosts {
		fmt.Fprintf(w, "\n%s", h.Name)
		if h.Status == HostUnreachable {
			fmt.Fprintf(w, ": unreachable: %s\n", h.Error)
			continue
		}
		fmt.Fprintln(w)
		seenChange := false
		n := 0
		for _, s := range h.Steps {
			mark := " "
			if seenChange {
				mark = "*"
			}
			switch s.Status {
			case StatusPlanned, StatusApplied:
				fmt.Fprintf(w, " %s [%s] %s: %d change%s\n", mark, s.Play, s.Step, len(s.Changes), plural(len(s.Changes)))
				for _, c := range s.Changes {
					fmt.Fprintf(w, "      ~ %s\n", c)
				}
				seenChange = true
				n += len(s.Changes)
			case StatusUnchanged:
				fmt.Fprintf(w, " %s [%s] %s: up to date\n", mark, s.Play, s.Step)
			case StatusFailed, StatusCancelled:
				fmt.Fprintf(w, " %s [%s] %s: %s: %s\n", mark, s.Play, s.Step, s.Status, s.Error)
			default:
				reason := ""
				if s.Reason != "" {
					reason = " (" + s.Reason + ")"
				}
				fmt.Fprintf(w, " %s [%s] %s: %s%s\n", mark, s.Play, s.Step, s.Status, reason)
			}
		}
		total += n
		if n > 0 {
			hostsWithChanges++
		}
	}
	fmt.Fprintf(w, "\n%d change%s planned on %d of %d host%s\n", total, plural(total), hostsWithChanges, len(r.Hosts), plural(len(r.Hosts)))
}
