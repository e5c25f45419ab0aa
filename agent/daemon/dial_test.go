package daemon

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

func TestFailoverDial(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	// A port nothing listens on: taken and released.
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	deadAddr := dead.Addr().String()
	dead.Close()

	dial := failoverDial([]string{deadAddr, ln.Addr().String()}, time.Second)
	c, err := dial(context.Background(), "tcp", deadAddr)
	if err != nil {
		t.Fatalf("did not fall back to the live apiserver: %v", err)
	}
	if c.RemoteAddr().String() != ln.Addr().String() {
		t.Fatalf("connected to %s, want %s", c.RemoteAddr(), ln.Addr())
	}
	c.Close()

	none := failoverDial([]string{deadAddr}, time.Second)
	if _, err := none(context.Background(), "tcp", deadAddr); err == nil || !strings.Contains(err.Error(), "no API endpoint answers") {
		t.Fatalf("all dead: %v", err)
	}
}
