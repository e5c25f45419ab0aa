package engine_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kubewright/kubewright/installer/engine"
	"github.com/kubewright/kubewright/installer/engine/enginetest"
	"github.com/kubewright/kubewright/installer/inventory"
	"github.com/kubewright/kubewright/installer/remote"
	"github.com/kubewright/kubewright/installer/remote/remotetest"
)

// sshdHosts starts one real OpenSSH sshd per name (so one host can be cut
// or frozen alone) and returns a Connector dialling them with short
// keepalive, connect and reconnect settings, so faults show within
// seconds.
func sshdHosts(t *testing.T, names ...string) (engine.Connector, map[string]*remotetest.OpenSSH) {
	t.Helper()
	servers := map[string]*remotetest.OpenSSH{}
	configs := map[string]remote.Config{}
	for _, n := range names {
		s := remotetest.StartOpenSSH(t, remotetest.WithHostNames(n))
		servers[n] = s
		cfg := s.Config(n)
		// Lenient enough for a loaded 2-core CI machine, short enough
		// that a frozen host shows within seconds.
		cfg.KeepAliveInterval, cfg.KeepAliveCountMax = 200*time.Millisecond, 5
		cfg.ConnectTimeout = 2 * time.Second
		cfg.ReconnectAttempts, cfg.ReconnectBackoff = 2, 50*time.Millisecond
		configs[n] = cfg
	}
	return engine.ConnectorFunc(func(ctx context.Context, h *inventory.Host) (remote.Host, error) {
		return remote.Dial(ctx, configs[h.Name])
	}), servers
}

// markerStep plans a change until DIR/<host>.done exists; its Apply appends
// "started" to DIR/<host>.log, waits a second and writes the .done file.
// The test cuts or freezes a host while that second runs.
func markerStep(dir string) *enginetest.FuncStep {
	path := func(t *engine.Target, ext string) string { return filepath.Join(dir, t.Inv.Name+ext) }
	return &enginetest.FuncStep{StepName: "work",
		PlanFn: func(ctx context.Context, t *engine.Target) ([]engine.Change, error) {
			out, err := t.Host.Exec(ctx, "test -f "+path(t, ".done")+" && echo done || echo todo")
			if err != nil {
				return nil, err
			}
			if strings.TrimSpace(out) == "done" {
				return nil, nil
			}
			return []engine.Change{{Action: "create", Object: path(t, ".done")}}, nil
		},
		ApplyFn: func(ctx context.Context, t *engine.Target, _ []engine.Change) error {
			_, err := t.Host.Exec(ctx, fmt.Sprintf("echo started >> %s; sleep 1; echo ok > %s", path(t, ".log"), path(t, ".done")))
			return err
		}}
}

// whenStarted calls f once every named host has started the step.
func whenStarted(t *testing.T, dir string, hosts []string, f func()) {
	t.Helper()
	go func() {
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			all := true
			for _, h := range hosts {
				if b, _ := os.ReadFile(filepath.Join(dir, h+".log")); len(b) == 0 {
					all = false
				}
			}
			if all {
				f()
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
}

type eventLog struct {
	mu sync.Mutex
	ev []engine.Event
}

func (l *eventLog) Event(e engine.Event) { l.mu.Lock(); l.ev = append(l.ev, e); l.mu.Unlock() }

func (l *eventLog) of(typ engine.EventType) []engine.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []engine.Event
	for _, e := range l.ev {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

func runSSHD(t *testing.T, conn engine.Connector, cluster *enginetest.Cluster, reg *engine.Registry, state, yaml string, events engine.EventSink) (*engine.Result, error) {
	t.Helper()
	pb, err := engine.LoadPlaybook("faults.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return engine.Run(context.Background(), engine.Options{
		Playbook: pb, Cluster: cluster.Cluster, Selector: cluster, Registry: reg, Connector: conn,
		StateDir: state, Events: events,
		// Backoff between attempts is tested elsewhere; do not wait it out.
		Sleep: func(ctx context.Context, _ time.Duration) error { return ctx.Err() },
	})
}

// TestConnectionCutMidCommandIsRetried: sshd's connection is killed while
// a step's command runs. The command is not blindly re-run by the
// transport; the engine gives the step one more attempt on a new
// connection (the playbook asks for no retries), which plans again, sees
// the work is not done, and does it. The result is correct, the journal
// shows two attempts and the retry event says why.
func TestConnectionCutMidCommandIsRetried(t *testing.T) {
	dir := t.TempDir()
	conn, servers := sshdHosts(t, "m1")
	cluster := enginetest.NewCluster("cut", map[string][]string{"masters": {"m1"}})
	reg := engine.NewRegistry()
	reg.MustRegister("work", engine.Static(markerStep(dir)))
	whenStarted(t, dir, []string{"m1"}, func() { servers["m1"].KillConnections() })
	var events eventLog
	state := t.TempDir()
	res, err := runSSHD(t, conn, cluster, reg, state, "name: cut\nplays:\n  - {hosts: all, steps: [work]}\n", &events)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	sr := res.Host("m1").Steps[0]
	if sr.Status != engine.StatusApplied || sr.Attempts != 2 {
		t.Fatalf("step %s after %d attempts, want applied after 2", sr.Status, sr.Attempts)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "m1.done")); string(b) != "ok\n" {
		t.Errorf("m1.done = %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "m1.log")); string(b) != "started\nstarted\n" {
		t.Errorf("the command ran %d times, want twice (cut, then retried)", strings.Count(string(b), "started"))
	}
	retries := events.of(engine.EventStepRetry)
	if len(retries) != 1 || !strings.Contains(retries[0].Error, "connection lost while the command was running") {
		t.Errorf("retry events %+v, want one naming the lost connection", retries)
	}
	j, err := engine.ReadJournal(filepath.Join(res.RunDir, engine.JournalFile))
	if err != nil || j.Host("m1").Steps[0].Attempts != 2 || j.Status != engine.RunOK {
		t.Errorf("journal: %v %+v", err, j)
	}
	// Converged: the next run has nothing to do.
	res, err = runSSHD(t, conn, cluster, reg, state, "name: cut\nplays:\n  - {hosts: all, steps: [work]}\n", nil)
	if err != nil || res.Host("m1").Steps[0].Status != engine.StatusUnchanged {
		t.Errorf("re-run: %v, %+v", err, res.Host("m1").Steps[0])
	}
}

// TestHostStopsAnsweringMidRun freezes one host's sshd (every process
// stopped: no keepalive answer, no new handshake) while the step runs on
// all three hosts. That host fails with an error saying it stopped
// answering and could not be reached again; the other two finish; the run
// fails naming only that host. With serial: 1 and max_fail_percentage: 0
// the same fault stops the play: the next host never starts and later
// plays are skipped.
func TestHostStopsAnsweringMidRun(t *testing.T) {
	hosts := []string{"w1", "w2", "w3"}
	conn, servers := sshdHosts(t, hosts...)
	cluster := enginetest.NewCluster("freeze", map[string][]string{"workers": hosts})

	t.Run("others finish", func(t *testing.T) {
		dir := t.TempDir()
		reg := engine.NewRegistry()
		reg.MustRegister("work", engine.Static(markerStep(dir)))
		whenStarted(t, dir, hosts, func() { servers["w2"].Freeze() })
		defer servers["w2"].Thaw()
		start := time.Now()
		res, err := runSSHD(t, conn, cluster, reg, t.TempDir(), "name: freeze\nplays:\n  - {hosts: workers, steps: [work]}\n", nil)
		if d := time.Since(start); d > 30*time.Second {
			t.Errorf("the run took %s with one host frozen", d)
		}
		if err == nil {
			t.Fatal("run succeeded with a frozen host")
		}
		for _, h := range []string{"w1", "w3"} {
			if s := res.Host(h).Steps[0]; s.Status != engine.StatusApplied {
				t.Errorf("%s: %s (%s), want applied", h, s.Status, s.Error)
			}
		}
		s := res.Host("w2").Steps[0]
		if s.Status != engine.StatusFailed || res.Host("w2").Status != engine.HostFailed {
			t.Fatalf("w2: step %s host %s, want failed", s.Status, res.Host("w2").Status)
		}
		for _, want := range []string{"no keepalive reply within 1s", "reconnect to w2", "SSH handshake did not finish within 2s"} {
			if !strings.Contains(s.Error, want) {
				t.Errorf("w2's error lacks %q: %s", want, s.Error)
			}
		}
		if !strings.Contains(err.Error(), "host w2: step work") || strings.Contains(err.Error(), "host w1") || strings.Contains(err.Error(), "host w3") {
			t.Errorf("run error should name w2 only: %v", err)
		}
	})

	t.Run("max_fail_percentage stops the run", func(t *testing.T) {
		servers["w2"].Thaw()
		dir := t.TempDir()
		reg := engine.NewRegistry()
		reg.MustRegister("work", engine.Static(markerStep(dir)))
		reg.MustRegister("later", engine.Static(&enginetest.FuncStep{StepName: "later"}))
		whenStarted(t, dir, []string{"w2"}, func() { servers["w2"].Freeze() })
		defer servers["w2"].Thaw()
		res, err := runSSHD(t, conn, cluster, reg, t.TempDir(), `
name: freeze
plays:
  - {name: one, hosts: workers, serial: 1, max_fail_percentage: 0, steps: [work]}
  - {name: two, hosts: workers, steps: [later]}
`, nil)
		if err == nil || !strings.Contains(err.Error(), "above max_fail_percentage 0%") || !strings.Contains(err.Error(), "host w2: step work") {
			t.Fatalf("err = %v, want the abort and w2's failure", err)
		}
		if res.Plays[0].Status != engine.PlayAborted || res.Plays[1].Status != engine.PlaySkipped {
			t.Errorf("plays: %s, %s; want aborted, skipped", res.Plays[0].Status, res.Plays[1].Status)
		}
		got := []string{}
		for _, h := range hosts {
			got = append(got, h+"="+string(res.Host(h).Step("one", "work").Status))
		}
		if want := []string{"w1=applied", "w2=failed", "w3=skipped"}; !slices.Equal(got, want) {
			t.Errorf("play one: %v, want %v", got, want)
		}
		if _, err := os.Stat(filepath.Join(dir, "w3.log")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("w3 started after the play was aborted")
		}
	})
}

// TestLostConnectionEarnsOneRetry: a step failing because its connection
// was lost gets exactly one attempt more than the playbook's retries; any
// other error gets none.
func TestLostConnectionEarnsOneRetry(t *testing.T) {
	lost := fmt.Errorf("run %q on m1: %w (EOF)", "sleep 1", remote.ErrConnectionLost)
	for _, tc := range []struct {
		name    string
		err     error
		retries int
		want    int
	}{
		{"lost connection, no retries", lost, 0, 2},
		{"lost connection, two retries", lost, 2, 4},
		{"other error, no retries", errors.New("disk full"), 0, 1},
		{"other error, two retries", errors.New("disk full"), 2, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, map[string][]string{"masters": {"m1"}})
			e.register(&enginetest.FuncStep{StepName: "s", PlanFn: func(context.Context, *engine.Target) ([]engine.Change, error) {
				return nil, fmt.Errorf("check: %w", tc.err)
			}})
			res, err := e.run(context.Background(), fmt.Sprintf("name: r\nplays:\n  - {hosts: masters, steps: [{name: s, retries: %d}]}\n", tc.retries), nil)
			if err == nil {
				t.Fatal("run succeeded")
			}
			if s := res.Host("m1").Steps[0]; s.Attempts != tc.want || s.Status != engine.StatusFailed {
				t.Errorf("%d attempts (%s), want %d", s.Attempts, s.Status, tc.want)
			}
		})
	}
}
