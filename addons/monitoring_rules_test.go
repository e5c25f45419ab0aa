package addons

import (
	"encoding/json"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	amconfig "github.com/prometheus/alertmanager/config"
	"github.com/prometheus/common/model"
	promconfig "github.com/prometheus/prometheus/config"
	// Registers kubernetes_sd_configs with the configuration loader.
	_ "github.com/prometheus/prometheus/discovery/kubernetes"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// promParser is the PromQL parser of the Prometheus release kubewright
// deploys (the library's v0.316 is Prometheus v3.16).
var promParser = parser.NewParser(parser.Options{})

// ruleCases are rule files that differ: the defaults and the tuned CPU
// threshold.
func ruleCases() map[string]Params {
	return map[string]Params{
		"defaults": with(base(), func(p *Params) { p.Monitoring = MonitoringParams{Enabled: true, StorageClass: "x"} }),
		"tuned":    monitoringOn(base()),
	}
}

// TestRulesValid is `promtool check rules` on the rendered rule file: the
// rule file parser with strict fields (it validates names, durations,
// labels, annotation templates and every expression), plus each expression
// parsed again to check what it selects.
func TestRulesValid(t *testing.T) {
	for name, p := range ruleCases() {
		t.Run(name, func(t *testing.T) {
			a := addon(t, mustRender(t, p), Monitoring)
			text := str(t, object(t, a, "ConfigMap", "prometheus-config"), "data", PrometheusRulesFile)
			groups, errs := rulefmt.Parse([]byte(text), false, model.UTF8Validation, promParser, slog.New(slog.DiscardHandler))
			for _, err := range errs {
				t.Errorf("rule file: %v", err)
			}
			if groups == nil {
				t.FailNow()
			}
			seen := map[string]bool{}
			for _, g := range groups.Groups {
				for _, r := range g.Rules {
					if r.Alert == "" {
						t.Errorf("group %s has a recording rule %s; the defaults are alerts", g.Name, r.Record)
						continue
					}
					seen[r.Alert] = true
					expr, err := promParser.ParseExpr(r.Expr)
					if err != nil {
						t.Errorf("%s: %v", r.Alert, err)
						continue
					}
					if sev := r.Labels["severity"]; sev != "warning" && sev != "critical" {
						t.Errorf("%s: severity %q", r.Alert, sev)
					}
					if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
						t.Errorf("%s: no summary or description", r.Alert)
					}
					// Every selector names a job the configuration scrapes, so
					// no alert silently selects nothing.
					for _, vs := range selectors(expr) {
						if job := jobOf(vs); job != "" && !slices.Contains(scrapedJobs(), job) {
							t.Errorf("%s selects job %q, which no scrape config has", r.Alert, job)
						}
					}
				}
			}
			for _, want := range []string{
				"NodeCPUHigh", "NodeMemoryHigh", "NodeDiskSpaceLow", "NodeInodesLow", "KubeNodeNotReady",
				"KubeAPIServerDown", "EtcdMemberDown", "EtcdNoLeader", "KubeControllerManagerNoLeader", "KubeSchedulerNoLeader", "KubewrightComponentDown",
				"KubeClientCertificateExpiring", "KubewrightCertificateExpiring", "KubewrightVIPNotHeld", "KubewrightRepairFailing",
			} {
				if !seen[want] {
					t.Errorf("no %s alert", want)
				}
			}
		})
	}
}

// TestCPUThresholdInRule: the inventory's threshold and delay reach the rule.
func TestCPUThresholdInRule(t *testing.T) {
	for name, want := range map[string]struct {
		threshold string
		dur       time.Duration
	}{"defaults": {"90", 10 * time.Minute}, "tuned": {"80", 5 * time.Minute}} {
		text, err := PrometheusRules(ruleCases()[name])
		if err != nil {
			t.Fatal(err)
		}
		groups, errs := rulefmt.Parse([]byte(text), false, model.UTF8Validation, promParser, slog.New(slog.DiscardHandler))
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		found := false
		for _, g := range groups.Groups {
			for _, r := range g.Rules {
				if r.Alert != "NodeCPUHigh" {
					continue
				}
				found = true
				expr, err := promParser.ParseExpr(r.Expr)
				if err != nil {
					t.Fatal(err)
				}
				be, ok := expr.(*parser.BinaryExpr)
				if !ok || be.Op != parser.GTR || be.RHS.String() != want.threshold {
					t.Errorf("%s: NodeCPUHigh is %s, want ... > %s", name, expr, want.threshold)
				}
				if time.Duration(r.For) != want.dur {
					t.Errorf("%s: for %s, want %s", name, time.Duration(r.For), want.dur)
				}
			}
		}
		if !found {
			t.Errorf("%s: no NodeCPUHigh", name)
		}
	}
}

// scrapedJobs are the job names of the full configuration.
func scrapedJobs() []string {
	conf, err := prometheusConfig(withDefaults(monitoringOn(base())))
	if err != nil {
		panic(err)
	}
	var out []string
	for _, m := range regexp.MustCompile(`(?m)job_name: (\S+)$`).FindAllStringSubmatch(conf, -1) {
		out = append(out, m[1])
	}
	return out
}

func selectors(e parser.Expr) []*parser.VectorSelector {
	var out []*parser.VectorSelector
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			out = append(out, vs)
		}
		return nil
	})
	return out
}

func jobOf(vs *parser.VectorSelector) string {
	for _, m := range vs.LabelMatchers {
		if m.Name == "job" {
			return m.Value
		}
	}
	return ""
}

// TestPrometheusConfigValid loads the rendered prometheus.yml with
// Prometheus' own configuration loader (what the server does at start).
func TestPrometheusConfigValid(t *testing.T) {
	for name, p := range map[string]Params{
		"full":    monitoringOn(base()),
		"minimal": ruleCases()["defaults"],
	} {
		t.Run(name, func(t *testing.T) {
			a := addon(t, mustRender(t, p), Monitoring)
			text := str(t, object(t, a, "ConfigMap", "prometheus-config"), "data", "prometheus.yml")
			cfg, err := promconfig.Load(text, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatalf("prometheus.yml: %v\n%s", err, text)
			}
			if len(cfg.ScrapeConfigs) < 5 || len(cfg.AlertingConfig.AlertmanagerConfigs) != 1 {
				t.Errorf("%d scrape configs, %d alertmanagers", len(cfg.ScrapeConfigs), len(cfg.AlertingConfig.AlertmanagerConfigs))
			}
			if !slices.Equal(cfg.RuleFiles, []string{"/etc/prometheus/config/" + PrometheusRulesFile}) {
				t.Errorf("rule files %v", cfg.RuleFiles)
			}
		})
	}
}

// TestAlertmanagerConfigValid loads alertmanager.yml with Alertmanager's
// own loader (v0.35, the release deployed) and checks where alerts go.
func TestAlertmanagerConfigValid(t *testing.T) {
	for name, tc := range map[string]struct {
		p                 Params
		webhooks, e_mails int
	}{
		"both receivers": {monitoringOn(base()), 1, 1},
		"none":           {ruleCases()["defaults"], 0, 0},
		"smtp without login": {with(monitoringOn(base()), func(p *Params) {
			p.Monitoring.WebhookURL = ""
			p.Monitoring.SMTP.Username, p.Monitoring.SMTP.Password, p.Monitoring.SMTP.RequireTLS = "", "", false
		}), 0, 1},
	} {
		t.Run(name, func(t *testing.T) {
			text, err := AlertmanagerConfig(tc.p)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := amconfig.Load(text)
			if err != nil {
				t.Fatalf("alertmanager.yml: %v\n%s", err, text)
			}
			if cfg.Route.Receiver != "default" || len(cfg.Receivers) != 1 {
				t.Fatalf("route to %q, %d receivers", cfg.Route.Receiver, len(cfg.Receivers))
			}
			r := cfg.Receivers[0]
			if len(r.WebhookConfigs) != tc.webhooks || len(r.EmailConfigs) != tc.e_mails {
				t.Errorf("%d webhooks, %d e-mails; want %d, %d", len(r.WebhookConfigs), len(r.EmailConfigs), tc.webhooks, tc.e_mails)
			}
			if tc.e_mails > 0 && r.EmailConfigs[0].To != strings.Join(tc.p.Monitoring.SMTP.To, ", ") {
				t.Errorf("e-mail to %q", r.EmailConfigs[0].To)
			}
		})
	}
}

// TestDashboardsValid: each dashboard is JSON with a uid, uses the
// provisioned datasource, and every panel query is PromQL (Grafana's
// variables replaced by sample values).
func TestDashboardsValid(t *testing.T) {
	a := addon(t, mustRender(t, monitoringOn(base())), Monitoring)
	data, _, _ := unstructured.NestedStringMap(object(t, a, "ConfigMap", "grafana-dashboards").Object, "data")
	vars := strings.NewReplacer("$__rate_interval", "5m", "$node", "node1")
	uids := map[string]bool{}
	for name, text := range data {
		var d struct {
			UID    string `json:"uid"`
			Panels []struct {
				Title      string `json:"title"`
				Datasource struct {
					UID string `json:"uid"`
				} `json:"datasource"`
				Targets []struct {
					Expr string `json:"expr"`
				} `json:"targets"`
			} `json:"panels"`
		}
		if err := json.Unmarshal([]byte(text), &d); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if d.UID == "" || uids[d.UID] || len(d.Panels) == 0 {
			t.Errorf("%s: uid %q (unique, required), %d panels", name, d.UID, len(d.Panels))
		}
		uids[d.UID] = true
		for _, p := range d.Panels {
			if p.Datasource.UID != "prometheus" {
				t.Errorf("%s %q: datasource %q, want the provisioned prometheus", name, p.Title, p.Datasource.UID)
			}
			for _, tg := range p.Targets {
				if _, err := promParser.ParseExpr(vars.Replace(tg.Expr)); err != nil {
					t.Errorf("%s %q: %v", name, p.Title, err)
				}
			}
		}
	}
	if len(uids) != 3 {
		t.Errorf("%d dashboards, want cluster, nodes and etcd", len(uids))
	}
}
