package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// tool is one of the two engines under test.
type tool interface {
	name() string
	// prepare writes the inventory (and config) for the first n hosts.
	prepare(w *workspace, n int) error
	// command returns the command for one run over n hosts; tag names the
	// run's log and (for Ansible) its fresh ControlPersist directory.
	command(w *workspace, n int, tag string) *exec.Cmd
	// cleanup runs after every run, untimed (Ansible: stop the master
	// connections ControlPersist left behind).
	cleanup(w *workspace, tag string)
}

// runResult is one timed run.
type runResult struct {
	wall    time.Duration
	cpu     time.Duration // user+sys of the tool and the children it waited for
	server  time.Duration // CPU of sshd and the sessions' commands
	busy    time.Duration // CPU of the whole machine (every core, every process)
	maxRSS  int64         // KiB, largest single process
	changed int           // sum over hosts of the recap's changed=
	hosts   int           // recap lines
	peakFDs int           // of the top process (sampled)
	peakThr int           // threads of the top process (sampled)
}

var recapRe = regexp.MustCompile(`^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+(?:unreachable=(\d+)\s+)?(?:unchanged=\d+\s+)?failed=(\d+)`)

// parseRecap reads the per-host recap both tools print (Ansible's PLAY
// RECAP and kubewright's RECAP share "name : ok=N changed=N ... failed=N").
func parseRecap(out []byte) (hosts, changed, failed int) {
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		m := recapRe.FindStringSubmatch(strings.TrimSpace(sc.Text()))
		if m == nil {
			continue
		}
		hosts++
		c, _ := strconv.Atoi(m[3])
		changed += c
		u, _ := strconv.Atoi(m[4])
		f, _ := strconv.Atoi(m[5])
		failed += u + f
	}
	return
}

// run times one run and checks its recap: every host present, none failed.
func run(ctx context.Context, w *workspace, t tool, n int, tag string) (runResult, error) {
	cmd := t.command(w, n, tag)
	logPath := filepath.Join(w.dir, "logs", tag+".log")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	server0, busy0 := w.sshd.cpu(), machineBusy()
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return runResult{}, err
	}
	stopSampling := make(chan struct{})
	peaks := make(chan [2]int, 1)
	go func() { peaks <- sample(cmd.Process.Pid, stopSampling) }()
	err := cmd.Wait()
	wall := time.Since(start)
	busy := machineBusy() - busy0
	close(stopSampling)
	peak := <-peaks
	t.cleanup(w, tag)
	// Connection processes exit just after the client; the listeners reap
	// them and only then count their CPU.
	time.Sleep(300 * time.Millisecond)
	server := w.sshd.cpu() - server0
	_ = os.WriteFile(logPath, out.Bytes(), 0o644)
	if err != nil {
		return runResult{}, fmt.Errorf("%s: %v (log %s)\n%s", strings.Join(cmd.Args, " "), err, logPath, tail(out.Bytes(), 30))
	}
	r := runResult{wall: wall, server: server, busy: busy, peakFDs: peak[0], peakThr: peak[1]}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		r.maxRSS = ru.Maxrss
	}
	hosts, changed, failed := parseRecap(out.Bytes())
	r.hosts, r.changed = hosts, changed
	if hosts != n || failed != 0 {
		return r, fmt.Errorf("%s: recap shows %d hosts (want %d), %d failed (log %s)", t.name(), hosts, n, failed, logPath)
	}
	return r, nil
}

// sample polls the process's open file descriptors and threads.
func sample(pid int, stop <-chan struct{}) [2]int {
	var peak [2]int
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid)); err == nil {
			peak[0] = max(peak[0], len(ents))
		}
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
			for _, l := range strings.Split(string(b), "\n") {
				if v, ok := strings.CutPrefix(l, "Threads:"); ok {
					n, _ := strconv.Atoi(strings.TrimSpace(v))
					peak[1] = max(peak[1], n)
				}
			}
		}
		select {
		case <-stop:
			return peak
		case <-tick.C:
		}
	}
}

func tail(b []byte, lines int) string {
	ls := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return strings.Join(ls, "\n")
}

// kubewright drives the real CLI: kubewright run -i INVENTORY PLAYBOOK.
type kubewright struct{ bin string }

func (kubewright) name() string { return "kubewright" }

func (k kubewright) prepare(w *workspace, n int) error {
	var b strings.Builder
	fmt.Fprintf(&b, `apiVersion: kubewright.io/v1alpha1
kind: Cluster
metadata:
  name: bench
spec:
  hostDefaults:
    user: root
    port: %d
    keyFile: %s
  hosts:
`, w.sshd.port, w.sshd.clientKey)
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "    - {name: %s, address: %s}\n", hostName(i), hostAddr(i))
	}
	// The inventory format wants masters and a VIP; neither matters to
	// `run` with a user playbook. A loopback VIP is refused by validation,
	// an IPv6 ULA one with IPv4 masters is accepted.
	fmt.Fprintf(&b, "  groups:\n    masters: [%s]\n", hostName(0))
	if n > 1 {
		fmt.Fprintf(&b, "    workers: [\"h[%03d:%03d]\"]\n", 2, n)
	}
	b.WriteString("  controlPlaneEndpoint:\n    vip: fd00:6b77::100\n    interface: lo\n")
	if err := os.WriteFile(k.inventory(w, n), []byte(b.String()), 0o644); err != nil {
		return err
	}
	// The cluster's known_hosts, as a first --accept-new-host-keys run
	// would have recorded it: strict host-key checking, nothing learned
	// inside a measured run (Ansible gets the same file).
	kh := filepath.Join(w.dir, "kwstate", "clusters", "bench", "known_hosts")
	if err := os.MkdirAll(filepath.Dir(kh), 0o700); err != nil {
		return err
	}
	data, err := os.ReadFile(w.sshd.knownHosts)
	if err != nil {
		return err
	}
	return os.WriteFile(kh, data, 0o600)
}

func (kubewright) inventory(w *workspace, n int) string {
	return filepath.Join(w.dir, "kubewright", fmt.Sprintf("inventory-%d.yaml", n))
}

func (k kubewright) command(w *workspace, n int, _ string) *exec.Cmd {
	return exec.Command(k.bin, "run", "-i", k.inventory(w, n), "--state-dir", filepath.Join(w.dir, "kwstate"),
		"--concurrency", strconv.Itoa(n), filepath.Join(w.dir, "kubewright", "bench.yaml"))
}

func (kubewright) cleanup(*workspace, string) {}

// ansible is ansible-playbook with forks = N, pipelining, ControlPersist
// and explicit fact gathering: its fastest honest setup.
type ansible struct{}

func (ansible) name() string { return "ansible" }

const ansibleCfg = `[defaults]
gathering = explicit
interpreter_python = /usr/bin/python3
host_key_checking = True
retry_files_enabled = False
deprecation_warnings = False
stdout_callback = default

[ssh_connection]
pipelining = True
ssh_args = -o ControlMaster=auto -o ControlPersist=60s -o UserKnownHostsFile=%s -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes
`

func (a ansible) prepare(w *workspace, n int) error {
	if err := os.WriteFile(filepath.Join(w.dir, "ansible", "ansible.cfg"), []byte(fmt.Sprintf(ansibleCfg, w.sshd.knownHosts)), 0o644); err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString("[bench]\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "%s ansible_host=%s\n", hostName(i), hostAddr(i))
	}
	fmt.Fprintf(&b, "\n[bench:vars]\nansible_port=%d\nansible_user=root\nansible_ssh_private_key_file=%s\n", w.sshd.port, w.sshd.clientKey)
	return os.WriteFile(a.inventory(w, n), []byte(b.String()), 0o644)
}

func (ansible) inventory(w *workspace, n int) string {
	return filepath.Join(w.dir, "ansible", fmt.Sprintf("inventory-%d.ini", n))
}

// controlDir is per run, so every run starts without master connections,
// as kubewright does (ControlPersist still serves every task of the run).
func (ansible) controlDir(w *workspace, tag string) string {
	return filepath.Join(w.dir, "cp", tag)
}

func (a ansible) command(w *workspace, n int, tag string) *exec.Cmd {
	cmd := exec.Command("ansible-playbook", "-i", a.inventory(w, n), "--forks", strconv.Itoa(n),
		"-e", "bench_dir="+w.dir, filepath.Join(w.dir, "ansible", "site.yml"))
	cmd.Env = append(os.Environ(),
		"ANSIBLE_CONFIG="+filepath.Join(w.dir, "ansible", "ansible.cfg"),
		"ANSIBLE_SSH_CONTROL_PATH_DIR="+a.controlDir(w, tag),
		"ANSIBLE_LOCAL_TEMP="+filepath.Join(w.dir, "ansible-tmp"),
		"ANSIBLE_NOCOLOR=1",
	)
	return cmd
}

// cleanup asks each ControlPersist master to exit (ssh -O exit), so idle
// masters from one run do not hold sessions during the next.
func (a ansible) cleanup(w *workspace, tag string) {
	socks, _ := filepath.Glob(filepath.Join(a.controlDir(w, tag), "*"))
	for _, s := range socks {
		_ = exec.Command("ssh", "-o", "ControlPath="+s, "-O", "exit", "bench").Run()
	}
}

func hostName(i int) string { return fmt.Sprintf("h%03d", i+1) }
