package addons

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubewright/kubewright/installer/inventory"
)

func TestOptionalAddonsOffByDefault(t *testing.T) {
	if got := names(mustRender(t, base())); !slices.Equal(got, []string{Flannel, CoreDNS}) {
		t.Fatalf("base renders %v", got)
	}
	if got := names(mustRender(t, with(base(), func(p *Params) { p.Storage.Provider = "none" }))); !slices.Equal(got, []string{Flannel, CoreDNS}) {
		t.Fatalf("storage provider none renders %v", got)
	}
}

func TestOptionalRenderOrder(t *testing.T) {
	p := monitoringOn(base())
	p.MetricsServer = true
	got := names(mustRender(t, p))
	want := []string{Flannel, CoreDNS, MetricsServer, Monitoring}
	if slices.Contains(optionalNames(p), Longhorn) {
		want = []string{Flannel, CoreDNS, Longhorn, MetricsServer, Monitoring}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("add-ons %v, want %v", got, want)
	}
}

func optionalNames(p Params) []string {
	var out []string
	for _, s := range optionalSteps(withDefaults(p)) {
		out = append(out, s.name)
	}
	return out
}

func TestMetricsServerKustomization(t *testing.T) {
	a := addon(t, mustRender(t, with(base(), func(p *Params) { p.MetricsServer = true; p.Registry = "mirror.example:5000" })), MetricsServer)
	for _, o := range a.Objects {
		if o.GetLabels()["k8s-app"] != "metrics-server" {
			t.Errorf("%s %s lacks kustomization's commonLabels", o.GetKind(), o.GetName())
		}
	}
	dep := object(t, a, "Deployment", "metrics-server")
	if sel := str(t, dep, "spec", "selector", "matchLabels", "k8s-app"); sel != "metrics-server" {
		t.Errorf("selector %q", sel)
	}
	if l := str(t, dep, "spec", "template", "metadata", "labels", "k8s-app"); l != "metrics-server" {
		t.Errorf("pod label %q", l)
	}
	if s := str(t, object(t, a, "Service", "metrics-server"), "spec", "selector", "k8s-app"); s != "metrics-server" {
		t.Errorf("Service selector %q", s)
	}
	if img := ctr(t, dep, "metrics-server")["image"]; img != "mirror.example:5000/metrics-server/metrics-server:v0.9.0" {
		t.Errorf("image %v", img)
	}
	// kustomize's order: the APIService first, then the Deployment, RBAC, Service.
	if a.Objects[0].GetKind() != "APIService" || a.Objects[len(a.Objects)-1].GetKind() != "Service" {
		t.Errorf("order %s ... %s", a.Objects[0].GetKind(), a.Objects[len(a.Objects)-1].GetKind())
	}
}

// promConfig decodes prometheus.yml from the rendered ConfigMap.
func promConfig(t *testing.T, a Addon) map[string]any {
	t.Helper()
	var conf map[string]any
	if err := yaml.Unmarshal([]byte(str(t, object(t, a, "ConfigMap", "prometheus-config"), "data", "prometheus.yml")), &conf); err != nil {
		t.Fatal(err)
	}
	return conf
}

func jobs(conf map[string]any) map[string]map[string]any {
	out := map[string]map[string]any{}
	for _, j := range conf["scrape_configs"].([]any) {
		m := j.(map[string]any)
		out[m["job_name"].(string)] = m
	}
	return out
}

func TestMonitoring(t *testing.T) {
	a := addon(t, mustRender(t, monitoringOn(base())), Monitoring)
	conf := promConfig(t, a)
	js := jobs(conf)
	var got []string
	for n := range js {
		got = append(got, n)
	}
	slices.Sort(got)
	want := []string{"control-plane-vip", "etcd", "kube-state-metrics", "kubernetes-apiservers", "kubernetes-cadvisor", "kubernetes-nodes", "kubewright-agent", "node-exporter"}
	if !slices.Equal(got, want) {
		t.Fatalf("jobs %v, want %v", got, want)
	}
	targets := func(job string) []any {
		return js[job]["static_configs"].([]any)[0].(map[string]any)["targets"].([]any)
	}
	if tg := targets("etcd"); len(tg) != 3 || tg[0] != "10.0.0.11:2379" {
		t.Errorf("etcd targets %v", tg)
	}
	if tg := targets("control-plane-vip"); len(tg) != 1 || tg[0] != "10.0.0.10:8443" {
		t.Errorf("VIP targets %v", tg)
	}
	if conf["global"].(map[string]any)["external_labels"].(map[string]any)["cluster"] != "prod" {
		t.Errorf("global %v", conf["global"])
	}

	sts := object(t, a, "StatefulSet", "prometheus")
	args := stringSlice(ctr(t, sts, "prometheus"), "args")
	if !slices.Contains(args, "--storage.tsdb.retention.time=15d") || !slices.Contains(args, "--storage.tsdb.retention.size=43520MB") {
		t.Errorf("args %v (retention 15d, 85%% of 50Gi)", args)
	}
	claim := sts.Object["spec"].(map[string]any)["volumeClaimTemplates"].([]any)[0].(map[string]any)
	if sc := claim["spec"].(map[string]any)["storageClassName"]; sc != "longhorn" {
		t.Errorf("Prometheus' StorageClass %v, want longhorn's", sc)
	}
	mounts := ctr(t, sts, "prometheus")["volumeMounts"].([]any)
	if m := mounts[len(mounts)-1].(map[string]any); m["mountPath"] != "/etc/prometheus/secrets/etcd-client" {
		t.Errorf("etcd client certificate mounted at %v", m["mountPath"])
	}
	sec := object(t, a, "Secret", etcdClientSecret)
	if key, _ := base64.StdEncoding.DecodeString(str(t, sec, "data", "client.key")); string(key) != testEtcdKey {
		t.Errorf("etcd client key in the Secret: %q", key)
	}

	ds := object(t, a, "DaemonSet", "node-exporter")
	proxy := ctr(t, ds, "kube-rbac-proxy-agent")
	if a := stringSlice(proxy, "args"); !slices.Contains(a, "--upstream=http://127.0.0.1:9469/") || !slices.Contains(a, "--secure-listen-address=[$(IP)]:9470") {
		t.Errorf("agent proxy args %v", a)
	}
	if hn, _, _ := unstructured.NestedBool(ds.Object, "spec", "template", "spec", "hostNetwork"); !hn {
		t.Error("node-exporter is not on the host network: the agent proxy could not reach 127.0.0.1:9469")
	}
	if k := object(t, a, "Deployment", "kube-state-metrics").GetKind(); k != "Deployment" {
		t.Error(k)
	}

	am := alertmanagerConfig(t, a)
	recv := am["receivers"].([]any)[0].(map[string]any)
	if recv["webhook_configs"].([]any)[0].(map[string]any)["url"] != "https://sms.example.com/send?token=abc" ||
		recv["email_configs"].([]any)[0].(map[string]any)["to"] != "oncall@example.com, ops@example.com" {
		t.Errorf("receiver %v", recv)
	}
	if g := am["global"].(map[string]any); g["smtp_auth_password"] != testSMTPPassword || g["smtp_smarthost"] != "smtp.example.com:587" || g["smtp_require_tls"] != true {
		t.Errorf("global %v", g)
	}

	dash := object(t, a, "ConfigMap", "grafana-dashboards")
	for _, f := range []string{"cluster.json", "nodes.json", "etcd.json"} {
		if _, ok, _ := unstructured.NestedString(dash.Object, "data", f); !ok {
			t.Errorf("dashboard %s missing", f)
		}
	}
	if !strings.Contains(str(t, object(t, a, "ConfigMap", "grafana-datasources"), "data", "prometheus.yaml"), "url: http://prometheus.monitoring.svc:9090") {
		t.Error("Grafana's datasource is not the Prometheus Service")
	}
	g := ctr(t, object(t, a, "Deployment", "grafana"), "grafana")
	if e := env(g, "GF_SECURITY_ADMIN_PASSWORD"); e == nil || e["valueFrom"] == nil {
		t.Errorf("admin password env %v, want from Secret grafana-admin", e)
	}
}

func alertmanagerConfig(t *testing.T, a Addon) map[string]any {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(str(t, object(t, a, "Secret", "alertmanager-config"), "data", "alertmanager.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var conf map[string]any
	if err := yaml.Unmarshal(raw, &conf); err != nil {
		t.Fatal(err)
	}
	return conf
}

// TestMonitoringWithoutOptions: without receivers, agent, etcd certificate
// or VIP, the jobs and settings that need them are left out, not rendered
// half-configured.
func TestMonitoringWithoutOptions(t *testing.T) {
	a := addon(t, mustRender(t, with(base(), func(p *Params) {
		p.Monitoring = MonitoringParams{Enabled: true, StorageClass: "local-path"}
	})), Monitoring)
	js := jobs(promConfig(t, a))
	for _, j := range []string{"etcd", "kubewright-agent", "control-plane-vip"} {
		if _, ok := js[j]; ok {
			t.Errorf("job %s rendered without what it needs", j)
		}
	}
	for _, o := range a.Objects {
		if o.GetKind() == "Secret" && o.GetName() != "alertmanager-config" {
			t.Errorf("Secret %s rendered without its secret", o.GetName())
		}
	}
	if _, err := container("test", object(t, a, "DaemonSet", "node-exporter"), "kube-rbac-proxy-agent"); err == nil {
		t.Error("agent proxy rendered with AgentMetrics off")
	}
	recv := alertmanagerConfig(t, a)["receivers"].([]any)[0].(map[string]any)
	if len(recv) != 1 {
		t.Errorf("receiver without webhook or e-mail: %v", recv)
	}
	if g := ctr(t, object(t, a, "Deployment", "grafana"), "grafana"); env(g, "GF_SECURITY_ADMIN_PASSWORD") != nil {
		t.Error("Grafana password env without a password")
	}
}

// TestConfigChangeRollsPods: the config hash on each pod template follows
// the configuration it mounts, and only that.
func TestConfigChangeRollsPods(t *testing.T) {
	hash := func(p Params, kind, name string) string {
		return str(t, object(t, addon(t, mustRender(t, p), Monitoring), kind, name), "spec", "template", "metadata", "annotations", ConfigHashAnnotation)
	}
	p := monitoringOn(base())
	q := p
	q.Monitoring.CPUPercent = 70
	if hash(p, "StatefulSet", "prometheus") == hash(q, "StatefulSet", "prometheus") {
		t.Error("a new rule threshold does not roll Prometheus")
	}
	if hash(p, "StatefulSet", "alertmanager") != hash(q, "StatefulSet", "alertmanager") {
		t.Error("a new rule threshold rolls Alertmanager")
	}
	q = p
	q.Monitoring.WebhookURL = "https://other.example.com/"
	if hash(p, "StatefulSet", "alertmanager") == hash(q, "StatefulSet", "alertmanager") {
		t.Error("a new receiver does not roll Alertmanager")
	}
	q = p
	q.Monitoring.GrafanaAdminPassword = "another-one-44"
	if hash(p, "Deployment", "grafana") == hash(q, "Deployment", "grafana") {
		t.Error("a new Grafana password does not roll Grafana")
	}
}

// TestSecretsOnlyInSecrets: the SMTP password, Grafana's password and the
// etcd client key appear in no object but their Secrets (base64 there), and
// in no error message.
func TestSecretsOnlyInSecrets(t *testing.T) {
	p := monitoringOn(base())
	for _, a := range mustRender(t, p) {
		for _, o := range a.Objects {
			plain := encode(t, []*unstructured.Unstructured{o})
			for _, s := range []string{testSMTPPassword, testGrafanaPassword, "ZXRjZC1jbGllbnQta2V5LWZvci10ZXN0cw=="} {
				if strings.Contains(plain, s) {
					t.Errorf("%s %s %s contains a secret in plain text", a.Name, o.GetKind(), o.GetName())
				}
			}
		}
	}
	bad := p
	bad.Monitoring.SMTP = &SMTPParams{Smarthost: "x", From: "bad", Password: testSMTPPassword}
	_, err := Render(bad)
	if err == nil {
		t.Fatal("bad SMTP settings accepted")
	}
	if strings.Contains(err.Error(), testSMTPPassword) {
		t.Errorf("error shows the password: %v", err)
	}
}

func TestOptionalRenderErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    Params
		want string
	}{
		{"monitoring without class", with(base(), func(p *Params) { p.Monitoring.Enabled = true }), `spec.addons.monitoring.storageClass: Prometheus has no valid StorageClass ("")`},
		{"bad retention", with(base(), func(p *Params) {
			p.Monitoring = MonitoringParams{Enabled: true, StorageClass: "x", Retention: "15 days"}
		}), `invalid retention "15 days"`},
		{"replicas beyond nodes", with(base(), func(p *Params) {
			p.Storage = StorageParams{Provider: Longhorn, Replicas: 3, Nodes: []StorageNode{{Name: "a"}, {Name: "b"}}}
		}), "3 storage replicas on 2 storage nodes"},
		{"etcd client not PEM", with(monitoringOn(base()), func(p *Params) { p.Monitoring.EtcdClient = &TLSClient{CA: "x", Cert: "y", Key: "z"} }), "EtcdClient: the etcd client certificate is not PEM"},
		{"smtp half a login", with(monitoringOn(base()), func(p *Params) { p.Monitoring.SMTP.Password = "" }), "SMTP login has a username or a password but not both"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Render(tc.p)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// TestOptionalImages: every image of every optional add-on is listed by
// Images, is in its table, and moves to the registry override.
func TestOptionalImages(t *testing.T) {
	p := allOptional(base())
	p.Registry = "mirror.example:5000"
	imgs, err := Images(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range imgs {
		if !strings.HasPrefix(img, "mirror.example:5000/") {
			t.Errorf("image %s is not on the mirror", img)
		}
	}
	for _, table := range optionalImageTables() {
		for _, s := range table {
			want, _ := withRegistry(s.Default, p.Registry)
			if !slices.Contains(imgs, want) {
				t.Errorf("component %s (%s) not in Images", s.Component, want)
			}
		}
	}
	// The artifacts' image wins over the default and the override.
	p.Images = map[string]string{"prometheus": "kubewright.io/prometheus:v3.16.1"}
	imgs, err = Images(p)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(imgs, "kubewright.io/prometheus:v3.16.1") || slices.Contains(imgs, "mirror.example:5000/prometheus/prometheus:v3.16.0") {
		t.Errorf("artifact image not used: %v", imgs)
	}
}

// TestVendoredManifestSets: each multi-file folder's SOURCE lists every
// vendored file with its sha256, and they are the embedded bytes.
func TestVendoredManifestSets(t *testing.T) {
	for _, dir := range vendoredSets() {
		t.Run(dir, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(dir, "SOURCE"))
			if err != nil {
				t.Fatal(err)
			}
			fields := map[string]string{}
			files := map[string]string{}
			inFiles := false
			for _, line := range strings.Split(string(raw), "\n") {
				switch {
				case strings.HasPrefix(line, "#") || line == "":
				case line == "files:":
					inFiles = true
				case inFiles && strings.HasPrefix(line, "  "):
					name, sum, ok := strings.Cut(strings.TrimSpace(line), " ")
					if !ok {
						t.Fatalf("bad files line %q", line)
					}
					files[name] = sum
				default:
					k, v, _ := strings.Cut(line, ": ")
					fields[k] = v
				}
			}
			for _, k := range []string{"repository", "path", "version", "commit", "license"} {
				if fields[k] == "" {
					t.Errorf("SOURCE has no %s", k)
				}
			}
			if len(fields["commit"]) != 40 {
				t.Errorf("commit %q is not a full hash", fields["commit"])
			}
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				if e.Name() != "SOURCE" && files[e.Name()] == "" {
					t.Errorf("%s/%s is not listed in SOURCE", dir, e.Name())
				}
			}
			for name, want := range files {
				data, err := embeddedFile(dir, name)
				if err != nil {
					t.Errorf("%s/%s: %v", dir, name, err)
					continue
				}
				sum := sha256.Sum256(data)
				if got := hex.EncodeToString(sum[:]); got != want {
					t.Errorf("%s/%s sha256 %s, SOURCE says %s", dir, name, got, want)
				}
				onDisk, _ := os.ReadFile(filepath.Join(dir, name))
				if string(onDisk) != string(data) {
					t.Errorf("%s/%s on disk is not the embedded file", dir, name)
				}
			}
		})
	}
}

// TestOptionalFromInventory: an inventory with every add-on on renders,
// in order, with what the inventory says.
func TestOptionalFromInventory(t *testing.T) {
	src := `apiVersion: kubewright.io/v1alpha1
kind: Cluster
metadata: {name: full}
spec:
  hosts:
    - {name: m1, address: 10.0.0.11}
    - {name: w1, address: 10.0.0.21}
    - {name: w2, address: 10.0.0.22}
  groups:
    masters: [m1]
    workers: [w1, w2]
  controlPlaneEndpoint: {vip: 10.0.0.10}
  network: {plugin: flannel}
  addons:
    metricsServer: {enabled: true}
    storage: {provider: longhorn, nodes: "m1,w1"}
    monitoring:
      enabled: true
      cpuThreshold: {percent: 75}
      receivers: {webhookURL: "https://hook.example.com/"}
    logging: {enabled: true, hostLogDirs: [/opt/app/logs]}
    ingress: {enabled: true, mode: nodePort, nodes: w2}
`
	c, _, err := inventory.Parse("inv.yaml", []byte(src), inventory.WithLookupEnv(func(string) (string, bool) { return "x", true }))
	if err != nil {
		t.Fatal(err)
	}
	p := ParamsFromInventory(c)
	want := StorageParams{Provider: Longhorn, Replicas: 2, Nodes: []StorageNode{{Name: "m1", Master: true}, {Name: "w1"}}}
	if !reflect.DeepEqual(p.Storage, want) {
		t.Errorf("storage %+v, want %+v", p.Storage, want)
	}
	m := p.Monitoring
	if m.CPUPercent != 75 || m.CPUForMinutes != 10 || m.StorageClass != "longhorn" || !slices.Equal(m.EtcdEndpoints, []string{"10.0.0.11:2379"}) ||
		m.ControlPlaneEndpoint != "10.0.0.10:8443" || !m.AgentMetrics || m.ClusterName != "full" {
		t.Errorf("monitoring %+v", m)
	}
	if p.Ingress.Mode != "nodePort" || !slices.Equal(p.Ingress.Nodes, []string{"w2"}) || p.Ingress.Masters || p.Ingress.HTTPNodePort != 30080 {
		t.Errorf("ingress %+v", p.Ingress)
	}
	rendered, err := Render(p)
	if err != nil {
		t.Fatal(err)
	}
	if got := names(rendered); !slices.Equal(got, []string{Flannel, CoreDNS, Longhorn, MetricsServer, Monitoring, Logging, IngressNginx}) {
		t.Errorf("add-ons %v", got)
	}
	for _, a := range rendered {
		for _, o := range a.Objects {
			if l := o.GetLabels(); l[LabelAddon] != a.Name || l[LabelManagedBy] != ManagedBy {
				t.Errorf("%s %s %s: labels %v", a.Name, o.GetKind(), o.GetName(), l)
			}
		}
	}
}

// TestOptionalComponentsDocumented: every component of the optional
// add-ons' image tables is in docs/addons.md, so an artifacts image keyed
// by it can be found.
func TestOptionalComponentsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/addons.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, table := range append(optionalImageTables(), rookCephImages, rookCephOperatorImages) {
		for _, s := range table {
			if !strings.Contains(string(doc), "`"+s.Component+"`") {
				t.Errorf("docs/addons.md does not document component %s", s.Component)
			}
		}
	}
}
