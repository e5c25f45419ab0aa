package steps

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/kubewright/kubewright/installer/engine"
	"github.com/kubewright/kubewright/installer/remote"
	"github.com/kubewright/kubewright/installer/render"
	"github.com/kubewright/kubewright/installer/steps/stepkit"
)

// Shared keys the etcd restore command sets before running the etcd-restore
// playbook.
const (
	// SharedEtcdSnapshot is the local path of the verified snapshot (a string).
	SharedEtcdSnapshot = "etcd.restore.snapshot"
	// SharedEtcdRestoreID names this restore (a string of [0-9A-Za-z-]): the
	// new cluster token is kubewright-<cluster>-restore-<id>, and each
	// member's old data directory is kept as /var/lib/etcd.before-restore-<id>.
	SharedEtcdRestoreID = "etcd.restore.id"
)

// EtcdRestore is the `etcd-restore` step: it replaces this member's data
// directory with one restored from the snapshot, as a member of a new
// cluster (new cluster ID and token) made of the inventory's etcd hosts.
// Run it on every member at once, after the control plane and agents are
// stopped; the etcd and etcd-health steps then start the members and wait
// for the new cluster.
//
// Nothing is deleted: the member's previous data directory is moved to
// /var/lib/etcd.before-restore-<id>. A re-run of the same restore (same id)
// after a failure keeps that first copy and redoes the restore.
type EtcdRestore struct{}

// Name implements engine.Step.
func (EtcdRestore) Name() string { return "etcd-restore" }

// etcdRestoreDir is where the snapshot is uploaded on the member.
const etcdRestoreDir = "/var/lib/kubewright/restore"

func restoreInputs(t *engine.Target) (snapshot, id string, err error) {
	snapshot, ok1 := t.Shared.String(SharedEtcdSnapshot)
	id, ok2 := t.Shared.String(SharedEtcdRestoreID)
	if !ok1 || !ok2 || snapshot == "" || id == "" {
		return "", "", fmt.Errorf("no snapshot for this run: etcd-restore runs from kubewright etcd restore --from FILE, which verifies the snapshot first")
	}
	return snapshot, id, nil
}

// Plan implements engine.Step. Every planned restore changes the member; the
// plan says what happens to the current data, and refuses early when the
// host lacks etcdutl (install puts it beside etcd).
func (EtcdRestore) Plan(ctx context.Context, t *engine.Target) ([]engine.Change, error) {
	snapshot, id, err := restoreInputs(t)
	if err != nil {
		return nil, err
	}
	out, err := stepkit.RunAsRoot(ctx, t, `command -v etcdutl >/dev/null || { echo no-etcdutl; exit 0; }; `+
		`if [ -d `+stepkit.Quote(stepkit.HostPath(t, render.EtcdDataDir+"/member"))+` ]; then echo data; else echo empty; fi`)
	if err != nil {
		return nil, fmt.Errorf("inspect %s on %s: %w", render.EtcdDataDir, t.Inv.Name, err)
	}
	switch strings.TrimSpace(out) {
	case "no-etcdutl":
		return nil, fmt.Errorf("%s has no etcdutl (the restore tool); fix: run kubewright install -i INVENTORY, which installs it with etcd, then restore again", t.Inv.Name)
	case "data":
		return []engine.Change{
			{Action: ActionStop, Object: "etcd.service"},
			{Action: "move", Object: render.EtcdDataDir, Detail: "to " + render.EtcdDataDir + ".before-restore-" + id},
			{Action: "restore", Object: render.EtcdDataDir, Detail: "from " + filepath.Base(snapshot)},
		}, nil
	default:
		return []engine.Change{
			{Action: ActionStop, Object: "etcd.service"},
			{Action: "restore", Object: render.EtcdDataDir, Detail: "from " + filepath.Base(snapshot)},
		}, nil
	}
}

// restoreScript stops the member, keeps its old data, and restores. The
// first attempt of a restore id moves the data aside; a later attempt of the
// same id finds that copy and removes only what the failed attempt wrote.
func restoreScript(t *engine.Target, snapPath, id string) string {
	self := render.EtcdMember{Name: t.Inv.Name, Address: internalAddress(t.Inv)}
	data := stepkit.Quote(stepkit.HostPath(t, render.EtcdDataDir))
	keep := stepkit.Quote(stepkit.HostPath(t, render.EtcdDataDir+".before-restore-"+id))
	token := "kubewright-" + t.Cluster.Metadata.Name + "-restore-" + id
	return strings.Join([]string{
		"set -e",
		"systemctl stop etcd.service",
		"if [ -e " + keep + " ]; then rm -rf " + data + "; elif [ -e " + data + " ]; then mv " + data + " " + keep + "; fi",
		"etcdutl snapshot restore " + stepkit.Quote(snapPath) +
			" --name " + stepkit.Quote(self.Name) +
			" --initial-cluster " + stepkit.Quote(render.EtcdInitialCluster(etcdMembers(t.Cluster))) +
			" --initial-cluster-token " + stepkit.Quote(token) +
			" --initial-advertise-peer-urls " + stepkit.Quote(render.URL(self.Address, render.EtcdPeerPort)) +
			" --data-dir " + data + " 2>&1",
		"chmod 700 " + data,
		"rm -f " + stepkit.Quote(snapPath),
	}, "\n")
}

// Apply implements engine.Step: upload, check the upload, restore.
func (EtcdRestore) Apply(ctx context.Context, t *engine.Target, _ []engine.Change) error {
	snapshot, id, err := restoreInputs(t)
	if err != nil {
		return err
	}
	f, err := os.Open(snapshot)
	if err != nil {
		return fmt.Errorf("open snapshot: %w", err)
	}
	defer f.Close()
	dir := stepkit.HostPath(t, etcdRestoreDir)
	remotePath := dir + "/snapshot-" + id + ".db"
	if _, err := stepkit.RunAsRoot(ctx, t, "install -d -m 0700 "+stepkit.Quote(dir)); err != nil {
		return err
	}
	if _, err := t.Host.Upload(ctx, f, remotePath, 0o600, remote.UploadAsRoot()); err != nil {
		return fmt.Errorf("upload the snapshot to %s: %w", t.Inv.Name, err)
	}
	if out, err := stepkit.RunAsRoot(ctx, t, restoreScript(t, remotePath, id)); err != nil {
		return fmt.Errorf("restore etcd on %s: %w (%s); the member's previous data is in %s.before-restore-%s", t.Inv.Name, err, strings.TrimSpace(out), render.EtcdDataDir, id)
	}
	return nil
}
