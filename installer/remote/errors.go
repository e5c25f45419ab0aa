package remote

import (
	"errors"
	"fmt"
	"strings"
)

// ExitError is a command that ran and exited non-zero. Stderr is kept so the
// operator sees why without opening the per-host log.
type ExitError struct {
	Host   string
	Cmd    string // as the caller wrote it (before sudo wrapping), redacted
	Code   int    // exit status; 128+N when killed by signal N
	Signal string // e.g. "KILL" when the command died from a signal
	Stderr string // redacted
	Sudo   bool
}

// maxStderrLines bounds Error(): a failing apt-get can print thousands of
// lines, the last ones say why.
const maxStderrLines = 20

func (e *ExitError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "command %q on %s ", shorten(e.Cmd, 200), e.Host)
	if e.Signal != "" {
		fmt.Fprintf(&b, "killed by signal %s", e.Signal)
	} else {
		fmt.Fprintf(&b, "exited with code %d", e.Code)
	}
	stderr := strings.TrimSpace(e.Stderr)
	if stderr != "" {
		lines := strings.Split(stderr, "\n")
		if len(lines) > maxStderrLines {
			lines = append([]string{fmt.Sprintf("... (%d lines omitted)", len(lines)-maxStderrLines)}, lines[len(lines)-maxStderrLines:]...)
		}
		b.WriteString(": ")
		b.WriteString(strings.Join(lines, "\n  "))
	}
	if e.Sudo {
		switch {
		case strings.Contains(stderr, "a password is required"):
			b.WriteString(" (sudo needs a password on this host: set sudoPasswordEnv in the inventory)")
		case strings.Contains(stderr, "incorrect password"), strings.Contains(stderr, "Sorry, try again"):
			b.WriteString(" (the sudo password was refused: check the variable named by sudoPasswordEnv)")
		}
	}
	return b.String()
}

// ExitCode returns the code of an *ExitError in err's chain, or -1 when err
// is nil or did not come from a finished command.
func ExitCode(err error) int {
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	return -1
}

// ErrConnectionLost is returned (wrapped) when the connection dropped while a
// command was running: it may or may not have completed, so it is not re-run.
var ErrConnectionLost = errors.New("connection lost while the command was running; it may or may not have completed and was not re-run")

// ConnectionLost reports whether err comes from a connection that died
// under a command (ErrConnectionLost) or under an upload that gave up
// starting over, rather than from the command itself, the file, or a
// connection that could not be made.
func ConnectionLost(err error) bool {
	return errors.Is(err, ErrConnectionLost) || errors.Is(err, errUploadCut)
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// Quote returns s as one single-quoted POSIX shell word.
func Quote(s string) string {
	if s == "" {
		return "''"
	}
	safe := true
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("@%_+=:,./-", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'"'"'`) + "'"
}
