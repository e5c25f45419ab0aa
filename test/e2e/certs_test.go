//go:build e2e

// End-to-end test of `kubewright certs check` and `certs renew` on three lab
// masters: renew re-issues every leaf, rolls them out one host at a time,
// and the API through the VIP answers throughout.
package e2e

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubewright/kubewright/installer/remote"
)

// certSerial reads a PEM certificate on a machine and returns its serial.
func certSerial(t *testing.T, ctx context.Context, c *cpCluster, machine, path string) string {
	t.Helper()
	data := c.exec(t, ctx, machine, "cat "+path)
	block, _ := pem.Decode([]byte(data))
	if block == nil {
		t.Fatalf("%s:%s is not PEM", machine, path)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatalf("%s:%s: %v", machine, path, err)
	}
	return cert.SerialNumber.String()
}

func TestCerts(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), controlPlaneTimeout)
	defer cancel()
	m, l := newLab(t, ctx, "cert", 3, 0)
	stateDir := filepath.Dir(filepath.Dir(m.Dir(l.Name)))
	c := &cpCluster{m: m, lab: l, stateDir: stateDir, inv: l.Inventory, hosts: map[string]remote.Host{}, addrs: map[string]string{}}
	defer c.close()
	t.Cleanup(func() {
		if t.Failed() {
			c.dump(t)
		}
	})
	if r := kw(t, ctx, c.stateDir, "install", "-i", c.inv); r.code != 0 {
		t.Fatalf("install exit %d:\n%s", r.code, r.out)
	}
	c.connect(t, ctx)

	t.Run("check lists every certificate and passes", func(t *testing.T) {
		r := kw(t, ctx, c.stateDir, "certs", "check", "-i", c.inv)
		if r.code != 0 {
			t.Fatalf("certs check exit %d:\n%s", r.code, r.out)
		}
		for _, ms := range l.Machines {
			if !strings.Contains(r.out, ms.Name) {
				t.Errorf("check does not list %s's certificates:\n%s", ms.Name, r.out)
			}
		}
		for _, want := range []string{"/etc/kubernetes/pki/apiserver.crt", "/etc/kubernetes/pki/etcd/server.crt", "etcd-ca"} {
			if !strings.Contains(r.out, want) {
				t.Errorf("check output lacks %s", want)
			}
		}
		// A window longer than a leaf's life makes every leaf a problem.
		if r := kw(t, ctx, c.stateDir, "certs", "check", "-i", c.inv, "--warn-within", "9000h"); r.code != 1 {
			t.Errorf("check with a 9000h window: exit %d, want 1:\n%s", r.code, r.out)
		}
	})

	paths := []string{"/etc/kubernetes/pki/apiserver.crt", "/etc/kubernetes/pki/etcd/server.crt", "/etc/kubernetes/pki/etcd/peer.crt"}
	before := map[string]string{}
	for _, ms := range l.Machines {
		for _, p := range paths {
			before[ms.Name+":"+p] = certSerial(t, ctx, c, ms.Name, p)
		}
	}

	// Read from the API through the VIP every 250ms for the whole renew.
	stopPoll := c.pollAPI(t, ctx, 250*time.Millisecond)
	r := kw(t, ctx, c.stateDir, "certs", "renew", "-i", c.inv)
	polls, failures := stopPoll()
	t.Logf("certs renew took %s; API polled %d times through the VIP, %d failures", r.duration.Round(time.Millisecond), polls, len(failures))
	if r.code != 0 {
		t.Fatalf("certs renew exit %d:\n%s", r.code, r.out)
	}
	t.Logf("certs renew output:\n%s", r.out)

	t.Run("renewed and restarted components are reported", func(t *testing.T) {
		for _, want := range []string{"renewed", "apiserver", "etcd-server", "restarted:", "etcd.service", "kube-apiserver.service"} {
			if !strings.Contains(r.out, want) {
				t.Errorf("renew output lacks %q", want)
			}
		}
	})
	t.Run("every master serves the renewed certificates", func(t *testing.T) {
		for _, ms := range l.Machines {
			for _, p := range paths {
				if got := certSerial(t, ctx, c, ms.Name, p); got == before[ms.Name+":"+p] {
					t.Errorf("%s:%s still has serial %s", ms.Name, p, got)
				}
			}
			// The running apiserver, not only the file, must use the new cert.
			served := c.exec(t, ctx, ms.Name, "echo | openssl s_client -connect 127.0.0.1:6443 2>/dev/null | openssl x509 -noout -serial")
			file := c.exec(t, ctx, ms.Name, "openssl x509 -noout -serial -in /etc/kubernetes/pki/apiserver.crt")
			if strings.TrimSpace(served) != strings.TrimSpace(file) {
				t.Errorf("%s: apiserver serves %s, file has %s (not restarted?)", ms.Name, served, file)
			}
		}
	})
	t.Run("API answered through the VIP throughout", func(t *testing.T) {
		if polls < 10 {
			t.Fatalf("only %d polls during renew", polls)
		}
		if len(failures) > 0 {
			t.Errorf("%d of %d reads through the VIP failed:\n%s", len(failures), polls, strings.Join(failures, "\n"))
		}
	})
	t.Run("etcd has three healthy members", func(t *testing.T) {
		out, err := c.etcdHealth(ctx, l.Machines[0].Name)
		if err != nil || strings.Count(out, "is healthy") != 3 {
			t.Fatalf("etcdctl endpoint health --cluster:\n%s %v", out, err)
		}
	})
	t.Run("check passes and the renewed admin kubeconfig works", func(t *testing.T) {
		if r := kw(t, ctx, c.stateDir, "certs", "check", "-i", c.inv); r.code != 0 {
			t.Fatalf("certs check after renew: exit %d\n%s", r.code, r.out)
		}
		if _, err := os.Stat(c.adminConfig(t)); err != nil {
			t.Fatal(err)
		}
		if out, err := c.kubectl(t, ctx, "get", "--raw", "/readyz"); err != nil || strings.TrimSpace(out) != "ok" {
			t.Fatalf("renewed admin.conf through the VIP: %q %v", out, err)
		}
	})
	checkEtcdBackupRestore(t, ctx, c)
}
