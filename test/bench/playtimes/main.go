// Command playtimes prints how long each play of a kubewright run took, as
// a markdown table, from the run's journal.json: from the first step that
// started on any host to the last that finished. hack/bench.sh uses it for
// the lab install figures.
//
//	go run ./test/bench/playtimes STATE/clusters/NAME/runs/RUN/journal.json
package main

import (
	"fmt"
	"os"
	"time"

	"github.com/kubewright/kubewright/installer/engine"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: playtimes JOURNAL (a run's journal.json)")
		os.Exit(2)
	}
	res, err := engine.ReadJournal(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "playtimes:", err)
		os.Exit(1)
	}
	fmt.Print(table(res))
}

// span is when a play's first step started and its last one ended.
type span struct{ from, to time.Time }

func table(res *engine.Result) string {
	spans := make([]span, len(res.Plays))
	for _, h := range res.Hosts {
		for _, st := range h.Steps {
			if st.Started == nil || st.PlayIndex < 0 || st.PlayIndex >= len(spans) {
				continue
			}
			end := st.Started.Add(time.Duration(st.Duration))
			sp := &spans[st.PlayIndex]
			if sp.from.IsZero() || st.Started.Before(sp.from) {
				sp.from = *st.Started
			}
			if end.After(sp.to) {
				sp.to = end
			}
		}
	}
	out := "| play | hosts | batches | wall s |\n|---|---:|---:|---:|\n"
	for i, pl := range res.Plays {
		wall := "-"
		if !spans[i].from.IsZero() {
			wall = fmt.Sprintf("%.1f", spans[i].to.Sub(spans[i].from).Seconds())
		}
		out += fmt.Sprintf("| %s | %d | %d | %s |\n", pl.Name, len(pl.Selected), len(pl.Batches), wall)
	}
	return out + fmt.Sprintf("| **whole run** (%s) | %d | | **%.1f** |\n", res.Status, len(res.Hosts), time.Duration(res.Duration).Seconds())
}
