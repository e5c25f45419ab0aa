package steps

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/kubewright/kubewright/installer/engine"
	"github.com/kubewright/kubewright/installer/render"
	"github.com/kubewright/kubewright/installer/steps/stepkit"
)

// EtcdHealth is the `etcd-health` step: it waits until etcd, asked through
// this host's local member, reports every member of the cluster healthy. The
// etcd step restarts members with --no-block and does not wait, so a rolling
// play (serial: 1) needs this step after it: without it the next member could
// be restarted while the previous one has not rejoined, losing quorum.
//
// It uses the apiserver-etcd-client certificate (present on every master)
// because that is what the apiserver itself talks to etcd with.
type EtcdHealth struct {
	// Timeout bounds the wait; zero means 3 minutes.
	Timeout time.Duration
	// Interval between attempts; zero means 2 seconds.
	Interval time.Duration
}

func (EtcdHealth) Name() string { return "etcd-health" }

// etcdHealthCmd asks the local member for every member's health. A queued
// or running systemd job for etcd (the etcd step restarts with --no-block)
// counts as not healthy: otherwise the old process could still answer
// healthy just before it stops, and the next member would be restarted too.
func etcdHealthCmd() string {
	p := render.PKIDir
	return `jobs=$(systemctl list-jobs --no-legend etcd.service 2>/dev/null); ` +
		`if [ -n "$jobs" ]; then echo "systemd job pending for etcd.service: $jobs"; exit 1; fi; ` +
		"etcdctl --endpoints=https://127.0.0.1:2379 --cacert=" + p + "/etcd/ca.crt " +
		"--cert=" + p + "/apiserver-etcd-client.crt --key=" + p + "/apiserver-etcd-client.key " +
		"--command-timeout=5s endpoint health --cluster"
}

// healthyMembers counts "is healthy" lines in etcdctl's output; etcdctl
// prints "is unhealthy" for the others, which does not match.
func healthyMembers(out string) int {
	n := 0
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, " is healthy") {
			n++
		}
	}
	return n
}

func (s EtcdHealth) check(ctx context.Context, t *engine.Target) (bool, string) {
	want := len(t.Cluster.Etcd())
	out, err := stepkit.RunAsRoot(ctx, t, etcdHealthCmd()+" 2>&1")
	got := healthyMembers(out)
	if err == nil && got >= want {
		return true, ""
	}
	detail := fmt.Sprintf("%d of %d members healthy", got, want)
	// etcdctl's own words (stderr is folded into stdout) say which member
	// is unhealthy and why; bounded so a journal line stays readable.
	if msg := strings.Join(strings.Fields(out), " "); msg != "" {
		detail += ": " + msg[:min(len(msg), 400)]
	} else if err != nil {
		detail += ": " + strings.TrimSpace(err.Error())
	}
	return false, detail
}

// Plan is empty when every member already answers healthy, so a re-run on
// a healthy cluster plans nothing.
func (s EtcdHealth) Plan(ctx context.Context, t *engine.Target) ([]engine.Change, error) {
	if ok, detail := s.check(ctx, t); !ok {
		return []engine.Change{{Action: "wait", Object: "etcd cluster health", Detail: detail}}, nil
	}
	return nil, nil
}

func (s EtcdHealth) Apply(ctx context.Context, t *engine.Target, _ []engine.Change) error {
	timeout, interval := s.Timeout, s.Interval
	if timeout <= 0 {
		timeout = 3 * time.Minute
	}
	if interval <= 0 {
		interval = 2 * time.Second
	}
	deadline := time.Now().Add(timeout)
	var last string
	for {
		ok, detail := s.check(ctx, t)
		if ok {
			return nil
		}
		last = detail
		if time.Now().After(deadline) {
			return fmt.Errorf("etcd cluster not healthy via %s after %s (%s; journalctl -u etcd)", t.Inv.Name, timeout, last)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for etcd health on %s: %w (last: %s)", t.Inv.Name, ctx.Err(), last)
		case <-time.After(interval):
		}
	}
}
