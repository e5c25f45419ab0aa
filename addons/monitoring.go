package addons

import (
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

var (
	//go:embed kube-prometheus
	kubePrometheusFS embed.FS
	//go:embed prometheus/prometheus-kubernetes.yml
	prometheusExample []byte
	//go:embed monitoring
	monitoringFS embed.FS
)

// monitoringImages: node-exporter, kube-state-metrics and kube-rbac-proxy as
// kube-prometheus pins them; Prometheus, Alertmanager and Grafana as
// kubewright's own manifests do (Prometheus and Alertmanager are the
// releases whose libraries validate the rules and alertmanager.yml in the
// tests).
var monitoringImages = []imageSpec{
	{"node-exporter", "quay.io/prometheus/node-exporter:v1.11.1", "quay.io/prometheus/node-exporter:v1.11.1"},
	{"kube-rbac-proxy", "quay.io/brancz/kube-rbac-proxy:v0.22.0", "quay.io/brancz/kube-rbac-proxy:v0.22.0"},
	{"kube-state-metrics", "registry.k8s.io/kube-state-metrics/kube-state-metrics:v2.19.0", "registry.k8s.io/kube-state-metrics/kube-state-metrics:v2.19.0"},
	{"prometheus", "quay.io/prometheus/prometheus:v3.16.0", "quay.io/prometheus/prometheus:v3.16.0"},
	{"alertmanager", "quay.io/prometheus/alertmanager:v0.35.0", "quay.io/prometheus/alertmanager:v0.35.0"},
	{"grafana", "docker.io/grafana/grafana:12.0.0", "docker.io/grafana/grafana:12.0.0"},
}

// The vendored kube-prometheus files, in apply order (RBAC and Services
// before the workloads).
var (
	nodeExporterFiles = []string{"nodeExporter-serviceAccount.yaml", "nodeExporter-clusterRole.yaml", "nodeExporter-clusterRoleBinding.yaml",
		"nodeExporter-service.yaml", "nodeExporter-networkPolicy.yaml", "nodeExporter-daemonset.yaml"}
	kubeStateMetricsFiles = []string{"kubeStateMetrics-serviceAccount.yaml", "kubeStateMetrics-clusterRole.yaml", "kubeStateMetrics-clusterRoleBinding.yaml",
		"kubeStateMetrics-service.yaml", "kubeStateMetrics-networkPolicy.yaml", "kubeStateMetrics-deployment.yaml"}
)

// The scrape jobs taken from Prometheus' example configuration.
var exampleJobs = []string{"kubernetes-apiservers", "kubernetes-nodes", "kubernetes-cadvisor"}

const (
	// PrometheusRulesFile is the key of the rules in ConfigMap
	// prometheus-config, and the file name Prometheus loads them from.
	PrometheusRulesFile = "kubewright.rules.yaml"
	// ConfigHashAnnotation on a pod template changes with the
	// configuration it mounts, so a new configuration rolls the pods.
	ConfigHashAnnotation = "kubewright.io/config-hash"
	monitoringNamespace  = "monitoring"
	etcdClientSecret     = "etcd-client"
)

// renderMonitoring: namespace monitoring; node-exporter (DaemonSet on
// every node, host network) and kube-state-metrics (Deployment) from
// kube-prometheus; Prometheus (StatefulSet, volume from the StorageClass,
// retention), Alertmanager and Grafana from kubewright's own manifests.
func renderMonitoring(p Params) ([]*unstructured.Unstructured, []string, error) {
	m := p.Monitoring
	own := func(file string) ([]*unstructured.Unstructured, error) {
		return decodeFiles(monitoringFS, "monitoring", file)
	}
	var objs []*unstructured.Unstructured
	ns, err := own("namespace.yaml")
	if err != nil {
		return nil, nil, err
	}
	objs = append(objs, ns...)

	ne, err := decodeFiles(kubePrometheusFS, "kube-prometheus", nodeExporterFiles...)
	if err != nil {
		return nil, nil, err
	}
	if m.AgentMetrics {
		if err := proxyAgentMetrics(ne); err != nil {
			return nil, nil, err
		}
	}
	objs = append(objs, ne...)
	ksm, err := decodeFiles(kubePrometheusFS, "kube-prometheus", kubeStateMetricsFiles...)
	if err != nil {
		return nil, nil, err
	}
	objs = append(objs, ksm...)

	prom, err := renderPrometheus(p)
	if err != nil {
		return nil, nil, err
	}
	objs = append(objs, prom...)
	am, err := renderAlertmanager(p)
	if err != nil {
		return nil, nil, err
	}
	objs = append(objs, am...)
	gr, err := renderGrafana(p)
	if err != nil {
		return nil, nil, err
	}
	objs = append(objs, gr...)

	if err := setImages(Monitoring, objs, monitoringImages, p); err != nil {
		return nil, nil, err
	}
	return objs, nil, nil
}

// proxyAgentMetrics adds a kube-rbac-proxy to node-exporter's pods that
// serves kubewright-agent's /metrics (on the node's loopback only) on the
// node's address, like the one in front of node-exporter: TLS, and only for
// callers allowed to get /metrics (Prometheus).
func proxyAgentMetrics(objs []*unstructured.Unstructured) error {
	ds, err := find(Monitoring, objs, "DaemonSet", "node-exporter")
	if err != nil {
		return err
	}
	proxy, err := container(Monitoring, ds, "kube-rbac-proxy")
	if err != nil {
		return err
	}
	c := (&unstructured.Unstructured{Object: map[string]any{"c": proxy}}).DeepCopy().Object["c"].(map[string]any)
	c["name"] = "kube-rbac-proxy-agent"
	args := stringSlice(c, "args")
	found := 0
	for i, a := range args {
		switch {
		case strings.HasPrefix(a, "--secure-listen-address="):
			args[i] = fmt.Sprintf("--secure-listen-address=[$(IP)]:%d", agentProxyPort)
			found++
		case strings.HasPrefix(a, "--upstream="):
			args[i] = fmt.Sprintf("--upstream=http://127.0.0.1:%d/", agentMetricsPort)
			found++
		}
	}
	if found != 2 {
		return manifestError(Monitoring, "node-exporter's kube-rbac-proxy has no --secure-listen-address/--upstream")
	}
	setStringSlice(c, "args", args)
	c["ports"] = []any{map[string]any{"containerPort": int64(agentProxyPort), "hostPort": int64(agentProxyPort), "name": "https-agent"}}
	ps, _ := podSpec(Monitoring, ds)
	ps["containers"] = append(ps["containers"].([]any), c)

	np, err := find(Monitoring, objs, "NetworkPolicy", "node-exporter")
	if err != nil {
		return err
	}
	ingress, _, _ := unstructured.NestedSlice(np.Object, "spec", "ingress")
	if len(ingress) != 1 {
		return manifestError(Monitoring, "NetworkPolicy node-exporter has not one ingress rule")
	}
	rule := ingress[0].(map[string]any)
	rule["ports"] = append(rule["ports"].([]any), map[string]any{"port": int64(agentProxyPort), "protocol": "TCP"})
	return unstructured.SetNestedSlice(np.Object, ingress, "spec", "ingress")
}

func renderPrometheus(p Params) ([]*unstructured.Unstructured, error) {
	m := p.Monitoring
	objs, err := decodeFiles(monitoringFS, "monitoring", "prometheus.yaml")
	if err != nil {
		return nil, err
	}
	conf, err := prometheusConfig(p)
	if err != nil {
		return nil, err
	}
	rules, err := PrometheusRules(p)
	if err != nil {
		return nil, err
	}
	cm, err := find(Monitoring, objs, "ConfigMap", "prometheus-config")
	if err != nil {
		return nil, err
	}
	data := map[string]string{"prometheus.yml": conf, PrometheusRulesFile: rules}
	cm.Object["data"] = stringMapAny(data)

	sts, err := find(Monitoring, objs, "StatefulSet", "prometheus")
	if err != nil {
		return nil, err
	}
	c, err := container(Monitoring, sts, "prometheus")
	if err != nil {
		return nil, err
	}
	// Size-based retention keeps the volume from filling up before the
	// time-based one: 85% of it (Prometheus' MB are MiB).
	replaceInStrings(c, "args", strings.NewReplacer(
		"=RETENTION_SIZE", fmt.Sprintf("=%dMB", quantityMiB(m.StorageSize)*85/100),
		"=RETENTION", "="+m.Retention,
	))
	claims, _, _ := unstructured.NestedSlice(sts.Object, "spec", "volumeClaimTemplates")
	if len(claims) != 1 {
		return nil, manifestError(Monitoring, "StatefulSet prometheus has not one volume claim")
	}
	claim := claims[0].(map[string]any)
	if err := unstructured.SetNestedField(claim, m.StorageClass, "spec", "storageClassName"); err != nil {
		return nil, err
	}
	if err := unstructured.SetNestedField(claim, m.StorageSize, "spec", "resources", "requests", "storage"); err != nil {
		return nil, err
	}
	if err := unstructured.SetNestedSlice(sts.Object, claims, "spec", "volumeClaimTemplates"); err != nil {
		return nil, err
	}
	hashed := []map[string]string{data}
	if ec := m.EtcdClient; ec != nil && len(m.EtcdEndpoints) > 0 {
		secretData := map[string]string{"ca.crt": ec.CA, "client.crt": ec.Cert, "client.key": ec.Key}
		sec := secret(monitoringNamespace, etcdClientSecret, "prometheus", secretData)
		i := slices.Index(objs, cm)
		objs = slices.Insert(objs, i, sec)
		ps, _ := podSpec(Monitoring, sts)
		ps["volumes"] = append(ps["volumes"].([]any), map[string]any{"name": etcdClientSecret, "secret": map[string]any{"secretName": etcdClientSecret, "defaultMode": int64(0o400)}})
		c["volumeMounts"] = append(c["volumeMounts"].([]any), map[string]any{"name": etcdClientSecret, "mountPath": "/etc/prometheus/secrets/" + etcdClientSecret, "readOnly": true})
		hashed = append(hashed, secretData)
	}
	if err := annotateConfigHash(Monitoring, sts, hashed...); err != nil {
		return nil, err
	}
	if err := checkResolved(Monitoring, objs, []string{"STORAGE_CLASS", "STORAGE_SIZE", "RETENTION"}); err != nil {
		return nil, err
	}
	return objs, nil
}

// prometheusConfig is prometheus.yml: the example's global settings and its
// apiserver, kubelet and cAdvisor jobs (each sample labelled with its node),
// then kubewright's jobs, with the inventory's targets.
func prometheusConfig(p Params) (string, error) {
	m := p.Monitoring
	var example map[string]any
	if err := yaml.Unmarshal(prometheusExample, &example); err != nil {
		return "", manifestError(Monitoring, "prometheus-kubernetes.yml: %v", err)
	}
	global, _ := example["global"].(map[string]any)
	if global == nil {
		return "", manifestError(Monitoring, "prometheus-kubernetes.yml has no global section")
	}
	global["scrape_interval"] = "30s"
	global["evaluation_interval"] = "30s"
	if p.Monitoring.ClusterName != "" {
		global["external_labels"] = map[string]any{"cluster": p.Monitoring.ClusterName}
	}
	list, _ := example["scrape_configs"].([]any)
	var jobs []any
	for _, name := range exampleJobs {
		i := slices.IndexFunc(list, func(j any) bool { jm, _ := j.(map[string]any); return jm["job_name"] == name })
		if i < 0 {
			return "", manifestError(Monitoring, "prometheus-kubernetes.yml has no job %s", name)
		}
		job := list[i].(map[string]any)
		if name != "kubernetes-apiservers" {
			rc, _ := job["relabel_configs"].([]any)
			job["relabel_configs"] = append(rc, map[string]any{"source_labels": []any{"__meta_kubernetes_node_name"}, "target_label": "node"})
		}
		jobs = append(jobs, job)
	}
	raw, err := monitoringFS.ReadFile("monitoring/scrape-configs.yaml")
	if err != nil {
		return "", err
	}
	var own []map[string]any
	if err := yaml.Unmarshal(raw, &own); err != nil {
		return "", fmt.Errorf("monitoring/scrape-configs.yaml: %w", err)
	}
	for _, job := range own {
		var targets []string
		switch job["job_name"] {
		case "etcd":
			if m.EtcdClient == nil {
				continue // without its client certificate etcd refuses the scrape
			}
			targets = m.EtcdEndpoints
		case "control-plane-vip":
			if m.ControlPlaneEndpoint != "" {
				targets = []string{m.ControlPlaneEndpoint}
			}
		case "kubewright-agent":
			if !m.AgentMetrics {
				continue
			}
		}
		if _, static := job["static_configs"]; static {
			if len(targets) == 0 {
				continue
			}
			job["static_configs"] = []any{map[string]any{"targets": stringsAny(targets)}}
		}
		jobs = append(jobs, job)
	}
	conf := map[string]any{
		"global":         global,
		"rule_files":     []any{"/etc/prometheus/config/" + PrometheusRulesFile},
		"alerting":       map[string]any{"alertmanagers": []any{map[string]any{"static_configs": []any{map[string]any{"targets": []any{"alertmanager.monitoring.svc:9093"}}}}}},
		"scrape_configs": jobs,
	}
	return yamlText(conf)
}

// PrometheusRules is the rule file of p: rules.yaml with the CPU alert's
// threshold and delay.
func PrometheusRules(p Params) (string, error) {
	p = withDefaults(p)
	raw, err := monitoringFS.ReadFile("monitoring/rules.yaml")
	if err != nil {
		return "", err
	}
	s := strings.NewReplacer(
		"__CPU_PERCENT__", strconv.Itoa(p.Monitoring.CPUPercent),
		"__CPU_FOR__", strconv.Itoa(p.Monitoring.CPUForMinutes)+"m",
	).Replace(string(raw))
	if strings.Contains(s, "__CPU_") {
		return "", manifestError(Monitoring, "rules.yaml has an unknown placeholder")
	}
	return s, nil
}

// AlertmanagerConfig is alertmanager.yml of p: alertmanager-config.yaml with
// the receivers' webhook and e-mail settings (and the SMTP login).
func AlertmanagerConfig(p Params) (string, error) {
	m := withDefaults(p).Monitoring
	raw, err := monitoringFS.ReadFile("monitoring/alertmanager-config.yaml")
	if err != nil {
		return "", err
	}
	var conf map[string]any
	if err := yaml.Unmarshal(raw, &conf); err != nil {
		return "", fmt.Errorf("monitoring/alertmanager-config.yaml: %w", err)
	}
	receivers, _ := conf["receivers"].([]any)
	if len(receivers) != 1 {
		return "", manifestError(Monitoring, "alertmanager-config.yaml has not one receiver")
	}
	recv := receivers[0].(map[string]any)
	global := map[string]any{"resolve_timeout": "5m"}
	if m.WebhookURL != "" {
		recv["webhook_configs"] = []any{map[string]any{"url": m.WebhookURL, "send_resolved": true}}
	}
	if s := m.SMTP; s != nil {
		global["smtp_smarthost"] = s.Smarthost
		global["smtp_from"] = s.From
		global["smtp_require_tls"] = s.RequireTLS
		if s.Username != "" {
			global["smtp_auth_username"] = s.Username
			global["smtp_auth_password"] = s.Password
		}
		recv["email_configs"] = []any{map[string]any{"to": strings.Join(s.To, ", "), "send_resolved": true}}
	}
	conf["global"] = global
	return yamlText(conf)
}

func renderAlertmanager(p Params) ([]*unstructured.Unstructured, error) {
	objs, err := decodeFiles(monitoringFS, "monitoring", "alertmanager.yaml")
	if err != nil {
		return nil, err
	}
	conf, err := AlertmanagerConfig(p)
	if err != nil {
		return nil, err
	}
	sec, err := find(Monitoring, objs, "Secret", "alertmanager-config")
	if err != nil {
		return nil, err
	}
	data := map[string]string{"alertmanager.yml": conf}
	sec.Object["data"] = base64Map(data)
	sts, err := find(Monitoring, objs, "StatefulSet", "alertmanager")
	if err != nil {
		return nil, err
	}
	if err := annotateConfigHash(Monitoring, sts, data); err != nil {
		return nil, err
	}
	return objs, nil
}

func renderGrafana(p Params) ([]*unstructured.Unstructured, error) {
	objs, err := decodeFiles(monitoringFS, "monitoring", "grafana.yaml")
	if err != nil {
		return nil, err
	}
	dashboards := map[string]string{}
	entries, err := fs.ReadDir(monitoringFS, "monitoring/dashboards")
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		b, err := monitoringFS.ReadFile(path.Join("monitoring/dashboards", e.Name()))
		if err != nil {
			return nil, err
		}
		dashboards[e.Name()] = string(b)
	}
	cm, err := find(Monitoring, objs, "ConfigMap", "grafana-dashboards")
	if err != nil {
		return nil, err
	}
	cm.Object["data"] = stringMapAny(dashboards)
	dep, err := find(Monitoring, objs, "Deployment", "grafana")
	if err != nil {
		return nil, err
	}
	hashed := []map[string]string{dashboards}
	for _, name := range []string{"grafana-datasources", "grafana-dashboard-provider"} {
		o, err := find(Monitoring, objs, "ConfigMap", name)
		if err != nil {
			return nil, err
		}
		d, _, _ := unstructured.NestedStringMap(o.Object, "data")
		hashed = append(hashed, d)
	}
	if pw := p.Monitoring.GrafanaAdminPassword; pw != "" {
		data := map[string]string{"admin-user": "admin", "admin-password": pw}
		objs = slices.Insert(objs, 0, secret(monitoringNamespace, "grafana-admin", "grafana", data))
		c, err := container(Monitoring, dep, "grafana")
		if err != nil {
			return nil, err
		}
		for _, kv := range [][2]string{{"GF_SECURITY_ADMIN_USER", "admin-user"}, {"GF_SECURITY_ADMIN_PASSWORD", "admin-password"}} {
			setEnvVar(c, map[string]any{"name": kv[0], "valueFrom": map[string]any{"secretKeyRef": map[string]any{"name": "grafana-admin", "key": kv[1]}}})
		}
		hashed = append(hashed, data)
	}
	if err := annotateConfigHash(Monitoring, dep, hashed...); err != nil {
		return nil, err
	}
	return objs, nil
}

// secret is an Opaque Secret holding data (base64-encoded as the API does).
func secret(namespace, name, app string, data map[string]string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1",
		"kind":       "Secret",
		"metadata": map[string]any{
			"name": name, "namespace": namespace,
			"labels": map[string]any{"app.kubernetes.io/name": app},
		},
		"type": "Opaque",
		"data": base64Map(data),
	}}
}

func base64Map(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = base64.StdEncoding.EncodeToString([]byte(v))
	}
	return out
}

func stringMapAny(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func stringsAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// annotateConfigHash puts a digest of the configuration a workload mounts
// on its pod template: the pods roll exactly when it changes. The digest
// covers keys and values in a fixed order; it reveals nothing usable about
// a secret in it.
func annotateConfigHash(addon string, o *unstructured.Unstructured, data ...map[string]string) error {
	h := sha256.New()
	for _, d := range data {
		keys := make([]string, 0, len(d))
		for k := range d {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			fmt.Fprintf(h, "%d:%s%d:%s", len(k), k, len(d[k]), d[k])
		}
	}
	ann, _, err := unstructured.NestedStringMap(o.Object, "spec", "template", "metadata", "annotations")
	if err != nil {
		return manifestError(addon, "%s %s: %v", o.GetKind(), o.GetName(), err)
	}
	if ann == nil {
		ann = map[string]string{}
	}
	ann[ConfigHashAnnotation] = hex.EncodeToString(h.Sum(nil))[:16]
	return unstructured.SetNestedStringMap(o.Object, ann, "spec", "template", "metadata", "annotations")
}
