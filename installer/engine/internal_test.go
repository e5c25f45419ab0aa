package engine

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubewright/kubewright/installer/inventory"
	goldenfile "github.com/kubewright/kubewright/internal/golden"
)

// golden compares got with testdata/<name>.golden (rewritten with -update).
func golden(t *testing.T, name, got string) {
	t.Helper()
	goldenfile.AssertString(t, filepath.Join("testdata", name+".golden"), got)
}

func TestLoadPlaybookGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/playbooks/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no playbook fixtures: %v", err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".yaml")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			pb, err := LoadPlaybook(filepath.ToSlash(f), data)
			var got string
			if err != nil {
				if _, ok := err.(*InvalidError); !ok {
					t.Fatalf("error is %T, want *InvalidError: %v", err, err)
				}
				got = "error:\n" + err.Error() + "\n"
			} else {
				b, _ := json.MarshalIndent(pb, "", "  ")
				got = "ok:\n" + string(b) + "\n"
			}
			golden(t, "playbooks/"+name, got)
		})
	}
}

func TestSerialBatchSize(t *testing.T) {
	tests := []struct {
		serial Serial
		hosts  int
		want   int
	}{
		{Serial{}, 7, 7},
		{Serial{Count: 2}, 7, 2},
		{Serial{Count: 10}, 7, 7},
		{Serial{Percent: 30}, 5, 2}, // 1.5 rounds up
		{Serial{Percent: 30}, 10, 3},
		{Serial{Percent: 1}, 10, 1},
		{Serial{Percent: 100}, 10, 10},
		{Serial{Count: 3}, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.serial.String()+"/"+string(rune('0'+tt.hosts)), func(t *testing.T) {
			if got := tt.serial.BatchSize(tt.hosts); got != tt.want {
				t.Errorf("BatchSize(%d) = %d, want %d", tt.hosts, got, tt.want)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	tests := []struct {
		base time.Duration
		n    int
		want time.Duration
	}{
		{time.Second, 1, time.Second},
		{time.Second, 2, 2 * time.Second},
		{time.Second, 4, 8 * time.Second},
		{0, 1, DefaultRetryDelay},
		{20 * time.Second, 3, MaxRetryDelay},
		{time.Second, 200, MaxRetryDelay}, // no overflow
	}
	for _, tt := range tests {
		if got := Backoff(tt.base, tt.n); got != tt.want {
			t.Errorf("Backoff(%s, %d) = %s, want %s", tt.base, tt.n, got, tt.want)
		}
	}
}

func TestParseFacts(t *testing.T) {
	tests := []struct {
		file string
		want Facts
	}{
		{"debian12", Facts{
			OS: "debian", OSVersion: "12", OSFamily: "debian", Arch: "x86_64", Kernel: "6.1.0-18-amd64",
			CPUs: 4, MemoryMiB: 7944, SwapMiB: 1023, Hostname: "master1",
			Addresses:  []string{"10.0.1.11", "10.0.1.100", "fd00::11"},
			Interfaces: []string{"lo", "ens3", "veth1a2b"},
			MachineID:  "4f1c2d3e4b5a69788796a5b4c3d2e1f0", InitSystem: "systemd", PackageManager: "apt",
			EpochSeconds: 1718000000.123456789,
		}},
		{"rocky9-noip", Facts{
			OS: "rocky", OSVersion: "9.3", OSFamily: "rhel", Arch: "aarch64", Kernel: "5.14.0-362.8.1.el9_3.aarch64",
			CPUs: 2, MemoryMiB: 3774, SwapMiB: 0, Hostname: "worker7",
			Interfaces: []string{"eth0", "lo"},
			MachineID:  "0123456789abcdef0123456789abcdef", InitSystem: "systemd", PackageManager: "dnf",
			EpochSeconds: 1718000001.5,
		}},
		{"busybox", Facts{
			OS: "alpine", OSVersion: "3.19.1", OSFamily: "other", Arch: "x86_64", Kernel: "6.6.14-0-lts",
			CPUs: 1, MemoryMiB: 488, Hostname: "tiny", Interfaces: []string{"eth0"},
			InitSystem: "other", PackageManager: "unknown", EpochSeconds: 1718000002,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata/facts", tt.file+".txt"))
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParseFacts(string(data))
			if err != nil {
				t.Fatal(err)
			}
			g, _ := json.Marshal(got)
			w, _ := json.Marshal(tt.want)
			if string(g) != string(w) {
				t.Errorf("facts\n got %s\nwant %s", g, w)
			}
		})
	}
	t.Run("truncated", func(t *testing.T) {
		data, _ := os.ReadFile("testdata/facts/truncated.txt")
		_, err := ParseFacts(string(data))
		if err == nil || !strings.Contains(err.Error(), "truncated") {
			t.Fatalf("want truncated error, got %v", err)
		}
	})
}

func TestCondition(t *testing.T) {
	host := &inventory.Host{Name: "m1", Groups: []string{"etcd", "masters"}, Labels: map[string]string{"zone": "eu-1"}}
	facts := &Facts{OSFamily: "debian", Arch: "x86_64", CPUs: 4}
	tests := []struct {
		expr string
		want bool
		err  string
	}{
		{expr: "facts.osFamily == debian", want: true},
		{expr: `facts.osFamily == "rhel"`, want: false},
		{expr: "facts.arch != aarch64", want: true},
		{expr: "facts.cpus == 4 and host in masters", want: true},
		{expr: "host not in masters", want: false},
		{expr: "host in workers", want: false},
		{expr: "host.labels.zone == 'eu-1' and host.name == m1", want: true},
		{expr: "host.labels.rack == r1", want: false},
		{expr: "facts.osFamly == debian", err: `unknown fact "osFamly" (did you mean "osFamily"?)`},
		{expr: "uname is linux", err: `cannot parse condition "uname is linux"`},
		{expr: "kernel == 6", err: `unknown operand "kernel"`},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			c, err := ParseCondition(tt.expr)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Eval(host, facts); got != tt.want {
				t.Errorf("Eval = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRedactor(t *testing.T) {
	r := newRedactor([]string{"s3cret", "", "s3cret-longer"}, func(s string) string { return strings.ReplaceAll(s, "token=abc", "token=***") })
	got := r("pw=s3cret-longer other=s3cret token=abc")
	want := "pw=" + Redacted + " other=" + Redacted + " token=***"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestResolvePlaybook(t *testing.T) {
	dir := t.TempDir()
	own := filepath.Join(dir, "mine.yaml")
	if err := os.WriteFile(own, []byte("name: mine\nplays:\n  - {hosts: all, steps: [x]}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		arg, wantName, wantErr string
	}{
		{arg: "check", wantName: "check"},
		{arg: own, wantName: "mine"},
		{arg: "chek", wantErr: `chek: no such playbook; did you mean "check"? (embedded: certs-renew, check`},
		{arg: filepath.Join(dir, "missing.yaml"), wantErr: "read playbook: open "},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.arg), func(t *testing.T) {
			pb, err := ResolvePlaybook(tt.arg)
			if tt.wantErr != "" {
				if _, ok := err.(*InvalidError); !ok || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v (%T), want InvalidError containing %q", err, err, tt.wantErr)
				}
				return
			}
			if err != nil || pb.Name != tt.wantName {
				t.Fatalf("got %v, %v", pb, err)
			}
		})
	}
}
