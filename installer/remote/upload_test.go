package remote_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/kubewright/kubewright/installer/remote"
	"github.com/kubewright/kubewright/installer/remote/remotetest"
)

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

func noStaging(t *testing.T, dir string) {
	t.Helper()
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), "kubewright") {
			t.Errorf("staging leftover %s in %s", e.Name(), dir)
		}
	}
}

func TestUpload(t *testing.T) {
	srv := remotetest.NewServer(t)
	h := dial(t, srv.Config("node1"))
	ctx := context.Background()
	dst := filepath.Join(srv.Dir(), "etc", "kubelet.conf")
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	owner := fmt.Sprintf("%d:%d", os.Getuid(), os.Getgid())

	steps := []struct {
		name        string
		content     string
		mode        fs.FileMode
		opts        []remote.UploadOption
		wantChanged bool
		wantWrites  bool
	}{
		{name: "create", content: "v1\n", mode: 0o640, wantChanged: true, wantWrites: true},
		{name: "same content and mode is skipped", content: "v1\n", mode: 0o640, wantChanged: false},
		{name: "same content and owner is skipped", content: "v1\n", mode: 0o640, opts: []remote.UploadOption{remote.UploadOwner(owner)}, wantChanged: false},
		{name: "mode change rewrites", content: "v1\n", mode: 0o600, wantChanged: true, wantWrites: true},
		{name: "content change rewrites", content: "v2\n", mode: 0o600, wantChanged: true, wantWrites: true},
		{name: "setuid bit counts", content: "v2\n", mode: 0o755 | fs.ModeSetuid, wantChanged: true, wantWrites: true},
		{name: "setuid unchanged is skipped", content: "v2\n", mode: 0o755 | fs.ModeSetuid, wantChanged: false},
		{name: "non-seekable source", content: "v3\n", mode: 0o644, wantChanged: true, wantWrites: true},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			var before uint64
			if _, err := os.Stat(dst); err == nil {
				before = inode(t, dst)
			}
			writes := srv.Stats().SFTPWrites
			var src io.Reader = strings.NewReader(st.content)
			if st.name == "non-seekable source" {
				src = io.MultiReader(strings.NewReader(st.content))
			}
			changed, err := h.Upload(ctx, src, dst, st.mode, st.opts...)
			if err != nil {
				t.Fatal(err)
			}
			if changed != st.wantChanged {
				t.Errorf("changed = %v, want %v", changed, st.wantChanged)
			}
			gotWrites := srv.Stats().SFTPWrites - writes
			if (gotWrites > 0) != st.wantWrites {
				t.Errorf("SFTP writes = %d, want writes: %v", gotWrites, st.wantWrites)
			}
			b, err := os.ReadFile(dst)
			if err != nil || string(b) != st.content {
				t.Fatalf("content = %q, %v; want %q", b, err, st.content)
			}
			fi, _ := os.Stat(dst)
			if fi.Mode() != st.mode {
				t.Errorf("mode = %v, want %v", fi.Mode(), st.mode)
			}
			after := inode(t, dst)
			if st.wantChanged && before != 0 && after == before {
				t.Errorf("file was rewritten in place (same inode), not renamed into place")
			}
			if !st.wantChanged && after != before {
				t.Errorf("inode changed on a skipped upload")
			}
			noStaging(t, filepath.Dir(dst))
		})
	}
}

// TestUploadIsAtomic reads the destination continuously while it is replaced
// and must only ever see one complete version.
func TestUploadIsAtomic(t *testing.T) {
	srv := remotetest.NewServer(t)
	h := dial(t, srv.Config("node1"))
	dst := filepath.Join(srv.Dir(), "big")
	a := bytes.Repeat([]byte("a"), 1<<20)
	b := bytes.Repeat([]byte("b"), 1<<20)
	if _, err := h.Upload(context.Background(), bytes.NewReader(a), dst, 0o644); err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var torn atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			got, err := os.ReadFile(dst)
			if err != nil || !(bytes.Equal(got, a) || bytes.Equal(got, b)) {
				torn.Add(1)
			}
		}
	}()
	for i := 0; i < 6; i++ {
		src := b
		if i%2 == 1 {
			src = a
		}
		changed, err := h.Upload(context.Background(), bytes.NewReader(src), dst, 0o644)
		if err != nil || !changed {
			t.Fatalf("upload %d: changed=%v err=%v", i, changed, err)
		}
	}
	stop.Store(true)
	wg.Wait()
	if torn.Load() > 0 {
		t.Errorf("reader saw %d partial or missing versions", torn.Load())
	}
}

func TestUploadAsRootThroughSudo(t *testing.T) {
	srv := remotetest.NewServer(t, remotetest.WithSudo("sudo-pw"))
	h := dial(t, srv.Config("node1"))
	dst := filepath.Join(srv.Dir(), "root-file")
	changed, err := h.Upload(context.Background(), strings.NewReader("secret\n"), dst, 0o600, remote.UploadAsRoot())
	if err != nil || !changed {
		t.Fatalf("changed=%v err=%v", changed, err)
	}
	b, _ := os.ReadFile(dst)
	fi, _ := os.Stat(dst)
	if string(b) != "secret\n" || fi.Mode() != 0o600 {
		t.Errorf("content %q mode %v", b, fi.Mode())
	}
	var moved bool
	for _, c := range commands(srv) {
		if strings.HasPrefix(c, "sudo -S -p '' -- sh -c ") && strings.Contains(c, "mv -f") {
			moved = true
		}
		if strings.Contains(c, "sudo-pw") {
			t.Errorf("sudo password on a command line: %q", c)
		}
	}
	if !moved {
		t.Errorf("file was not moved into place with sudo; commands: %q", srv.Commands())
	}
	// The private staging directory in /tmp is gone.
	var stage string
	for _, c := range commands(srv) {
		if i := strings.Index(c, "rm -rf -- /tmp/.kubewright-upload-"); i >= 0 {
			stage = strings.Fields(c[i+len("rm -rf -- "):])[0]
			stage = strings.TrimRight(stage, ";'\"")
		}
	}
	if stage == "" {
		t.Fatalf("no staging cleanup in %q", srv.Commands())
	}
	if _, err := os.Stat(stage); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("staging dir %s still exists: %v", stage, err)
	}
	changed, err = h.Upload(context.Background(), strings.NewReader("secret\n"), dst, 0o600, remote.UploadAsRoot())
	if err != nil || changed {
		t.Errorf("second upload: changed=%v err=%v", changed, err)
	}
}

func TestUploadErrors(t *testing.T) {
	srv := remotetest.NewServer(t)
	h := dial(t, srv.Config("node1"))
	tests := []struct {
		name, dst, want string
	}{
		{name: "relative path", dst: "etc/x", want: "upload to etc/x on node1: destination must be an absolute path"},
		{name: "missing directory", dst: filepath.Join(srv.Dir(), "no", "such", "dir", "f"), want: "upload " + filepath.Join(srv.Dir(), "no", "such", "dir", "f") + " to node1: create staging directory"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := h.Upload(context.Background(), strings.NewReader("x"), tc.dst, 0o644)
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("err = %v, want prefix %q", err, tc.want)
			}
		})
	}
}

func TestDownload(t *testing.T) {
	srv := remotetest.NewServer(t)
	h := dial(t, srv.Config("node1"))
	path := filepath.Join(srv.Dir(), "ca.crt")
	want := bytes.Repeat([]byte{0, 1, 2, 255}, 100000)
	if err := os.WriteFile(path, want, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := h.Download(context.Background(), path)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("Download: %d bytes, %v", len(got), err)
	}
	_, err = h.Download(context.Background(), filepath.Join(srv.Dir(), "missing"))
	if err == nil || !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "from node1") {
		t.Fatalf("missing file: err = %v", err)
	}
}
