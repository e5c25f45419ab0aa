//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// checkEtcdBackupRestore is issue 9's backup/restore proof on an installed
// cluster (TestCerts' three masters): a scheduled snapshot runs on a member,
// `etcd backup` saves one on the operator's machine, a namespace deleted
// afterwards is back after `etcd restore`, and etcd and the API are healthy
// again. It stops the API while it runs, so it goes last.
func checkEtcdBackupRestore(t *testing.T, ctx context.Context, c *cpCluster) {
	first := c.lab.Machines[0].Name
	t.Run("scheduled snapshot on a member", func(t *testing.T) {
		for _, ms := range c.lab.Machines {
			if out := c.exec(t, ctx, ms.Name, "systemctl is-enabled kubewright-etcd-backup.timer; systemctl is-active kubewright-etcd-backup.timer"); out != "enabled\nactive\n" {
				t.Errorf("%s: backup timer %q, want enabled and active", ms.Name, out)
			}
		}
		c.exec(t, ctx, first, "systemctl start kubewright-etcd-backup.service")
		out := c.exec(t, ctx, first, "cd /var/backups/kubewright/etcd && ls etcd-*.db && sha256sum -c *.sha256")
		if !strings.Contains(out, ": OK") {
			t.Fatalf("scheduled snapshot on %s:\n%s", first, out)
		}
	})

	const ns = "kw-restore-check"
	if out, err := c.kubectl(t, ctx, "create", "namespace", ns); err != nil {
		t.Fatalf("create namespace: %v\n%s", err, out)
	}
	r := kw(t, ctx, c.stateDir, "-o", "json", "etcd", "backup", "-i", c.inv)
	if r.code != 0 {
		t.Fatalf("etcd backup exit %d:\n%s", r.code, r.out)
	}
	var snap struct {
		Path, SHA256, Member string
		Size                 int64
	}
	if err := json.Unmarshal([]byte(r.out), &snap); err != nil {
		t.Fatalf("etcd backup -o json: %v\n%s", err, r.out)
	}
	t.Logf("etcd backup: %s from %s, %d bytes, %s", snap.Path, snap.Member, snap.Size, r.duration.Round(time.Millisecond))
	t.Run("the snapshot and its checksum are on the operator's machine", func(t *testing.T) {
		cmd := exec.CommandContext(ctx, "sha256sum", "-c", filepath.Base(snap.Path)+".sha256")
		cmd.Dir = filepath.Dir(snap.Path)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("sha256sum -c: %v\n%s", err, out)
		}
		if out := c.exec(t, ctx, snap.Member, "ls -A /var/lib/kubewright/backup 2>/dev/null | wc -l"); strings.TrimSpace(out) != "0" {
			t.Errorf("the member kept its copy of the snapshot (%s files)", out)
		}
	})

	if out, err := c.kubectl(t, ctx, "delete", "namespace", ns, "--wait=true", "--timeout=2m"); err != nil {
		t.Fatalf("delete namespace: %v\n%s", err, out)
	}
	if out, err := c.kubectl(t, ctx, "get", "namespace", ns); err == nil {
		t.Fatalf("namespace %s still there after delete:\n%s", ns, out)
	}

	r = kw(t, ctx, c.stateDir, "etcd", "restore", "-i", c.inv, "--from", snap.Path, "--yes")
	t.Logf("etcd restore (%s):\n%s", r.duration.Round(time.Millisecond), r.out)
	if r.code != 0 {
		t.Fatalf("etcd restore exit %d", r.code)
	}
	t.Run("restore brings the deleted namespace back", func(t *testing.T) {
		if out, err := c.kubectl(t, ctx, "get", "namespace", ns, "-o", "jsonpath={.status.phase}"); err != nil || out != "Active" {
			t.Fatalf("namespace %s after restore: %q %v", ns, out, err)
		}
	})
	t.Run("etcd has three healthy members of the new cluster", func(t *testing.T) {
		out, err := c.etcdHealth(ctx, first)
		if err != nil || strings.Count(out, "is healthy") != 3 {
			t.Fatalf("etcdctl endpoint health --cluster:\n%s %v", out, err)
		}
		for _, ms := range c.lab.Machines {
			if out := c.exec(t, ctx, ms.Name, "ls -d /var/lib/etcd.before-restore-*/member | wc -l"); strings.TrimSpace(out) != "1" {
				t.Errorf("%s: previous data not kept (%s copies)", ms.Name, out)
			}
		}
	})
	t.Run("API and agents are back", func(t *testing.T) {
		if out, err := c.kubectl(t, ctx, "get", "--raw", "/readyz"); err != nil || strings.TrimSpace(out) != "ok" {
			t.Fatalf("readyz through the VIP: %q %v", out, err)
		}
		for _, ms := range c.lab.Machines {
			if out := c.exec(t, ctx, ms.Name, "systemctl is-active kube-apiserver kube-controller-manager kube-scheduler kubewright-agent || true"); out != "active\nactive\nactive\nactive\n" {
				t.Errorf("%s: units after restore:\n%s", ms.Name, out)
			}
		}
	})
	t.Run("re-running install afterwards changes nothing", func(t *testing.T) {
		r := kw(t, ctx, c.stateDir, "install", "-i", c.inv, "-o", "json")
		if r.code != 0 {
			t.Fatalf("install after restore exit %d:\n%s", r.code, r.out)
		}
		for _, line := range strings.Split(r.out, "\n") {
			var ev struct {
				Type    string          `json:"type"`
				Host    string          `json:"host"`
				Step    string          `json:"step"`
				Changes json.RawMessage `json:"changes"`
			}
			if json.Unmarshal([]byte(line), &ev) == nil && ev.Type == "step_apply" {
				t.Errorf("install after restore applied %s on %s: %s", ev.Step, ev.Host, ev.Changes)
			}
		}
	})
}
