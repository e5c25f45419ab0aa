//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/kubewright/kubewright/installer/kube"
)

// tokenWatcher records the secret half of every bootstrap token that exists
// while it runs. install deletes its tokens once the nodes have joined, so
// the only way to know them afterwards is to have watched them appear.
type tokenWatcher struct {
	mu      sync.Mutex
	secrets map[string]bool
	cancel  context.CancelFunc
	done    chan struct{}
}

// watchBootstrapTokens starts watching as soon as adminConf exists and the
// API server behind it answers, and keeps at it (re-listing whenever a watch
// ends) until stop.
func watchBootstrapTokens(ctx context.Context, adminConf string) *tokenWatcher {
	ctx, cancel := context.WithCancel(ctx)
	w := &tokenWatcher{secrets: map[string]bool{}, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for ctx.Err() == nil {
			w.once(ctx, adminConf)
			select {
			case <-ctx.Done():
			case <-time.After(500 * time.Millisecond):
			}
		}
	}()
	return w
}

func (w *tokenWatcher) once(ctx context.Context, adminConf string) {
	data, err := os.ReadFile(adminConf)
	if err != nil {
		return
	}
	c, err := kube.NewClient(data)
	if err != nil {
		return
	}
	secrets := c.Clientset.CoreV1().Secrets("kube-system")
	sel := metav1.ListOptions{FieldSelector: "type=" + string(corev1.SecretTypeBootstrapToken)}
	lctx, lcancel := context.WithTimeout(ctx, 5*time.Second)
	list, err := secrets.List(lctx, sel)
	lcancel()
	if err != nil {
		return
	}
	for i := range list.Items {
		w.record(&list.Items[i])
	}
	sel.ResourceVersion = list.ResourceVersion
	wi, err := secrets.Watch(ctx, sel)
	if err != nil {
		return
	}
	defer wi.Stop()
	for ev := range wi.ResultChan() {
		if s, ok := ev.Object.(*corev1.Secret); ok && (ev.Type == watch.Added || ev.Type == watch.Modified) {
			w.record(s)
		}
	}
}

func (w *tokenWatcher) record(s *corev1.Secret) {
	if v := string(s.Data["token-secret"]); v != "" {
		w.mu.Lock()
		w.secrets[v] = true
		w.mu.Unlock()
	}
}

// stop ends the watch and returns the token secrets seen.
func (w *tokenWatcher) stop() []string {
	w.cancel()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]string, 0, len(w.secrets))
	for s := range w.secrets {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// secret is a value that must appear in no output, and what it is.
type secret struct{ what, value string }

// clusterSecrets lists what the cluster state directory holds that must never
// be printed: every private key (by a line of its PEM body, which a leaked
// key would print whole), every kubeconfig's embedded client key (by a
// slice of its base64, which is how a leaked kubeconfig would show it), and
// every generated secret (the Secrets encryption key as the API server's
// encryption config holds it, in base64, and the VRRP password as is).
func clusterSecrets(t *testing.T, clusterDir string) []secret {
	t.Helper()
	var out []secret
	err := filepath.WalkDir(filepath.Join(clusterDir, "pki"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(clusterDir, p)
		switch {
		case strings.HasSuffix(p, ".key"):
			if line := pemBodyLine(data); line != "" {
				out = append(out, secret{"private key " + rel, line})
			}
		case strings.HasSuffix(p, ".conf"):
			for _, l := range strings.Split(string(data), "\n") {
				if v, ok := strings.CutPrefix(strings.TrimSpace(l), "client-key-data: "); ok && len(v) > 160 {
					// The opening of any base64 PEM is the same
					// ("LS0tLS1CRUdJTi..."): take a slice from the key.
					out = append(out, secret{"client key in " + rel, v[100:160]})
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("read the PKI: %v", err)
	}
	entries, err := os.ReadDir(filepath.Join(clusterDir, "secrets"))
	if err != nil {
		t.Fatalf("read the cluster secrets: %v", err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(clusterDir, "secrets", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		v := string(bytes.TrimSpace(data))
		if len(v) < 8 || strings.ContainsFunc(v, func(r rune) bool { return r < ' ' || r > '~' }) {
			v = base64.StdEncoding.EncodeToString(data)
		}
		out = append(out, secret{"secrets/" + e.Name(), v})
	}
	return out
}

// pemBodyLine returns the second base64 line of the first PEM block: the
// first may be shared by keys of one kind, the second is random.
func pemBodyLine(data []byte) string {
	lines := strings.Split(string(data), "\n")
	var body []string
	for _, l := range lines {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "-----") || strings.Contains(l, ":") {
			if len(body) > 0 && strings.HasPrefix(l, "-----END") {
				break
			}
			continue
		}
		body = append(body, l)
	}
	if len(body) < 2 {
		return ""
	}
	return body[1]
}

// stateOutputs returns every file kubewright wrote into the cluster state
// directory as a record of what it did (run journals, host logs, events),
// which is everything but the PKI, the secrets and known_hosts: those hold
// secrets or keys by design.
func stateOutputs(t *testing.T, clusterDir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(clusterDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(clusterDir, p)
		if d.IsDir() {
			if rel == "pki" || rel == "secrets" {
				return filepath.SkipDir
			}
			return nil
		}
		if rel == "known_hosts" || strings.HasSuffix(rel, ".lock") {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		out[rel] = data
		return nil
	})
	if err != nil {
		t.Fatalf("read the state directory: %v", err)
	}
	return out
}

// checkNoSecrets fails for every secret found in any output, naming both.
func checkNoSecrets(t *testing.T, secrets []secret, outputs map[string][]byte) {
	t.Helper()
	names := make([]string, 0, len(outputs))
	for n := range outputs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, s := range secrets {
		if len(s.value) < 8 {
			t.Fatalf("%s: a secret of %d characters cannot be searched for reliably", s.what, len(s.value))
		}
		for _, n := range names {
			if i := bytes.Index(outputs[n], []byte(s.value)); i >= 0 {
				// The context, with the secret masked: the failure
				// report must not spread it further.
				ctx := string(outputs[n][max(0, i-80):min(len(outputs[n]), i+len(s.value)+40)])
				t.Errorf("%s appears in %s at byte %d: ...%q...", s.what, n, i, strings.ReplaceAll(ctx, s.value, "<"+s.what+">"))
			}
		}
	}
}
