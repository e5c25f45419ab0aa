// Package daemon wires kubewright-agent together: the checks and repair
// ladders for this node's role, the cluster-wide safety gate, the reporters
// (NodeConditions, Events, journal, metrics) and the HTTP endpoints. The
// behaviour lives in agent, agent/checks, agent/repairs and agent/safety.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/clock"

	"github.com/kubewright/kubewright/agent"
	"github.com/kubewright/kubewright/agent/checks"
	"github.com/kubewright/kubewright/agent/safety"
)

// Options are the daemon's process-level settings.
type Options struct {
	Version string
	Logger  *slog.Logger
}

// Run is the daemon: it returns only when ctx ends or it cannot start
// (bad kubeconfig, listen address taken). Failed checks and an unreachable
// API never end it.
func Run(ctx context.Context, cfg *agent.Config, o Options) error {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	log = log.With("node", cfg.NodeName)
	entries, err := Entries(cfg)
	if err != nil {
		return err
	}
	cs, err := clientset(cfg.Kubeconfig, cfg.Endpoints.APIServers)
	if err != nil {
		return err
	}
	clk := clock.RealClock{}
	gate := &safety.Gate{Client: cs, Node: cfg.NodeName, Config: cfg.Budget, Clock: clk, Logger: log}
	if cfg.Role == "master" && len(cfg.Endpoints.EtcdMembers) > 0 {
		gate.Quorum, err = quorumGuard(cfg)
		if err != nil {
			return err
		}
	}
	metrics := agent.NewMetrics()
	sink := agent.NewFanout(metrics, &agent.Journal{Path: cfg.Journal}, &agent.Events{Client: cs, Node: cfg.NodeName, Logger: log}, log, 256)
	a := agent.New(agent.Options{Config: cfg, Entries: entries, Gate: gate, Units: checks.Systemd{}, Clock: clk, Sink: sink, Logger: log})
	conds := &agent.NodeConditions{Client: cs, Node: cfg.NodeName, Clock: clk}

	var lastTick atomic.Int64
	started := clk.Now()
	doc := func() agent.StatusDoc {
		return agent.StatusDoc{Node: cfg.NodeName, Role: cfg.Role, Version: o.Version, Started: started}
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s (set listen: in %s to a free address): %w", cfg.Listen, agent.DefaultConfigPath, err)
	}
	srv := &http.Server{
		Handler:           agent.Handler(a, metrics, doc, func() time.Time { return time.Unix(0, lastTick.Load()) }, clk, cfg.Interval.Duration),
		ReadHeaderTimeout: 5 * time.Second,
	}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server stopped", "err", err)
		}
	}()
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	dctx, stopDrain := context.WithCancel(ctx)
	defer stopDrain()
	go sink.Drain(dctx)

	notify := newNotifier()
	wd := watchdogInterval()
	lastPing := time.Time{}
	log.Info("kubewright-agent started", "version", o.Version, "role", cfg.Role, "checks", len(entries), "listen", ln.Addr().String(), "mode", cfg.Mode)
	first := true
	a.Run(ctx, func() {
		now := clk.Now()
		lastTick.Store(now.UnixNano())
		sctx, cancel := context.WithTimeout(ctx, cfg.Timeout.Duration)
		if err := conds.Sync(sctx, a.Status()); err != nil {
			log.Warn("node conditions not updated", "err", err)
		}
		cancel()
		if first {
			first = false
			if err := notify.send("READY=1"); err != nil {
				log.Warn("sd_notify", "err", err)
			}
		}
		// The watchdog is fed only by a loop that completes rounds, so a
		// wedged agent is restarted by systemd.
		if wd > 0 && now.Sub(lastPing) >= wd {
			_ = notify.send("WATCHDOG=1")
			lastPing = now
		}
	})
	log.Info("kubewright-agent stopping")
	return nil
}

// CheckOnce runs every check once and prints a table; it repairs nothing
// and needs no API access. It returns the number of checks with a problem.
func CheckOnce(ctx context.Context, cfg *agent.Config, w io.Writer) (int, error) {
	entries, err := Entries(cfg)
	if err != nil {
		return 0, err
	}
	c := *cfg
	c.FailAfter, c.ClearAfter = 1, 1
	c.Mode = agent.ModeReportOnly
	a := agent.New(agent.Options{Config: &c, Entries: entries, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	a.Tick(ctx)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CHECK\tSTATUS\tREASON\tMESSAGE")
	problems := 0
	for _, s := range a.Status() {
		if s.Last.Status == agent.Problem {
			problems++
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.Name, s.Last.Status, s.Last.Reason, strings.ReplaceAll(s.Last.Message, "\n", " "))
	}
	return problems, tw.Flush()
}

func clientset(kubeconfig string, fallbacks []string) (kubernetes.Interface, error) {
	if kubeconfig == "" {
		return nil, errors.New("kubeconfig is empty in the agent config: set it to the agent's credential (install writes /etc/kubewright/agent.kubeconfig)")
	}
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("agent kubeconfig %s: %w", kubeconfig, err)
	}
	// Short timeouts: an API outage must not stall a round of checks.
	rc.Timeout = 10 * time.Second
	rc.UserAgent = "kubewright-agent"
	rc.Dial = failoverDial(fallbacks, 3*time.Second)
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("agent client from %s: %w", kubeconfig, err)
	}
	return cs, nil
}

func quorumGuard(cfg *agent.Config) (*safety.QuorumGuard, error) {
	e := cfg.Endpoints
	client, err := checks.NewEtcdClient(e.EtcdCACert, e.EtcdCert, e.EtcdKey)
	if err != nil {
		return nil, fmt.Errorf("etcd client for the quorum guard: %w", err)
	}
	return &safety.QuorumGuard{
		Healthy: func(ctx context.Context) (int, int, error) {
			h, _ := checks.HealthyMembers(ctx, client, e.EtcdMembers)
			return h, len(e.EtcdMembers), nil
		},
		LocalHealthy: func(ctx context.Context) (bool, error) {
			h, _ := checks.HealthyMembers(ctx, client, []string{e.EtcdEndpoint})
			return h == 1, nil
		},
	}, nil
}
