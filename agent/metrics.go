package agent

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics is the agent's Prometheus instrumentation, on its own registry
// (no process globals), served on /metrics.
type Metrics struct {
	Registry      *prometheus.Registry
	checkStatus   *prometheus.GaugeVec
	checkState    *prometheus.GaugeVec
	checkDuration *prometheus.HistogramVec
	repairs       *prometheus.CounterVec
	blocked       *prometheus.CounterVec
}

// NewMetrics registers the agent's metrics and the Go/process collectors.
func NewMetrics() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		checkStatus: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kubewright_agent_check_result",
			Help: "Latest single result of each check: 1 for the status it returned, 0 for the others.",
		}, []string{"check", "status"}),
		checkState: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kubewright_agent_check_problem",
			Help: "1 while a check is in a lasting problem (after hysteresis), 0 otherwise.",
		}, []string{"check"}),
		checkDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kubewright_agent_check_duration_seconds",
			Help:    "Time one run of a check took.",
			Buckets: []float64{.005, .01, .05, .1, .25, .5, 1, 2, 5},
		}, []string{"check"}),
		repairs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kubewright_agent_repairs_total",
			Help: "Repair decisions by outcome: started, succeeded, failed, report-only, exhausted.",
		}, []string{"check", "repair", "outcome"}),
		blocked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kubewright_agent_repairs_blocked_total",
			Help: "Rounds in which a due repair was held back, by the safety rule that held it.",
		}, []string{"repair", "rule"}),
	}
	m.Registry.MustRegister(m.checkStatus, m.checkState, m.checkDuration, m.repairs, m.blocked,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}

func (m *Metrics) Observe(name string, r Result, took time.Duration) {
	for _, s := range []Status{OK, Problem, Unknown} {
		v := 0.0
		if s == r.Status {
			v = 1
		}
		m.checkStatus.WithLabelValues(name, string(s)).Set(v)
	}
	m.checkDuration.WithLabelValues(name).Observe(took.Seconds())
}

func (m *Metrics) Act(a Action) {
	switch a.Outcome {
	case "problem":
		m.checkState.WithLabelValues(a.Check).Set(1)
	case "cleared":
		m.checkState.WithLabelValues(a.Check).Set(0)
	case "blocked":
		// counted per round by Blocked
	default:
		m.repairs.WithLabelValues(a.Check, a.Repair, a.Outcome).Inc()
	}
}

func (m *Metrics) Blocked(repair, rule string) { m.blocked.WithLabelValues(repair, rule).Inc() }
