package steps

import (
	"context"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/kubewright/kubewright/installer/engine"
	"github.com/kubewright/kubewright/installer/inventory"
	"github.com/kubewright/kubewright/installer/pki"
	"github.com/kubewright/kubewright/installer/render"
	"github.com/kubewright/kubewright/installer/steps/stepkit"
)

// PKIDir is where install keeps the cluster's PKI inside the cluster state
// directory; steps read the files they upload from there.
func PKIDir(stateDir string) string { return filepath.Join(stateDir, "pki") }

// SecretsDir holds generated secrets that are not certificates (the Secrets
// encryption key, the VRRP password). Mode 0700, files 0600.
func SecretsDir(stateDir string) string { return filepath.Join(stateDir, "secrets") }

const (
	encryptionKeyFile = "encryption-aescbc.key"
	vrrpPassFile      = "vrrp-auth-pass"
)

// EnsureClusterSecrets creates, once, the secrets install needs besides the
// PKI. They are generated on the operator's machine so every master gets the
// same value, and never regenerated: a new encryption key would make every
// stored Secret unreadable.
func EnsureClusterSecrets(stateDir string) error {
	dir := SecretsDir(stateDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create secrets dir: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("secure secrets dir: %w", err)
	}
	gen := map[string]func() ([]byte, error){
		encryptionKeyFile: func() ([]byte, error) { return randomBytes(32) },
		vrrpPassFile: func() ([]byte, error) {
			b, err := randomBytes(6)
			if err != nil {
				return nil, err
			}
			return []byte(fmt.Sprintf("%x", b)[:8]), nil
		},
	}
	for name, f := range gen {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err == nil {
			continue
		}
		data, err := f()
		if err != nil {
			return fmt.Errorf("generate %s: %w", name, err)
		}
		tmp := p + ".tmp"
		if err := os.WriteFile(tmp, data, 0o600); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
		if err := os.Rename(tmp, p); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	return nil
}

func randomBytes(n int) ([]byte, error) {
	b := make([]byte, n)
	_, err := rand.Read(b)
	return b, err
}

func readSecret(t *engine.Target, name string) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(SecretsDir(t.StateDir), name))
	if err != nil {
		return nil, fmt.Errorf("read cluster secret %s (install generates it; is --state-dir the one used at install?): %w", name, err)
	}
	return b, nil
}

// pkiFiles returns the PKI files this host needs whose remote path passes
// keep, as stepkit files ready to plan and upload.
func pkiFiles(t *engine.Target, keep func(remotePath string) bool) ([]stepkit.File, error) {
	store := pki.NewStore(PKIDir(t.StateDir), nil)
	files, err := store.FilesForHost(t.Inv.Name, t.Inv.Groups)
	if err != nil {
		return nil, fmt.Errorf("certificates for %s: %w", t.Inv.Name, err)
	}
	var out []stepkit.File
	for _, f := range files {
		if keep(f.RemotePath) {
			out = append(out, stepkit.File{Path: f.RemotePath, Content: f.Data, Mode: f.Mode, Owner: "root:root"})
		}
	}
	return out, nil
}

func internalAddress(h *inventory.Host) string {
	if h.InternalAddress != "" {
		return h.InternalAddress
	}
	return h.Address
}

func etcdMembers(c *inventory.Cluster) []render.EtcdMember {
	var out []render.EtcdMember
	for _, h := range c.Etcd() {
		out = append(out, render.EtcdMember{Name: h.Name, Address: internalAddress(h)})
	}
	return out
}

func masterIndex(c *inventory.Cluster, name string) int {
	for i, h := range c.Masters() {
		if h.Name == name {
			return i
		}
	}
	return -1
}

func isEtcdPath(p string) bool { return strings.HasPrefix(p, render.PKIDir+"/etcd/") }

// service is one systemd unit in a serviceGroup. Content nil means the unit
// comes from an OS package (haproxy, keepalived). dependsOn says which of the
// group's files the service reads, so only services whose inputs changed are
// restarted: a re-run must not bounce etcd or an apiserver for nothing.
type service struct {
	unit      string
	content   []byte
	dependsOn func(path string) bool
	// noWait starts the unit without waiting for it to become active. etcd
	// needs this: a member is only "active" once a quorum is up, so waiting
	// on each member in turn would deadlock when members outnumber the
	// engine's concurrency. Later steps wait for cluster health instead.
	noWait bool
	// binary is the executable the unit runs (e.g. /usr/local/bin/kubelet).
	// When the file on disk is no longer the one the running process was
	// started from (the binaries steps replaced it), the unit is restarted:
	// that is how an upgrade's new binaries take effect, and how a run cut
	// between the swap and the restart finishes the job when re-run.
	binary string
}

// serviceGroup plans the group's files once (one remote round trip) and then
// each unit's enabled/active state.
type serviceGroup struct {
	files    []stepkit.File
	services []service
	// activeTimeout bounds the wait for a (re)started unit to become active.
	activeTimeout time.Duration
}

func (g serviceGroup) unitFor(s service) stepkit.Unit {
	return stepkit.Unit{Name: s.unit, Content: s.content, ActiveTimeout: g.activeTimeout}
}

func (g serviceGroup) allFiles() []stepkit.File {
	all := append([]stepkit.File(nil), g.files...)
	for _, s := range g.services {
		if s.content != nil {
			all = append(all, stepkit.File{Path: g.unitFor(s).UnitPath(), Content: s.content, Mode: 0o644})
		}
	}
	return all
}

func (g serviceGroup) plan(ctx context.Context, t *engine.Target) ([]engine.Change, error) {
	changes, err := stepkit.PlanFiles(ctx, t, g.allFiles())
	if err != nil {
		return nil, err
	}
	changed := map[string]bool{}
	for _, c := range changes {
		changed[c.Object] = true
	}
	for _, s := range g.services {
		u := g.unitFor(s)
		st, err := u.State(ctx, t)
		if err != nil {
			return nil, err
		}
		if !st.Enabled {
			changes = append(changes, engine.Change{Action: stepkit.ActionEnable, Object: s.unit})
		}
		if !st.Active {
			changes = append(changes, engine.Change{Action: stepkit.ActionStart, Object: s.unit, Detail: "not active"})
			continue
		}
		var why []string
		if changed[u.UnitPath()] {
			why = append(why, "unit file changed")
		}
		for _, f := range g.files {
			if changed[f.Path] && s.dependsOn != nil && s.dependsOn(f.Path) {
				why = append(why, f.Path+" changed")
			}
		}
		if s.binary != "" {
			state, err := binaryState(ctx, t, s.unit, s.binary)
			if err != nil {
				return nil, err
			}
			switch state {
			case binaryReplaced:
				why = append(why, s.binary+" replaced since the unit started")
			case binaryPending:
				why = append(why, s.binary+" differs from the artifacts (replaced by the binaries steps first)")
			}
		}
		if len(why) > 0 {
			changes = append(changes, engine.Change{Action: stepkit.ActionRestart, Object: s.unit, Detail: strings.Join(why, ", ")})
		}
	}
	return changes, nil
}

// What binaryState found about a unit's executable.
const (
	binaryCurrent  = ""
	binaryReplaced = "replaced" // the file on disk is not the running one
	binaryPending  = "pending"  // running the file on disk, which the artifacts replace
)

// binaryState compares the running main process of unit with binary on
// disk. The binaries steps replace a file by rename, so the process keeps
// the old inode (/proc/PID/exe still opens it): the same inode, or equal
// content, means no restart. binaryPending is what a dry run sees before
// the binaries steps ran: the running file is on disk but the run's
// artifacts hold another one. When it cannot tell (no main PID, no /proc
// entry, a systemctl without "show") it reports current: a restart for
// nothing is what a re-run must never do.
func binaryState(ctx context.Context, t *engine.Target, unit, binary string) (string, error) {
	want := ""
	if src, err := sharedSource(t); err == nil {
		if f, ok := src.Manifest().File(path.Base(binary)); ok {
			want = f.SHA256
		}
	}
	root := stepkit.Root(t)
	// Every probe that fails (the process exiting, a reused PID, a file
	// that cannot be read) leaves its result empty, and an empty result
	// means "current": only two readable, different files are "replaced".
	script := fmt.Sprintf(`pid=$(systemctl show -p MainPID --value %s 2>/dev/null); exe=%s/proc/$pid/exe; bin=%s; want=%s
state=current
if [ -n "$pid" ] && [ "$pid" != 0 ] && [ -e "$exe" ] && [ -e "$bin" ]; then
  a=$(stat -L -c %%d:%%i "$exe" 2>/dev/null); b=$(stat -L -c %%d:%%i "$bin" 2>/dev/null)
  if [ -n "$a" ] && [ -n "$b" ] && [ "$a" != "$b" ]; then
    ha=$(sha256sum < "$exe" 2>/dev/null | cut -d' ' -f1); hb=$(sha256sum < "$bin" 2>/dev/null | cut -d' ' -f1)
    if [ -n "$ha" ] && [ -n "$hb" ] && [ "$ha" != "$hb" ]; then state=replaced; fi
  fi
  if [ "$state" = current ] && [ -n "$want" ]; then
    hb=$(sha256sum < "$bin" 2>/dev/null | cut -d' ' -f1)
    if [ -n "$hb" ] && [ "$hb" != "$want" ]; then state=pending; fi
  fi
fi
echo "$state"`, stepkit.Quote(unit), stepkit.Quote(root), stepkit.Quote(stepkit.HostPath(t, binary)), stepkit.Quote(want))
	out, err := stepkit.RunAsRoot(ctx, t, script)
	if err != nil {
		return "", fmt.Errorf("compare the running %s with %s on %s: %w", unit, binary, t.Inv.Name, err)
	}
	switch st := strings.TrimSpace(out); st {
	case binaryReplaced, binaryPending:
		return st, nil
	}
	return binaryCurrent, nil
}

func (g serviceGroup) apply(ctx context.Context, t *engine.Target, plan []engine.Change) error {
	written, err := stepkit.ApplyFiles(ctx, t, g.allFiles(), plan)
	if err != nil {
		return err
	}
	unitWritten := false
	for _, p := range written {
		if strings.HasPrefix(p, "/etc/systemd/system/") {
			unitWritten = true
		}
	}
	if unitWritten {
		if _, err := stepkit.RunAsRoot(ctx, t, "systemctl daemon-reload"); err != nil {
			return err
		}
	}
	for _, s := range g.services {
		noBlock := ""
		if s.noWait {
			noBlock = "--no-block "
		}
		var cmds []string
		for _, c := range plan {
			if c.Object != s.unit {
				continue
			}
			switch c.Action {
			case stepkit.ActionEnable:
				cmds = append(cmds, "systemctl enable "+stepkit.Quote(s.unit))
			case stepkit.ActionStart:
				cmds = append(cmds, "systemctl start "+noBlock+stepkit.Quote(s.unit))
			case stepkit.ActionRestart:
				cmds = append(cmds, "systemctl restart "+noBlock+stepkit.Quote(s.unit))
			}
		}
		if len(cmds) == 0 {
			continue
		}
		if _, err := stepkit.RunAsRoot(ctx, t, strings.Join(cmds, " && ")); err != nil {
			return fmt.Errorf("unit %s: %w (see journalctl -u %s on %s)", s.unit, err, s.unit, t.Inv.Name)
		}
		if s.noWait {
			continue
		}
		if err := g.unitFor(s).WaitActive(ctx, t); err != nil {
			return err
		}
	}
	return nil
}

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
