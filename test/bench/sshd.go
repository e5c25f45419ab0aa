package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// sshd is the benchmark's own OpenSSH server on one port, listening on
// 127.0.1.1 ... 127.0.1.N (all of 127.0.0.0/8 is loopback on Linux, so no
// address has to be added). OpenSSH listens on at most 16 addresses per
// process (MAX_LISTEN_SOCKS), so there is one listener process per 16
// hosts, all with the same configuration and host key; binding 0.0.0.0
// instead would open the port to the network. Both tools reach every
// "host" through the same processes; each is stopped by its PID.
type sshd struct {
	dir        string
	port       int
	addrs      []string
	clientKey  string // private key file, OpenSSH format
	knownHosts string // one line per address
	procs      []*exec.Cmd
}

// addrsPerSSHD is OpenSSH's MAX_LISTEN_SOCKS.
const addrsPerSSHD = 16

// sshdConfig is the setup of /work/shared/BENCH.md: StrictModes no because
// the keys live in a temp dir, UsePAM no, SetEnv SHLVL=1 so that root's
// ~/.bashrc (pyenv init on these machines) is skipped for every command of
// either tool, MaxSessions 100 for Ansible's ControlMaster and kubewright's
// 8 sessions per connection, MaxStartups above the largest host count so no
// handshake is refused.
const sshdConfig = `Port %d
%sHostKey %s
AuthorizedKeysFile %s
PidFile %s
StrictModes no
UsePAM no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin yes
MaxStartups %d
MaxSessions 100
MaxAuthTries 10
UseDNS no
PrintMotd no
PrintLastLog no
Subsystem sftp internal-sftp
SetEnv SHLVL=1
LogLevel ERROR
`

func writeKey(path string, priv ed25519.PrivateKey) error {
	block, err := ssh.MarshalPrivateKey(priv, "kubewright-bench")
	if err != nil {
		return err
	}
	return os.WriteFile(path, pem.EncodeToMemory(block), 0o600)
}

// startSSHD starts sshd for n addresses on port (0: the first free port
// from 2222 up).
func startSSHD(dir string, n, port int) (*sshd, error) {
	if n < 1 || n > 254*8 {
		return nil, fmt.Errorf("sshd: %d hosts, want 1 to %d", n, 254*8)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	// sshd refuses to start without its privilege separation directory,
	// which Debian creates only from the service unit.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		return nil, err
	}
	s := &sshd{dir: dir}
	_, hostPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	hostKeyFile := filepath.Join(dir, "ssh_host_ed25519_key")
	if err := writeKey(hostKeyFile, hostPriv); err != nil {
		return nil, err
	}
	clientPub, clientPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	s.clientKey = filepath.Join(dir, "id_ed25519")
	if err := writeKey(s.clientKey, clientPriv); err != nil {
		return nil, err
	}
	cpub, err := ssh.NewPublicKey(clientPub)
	if err != nil {
		return nil, err
	}
	authKeys := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(authKeys, ssh.MarshalAuthorizedKey(cpub), 0o600); err != nil {
		return nil, err
	}
	for i := 0; i < n; i++ {
		s.addrs = append(s.addrs, hostAddr(i))
	}
	if port == 0 {
		if port, err = freePort(2222); err != nil {
			return nil, err
		}
	}
	s.port = port
	logf, err := os.Create(filepath.Join(dir, "sshd.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	for g := 0; g*addrsPerSSHD < n; g++ {
		var listen strings.Builder
		for _, a := range s.addrs[g*addrsPerSSHD : min((g+1)*addrsPerSSHD, n)] {
			fmt.Fprintf(&listen, "ListenAddress %s\n", a)
		}
		cfg := filepath.Join(dir, fmt.Sprintf("sshd_config.%d", g))
		pid := filepath.Join(dir, fmt.Sprintf("sshd.%d.pid", g))
		if err := os.WriteFile(cfg, []byte(fmt.Sprintf(sshdConfig, port, listen.String(), hostKeyFile, authKeys, pid, max(200, 2*n))), 0o600); err != nil {
			return nil, err
		}
		cmd := exec.Command("/usr/sbin/sshd", "-D", "-e", "-f", cfg)
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			s.stop()
			return nil, fmt.Errorf("start sshd: %w", err)
		}
		s.procs = append(s.procs, cmd)
	}
	if err := s.waitReady(10 * time.Second); err != nil {
		s.stop()
		log, _ := os.ReadFile(logf.Name())
		return nil, fmt.Errorf("%w\n%s", err, log)
	}

	hostSigner, err := ssh.NewSignerFromKey(hostPriv)
	if err != nil {
		return nil, err
	}
	var kh strings.Builder
	for _, a := range s.addrs {
		kh.WriteString(knownhosts.Line([]string{knownhosts.Normalize(net.JoinHostPort(a, strconv.Itoa(port)))}, hostSigner.PublicKey()) + "\n")
	}
	s.knownHosts = filepath.Join(dir, "known_hosts")
	return s, os.WriteFile(s.knownHosts, []byte(kh.String()), 0o600)
}

// hostAddr is the address of host i (0-based): 127.0.1.1 ... 127.0.1.254,
// then 127.0.2.1 ...
func hostAddr(i int) string { return fmt.Sprintf("127.0.%d.%d", 1+i/254, 1+i%254) }

func freePort(from int) (int, error) {
	for p := from; p < from+100; p++ {
		ln, err := net.Listen("tcp", "127.0.1.1:"+strconv.Itoa(p))
		if err == nil {
			ln.Close()
			return p, nil
		}
	}
	return 0, fmt.Errorf("no free port in %d-%d", from, from+99)
}

func (s *sshd) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for _, a := range s.addrs {
		for {
			c, err := net.DialTimeout("tcp", net.JoinHostPort(a, strconv.Itoa(s.port)), time.Second)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("sshd not answering on %s:%d: %w", a, s.port, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nil
}

// stop ends the listeners by their PIDs (never by name) and waits for
// them. Per-connection processes end with their connections, which belong
// to tool runs that have already exited.
func (s *sshd) stop() {
	for _, cmd := range s.procs {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
	s.procs = nil
}

// pids lists the listener processes.
func (s *sshd) pids() []int {
	var out []int
	for _, cmd := range s.procs {
		out = append(out, cmd.Process.Pid)
	}
	return out
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat times (100 on Linux).
const clockTicks = 100

// cpu returns the CPU time the listeners and every process they reaped
// used so far: the per-connection sshd processes and, through them, the
// sessions' shells and commands. The difference across a run is the work
// the run caused on the "hosts".
func (s *sshd) cpu() time.Duration {
	var ticks int64
	for _, pid := range s.pids() {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// Fields after the parenthesised command: state is field 3, utime
		// 14, stime 15, cutime 16, cstime 17.
		rest := string(b)
		if i := strings.LastIndexByte(rest, ')'); i >= 0 {
			rest = rest[i+1:]
		}
		f := strings.Fields(rest)
		if len(f) < 15 {
			continue
		}
		for _, v := range f[11:15] {
			n, _ := strconv.ParseInt(v, 10, 64)
			ticks += n
		}
	}
	return time.Duration(ticks) * time.Second / clockTicks
}

// machineBusy is the CPU time all cores spent not idle, from /proc/stat.
func machineBusy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	var busy int64
	for i, v := range f[1:] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		if i >= 7 { // steal, guest, guest_nice: guest is already in user
			break
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		busy += n
	}
	return time.Duration(busy) * time.Second / clockTicks
}
