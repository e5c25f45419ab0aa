package etcdbackup

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubewright/kubewright/installer/remote"
	"github.com/kubewright/kubewright/installer/remote/remotetest"
)

// fakeSnapshot is n pages of random bytes followed by their SHA-256: the
// shape of what etcd streams to `etcdctl snapshot save`.
func fakeSnapshot(t *testing.T, pages int) []byte {
	t.Helper()
	db := make([]byte, pages*4096)
	if _, err := rand.Read(db); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(db)
	return append(db, sum[:]...)
}

// memberWith starts an in-process SSH server whose PATH has an etcdctl
// that copies src to its last argument (the snapshot path) or, with src
// "", fails like etcdctl does without a reachable member.
func memberWith(t *testing.T, src string) (*remote.SSHHost, *remotetest.Server, string) {
	t.Helper()
	bin := t.TempDir()
	script := "#!/bin/sh\nfor a; do last=$a; done\n"
	if src == "" {
		script += "echo 'Error: context deadline exceeded' >&2\nexit 1\n"
	} else {
		script += "cp '" + src + "' \"$last\"\n"
	}
	if err := os.WriteFile(filepath.Join(bin, "etcdctl"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	srv := remotetest.NewServer(t, remotetest.WithSudo(""))
	h, err := remote.Dial(context.Background(), srv.Config("etcd1"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h, srv, filepath.Join(t.TempDir(), "remote-backup")
}

func TestSaveWritesSnapshotAndChecksum(t *testing.T) {
	data := fakeSnapshot(t, 3)
	src := filepath.Join(t.TempDir(), "snap")
	if err := os.WriteFile(src, data, 0o600); err != nil {
		t.Fatal(err)
	}
	h, srv, remoteDir := memberWith(t, src)
	dir := filepath.Join(t.TempDir(), "backups")
	now := time.Date(2026, 12, 2, 3, 4, 5, 0, time.UTC)
	snap, err := Save(context.Background(), h, SaveOptions{Cluster: "prod", Dir: dir, RemoteDir: remoteDir, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "etcd-prod-20261202T030405Z.db"); snap.Path != want {
		t.Errorf("path %s, want %s", snap.Path, want)
	}
	got, err := os.ReadFile(snap.Path)
	if err != nil || string(got) != string(data) {
		t.Fatalf("local snapshot differs from the member's (err %v)", err)
	}
	if snap.Size != int64(len(data)) || snap.Member != "etcd1" || !snap.Taken.Equal(now) {
		t.Errorf("snapshot %+v", snap)
	}
	for _, p := range []string{snap.Path, snap.Path + ".sha256"} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v err %v, want 0600", p, fi.Mode(), err)
		}
	}
	// The checksum file is what sha256sum -c reads.
	cmd := exec.Command("sha256sum", "-c", filepath.Base(snap.Path)+".sha256")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("sha256sum -c: %v\n%s", err, out)
	}
	if left, _ := os.ReadDir(remoteDir); len(left) != 0 {
		t.Errorf("the member's copy was left behind: %v", left)
	}
	if v, err := Verify(snap.Path); err != nil || v.SHA256 != snap.SHA256 {
		t.Errorf("Verify: %+v %v", v, err)
	}
	// The snapshot command ran as root through sudo, with the member's certs.
	var saw bool
	for _, c := range srv.Commands() {
		if strings.Contains(c, "snapshot save") && strings.Contains(c, "sudo") && strings.Contains(c, "healthcheck-client.crt") {
			saw = true
		}
	}
	if !saw {
		t.Errorf("no sudo etcdctl snapshot save among %q", srv.Commands())
	}
}

func TestSaveRefusesCorruptSnapshot(t *testing.T) {
	data := fakeSnapshot(t, 2)
	data[100] ^= 0xff // corrupted after etcd hashed it
	src := filepath.Join(t.TempDir(), "snap")
	if err := os.WriteFile(src, data, 0o600); err != nil {
		t.Fatal(err)
	}
	h, _, remoteDir := memberWith(t, src)
	dir := filepath.Join(t.TempDir(), "backups")
	_, err := Save(context.Background(), h, SaveOptions{Cluster: "prod", Dir: dir, RemoteDir: remoteDir, Now: time.Now()})
	if err == nil || !strings.Contains(err.Error(), "corrupt") || !strings.Contains(err.Error(), "etcd1") {
		t.Fatalf("err %v, want a corrupt-snapshot error naming the member", err)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("a corrupt snapshot was kept: %v", left)
	}
	if left, _ := os.ReadDir(remoteDir); len(left) != 0 {
		t.Errorf("the member's copy was left behind: %v", left)
	}
}

func TestSaveReportsEtcdctlOutput(t *testing.T) {
	h, _, remoteDir := memberWith(t, "")
	dir := filepath.Join(t.TempDir(), "backups")
	_, err := Save(context.Background(), h, SaveOptions{Cluster: "prod", Dir: dir, RemoteDir: remoteDir, Now: time.Now()})
	if err == nil || !strings.Contains(err.Error(), "context deadline exceeded") || !strings.Contains(err.Error(), "on etcd1") {
		t.Fatalf("err %v, want etcdctl's own words and the member", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("backups dir created for a failed snapshot (err %v)", err)
	}
}

func TestVerify(t *testing.T) {
	dir := t.TempDir()
	snap, err := write(dir, "s.db", fakeSnapshot(t, 1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(snap.Path); err != nil {
		t.Fatalf("fresh snapshot: %v", err)
	}

	t.Run("changed file", func(t *testing.T) {
		b, _ := os.ReadFile(snap.Path)
		p := filepath.Join(dir, "changed.db")
		os.WriteFile(p, append(b[:len(b)-1], b[len(b)-1]^1), 0o600)
		sum, _ := os.ReadFile(snap.Path + ".sha256")
		os.WriteFile(p+".sha256", sum, 0o600)
		if _, err := Verify(p); err == nil || !strings.Contains(err.Error(), "does not match its checksum file") {
			t.Errorf("err %v", err)
		}
	})
	t.Run("no checksum file", func(t *testing.T) {
		p := filepath.Join(dir, "bare.db")
		b, _ := os.ReadFile(snap.Path)
		os.WriteFile(p, b, 0o600)
		if _, err := Verify(p); err == nil || !strings.Contains(err.Error(), "sha256sum bare.db >") {
			t.Errorf("err %v, want the fix", err)
		}
	})
	t.Run("consistent checksum but not a snapshot", func(t *testing.T) {
		s, err := write(dir, "junk.db", []byte("hello"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Verify(s.Path); err == nil || !strings.Contains(err.Error(), "not an etcd snapshot") {
			t.Errorf("err %v", err)
		}
	})
}
