package main

import (
	"strings"
	"testing"
	"time"

	"github.com/kubewright/kubewright/installer/engine"
)

func TestTable(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	at := func(s float64) *time.Time { v := t0.Add(time.Duration(s * float64(time.Second))); return &v }
	res := &engine.Result{
		Status:   "succeeded",
		Duration: engine.Duration(9 * time.Second),
		Plays: []*engine.PlayResult{
			{Name: "etcd", Selected: []string{"a", "b"}, Batches: [][]string{{"a", "b"}}},
			{Name: "control plane", Selected: []string{"a", "b"}, Batches: [][]string{{"a"}, {"b"}}},
			{Name: "never ran", Selected: []string{"a"}},
		},
		Hosts: []*engine.HostResult{
			{Name: "a", Steps: []*engine.StepResult{
				{PlayIndex: 0, Started: at(0), Duration: engine.Duration(2 * time.Second)},
				{PlayIndex: 1, Started: at(3), Duration: engine.Duration(time.Second)},
				{PlayIndex: 2},
			}},
			{Name: "b", Steps: []*engine.StepResult{
				{PlayIndex: 0, Started: at(0.5), Duration: engine.Duration(2 * time.Second)},
				{PlayIndex: 1, Started: at(4), Duration: engine.Duration(1500 * time.Millisecond)},
			}},
		},
	}
	got := table(res)
	for _, want := range []string{
		"| etcd | 2 | 1 | 2.5 |",
		"| control plane | 2 | 2 | 2.5 |",
		"| never ran | 1 | 0 | - |",
		"| **whole run** (succeeded) | 2 | | **9.0** |",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("table lacks %q:\n%s", want, got)
		}
	}
}
