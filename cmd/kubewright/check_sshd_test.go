package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubewright/kubewright/installer/remote/remotetest"
	"github.com/kubewright/kubewright/installer/steps"
)

// loopbackCluster starts a real OpenSSH sshd serving three inventory hosts
// on 127.0.1.1-3 (all of them this machine) and writes an inventory for them
// into dir: m1 a master, m2 and w1 workers. It logs in as the user running
// the test, which must be root so steps and sudo checks act as on a real
// host (CI runs as root).
func loopbackCluster(t *testing.T, dir string) (*remotetest.OpenSSH, string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test logs in over SSH as root: run it as root (CI does)")
	}
	sshd := remotetest.StartOpenSSH(t, remotetest.WithHostNames("m1", "m2", "w1"))
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
`, sshd.User, sshd.Port, sshd.ClientKey.Path, sshd.Address("m1"), sshd.Address("m2"), sshd.Address("w1"))
	if err := os.WriteFile(inv, []byte(invText), 0o600); err != nil {
		t.Fatal(err)
	}
	return sshd, inv
}

// TestCheckAgainstLoopbackSSHD runs `kubewright check` over real SSH against
// three inventory hosts that are all this machine. They share one
// /etc/machine-id and hostname, which check must report as FAIL on every
// host: that is a real finding, exactly what a cloned VM image looks like.
func TestCheckAgainstLoopbackSSHD(t *testing.T) {
	dir := t.TempDir()
	_, inv := loopbackCluster(t, dir)
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
