package agent

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/utils/clock"
)

// StatusDoc is the /status JSON.
type StatusDoc struct {
	Node    string        `json:"node"`
	Role    string        `json:"role"`
	Version string        `json:"version"`
	Started time.Time     `json:"started"`
	Checks  []CheckStatus `json:"checks"`
}

// Handler serves /healthz (the agent's own liveness: its loop ticked within
// three intervals), /metrics and /status.
func Handler(a *Agent, m *Metrics, doc func() StatusDoc, lastTick func() time.Time, clk clock.PassiveClock, interval time.Duration) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if t := lastTick(); t.IsZero() || clk.Since(t) > 3*interval+a.cfg.Timeout.Duration {
			http.Error(w, "agent loop has not ticked since "+t.Format(time.RFC3339), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.Handle("/metrics", promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("/status", func(w http.ResponseWriter, r *http.Request) {
		d := doc()
		d.Checks = a.Status()
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(d)
	})
	return mux
}
