package steps

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubewright/kubewright/installer/render"
	"github.com/kubewright/kubewright/installer/steps/stepkit/stepkittest"
)

func TestEtcdBackupTimer(t *testing.T) {
	tg, h, root := stepkittest.NewTarget(t, "m1", nil)
	tg.Inv = &clusterWith(nil).Spec.Hosts[0]
	// systemd: enable and start leave markers that is-enabled/is-active read.
	stepkittest.FakeTool(t, root, "systemctl", `echo "$*" >> "$ROOT/calls"
case "$1" in
is-enabled) [ -e "$ROOT/enabled" ] && echo enabled || { echo disabled; exit 1; } ;;
is-active) [ -e "$ROOT/active" ] && echo active || { echo inactive; exit 3; } ;;
enable) touch "$ROOT/enabled" ;;
start) touch "$ROOT/active" ;;
esac`)
	h.Env = []string{"PATH=" + filepath.Join(root, "bin") + ":/usr/bin:/bin", "ROOT=" + root}
	ctx := context.Background()
	s := EtcdBackupTimer{}
	plan, err := s.Plan(ctx, tg)
	if err != nil {
		t.Fatal(err)
	}
	if got := objects(plan); got != "create "+render.EtcdBackupScript+", create /etc/systemd/system/kubewright-etcd-backup.service, create /etc/systemd/system/kubewright-etcd-backup.timer, enable kubewright-etcd-backup.timer, start kubewright-etcd-backup.timer" {
		t.Fatalf("fresh plan %q", got)
	}
	if err := s.Apply(ctx, tg, plan); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(root, render.EtcdBackupScript)); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("script mode %v (%v), want 0700: it runs as root", fi.Mode(), err)
	}
	calls, _ := stepkittest.ReadFile(t, root, "/calls")
	if !strings.Contains(calls, "daemon-reload\nenable kubewright-etcd-backup.timer\nstart kubewright-etcd-backup.timer") {
		t.Errorf("systemctl calls:\n%s", calls)
	}
	if strings.Contains(calls, "start kubewright-etcd-backup.service") {
		t.Error("the step started a snapshot; only the timer should")
	}
	if plan, err := s.Plan(ctx, tg); err != nil || len(plan) != 0 {
		t.Errorf("re-run plans %q (%v), want nothing", objects(plan), err)
	}
}
