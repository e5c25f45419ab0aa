package steps

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kubewright/kubewright/installer/engine/enginetest"
	goldenfile "github.com/kubewright/kubewright/internal/golden"
)

// golden compares got with testdata/NAME.golden (rewritten with -update).
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	goldenfile.Assert(t, filepath.Join("testdata", name+".golden"), got)
}

func sampleReport() *CheckReport {
	r := &CheckReport{Cluster: "prod", Summary: CheckSummary{Hosts: 2, Pass: 2, Warn: 1, Fail: 2}, Results: []CheckResult{
		{Host: "m1", Check: CheckOS, Status: StatusPass, Reason: "debian 12"},
		{Host: "m1", Check: CheckSwap, Status: StatusWarn, Reason: "2047 MiB of swap is on; the swap-off step turns it off"},
		{Host: "m1", Check: CheckMachineID, Status: StatusFail, Reason: "machine-id aaaa is shared with w1"},
		{Host: "w1", Check: CheckConnect, Status: StatusFail, Reason: "dial tcp 10.0.0.21:22: connect: connection refused"},
		{Host: "w1", Check: CheckOS, Status: StatusPass, Reason: "ubuntu 24.04"},
	}}
	return r
}

func TestReportRendering(t *testing.T) {
	var tbl, js bytes.Buffer
	r := sampleReport()
	if err := r.WriteTable(&tbl); err != nil {
		t.Fatal(err)
	}
	golden(t, "check-table", tbl.Bytes())
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	golden(t, "check-json", js.Bytes())
	if !r.Failed() {
		t.Fatal("report with failures not Failed()")
	}
}

// TestCheckClusterOnOneMachine checks three inventory hosts that are all this
// machine (fake hosts running the local shell): the cross-host pass must
// report the shared machine-id and hostname on every host, a host that
// cannot be reached gets one connect row, and the skewed operator clock
// fails every reachable host.
func TestCheckClusterOnOneMachine(t *testing.T) {
	c := clusterWith(nil)
	fleet := enginetest.NewFleet(t)
	fleet.FailConnect("w1", errors.New("dial tcp 10.0.0.21:22: connect: connection refused"))
	rep := CheckCluster(context.Background(), c, fleet, CheckOptions{Concurrency: 2, Now: func() time.Time { return time.Now().Add(time.Hour) }})
	if got := rep.HostsWith(CheckMachineID, StatusFail); !reflect.DeepEqual(got, []string{"m1", "m2"}) {
		t.Errorf("machine-id failures on %q, want m1 m2", got)
	}
	if got := rep.HostsWith(CheckHostname, StatusFail); !reflect.DeepEqual(got, []string{"m1", "m2"}) {
		t.Errorf("hostname failures on %q, want m1 m2", got)
	}
	if got := rep.HostsWith(CheckConnect, StatusFail); !reflect.DeepEqual(got, []string{"w1"}) {
		t.Errorf("connect failures on %q, want w1", got)
	}
	if got := rep.HostsWith(CheckClock, StatusFail); !reflect.DeepEqual(got, []string{"m1", "m2"}) {
		t.Errorf("clock failures on %q, want m1 m2", got)
	}
	for _, r := range rep.Results {
		if r.Host == "w1" && r.Check != CheckConnect {
			t.Errorf("unreachable host has row %+v", r)
		}
		if r.Check == CheckMachineID && r.Host == "m1" && !strings.Contains(r.Reason, "shared with m2") {
			t.Errorf("m1 machine-id reason %q", r.Reason)
		}
	}
	if !rep.Failed() || rep.Summary.Hosts != 3 || rep.Summary.Fail < 5 {
		t.Fatalf("summary %+v", rep.Summary)
	}
	if n := fleet.Host("m1").Closes(); n != 1 {
		t.Errorf("m1 closed %d times, want 1", n)
	}
}
