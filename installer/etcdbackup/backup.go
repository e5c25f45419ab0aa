// Package etcdbackup takes etcd snapshots from a member over SSH and keeps
// them on the operator's machine with a checksum, so a restore can prove the
// file it is about to write into every member is the one that was taken.
//
// A snapshot is two files in the cluster's state directory:
//
//	backups/etcd-<cluster>-<UTC time>.db         the snapshot (0600)
//	backups/etcd-<cluster>-<UTC time>.db.sha256  "<hex>  <name>", as sha256sum writes it
//
// so `sha256sum -c` checks it without kubewright. Beyond that outer checksum
// the snapshot carries etcd's own: the server appends the SHA-256 of the
// database to the stream it sends `etcdctl snapshot save`, and Verify checks
// that inner hash too, which catches a snapshot truncated or corrupted before
// it ever reached this machine.
package etcdbackup

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kubewright/kubewright/installer/remote"
)

// RemoteDir is where a member writes the snapshot before it is downloaded;
// the file is removed from there once it is safe on the operator's machine.
const RemoteDir = "/var/lib/kubewright/backup"

// pkiDir is where etcd members keep their certificates (kubeadm's layout).
const pkiDir = "/etc/kubernetes/pki"

// Snapshot is one saved snapshot on the operator's machine.
type Snapshot struct {
	Path   string    `json:"path"`
	SHA256 string    `json:"sha256"`
	Size   int64     `json:"size"`
	Member string    `json:"member,omitempty"`
	Taken  time.Time `json:"taken,omitempty"`
}

// Dir is the backups directory inside a cluster's state directory.
func Dir(clusterStateDir string) string { return filepath.Join(clusterStateDir, "backups") }

// FileName is the snapshot's name for a cluster at a time.
func FileName(cluster string, at time.Time) string {
	return "etcd-" + cluster + "-" + at.UTC().Format("20060102T150405Z") + ".db"
}

// SaveCmd is the remote command that writes a snapshot to path through the
// local member (127.0.0.1, so the snapshot is of the member we connected to),
// authenticating with the etcd healthcheck client certificate every member
// has. The file appears at path only when complete: etcdctl writes path.part
// and renames it itself.
func SaveCmd(path string) string {
	return "umask 077 && mkdir -p " + remote.Quote(filepath.Dir(path)) + " && " +
		"ETCDCTL_API=3 etcdctl --endpoints=https://127.0.0.1:2379" +
		" --cacert=" + pkiDir + "/etcd/ca.crt" +
		" --cert=" + pkiDir + "/etcd/healthcheck-client.crt" +
		" --key=" + pkiDir + "/etcd/healthcheck-client.key" +
		" --command-timeout=5m snapshot save " + remote.Quote(path)
}

// SaveOptions say where a snapshot goes.
type SaveOptions struct {
	// Cluster names the snapshot file (FileName).
	Cluster string
	// Dir is the local backups directory (Dir of the cluster state dir).
	Dir string
	// RemoteDir is where the member writes it first ("" = RemoteDir).
	RemoteDir string
	// Now is the time the snapshot is named after.
	Now time.Time
}

// Save takes a snapshot on member h and writes it, with its checksum file,
// into o.Dir. Nothing is left behind on either side on failure: a partial
// local file is removed, and the remote copy is always removed.
func Save(ctx context.Context, h remote.Host, o SaveOptions) (Snapshot, error) {
	if o.RemoteDir == "" {
		o.RemoteDir = RemoteDir
	}
	name := FileName(o.Cluster, o.Now)
	remotePath := o.RemoteDir + "/" + name
	if out, err := h.Exec(ctx, SaveCmd(remotePath)+" 2>&1", remote.WithSudo(), remote.WithTimeout(10*time.Minute)); err != nil {
		_, _ = h.Exec(ctx, "rm -f "+remote.Quote(remotePath)+" "+remote.Quote(remotePath+".part"), remote.WithSudo())
		return Snapshot{}, fmt.Errorf("etcdctl snapshot save on %s: %w (output: %s)", h.Name(), err, strings.TrimSpace(out))
	}
	data, err := h.Download(ctx, remotePath)
	_, rmErr := h.Exec(ctx, "rm -f "+remote.Quote(remotePath), remote.WithSudo())
	if err != nil {
		return Snapshot{}, fmt.Errorf("download the snapshot from %s: %w", h.Name(), err)
	}
	if err := checkInnerHash(data); err != nil {
		return Snapshot{}, fmt.Errorf("snapshot from %s: %w", h.Name(), err)
	}
	snap, err := write(o.Dir, name, data)
	if err != nil {
		return Snapshot{}, err
	}
	snap.Member, snap.Taken = h.Name(), o.Now.UTC()
	if rmErr != nil {
		return snap, fmt.Errorf("snapshot saved to %s, but removing %s from %s failed (remove it by hand): %w", snap.Path, remotePath, h.Name(), rmErr)
	}
	return snap, nil
}

// write stores data as dir/name with its sha256sum file, each written to a
// temporary file, synced and renamed, so a crash leaves either the complete
// file or none.
func write(dir, name string, data []byte) (Snapshot, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Snapshot{}, fmt.Errorf("create backups directory: %w", err)
	}
	sum := sha256.Sum256(data)
	hexSum := hex.EncodeToString(sum[:])
	path := filepath.Join(dir, name)
	if err := writeAtomic(path, data); err != nil {
		return Snapshot{}, err
	}
	if err := writeAtomic(path+".sha256", []byte(hexSum+"  "+name+"\n")); err != nil {
		os.Remove(path)
		return Snapshot{}, err
	}
	return Snapshot{Path: path, SHA256: hexSum, Size: int64(len(data))}, nil
}

func writeAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(0o600)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// Verify checks a snapshot file against its .sha256 file and etcd's own
// hash inside it, and returns it described.
func Verify(path string) (Snapshot, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Snapshot{}, fmt.Errorf("read snapshot: %w", err)
	}
	sumFile := path + ".sha256"
	want, err := os.ReadFile(sumFile)
	if errors.Is(err, os.ErrNotExist) {
		return Snapshot{}, fmt.Errorf("%s has no checksum file %s; fix: restore a snapshot taken by kubewright etcd backup, or write one with: sha256sum %s > %s", path, sumFile, filepath.Base(path), sumFile)
	}
	if err != nil {
		return Snapshot{}, fmt.Errorf("read checksum: %w", err)
	}
	fields := strings.Fields(string(want))
	if len(fields) == 0 || len(fields[0]) != sha256.Size*2 {
		return Snapshot{}, fmt.Errorf("%s: not a sha256sum line (want \"<64 hex digits>  <file name>\")", sumFile)
	}
	sum := sha256.Sum256(data)
	got := hex.EncodeToString(sum[:])
	if !strings.EqualFold(fields[0], got) {
		return Snapshot{}, fmt.Errorf("%s does not match its checksum file %s (sha256 %s, want %s): the file changed or is truncated; use another snapshot", path, sumFile, got, fields[0])
	}
	if err := checkInnerHash(data); err != nil {
		return Snapshot{}, fmt.Errorf("%s: %w", path, err)
	}
	return Snapshot{Path: path, SHA256: got, Size: int64(len(data))}, nil
}

// checkInnerHash checks the SHA-256 etcd appends to a snapshot stream: the
// database is a whole number of 512-byte pages and the last 32 bytes are the
// hash of everything before them (what etcdutl snapshot restore checks).
func checkInnerHash(data []byte) error {
	if len(data) < 512+sha256.Size || len(data)%512 != sha256.Size {
		return fmt.Errorf("not an etcd snapshot with an integrity hash (%d bytes; etcd snapshots are 512-byte pages plus a 32-byte SHA-256)", len(data))
	}
	db, tail := data[:len(data)-sha256.Size], data[len(data)-sha256.Size:]
	sum := sha256.Sum256(db)
	if !bytes.Equal(sum[:], tail) {
		return errors.New("the SHA-256 etcd appended to the snapshot does not match its contents: the snapshot is corrupt")
	}
	return nil
}
