package checks

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/kubewright/kubewright/agent"
)

// DiskName is the disk check's name.
const DiskName = "disk"

const (
	// ReasonDiskPressure: a filesystem the node needs is fuller than the
	// threshold.
	ReasonDiskPressure = "DiskPressure"
	// ReasonInodePressure: a filesystem is short of inodes (many small
	// files: container layers, logs) though it may have space left.
	ReasonInodePressure = "InodePressure"
	// ReasonNoFilesystems: none of the paths exists, so there is nothing to
	// look at.
	ReasonNoFilesystems = "NoFilesystems"
)

// Default thresholds and paths for Disk.
const (
	DefaultDiskPercent  = 85
	DefaultInodePercent = 85
)

// DefaultDiskPaths are the filesystems a node fills: the root, the kubelet's
// and containerd's state (images, container layers, emptyDirs) and etcd's
// data on masters. Paths that do not exist on a node are skipped.
func DefaultDiskPaths() []string {
	return []string{"/", "/var/lib/kubelet", "/var/lib/containerd", "/var/lib/etcd"}
}

// Disk warns before the kubelet starts evicting pods for disk pressure
// (nodefs.available < 10% by default) and before etcd or containerd fail
// writes. Usage is computed the way the kubelet does (space available to
// unprivileged users against the filesystem's size), so blocks reserved
// for root count as used.
type Disk struct {
	// Paths to check; DefaultDiskPaths() when empty. Paths on one filesystem
	// are reported once, under the first such path.
	Paths []string
	// MaxPercent of space and MaxInodePercent of inodes in use; over it is a
	// Problem. 0 means the defaults (85).
	MaxPercent, MaxInodePercent int
	// Statfs is unix.Statfs when nil.
	Statfs func(path string, st *unix.Statfs_t) error
}

func (d Disk) Name() string { return DiskName }

func (d Disk) Run(ctx context.Context) agent.Result {
	paths := d.Paths
	if len(paths) == 0 {
		paths = DefaultDiskPaths()
	}
	maxSpace, maxInodes := d.MaxPercent, d.MaxInodePercent
	if maxSpace == 0 {
		maxSpace = DefaultDiskPercent
	}
	if maxInodes == 0 {
		maxInodes = DefaultInodePercent
	}
	if maxSpace < 1 || maxSpace > 100 || maxInodes < 1 || maxInodes > 100 {
		return unknownf(ReasonInvalidConfig, "disk: thresholds %d%% (space) and %d%% (inodes) must be between 1 and 100", maxSpace, maxInodes)
	}
	statfs := d.Statfs
	if statfs == nil {
		statfs = unix.Statfs
	}

	var space, inodes, fine, failed, missing []string
	seen := map[unix.Fsid]bool{}
	looked := 0
	for _, p := range paths {
		if ctx.Err() != nil {
			return canceled(ctx, "disk")
		}
		var st unix.Statfs_t
		if err := statfs(p, &st); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				missing = append(missing, p)
			} else {
				failed = append(failed, fmt.Sprintf("%s: %v", p, err))
			}
			continue
		}
		looked++
		if st.Fsid != (unix.Fsid{}) {
			if seen[st.Fsid] {
				continue
			}
			seen[st.Fsid] = true
		}
		ok := true
		// df's Use%: used / (used + available to users). Blocks reserved
		// for root (and, on thin-provisioned VMs, space the filesystem
		// reports but cannot give) count neither way, so the figure is
		// the one an operator sees in df.
		if usedBlocks := st.Blocks - min(st.Bfree, st.Blocks); usedBlocks+st.Bavail > 0 {
			used := 100 * float64(usedBlocks) / float64(usedBlocks+st.Bavail)
			if used > float64(maxSpace) {
				ok = false
				space = append(space, fmt.Sprintf("%s %.1f%% used (threshold %d%%)", p, used, maxSpace))
			}
		}
		// Some filesystems (btrfs) report no inode count: nothing to check.
		if st.Files > 0 {
			used := 100 * (1 - float64(min(st.Ffree, st.Files))/float64(st.Files))
			if used > float64(maxInodes) {
				ok = false
				inodes = append(inodes, fmt.Sprintf("%s %.1f%% of inodes used (threshold %d%%)", p, used, maxInodes))
			}
		}
		if ok {
			fine = append(fine, p)
		}
	}
	var extra string
	if len(failed) > 0 {
		extra = "; could not read " + strings.Join(failed, "; ")
	}
	switch {
	case looked == 0 && len(failed) > 0:
		return unknownf(ReasonNoFilesystems, "disk: no path could be checked: %s", strings.Join(failed, "; "))
	case looked == 0:
		return unknownf(ReasonNoFilesystems, "disk: none of %s exists", strings.Join(paths, ", "))
	case len(space) > 0:
		return problemf(ReasonDiskPressure, "disk: %s%s", strings.Join(append(space, inodes...), "; "), extra)
	case len(inodes) > 0:
		return problemf(ReasonInodePressure, "disk: %s%s", strings.Join(inodes, "; "), extra)
	}
	return okf("disk: %s below %d%% space and %d%% inodes used%s", strings.Join(fine, ", "), maxSpace, maxInodes, extra)
}
