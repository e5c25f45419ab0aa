package steps

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubewright/kubewright/installer/engine"
	"github.com/kubewright/kubewright/installer/steps/stepkit/stepkittest"
)

// restoreTarget is member m1 of clusterWith under a temp root, with fake
// systemctl (logging its arguments) and etcdutl (logging its arguments and
// writing a member directory into --data-dir), and a snapshot to restore.
func restoreTarget(t *testing.T, etcdutl string) (*engine.Target, *stepkittest.Host, string) {
	t.Helper()
	tg, h, root := stepkittest.NewTarget(t, "m1", nil)
	tg.Cluster = clusterWith(nil)
	tg.Inv = &tg.Cluster.Spec.Hosts[0]
	log := filepath.Join(root, "calls")
	stepkittest.FakeTool(t, root, "systemctl", `echo "systemctl $*" >> "$LOG"`)
	if etcdutl != "" {
		stepkittest.FakeTool(t, root, "etcdutl", etcdutl)
	}
	h.Env = []string{"PATH=" + filepath.Join(root, "bin") + ":/usr/bin:/bin", "LOG=" + log}
	snap := filepath.Join(t.TempDir(), "etcd-t.db")
	if err := os.WriteFile(snap, []byte("snapshot bytes"), 0o600); err != nil {
		t.Fatal(err)
	}
	tg.Shared = engine.NewSharedData()
	tg.Shared.Set(SharedEtcdSnapshot, snap)
	tg.Shared.Set(SharedEtcdRestoreID, "20261202T030405Z")
	return tg, h, root
}

// goodEtcdutl restores like etcdutl: refuses an existing data dir, writes
// member/ from the snapshot.
const goodEtcdutl = `echo "etcdutl $*" >> "$LOG"
snap=$3; dd=
while [ $# -gt 0 ]; do [ "$1" = --data-dir ] && dd=$2; shift; done
[ -e "$dd" ] && { echo "data-dir $dd exists" >&2; exit 1; }
mkdir -p "$dd/member/snap" && cp "$snap" "$dd/member/snap/db"`

func TestEtcdRestoreKeepsOldDataAndRestores(t *testing.T) {
	tg, _, root := restoreTarget(t, goodEtcdutl)
	stepkittest.WriteFile(t, root, "/var/lib/etcd/member/snap/db", "old data", 0o600)
	ctx := context.Background()
	plan, err := EtcdRestore{}.Plan(ctx, tg)
	if err != nil {
		t.Fatal(err)
	}
	var ps []string
	for _, c := range plan {
		ps = append(ps, c.String())
	}
	if got := strings.Join(ps, "; "); !strings.Contains(got, "move") || !strings.Contains(got, ".before-restore-20261202T030405Z") || !strings.Contains(got, "etcd-t.db") {
		t.Errorf("plan %q does not say the old data is moved aside and what is restored", got)
	}
	if err := (EtcdRestore{}).Apply(ctx, tg, plan); err != nil {
		t.Fatal(err)
	}
	if got, _ := stepkittest.ReadFile(t, root, "/var/lib/etcd.before-restore-20261202T030405Z/member/snap/db"); got != "old data" {
		t.Errorf("old data not kept: %q", got)
	}
	if got, _ := stepkittest.ReadFile(t, root, "/var/lib/etcd/member/snap/db"); got != "snapshot bytes" {
		t.Errorf("restored data %q, want the snapshot", got)
	}
	if fi, err := os.Stat(filepath.Join(root, "/var/lib/etcd")); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("data dir mode %v (%v), want 0700", fi.Mode(), err)
	}
	if left, _ := os.ReadDir(filepath.Join(root, etcdRestoreDir)); len(left) != 0 {
		t.Errorf("uploaded snapshot left on the member: %v", left)
	}
	calls, _ := stepkittest.ReadFile(t, root, "/calls")
	for _, want := range []string{
		"systemctl stop etcd.service",
		"--name m1",
		"--initial-cluster m1=https://10.0.0.11:2380,m2=https://10.0.0.12:2380",
		"--initial-cluster-token kubewright-t-restore-20261202T030405Z",
		"--initial-advertise-peer-urls https://10.0.0.11:2380",
	} {
		if !strings.Contains(calls, want) {
			t.Errorf("calls lack %q:\n%s", want, calls)
		}
	}
	if strings.Index(calls, "systemctl stop") > strings.Index(calls, "etcdutl") {
		t.Errorf("etcd restored before it was stopped:\n%s", calls)
	}

	// A second attempt of the same restore (after a failure elsewhere) keeps
	// the first copy of the old data and replaces only the restored dir.
	stepkittest.WriteFile(t, root, "/var/lib/etcd/member/partial", "from the failed attempt", 0o600)
	if err := (EtcdRestore{}).Apply(ctx, tg, plan); err != nil {
		t.Fatal(err)
	}
	if got, _ := stepkittest.ReadFile(t, root, "/var/lib/etcd.before-restore-20261202T030405Z/member/snap/db"); got != "old data" {
		t.Errorf("second attempt lost the kept data: %q", got)
	}
	if _, ok := stepkittest.ReadFile(t, root, "/var/lib/etcd/member/partial"); ok {
		t.Error("second attempt kept the failed attempt's files")
	}
}

func TestEtcdRestoreErrors(t *testing.T) {
	ctx := context.Background()
	t.Run("no etcdutl on the host", func(t *testing.T) {
		tg, _, _ := restoreTarget(t, "")
		_, err := EtcdRestore{}.Plan(ctx, tg)
		if err == nil || !strings.Contains(err.Error(), "m1 has no etcdutl") || !strings.Contains(err.Error(), "kubewright install") {
			t.Fatalf("err %v, want the host and the fix", err)
		}
	})
	t.Run("not started by etcd restore", func(t *testing.T) {
		tg, _, _ := restoreTarget(t, goodEtcdutl)
		tg.Shared = engine.NewSharedData()
		if _, err := (EtcdRestore{}).Plan(ctx, tg); err == nil || !strings.Contains(err.Error(), "kubewright etcd restore --from") {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("etcdutl fails", func(t *testing.T) {
		tg, _, root := restoreTarget(t, `echo "Error: snapshot file has wrong sha256" >&2; exit 1`)
		stepkittest.WriteFile(t, root, "/var/lib/etcd/member/snap/db", "old data", 0o600)
		plan, err := EtcdRestore{}.Plan(ctx, tg)
		if err != nil {
			t.Fatal(err)
		}
		err = EtcdRestore{}.Apply(ctx, tg, plan)
		if err == nil || !strings.Contains(err.Error(), "restore etcd on m1") || !strings.Contains(err.Error(), "before-restore-20261202T030405Z") {
			t.Fatalf("err %v, want the host and where the old data is", err)
		}
		if got, _ := stepkittest.ReadFile(t, root, "/var/lib/etcd.before-restore-20261202T030405Z/member/snap/db"); got != "old data" {
			t.Errorf("old data not kept after a failed restore: %q", got)
		}
	})
}
