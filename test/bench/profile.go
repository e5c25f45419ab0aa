//go:build benchprofile

package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"time"

	"github.com/kubewright/kubewright/installer/engine"
	"github.com/kubewright/kubewright/installer/inventory"
	"github.com/kubewright/kubewright/installer/remote"
	"github.com/kubewright/kubewright/installer/steps"
)

// profileKubewright runs the kubewright playbook over n hosts inside this
// process, wired as `kubewright run` wires it (the registered steps, the
// inventory's hosts dialled with remote.Dial and the cluster's
// known_hosts, --concurrency n), fresh and then as a no-op, with a CPU
// profile of each run in dir. The CLI has no profiling flag; this is the
// same engine, steps and SSH code, so its profile says where the binary's
// own CPU goes. It returns the two wall times.
//
// It is built only with -tags benchprofile, so that the benchmark itself
// depends on nothing of kubewright's but the binary it drives.
func (w *workspace) profileKubewright(ctx context.Context, n int, dir string) ([2]time.Duration, error) {
	var walls [2]time.Duration
	k := kubewright{}
	if err := k.prepare(w, n); err != nil {
		return walls, err
	}
	if err := w.resetHosts(n); err != nil {
		return walls, err
	}
	pb, err := engine.ResolvePlaybook(filepath.Join(w.dir, "kubewright", "bench.yaml"))
	if err != nil {
		return walls, err
	}
	reg := engine.NewRegistry()
	steps.Register(reg)
	cl, err := inventory.Load(k.inventory(w, n))
	if err != nil {
		return walls, err
	}
	state := filepath.Join(w.dir, "kwstate", "clusters", cl.Metadata.Name)
	conn := engine.ConnectorFunc(func(ctx context.Context, h *inventory.Host) (remote.Host, error) {
		return remote.Dial(ctx, remote.Config{
			Name: h.Name, Address: h.Address, Port: h.Port, User: h.User, KeyFile: h.KeyFile,
			KnownHostsFile: filepath.Join(state, "known_hosts"),
		})
	})
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return walls, err
	}
	for i, phase := range []string{"fresh", "noop"} {
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("kubewright-n%d-%s.pprof", n, phase)))
		if err != nil {
			return walls, err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return walls, err
		}
		start := time.Now()
		_, err = engine.Run(ctx, engine.Options{
			Playbook: pb, Cluster: cl, Registry: reg, Connector: conn,
			Concurrency: n, StateDir: state,
		})
		walls[i] = time.Since(start)
		pprof.StopCPUProfile()
		f.Close()
		if err != nil {
			return walls, fmt.Errorf("in-process %s run: %w", phase, err)
		}
	}
	return walls, nil
}
