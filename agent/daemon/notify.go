package daemon

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"time"
)

// notifier speaks systemd's sd_notify protocol (a datagram to
// $NOTIFY_SOCKET): READY=1 once the first round of checks ran, WATCHDOG=1
// after each round, so a hung loop is killed and restarted by systemd
// (WatchdogSec in the unit) instead of silently reporting stale health.
type notifier struct {
	socket string
}

func newNotifier() *notifier { return &notifier{socket: os.Getenv("NOTIFY_SOCKET")} }

func (n *notifier) send(state string) error {
	if n.socket == "" {
		return nil // not started by systemd with Type=notify
	}
	addr := &net.UnixAddr{Name: n.socket, Net: "unixgram"}
	if addr.Name[0] == '@' {
		addr.Name = "\x00" + addr.Name[1:] // abstract socket
	}
	c, err := net.DialUnix("unixgram", nil, addr)
	if err != nil {
		return fmt.Errorf("sd_notify %s: %w", n.socket, err)
	}
	defer c.Close()
	_, err = c.Write([]byte(state))
	return err
}

// watchdogInterval is half of systemd's WATCHDOG_USEC, or 0 when the unit
// has no watchdog.
func watchdogInterval() time.Duration {
	us, err := strconv.ParseInt(os.Getenv("WATCHDOG_USEC"), 10, 64)
	if err != nil || us <= 0 {
		return 0
	}
	return time.Duration(us) * time.Microsecond / 2
}
