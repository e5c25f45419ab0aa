package render

import (
	"fmt"
	"strconv"
	"strings"
)

// Scheduled etcd snapshots on every member: a systemd timer runs a script
// that saves a snapshot through the local member, writes its sha256sum file
// beside it and keeps the newest Retain snapshots. They stay on the member:
// they are the copy that survives losing the operator's machine, and
// `kubewright etcd backup` is the copy that survives losing the masters.
const (
	EtcdBackupScript  = "/usr/local/lib/kubewright/etcd-backup.sh"
	EtcdBackupDir     = "/var/backups/kubewright/etcd"
	EtcdBackupService = "kubewright-etcd-backup.service"
	EtcdBackupTimer   = "kubewright-etcd-backup.timer"
)

// EtcdBackupParams schedule the snapshots.
type EtcdBackupParams struct {
	// OnCalendar is systemd's calendar expression ("" = daily at 02:00).
	OnCalendar string
	// Retain is how many snapshots to keep (0 = 7).
	Retain int
}

func (p EtcdBackupParams) withDefaults() EtcdBackupParams {
	if p.OnCalendar == "" {
		p.OnCalendar = "*-*-* 02:00:00"
	}
	if p.Retain == 0 {
		p.Retain = 7
	}
	return p
}

// EtcdBackupFiles renders the script, the oneshot service and the timer.
func EtcdBackupFiles(p EtcdBackupParams) (script, service, timer string, err error) {
	p = p.withDefaults()
	if p.Retain < 1 {
		return "", "", "", fmt.Errorf("etcd backup retain %d: keep at least 1 snapshot", p.Retain)
	}
	if strings.ContainsAny(p.OnCalendar, "\n'\"") {
		return "", "", "", fmt.Errorf("etcd backup schedule %q: not a systemd calendar expression", p.OnCalendar)
	}
	script = `#!/bin/sh
# Written by kubewright: a scheduled etcd snapshot of this member, with a
# sha256sum file, keeping the newest ` + strconv.Itoa(p.Retain) + `. Restore one with
# kubewright etcd restore --from FILE after copying FILE and FILE.sha256 to
# the operator's machine.
set -eu
dir=${KUBEWRIGHT_ETCD_BACKUP_DIR:-` + EtcdBackupDir + `}
keep=` + strconv.Itoa(p.Retain) + `
umask 077
mkdir -p "$dir"
name="etcd-$(hostname)-$(date -u +%Y%m%dT%H%M%SZ).db"
${ETCDCTL:-` + BinDir + `/etcdctl} --endpoints=https://127.0.0.1:` + strconv.Itoa(EtcdClientPort) + ` \
	--cacert=` + PKIDir + `/etcd/ca.crt \
	--cert=` + PKIDir + `/etcd/healthcheck-client.crt \
	--key=` + PKIDir + `/etcd/healthcheck-client.key \
	--command-timeout=5m snapshot save "$dir/$name"
cd "$dir"
sha256sum "$name" > "$name.sha256.part" && mv "$name.sha256.part" "$name.sha256"
ls -1 etcd-*.db | sort | head -n -"$keep" | while read -r old; do
	rm -f -- "$old" "$old.sha256"
done
echo "saved $dir/$name; $(ls -1 etcd-*.db | wc -l) snapshots kept"
`
	service = `[Unit]
Description=etcd snapshot of this member (kubewright)
Documentation=https://etcd.io/docs/latest/op-guide/recovery/
After=etcd.service

[Service]
Type=oneshot
ExecStart=` + EtcdBackupScript + `
Nice=10
IOSchedulingClass=idle
`
	timer = `[Unit]
Description=Scheduled etcd snapshots (kubewright)

[Timer]
OnCalendar=` + p.OnCalendar + `
RandomizedDelaySec=30m
Persistent=true

[Install]
WantedBy=timers.target
`
	return script, service, timer, nil
}
