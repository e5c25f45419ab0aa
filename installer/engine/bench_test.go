package engine_test

import (
	"context"
	"fmt"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kubewright/kubewright/installer/engine"
	"github.com/kubewright/kubewright/installer/engine/enginetest"
)

// noopStep plans with one remote command and finds nothing to do: the cost
// of an up-to-date cluster, where a re-run should take seconds.
type noopStep struct{ name string }

func (s noopStep) Name() string { return s.name }
func (s noopStep) Plan(ctx context.Context, t *engine.Target) ([]engine.Change, error) {
	_, err := t.Host.Exec(ctx, "test -d .")
	return nil, err
}
func (s noopStep) Apply(context.Context, *engine.Target, []engine.Change) error { return nil }

// noopPlaybook returns a registry and a playbook of ten no-op steps on all hosts.
func noopPlaybook(b *testing.B) (*engine.Registry, *engine.Playbook) {
	reg := engine.NewRegistry()
	var names []string
	for i := 1; i <= 10; i++ {
		n := fmt.Sprintf("noop%02d", i)
		reg.MustRegister(n, engine.Static(noopStep{n}))
		names = append(names, n)
	}
	pb, err := engine.LoadPlaybook("bench.yaml", []byte("name: noop\nplays:\n  - hosts: all\n    steps: ["+strings.Join(names, ", ")+"]\n"))
	if err != nil {
		b.Fatal(err)
	}
	return reg, pb
}

// peakHeap samples live heap bytes until stopped; ReadMemStats would stop
// the world on every sample.
func peakHeap() (stop func() uint64) {
	samples := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	var peak uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(samples)
			peak = max(peak, samples[0].Value.Uint64())
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 { close(done); wg.Wait(); return peak }
}

func maxRSSMiB() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Maxrss) / 1024 // Linux reports KiB
}

// benchRun runs the no-op playbook b.N times over hosts reached by conn.
func benchRun(b *testing.B, names []string, conn engine.Connector) {
	reg, pb := noopPlaybook(b)
	cluster := enginetest.NewCluster("bench", map[string][]string{"workers": names})
	state := b.TempDir()
	runtime.GC()
	stop := peakHeap()
	start := time.Now()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_, err := engine.Run(context.Background(), engine.Options{
			Playbook: pb, Cluster: cluster.Cluster, Selector: cluster, Registry: reg,
			Connector: conn, StateDir: state, Concurrency: 50,
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	wall := time.Since(start) / time.Duration(b.N)
	b.ReportMetric(wall.Seconds(), "wall-s/run")
	b.ReportMetric(float64(stop())/(1<<20), "peak-heap-MiB")
	b.ReportMetric(maxRSSMiB(), "maxrss-MiB")
}

// BenchmarkNoopPlaybook: a 10-step no-op playbook over 50 and 500 hosts.
//
//   - local: the enginetest fake runs every command with a real /bin/sh, so
//     this measures the engine plus process spawns, not the network.
//   - ssh: every host is an in-process SSH server (remotetest) reached with
//     remote.Dial, so each run also pays an SSH handshake per host and one
//     session per command, as the CLI does. The servers live in the same
//     process: their goroutines and buffers are in the peak heap and RSS,
//     which therefore bound the engine's own footprint from above.
func BenchmarkNoopPlaybook(b *testing.B) {
	for _, n := range []int{50, 500} {
		b.Run(fmt.Sprintf("local/hosts=%d", n), func(b *testing.B) {
			benchRun(b, enginetest.Names("h", n), enginetest.NewFleet(b))
		})
		b.Run(fmt.Sprintf("ssh/hosts=%d", n), func(b *testing.B) {
			names := enginetest.Names("h", n)
			conn, _ := sshHosts(b, names)
			benchRun(b, names, conn)
		})
	}
}
