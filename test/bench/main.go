// Command bench measures kubewright against Ansible on the same ten tasks
// over N loopback "hosts" served by one sshd of its own, fresh and then as a
// no-op, and prints markdown tables. It is what `make bench` (hack/bench.sh)
// runs; see docs/BENCHMARKS.md for the setup, the figures and the targets.
//
//	go run ./test/bench -kubewright bin/kubewright -hosts 10,25,50 -runs 3
//
// It needs root (the tasks log in as root, sshd wants /run/sshd),
// /usr/sbin/sshd and, for the comparison, ansible-playbook (Debian's
// ansible-core). Everything it writes is under one temp dir, removed at
// the end unless -keep; it stops only the sshd it started, by PID.
package main

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

//go:embed ansible kubewright files
var data embed.FS

// workspace is the benchmark's temp dir and its sshd.
type workspace struct {
	dir  string
	sshd *sshd
}

func main() {
	var (
		kwBin    = flag.String("kubewright", "bin/kubewright", "kubewright binary (make build)")
		hostsArg = flag.String("hosts", "10,25,50", "host counts to compare at, comma separated; empty: no comparison")
		runs     = flag.Int("runs", 3, "runs per host count and tool; the tables show the median")
		toolsArg = flag.String("tools", "ansible,kubewright", "tools to run")
		port     = flag.Int("port", 0, "sshd port (0: the first free one from 2222)")
		scale    = flag.Int("scale", 0, "also time kubewright alone over this many real sshd hosts (0: skip)")
		scaleC   = flag.Int("scale-concurrency", 0, "kubewright --concurrency for -scale (0: all hosts at once)")
		keep     = flag.Bool("keep", false, "keep the work directory (logs, trees, inventories)")
		workDir  = flag.String("dir", "", "work directory (default: a new temp dir)")
		profile  = flag.String("cpuprofile", "", "also run kubewright in-process over the largest host count with CPU profiles written to this directory")
	)
	flag.Parse()
	ns, err := parseInts(*hostsArg)
	if err != nil {
		fatal(err)
	}
	if *runs < 1 {
		fatal(errors.New("-runs must be at least 1"))
	}
	var tools []tool
	for _, name := range strings.Split(*toolsArg, ",") {
		switch strings.TrimSpace(name) {
		case "ansible":
			if _, err := exec.LookPath("ansible-playbook"); err != nil {
				fatal(errors.New("ansible-playbook not found: apt-get install -y ansible-core (or -tools kubewright)"))
			}
			tools = append(tools, ansible{})
		case "kubewright":
			bin, err := filepath.Abs(*kwBin)
			if err == nil {
				_, err = os.Stat(bin)
			}
			if err != nil {
				fatal(fmt.Errorf("kubewright binary: %w (make build)", err))
			}
			tools = append(tools, kubewright{bin: bin})
		case "":
		default:
			fatal(fmt.Errorf("unknown tool %q: want ansible or kubewright", name))
		}
	}
	if os.Geteuid() != 0 {
		fatal(errors.New("run as root: the tasks log in over SSH as root and sshd needs /run/sshd"))
	}

	w := &workspace{dir: *workDir}
	if w.dir == "" {
		if w.dir, err = os.MkdirTemp("", "kubewright-bench-"); err != nil {
			fatal(err)
		}
	}
	if w.dir, err = filepath.Abs(w.dir); err != nil {
		fatal(err)
	}
	maxN := *scale
	for _, n := range ns {
		maxN = max(maxN, n)
	}
	if maxN == 0 {
		fatal(errors.New("nothing to do: -hosts is empty and -scale is 0"))
	}
	if err := w.setup(); err != nil {
		fatal(err)
	}
	if w.sshd, err = startSSHD(filepath.Join(w.dir, "sshd"), maxN, *port); err != nil {
		fatal(err)
	}
	cleanup := func() {
		w.sshd.stop()
		if !*keep {
			os.RemoveAll(w.dir)
		}
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() { <-sigs; cleanup(); os.Exit(130) }()
	fmt.Fprintf(os.Stderr, "bench: work dir %s, sshd pids %v on port %d, %d addresses\n", w.dir, w.sshd.pids(), w.sshd.port, maxN)

	err = w.measure(context.Background(), tools, ns, *runs, *scale, *scaleC)
	if err == nil && *profile != "" && len(ns) > 0 {
		n := slices.Max(ns)
		var walls [2]time.Duration
		if walls, err = w.profileKubewright(context.Background(), n, *profile); err == nil {
			fmt.Printf("\nkubewright in-process over %d hosts with a CPU profile: fresh %.2f s, no-op %.2f s (profiles in %s).\n",
				n, walls[0].Seconds(), walls[1].Seconds(), *profile)
		}
	}
	cleanup()
	if err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("bad host count %q", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// BlobSize is the size of the copied file.
const BlobSize = 1 << 20

// setup writes the playbooks, the template and the files to copy.
func (w *workspace) setup() error {
	for _, d := range []string{"logs", "cp", "ansible-tmp"} {
		if err := os.MkdirAll(filepath.Join(w.dir, d), 0o755); err != nil {
			return err
		}
	}
	err := fs.WalkDir(data, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		dst := filepath.Join(w.dir, p)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		b, err := data.ReadFile(p)
		if err != nil {
			return err
		}
		b = []byte(strings.ReplaceAll(string(b), "@BENCH_DIR@", w.dir))
		return os.WriteFile(dst, b, 0o644)
	})
	if err != nil {
		return err
	}
	// 1 MiB of deterministic, incompressible bytes: SHA-256 in counter mode.
	blob := make([]byte, 0, BlobSize)
	for i := 0; len(blob) < BlobSize; i++ {
		sum := sha256.Sum256([]byte(strconv.Itoa(i)))
		blob = append(blob, sum[:]...)
	}
	return os.WriteFile(filepath.Join(w.dir, "files", "blob.bin"), blob[:BlobSize], 0o644)
}

// resetHosts wipes every host's directory and leaves in each the temp file
// task 10 removes, so the fresh run has all ten tasks to do.
func (w *workspace) resetHosts(n int) error {
	root := filepath.Join(w.dir, "hosts")
	if err := os.RemoveAll(root); err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		d := filepath.Join(root, hostName(i))
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(d, "scratch.tmp"), []byte("scratch\n"), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// digest describes every path under hosts/: type, mode and content hash.
func (w *workspace) digest() (map[string]string, error) {
	root := filepath.Join(w.dir, "hosts")
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		desc := fmt.Sprintf("%s %04o", fi.Mode().Type(), fi.Mode().Perm())
		if fi.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(b)
			desc += " " + hex.EncodeToString(sum[:8])
		}
		out[rel] = desc
		return nil
	})
	return out, err
}

func diffDigests(a, b map[string]string) []string {
	var diffs []string
	for k, v := range a {
		if b[k] != v {
			diffs = append(diffs, fmt.Sprintf("%s: %q vs %q", k, v, b[k]))
		}
	}
	for k, v := range b {
		if _, ok := a[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s: missing vs %q", k, v))
		}
	}
	sort.Strings(diffs)
	return diffs
}

type key struct {
	n           int
	tool, phase string
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func (w *workspace) measure(ctx context.Context, tools []tool, ns []int, runs, scale, scaleC int) error {
	results := map[key][]runResult{}
	var loads []string
	var digestNote []string
	for _, n := range ns {
		for _, t := range tools {
			if err := t.prepare(w, n); err != nil {
				return err
			}
		}
		digests := map[string]map[string]string{}
		for r := 0; r < runs; r++ {
			order := append([]tool(nil), tools...)
			if r%2 == 1 { // alternate who goes first
				for i, j := 0, len(order)-1; i < j; i, j = i+1, j-1 {
					order[i], order[j] = order[j], order[i]
				}
			}
			for _, t := range order {
				if err := w.resetHosts(n); err != nil {
					return err
				}
				for _, phase := range []string{"fresh", "noop"} {
					tag := fmt.Sprintf("n%d-r%d-%s-%s", n, r+1, t.name(), phase)
					loads = append(loads, loadavg())
					res, err := run(ctx, w, t, n, tag)
					if err != nil {
						return err
					}
					switch {
					case phase == "fresh" && res.changed == 0:
						return fmt.Errorf("%s: the fresh run changed nothing (log %s)", tag, filepath.Join(w.dir, "logs", tag+".log"))
					case phase == "noop" && res.changed != 0:
						return fmt.Errorf("%s: the no-op run changed %d things (log %s)", tag, res.changed, filepath.Join(w.dir, "logs", tag+".log"))
					}
					fmt.Fprintf(os.Stderr, "bench: %-28s %6.2f s wall, CPU %6.2f s tool %6.2f s hosts %6.2f s machine, %6.1f MiB max RSS, changed %d\n",
						tag, res.wall.Seconds(), res.cpu.Seconds(), res.server.Seconds(), res.busy.Seconds(), float64(res.maxRSS)/1024, res.changed)
					results[key{n, t.name(), phase}] = append(results[key{n, t.name(), phase}], res)
				}
				if r == 0 {
					d, err := w.digest()
					if err != nil {
						return err
					}
					digests[t.name()] = d
				}
			}
		}
		if a, k := digests["ansible"], digests["kubewright"]; a != nil && k != nil {
			if d := diffDigests(a, k); len(d) > 0 {
				return fmt.Errorf("N=%d: ansible and kubewright left different trees (%d differences), first: %s", n, len(d), d[0])
			}
			digestNote = append(digestNote, fmt.Sprintf("N=%d: %d paths identical", n, len(a)))
		}
	}

	var scaleRes []runResult
	if scale > 0 {
		var kw tool
		for _, t := range tools {
			if t.name() == "kubewright" {
				kw = t
			}
		}
		if kw == nil {
			return errors.New("-scale needs kubewright among -tools")
		}
		c := scaleC
		if c == 0 {
			c = scale
		}
		k := kw.(kubewright)
		if err := k.prepare(w, scale); err != nil {
			return err
		}
		if err := w.resetHosts(scale); err != nil {
			return err
		}
		for _, phase := range []string{"fresh", "noop"} {
			tag := fmt.Sprintf("scale%d-c%d-%s", scale, c, phase)
			loads = append(loads, loadavg())
			res, err := run(ctx, w, scaled{k, c}, scale, tag)
			if err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "bench: %-28s %6.2f s wall %6.2f s CPU %6.1f MiB max RSS, %d fds, %d threads\n",
				tag, res.wall.Seconds(), res.cpu.Seconds(), float64(res.maxRSS)/1024, res.peakFDs, res.peakThr)
			scaleRes = append(scaleRes, res)
		}
		defer func() {
			fmt.Printf("\n#### kubewright alone over %d real sshd hosts (--concurrency %d, 1 run)\n\n", scale, c)
			fmt.Println("| run | wall s | tool CPU s | hosts CPU s | machine CPU s | max RSS MiB | peak fds | peak threads |")
			fmt.Println("|---|---:|---:|---:|---:|---:|---:|---:|")
			for i, phase := range []string{"fresh", "no-op"} {
				r := scaleRes[i]
				fmt.Printf("| %s | %.2f | %.2f | %.2f | %.2f | %.1f | %d | %d |\n", phase, r.wall.Seconds(), r.cpu.Seconds(),
					r.server.Seconds(), r.busy.Seconds(), float64(r.maxRSS)/1024, r.peakFDs, r.peakThr)
			}
		}()
	}

	if len(ns) > 0 {
		w.printTables(results, tools, ns, runs)
		if len(digestNote) > 0 {
			fmt.Printf("\nBoth tools left byte-identical trees (paths, types, modes, content): %s.\n", strings.Join(digestNote, "; "))
		}
	}
	fmt.Printf("\nLoad average (1, 5, 15 min) before each run: first %s, last %s.\n", loads[0], loads[len(loads)-1])
	return nil
}

// scaled is kubewright with its own --concurrency.
type scaled struct {
	kubewright
	concurrency int
}

func (s scaled) command(w *workspace, n int, tag string) *exec.Cmd {
	cmd := s.kubewright.command(w, n, tag)
	for i, a := range cmd.Args {
		if a == "--concurrency" {
			cmd.Args[i+1] = strconv.Itoa(s.concurrency)
		}
	}
	return cmd
}

func median(rs []runResult, f func(runResult) float64) float64 {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	sort.Float64s(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func wallS(r runResult) float64   { return r.wall.Seconds() }
func cpuS(r runResult) float64    { return r.cpu.Seconds() }
func rssM(r runResult) float64    { return float64(r.maxRSS) / 1024 }
func serverS(r runResult) float64 { return r.server.Seconds() }
func busyS(r runResult) float64   { return r.busy.Seconds() }

func (w *workspace) printTables(results map[key][]runResult, tools []tool, ns []int, runs int) {
	what := fmt.Sprintf("median of %d runs", runs)
	if runs == 1 {
		what = "1 run"
	}
	has := func(name string) bool {
		for _, t := range tools {
			if t.name() == name {
				return true
			}
		}
		return false
	}
	fmt.Printf("#### Ten tasks, wall time in seconds (%s)\n\n", what)
	if has("ansible") && has("kubewright") {
		fmt.Println("| hosts | Ansible fresh | kubewright fresh | speed-up | Ansible no-op | kubewright no-op | speed-up |")
		fmt.Println("|---:|---:|---:|---:|---:|---:|---:|")
		for _, n := range ns {
			af := median(results[key{n, "ansible", "fresh"}], wallS)
			kf := median(results[key{n, "kubewright", "fresh"}], wallS)
			an := median(results[key{n, "ansible", "noop"}], wallS)
			kn := median(results[key{n, "kubewright", "noop"}], wallS)
			fmt.Printf("| %d | %.2f | %.2f | %.1f× | %.2f | %.2f | %.1f× |\n", n, af, kf, af/kf, an, kn, an/kn)
		}
	}
	fmt.Printf("\n#### Per tool (%s)\n\n", what)
	fmt.Println("tool CPU: the tool and the processes it waited for (Ansible: its forks and ssh clients, not the")
	fmt.Println("ControlPersist masters). hosts CPU: sshd and everything the sessions ran, on the same 2 cores.")
	fmt.Println("machine CPU: all cores, all processes, during the run (the busy share of 2 × wall).")
	fmt.Println()
	fmt.Println("| hosts | tool | run | wall s | tool CPU s | hosts CPU s | machine CPU s | max RSS MiB | all walls s |")
	fmt.Println("|---:|---|---|---:|---:|---:|---:|---:|---|")
	for _, n := range ns {
		for _, t := range tools {
			for _, phase := range []string{"fresh", "noop"} {
				rs := results[key{n, t.name(), phase}]
				var all []string
				for _, r := range rs {
					all = append(all, fmt.Sprintf("%.2f", r.wall.Seconds()))
				}
				fmt.Printf("| %d | %s | %s | %.2f | %.2f | %.2f | %.2f | %.1f | %s |\n", n, t.name(), strings.Replace(phase, "noop", "no-op", 1),
					median(rs, wallS), median(rs, cpuS), median(rs, serverS), median(rs, busyS), median(rs, rssM), strings.Join(all, ", "))
			}
		}
	}
}
