package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kubewright/kubewright/installer/steps"
)

// startLoopbackSSHD starts the machine's real OpenSSH sshd listening on the
// given loopback addresses (one port for all) with a fresh host key and a
// client key allowed to log in as the current user. It returns the port and
// the client key path; the daemon is killed by PID at cleanup.
//
// TODO(lead): switch to remotetest.StartOpenSSH once installer/remote/remotetest
// provides it; this helper exists because it had not landed yet.
func startLoopbackSSHD(t *testing.T, addrs []string) (int, string) {
	t.Helper()
	sshd, err := exec.LookPath("sshd")
	if err != nil {
		sshd = "/usr/sbin/sshd"
	}
	if _, err := os.Stat(sshd); err != nil {
		t.Fatalf("OpenSSH sshd not found (%v): hack/install-deps.sh installs openssh-server", err)
	}
	dir := t.TempDir()
	for _, k := range []string{"host_key", "client_key"} {
		out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(dir, k)).CombinedOutput()
		if err != nil {
			t.Fatalf("ssh-keygen: %v: %s", err, out)
		}
	}
	pub, err := os.ReadFile(filepath.Join(dir, "client_key.pub"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), pub, 0o600); err != nil {
		t.Fatal(err)
	}
	// sshd refuses to start without its privilege-separation directory,
	// which the openssh-server package normally creates at boot.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatalf("create /run/sshd: %v", err)
	}
	l, err := net.Listen("tcp", addrs[0]+":0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	var cfg strings.Builder
	for _, a := range addrs {
		fmt.Fprintf(&cfg, "ListenAddress %s:%d\n", a, port)
	}
	fmt.Fprintf(&cfg, "HostKey %s\nAuthorizedKeysFile %s\nPidFile none\nStrictModes no\nUsePAM no\nPasswordAuthentication no\nPermitRootLogin prohibit-password\nLogLevel ERROR\n",
		filepath.Join(dir, "host_key"), filepath.Join(dir, "authorized_keys"))
	conf := filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(conf, []byte(cfg.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(sshd, "-D", "-e", "-f", conf)
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
	deadline := time.Now().Add(10 * time.Second)
	for _, a := range addrs {
		for {
			c, err := net.DialTimeout("tcp", fmt.Sprintf("%s:%d", a, port), time.Second)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("sshd did not listen on %s:%d: %v\n%s", a, port, err, stderr.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return port, filepath.Join(dir, "client_key")
}

// TestCheckAgainstLoopbackSSHD runs `kubewright check` over real SSH against
// three inventory hosts that are all this machine. They share one
// /etc/machine-id and hostname, which check must report as FAIL on every
// host: that is a real finding, exactly what a cloned VM image looks like.
func TestCheckAgainstLoopbackSSHD(t *testing.T) {
	addrs := []string{"127.0.1.1", "127.0.1.2", "127.0.1.3"}
	port, key := startLoopbackSSHD(t, addrs)
	user := "root"
	if os.Geteuid() != 0 {
		t.Fatal("this test logs in over SSH as root: run it as root (CI does)")
	}
	dir := t.TempDir()
	inv := filepath.Join(dir, "inventory.yaml")
	invText := fmt.Sprintf(`apiVersion: kubewright.io/v1alpha1
kind: Cluster
metadata:
  name: loop
spec:
  hostDefaults:
    user: %s
    port: %d
    keyFile: %s
  hosts:
    - {name: m1, address: %s}
    - {name: m2, address: %s}
    - {name: w1, address: %s}
  groups:
    masters: [m1]
    workers: [m2, w1]
  controlPlaneEndpoint:
    # A loopback VIP is (rightly) refused by validation; an IPv6 ULA VIP
    # with IPv4 masters is accepted and answers nothing here.
    vip: fd00:6b77::100
    interface: lo
`, user, port, key, addrs[0], addrs[1], addrs[2])
	if err := os.WriteFile(inv, []byte(invText), 0o600); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state")

	// Unknown host keys are refused without --accept-new-host-keys.
	out, _, err := runCLI(t, "check", "-i", inv, "--state-dir", state)
	if code := exitCodeQuiet(err); code != exitFailed {
		t.Fatalf("exit code %d (err %v), want %d\n%s", code, err, exitFailed, out)
	}
	for _, h := range []string{"m1", "m2", "w1"} {
		if !strings.Contains(out, h+"    connect") {
			t.Errorf("host %s: no connect failure row without --accept-new-host-keys:\n%s", h, out)
		}
	}

	out, _, err = runCLI(t, "check", "-i", inv, "--state-dir", state, "--accept-new-host-keys", "-o", "json")
	if code := exitCodeQuiet(err); code != exitFailed {
		t.Fatalf("exit code %d (err %v), want %d (shared machine-id must fail)\n%s", code, err, exitFailed, out)
	}
	var rep steps.CheckReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("json output: %v\n%s", err, out)
	}
	row := func(host, check string) steps.CheckResult {
		for _, r := range rep.Results {
			if r.Host == host && r.Check == check {
				return r
			}
		}
		t.Fatalf("no %s row for %s in\n%s", check, host, out)
		return steps.CheckResult{}
	}
	for _, h := range []string{"m1", "m2", "w1"} {
		if r := row(h, steps.CheckMachineID); r.Status != steps.StatusFail || !strings.Contains(r.Reason, "is shared with") {
			t.Errorf("%s machine-id: %+v", h, r)
		}
		if r := row(h, steps.CheckHostname); r.Status != steps.StatusFail {
			t.Errorf("%s hostname: %+v", h, r)
		}
		if r := row(h, steps.CheckSudo); r.Status != steps.StatusPass {
			t.Errorf("%s sudo (logged in as root): %+v", h, r)
		}
		if r := row(h, steps.CheckAddress); r.Status != steps.StatusPass || !strings.Contains(r.Reason, "loopback") {
			t.Errorf("%s address: %+v", h, r)
		}
		if r := row(h, steps.CheckClock); r.Status != steps.StatusPass {
			t.Errorf("%s clock (same machine): %+v", h, r)
		}
	}
	if r := row("m1", steps.CheckVIPInterface); r.Status != steps.StatusPass || r.Reason != "lo present" {
		t.Errorf("m1 vip-interface: %+v", r)
	}
	if _, err := os.Stat(filepath.Join(state, "clusters", "loop", "known_hosts")); err != nil {
		t.Errorf("host keys not recorded in the cluster's known_hosts: %v", err)
	}

	// The text table has the same verdicts, one row per host × check.
	out, _, err = runCLI(t, "check", "-i", inv, "--state-dir", state)
	if exitCodeQuiet(err) != exitFailed || err.Error() != fmt.Sprintf("preflight failed: %d failed checks on 3 of 3 hosts", rep.Summary.Fail) {
		t.Fatalf("err = %v", err)
	}
	t.Logf("table:\n%s", out)
	lines := strings.Split(out, "\n")
	if !strings.HasPrefix(lines[0], "HOST") || !strings.Contains(out, "unique-machine-id  FAIL") ||
		!strings.Contains(out, "3 hosts: ") || !strings.Contains(out, "fix the failed checks before installing") {
		t.Errorf("table:\n%s", out)
	}
}
