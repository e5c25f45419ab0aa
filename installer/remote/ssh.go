package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// ErrClosed is returned by operations on a host after Close.
var ErrClosed = errors.New("host connection closed")

// SSHHost is a Host reached over SSH. It keeps ONE connection and multiplexes
// every command and file transfer over it: opening a connection costs a key
// exchange and authentication (milliseconds of CPU on both ends, more through
// a bastion), a session costs one round trip.
type SSHHost struct {
	cfg        Config
	log        *slog.Logger
	bastion    *SSHHost
	ownBastion bool

	sessions chan struct{} // MaxSessions slots
	dialing  chan struct{} // one (re)connect at a time

	mu     sync.Mutex
	cur    *conn
	closed bool

	sudoMu   sync.Mutex
	sudoMode sudoMode

	connects atomic.Int64
}

type sudoMode int

const (
	sudoUnknown sudoMode = iota
	sudoNoPassword
	sudoPassword
)

// conn is one SSH connection and its lazily opened SFTP client.
type conn struct {
	client *ssh.Client
	done   chan struct{} // closed when the connection has ended
	reason atomic.Value  // string: why we closed it, for errors

	sftpMu sync.Mutex
	sftp   *sftp.Client
}

func (c *conn) alive() bool {
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

func (c *conn) kill(reason string) {
	c.reason.CompareAndSwap(nil, reason)
	c.client.Close()
}

// Dial connects to cfg's host (through its bastion chain, if any), checking
// the host key strictly, and returns a Host that keeps the connection alive
// and reconnects when it drops.
func Dial(ctx context.Context, cfg Config) (*SSHHost, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("connect to %s: %w", cfg.label(), err)
	}
	cfg.Redactor.Add(cfg.Password, cfg.SudoPassword)
	h := &SSHHost{
		cfg:      cfg,
		log:      cfg.Logger.With("host", cfg.Name),
		sessions: make(chan struct{}, cfg.MaxSessions),
		dialing:  make(chan struct{}, 1),
	}
	switch {
	case cfg.BastionHost != nil:
		h.bastion = cfg.BastionHost
	case cfg.Bastion != nil:
		b, err := Dial(ctx, *cfg.Bastion)
		if err != nil {
			return nil, fmt.Errorf("connect to %s via bastion: %w", cfg.label(), err)
		}
		h.bastion, h.ownBastion = b, true
	}
	c, err := h.connect(ctx)
	if err != nil {
		if h.ownBastion {
			h.bastion.Close()
		}
		return nil, fmt.Errorf("connect to %s: %w", cfg.label(), err)
	}
	h.cur = c
	return h, nil
}

// Name is the inventory name.
func (h *SSHHost) Name() string { return h.cfg.Name }

// Addr is the address:port dialled.
func (h *SSHHost) Addr() string { return h.cfg.Addr() }

// Redactor is the redactor that knows this host's secrets.
func (h *SSHHost) Redactor() *Redactor { return h.cfg.Redactor }

// Connects counts successful connections (1 + reconnects); tests and the
// engine's report use it.
func (h *SSHHost) Connects() int64 { return h.connects.Load() }

// Close ends the connection (and the bastion connection this host opened).
func (h *SSHHost) Close() error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	c := h.cur
	h.cur = nil
	h.mu.Unlock()
	var err error
	if c != nil {
		c.sftpMu.Lock()
		if c.sftp != nil {
			c.sftp.Close()
		}
		c.sftpMu.Unlock()
		c.kill("closed")
		<-c.done
	}
	if h.ownBastion {
		if berr := h.bastion.Close(); berr != nil && err == nil {
			err = berr
		}
	}
	return err
}

// connect opens a new connection; errors are not prefixed with the host,
// callers do that once.
func (h *SSHHost) connect(ctx context.Context) (*conn, error) {
	cfg := &h.cfg
	auth, err := buildAuth(cfg)
	if err != nil {
		return nil, err
	}
	defer auth.close()
	hostKey, algos, err := hostKeyChecker(cfg, h.log.Warn)
	if err != nil {
		return nil, err
	}
	sshCfg := &ssh.ClientConfig{
		User:              cfg.User,
		Auth:              auth.methods,
		HostKeyCallback:   hostKey,
		HostKeyAlgorithms: algos,
		Timeout:           cfg.ConnectTimeout,
	}

	dctx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
	defer cancel()
	var raw net.Conn
	if h.bastion != nil {
		raw, err = h.bastion.DialContext(dctx, "tcp", cfg.Addr())
		if err != nil {
			return nil, fmt.Errorf("open tunnel through bastion %s: %w", h.bastion.cfg.label(), err)
		}
	} else {
		var d net.Dialer
		raw, err = d.DialContext(dctx, "tcp", cfg.Addr())
		if err != nil {
			return nil, err
		}
	}

	// The handshake has no context of its own: run it aside and close the
	// socket if the timeout or ctx ends first (deadlines do not work on a
	// tunnel through a bastion).
	type result struct {
		c     ssh.Conn
		chans <-chan ssh.NewChannel
		reqs  <-chan *ssh.Request
		err   error
	}
	res := make(chan result, 1)
	go func() {
		c, chans, reqs, err := ssh.NewClientConn(raw, cfg.Addr(), sshCfg)
		res <- result{c, chans, reqs, err}
	}()
	var r result
	select {
	case r = <-res:
	case <-dctx.Done():
		raw.Close()
		<-res
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("SSH handshake did not finish within %s", cfg.ConnectTimeout)
	}
	if r.err != nil {
		raw.Close()
		var hk *HostKeyError
		if errors.As(r.err, &hk) {
			return nil, hk
		}
		return nil, authFailure(cfg, auth, r.err)
	}
	c := &conn{client: ssh.NewClient(r.c, r.chans, r.reqs), done: make(chan struct{})}
	go func() {
		c.client.Wait()
		close(c.done)
	}()
	go h.keepAlive(c)
	h.connects.Add(1)
	h.log.Debug("connected", "addr", cfg.Addr(), "server", string(r.c.ServerVersion()))
	return c, nil
}

// keepAlive declares the connection dead when the server stops answering, so
// a half-open TCP connection (host rebooted, NAT dropped the flow) is noticed
// between commands instead of hanging the next one.
func (h *SSHHost) keepAlive(c *conn) {
	interval := h.cfg.KeepAliveInterval
	if interval < 0 {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
		}
		replied := make(chan error, 1)
		go func() {
			_, _, err := c.client.SendRequest("keepalive@openssh.com", true, nil)
			replied <- err
		}()
		select {
		case err := <-replied:
			if err != nil {
				c.kill("keepalive failed: " + err.Error())
				return
			}
		case <-time.After(interval * time.Duration(h.cfg.KeepAliveCountMax)):
			h.log.Warn("no keepalive reply; closing connection", "after", interval*time.Duration(h.cfg.KeepAliveCountMax))
			c.kill(fmt.Sprintf("no keepalive reply within %s", interval*time.Duration(h.cfg.KeepAliveCountMax)))
			return
		case <-c.done:
			return
		}
	}
}

// getConn returns the live connection, reconnecting if it has died.
func (h *SSHHost) getConn(ctx context.Context) (*conn, error) {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, ErrClosed
	}
	c := h.cur
	h.mu.Unlock()
	if c != nil && c.alive() {
		return c, nil
	}
	return h.reconnect(ctx, c)
}

// permanent errors are not retried: another attempt cannot fix them.
func permanent(err error) bool {
	var hk *HostKeyError
	return errors.As(err, &hk) || strings.Contains(err.Error(), "authentication as user") ||
		errors.Is(err, context.Canceled) || errors.Is(err, ErrClosed)
}

// reconnect replaces old (dead) with a new connection. Concurrent callers
// share one reconnect. Attempts are spaced with exponential backoff because
// the usual cause is a host rebooting or sshd restarting.
func (h *SSHHost) reconnect(ctx context.Context, old *conn) (*conn, error) {
	select {
	case h.dialing <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-h.dialing }()
	h.mu.Lock()
	cur, closed := h.cur, h.closed
	h.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	if cur != nil && cur != old && cur.alive() {
		return cur, nil
	}
	if old != nil {
		old.kill("replaced")
	}
	why := "connection lost"
	if old != nil {
		if r, ok := old.reason.Load().(string); ok {
			why = r
		}
	}
	h.log.Info("reconnecting", "reason", why)
	var lastErr error
	backoff := h.cfg.ReconnectBackoff
	for i := 0; i < h.cfg.ReconnectAttempts; i++ {
		if i > 0 {
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			backoff *= 2
		}
		c, err := h.connect(ctx)
		if err == nil {
			h.mu.Lock()
			if h.closed {
				h.mu.Unlock()
				c.kill("closed")
				return nil, ErrClosed
			}
			h.cur = c
			h.mu.Unlock()
			h.log.Info("reconnected", "attempt", i+1)
			return c, nil
		}
		lastErr = err
		h.log.Warn("reconnect failed", "attempt", i+1, "err", h.cfg.Redactor.Redact(err.Error()))
		if permanent(err) {
			break
		}
	}
	return nil, fmt.Errorf("reconnect to %s (%s): %w", h.cfg.label(), why, lastErr)
}

// DialContext opens a TCP connection from the host, e.g. to reach hosts
// behind it when it is a bastion, or the API server on its loopback.
func (h *SSHHost) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := h.getConn(ctx)
	if err != nil {
		return nil, err
	}
	nc, err := c.client.DialContext(ctx, network, addr)
	if err != nil && !c.alive() {
		if c, err = h.reconnect(ctx, c); err != nil {
			return nil, err
		}
		nc, err = c.client.DialContext(ctx, network, addr)
	}
	return nc, err
}

// newSession opens a session, reconnecting once if the connection turns out
// to be dead (nothing ran yet, so that is safe), and waiting out
// "administratively prohibited" refusals from a server's session limit.
func (h *SSHHost) newSession(ctx context.Context) (*conn, *ssh.Session, error) {
	c, err := h.getConn(ctx)
	if err != nil {
		return nil, nil, err
	}
	reconnected := false
	backoff := 50 * time.Millisecond
	for attempt := 0; ; attempt++ {
		s, err := c.client.NewSession()
		if err == nil {
			return c, s, nil
		}
		var oce *ssh.OpenChannelError
		switch {
		case errors.As(err, &oce) && attempt < 6:
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return nil, nil, ctx.Err()
			}
			backoff *= 2
		case !reconnected && !errors.As(err, &oce):
			reconnected = true
			c.kill("session open failed: " + err.Error())
			if c, err = h.reconnect(ctx, c); err != nil {
				return nil, nil, err
			}
		default:
			return nil, nil, fmt.Errorf("open session: %w", err)
		}
	}
}

// result of one remote command.
type result struct {
	stdout, stderr []byte
	code           int
	signal         string
}

// run executes the already wrapped command line.
func (h *SSHHost) run(ctx context.Context, line string, stdin io.Reader) (*result, error) {
	select {
	case h.sessions <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-h.sessions }()

	c, s, err := h.newSession(ctx)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	var stdout, stderr bytes.Buffer
	pc := &pidCatcher{w: &stderr}
	s.Stdout, s.Stderr = &stdout, pc
	if stdin != nil {
		s.Stdin = stdin
	}
	// The login shell announces its PID first: sshd makes it a session and
	// process-group leader, so on cancel we can kill the whole group from a
	// second session. OpenSSH refuses "signal" requests for root logins
	// ("session signalling requires privilege separation") and does not hang
	// up pty-less sessions, so without this a cancelled command runs on.
	if err := s.Start(CommandPrefix + line); err != nil {
		if !c.alive() {
			return nil, fmt.Errorf("start command: %w", ErrConnectionLost)
		}
		return nil, fmt.Errorf("start command: %w", err)
	}
	waited := make(chan error, 1)
	go func() { waited <- s.Wait() }()
	select {
	case err = <-waited:
	case <-ctx.Done():
		s.Signal(ssh.SIGTERM)
		if pid := pc.pid.Load(); pid > 0 && c.alive() {
			h.killGroup(c, pid)
		}
		s.Close()
		select {
		case <-waited:
		case <-time.After(2 * time.Second):
		}
		return &result{stdout: stdout.Bytes(), stderr: stderr.Bytes(), code: -1}, ctx.Err()
	}
	pc.flush()
	res := &result{stdout: stdout.Bytes(), stderr: stderr.Bytes()}
	if err == nil {
		return res, nil
	}
	var ee *ssh.ExitError
	if errors.As(err, &ee) {
		res.code, res.signal = ee.ExitStatus(), ee.Signal()
		return res, nil
	}
	// No exit status: the session or the connection broke under the command.
	select {
	case <-c.done:
	case <-time.After(200 * time.Millisecond):
	}
	c.kill("connection lost during a command")
	res.code = -1
	// Say why when we know (e.g. no keepalive reply: the host stopped
	// answering), not only what the session saw.
	if r, ok := c.reason.Load().(string); ok && r != "connection lost during a command" {
		return res, fmt.Errorf("%w (%s: %v)", ErrConnectionLost, r, err)
	}
	return res, fmt.Errorf("%w (%v)", ErrConnectionLost, err)
}

// CommandPrefix is prepended to every command line sent to a host: it prints
// the shell's PID (stripped from stderr again) so a cancelled command can be
// killed. Tests that inspect the command lines a server received strip it.
const CommandPrefix = `printf '\036kubewright-pid=%d\n' $$ >&2; `

var pidMarker = []byte("\x1ekubewright-pid=")

// pidCatcher removes the PID announcement from the head of stderr.
type pidCatcher struct {
	w    io.Writer
	buf  []byte
	done bool
	pid  atomic.Int64
}

func (p *pidCatcher) Write(b []byte) (int, error) {
	if p.done {
		return p.w.Write(b)
	}
	p.buf = append(p.buf, b...)
	i := bytes.IndexByte(p.buf, '\n')
	if i < 0 {
		if len(p.buf) > 64 {
			p.flush()
		}
		return len(b), nil
	}
	rest := p.buf
	if line := p.buf[:i]; bytes.HasPrefix(line, pidMarker) {
		if pid, err := strconv.ParseInt(string(line[len(pidMarker):]), 10, 64); err == nil {
			p.pid.Store(pid)
		}
		rest = p.buf[i+1:]
	}
	p.done = true
	p.buf = nil
	if _, err := p.w.Write(rest); err != nil {
		return 0, err
	}
	return len(b), nil
}

// flush writes out a partial head that never became a full line.
func (p *pidCatcher) flush() {
	if !p.done {
		p.done = true
		p.w.Write(p.buf)
		p.buf = nil
	}
}

// killGroup terminates a cancelled command's process group from a new
// session: TERM now, KILL a few seconds later if it is still there. A
// command under sudo runs as root, but sudo itself is in the group, keeps
// the user's real uid (so the user may signal it) and relays the signal.
func (h *SSHHost) killGroup(c *conn, pid int64) {
	s, err := c.client.NewSession()
	if err != nil {
		return
	}
	defer s.Close()
	g := strconv.FormatInt(pid, 10)
	done := make(chan struct{})
	go func() {
		s.Run("kill -TERM -- -" + g + " 2>/dev/null; (sleep 5; kill -KILL -- -" + g + ") >/dev/null 2>&1 </dev/null &")
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
	}
	h.log.Debug("killed cancelled command", "pgid", pid)
}

// Exec runs cmd with `sh -c` semantics (the login shell of the user runs the
// line; with sudo it is `sh -c` explicitly). See ExecOptions.
func (h *SSHHost) Exec(ctx context.Context, cmd string, opts ...ExecOption) (string, error) {
	o := BuildExecOptions(opts...)
	timeout := h.cfg.CommandTimeout
	if o.Timeout > 0 {
		timeout = o.Timeout
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	prefix, err := envPrefix(o.Env)
	if err != nil {
		return "", fmt.Errorf("run %q on %s: %w", shorten(h.cfg.Redactor.Redact(cmd), 200), h.cfg.Name, err)
	}
	script := prefix + cmd
	start := time.Now()
	res, sudoUsed, err := h.execScript(ctx, script, o)
	red := h.cfg.Redactor
	logArgs := []any{"cmd", red.Redact(cmd), "sudo", o.Sudo, "duration", time.Since(start).Round(time.Millisecond)}
	if res != nil {
		logArgs = append(logArgs, "code", res.code, "stdout", red.Redact(string(res.stdout)), "stderr", red.Redact(string(res.stderr)))
	}
	if err != nil {
		h.log.Debug("exec failed", append(logArgs, "err", red.Redact(err.Error()))...)
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil && timeout > 0 {
			err = fmt.Errorf("timed out after %s: %w", timeout, err)
		}
		out := ""
		if res != nil {
			out = string(res.stdout)
		}
		return out, fmt.Errorf("run %q on %s: %w", shorten(red.Redact(cmd), 200), h.cfg.Name, err)
	}
	h.log.Debug("exec", logArgs...)
	if res.code != 0 || res.signal != "" {
		return string(res.stdout), &ExitError{
			Host: h.cfg.Name, Cmd: red.Redact(cmd), Code: res.code, Signal: res.signal,
			Stderr: red.Redact(string(res.stderr)), Sudo: sudoUsed,
		}
	}
	return string(res.stdout), nil
}

// execScript wraps script for sudo when needed and runs it.
func (h *SSHHost) execScript(ctx context.Context, script string, o ExecOptions) (*result, bool, error) {
	if !o.Sudo || h.cfg.User == "root" {
		res, err := h.run(ctx, script, o.Stdin)
		return res, false, err
	}
	mode, err := h.sudo(ctx)
	if err != nil {
		return nil, true, err
	}
	if mode == sudoNoPassword {
		res, err := h.run(ctx, "sudo -n -- sh -c "+Quote(script), o.Stdin)
		// A NOPASSWD probe can be stale (a cached timestamp expired). sudo
		// -n refused before running anything, so switching is safe.
		if err == nil && res.code == 1 && h.cfg.SudoPassword != "" && o.Stdin == nil &&
			bytes.Contains(res.stderr, []byte("a password is required")) {
			h.setSudo(sudoPassword)
		} else {
			return res, true, err
		}
	}
	// The password goes first on stdin; sudo -S reads exactly one line and
	// the command then sees the caller's stdin.
	in := io.Reader(strings.NewReader(h.cfg.SudoPassword + "\n"))
	if o.Stdin != nil {
		in = io.MultiReader(in, o.Stdin)
	}
	res, err := h.run(ctx, "sudo -S -p '' -- sh -c "+Quote(script), in)
	return res, true, err
}

// sudo decides once per host whether sudo wants a password. Feeding a
// password to a sudo that does not ask for it would hand it to the command's
// stdin, so with a password configured we first ask `sudo -n true`.
func (h *SSHHost) sudo(ctx context.Context) (sudoMode, error) {
	h.sudoMu.Lock()
	defer h.sudoMu.Unlock()
	if h.sudoMode != sudoUnknown {
		return h.sudoMode, nil
	}
	if h.cfg.SudoPassword == "" {
		h.sudoMode = sudoNoPassword
		return h.sudoMode, nil
	}
	res, err := h.run(ctx, "sudo -n true", nil)
	if err != nil {
		return sudoUnknown, fmt.Errorf("probe sudo: %w", err)
	}
	if res.code == 0 {
		h.sudoMode = sudoNoPassword
	} else {
		h.sudoMode = sudoPassword
	}
	return h.sudoMode, nil
}

func (h *SSHHost) setSudo(m sudoMode) {
	h.sudoMu.Lock()
	h.sudoMode = m
	h.sudoMu.Unlock()
}

// envPrefix exports env in a stable order. Values are quoted, so they are
// data, never shell code.
func envPrefix(env map[string]string) (string, error) {
	if len(env) == 0 {
		return "", nil
	}
	keys := make([]string, 0, len(env))
	for k := range env {
		if !validEnvName(k) {
			return "", fmt.Errorf("invalid environment variable name %q: use letters, digits and _, not starting with a digit", k)
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "export %s=%s; ", k, Quote(env[k]))
	}
	return b.String(), nil
}

func validEnvName(k string) bool {
	if k == "" {
		return false
	}
	for i, r := range k {
		ok := r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9'
		if !ok {
			return false
		}
	}
	return true
}

var _ Host = (*SSHHost)(nil)
