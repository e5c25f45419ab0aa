package remote_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh/agent"

	"github.com/kubewright/kubewright/installer/remote"
	"github.com/kubewright/kubewright/installer/remote/remotetest"
)

func TestReconnectAfterDrop(t *testing.T) {
	srv := remotetest.NewServer(t)
	h := dial(t, srv.Config("node1"))
	ctx := context.Background()
	mustExec(t, h, "true")
	dst := filepath.Join(srv.Dir(), "f")
	if _, err := h.Upload(ctx, strings.NewReader("a"), dst, 0o644); err != nil {
		t.Fatal(err)
	}
	if n := srv.DropConnections(); n != 1 {
		t.Fatalf("dropped %d connections", n)
	}
	// Both the exec path and the SFTP path recover on the next call.
	if out := mustExec(t, h, "echo again"); out != "again\n" {
		t.Errorf("after reconnect: %q", out)
	}
	if changed, err := h.Upload(ctx, strings.NewReader("b"), dst, 0o644); err != nil || !changed {
		t.Fatalf("upload after reconnect: %v %v", changed, err)
	}
	srv.DropConnections()
	if _, err := h.Upload(ctx, strings.NewReader("c"), dst, 0o644); err != nil {
		t.Fatalf("upload right after a drop: %v", err)
	}
	if got, want := h.Connects(), int64(3); got != want {
		t.Errorf("Connects = %d, want %d", got, want)
	}
	if got := srv.Stats().Connections; got != 3 {
		t.Errorf("server saw %d connections, want 3", got)
	}
}

func TestDropDuringCommandIsNotRetried(t *testing.T) {
	srv := remotetest.NewServer(t)
	h := dial(t, srv.Config("node1"))
	errc := make(chan error, 1)
	go func() {
		_, err := h.Exec(context.Background(), "echo started >> log; sleep 10")
		errc <- err
	}()
	waitFor(t, "command to start", 5*time.Second, func() bool { return srv.Stats().Execs == 1 })
	srv.DropConnections()
	select {
	case err := <-errc:
		if !errors.Is(err, remote.ErrConnectionLost) || !strings.Contains(err.Error(), "on node1") {
			t.Fatalf("err = %v, want ErrConnectionLost naming node1", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Exec did not return after the connection dropped")
	}
	if out := mustExec(t, h, "cat log"); out != "started\n" {
		t.Errorf("command ran %q times; it must not be re-run", out)
	}
}

func TestReconnectGivesUpWithBackoff(t *testing.T) {
	srv := remotetest.NewServer(t)
	cfg := srv.Config("node1")
	cfg.ReconnectAttempts = 3
	cfg.ReconnectBackoff = 100 * time.Millisecond
	h := dial(t, cfg)
	srv.Close() // the host is gone for good
	start := time.Now()
	_, err := h.Exec(context.Background(), "true")
	elapsed := time.Since(start)
	if err == nil || !strings.Contains(err.Error(), "reconnect to node1 (127.0.0.1:") {
		t.Fatalf("err = %v", err)
	}
	// Attempts at 0, +100ms, +200ms.
	if elapsed < 300*time.Millisecond || elapsed > 3*time.Second {
		t.Errorf("gave up after %s, want about 300ms of backoff", elapsed)
	}
}

func TestKeepAliveDetectsDeadConnection(t *testing.T) {
	tests := []struct {
		name     string
		interval time.Duration
		wantDead bool
	}{
		{name: "enabled", interval: 50 * time.Millisecond, wantDead: true},
		{name: "disabled", interval: -1, wantDead: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := remotetest.NewServer(t)
			cfg := srv.Config("node1")
			cfg.KeepAliveInterval = tc.interval
			cfg.KeepAliveCountMax = 2
			h := dial(t, cfg)
			mustExec(t, h, "true")
			srv.StallKeepalives(true)
			if tc.wantDead {
				// Two missed keepalives 50ms apart; generous for a loaded CI machine.
				waitFor(t, "client to drop the silent connection", 5*time.Second, func() bool { return srv.Stats().ActiveConnections == 0 })
			} else {
				time.Sleep(400 * time.Millisecond)
				if srv.Stats().ActiveConnections == 0 {
					t.Fatalf("connection closed with keepalives disabled (stats %+v)", srv.Stats())
				}
			}
			srv.StallKeepalives(false)
			mustExec(t, h, "true")
			want := int64(1)
			if tc.wantDead {
				want = 2
			}
			if h.Connects() != want {
				t.Errorf("Connects = %d, want %d", h.Connects(), want)
			}
		})
	}
}

func TestBastionChain(t *testing.T) {
	key := remotetest.NewClientKey(t, "")
	b1 := remotetest.NewServer(t, remotetest.WithClientKey(key))
	b2 := remotetest.NewServer(t, remotetest.WithClientKey(key))
	target := remotetest.NewServer(t, remotetest.WithClientKey(key))
	c1 := b1.Config("bastion1")
	c2 := b2.Config("bastion2")
	c2.Bastion = &c1
	ct := target.Config("master1")
	ct.Bastion = &c2
	h := dial(t, ct)
	if out := mustExec(t, h, "pwd"); out != target.Dir()+"\n" {
		t.Errorf("ran on the wrong server: %q", out)
	}
	if b1.Stats().Forwards != 1 || b2.Stats().Forwards != 1 || b1.Stats().Execs+b2.Stats().Execs != 0 {
		t.Errorf("bastion stats: %+v %+v", b1.Stats(), b2.Stats())
	}
	// The tunnel survives a drop of the target connection.
	target.DropConnections()
	mustExec(t, h, "true")
	if b2.Stats().Forwards != 2 || b1.Stats().Connections != 1 {
		t.Errorf("after reconnect: bastion1 %+v bastion2 %+v", b1.Stats(), b2.Stats())
	}
	// Closing the target closes the bastion connections it opened.
	h.Close()
	waitFor(t, "bastion connections to close", 3*time.Second, func() bool {
		return b1.Stats().ActiveConnections == 0 && b2.Stats().ActiveConnections == 0
	})
}

func TestSharedBastionHost(t *testing.T) {
	key := remotetest.NewClientKey(t, "")
	bastion := remotetest.NewServer(t, remotetest.WithClientKey(key))
	bh := dial(t, bastion.Config("bastion"))
	for i := 0; i < 3; i++ {
		s := remotetest.NewServer(t, remotetest.WithClientKey(key))
		cfg := s.Config("node" + strconv.Itoa(i))
		cfg.BastionHost = bh
		h := dial(t, cfg)
		mustExec(t, h, "true")
		h.Close()
	}
	if st := bastion.Stats(); st.Connections != 1 || st.Forwards != 3 {
		t.Errorf("bastion stats = %+v, want 1 connection carrying 3 tunnels", st)
	}
	mustExec(t, bh, "true") // still usable: targets do not close a shared bastion
}

func TestBastionErrorsNameBothHosts(t *testing.T) {
	bastion := remotetest.NewServer(t)
	cb := bastion.Config("jump")
	cb.KnownHostsFile = filepath.Join(t.TempDir(), "empty") // bastion key unknown
	ct := remote.Config{Name: "master1", Address: "10.0.0.11", User: "root", KeyFile: bastion.ClientKeyFile(),
		KnownHostsFile: bastion.KnownHostsFile(), Bastion: &cb}
	_, err := remote.Dial(context.Background(), ct)
	want := "connect to master1 (10.0.0.11:22) via bastion: connect to jump (" + bastion.Addr() + "): unknown host key"
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("err = %v\nwant prefix %q", err, want)
	}
}

func TestAuthentication(t *testing.T) {
	enc := remotetest.NewClientKey(t, "key-pass")
	tests := []struct {
		name    string
		server  []remotetest.Option
		setup   func(t *testing.T, cfg *remote.Config)
		wantErr string
	}{
		{name: "key file", setup: func(*testing.T, *remote.Config) {}},
		{
			name:   "passphrase from env",
			server: []remotetest.Option{remotetest.WithClientKey(enc)},
			setup: func(t *testing.T, cfg *remote.Config) {
				t.Setenv("KW_TEST_PASSPHRASE", "key-pass")
				cfg.KeyPassphraseEnv = "KW_TEST_PASSPHRASE"
			},
		},
		{
			name:   "passphrase from callback",
			server: []remotetest.Option{remotetest.WithClientKey(enc)},
			setup: func(t *testing.T, cfg *remote.Config) {
				cfg.KeyPassphrase = func(path string) ([]byte, error) {
					if path != enc.Path {
						t.Errorf("callback got %q", path)
					}
					return []byte("key-pass"), nil
				}
			},
		},
		{
			name:    "passphrase missing",
			server:  []remotetest.Option{remotetest.WithClientKey(enc)},
			setup:   func(*testing.T, *remote.Config) {},
			wantErr: "is passphrase-protected: set keyPassphraseEnv",
		},
		{
			name:   "passphrase env unset",
			server: []remotetest.Option{remotetest.WithClientKey(enc)},
			setup: func(t *testing.T, cfg *remote.Config) {
				cfg.KeyPassphraseEnv = "KW_TEST_UNSET_VARIABLE"
			},
			wantErr: "environment variable KW_TEST_UNSET_VARIABLE is not set",
		},
		{
			name:   "wrong passphrase",
			server: []remotetest.Option{remotetest.WithClientKey(enc)},
			setup: func(t *testing.T, cfg *remote.Config) {
				cfg.KeyPassphrase = func(string) ([]byte, error) { return []byte("nope"), nil }
			},
			wantErr: "wrong passphrase for key",
		},
		{
			name:   "password",
			server: []remotetest.Option{remotetest.WithPassword("login-pw"), remotetest.WithoutPublicKeyAuth()},
			setup: func(t *testing.T, cfg *remote.Config) {
				cfg.KeyFile, cfg.Password = "", "login-pw"
			},
		},
		{
			name:   "wrong password",
			server: []remotetest.Option{remotetest.WithPassword("login-pw"), remotetest.WithoutPublicKeyAuth()},
			setup: func(t *testing.T, cfg *remote.Config) {
				cfg.Password = "bad-pw"
			},
			wantErr: `authentication as user "tester" failed (tried: key `,
		},
		{
			name: "agent",
			setup: func(t *testing.T, cfg *remote.Config) {
				cfg.KeyFile, cfg.UseAgent, cfg.AgentSocket = "", true, startAgent(t, cfg)
			},
		},
		{
			name: "wrong user",
			setup: func(t *testing.T, cfg *remote.Config) {
				cfg.User = "alice"
			},
			wantErr: `authentication as user "alice" failed (tried: key `,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := remotetest.NewServer(t, tc.server...)
			cfg := srv.Config("node1")
			tc.setup(t, &cfg)
			h, err := remote.Dial(context.Background(), cfg)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				defer h.Close()
				mustExec(t, h, "true")
				return
			}
			prefix := "connect to node1 (" + srv.Addr() + "): "
			if err == nil || !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v\nwant prefix %q containing %q", err, prefix, tc.wantErr)
			}
			for _, secret := range []string{"key-pass", "bad-pw", "nope"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("secret in error: %v", err)
				}
			}
		})
	}
}

// startAgent serves an in-memory ssh-agent holding the server's client key.
func startAgent(t *testing.T, cfg *remote.Config) string {
	t.Helper()
	keyring := agent.NewKeyring()
	// Add a decoy first so the right key is not simply the only one.
	_, decoy, _ := ed25519.GenerateKey(rand.Reader)
	if err := keyring.Add(agent.AddedKey{PrivateKey: decoy}); err != nil {
		t.Fatal(err)
	}
	priv := readKey(t, cfg.KeyFile)
	if err := keyring.Add(agent.AddedKey{PrivateKey: priv}); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "agent.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { agent.ServeAgent(keyring, c); c.Close() }()
		}
	}()
	return sock
}

func TestDialErrors(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	closedPort := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	kh := filepath.Join(t.TempDir(), "kh")
	tests := []struct {
		name string
		cfg  remote.Config
		want string
	}{
		{
			name: "connection refused",
			cfg:  remote.Config{Name: "master1", Address: "127.0.0.1", Port: closedPort, User: "root", Password: "x", KnownHostsFile: kh},
			want: "connect to master1 (127.0.0.1:" + strconv.Itoa(closedPort) + "): dial tcp",
		},
		{
			name: "invalid config collects every problem",
			cfg:  remote.Config{Name: "master1", Port: 70000},
			want: "connect to master1 (:70000): address is empty\nuser is empty\nport 70000 is out of range 1-65535\n" +
				"no known_hosts file configured: host keys cannot be checked\nno authentication method: set a key file, useAgent or passwordEnv",
		},
		{
			name: "missing key file",
			cfg:  remote.Config{Name: "n", Address: "127.0.0.1", Port: closedPort, User: "root", KeyFile: "/nonexistent/id", KnownHostsFile: kh},
			want: "connect to n (127.0.0.1:" + strconv.Itoa(closedPort) + "): read key file: open /nonexistent/id: no such file or directory",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := remote.Dial(context.Background(), tc.cfg)
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("err = %v\nwant prefix %q", err, tc.want)
			}
		})
	}
}

func TestConnectTimeout(t *testing.T) {
	// A listener that accepts but never speaks SSH.
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
			defer c.Close()
		}
	}()
	cfg := remote.Config{Name: "slow", Address: "127.0.0.1", Port: ln.Addr().(*net.TCPAddr).Port, User: "u", Password: "p",
		KnownHostsFile: filepath.Join(t.TempDir(), "kh"), ConnectTimeout: 200 * time.Millisecond}
	start := time.Now()
	_, err = remote.Dial(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "SSH handshake did not finish within 200ms") {
		t.Fatalf("err = %v", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Errorf("took %s", time.Since(start))
	}
}

func TestClosedHost(t *testing.T) {
	srv := remotetest.NewServer(t)
	h := dial(t, srv.Config("node1"))
	// The client finishes its handshake a moment before the server counts
	// the connection; closing earlier would make the count below race.
	waitFor(t, "server to count the connection", 3*time.Second, func() bool { return srv.Stats().Connections == 1 })
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "server to see the close", 3*time.Second, func() bool { return srv.Stats().ActiveConnections == 0 })
	_, err := h.Exec(context.Background(), "true")
	if !errors.Is(err, remote.ErrClosed) {
		t.Errorf("Exec after Close: %v", err)
	}
	if _, err := h.Upload(context.Background(), strings.NewReader("x"), "/tmp/x", 0o644); !errors.Is(err, remote.ErrClosed) {
		t.Errorf("Upload after Close: %v", err)
	}
	if srv.Stats().Connections != 1 {
		t.Errorf("a closed host reconnected")
	}
}
