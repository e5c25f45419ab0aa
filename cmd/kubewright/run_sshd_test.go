package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	goldenfile "github.com/kubewright/kubewright/internal/golden"
)

// runGolden compares CLI output, with the temp dir, durations and run
// timestamps normalised, against testdata/run-NAME.golden (rewritten with -update).
func runGolden(t *testing.T, name, dir, got string) {
	t.Helper()
	goldenfile.AssertString(t, filepath.Join("testdata", "run-"+name+".golden"), normaliseRunOutput(dir, got))
}

var (
	durationRe = regexp.MustCompile(`\b\d+(\.\d+)?(ns|µs|ms|s)\b`)
	runDirRe   = regexp.MustCompile(`/runs/\d{8}T\d{6}Z-([^/]+?)(-\d+)?/`)
)

func normaliseRunOutput(dir, s string) string {
	s = strings.ReplaceAll(s, dir, "DIR")
	s = runDirRe.ReplaceAllString(s, "/runs/TIME-$1/")
	return durationRe.ReplaceAllString(s, "DUR")
}

// journalDoc is the part of journal.json this test reads, decoded with its
// own struct so the on-disk field names are checked, not just Go's view.
type journalDoc struct {
	Playbook string `json:"playbook"`
	Cluster  string `json:"cluster"`
	DryRun   bool   `json:"dryRun"`
	Status   string `json:"status"`
	Hosts    []struct {
		Name   string `json:"name"`
		Status string `json:"status"`
		Log    string `json:"log"`
		Facts  *struct {
			Hostname string `json:"hostname"`
		} `json:"facts"`
		Steps []struct {
			Play    string `json:"play"`
			Step    string `json:"step"`
			Status  string `json:"status"`
			Error   string `json:"error"`
			Changes []struct {
				Action string `json:"action"`
				Object string `json:"object"`
			} `json:"changes"`
		} `json:"steps"`
	} `json:"hosts"`
}

// latestJournal reads the newest run of playbook in the cluster's state.
func latestJournal(t *testing.T, state, playbook string) (journalDoc, string) {
	t.Helper()
	runs, _ := filepath.Glob(filepath.Join(state, "clusters", "loop", "runs", "*-"+playbook+"*", "journal.json"))
	if len(runs) == 0 {
		t.Fatalf("no journal for playbook %s under %s", playbook, state)
	}
	sort.Slice(runs, func(i, j int) bool {
		a, _ := os.Stat(runs[i])
		b, _ := os.Stat(runs[j])
		return a.ModTime().Before(b.ModTime())
	})
	data, err := os.ReadFile(runs[len(runs)-1])
	if err != nil {
		t.Fatal(err)
	}
	var j journalDoc
	if err := json.Unmarshal(data, &j); err != nil {
		t.Fatalf("journal.json: %v\n%s", err, data)
	}
	return j, filepath.Dir(runs[len(runs)-1])
}

// stepStatuses is "play/step=status" per host, from a journal.
func stepStatuses(j journalDoc) map[string][]string {
	out := map[string][]string{}
	for _, h := range j.Hosts {
		for _, s := range h.Steps {
			out[h.Name] = append(out[h.Name], fmt.Sprintf("%s/%s=%s", s.Play, s.Step, s.Status))
		}
	}
	return out
}

// TestRunAgainstLoopbackSSHD runs `kubewright plan` and `kubewright run`
// with a playbook file over real SSH to three inventory hosts served by a
// real sshd on loopback. The playbook uses the registered `file` step; each
// host writes under its own directory of a temp dir, because all three are
// this machine. Plan changes nothing; run applies and journals; a second run
// changes nothing; plan after a manual edit shows exactly that drift.
func TestRunAgainstLoopbackSSHD(t *testing.T) {
	dir := t.TempDir()
	_, inv := loopbackCluster(t, dir)
	state := filepath.Join(dir, "state")
	hosts := []string{"m1", "m2", "w1"}
	var pbText strings.Builder
	pbText.WriteString("name: files\nplays:\n")
	for _, h := range hosts {
		fmt.Fprintf(&pbText, `  - name: %[1]s files
    hosts: %[1]s
    steps:
      - {name: file, with: {path: %[2]s/%[1]s/etc/motd, content: "managed by kubewright\n"}}
      - {name: file, with: {path: %[2]s/%[1]s/etc/kubewright/node.conf, content: "name=%[1]s\n", mode: "0600"}}
`, h, dir)
	}
	pb := filepath.Join(dir, "files.yaml")
	if err := os.WriteFile(pb, []byte(pbText.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	cli := func(wantCode int, args ...string) string {
		t.Helper()
		out, stderr, err := runCLI(t, append(args, "-i", inv, "--state-dir", state, "--accept-new-host-keys")...)
		if code := exitCodeQuiet(err); code != wantCode {
			t.Fatalf("kubewright %s: exit code %d (err %v), want %d\n%s%s", strings.Join(args, " "), code, err, wantCode, out, stderr)
		}
		return out
	}
	wantJournal := func(dryRun bool, status string) journalDoc {
		t.Helper()
		j, _ := latestJournal(t, state, "files")
		if j.Playbook != "files" || j.Cluster != "loop" || j.DryRun != dryRun || j.Status != "ok" || len(j.Hosts) != 3 {
			t.Fatalf("journal: playbook %q cluster %q dryRun %v status %q hosts %d", j.Playbook, j.Cluster, j.DryRun, j.Status, len(j.Hosts))
		}
		for _, h := range j.Hosts {
			want := []string{h.Name + " files/file=" + status, h.Name + " files/file=" + status}
			if got := stepStatuses(j)[h.Name]; !slices.Equal(got, want) {
				t.Errorf("journal %s: %v, want %v", h.Name, got, want)
			}
			if h.Facts == nil || h.Facts.Hostname == "" || h.Log != "hosts/"+h.Name+".log" {
				t.Errorf("journal %s: facts %v log %q", h.Name, h.Facts, h.Log)
			}
		}
		return j
	}

	// plan: prints every host's changes, writes nothing.
	out := cli(exitOK, "plan", pb)
	runGolden(t, "sshd-plan-fresh", dir, out)
	for _, h := range hosts {
		if _, err := os.Stat(filepath.Join(dir, h)); !os.IsNotExist(err) {
			t.Errorf("plan created files for %s (stat err %v)", h, err)
		}
	}
	wantJournal(true, "planned")

	// run: applies, one plain line per step, recap, journal.
	out = cli(exitOK, "run", pb)
	runGolden(t, "sshd-apply", dir, out)
	j := wantJournal(false, "applied")
	for _, h := range j.Hosts {
		var objects []string
		for _, s := range h.Steps {
			for _, c := range s.Changes {
				objects = append(objects, c.Action+" "+c.Object)
			}
		}
		want := []string{"create " + filepath.Join(dir, h.Name, "etc/motd"), "create " + filepath.Join(dir, h.Name, "etc/kubewright/node.conf")}
		if !slices.Equal(objects, want) {
			t.Errorf("journal %s changes %v, want %v", h.Name, objects, want)
		}
	}
	for _, h := range hosts {
		conf := filepath.Join(dir, h, "etc/kubewright/node.conf")
		got, err := os.ReadFile(conf)
		if err != nil || string(got) != "name="+h+"\n" {
			t.Errorf("%s: %q, %v", conf, got, err)
		}
		if fi, err := os.Stat(conf); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, %v", conf, fi.Mode(), err)
		}
	}

	// A second run finds everything in place and changes nothing.
	out = cli(exitOK, "run", pb)
	runGolden(t, "sshd-rerun", dir, out)
	wantJournal(false, "unchanged")

	// An operator edits one file: plan shows that one change, and only it.
	if err := os.WriteFile(filepath.Join(dir, "m2/etc/motd"), []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out = cli(exitOK, "plan", pb)
	runGolden(t, "sshd-plan-drift", dir, out)
	if got, _ := os.ReadFile(filepath.Join(dir, "m2/etc/motd")); string(got) != "hello\n" {
		t.Errorf("plan reverted the edit: %q", got)
	}
}

// TestRunPreflightSeesAllHosts: the embedded check playbook run with
// `kubewright run` judges uniqueness across hosts, because the engine gives
// the preflight step every host's facts. The three loopback hosts are one
// machine, so each must fail on the shared machine-id, naming the others.
func TestRunPreflightSeesAllHosts(t *testing.T) {
	dir := t.TempDir()
	_, inv := loopbackCluster(t, dir)
	state := filepath.Join(dir, "state")
	out, _, err := runCLI(t, "run", "check", "-i", inv, "--state-dir", state, "--accept-new-host-keys")
	if code := exitCodeQuiet(err); code != exitFailed {
		t.Fatalf("exit code %d (err %v), want %d\n%s", code, err, exitFailed, out)
	}
	j, _ := latestJournal(t, state, "check")
	if j.Status != "failed" || len(j.Hosts) != 3 {
		t.Fatalf("journal status %q hosts %d", j.Status, len(j.Hosts))
	}
	others := map[string]string{"m1": "m2, w1", "m2": "m1, w1", "w1": "m1, m2"}
	for _, h := range j.Hosts {
		if len(h.Steps) != 1 || h.Steps[0].Status != "failed" {
			t.Fatalf("%s: steps %+v", h.Name, h.Steps)
		}
		want := "is shared with " + others[h.Name] + " (cloned image?)"
		if e := h.Steps[0].Error; !strings.Contains(e, "unique-machine-id: machine-id ") || !strings.Contains(e, want) {
			t.Errorf("%s: preflight error %q lacks %q", h.Name, e, want)
		}
		if !strings.Contains(err.Error(), "host "+h.Name+": step preflight: plan: preflight failed on "+h.Name) {
			t.Errorf("error does not name %s's failure: %v", h.Name, err)
		}
	}
	if !strings.Contains(out, "[preflight] host=m1 step=preflight failed") {
		t.Errorf("output lacks the failed step line:\n%s", out)
	}
}
