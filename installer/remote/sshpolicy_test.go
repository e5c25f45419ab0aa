package remote_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/kubewright/kubewright/installer/remote"
	"github.com/kubewright/kubewright/installer/remote/remotetest"
)

// TestReplaceHostKeyOnlyWhenAsked: a changed host key is refused by default
// and with AcceptNewHostKeys; ReplaceHostKey (the CLI's --replace-host-key
// NAME) accepts it for that host only, swaps exactly that host's entry in
// known_hosts (other hosts, other patterns on a shared line, comments and
// @revoked lines stay) and logs both fingerprints; afterwards the new key
// is what a strict dial checks against. A revoked key is refused even then.
func TestReplaceHostKeyOnlyWhenAsked(t *testing.T) {
	srv := remotetest.NewServer(t)
	other := remotetest.NewServer(t)
	pattern := knownhosts.Normalize(srv.Addr())
	oldKey := remotetest.NewHostKey(t).PublicKey()
	revoked := remotetest.NewHostKey(t).PublicKey()
	kh := filepath.Join(t.TempDir(), "known_hosts")
	keep := []string{
		"# kubewright's known_hosts",
		other.KnownHostsLine(),
		knownhosts.Line([]string{"[192.0.2.7]:22"}, oldKey),
		"@revoked " + knownhosts.Line([]string{"[192.0.2.8]:22"}, revoked),
	}
	shared := knownhosts.Line([]string{pattern, "[192.0.2.9]:22"}, oldKey)
	if err := os.WriteFile(kh, []byte(strings.Join(append(keep, shared), "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := srv.Config("master1")
	cfg.KnownHostsFile = kh

	for _, acceptNew := range []bool{false, true} {
		cfg.AcceptNewHostKeys = acceptNew
		_, err := remote.Dial(context.Background(), cfg)
		var hk *remote.HostKeyError
		if !errors.As(err, &hk) || !hk.Mismatch {
			t.Fatalf("accept-new=%v: err = %v, want a mismatch", acceptNew, err)
		}
		if !strings.Contains(err.Error(), "--replace-host-key master1") {
			t.Errorf("the refusal does not name the flag and host: %v", err)
		}
	}

	cfg.AcceptNewHostKeys = false
	cfg.ReplaceHostKey = true
	var logs logBuf
	cfg.Logger = debugLogger(&logs)
	h := dial(t, cfg)
	mustExec(t, h, "true")
	b, _ := os.ReadFile(kh)
	got := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	want := append(append([]string(nil), keep...), knownhosts.Line([]string{"[192.0.2.9]:22"}, oldKey), srv.KnownHostsLine())
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("known_hosts after the replacement:\n%s\nwant:\n%s", b, strings.Join(want, "\n"))
	}
	if fi, _ := os.Stat(kh); fi.Mode().Perm() != 0o600 {
		t.Errorf("known_hosts mode %v, want 0600", fi.Mode())
	}
	for _, w := range []string{"REPLACED changed host key", ssh.FingerprintSHA256(oldKey), ssh.FingerprintSHA256(srv.HostKey())} {
		if !strings.Contains(logs.String(), w) {
			t.Errorf("log lacks %q:\n%s", w, logs.String())
		}
	}
	cfg.ReplaceHostKey, cfg.Logger = false, nil
	dial(t, cfg) // the new key is now the recorded one

	// A revoked key is never accepted, whatever the flags.
	bad := remotetest.NewServer(t)
	line := "@revoked " + knownhosts.Line([]string{knownhosts.Normalize(bad.Addr())}, bad.HostKey())
	if err := os.WriteFile(kh, []byte(line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bcfg := bad.Config("master2")
	bcfg.KnownHostsFile, bcfg.ReplaceHostKey, bcfg.AcceptNewHostKeys = kh, true, true
	if _, err := remote.Dial(context.Background(), bcfg); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("dial to a host with a revoked key: %v", err)
	}
	if b, _ := os.ReadFile(kh); string(b) != line+"\n" {
		t.Errorf("known_hosts changed for a revoked key:\n%s", b)
	}
}

// TestNoForwardingRequested: whatever kubewright does on a host (commands,
// sudo with a password, uploads, downloads, with keys from an ssh-agent),
// it never asks for agent forwarding, X11, a pty or a remote port forward,
// so a compromised host can use neither the operator's agent nor a
// terminal to reach further.
func TestNoForwardingRequested(t *testing.T) {
	srv := remotetest.NewServer(t, remotetest.WithSudo("pw-3c1f"))
	cfg := srv.Config("node1")
	cfg.UseAgent = true
	cfg.AgentSocket = startAgent(t, &cfg)
	cfg.KeyFile = ""
	h := dial(t, cfg)
	ctx := context.Background()
	mustExec(t, h, "echo hi")
	mustExec(t, h, "id -u", remote.WithSudo())
	dst := filepath.Join(srv.Dir(), "f")
	if _, err := h.Upload(ctx, strings.NewReader("x"), dst, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Upload(ctx, strings.NewReader("y"), dst, 0o600, remote.UploadAsRoot()); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Download(ctx, dst); err != nil {
		t.Fatal(err)
	}
	reqs := srv.Requests()
	sawExec, sawSFTP := false, false
	for _, r := range reqs {
		switch r {
		case "session:exec":
			sawExec = true
		case "session:subsystem":
			sawSFTP = true
		case "session:env", "session:signal", "global:keepalive@openssh.com":
		default:
			t.Errorf("client sent %s", r)
		}
	}
	if !sawExec || !sawSFTP {
		t.Fatalf("the server saw no exec or sftp request (%v): the check proved nothing", reqs)
	}
}
