package checks

import (
	"context"
	"os/exec"
	"testing"
	"time"

	"github.com/kubewright/kubewright/agent"
)

// asSystemctl runs the script wherever a check runs "systemctl".
func asSystemctl(t *testing.T, path string) Runner {
	return func(ctx context.Context, name string, args ...string) ([]byte, error) {
		if name != "systemctl" {
			t.Errorf("ran %q, want systemctl", name)
		}
		return Exec(ctx, path, args...)
	}
}

func TestUnit(t *testing.T) {
	// The fake systemctl insists on `is-active -- keepalived.service`.
	fake := func(body string) string {
		return script(t, "systemctl", `
if [ "$*" != "is-active -- keepalived.service" ]; then echo "unexpected arguments: $*" >&2; exit 99; fi
`+body)
	}
	tests := []struct {
		name    string
		body    string
		timeout time.Duration
		status  agent.Status
		reason  string
		want    []string
	}{
		{"active", "echo active", 0, agent.OK, "OK", []string{"systemd unit keepalived.service is active"}},
		{"reloading", "echo reloading", 0, agent.OK, "OK", nil},
		{"failed", "echo failed; exit 3", 0, agent.Problem, ReasonUnitInactive, []string{"is failed"}},
		{"inactive", "echo inactive; exit 3", 0, agent.Problem, ReasonUnitInactive, []string{"is inactive"}},
		{"activating", "echo activating; exit 3", 0, agent.Problem, ReasonUnitInactive, []string{"is activating"}},
		{"no systemd", "echo 'System has not been booted with systemd as init system (PID 1). Cannot operate.' >&2; exit 1", 0,
			agent.Unknown, ReasonSystemctlFailed, []string{"not been booted with systemd"}},
		{"hung", "exec sleep 5", 200 * time.Millisecond, agent.Unknown, ReasonSystemctlFailed, []string{"no answer within 200ms"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := Unit{Unit: "keepalived.service", CheckName: "keepalived", Runner: asSystemctl(t, fake(tt.body)), Timeout: tt.timeout}
			expect(t, u.Run(context.Background()), tt.status, tt.reason, tt.want...)
		})
	}

	t.Run("names", func(t *testing.T) {
		if n := (Unit{Unit: "kube-proxy.service", CheckName: "kube-proxy"}).Name(); n != "kube-proxy" {
			t.Fatal(n)
		}
		if n := (Unit{Unit: "keepalived.service"}).Name(); n != "keepalived" {
			t.Fatal(n)
		}
	})
	t.Run("unusable unit name", func(t *testing.T) {
		for _, name := range []string{"", "--all"} {
			expect(t, Unit{Unit: name, Runner: asSystemctl(t, fake("echo active"))}.Run(context.Background()), agent.Unknown, ReasonInvalidConfig)
		}
	})
	// The real systemctl: a unit that does not exist is never OK, whether
	// systemd runs here (inactive) or not (Unknown).
	t.Run("real systemctl", func(t *testing.T) {
		if _, err := exec.LookPath("systemctl"); err != nil {
			t.Skip("no systemctl")
		}
		r := Unit{Unit: "kubewright-test-no-such.service"}.Run(context.Background())
		if r.Status == agent.OK {
			t.Fatalf("got %+v", r)
		}
	})
}

func TestSystemdLastStart(t *testing.T) {
	const args = "show -p InactiveExitTimestampMonotonic -p ExecMainStartTimestampMonotonic -p ActiveEnterTimestampMonotonic -p ActiveState -- kubelet.service"
	fake := func(body string) Runner {
		return asSystemctl(t, script(t, "systemctl", `
if [ "$*" != "`+args+`" ]; then echo "unexpected arguments: $*" >&2; exit 99; fi
`+body))
	}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	sinceBoot := func() (time.Duration, error) { return 67 * time.Second, nil }
	tests := []struct {
		name    string
		body    string
		want    time.Time
		wantErr bool
	}{
		// Restart= loops move only ExecMainStart: the latest moment counts.
		{"latest of the three", "printf 'InactiveExitTimestampMonotonic=5000000\\nExecMainStartTimestampMonotonic=7000000\\nActiveEnterTimestampMonotonic=6000000\\n'", now.Add(-60 * time.Second), false},
		{"never started", "printf 'InactiveExitTimestampMonotonic=0\\nExecMainStartTimestampMonotonic=0\\nActiveEnterTimestampMonotonic=0\\n'", time.Time{}, false},
		{"empty values", "printf 'InactiveExitTimestampMonotonic=\\nExecMainStartTimestampMonotonic=\\nActiveEnterTimestampMonotonic=\\n'", time.Time{}, false},
		// A stop or start in progress (an apiserver draining before its
		// restart) counts as starting now, whatever the old stamps say.
		{"deactivating", "printf 'InactiveExitTimestampMonotonic=5000000\\nExecMainStartTimestampMonotonic=7000000\\nActiveEnterTimestampMonotonic=6000000\\nActiveState=deactivating\\n'", now, false},
		{"activating", "printf 'ExecMainStartTimestampMonotonic=7000000\\nActiveState=activating\\n'", now, false},
		{"active uses the stamps", "printf 'ExecMainStartTimestampMonotonic=7000000\\nActiveState=active\\n'", now.Add(-60 * time.Second), false},
		{"garbage value", "echo ExecMainStartTimestampMonotonic=yesterday", time.Time{}, true},
		{"no properties", "echo Foo=1", time.Time{}, true},
		{"systemctl fails", "echo 'Failed to connect to bus' >&2; exit 1", time.Time{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Systemd{Run: fake(tt.body), Now: func() time.Time { return now }, Monotonic: sinceBoot}
			got, err := s.LastStart(context.Background(), "kubelet.service")
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if !got.Equal(tt.want) {
				t.Fatalf("got %s, want %s", got, tt.want)
			}
		})
	}

	// The real clocks: a unit that started 10s ago on CLOCK_MONOTONIC
	// started 10s ago by the wall clock.
	t.Run("real monotonic clock", func(t *testing.T) {
		mono, err := monotonicNow()
		if err != nil {
			t.Fatal(err)
		}
		us := (mono - 10*time.Second).Microseconds()
		s := Systemd{Run: fake("echo ExecMainStartTimestampMonotonic=" + itoa64(us))}
		got, err := s.LastStart(context.Background(), "kubelet.service")
		if err != nil {
			t.Fatal(err)
		}
		if d := time.Since(got) - 10*time.Second; d < -time.Second || d > time.Second {
			t.Fatalf("started %s ago, want about 10s", time.Since(got))
		}
	})

	t.Run("unusable unit name", func(t *testing.T) {
		if _, err := (Systemd{}).LastStart(context.Background(), "-p"); err == nil {
			t.Fatal("no error")
		}
	})
	var _ agent.UnitStarter = Systemd{}
}
