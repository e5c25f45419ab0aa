package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/kubewright/kubewright/installer/remote/remotetest"
	"github.com/kubewright/kubewright/installer/steps"
)

// syncBuf is a bytes.Buffer safe to write from the signal goroutine.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func writeFile(t *testing.T, path, content string, mode fs.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

// TestSecretsNeverLeak runs `kubewright install` (with its own playbook)
// over real SSH as an unprivileged user whose sudo asks for a password, and
// makes the hosts print every secret there is: the sudo password, the
// Secrets encryption key as the apiserver's config holds it, the VRRP
// password, the cluster CA's private key, an admin kubeconfig's embedded
// client key and the SSH private key, on stdout, on stderr and in the
// error of a failing step. None of them may appear in stdout (-o json
// events), stderr (--verbose), the returned error, the journal or any host
// log; and the marker [REDACTED] must, so the test knows the hosts really
// printed them.
func TestSecretsNeverLeak(t *testing.T) {
	u := remotetest.NewSudoUser(t)
	sshd := remotetest.StartOpenSSH(t, remotetest.WithHostNames("m1"), remotetest.WithSSHDConfig(u.SSHDConfig()...))
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	clusterDir := filepath.Join(state, "clusters", "leak")
	t.Setenv("KW_TEST_SUDO_PW", u.Password)
	// The host is this machine: root (through sudo) can read the state
	// directory and a copy of the sudo password the operator never gave it.
	pwCopy := filepath.Join(dir, "sudo-password")
	writeFile(t, pwCopy, u.Password+"\n", 0o600)
	inv := filepath.Join(dir, "inventory.yaml")
	writeFile(t, inv, fmt.Sprintf(`apiVersion: kubewright.io/v1alpha1
kind: Cluster
metadata:
  name: leak
spec:
  hostDefaults:
    user: %s
    port: %d
    keyFile: %s
    sudoPasswordEnv: KW_TEST_SUDO_PW
  hosts:
    - {name: m1, address: %s}
  groups:
    masters: [m1]
  controlPlaneEndpoint:
    vip: fd00:6b77::100
    interface: lo
  kubernetes:
    version: v1.37.2
  artifacts:
    source: dir
    path: %s
`, u.Name, sshd.Port, u.Key.Path, sshd.Address("m1"), nodeArtifactsDir(t)), 0o600)
	secretsDir := steps.SecretsDir(clusterDir)
	pkiDir := steps.PKIDir(clusterDir)
	printAll := strings.Join([]string{
		"cat " + pwCopy,
		"base64 -w0 " + filepath.Join(secretsDir, "encryption-aescbc.key") + "; echo",
		"cat " + filepath.Join(secretsDir, "vrrp-auth-pass") + "; echo",
		"cat " + filepath.Join(pkiDir, "ca.key"),
		"grep client-key-data " + filepath.Join(pkiDir, "admin.conf"),
		"cat " + u.Key.Path,
	}, "; ")
	pb := filepath.Join(dir, "leak.yaml")
	writeFile(t, pb, fmt.Sprintf(`name: leak
plays:
  - name: print
    hosts: all
    steps:
      - {name: command, with: {readonly: "true", run: %q}}
  - name: fail
    hosts: all
    steps:
      - {name: command, with: {run: %q}}
`, printAll, "("+printAll+") >&2; exit 3"), 0o600)

	var stdout, stderr syncBuf
	err := runMain([]string{"install", "-i", inv, "--state-dir", state, "--playbook", pb, "-o", "json", "--verbose", "--accept-new-host-keys"}, &stdout, &stderr)
	if code := exitCodeQuiet(err); code != exitFailed {
		t.Fatalf("exit %d (%v), want %d (the fail play fails)\nstdout:\n%s\nstderr:\n%s", code, err, exitFailed, stdout.String(), stderr.String())
	}

	secrets := map[string]string{"sudo password": u.Password}
	read := func(p string) []byte {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	encKey := read(filepath.Join(secretsDir, "encryption-aescbc.key"))
	secrets["encryption key"] = base64.StdEncoding.EncodeToString(encKey)
	secrets["vrrp password"] = strings.TrimSpace(string(read(filepath.Join(secretsDir, "vrrp-auth-pass"))))
	for name, path := range map[string]string{"CA key": filepath.Join(pkiDir, "ca.key"), "SSH key": u.Key.Path} {
		for i, line := range strings.Split(string(read(path)), "\n") {
			if len(line) >= 16 && !strings.HasPrefix(line, "-----") {
				secrets[fmt.Sprintf("%s line %d", name, i+1)] = line
			}
		}
	}
	for _, line := range strings.Split(string(read(filepath.Join(pkiDir, "admin.conf"))), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "client-key-data:"); ok {
			secrets["admin client key"] = strings.TrimSpace(v)
		}
	}
	if len(secrets) < 8 {
		t.Fatalf("only %d secrets to look for: the setup is broken", len(secrets))
	}

	outputs := map[string]string{"stdout": stdout.String(), "stderr": stderr.String(), "error": err.Error()}
	runs := filepath.Join(clusterDir, "runs")
	_ = filepath.WalkDir(runs, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			outputs[strings.TrimPrefix(p, runs+"/")] = string(read(p))
		}
		return nil
	})
	journals, logs := 0, 0
	for where, text := range outputs {
		switch {
		case strings.HasSuffix(where, "journal.json"):
			journals++
		case strings.HasSuffix(where, ".log"):
			logs++
		}
		for name, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("the %s is in %s", name, where)
			}
		}
	}
	if journals != 1 || logs != 1 {
		t.Fatalf("read %d journals and %d host logs, want 1 and 1: %v", journals, logs, outputs)
	}
	// The hosts did print them: the redaction marker is where they went.
	for where, text := range outputs {
		if where == "stderr" {
			continue // --verbose logs commands, not their output
		}
		if n := strings.Count(text, "[REDACTED]"); n < 3 {
			t.Errorf("%s has [REDACTED] %d times: the secrets never reached it, the test proves nothing", where, n)
		}
	}
	if !strings.Contains(outputs["error"], "host m1: step command") || !strings.Contains(outputs["error"], "exited with code 3") {
		t.Errorf("the error does not report the failed step: %s", outputs["error"])
	}
}

// cliDir runs runMain in the background and returns its result channel.
func cliAsync(args []string, stdout, stderr *syncBuf) <-chan error {
	done := make(chan error, 1)
	go func() { done <- runMain(args, stdout, stderr) }()
	return done
}

// TestInterruptStopsCleanlyAndReRunConverges sends SIGINT to kubewright
// (this process, through the same signal handling main uses) while a
// command runs on each of three hosts over real SSH. The run stops within
// seconds, the commands on the hosts are gone, the journal says cancelled
// with nothing left pending or running, the later play never started, and
// stderr says what happens. A re-run then completes everything and a
// third run finds nothing to do.
func TestInterruptStopsCleanlyAndReRunConverges(t *testing.T) {
	dir := t.TempDir()
	_, inv := loopbackCluster(t, dir)
	state := filepath.Join(dir, "state")
	work := filepath.Join(dir, "work")
	if err := os.Mkdir(work, 0o755); err != nil {
		t.Fatal(err)
	}
	slow := filepath.Join(work, "slow")
	writeFile(t, slow, "", 0o644)
	h := work + "/{{.Host.Name}}"
	pb := filepath.Join(dir, "slow.yaml")
	writeFile(t, pb, fmt.Sprintf(`name: slow
plays:
  - name: work
    hosts: all
    steps:
      - name: command
        with:
          run: "if [ -f %[1]s ]; then sleep 120 & echo $! > %[2]s.pid; wait $!; fi; echo done > %[2]s.done"
          unless: "test -f %[2]s.done"
  - name: after
    hosts: all
    steps:
      - {name: command, with: {run: "echo after > %[2]s.after", unless: "test -f %[2]s.after"}}
`, slow, h), 0o644)
	args := []string{"run", pb, "-i", inv, "--state-dir", state, "--accept-new-host-keys"}
	hosts := []string{"m1", "m2", "w1"}

	var stdout, stderr syncBuf
	done := cliAsync(args, &stdout, &stderr)
	pids := map[string]int{}
	deadline := time.Now().Add(30 * time.Second)
	for len(pids) < len(hosts) {
		if time.Now().After(deadline) {
			t.Fatalf("the commands did not all start: %v\n%s", pids, stdout.String())
		}
		for _, n := range hosts {
			if b, err := os.ReadFile(filepath.Join(work, n+".pid")); err == nil {
				if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
					pids[n] = pid
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	interrupted := time.Now()
	if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	var err error
	select {
	case err = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("kubewright did not stop within 20s of SIGINT")
	}
	if d := time.Since(interrupted); d > 10*time.Second {
		t.Errorf("stopping took %s", d)
	}
	if code := exitCodeQuiet(err); code != exitFailed || !strings.Contains(err.Error(), "run cancelled") {
		t.Fatalf("exit %d: %v, want %d and the run cancelled", code, err, exitFailed)
	}
	if !strings.Contains(stderr.String(), "interrupt: stopping; commands on hosts are cancelled and the journal is written") {
		t.Errorf("stderr does not say what happens: %q", stderr.String())
	}
	for n, pid := range pids {
		gone := false
		for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
			if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); !strings.HasPrefix(string(b), "sleep\x00120") {
				gone = true
				break
			}
		}
		if !gone {
			syscall.Kill(pid, syscall.SIGKILL) // only our own sleep, by PID
			t.Errorf("%s: the interrupted command (pid %d) still runs on the host", n, pid)
		}
	}
	j, _ := latestJournal(t, state, "slow")
	if j.Status != "cancelled" {
		t.Errorf("journal status %q, want cancelled", j.Status)
	}
	for _, hj := range j.Hosts {
		got := stepStatuses(j)[hj.Name]
		want := []string{"work/command=cancelled", "after/command=skipped"}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("journal %s: %v, want %v", hj.Name, got, want)
		}
		if _, err := os.Stat(filepath.Join(work, hj.Name+".done")); err == nil {
			t.Errorf("%s: the interrupted command ran to its end", hj.Name)
		}
	}

	// The re-run converges: everything the interrupted run did not do is
	// done, and a third run changes nothing.
	if err := os.Remove(slow); err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"applied", "unchanged"} {
		out, stderr, err := runCLI(t, args...)
		if err != nil {
			t.Fatalf("run %d after the interrupt: %v\n%s%s", i+2, err, out, stderr)
		}
		j, _ := latestJournal(t, state, "slow")
		for _, hj := range j.Hosts {
			got := stepStatuses(j)[hj.Name]
			if w := []string{"work/command=" + want, "after/command=" + want}; strings.Join(got, " ") != strings.Join(w, " ") || j.Status != "ok" {
				t.Errorf("run %d, %s: %v (%s), want %v", i+2, hj.Name, got, j.Status, w)
			}
		}
	}
	for _, n := range hosts {
		for _, f := range []string{n + ".done", n + ".after"} {
			if _, err := os.Stat(filepath.Join(work, f)); err != nil {
				t.Errorf("after the re-run: %v", err)
			}
		}
	}
}

// TestReplaceHostKeyNamesOneHost: a host whose recorded key no longer
// matches is refused, with or without --accept-new-host-keys, and the
// refusal names --replace-host-key HOST; the flag lets exactly the named
// host through (and records its key), while another mismatched host stays
// refused; naming a host the inventory does not have is bad input.
func TestReplaceHostKeyNamesOneHost(t *testing.T) {
	dir := t.TempDir()
	sshd, inv := loopbackCluster(t, dir)
	state := filepath.Join(dir, "state")
	pb := filepath.Join(dir, "noop.yaml")
	writeFile(t, pb, "name: noop\nplays:\n  - {hosts: all, steps: [{name: command, with: {readonly: \"true\", run: \"true\"}}]}\n", 0o644)
	run := func(extra ...string) (string, error) {
		out, stderr, err := runCLI(t, append([]string{"run", pb, "-i", inv, "--state-dir", state}, extra...)...)
		return out + stderr, err
	}
	if out, err := run("--accept-new-host-keys"); err != nil {
		t.Fatalf("first run: %v\n%s", err, out)
	}
	// m1 and m2 were "reinstalled": known_hosts now holds other keys for them.
	kh := filepath.Join(state, "clusters", "loop", "known_hosts")
	wrong := remotetest.NewHostKey(t).PublicKey()
	line := func(name string, key ssh.PublicKey) string { return knownHostsLine(sshd, name, key) }
	writeFile(t, kh, line("m1", wrong)+"\n"+line("m2", wrong)+"\n"+line("w1", sshd.HostKey)+"\n", 0o600)

	for _, extra := range [][]string{nil, {"--accept-new-host-keys"}} {
		_, err := run(extra...)
		if exitCodeQuiet(err) != exitFailed {
			t.Fatalf("%v: err %v, want a failed run", extra, err)
		}
		for _, want := range []string{"host m1: connect:", "host m2: connect:", "HOST KEY MISMATCH", "--replace-host-key m1", "--replace-host-key m2"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%v: error lacks %q: %v", extra, want, err)
			}
		}
		if strings.Contains(err.Error(), "host w1") {
			t.Errorf("w1's key is unchanged but it failed: %v", err)
		}
	}

	_, err := run("--replace-host-key", "m1", "--accept-new-host-keys")
	if exitCodeQuiet(err) != exitFailed || strings.Contains(err.Error(), "host m1") || !strings.Contains(err.Error(), "host m2: connect:") {
		t.Fatalf("with --replace-host-key m1: %v, want only m2 refused", err)
	}
	j, _ := latestJournal(t, state, "noop")
	for _, hj := range j.Hosts {
		if want := map[string]string{"m1": "ok", "m2": "unreachable", "w1": "ok"}[hj.Name]; hj.Status != want {
			t.Errorf("%s: %s, want %s", hj.Name, hj.Status, want)
		}
	}
	b, _ := os.ReadFile(kh)
	if !strings.Contains(string(b), line("m1", sshd.HostKey)) || strings.Contains(string(b), line("m1", wrong)) || !strings.Contains(string(b), line("m2", wrong)) {
		t.Errorf("known_hosts after replacing m1 only:\n%s", b)
	}
	// m1 now passes strict checking with its recorded new key.
	if _, err := run("--replace-host-key", "m2"); err != nil {
		t.Fatalf("after replacing m2 too: %v", err)
	}

	_, err = run("--replace-host-key", "nosuch")
	if exitCodeQuiet(err) != exitBadInput || !strings.Contains(err.Error(), `--replace-host-key "nosuch": no host of that name`) {
		t.Fatalf("unknown host: %v", err)
	}
}

// knownHostsLine is the known_hosts line for the loopback host name with key.
func knownHostsLine(sshd *remotetest.OpenSSH, name string, key ssh.PublicKey) string {
	return knownhosts.Line([]string{knownhosts.Normalize(fmt.Sprintf("%s:%d", sshd.Address(name), sshd.Port))}, key)
}

// TestReplaceHostKeyBeyondInstall: commands other than install/run/plan
// that dial hosts take --replace-host-key too. `check` (it needs no
// installed cluster) and `etcd backup` refuse m1's changed key, naming m1
// and the flag, with --accept-new-host-keys and with another host named;
// `check --replace-host-key m1` then connects to m1 and records its new
// key. Naming a host the inventory lacks is bad input before any dial.
func TestReplaceHostKeyBeyondInstall(t *testing.T) {
	dir := t.TempDir()
	sshd, inv := loopbackCluster(t, dir)
	state := filepath.Join(dir, "state")
	check := func(extra ...string) steps.CheckReport {
		t.Helper()
		out, stderr, err := runCLI(t, append([]string{"check", "-i", inv, "--state-dir", state, "-o", "json"}, extra...)...)
		// The loopback hosts share a machine-id, so check always fails;
		// a bad-input exit would mean the flag was not taken.
		if code := exitCodeQuiet(err); code != exitFailed {
			t.Fatalf("check %v: exit %d (%v), want %d\n%s%s", extra, code, err, exitFailed, out, stderr)
		}
		var rep steps.CheckReport
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("check %v: json output: %v\n%s", extra, err, out)
		}
		return rep
	}
	connectRow := func(rep steps.CheckReport, host string) (steps.CheckResult, bool) {
		for _, r := range rep.Results {
			if r.Host == host && r.Check == steps.CheckConnect {
				return r, true
			}
		}
		return steps.CheckResult{}, false
	}
	reached := func(rep steps.CheckReport, host string) bool {
		for _, r := range rep.Results {
			if r.Host == host && r.Check == steps.CheckMachineID {
				return true
			}
		}
		return false
	}

	rep := check("--accept-new-host-keys")
	for _, h := range []string{"m1", "m2", "w1"} {
		if r, failed := connectRow(rep, h); failed || !reached(rep, h) {
			t.Fatalf("first check did not reach %s: %+v", h, r)
		}
	}
	// m1 was "reinstalled": known_hosts holds another key for it.
	kh := filepath.Join(state, "clusters", "loop", "known_hosts")
	wrong := remotetest.NewHostKey(t).PublicKey()
	writeFile(t, kh, knownHostsLine(sshd, "m1", wrong)+"\n"+knownHostsLine(sshd, "m2", sshd.HostKey)+"\n"+knownHostsLine(sshd, "w1", sshd.HostKey)+"\n", 0o600)

	for _, extra := range [][]string{nil, {"--accept-new-host-keys"}, {"--replace-host-key", "m2"}} {
		rep := check(extra...)
		r, failed := connectRow(rep, "m1")
		if !failed || r.Status != steps.StatusFail || reached(rep, "m1") {
			t.Fatalf("check %v: m1's changed key was not refused: %+v", extra, rep.Results)
		}
		for _, want := range []string{"connect to m1", "HOST KEY MISMATCH", "--replace-host-key m1"} {
			if !strings.Contains(r.Reason, want) {
				t.Errorf("check %v: m1's refusal lacks %q: %s", extra, want, r.Reason)
			}
		}
		for _, h := range []string{"m2", "w1"} {
			if !reached(rep, h) {
				t.Errorf("check %v: %s's key is unchanged but it was not reached", extra, h)
			}
		}
	}

	// etcd backup dials the etcd member m1 and stops at its key.
	out, stderr, err := runCLI(t, "etcd", "backup", "-i", inv, "--state-dir", state, "--dir", filepath.Join(dir, "backups"), "--accept-new-host-keys")
	if code := exitCodeQuiet(err); code != exitFailed {
		t.Fatalf("etcd backup: exit %d (%v), want %d\n%s%s", code, err, exitFailed, out, stderr)
	}
	for _, want := range []string{"connect to m1", "HOST KEY MISMATCH", "--replace-host-key m1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("etcd backup: error lacks %q: %v", want, err)
		}
	}
	if b, _ := os.ReadFile(kh); !strings.Contains(string(b), knownHostsLine(sshd, "m1", wrong)) {
		t.Fatalf("a refused key changed known_hosts:\n%s", b)
	}

	rep = check("--replace-host-key", "m1")
	if r, failed := connectRow(rep, "m1"); failed || !reached(rep, "m1") {
		t.Fatalf("check --replace-host-key m1 did not reach m1: %+v", r)
	}
	b, _ := os.ReadFile(kh)
	if !strings.Contains(string(b), knownHostsLine(sshd, "m1", sshd.HostKey)) || strings.Contains(string(b), knownHostsLine(sshd, "m1", wrong)) {
		t.Errorf("known_hosts after check --replace-host-key m1:\n%s", b)
	}
	// The new key is recorded: strict checking passes without the flag.
	if r, failed := connectRow(check(), "m1"); failed {
		t.Errorf("m1 refused after its key was replaced: %+v", r)
	}

	for _, args := range [][]string{{"check"}, {"etcd", "backup"}} {
		_, _, err := runCLI(t, append(args, "-i", inv, "--state-dir", state, "--replace-host-key", "nosuch")...)
		if exitCodeQuiet(err) != exitBadInput || !strings.Contains(err.Error(), `--replace-host-key "nosuch": no host of that name`) || !strings.Contains(err.Error(), "e.g. --replace-host-key m1") {
			t.Errorf("%v --replace-host-key nosuch: %v, want bad input naming the flag, the value and an example", args, err)
		}
	}
}
