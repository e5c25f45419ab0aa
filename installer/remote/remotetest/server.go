// Package remotetest runs SSH servers for tests: an in-process server (this
// file) that executes commands with a real /bin/sh on the local machine, and
// a real OpenSSH sshd on loopback (openssh.go).
//
// Paths are real local paths. Commands run in the server's working directory
// (Server.Dir, also $HOME) as the user running the test, whatever SSH user
// name the client logs in with; SFTP resolves relative paths against the same
// directory and absolute paths against the local filesystem. Tests should
// therefore only touch paths under Server.Dir.
package remotetest

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/kubewright/kubewright/installer/remote"
)

// ClientKey is a private key on disk with its signer, as a client uses it.
type ClientKey struct {
	Path       string
	Signer     ssh.Signer // nil-safe to share between servers
	Public     ssh.PublicKey
	Passphrase string
}

// NewClientKey writes a fresh ed25519 key (OpenSSH format, encrypted when
// passphrase is not empty) into a temp dir. Share one between many servers
// with WithClientKey to keep a 500-host benchmark cheap.
func NewClientKey(t testing.TB, passphrase string) *ClientKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatalf("remotetest: generate client key: %v", err)
	}
	var block *pem.Block
	if passphrase == "" {
		block, err = ssh.MarshalPrivateKey(priv, "remotetest")
	} else {
		block, err = ssh.MarshalPrivateKeyWithPassphrase(priv, "remotetest", []byte(passphrase))
	}
	if err != nil {
		t.Fatalf("remotetest: marshal client key: %v", err)
	}
	path := filepath.Join(t.TempDir(), "id_ed25519")
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatalf("remotetest: write client key: %v", err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatalf("remotetest: signer: %v", err)
	}
	return &ClientKey{Path: path, Signer: signer, Public: signer.PublicKey(), Passphrase: passphrase}
}

// NewHostKey returns a fresh ed25519 host key signer.
func NewHostKey(t testing.TB) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatalf("remotetest: generate host key: %v", err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatalf("remotetest: host key signer: %v", err)
	}
	return s
}

type options struct {
	user        string
	password    string
	clientKey   *ClientKey
	authorized  []ssh.PublicKey
	hostKey     ssh.Signer
	sudo        bool
	sudoPass    string
	dir         string
	noPublicKey bool
}

// Option configures a Server.
type Option func(*options)

// WithUser sets the SSH user name the server accepts (default "tester").
// Commands still run as the user running the test.
func WithUser(name string) Option { return func(o *options) { o.user = name } }

// WithPassword enables password authentication with pw.
func WithPassword(pw string) Option { return func(o *options) { o.password = pw } }

// WithoutPublicKeyAuth refuses every public key (to test password-only hosts).
func WithoutPublicKeyAuth() Option { return func(o *options) { o.noPublicKey = true } }

// WithClientKey makes k the server's client key (authorized, and used by
// Server.Config) instead of generating one.
func WithClientKey(k *ClientKey) Option { return func(o *options) { o.clientKey = k } }

// WithAuthorizedKey authorizes another public key.
func WithAuthorizedKey(k ssh.PublicKey) Option {
	return func(o *options) { o.authorized = append(o.authorized, k) }
}

// WithHostKey uses s as host key instead of generating one.
func WithHostKey(s ssh.Signer) Option { return func(o *options) { o.hostKey = s } }

// WithSudo puts a fake `sudo` first in PATH. It emulates `sudo -n` and
// `sudo -S` against password (empty: NOPASSWD), sets SUDO_USER, and runs the
// command as the same user: the test process cannot switch users, but the
// password check and the stdin protocol are real.
func WithSudo(password string) Option {
	return func(o *options) { o.sudo, o.sudoPass = true, password }
}

// WithDir runs commands in dir instead of a fresh temp directory.
func WithDir(dir string) Option { return func(o *options) { o.dir = dir } }

// Stats counts what the server saw, for assertions and benchmarks.
type Stats struct {
	Connections       int64 // accepted and authenticated
	ActiveConnections int64
	Sessions          int64
	PeakSessions      int64 // most sessions open at once
	Execs             int64
	SFTPSessions      int64
	SFTPWrites        int64 // SSH_FXP_WRITE packets
	Keepalives        int64
	Forwards          int64 // direct-tcpip channels
}

// Server is an in-process SSH + SFTP server on 127.0.0.1.
type Server struct {
	t         testing.TB
	ln        net.Listener
	opts      options
	hostKey   ssh.Signer
	clientKey *ClientKey
	dir       string
	env       []string
	config    *ssh.ServerConfig

	mu       sync.Mutex
	conns    map[net.Conn]struct{}
	commands []string
	requests []string // "global:TYPE" and "session:TYPE", in order
	khFile   string

	wg           sync.WaitGroup
	closed       atomic.Bool
	stallKeepAlv atomic.Bool

	openSessions, peakSessions                                                    atomic.Int64
	connections, active, sessions, execs, sftps, sftpWrites, keepalives, forwards atomic.Int64
}

// NewServer starts a server on 127.0.0.1:0; t.Cleanup stops it, drops its
// connections and kills commands still running.
func NewServer(t testing.TB, opts ...Option) *Server {
	t.Helper()
	o := options{user: "tester"}
	for _, f := range opts {
		f(&o)
	}
	s := &Server{t: t, opts: o, conns: map[net.Conn]struct{}{}}
	s.hostKey = o.hostKey
	if s.hostKey == nil {
		s.hostKey = NewHostKey(t)
	}
	s.clientKey = o.clientKey
	if s.clientKey == nil {
		s.clientKey = NewClientKey(t, "")
	}
	s.dir = o.dir
	if s.dir == "" {
		s.dir = t.TempDir()
	}
	path := os.Getenv("PATH")
	if o.sudo {
		bin := t.TempDir()
		if err := os.WriteFile(filepath.Join(bin, "sudo"), []byte(fakeSudo(o.sudoPass)), 0o700); err != nil {
			t.Fatalf("remotetest: write fake sudo: %v", err)
		}
		path = bin + string(os.PathListSeparator) + path
	}
	s.env = []string{"HOME=" + s.dir, "PATH=" + path, "USER=" + o.user, "LOGNAME=" + o.user, "LANG=C", "SHELL=/bin/sh"}

	s.config = &ssh.ServerConfig{
		PublicKeyCallback: s.publicKey,
		ServerVersion:     "SSH-2.0-kubewright-remotetest",
	}
	if o.password != "" {
		s.config.PasswordCallback = func(c ssh.ConnMetadata, pw []byte) (*ssh.Permissions, error) {
			if c.User() == o.user && subtle.ConstantTimeCompare(pw, []byte(o.password)) == 1 {
				return &ssh.Permissions{}, nil
			}
			return nil, errors.New("wrong password")
		}
	}
	s.config.AddHostKey(s.hostKey)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("remotetest: listen: %v", err)
	}
	s.ln = ln
	s.wg.Add(1)
	go s.accept()
	t.Cleanup(s.Close)
	return s
}

func (s *Server) publicKey(c ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
	if s.opts.noPublicKey || c.User() != s.opts.user {
		return nil, fmt.Errorf("public key refused for %q", c.User())
	}
	marshal := key.Marshal()
	for _, k := range append([]ssh.PublicKey{s.clientKey.Public}, s.opts.authorized...) {
		if subtle.ConstantTimeCompare(k.Marshal(), marshal) == 1 {
			return &ssh.Permissions{}, nil
		}
	}
	return nil, errors.New("unknown public key")
}

// Close stops accepting, drops connections and waits for handlers (bounded).
func (s *Server) Close() {
	if s.closed.Swap(true) {
		return
	}
	s.ln.Close()
	s.DropConnections()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		s.t.Errorf("remotetest: server handlers still running 10s after Close")
	}
}

// Addr is "127.0.0.1:PORT".
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Port is the listening port.
func (s *Server) Port() int { return s.ln.Addr().(*net.TCPAddr).Port }

// Dir is the working directory (and $HOME) of commands.
func (s *Server) Dir() string { return s.dir }

// User is the SSH user name the server accepts.
func (s *Server) User() string { return s.opts.user }

// HostKey is the server's public host key.
func (s *Server) HostKey() ssh.PublicKey { return s.hostKey.PublicKey() }

// ClientKey is the key Config uses.
func (s *Server) ClientKey() *ClientKey { return s.clientKey }

// ClientKeyFile is the path of the client's private key.
func (s *Server) ClientKeyFile() string { return s.clientKey.Path }

// KnownHostsLine is the known_hosts line for this server ([127.0.0.1]:PORT key).
func (s *Server) KnownHostsLine() string {
	return knownhosts.Line([]string{knownhosts.Normalize(s.Addr())}, s.HostKey())
}

// KnownHostsFile is a file holding KnownHostsLine, written on first use.
func (s *Server) KnownHostsFile() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.khFile == "" {
		p := filepath.Join(s.t.TempDir(), "known_hosts")
		if err := os.WriteFile(p, []byte(s.KnownHostsLine()+"\n"), 0o600); err != nil {
			s.t.Fatalf("remotetest: write known_hosts: %v", err)
		}
		s.khFile = p
	}
	return s.khFile
}

// Config is a remote.Config that reaches this server with its client key,
// known_hosts and (with WithSudo) sudo password, and short timeouts.
func (s *Server) Config(name string) remote.Config {
	return remote.Config{
		Name:           name,
		Address:        "127.0.0.1",
		Port:           s.Port(),
		User:           s.opts.user,
		KeyFile:        s.clientKey.Path,
		SudoPassword:   s.opts.sudoPass,
		KnownHostsFile: s.KnownHostsFile(),
		ConnectTimeout: 5 * time.Second,
	}
}

// Commands returns every exec request received, in order: what a real sshd
// would see on its command line.
func (s *Server) Commands() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.commands...)
}

// Requests returns the type of every global request ("global:TYPE") and
// session request ("session:TYPE") received, in order, so a test can prove
// what a client never asked for (agent forwarding, X11, a pty, remote port
// forwarding).
func (s *Server) Requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.requests...)
}

func (s *Server) record(kind, typ string) {
	s.mu.Lock()
	s.requests = append(s.requests, kind+":"+typ)
	s.mu.Unlock()
}

// Stats returns the counters.
func (s *Server) Stats() Stats {
	return Stats{
		Connections: s.connections.Load(), ActiveConnections: s.active.Load(),
		Sessions: s.sessions.Load(), PeakSessions: s.peakSessions.Load(), Execs: s.execs.Load(), SFTPSessions: s.sftps.Load(),
		SFTPWrites: s.sftpWrites.Load(), Keepalives: s.keepalives.Load(), Forwards: s.forwards.Load(),
	}
}

// DropConnections closes every current connection abruptly, as a rebooting
// host or a broken network would; running commands are killed.
func (s *Server) DropConnections() int {
	s.mu.Lock()
	conns := make([]net.Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
	return len(conns)
}

// StallKeepalives makes the server stop answering keepalive requests while
// on is true: the connection stays open but looks dead to the client.
func (s *Server) StallKeepalives(on bool) { s.stallKeepAlv.Store(on) }

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go s.serveConn(c)
	}
}

func (s *Server) serveConn(nc net.Conn) {
	defer s.wg.Done()
	s.mu.Lock()
	s.conns[nc] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, nc)
		s.mu.Unlock()
		nc.Close()
	}()
	if s.closed.Load() {
		return
	}
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	sc, chans, reqs, err := ssh.NewServerConn(nc, s.config)
	if err != nil {
		return
	}
	nc.SetDeadline(time.Time{})
	s.connections.Add(1)
	s.active.Add(1)
	defer s.active.Add(-1)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for req := range reqs {
			s.record("global", req.Type)
			if req.Type == "keepalive@openssh.com" {
				s.keepalives.Add(1)
				if s.stallKeepAlv.Load() {
					continue
				}
				req.Reply(true, nil)
				continue
			}
			req.Reply(false, nil)
		}
	}()
	var chWG sync.WaitGroup
	for nch := range chans {
		switch nch.ChannelType() {
		case "session":
			ch, creqs, err := nch.Accept()
			if err != nil {
				continue
			}
			s.sessions.Add(1)
			n := s.openSessions.Add(1)
			for {
				peak := s.peakSessions.Load()
				if n <= peak || s.peakSessions.CompareAndSwap(peak, n) {
					break
				}
			}
			chWG.Add(1)
			go func() {
				defer chWG.Done()
				var once sync.Once
				release := func() { once.Do(func() { s.openSessions.Add(-1) }) }
				defer release()
				s.serveSession(ch, creqs, release)
			}()
		case "direct-tcpip":
			chWG.Add(1)
			go func() { defer chWG.Done(); s.forward(nch) }()
		default:
			nch.Reject(ssh.UnknownChannelType, "unsupported channel type")
		}
	}
	sc.Close()
	chWG.Wait()
}

// forward implements direct-tcpip, which is what a bastion does for
// `ssh -J`.
func (s *Server) forward(nch ssh.NewChannel) {
	var p struct {
		Host     string
		Port     uint32
		OrigHost string
		OrigPort uint32
	}
	if err := ssh.Unmarshal(nch.ExtraData(), &p); err != nil {
		nch.Reject(ssh.ConnectionFailed, "bad direct-tcpip payload")
		return
	}
	target, err := net.DialTimeout("tcp", net.JoinHostPort(p.Host, strconv.Itoa(int(p.Port))), 5*time.Second)
	if err != nil {
		nch.Reject(ssh.ConnectionFailed, err.Error())
		return
	}
	ch, reqs, err := nch.Accept()
	if err != nil {
		target.Close()
		return
	}
	s.forwards.Add(1)
	go ssh.DiscardRequests(reqs)
	done := make(chan struct{}, 2)
	go func() { io.Copy(ch, target); ch.CloseWrite(); done <- struct{}{} }()
	go func() { io.Copy(target, ch); target.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
	<-done
	<-done
	ch.Close()
	target.Close()
}

// serveSession handles env, exec, subsystem sftp and signal requests.
// release is called when the session is done from the client's point of
// view (before the exit status is sent), so PeakSessions is exact.
func (s *Server) serveSession(ch ssh.Channel, reqs <-chan *ssh.Request, release func()) {
	defer ch.Close()
	env := append([]string(nil), s.env...)
	var (
		mu      sync.Mutex
		proc    *os.Process
		started bool
		done    = make(chan struct{})
	)
	killGroup := func(sig syscall.Signal) {
		mu.Lock()
		defer mu.Unlock()
		if proc != nil {
			syscall.Kill(-proc.Pid, sig)
		}
	}
	for req := range reqs {
		s.record("session", req.Type)
		switch req.Type {
		case "env":
			var kv struct{ Name, Value string }
			if ssh.Unmarshal(req.Payload, &kv) == nil {
				env = append(env, kv.Name+"="+kv.Value)
			}
			req.Reply(true, nil)
		case "exec":
			var p struct{ Command string }
			if started || ssh.Unmarshal(req.Payload, &p) != nil {
				req.Reply(false, nil)
				continue
			}
			started = true
			s.execs.Add(1)
			s.mu.Lock()
			s.commands = append(s.commands, p.Command)
			s.mu.Unlock()
			cmd := exec.Command("/bin/sh", "-c", p.Command)
			cmd.Dir, cmd.Env = s.dir, env
			cmd.Stdout, cmd.Stderr = ch, ch.Stderr()
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			stdin, err := cmd.StdinPipe()
			if err == nil {
				err = cmd.Start()
			}
			if err != nil {
				req.Reply(false, nil)
				close(done)
				continue
			}
			mu.Lock()
			proc = cmd.Process
			mu.Unlock()
			req.Reply(true, nil)
			go func() {
				io.Copy(stdin, ch)
				stdin.Close()
			}()
			go func() {
				defer close(done)
				err := cmd.Wait()
				release()
				sendExit(ch, cmd, err)
				ch.CloseWrite()
				ch.Close()
			}()
		case "subsystem":
			var p struct{ Name string }
			if started || ssh.Unmarshal(req.Payload, &p) != nil || p.Name != "sftp" {
				req.Reply(false, nil)
				continue
			}
			started = true
			s.sftps.Add(1)
			req.Reply(true, nil)
			go func() {
				defer close(done)
				srv, err := sftp.NewServer(&countingRW{ReadWriteCloser: ch, writes: &s.sftpWrites}, sftp.WithServerWorkingDirectory(s.dir))
				if err != nil {
					ch.Close()
					return
				}
				srv.Serve()
				srv.Close()
				ch.Close()
			}()
		case "signal":
			var p struct{ Signal string }
			if ssh.Unmarshal(req.Payload, &p) == nil {
				if sig, ok := signals[p.Signal]; ok {
					killGroup(sig)
				}
			}
			if req.WantReply {
				req.Reply(true, nil)
			}
		default:
			if req.WantReply {
				req.Reply(false, nil)
			}
		}
	}
	// The client closed the channel (or the connection died): like sshd
	// hanging up a session, make sure nothing keeps running.
	killGroup(syscall.SIGKILL)
	if started {
		<-done
	}
}

var signals = map[string]syscall.Signal{
	"TERM": syscall.SIGTERM, "KILL": syscall.SIGKILL, "INT": syscall.SIGINT,
	"HUP": syscall.SIGHUP, "QUIT": syscall.SIGQUIT, "USR1": syscall.SIGUSR1, "USR2": syscall.SIGUSR2,
}

var signalNames = func() map[syscall.Signal]string {
	m := map[syscall.Signal]string{}
	for k, v := range signals {
		m[v] = k
	}
	return m
}()

func sendExit(ch ssh.Channel, cmd *exec.Cmd, err error) {
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if ok && ws.Signaled() {
		name, known := signalNames[ws.Signal()]
		if !known {
			name = strconv.Itoa(int(ws.Signal()))
		}
		ch.SendRequest("exit-signal", false, ssh.Marshal(struct {
			Signal     string
			CoreDumped bool
			Error      string
			Lang       string
		}{name, ws.CoreDump(), "", ""}))
		return
	}
	code := 0
	if err != nil {
		code = cmd.ProcessState.ExitCode()
		if code < 0 {
			code = 255
		}
	}
	ch.SendRequest("exit-status", false, binary.BigEndian.AppendUint32(nil, uint32(code)))
}

// countingRW counts SFTP WRITE packets flowing from the client, so a test can
// assert that an unchanged upload wrote nothing.
type countingRW struct {
	io.ReadWriteCloser
	writes *atomic.Int64
	hdr    []byte
	skip   int
}

func (c *countingRW) Read(p []byte) (int, error) {
	n, err := c.ReadWriteCloser.Read(p)
	b := p[:n]
	for len(b) > 0 {
		if c.skip > 0 {
			k := min(c.skip, len(b))
			c.skip -= k
			b = b[k:]
			continue
		}
		need := 5 - len(c.hdr)
		k := min(need, len(b))
		c.hdr = append(c.hdr, b[:k]...)
		b = b[k:]
		if len(c.hdr) == 5 {
			length := int(binary.BigEndian.Uint32(c.hdr[:4]))
			if c.hdr[4] == 6 { // SSH_FXP_WRITE
				c.writes.Add(1)
			}
			c.skip = length - 1
			c.hdr = c.hdr[:0]
		}
	}
	return n, err
}

// fakeSudo is a POSIX sh script that behaves like sudo for -n, -S and -p.
func fakeSudo(password string) string {
	return `#!/bin/sh
# remotetest fake sudo: checks the password the way "sudo -S" reads it (one
# line from stdin, leaving the rest for the command), then runs the command
# as the same user.
want=` + remote.Quote(password) + `
nonint=0
fromstdin=0
while [ $# -gt 0 ]; do
	case "$1" in
	-n) nonint=1; shift ;;
	-S) fromstdin=1; shift ;;
	-p) shift 2 ;;
	-k) shift ;;
	--) shift; break ;;
	-*) echo "sudo: remotetest fake sudo does not support option $1" >&2; exit 1 ;;
	*) break ;;
	esac
done
if [ -n "$want" ]; then
	if [ "$nonint" = 1 ]; then
		echo "sudo: a password is required" >&2
		exit 1
	fi
	if [ "$fromstdin" != 1 ]; then
		echo "sudo: a terminal is required to read the password; either use the -S option to read from standard input or configure an askpass helper" >&2
		exit 1
	fi
	got=
	IFS= read -r got
	if [ "$got" != "$want" ]; then
		echo "Sorry, try again." >&2
		echo "sudo: 1 incorrect password attempt" >&2
		exit 1
	fi
fi
SUDO_USER=${USER:-tester}
export SUDO_USER
exec "$@"
`
}
