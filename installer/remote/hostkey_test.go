package remote_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/kubewright/kubewright/installer/remote"
	"github.com/kubewright/kubewright/installer/remote/remotetest"
)

// seededKey gives a host key whose fingerprint never changes, for goldens.
func seededKey(t *testing.T, seed byte) ssh.Signer {
	t.Helper()
	s, err := ssh.NewSignerFromKey(ed25519.NewKeyFromSeed(bytesOf(seed, ed25519.SeedSize)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func bytesOf(b byte, n int) []byte {
	out := make([]byte, n)
	for i := range out {
		out[i] = b
	}
	return out
}

func TestHostKeyMismatchIsRefused(t *testing.T) {
	srv := remotetest.NewServer(t, remotetest.WithHostKey(seededKey(t, 1)))
	recorded := seededKey(t, 2).PublicKey()
	kh := filepath.Join(t.TempDir(), "known_hosts")
	line := knownhosts.Line([]string{knownhosts.Normalize(srv.Addr())}, recorded) + "\n"
	if err := os.WriteFile(kh, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, accept := range []bool{false, true} {
		t.Run("accept-new="+strconv.FormatBool(accept), func(t *testing.T) {
			cfg := srv.Config("master1")
			cfg.KnownHostsFile = kh
			cfg.AcceptNewHostKeys = accept
			_, err := remote.Dial(context.Background(), cfg)
			var hk *remote.HostKeyError
			if !errors.As(err, &hk) || !hk.Mismatch {
				t.Fatalf("err = %v, want a host key mismatch", err)
			}
			msg := err.Error()
			for _, want := range []string{
				"connect to master1 (" + srv.Addr() + "):",
				ssh.FingerprintSHA256(srv.HostKey()),
				ssh.FingerprintSHA256(recorded),
				`ssh-keygen -f "` + kh + `" -R "[127.0.0.1]:` + strconv.Itoa(srv.Port()) + `"`,
			} {
				if !strings.Contains(msg, want) {
					t.Errorf("message lacks %q:\n%s", want, msg)
				}
			}
			// Stable rendering: replace the random parts.
			norm := strings.NewReplacer(kh, "KNOWN_HOSTS", strconv.Itoa(srv.Port()), "PORT").Replace(msg)
			golden(t, "hostkey_mismatch", norm+"\n")
			if b, _ := os.ReadFile(kh); string(b) != line {
				t.Errorf("known_hosts modified on mismatch:\n%s", b)
			}
			if srv.Stats().Connections != 0 {
				t.Errorf("server authenticated a client that refused its key")
			}
		})
	}
}

// TestHostKeyMismatchOutsideInventory: a hop the inventory knows only by
// address (an external bastion) cannot be named by --replace-host-key, so
// its mismatch message offers only the known_hosts fix.
func TestHostKeyMismatchOutsideInventory(t *testing.T) {
	srv := remotetest.NewServer(t, remotetest.WithHostKey(seededKey(t, 1)))
	kh := filepath.Join(t.TempDir(), "known_hosts")
	line := knownhosts.Line([]string{knownhosts.Normalize(srv.Addr())}, seededKey(t, 2).PublicKey()) + "\n"
	if err := os.WriteFile(kh, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := srv.Config(srv.Addr())
	cfg.KnownHostsFile = kh
	cfg.NotInInventory = true
	_, err := remote.Dial(context.Background(), cfg)
	var hk *remote.HostKeyError
	if !errors.As(err, &hk) || !hk.Mismatch {
		t.Fatalf("err = %v, want a host key mismatch", err)
	}
	msg := err.Error()
	if strings.Contains(msg, "--replace-host-key") {
		t.Errorf("message offers --replace-host-key for a host outside the inventory:\n%s", msg)
	}
	if want := `then remove the old key with: ssh-keygen -f "` + kh + `" -R `; !strings.Contains(msg, want) {
		t.Errorf("message lacks %q:\n%s", want, msg)
	}
}

func TestUnknownHostKey(t *testing.T) {
	srv := remotetest.NewServer(t, remotetest.WithHostKey(seededKey(t, 3)))
	kh := filepath.Join(t.TempDir(), "state", "known_hosts") // dir does not exist yet
	cfg := srv.Config("node1")
	cfg.KnownHostsFile = kh

	_, err := remote.Dial(context.Background(), cfg)
	var hk *remote.HostKeyError
	if !errors.As(err, &hk) || hk.Mismatch {
		t.Fatalf("err = %v, want unknown host key", err)
	}
	norm := strings.NewReplacer(kh, "KNOWN_HOSTS", strconv.Itoa(srv.Port()), "PORT").Replace(err.Error())
	golden(t, "hostkey_unknown", norm+"\n")
	if _, err := os.Stat(kh); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("known_hosts written without AcceptNewHostKeys")
	}

	cfg.AcceptNewHostKeys = true
	var logs logBuf
	cfg.Logger = debugLogger(&logs)
	h := dial(t, cfg)
	mustExec(t, h, "true")
	b, err := os.ReadFile(kh)
	if err != nil || strings.TrimSpace(string(b)) != srv.KnownHostsLine() {
		t.Fatalf("known_hosts = %q, %v; want %q", b, err, srv.KnownHostsLine())
	}
	if !strings.Contains(logs.String(), "recorded new host key") || !strings.Contains(logs.String(), ssh.FingerprintSHA256(srv.HostKey())) {
		t.Errorf("recording not logged: %s", logs.String())
	}

	// Now known: a strict dial succeeds and does not append again.
	cfg.AcceptNewHostKeys = false
	dial(t, cfg)
	b2, _ := os.ReadFile(kh)
	if string(b2) != string(b) {
		t.Errorf("known_hosts changed on a known host: %q", b2)
	}
}

// TestAcceptNewConcurrently records many hosts into one file at once.
func TestAcceptNewConcurrently(t *testing.T) {
	kh := filepath.Join(t.TempDir(), "known_hosts")
	key := remotetest.NewClientKey(t, "")
	const n = 20
	servers := make([]*remotetest.Server, n)
	for i := range servers {
		servers[i] = remotetest.NewServer(t, remotetest.WithClientKey(key))
	}
	errs := make(chan error, n)
	for i, s := range servers {
		go func() {
			cfg := s.Config("n" + strconv.Itoa(i))
			cfg.KnownHostsFile, cfg.AcceptNewHostKeys = kh, true
			h, err := remote.Dial(context.Background(), cfg)
			if err == nil {
				h.Close()
			}
			errs <- err
		}()
	}
	for range servers {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	b, _ := os.ReadFile(kh)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != n {
		t.Fatalf("known_hosts has %d lines, want %d:\n%s", len(lines), n, b)
	}
	for _, s := range servers {
		if !strings.Contains(string(b), s.KnownHostsLine()+"\n") {
			t.Errorf("missing or torn line for %s", s.Addr())
		}
	}
}
