package addons

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestHostLogSource(t *testing.T) {
	for _, tc := range []struct {
		in       string
		patterns []string
		mount    string
		err      string
	}{
		{"/var/log/myapp", []string{"/var/log/myapp", "/var/log/myapp/*.log"}, "/var/log", ""},
		{"/opt/app/logs/*.txt", []string{"/opt/app/logs/*.txt"}, "/opt/app/logs", ""},
		{"/srv/app.log", []string{"/srv/app.log", "/srv/app.log/*.log"}, "/srv", ""},
		{"/applogs", []string{"/applogs", "/applogs/*.log"}, "/applogs", ""},
		{"/*.log", nil, "", "wildcard right below /"},
		{"/opt/*/logs", nil, "", "wildcard in a directory"},
		{"relative/x", nil, "", "not a clean absolute path"},
		{"/opt/a/../b", nil, "", "not a clean absolute path"},
		{"/opt/a,b", nil, "", "comma or a space"},
		{"/", nil, "", "not a clean absolute path"},
	} {
		ps, mount, err := hostLogSource(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || !slices.Equal(ps, tc.patterns) || mount != tc.mount {
			t.Errorf("%q: %v %q %v; want %v %q", tc.in, ps, mount, err, tc.patterns, tc.mount)
		}
	}
}

func loggingOn(p Params) Params {
	p.Logging = LoggingParams{Enabled: true, StorageClass: "fast", RetentionDays: 3, ESReplicas: 3, ESHeap: "512m", ESStorageSize: "10Gi",
		HostLogDirs: []string{"/var/log/syslog", "/opt/app/logs", "/opt/app/logs/*.txt", "/opt/app"}}
	return p
}

func TestLogging(t *testing.T) {
	a := addon(t, mustRender(t, loggingOn(base())), Logging)
	sts := object(t, a, "StatefulSet", esName)
	if r, _, _ := unstructured.NestedInt64(sts.Object, "spec", "replicas"); r != 3 {
		t.Errorf("replicas %d", r)
	}
	es := ctr(t, sts, esName)
	for k, want := range map[string]string{"ES_JAVA_OPTS": "-Xms512m -Xmx512m", "MINIMUM_MASTER_NODES": "2"} {
		if v, _ := envValue(es, k); v != want {
			t.Errorf("%s = %q, want %q", k, v, want)
		}
	}
	if m, _, _ := unstructured.NestedString(es, "resources", "limits", "memory"); m != "1024Mi" {
		t.Errorf("memory limit %s, want twice the heap", m)
	}
	claims, _, _ := unstructured.NestedSlice(sts.Object, "spec", "volumeClaimTemplates")
	if len(claims) != 1 || claims[0].(map[string]any)["spec"].(map[string]any)["storageClassName"] != "fast" {
		t.Errorf("claims %v", claims)
	}
	ps, _ := podSpec("t", sts)
	if ps["volumes"] != nil {
		t.Errorf("upstream's emptyDir is still there: %v", ps["volumes"])
	}

	cm := object(t, a, "ConfigMap", "fluent-bit-config")
	if !strings.Contains(str(t, cm, "data", "fluent-bit.conf"), "@INCLUDE input-hosts.conf\n") ||
		!strings.Contains(str(t, cm, "data", "input-hosts.conf"), "Path              /var/log/syslog,/var/log/syslog/*.log,/opt/app/logs,/opt/app/logs/*.log,/opt/app/logs/*.txt,/opt/app,/opt/app/*.log\n") {
		t.Errorf("host inputs:\n%s\n%s", str(t, cm, "data", "fluent-bit.conf"), str(t, cm, "data", "input-hosts.conf"))
	}
	if !strings.Contains(str(t, cm, "data", "input-kubernetes.conf"), "Parser            cri") {
		t.Error("container logs not parsed as CRI")
	}
	ds := object(t, a, "DaemonSet", "fluent-bit")
	// /var/log is mounted anyway; /opt (parent of /opt/app) covers /opt/app/logs.
	var mounts []string
	for _, m := range ctr(t, ds, "fluent-bit")["volumeMounts"].([]any) {
		mounts = append(mounts, m.(map[string]any)["mountPath"].(string))
	}
	if !slices.Equal(mounts, []string{"/var/log", "/fluent-bit/etc/", "/opt"}) {
		t.Errorf("mounts %v", mounts)
	}
	if v, _ := envValue(ctr(t, ds, "fluent-bit"), "FLUENT_ELASTICSEARCH_HOST"); v != esName {
		t.Errorf("Fluent Bit sends to %q", v)
	}
	cj := ctr(t, object(t, a, "CronJob", "elasticsearch-retention"), "retention")
	if d, _ := envValue(cj, "RETENTION_DAYS"); d != "3" {
		t.Errorf("RETENTION_DAYS %q", d)
	}
	if r, _ := envValue(cj, "INDEX_REPLICAS"); r != "1" {
		t.Errorf("INDEX_REPLICAS %q with 3 Elasticsearch nodes", r)
	}
	for _, o := range a.Objects {
		if _, ok := o.GetLabels()["addonmanager.kubernetes.io/mode"]; ok {
			t.Errorf("%s %s keeps the addon-manager label", o.GetKind(), o.GetName())
		}
		if slices.Contains(workloadKinds, o.GetKind()) {
			ps, _ := podSpec("t", o)
			for _, c := range containers(ps) {
				if c["imagePullPolicy"] != "IfNotPresent" {
					t.Errorf("%s %s container %s pulls %v", o.GetKind(), o.GetName(), c["name"], c["imagePullPolicy"])
				}
			}
		}
	}
	one := addon(t, mustRender(t, with(loggingOn(base()), func(p *Params) { p.Logging.ESReplicas = 1 })), Logging)
	if r, _ := envValue(ctr(t, object(t, one, "CronJob", "elasticsearch-retention"), "retention"), "INDEX_REPLICAS"); r != "0" {
		t.Errorf("INDEX_REPLICAS %q with one Elasticsearch node (a replica could never be placed)", r)
	}
}

// fakeES is the part of Elasticsearch's API the retention script uses.
type fakeES struct {
	mu       sync.Mutex
	indices  []string
	requests []string
}

func (f *fakeES) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, r.Method+" "+r.URL.Path)
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/_cat/indices/logstash-*":
		for _, i := range f.indices {
			fmt.Fprintln(w, i)
		}
	case r.Method == http.MethodPut:
		fmt.Fprint(w, `{"acknowledged":true}`)
	case r.Method == http.MethodDelete && strings.HasPrefix(r.URL.Path, "/logstash-"):
		name := strings.TrimPrefix(r.URL.Path, "/")
		f.indices = slices.DeleteFunc(f.indices, func(s string) bool { return s == name })
		fmt.Fprint(w, `{"acknowledged":true}`)
	default:
		http.Error(w, "unexpected", http.StatusBadRequest)
	}
}

// TestRetentionScript runs the rendered retention script (sh and curl, as
// in its image) against a fake Elasticsearch: indices older than the
// retention are deleted, newer ones and other indices kept.
func TestRetentionScript(t *testing.T) {
	a := addon(t, mustRender(t, loggingOn(base())), Logging)
	dir := t.TempDir()
	script := filepath.Join(dir, "retention.sh")
	if err := os.WriteFile(script, []byte(str(t, object(t, a, "ConfigMap", "elasticsearch-retention"), "data", "retention.sh")), 0o755); err != nil {
		t.Fatal(err)
	}
	day := func(ago int) string { return "logstash-" + time.Now().UTC().AddDate(0, 0, -ago).Format("2006.01.02") }
	es := &fakeES{indices: []string{day(0), day(1), day(3), day(4), day(30), "logstash-notadate", ".kibana_1"}}
	srv := httptest.NewServer(es)
	defer srv.Close()
	cj := ctr(t, object(t, a, "CronJob", "elasticsearch-retention"), "retention")
	days, _ := envValue(cj, "RETENTION_DAYS")
	replicas, _ := envValue(cj, "INDEX_REPLICAS")
	cmd := exec.Command("/bin/sh", script)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "ELASTICSEARCH_URL=" + srv.URL, "RETENTION_DAYS=" + days, "INDEX_REPLICAS=" + replicas}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("retention.sh: %v\n%s", err, out)
	}
	want := []string{day(0), day(1), day(3), "logstash-notadate", ".kibana_1"}
	if !slices.Equal(es.indices, want) {
		t.Errorf("indices left %v, want %v (retention %s days)\n%s", es.indices, want, days, out)
	}
	if !slices.Contains(es.requests, "PUT /_template/kubewright-logstash") || !slices.Contains(es.requests, "PUT /logstash-*/_settings") {
		t.Errorf("requests %v: no index template / replica settings", es.requests)
	}
}
