package checks

import (
	"context"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/kubewright/kubewright/agent"
)

// fakeFS is one filesystem for the injected statfs: the percent of its
// blocks and inodes in use.
type fakeFS struct {
	blocksUsed, inodesUsed uint64 // percent
	noInodes               bool
	fsid                   int32
	err                    error
}

func fakeStatfs(m map[string]fakeFS) func(string, *unix.Statfs_t) error {
	return func(path string, st *unix.Statfs_t) error {
		f, ok := m[path]
		if !ok {
			return syscall.ENOENT
		}
		if f.err != nil {
			return f.err
		}
		*st = unix.Statfs_t{Bsize: 4096, Blocks: 1000, Bfree: 1000 - f.blocksUsed*10, Bavail: 1000 - f.blocksUsed*10, Files: 1000, Ffree: 1000 - f.inodesUsed*10}
		st.Fsid.Val[0] = f.fsid
		if f.noInodes {
			st.Files, st.Ffree = 0, 0
		}
		return nil
	}
}

func TestDisk(t *testing.T) {
	tests := []struct {
		name     string
		fs       map[string]fakeFS
		paths    []string
		max, ino int
		status   agent.Status
		reason   string
		want     []string
	}{
		{"fine", map[string]fakeFS{"/": {blocksUsed: 50, inodesUsed: 10}}, []string{"/"}, 0, 0, agent.OK, "OK", []string{"/ below 85% space and 85% inodes used"}},
		{"at the threshold is fine", map[string]fakeFS{"/": {blocksUsed: 85, inodesUsed: 85}}, []string{"/"}, 0, 0, agent.OK, "OK", nil},
		{"full", map[string]fakeFS{"/": {blocksUsed: 10}, "/var/lib/containerd": {blocksUsed: 91, fsid: 2}}, []string{"/", "/var/lib/containerd"}, 0, 0,
			agent.Problem, ReasonDiskPressure, []string{"/var/lib/containerd 91.0% used (threshold 85%)"}},
		{"own threshold", map[string]fakeFS{"/": {blocksUsed: 60}}, []string{"/"}, 50, 0, agent.Problem, ReasonDiskPressure, []string{"60.0% used (threshold 50%)"}},
		{"inodes", map[string]fakeFS{"/var/lib/kubelet": {blocksUsed: 20, inodesUsed: 97}}, []string{"/var/lib/kubelet"}, 0, 0,
			agent.Problem, ReasonInodePressure, []string{"/var/lib/kubelet 97.0% of inodes used (threshold 85%)"}},
		{"space and inodes: space first", map[string]fakeFS{"/": {blocksUsed: 99, inodesUsed: 99}}, []string{"/"}, 0, 0,
			agent.Problem, ReasonDiskPressure, []string{"99.0% used", "99.0% of inodes used"}},
		{"no inode count (btrfs)", map[string]fakeFS{"/": {blocksUsed: 10, noInodes: true}}, []string{"/"}, 0, 0, agent.OK, "OK", nil},
		{"missing paths are skipped", map[string]fakeFS{"/": {blocksUsed: 10}}, []string{"/", "/var/lib/containerd"}, 0, 0, agent.OK, "OK", nil},
		{"unreadable path noted", map[string]fakeFS{"/": {blocksUsed: 10}, "/x": {err: syscall.EACCES}}, []string{"/", "/x"}, 0, 0, agent.OK, "OK", []string{"could not read /x: permission denied"}},
		{"all missing", map[string]fakeFS{}, []string{"/a", "/b"}, 0, 0, agent.Unknown, ReasonNoFilesystems, []string{"none of /a, /b exists"}},
		{"all unreadable", map[string]fakeFS{"/a": {err: syscall.EIO}}, []string{"/a"}, 0, 0, agent.Unknown, ReasonNoFilesystems, []string{"input/output error"}},
		{"bad threshold", map[string]fakeFS{"/": {}}, []string{"/"}, 101, 0, agent.Unknown, ReasonInvalidConfig, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Disk{Paths: tt.paths, MaxPercent: tt.max, MaxInodePercent: tt.ino, Statfs: fakeStatfs(tt.fs)}
			r := d.Run(context.Background())
			expect(t, r, tt.status, tt.reason, tt.want...)
		})
	}

	t.Run("one filesystem reported once", func(t *testing.T) {
		fs := map[string]fakeFS{"/": {blocksUsed: 95, fsid: 7}, "/var/lib/kubelet": {blocksUsed: 95, fsid: 7}}
		r := Disk{Paths: []string{"/", "/var/lib/kubelet"}, Statfs: fakeStatfs(fs)}.Run(context.Background())
		expect(t, r, agent.Problem, ReasonDiskPressure)
		if want := "disk: / 95.0% used (threshold 85%)"; r.Message != want {
			t.Fatalf("message %q, want %q", r.Message, want)
		}
	})

	// The real statfs on a real directory; a missing sibling is skipped.
	t.Run("real statfs", func(t *testing.T) {
		dir := t.TempDir()
		r := Disk{Paths: []string{dir, filepath.Join(dir, "missing")}, MaxPercent: 100, MaxInodePercent: 100}.Run(context.Background())
		expect(t, r, agent.OK, "OK", dir)
		var st unix.Statfs_t
		if err := unix.Statfs(dir, &st); err != nil || st.Blocks == 0 {
			t.Fatalf("statfs %s: %v (blocks %d)", dir, err, st.Blocks)
		}
		used := 100 * float64(st.Blocks-st.Bfree) / float64(st.Blocks-st.Bfree+st.Bavail)
		if used >= 1 {
			r = Disk{Paths: []string{dir}, MaxPercent: 1, MaxInodePercent: 100}.Run(context.Background())
			expect(t, r, agent.Problem, ReasonDiskPressure, dir, "(threshold 1%)")
		}
	})
}

// The measure is df's Use%: reserved blocks, and space a thin-provisioned
// VM's filesystem reports but cannot hand out, count neither as used nor
// as available.
func TestDiskUsesDfMeasure(t *testing.T) {
	for _, c := range []struct {
		name                string
		blocks, free, avail uint64
		max                 int
		want                agent.Status
		wantIn              string
	}{
		{"root reserve", 1000, 300, 250, 73, agent.Problem, "73.7% used"},
		{"root reserve under", 1000, 300, 250, 74, agent.OK, ""},
		{"thin-provisioned", 1000, 900, 400, 50, agent.OK, ""},
		{"thin-provisioned over", 1000, 900, 400, 19, agent.Problem, "20.0% used"},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := func(_ string, st *unix.Statfs_t) error {
				*st = unix.Statfs_t{Bsize: 4096, Blocks: c.blocks, Bfree: c.free, Bavail: c.avail, Files: 10, Ffree: 10}
				return nil
			}
			r := Disk{Paths: []string{"/var/lib/containerd"}, MaxPercent: c.max, MaxInodePercent: 100, Statfs: st}.Run(context.Background())
			if r.Status != c.want || !strings.Contains(r.Message, c.wantIn) {
				t.Fatalf("%+v, want %s with %q", r, c.want, c.wantIn)
			}
		})
	}
}
