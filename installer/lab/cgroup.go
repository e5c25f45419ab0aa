package lab

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// Cgroup modes of a host, from how /sys/fs/cgroup is mounted.
const (
	cgroupHybrid  = "hybrid"  // v1 controllers + cgroup2 at /sys/fs/cgroup/unified
	cgroupLegacy  = "legacy"  // v1 only
	cgroupUnified = "unified" // cgroup2 only at /sys/fs/cgroup
)

// cgroupMount is one cgroup filesystem from mountinfo.
type cgroupMount struct {
	Mountpoint  string
	V2          bool
	Controllers []string // v1: super options naming controllers, incl. name=systemd
}

// procCgroup is one line of /proc/PID/cgroup.
type procCgroup struct {
	Controllers []string // empty for the cgroup2 line "0::/path"
	Path        string
}

// cgroupDir is the per-machine cgroup made in one hierarchy.
type cgroupDir struct {
	Mount cgroupMount
	Dir   string // absolute host path of the machine's cgroup
	// Bind is where the guest must see Dir read-write (/sys/fs/cgroup/<ctrl>);
	// empty for name=systemd and cgroup2, which nspawn mounts itself.
	Bind string
}

var v1Controllers = map[string]bool{
	"cpu": true, "cpuacct": true, "cpuset": true, "memory": true, "devices": true,
	"freezer": true, "blkio": true, "pids": true, "net_cls": true, "net_prio": true,
	"perf_event": true, "hugetlb": true, "rdma": true, "misc": true,
}

// parseCgroupMounts reads cgroup and cgroup2 mounts from mountinfo.
func parseCgroupMounts(r io.Reader) []cgroupMount {
	var out []cgroupMount
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		// id parent maj:min root mountpoint opts [optional...] - fstype source superopts
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		pf, qf := strings.Fields(pre), strings.Fields(post)
		if len(pf) < 5 || len(qf) < 3 {
			continue
		}
		mp := unescapeMountinfo(pf[4])
		switch qf[0] {
		case "cgroup2":
			out = append(out, cgroupMount{Mountpoint: mp, V2: true})
		case "cgroup":
			var ctrls []string
			for _, o := range strings.Split(qf[2], ",") {
				if v1Controllers[o] || strings.HasPrefix(o, "name=") {
					ctrls = append(ctrls, o)
				}
			}
			sort.Strings(ctrls)
			out = append(out, cgroupMount{Mountpoint: mp, Controllers: ctrls})
		}
	}
	return out
}

func unescapeMountinfo(s string) string {
	r := strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`)
	return r.Replace(s)
}

// parseProcCgroup reads /proc/PID/cgroup.
func parseProcCgroup(r io.Reader) []procCgroup {
	var out []procCgroup
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		var ctrls []string
		if parts[1] != "" {
			ctrls = strings.Split(parts[1], ",")
			sort.Strings(ctrls)
		}
		out = append(out, procCgroup{Controllers: ctrls, Path: parts[2]})
	}
	return out
}

// detectCgroupMode classifies the host from its cgroup mounts.
func detectCgroupMode(mounts []cgroupMount) string {
	hasV1 := false
	for _, m := range mounts {
		if m.V2 && m.Mountpoint == "/sys/fs/cgroup" {
			return cgroupUnified
		}
		if !m.V2 && len(m.Controllers) > 0 {
			hasV1 = true
		}
	}
	if !hasV1 {
		return cgroupUnified
	}
	for _, m := range mounts {
		if m.V2 {
			return cgroupHybrid
		}
	}
	return cgroupLegacy
}

// planCgroups places a machine's cgroups below the launcher's own cgroup in
// every hierarchy (LAB.md: that is what lets each machine have its own
// writable controllers and its own nspawn /payload and /supervisor).
func planCgroups(mounts []cgroupMount, self []procCgroup, lab, machine string) ([]cgroupDir, error) {
	var out []cgroupDir
	for _, pc := range self {
		var mnt *cgroupMount
		for i := range mounts {
			m := &mounts[i]
			if len(pc.Controllers) == 0 && m.V2 || len(pc.Controllers) > 0 && !m.V2 && equalStrings(m.Controllers, pc.Controllers) {
				mnt = m
				break
			}
		}
		if mnt == nil {
			continue // a hierarchy that is not mounted cannot be delegated
		}
		p := strings.TrimSuffix(pc.Path, " (deleted)")
		d := cgroupDir{Mount: *mnt, Dir: filepath.Join(mnt.Mountpoint, p, cgroupGroup(lab), machine)}
		if !mnt.V2 && !strings.HasPrefix(mnt.Controllers[0], "name=") {
			d.Bind = "/sys/fs/cgroup/" + filepath.Base(mnt.Mountpoint)
		}
		out = append(out, d)
	}
	if len(out) == 0 {
		return nil, errors.New("no mounted cgroup hierarchy found for this process")
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Dir < out[j].Dir })
	return out, nil
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// makeCgroup creates dir and every missing parent below the mount. v1 cpuset
// children start with no CPUs and memory nodes, so each new level copies its
// parent's cpuset.cpus and cpuset.mems or nothing could run in it.
func makeCgroup(d cgroupDir) error {
	rel, err := filepath.Rel(d.Mount.Mountpoint, d.Dir)
	if err != nil {
		return err
	}
	cur := d.Mount.Mountpoint
	for _, part := range strings.Split(rel, string(filepath.Separator)) {
		parent := cur
		cur = filepath.Join(cur, part)
		err := os.Mkdir(cur, 0o755)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("create cgroup %s: %w", cur, err)
		}
		if _, err := os.Stat(filepath.Join(parent, "cpuset.cpus")); err == nil {
			for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
				v, err := os.ReadFile(filepath.Join(parent, f))
				if err != nil {
					return fmt.Errorf("read %s: %w", f, err)
				}
				if err := os.WriteFile(filepath.Join(cur, f), v, 0o644); err != nil {
					return fmt.Errorf("copy %s down to %s: %w", f, cur, err)
				}
			}
		}
	}
	return nil
}

// removeCgroupTree removes dir and everything below it, deepest first. A
// cgroup whose last process just died may briefly be busy, so it retries.
func removeCgroupTree(dir string, timeout time.Duration) error {
	var dirs []string
	err := filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return err
		}
		if e.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	sort.Slice(dirs, func(i, j int) bool { return strings.Count(dirs[i], "/") > strings.Count(dirs[j], "/") })
	deadline := time.Now().Add(timeout)
	for _, d := range dirs {
		for {
			err := syscall.Rmdir(d)
			if err == nil || errors.Is(err, syscall.ENOENT) {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("remove cgroup %s: %w", d, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return nil
}

// killCgroupTree SIGKILLs every process in the cgroup tree at dir until it is
// empty. It is only ever given a machine's own cgroup, so everything in it is
// that machine: a guest orphaned by a crashed (or SIGKILLed) nspawn keeps
// running there, and killing its PID 1 from outside ends its whole PID
// namespace.
func killCgroupTree(dir string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		pids := cgroupTreePIDs(dir)
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes %v still in cgroup %s", pids, dir)
		}
		for _, p := range pids {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func cgroupTreePIDs(dir string) []int {
	var pids []int
	_ = filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
		if err != nil || e.IsDir() || e.Name() != "cgroup.procs" {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil
		}
		for _, f := range strings.Fields(string(b)) {
			var pid int
			if _, err := fmt.Sscan(f, &pid); err == nil && pid > 0 {
				pids = append(pids, pid)
			}
		}
		return nil
	})
	return pids
}
