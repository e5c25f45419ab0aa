package steps

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/kubewright/kubewright/installer/engine"
	"github.com/kubewright/kubewright/installer/inventory"
	"github.com/kubewright/kubewright/installer/remote"
)

// CheckReport is the result of `kubewright check`: every host × check.
type CheckReport struct {
	Cluster string        `json:"cluster"`
	Results []CheckResult `json:"results"`
	Summary CheckSummary  `json:"summary"`
}

// CheckSummary counts results by status.
type CheckSummary struct {
	Hosts int `json:"hosts"`
	Pass  int `json:"pass"`
	Warn  int `json:"warn"`
	Fail  int `json:"fail"`
	Skip  int `json:"skip"`
}

// Failed reports whether any check failed.
func (r *CheckReport) Failed() bool { return r.Summary.Fail > 0 }

// CheckOptions tune CheckCluster.
type CheckOptions struct {
	// Concurrency bounds hosts checked at once; zero means engine.DefaultConcurrency.
	Concurrency int
	// Timeout bounds connecting, fact gathering and checks per host; zero: 2m.
	Timeout time.Duration
	// Now is the operator's clock (clock-skew check); nil: time.Now.
	Now func() time.Time
}

// Connection rows: a host that cannot be reached gets these instead of checks.
const (
	CheckConnect = "connect"
	CheckFacts   = "facts"
)

// CheckCluster runs preflight on every inventory host. It works in two
// passes because some checks are about the cluster, not a host: first it
// connects to every host and gathers facts, then it runs RunPreflight on each
// with every host's facts, so duplicate hostnames, machine-ids and addresses
// and a VIP held by one of our own masters are judged across all hosts.
func CheckCluster(ctx context.Context, c *inventory.Cluster, conn engine.Connector, o CheckOptions) *CheckReport {
	if o.Concurrency <= 0 {
		o.Concurrency = engine.DefaultConcurrency
	}
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Minute
	}
	hosts := make([]*inventory.Host, len(c.Spec.Hosts))
	for i := range c.Spec.Hosts {
		hosts[i] = &c.Spec.Hosts[i]
	}
	type state struct {
		h     remote.Host
		facts *engine.Facts
		rows  []CheckResult
	}
	states := make([]state, len(hosts))
	sem := make(chan struct{}, o.Concurrency)
	each := func(f func(i int)) {
		var wg sync.WaitGroup
		for i := range hosts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sem <- struct{}{}
				defer func() { <-sem }()
				f(i)
			}()
		}
		wg.Wait()
	}
	each(func(i int) {
		hctx, cancel := context.WithTimeout(ctx, o.Timeout)
		defer cancel()
		name := hosts[i].Name
		h, err := conn.Connect(hctx, hosts[i])
		if err != nil {
			states[i].rows = []CheckResult{{Host: name, Check: CheckConnect, Status: StatusFail, Reason: firstLine(err)}}
			return
		}
		states[i].h = h
		f, err := engine.GatherFacts(hctx, h)
		if err != nil {
			states[i].rows = []CheckResult{{Host: name, Check: CheckFacts, Status: StatusFail, Reason: firstLine(err)}}
			return
		}
		states[i].facts = f
	})
	all := map[string]*engine.Facts{}
	for i, s := range states {
		if s.facts != nil {
			all[hosts[i].Name] = s.facts
		}
	}
	peers := PeerInfo{Facts: all, Now: o.Now}
	each(func(i int) {
		s := &states[i]
		if s.facts == nil {
			return
		}
		hctx, cancel := context.WithTimeout(ctx, o.Timeout)
		defer cancel()
		t := &engine.Target{Host: s.h, Inv: hosts[i], Cluster: c, Facts: s.facts}
		s.rows = RunPreflight(hctx, t, peers)
	})
	for _, s := range states {
		if s.h != nil {
			s.h.Close()
		}
	}
	rep := &CheckReport{Cluster: c.Metadata.Name, Summary: CheckSummary{Hosts: len(hosts)}}
	for _, s := range states {
		rep.Results = append(rep.Results, s.rows...)
	}
	for _, r := range rep.Results {
		switch r.Status {
		case StatusPass:
			rep.Summary.Pass++
		case StatusWarn:
			rep.Summary.Warn++
		case StatusFail:
			rep.Summary.Fail++
		case StatusSkip:
			rep.Summary.Skip++
		}
	}
	return rep
}

// WriteTable renders one row per host × check, hosts in inventory order,
// then a summary line. FAIL and WARN are upper-case so they stand out.
func (r *CheckReport) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tCHECK\tSTATUS\tREASON")
	for _, x := range r.Results {
		st := string(x.Status)
		if x.Status == StatusFail || x.Status == StatusWarn {
			st = strings.ToUpper(st)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", x.Host, x.Check, st, x.Reason)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	s := r.Summary
	verdict := "ready to install"
	if s.Fail > 0 {
		verdict = "fix the failed checks before installing"
	}
	_, err := fmt.Fprintf(w, "\n%d hosts: %d pass, %d warn, %d fail, %d skip; %s\n", s.Hosts, s.Pass, s.Warn, s.Fail, s.Skip, verdict)
	return err
}

// WriteJSON renders the report as one indented JSON document.
func (r *CheckReport) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// HostsWith lists hosts having a result with check and status, sorted.
func (r *CheckReport) HostsWith(check string, st Status) []string {
	var out []string
	for _, x := range r.Results {
		if x.Check == check && x.Status == st {
			out = append(out, x.Host)
		}
	}
	sort.Strings(out)
	return out
}
