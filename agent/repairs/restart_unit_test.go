package repairs

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kubewright/kubewright/agent"
)

func TestRestartUnitNameScopeUnits(t *testing.T) {
	for _, tc := range []struct {
		r     RestartUnit
		name  string
		scope agent.Scope
	}{
		{RestartUnit{Unit: "kubelet.service"}, "restart-kubelet", agent.ScopeNode},
		{RestartUnit{Unit: "kube-apiserver.service", In: agent.ScopeControlPlane}, "restart-kube-apiserver", agent.ScopeControlPlane},
		{RestartUnit{Unit: "etcd", In: agent.ScopeEtcd}, "restart-etcd", agent.ScopeEtcd},
	} {
		if tc.r.Name() != tc.name || tc.r.Scope() != tc.scope {
			t.Errorf("%s: name %q scope %q, want %q %q", tc.r.Unit, tc.r.Name(), tc.r.Scope(), tc.name, tc.scope)
		}
		if u := tc.r.Units(); !slices.Equal(u, []string{tc.r.Unit}) {
			t.Errorf("%s: Units() = %v", tc.r.Unit, u)
		}
	}
	var _ agent.Repair = RestartUnit{}
	var _ agent.UnitRepair = RestartUnit{}
}

func TestRestartUnitWaitsUntilActive(t *testing.T) {
	rec := &recorder{answer: activeAfter(2)}
	r := RestartUnit{Unit: "kubelet.service", Run: rec.run, Poll: time.Millisecond}
	if err := r.Act(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"systemctl restart kubelet.service",
		"systemctl is-active kubelet.service",
		"systemctl is-active kubelet.service",
		"systemctl is-active kubelet.service",
	}
	if got := rec.commands(); !slices.Equal(got, want) {
		t.Fatalf("commands\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestRestartUnitNeverActive(t *testing.T) {
	journal := strings.Join([]string{
		"Mar 01 12:00:01 m1 kubelet[901]: line 1",
		"Mar 01 12:00:02 m1 kubelet[901]: line 2",
		"Mar 01 12:00:03 m1 kubelet[901]: line 3",
		"Mar 01 12:00:04 m1 kubelet[901]: line 4",
		"Mar 01 12:00:05 m1 kubelet[901]: failed to load kubelet config file /var/lib/kubelet/config.yaml",
	}, "\n") + "\n"
	rec := &recorder{answer: func(cmd string) (string, error) {
		switch {
		case strings.HasPrefix(cmd, "systemctl is-active"):
			return "failed\n", errExit3
		case strings.HasPrefix(cmd, "journalctl"):
			return journal, nil
		}
		return "", nil
	}}
	r := RestartUnit{Unit: "kubelet.service", Run: rec.run, Wait: 50 * time.Millisecond, Poll: 10 * time.Millisecond}
	start := time.Now()
	err := r.Act(context.Background())
	took := time.Since(start)
	if err == nil {
		t.Fatal("a unit that stays failed was reported restarted")
	}
	for _, want := range []string{"kubelet.service is failed, not active, 50ms after restart", "line 1", "failed to load kubelet config file"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	calls := rec.commands()
	if last := calls[len(calls)-1]; last != "journalctl -u kubelet.service -n 5 --no-pager" {
		t.Errorf("last command %q, want the journal tail", last)
	}
	// Wait and Poll are wired: about 50ms/10ms polls, then give up.
	polls := 0
	for _, c := range calls {
		if c == "systemctl is-active kubelet.service" {
			polls++
		}
	}
	if polls < 3 || polls > 8 || took < 50*time.Millisecond || took > 2*time.Second {
		t.Errorf("%d polls in %s, want about 6 in 50ms", polls, took)
	}
}

func TestRestartUnitKeepsOnlyLastFiveJournalLines(t *testing.T) {
	rec := &recorder{answer: func(cmd string) (string, error) {
		if strings.HasPrefix(cmd, "journalctl") {
			return "one\ntwo\nthree\nfour\nfive\nsix\nseven\n", nil
		}
		return "inactive\n", errExit3
	}}
	err := RestartUnit{Unit: "kube-proxy.service", Run: rec.run, Wait: time.Millisecond, Poll: time.Millisecond}.Act(context.Background())
	if err == nil || strings.Contains(err.Error(), "two") || !strings.Contains(err.Error(), "three\n  four\n  five\n  six\n  seven") {
		t.Fatalf("error %q, want the last five journal lines", err)
	}
}

func TestRestartUnitRestartFails(t *testing.T) {
	rec := &recorder{answer: func(cmd string) (string, error) {
		switch {
		case strings.HasPrefix(cmd, "systemctl restart"):
			return "Failed to restart etcd.service: Unit etcd.service not found.\n", errors.New("exit status 5")
		case strings.HasPrefix(cmd, "journalctl"):
			return "-- No entries --\n", nil
		}
		return "", nil
	}}
	err := RestartUnit{Unit: "etcd.service", In: agent.ScopeEtcd, Run: rec.run}.Act(context.Background())
	if err == nil {
		t.Fatal("failed restart reported as success")
	}
	for _, want := range []string{"systemctl restart etcd.service", "exit status 5", "Unit etcd.service not found", "-- No entries --"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	want := []string{"systemctl restart etcd.service", "journalctl -u etcd.service -n 5 --no-pager"}
	if got := rec.commands(); !slices.Equal(got, want) {
		t.Fatalf("commands %q, want %q (no waiting for a unit that did not restart)", got, want)
	}
}

func TestRestartUnitHonoursContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	rec := &recorder{answer: func(cmd string) (string, error) {
		if strings.HasPrefix(cmd, "systemctl is-active") {
			return "activating\n", errExit3
		}
		return "", nil
	}}
	start := time.Now()
	err := RestartUnit{Unit: "kubelet.service", Run: rec.run, Poll: 5 * time.Millisecond}.Act(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 2*time.Second {
		t.Fatalf("Act with a 30ms context: %v after %s, want DeadlineExceeded promptly (Wait is 30s)", err, time.Since(start))
	}
	if !strings.Contains(err.Error(), "kubelet.service") || !strings.Contains(err.Error(), "activating") {
		t.Fatalf("error %q does not name the unit and its state", err)
	}
}
