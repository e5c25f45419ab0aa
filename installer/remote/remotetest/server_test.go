package remotetest_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/kubewright/kubewright/installer/remote"
	"github.com/kubewright/kubewright/installer/remote/remotetest"
)

// TestManyServersAreCheap is the shape of the engine benchmark: hundreds of
// in-process hosts sharing one client key and one host key.
func TestManyServersAreCheap(t *testing.T) {
	const n = 200
	key := remotetest.NewClientKey(t, "")
	hostKey := remotetest.NewHostKey(t)
	servers := make([]*remotetest.Server, n)
	for i := range servers {
		servers[i] = remotetest.NewServer(t, remotetest.WithClientKey(key), remotetest.WithHostKey(hostKey))
	}
	runAll(t, n, func(i int) remote.Config { return servers[i].Config(fmt.Sprintf("node%03d", i)) })
	for i, s := range servers {
		if st := s.Stats(); st.Connections != 1 || st.Execs != 1 {
			t.Errorf("server %d stats %+v", i, st)
		}
	}
}

// TestOneServerManyConnections: one server, one connection per "host".
func TestOneServerManyConnections(t *testing.T) {
	const n = 200
	srv := remotetest.NewServer(t)
	runAll(t, n, func(i int) remote.Config { return srv.Config(fmt.Sprintf("node%03d", i)) })
	if st := srv.Stats(); st.Connections != n || st.Execs != n {
		t.Errorf("stats %+v, want %d connections and execs", st, n)
	}
}

func runAll(t *testing.T, n int, cfg func(int) remote.Config) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h, err := remote.Dial(ctx, cfg(i))
			if err != nil {
				errs <- err
				return
			}
			defer h.Close()
			out, err := h.Exec(ctx, "echo $HOME")
			if err == nil && out == "" {
				err = fmt.Errorf("host %d: empty output", i)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

func TestCloseKillsRunningCommands(t *testing.T) {
	srv := remotetest.NewServer(t)
	h, err := remote.Dial(context.Background(), srv.Config("n"))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	done := make(chan error, 1)
	go func() {
		_, err := h.Exec(context.Background(), "sleep 30")
		done <- err
	}()
	for srv.Stats().Execs == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	start := time.Now()
	srv.Close()
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Close took %s", d)
	}
	select {
	case err := <-done:
		if err == nil {
			t.Error("Exec succeeded on a closed server")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Exec still running after server Close")
	}
}

func TestConfigIsComplete(t *testing.T) {
	srv := remotetest.NewServer(t, remotetest.WithUser("admin"), remotetest.WithSudo("pw"))
	cfg := srv.Config("master1")
	if cfg.Name != "master1" || cfg.Address != "127.0.0.1" || cfg.Port != srv.Port() || cfg.User != "admin" ||
		cfg.KeyFile != srv.ClientKeyFile() || cfg.SudoPassword != "pw" || cfg.KnownHostsFile == "" {
		t.Fatalf("Config = %+v", cfg)
	}
	if cfg.Addr() != srv.Addr() {
		t.Errorf("Addr %s != %s", cfg.Addr(), srv.Addr())
	}
}

func BenchmarkExecInProcess(b *testing.B) {
	srv := remotetest.NewServer(b)
	h, err := remote.Dial(context.Background(), srv.Config("n"))
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := h.Exec(context.Background(), "true"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDialInProcess(b *testing.B) {
	srv := remotetest.NewServer(b)
	cfg := srv.Config("n")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		h, err := remote.Dial(context.Background(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		h.Close()
	}
}
