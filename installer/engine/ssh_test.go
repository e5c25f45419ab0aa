package engine_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kubewright/kubewright/installer/engine"
	"github.com/kubewright/kubewright/installer/engine/enginetest"
	"github.com/kubewright/kubewright/installer/inventory"
	"github.com/kubewright/kubewright/installer/remote"
	"github.com/kubewright/kubewright/installer/remote/remotetest"
)

// sshHosts starts one in-process SSH server per name and returns a Connector
// that reaches them with remote.Dial, the same transport the CLI uses. All
// servers share one client key and one host key: generating 500 of each
// would dominate a benchmark's setup without testing anything more.
func sshHosts(tb testing.TB, names []string) (engine.Connector, map[string]*remotetest.Server) {
	tb.Helper()
	key := remotetest.NewClientKey(tb, "")
	hostKey := remotetest.NewHostKey(tb)
	servers := make(map[string]*remotetest.Server, len(names))
	configs := make(map[string]remote.Config, len(names))
	for _, n := range names {
		srv := remotetest.NewServer(tb, remotetest.WithClientKey(key), remotetest.WithHostKey(hostKey))
		servers[n] = srv
		configs[n] = srv.Config(n) // writes known_hosts now, not inside the measured run
	}
	conn := engine.ConnectorFunc(func(ctx context.Context, h *inventory.Host) (remote.Host, error) {
		cfg, ok := configs[h.Name]
		if !ok {
			return nil, fmt.Errorf("no test server for host %s", h.Name)
		}
		return remote.Dial(ctx, cfg)
	})
	return conn, servers
}

// homeFile is a small real step for SSH tests: it makes DIR/rel hold content,
// where DIR is the host's own directory (each in-process server runs commands
// in its own). Plan reads over Exec; Apply creates the directory over Exec
// and writes the file over SFTP, the two paths every real step uses.
type homeFile struct {
	name, rel, content string
	dirs               map[string]string // host name -> server directory
}

func (s *homeFile) Name() string { return s.name }

func (s *homeFile) path(t *engine.Target) string { return filepath.Join(s.dirs[t.Inv.Name], s.rel) }

func (s *homeFile) Plan(ctx context.Context, t *engine.Target) ([]engine.Change, error) {
	p := s.path(t)
	out, err := t.Host.Exec(ctx, fmt.Sprintf("cat -- '%s' 2>/dev/null || echo @@missing", p))
	switch {
	case err != nil:
		return nil, fmt.Errorf("read %s: %w", p, err)
	case out == "@@missing\n":
		return []engine.Change{{Action: "create", Object: s.rel}}, nil
	case out != s.content:
		return []engine.Change{{Action: "update", Object: s.rel, Detail: "content differs"}}, nil
	}
	return nil, nil
}

func (s *homeFile) Apply(ctx context.Context, t *engine.Target, _ []engine.Change) error {
	p := s.path(t)
	if _, err := t.Host.Exec(ctx, fmt.Sprintf("mkdir -p -- '%s'", filepath.Dir(p))); err != nil {
		return fmt.Errorf("create directory of %s: %w", p, err)
	}
	if _, err := t.Host.Upload(ctx, strings.NewReader(s.content), p, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	return nil
}

// TestPlaybookOverSSH runs a playbook over real SSH connections to
// in-process servers: a dry run changes nothing, a run applies, a re-plan
// finds nothing to do, each run uses one connection per host and leaves a
// journal; and every step sees all hosts' facts.
func TestPlaybookOverSSH(t *testing.T) {
	names := []string{"m1", "w1", "w2"}
	conn, servers := sshHosts(t, names)
	dirs := map[string]string{}
	for n, s := range servers {
		dirs[n] = s.Dir()
	}
	cluster := enginetest.NewCluster("ssh", map[string][]string{"masters": {"m1"}, "workers": {"w1", "w2"}})
	reg := engine.NewRegistry()
	reg.MustRegister("conf", engine.Static(&homeFile{name: "conf", rel: "etc/app/app.conf", content: "a=1\n", dirs: dirs}))
	reg.MustRegister("unit", engine.Static(&homeFile{name: "unit", rel: "etc/systemd/system/app.service", content: "[Unit]\n", dirs: dirs}))
	var mu sync.Mutex
	peersSeen := map[string][]string{}
	reg.MustRegister("peers", engine.Static(&enginetest.FuncStep{StepName: "peers", PlanFn: func(_ context.Context, t *engine.Target) ([]engine.Change, error) {
		v, _ := t.Shared.Get(engine.SharedFactsKey)
		all, _ := v.(map[string]*engine.Facts)
		if all[t.Inv.Name] != t.Facts {
			return nil, fmt.Errorf("shared facts of %s are not the target's facts", t.Inv.Name)
		}
		mu.Lock()
		defer mu.Unlock()
		peersSeen[t.Inv.Name] = sortedNames(all)
		return nil, nil
	}}))
	pb, err := engine.LoadPlaybook("ssh.yaml", []byte(`
name: ssh
plays:
  - name: files
    hosts: all
    steps: [conf, unit]
  - name: peers
    hosts: workers
    serial: 1
    steps: [peers]
`))
	if err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	run := func(dryRun bool) *engine.Result {
		t.Helper()
		res, err := engine.Run(context.Background(), engine.Options{
			Playbook: pb, Cluster: cluster.Cluster, Selector: cluster, Registry: reg,
			Connector: conn, StateDir: state, DryRun: dryRun, Concurrency: 2,
		})
		if err != nil {
			t.Fatalf("run (dry run %v): %v", dryRun, err)
		}
		j, err := engine.ReadJournal(filepath.Join(res.RunDir, engine.JournalFile))
		if err != nil {
			t.Fatalf("journal: %v", err)
		}
		if j.Status != engine.RunOK || j.DryRun != dryRun || len(j.Hosts) != len(names) {
			t.Fatalf("journal: status %s dryRun %v hosts %d", j.Status, j.DryRun, len(j.Hosts))
		}
		for _, h := range names {
			if got, want := statuses(j, h), statuses(res, h); !slices.Equal(got, want) {
				t.Errorf("%s: journal says %v, result %v", h, got, want)
			}
			if j.Host(h).Facts == nil || j.Host(h).Facts.Kernel == "" {
				t.Errorf("%s: journal lacks facts", h)
			}
			log, err := os.ReadFile(filepath.Join(res.RunDir, j.Host(h).Log))
			if err != nil || !strings.Contains(string(log), "@@os-release") {
				t.Errorf("%s: host log missing or without the facts command (%v)", h, err)
			}
		}
		return res
	}
	want := func(res *engine.Result, fileStatus engine.StepStatus) {
		t.Helper()
		for _, h := range names {
			w := []string{"conf=" + string(fileStatus), "unit=" + string(fileStatus)}
			if h != "m1" {
				w = append(w, "peers=unchanged")
			}
			if got := statuses(res, h); !slices.Equal(got, w) {
				t.Errorf("%s: %v, want %v", h, got, w)
			}
		}
	}

	res := run(true)
	want(res, engine.StatusPlanned)
	for _, h := range names {
		if _, err := os.Stat(filepath.Join(dirs[h], "etc")); !os.IsNotExist(err) {
			t.Errorf("%s: dry run created files (stat err %v)", h, err)
		}
	}

	res = run(false)
	want(res, engine.StatusApplied)
	for _, h := range names {
		if got, err := os.ReadFile(filepath.Join(dirs[h], "etc/app/app.conf")); err != nil || string(got) != "a=1\n" {
			t.Errorf("%s: app.conf = %q, %v", h, got, err)
		}
	}

	res = run(true)
	want(res, engine.StatusUnchanged)
	for _, h := range names {
		if hr := res.Host(h); hr.Status != engine.HostOK {
			t.Errorf("%s: host status %s after an up-to-date re-plan, want ok", h, hr.Status)
		}
	}

	for _, h := range names {
		if got := peersSeen[h]; h != "m1" && !slices.Equal(got, names) {
			t.Errorf("%s saw facts of %v, want every host %v", h, got, names)
		}
		// One connection per host per run, closed when the run ends.
		srv := servers[h]
		if c := srv.Stats().Connections; c != 3 {
			t.Errorf("%s: %d connections over 3 runs, want 3", h, c)
		}
		deadline := time.Now().Add(2 * time.Second)
		for srv.Stats().ActiveConnections != 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if a := srv.Stats().ActiveConnections; a != 0 {
			t.Errorf("%s: %d connections left open after the runs", h, a)
		}
	}
}

func sortedNames(m map[string]*engine.Facts) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
