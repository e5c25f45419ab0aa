package checks

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kubewright/kubewright/agent"
)

// Systemd tells when a unit last started (agent.UnitStarter), so the
// agent's restart cooldown counts from the unit's own last start: a unit
// systemd or a person restarted a moment ago is left alone to come up.
//
// It reads systemd's monotonic timestamps (microseconds since boot) rather
// than the wall-clock ones: they print as plain numbers on every systemd
// version, while "systemctl show --timestamp=unix" needs systemd 251 or
// newer, and the default human format carries an ambiguous zone name.
type Systemd struct {
	// Run runs systemctl; Exec when nil.
	Run Runner
	// Now and Monotonic (time since boot on CLOCK_MONOTONIC, systemd's
	// clock) convert a monotonic timestamp to wall time; the real clocks
	// when nil.
	Now       func() time.Time
	Monotonic func() (time.Duration, error)
}

var _ agent.UnitStarter = Systemd{}

// startProps are the moments a unit (re)starts: leaving inactive, each
// exec of the main process (Restart= loops stay "activating", so only this
// one moves), and entering active.
func startProps() []string {
	return []string{
		"InactiveExitTimestampMonotonic",
		"ExecMainStartTimestampMonotonic",
		"ActiveEnterTimestampMonotonic",
	}
}

// LastStart returns the wall time of the unit's latest start, or the zero
// time if it never started since boot.
func (s Systemd) LastStart(ctx context.Context, unit string) (time.Time, error) {
	if unit == "" || strings.HasPrefix(unit, "-") {
		return time.Time{}, fmt.Errorf("unit last start: unit name %q is not usable", unit)
	}
	props := startProps()
	args := []string{"show"}
	for _, p := range props {
		args = append(args, "-p", p)
	}
	args = append(args, "-p", "ActiveState", "--", unit)
	out, err := s.Run.orDefault()(ctx, "systemctl", args...)
	if err != nil {
		return time.Time{}, fmt.Errorf("last start of %s: %w", unit, err)
	}
	var latest uint64
	found := 0
	busy := false
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		if ok && k == "ActiveState" && (v == "activating" || v == "deactivating" || v == "reloading") {
			// A start, stop or restart is in progress (a restart of an
			// apiserver drains for many seconds before its start stamps
			// move): that counts as starting now, so no second restart
			// is queued behind it.
			busy = true
			continue
		}
		if !ok || !slices.Contains(props, k) {
			continue
		}
		found++
		if v == "" {
			continue
		}
		us, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("last start of %s: %s=%q is not a number", unit, k, v)
		}
		latest = max(latest, us)
	}
	if found == 0 {
		return time.Time{}, fmt.Errorf("last start of %s: systemctl show printed none of %s", unit, strings.Join(props, ", "))
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	if busy {
		return now(), nil
	}
	if latest == 0 {
		return time.Time{}, nil
	}
	mono := s.Monotonic
	if mono == nil {
		mono = monotonicNow
	}
	sinceBoot, err := mono()
	if err != nil {
		return time.Time{}, fmt.Errorf("last start of %s: read monotonic clock: %w", unit, err)
	}
	started := time.Duration(latest) * time.Microsecond
	ago := sinceBoot - started
	if ago < 0 {
		ago = 0
	}
	return now().Add(-ago), nil
}

// monotonicNow reads CLOCK_MONOTONIC, the clock systemd's *Monotonic
// timestamps are on.
func monotonicNow() (time.Duration, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0, err
	}
	return time.Duration(ts.Nano()), nil
}
