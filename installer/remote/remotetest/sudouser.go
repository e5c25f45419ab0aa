package remotetest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// SudoUser is a throwaway, unprivileged system account that may become root
// only through sudo with its password: the way most operators reach their
// servers. It exists so the sudo path is proven against the real sudo, PAM and
// sshd, not only against the in-process server's fake sudo script.
type SudoUser struct {
	Name     string
	UID      int
	Home     string
	Password string
	// Key logs in as the user; its public half is in AuthorizedKeys.
	Key            *ClientKey
	AuthorizedKeys string
	SudoersFile    string
}

// RequireSudoUserHost checks what NewSudoUser needs: root (to create users
// and write /etc/sudoers.d) and the sudo, visudo and useradd programs. It
// fails the test in CI (env CI set), where these tests must run, and skips it
// elsewhere.
func RequireSudoUserHost(t testing.TB) {
	t.Helper()
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root (run the tests as root)")
	}
	for _, p := range []string{"sudo", "visudo", "useradd", "userdel", "chpasswd"} {
		if _, err := exec.LookPath(p); err != nil {
			missing = append(missing, p+" (apt-get install -y sudo passwd)")
		}
	}
	if len(missing) == 0 {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("real-sudo tests need %s, and CI is set", strings.Join(missing, ", "))
	}
	t.Skipf("real-sudo tests need %s", strings.Join(missing, ", "))
}

// NewSudoUser creates a system user with a random name and password, an
// authorized key, and a sudoers entry that requires the password on every
// use (timestamp_timeout=0, so one correct password never vouches for a
// later wrong one). The entry is checked with `visudo -cf` before it is
// installed. Everything is removed in t.Cleanup: the user's processes (by
// PID), the sudoers file, the account and its home.
//
// Register it before StartOpenSSH, passing SSHDConfig() to it, so that sshd
// (and with it the user's sessions) is stopped before the user is removed.
func NewSudoUser(t testing.TB) *SudoUser {
	t.Helper()
	RequireSudoUserHost(t)
	u := &SudoUser{Name: "kwt" + randomHex(t, 4), Password: "kw-sudo-" + randomHex(t, 12), Key: NewClientKey(t, "")}

	home, err := os.MkdirTemp("", "kubewright-sudo-home-")
	if err != nil {
		t.Fatalf("remotetest: home for %s: %v", u.Name, err)
	}
	u.Home = home
	t.Cleanup(func() { os.RemoveAll(home) })

	// --no-create-home: the home is our temp dir, so nothing lands in /home.
	if out, err := exec.Command("useradd", "--system", "--no-create-home", "--home-dir", home,
		"--shell", "/bin/sh", "--user-group", u.Name).CombinedOutput(); err != nil {
		t.Fatalf("remotetest: useradd %s: %v\n%s", u.Name, err, out)
	}
	t.Cleanup(func() { u.remove(t) })
	pw, err := user.Lookup(u.Name)
	if err != nil {
		t.Fatalf("remotetest: look up %s: %v", u.Name, err)
	}
	u.UID, _ = strconv.Atoi(pw.Uid)
	gid, _ := strconv.Atoi(pw.Gid)

	// chpasswd reads "name:password" on stdin: the password is never an argument.
	cmd := exec.Command("chpasswd")
	cmd.Stdin = strings.NewReader(u.Name + ":" + u.Password + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("remotetest: chpasswd %s: %v\n%s", u.Name, err, out)
	}

	sshDir := filepath.Join(home, ".ssh")
	u.AuthorizedKeys = filepath.Join(sshDir, "authorized_keys")
	if err := os.MkdirAll(sshDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(u.AuthorizedKeys, ssh.MarshalAuthorizedKey(u.Key.Public), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{home, sshDir, u.AuthorizedKeys} {
		if err := os.Chown(p, u.UID, gid); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(home, 0o755); err != nil {
		t.Fatal(err)
	}

	// sudo ignores files in sudoers.d whose names contain a dot or end in ~.
	u.SudoersFile = "/etc/sudoers.d/kubewright-test-" + u.Name
	entry := fmt.Sprintf("# kubewright test user, removed when the test ends\nDefaults:%s timestamp_timeout=0\n%s ALL=(ALL:ALL) ALL\n", u.Name, u.Name)
	staged := filepath.Join(t.TempDir(), "sudoers")
	if err := os.WriteFile(staged, []byte(entry), 0o440); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("visudo", "-cf", staged).CombinedOutput(); err != nil {
		t.Fatalf("remotetest: visudo -cf refused the test entry: %v\n%s", err, out)
	}
	if err := os.MkdirAll(filepath.Dir(u.SudoersFile), 0o750); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.Remove(u.SudoersFile); err != nil && !os.IsNotExist(err) {
			t.Errorf("remotetest: remove %s: %v", u.SudoersFile, err)
		}
	})
	if err := os.WriteFile(u.SudoersFile, []byte(entry), 0o440); err != nil {
		t.Fatalf("remotetest: install %s: %v", u.SudoersFile, err)
	}
	// The whole configuration must still parse, or sudo stops working for
	// everyone on this machine.
	if out, err := exec.Command("visudo", "-c").CombinedOutput(); err != nil {
		os.Remove(u.SudoersFile)
		t.Fatalf("remotetest: sudo configuration invalid with %s: %v\n%s", u.SudoersFile, err, out)
	}
	return u
}

// SSHDConfig are the sshd_config lines (for WithSSHDConfig) that let the user
// log in with Key: sshd reads authorized_keys as the user, who cannot read
// the test's root-only one.
func (u *SudoUser) SSHDConfig() []string {
	return []string{"Match User " + u.Name, "AuthorizedKeysFile " + u.AuthorizedKeys}
}

// remove ends the user's remaining processes (by PID) and deletes the account.
func (u *SudoUser) remove(t testing.TB) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		pids := processesOf(u.UID)
		if len(pids) == 0 {
			break
		}
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		if time.Now().After(deadline) {
			t.Errorf("remotetest: processes of %s survive SIGKILL: %v", u.Name, pids)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if out, err := exec.Command("userdel", u.Name).CombinedOutput(); err != nil {
		t.Errorf("remotetest: userdel %s: %v\n%s", u.Name, err, out)
	}
}

// processesOf lists the processes whose real uid is uid, from /proc.
func processesOf(uid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "status"))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "Uid:" {
				if id, _ := strconv.Atoi(f[1]); id == uid {
					out = append(out, pid)
				}
				break
			}
		}
	}
	return out
}

func randomHex(t testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("remotetest: random: %v", err)
	}
	return hex.EncodeToString(b)
}
