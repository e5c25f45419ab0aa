package steps

import (
	"context"
	"fmt"
	"strings"

	"github.com/kubewright/kubewright/installer/engine"
	"github.com/kubewright/kubewright/installer/render"
	"github.com/kubewright/kubewright/installer/steps/stepkit"
)

// EtcdBackupTimer is the `etcd-backup-timer` step: scheduled snapshots on
// every etcd member (render.EtcdBackupFiles: daily, newest 7 kept in
// /var/backups/kubewright/etcd). It writes the script, the oneshot service
// and the timer, and enables and starts the timer; a re-run with nothing
// changed plans nothing. The service itself is never started by the step:
// a snapshot runs on the timer's schedule (or by hand with systemctl start
// kubewright-etcd-backup.service).
type EtcdBackupTimer struct{}

// Name implements engine.Step.
func (EtcdBackupTimer) Name() string { return "etcd-backup-timer" }

func (EtcdBackupTimer) files() ([]stepkit.File, error) {
	script, service, timer, err := render.EtcdBackupFiles(render.EtcdBackupParams{})
	if err != nil {
		return nil, err
	}
	return []stepkit.File{
		{Path: render.EtcdBackupScript, Content: []byte(script), Mode: 0o700},
		{Path: render.SystemdDir + "/" + render.EtcdBackupService, Content: []byte(service), Mode: 0o644},
		{Path: render.SystemdDir + "/" + render.EtcdBackupTimer, Content: []byte(timer), Mode: 0o644},
	}, nil
}

func (s EtcdBackupTimer) timer() stepkit.Unit {
	return stepkit.Unit{Name: render.EtcdBackupTimer}
}

// Plan implements engine.Step.
func (s EtcdBackupTimer) Plan(ctx context.Context, t *engine.Target) ([]engine.Change, error) {
	files, err := s.files()
	if err != nil {
		return nil, err
	}
	changes, err := stepkit.PlanFiles(ctx, t, files)
	if err != nil {
		return nil, err
	}
	st, err := s.timer().State(ctx, t)
	if err != nil {
		return nil, err
	}
	if !st.Enabled {
		changes = append(changes, engine.Change{Action: stepkit.ActionEnable, Object: render.EtcdBackupTimer})
	}
	if !st.Active {
		changes = append(changes, engine.Change{Action: stepkit.ActionStart, Object: render.EtcdBackupTimer})
	}
	return changes, nil
}

// Apply implements engine.Step.
func (s EtcdBackupTimer) Apply(ctx context.Context, t *engine.Target, plan []engine.Change) error {
	files, err := s.files()
	if err != nil {
		return err
	}
	written, err := stepkit.ApplyFiles(ctx, t, files, plan)
	if err != nil {
		return err
	}
	var cmds []string
	for _, p := range written {
		if strings.HasPrefix(p, render.SystemdDir+"/") {
			cmds = append(cmds, "systemctl daemon-reload")
			break
		}
	}
	for _, c := range plan {
		if c.Object != render.EtcdBackupTimer {
			continue
		}
		switch c.Action {
		case stepkit.ActionEnable:
			cmds = append(cmds, "systemctl enable "+render.EtcdBackupTimer)
		case stepkit.ActionStart:
			cmds = append(cmds, "systemctl start "+render.EtcdBackupTimer)
		}
	}
	if len(cmds) == 0 {
		return nil
	}
	if out, err := stepkit.RunAsRoot(ctx, t, strings.Join(cmds, " && ")+" 2>&1"); err != nil {
		return fmt.Errorf("enable %s on %s: %w (%s)", render.EtcdBackupTimer, t.Inv.Name, err, strings.TrimSpace(out))
	}
	return nil
}
