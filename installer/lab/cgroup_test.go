package lab

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func parseFixture(t *testing.T, mountinfo, proc string) ([]cgroupMount, []procCgroup) {
	t.Helper()
	mi, err := os.Open(filepath.Join("testdata", mountinfo))
	if err != nil {
		t.Fatal(err)
	}
	defer mi.Close()
	var pc []procCgroup
	if proc != "" {
		f, err := os.Open(filepath.Join("testdata", proc))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		pc = parseProcCgroup(f)
	}
	return parseCgroupMounts(mi), pc
}

func TestCgroupMode(t *testing.T) {
	cases := []struct{ file, want string }{
		{"mountinfo-hybrid.txt", cgroupHybrid},
		{"mountinfo-unified.txt", cgroupUnified},
		{"mountinfo-legacy-combined.txt", cgroupLegacy},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			m, _ := parseFixture(t, c.file, "")
			if got := detectCgroupMode(m); got != c.want {
				t.Errorf("mode = %s, want %s", got, c.want)
			}
		})
	}
}

// TestPlanCgroups pins where a machine's cgroups go (below the launcher's own
// cgroup in every hierarchy) and which ones are bound into the guest.
func TestPlanCgroups(t *testing.T) {
	cases := []struct{ name, mountinfo, proc string }{
		{"hybrid", "mountinfo-hybrid.txt", "proc-cgroup-hybrid.txt"},
		{"legacy-combined", "mountinfo-legacy-combined.txt", "proc-cgroup-legacy-combined.txt"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			mounts, self := parseFixture(t, c.mountinfo, c.proc)
			dirs, err := planCgroups(mounts, self, "demo", "demo-master1")
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			for _, d := range dirs {
				b.WriteString(d.Dir)
				if d.Bind != "" {
					b.WriteString(" -> " + d.Bind)
				}
				b.WriteString("\n")
			}
			b.WriteString("nspawn:\n" + strings.Join(nspawnArgs("/labs/demo/machines/demo-master1/root", "demo-master1", "/run/netns/kw-demo-master1", "/labs/demo/machines/demo-master1/containerd", dirs), "\n") + "\n")
			golden(t, "cgroups-"+c.name, b.String())
		})
	}
	t.Run("nothing-mounted", func(t *testing.T) {
		if _, err := planCgroups(nil, []procCgroup{{Path: "/"}}, "demo", "m"); err == nil {
			t.Fatal("want an error when no hierarchy is mounted")
		}
	})
}

// TestMakeCgroupCopiesCpuset runs makeCgroup on a plain directory tree shaped
// like a cpuset hierarchy: every new level must get its parent's cpus/mems.
func TestMakeCgroupCopiesCpuset(t *testing.T) {
	mnt := t.TempDir()
	os.WriteFile(filepath.Join(mnt, "cpuset.cpus"), []byte("0-1\n"), 0o644)
	os.WriteFile(filepath.Join(mnt, "cpuset.mems"), []byte("0\n"), 0o644)
	d := cgroupDir{Mount: cgroupMount{Mountpoint: mnt, Controllers: []string{"cpuset"}}, Dir: filepath.Join(mnt, "kubewright-lab-demo", "demo-master1")}
	if err := makeCgroup(d); err != nil {
		t.Fatal(err)
	}
	for _, lvl := range []string{"kubewright-lab-demo", "kubewright-lab-demo/demo-master1"} {
		for f, want := range map[string]string{"cpuset.cpus": "0-1\n", "cpuset.mems": "0\n"} {
			b, err := os.ReadFile(filepath.Join(mnt, lvl, f))
			if err != nil || string(b) != want {
				t.Errorf("%s/%s = %q, %v; want %q", lvl, f, b, err, want)
			}
		}
	}
	if err := makeCgroup(d); err != nil {
		t.Errorf("makeCgroup is not idempotent: %v", err)
	}
}

func TestRemoveCgroupTreeDeepestFirst(t *testing.T) {
	root := filepath.Join(t.TempDir(), "kubewright-lab-demo")
	for _, d := range []string{"m1/payload/system.slice/ssh.service", "m1/supervisor", "m2"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := removeCgroupTree(root, time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(root); !os.IsNotExist(err) {
		t.Errorf("tree still present: %v", err)
	}
	if err := removeCgroupTree(root, time.Second); err != nil {
		t.Errorf("removing a missing tree: %v", err)
	}
	// A directory that cannot be removed (a file in it, like a busy cgroup)
	// must fail after the timeout, not hang or pass.
	busy := filepath.Join(t.TempDir(), "busy")
	os.MkdirAll(busy, 0o755)
	os.WriteFile(filepath.Join(busy, "pinned"), nil, 0o644)
	start := time.Now()
	if err := removeCgroupTree(busy, 300*time.Millisecond); err == nil {
		t.Error("want an error for a directory that cannot be removed")
	}
	if time.Since(start) < 300*time.Millisecond {
		t.Error("gave up before the timeout")
	}
}
