package remotetest

import (
	"bufio"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/kubewright/kubewright/installer/remote"
)

// DefaultSSHD is where Debian and the CI image install OpenSSH's server.
const DefaultSSHD = "/usr/sbin/sshd"

// RequireOpenSSH returns the sshd path. When it is absent the test is
// skipped on a developer machine but fails in CI (env CI set), where the
// real-sshd tests are part of what must pass.
func RequireOpenSSH(t testing.TB) string {
	t.Helper()
	if _, err := os.Stat(DefaultSSHD); err == nil {
		return DefaultSSHD
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is missing but CI is set: install openssh-server (apt-get install -y openssh-server)", DefaultSSHD)
	}
	t.Skipf("%s not installed (apt-get install openssh-server); real-sshd tests need it", DefaultSSHD)
	return ""
}

type openSSHOptions struct {
	hosts []string
	extra []string
}

// OpenSSHOption configures StartOpenSSH.
type OpenSSHOption func(*openSSHOptions)

// WithHostNames serves one "host" per name, on 127.0.1.1, 127.0.1.2, ...
// (default: a single host named "host1").
func WithHostNames(names ...string) OpenSSHOption {
	return func(o *openSSHOptions) { o.hosts = append(o.hosts, names...) }
}

// WithSSHDConfig appends raw sshd_config lines.
func WithSSHDConfig(lines ...string) OpenSSHOption {
	return func(o *openSSHOptions) { o.extra = append(o.extra, lines...) }
}

// OpenSSH is a real sshd on loopback serving several hosts: one listening
// address per host (127.0.1.N), one port, one host key. Commands run as the
// user running the test, on this machine.
type OpenSSH struct {
	t              testing.TB
	Port           int
	Dir            string
	LogFile        string
	ConfigFile     string
	User           string
	HostKey        ssh.PublicKey
	ClientKey      *ClientKey
	KnownHostsFile string
	names          []string
	addrs          map[string]string
	cmd            *exec.Cmd
	waited         chan struct{}

	frozenMu sync.Mutex
	frozen   []int // stopped by Freeze, continued by Thaw
}

// StartOpenSSH starts `sshd -D -e -f CONFIG` on a free port with its own
// host key and authorized_keys (StrictModes no, UsePAM no), waits until
// every address answers, and stops it (and its per-connection processes, by
// PID) in t.Cleanup.
func StartOpenSSH(t testing.TB, opts ...OpenSSHOption) *OpenSSH {
	t.Helper()
	sshd := RequireOpenSSH(t)
	var o openSSHOptions
	for _, f := range opts {
		f(&o)
	}
	if len(o.hosts) == 0 {
		o.hosts = []string{"host1"}
	}
	if len(o.hosts) > 254 {
		t.Fatalf("remotetest: at most 254 hosts per sshd, got %d", len(o.hosts))
	}
	u, err := user.Current()
	if err != nil {
		t.Fatalf("remotetest: current user: %v", err)
	}
	if os.Geteuid() == 0 {
		// sshd refuses to start as root without its privilege separation
		// directory; Debian creates it only from the service unit.
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			t.Fatalf("remotetest: create /run/sshd: %v", err)
		}
	}

	dir := t.TempDir()
	s := &OpenSSH{t: t, Dir: dir, User: u.Username, names: o.hosts, addrs: map[string]string{}}

	_, hostPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatalf("remotetest: host key: %v", err)
	}
	block, err := ssh.MarshalPrivateKey(hostPriv, "remotetest-sshd")
	if err != nil {
		t.Fatalf("remotetest: marshal host key: %v", err)
	}
	hostKeyFile := filepath.Join(dir, "ssh_host_ed25519_key")
	if err := os.WriteFile(hostKeyFile, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	hostSigner, err := ssh.NewSignerFromKey(hostPriv)
	if err != nil {
		t.Fatal(err)
	}
	s.HostKey = hostSigner.PublicKey()
	s.ClientKey = NewClientKey(t, "")
	authKeys := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(authKeys, ssh.MarshalAuthorizedKey(s.ClientKey.Public), 0o600); err != nil {
		t.Fatal(err)
	}
	for i, name := range o.hosts {
		s.addrs[name] = fmt.Sprintf("127.0.1.%d", i+1)
	}

	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatalf("remotetest: free port: %v", err)
		}
		s.Port = port
		if lastErr = s.start(sshd, hostKeyFile, authKeys, o.extra); lastErr == nil {
			break
		}
	}
	if lastErr != nil {
		t.Fatalf("remotetest: start sshd: %v", lastErr)
	}

	var kh strings.Builder
	for _, name := range o.hosts {
		kh.WriteString(knownhosts.Line([]string{knownhosts.Normalize(net.JoinHostPort(s.addrs[name], strconv.Itoa(s.Port)))}, s.HostKey) + "\n")
	}
	s.KnownHostsFile = filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(s.KnownHostsFile, []byte(kh.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func (s *OpenSSH) start(sshd, hostKeyFile, authKeys string, extra []string) error {
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "Port %d\n", s.Port)
	for _, name := range s.names {
		fmt.Fprintf(&cfg, "ListenAddress %s\n", s.addrs[name])
	}
	fmt.Fprintf(&cfg, `HostKey %s
AuthorizedKeysFile %s
PidFile none
StrictModes no
UsePAM no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin yes
MaxStartups 1000
MaxSessions 100
MaxAuthTries 10
UseDNS no
PrintMotd no
AllowTcpForwarding yes
Subsystem sftp internal-sftp
SetEnv SHLVL=1
LogLevel VERBOSE
`, hostKeyFile, authKeys)
	for _, l := range extra {
		cfg.WriteString(l + "\n")
	}
	s.ConfigFile = filepath.Join(s.Dir, "sshd_config")
	if err := os.WriteFile(s.ConfigFile, []byte(cfg.String()), 0o600); err != nil {
		return err
	}
	s.LogFile = filepath.Join(s.Dir, fmt.Sprintf("sshd-%d.log", s.Port))
	logf, err := os.Create(s.LogFile)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(sshd, "-D", "-e", "-f", s.ConfigFile)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return err
	}
	waited := make(chan struct{})
	go func() { cmd.Wait(); close(waited) }()
	s.cmd, s.waited = cmd, waited

	deadline := time.Now().Add(10 * time.Second)
	for _, name := range s.names {
		addr := net.JoinHostPort(s.addrs[name], strconv.Itoa(s.Port))
		for {
			if banner(addr) {
				break
			}
			select {
			case <-waited:
				return fmt.Errorf("sshd exited: %s", s.LogTail())
			default:
			}
			if time.Now().After(deadline) {
				s.Stop()
				return fmt.Errorf("sshd did not answer on %s within 10s: %s", addr, s.LogTail())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nil
}

func banner(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "SSH-2.0-")
}

// LogTail is the end of sshd's log, for failure messages.
func (s *OpenSSH) LogTail() string {
	b, _ := os.ReadFile(s.LogFile)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 30 {
		lines = lines[len(lines)-30:]
	}
	return strings.Join(lines, "\n")
}

// PID is the listening sshd's process id.
func (s *OpenSSH) PID() int { return s.cmd.Process.Pid }

// Names lists the served host names in order.
func (s *OpenSSH) Names() []string { return append([]string(nil), s.names...) }

// Address is the loopback address serving name.
func (s *OpenSSH) Address(name string) string { return s.addrs[name] }

// Config is a remote.Config for the named host.
func (s *OpenSSH) Config(name string) remote.Config {
	addr, ok := s.addrs[name]
	if !ok {
		s.t.Fatalf("remotetest: sshd serves no host %q (have %v)", name, s.names)
	}
	return remote.Config{
		Name:           name,
		Address:        addr,
		Port:           s.Port,
		User:           s.User,
		KeyFile:        s.ClientKey.Path,
		KnownHostsFile: s.KnownHostsFile,
		ConnectTimeout: 10 * time.Second,
	}
}

// Configs returns Config for every host, in order.
func (s *OpenSSH) Configs() []remote.Config {
	out := make([]remote.Config, 0, len(s.names))
	for _, n := range s.names {
		out = append(out, s.Config(n))
	}
	return out
}

// ConnectionPIDs are the per-connection sshd processes (children of the
// listener).
func (s *OpenSSH) ConnectionPIDs() []int {
	return children(s.cmd.Process.Pid)
}

// KillConnections kills every per-connection sshd process and their
// descendants (by PID), which drops every client connection the way a crash
// or a network cut would. It returns how many connections it killed.
func (s *OpenSSH) KillConnections() int {
	conns := children(s.cmd.Process.Pid)
	for _, pid := range conns {
		killTree(pid)
	}
	return len(conns)
}

// Freeze stops (SIGSTOP) sshd, its per-connection processes and everything
// they run, each by PID: the host stops answering, as a hung machine or a
// cut network does. Open connections go silent (not even keepalives are
// answered) and new ones are accepted by the kernel but never greeted.
// Thaw resumes them; t.Cleanup does too, before sshd is stopped.
func (s *OpenSSH) Freeze() {
	s.frozenMu.Lock()
	defer s.frozenMu.Unlock()
	if s.frozen == nil {
		s.t.Cleanup(s.Thaw)
	}
	var walk func(pid int)
	walk = func(pid int) {
		syscall.Kill(pid, syscall.SIGSTOP) // before its children, so it forks no more
		s.frozen = append(s.frozen, pid)
		for _, c := range children(pid) {
			walk(c)
		}
	}
	walk(s.cmd.Process.Pid)
}

// Thaw continues every process Freeze stopped.
func (s *OpenSSH) Thaw() {
	s.frozenMu.Lock()
	defer s.frozenMu.Unlock()
	for _, pid := range s.frozen {
		syscall.Kill(pid, syscall.SIGCONT)
	}
	s.frozen = s.frozen[:0]
}

// Stop kills sshd and its per-connection processes by PID. Safe to call twice.
func (s *OpenSSH) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.waited:
	default:
		pid := s.cmd.Process.Pid
		kids := children(pid)
		s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.waited:
		case <-time.After(3 * time.Second):
			s.cmd.Process.Kill()
			<-s.waited
		}
		for _, k := range kids {
			killTree(k)
		}
	}
}

// children lists processes whose parent is pid, from /proc.
func children(pid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may contain spaces, so cut at
		// the last ')'.
		st := string(b)
		i := strings.LastIndexByte(st, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(st[i+1:])
		if len(f) < 2 {
			continue
		}
		if ppid, _ := strconv.Atoi(f[1]); ppid == pid {
			out = append(out, p)
		}
	}
	return out
}

// killTree kills pid's descendants, then pid, each by PID.
func killTree(pid int) {
	syscall.Kill(pid, syscall.SIGSTOP) // stop it forking while we walk
	for _, c := range children(pid) {
		killTree(c)
	}
	syscall.Kill(pid, syscall.SIGKILL)
}
