//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"

	"github.com/kubewright/kubewright/installer/kube"
)

// apiWriter creates a ConfigMap through the VIP every interval, with the
// admin credentials and a 2 s timeout per write, and remembers which writes
// the API acknowledged and when: the client of the failover and upgrade
// tests, whose acknowledged writes must all survive.
type apiWriter struct {
	cms    typedcorev1.ConfigMapInterface
	prefix string

	mu        sync.Mutex
	acked     []string
	ackTimes  []time.Time
	failTimes []time.Time
	lastErr   error

	stopOnce sync.Once
	stop     chan struct{}
	done     chan struct{}
}

func startWriter(t *testing.T, ctx context.Context, adminConf, prefix string, interval time.Duration) *apiWriter {
	t.Helper()
	cfg, err := os.ReadFile(adminConf)
	if err != nil {
		t.Fatal(err)
	}
	kc, err := kube.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	kc.Config.Timeout = 2 * time.Second
	client, err := kube.NewClientFromConfig(kc.Config)
	if err != nil {
		t.Fatal(err)
	}
	w := &apiWriter{cms: client.Clientset.CoreV1().ConfigMaps("default"), prefix: prefix, stop: make(chan struct{}), done: make(chan struct{})}
	// A test that fails before finish must not leave a writer adding
	// ConfigMaps under the tests after it.
	t.Cleanup(w.finish)
	go func() {
		defer close(w.done)
		for i := 0; ; i++ {
			select {
			case <-w.stop:
				return
			case <-ctx.Done():
				return
			case <-time.After(interval):
			}
			name := fmt.Sprintf("%s-%05d", prefix, i)
			wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			_, err := w.cms.Create(wctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string]string{"i": fmt.Sprint(i)}}, metav1.CreateOptions{})
			cancel()
			w.mu.Lock()
			if err == nil {
				w.acked = append(w.acked, name)
				w.ackTimes = append(w.ackTimes, time.Now())
			} else {
				w.failTimes = append(w.failTimes, time.Now())
				w.lastErr = err
			}
			w.mu.Unlock()
		}
	}()
	return w
}

// finish stops writing; calling it again does nothing.
func (w *apiWriter) finish() {
	w.stopOnce.Do(func() { close(w.stop) })
	<-w.done
}

// gapAcross is the time between the last acknowledged write before at and
// the first one after it (0 when none came after).
func (w *apiWriter) gapAcross(at time.Time) time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	var before time.Time
	for _, a := range w.ackTimes {
		if a.After(at) {
			return a.Sub(before)
		}
		before = a
	}
	return 0
}

// longestGap is the longest time between two acknowledged writes, and when
// it ended.
func (w *apiWriter) longestGap() (time.Duration, time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var gap time.Duration
	var end time.Time
	for i := 1; i < len(w.ackTimes); i++ {
		if d := w.ackTimes[i].Sub(w.ackTimes[i-1]); d > gap {
			gap, end = d, w.ackTimes[i]
		}
	}
	return gap, end
}

// summary says how many writes were acknowledged and failed.
func (w *apiWriter) summary() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return fmt.Sprintf("%d writes acknowledged, %d failed (last error: %v)", len(w.acked), len(w.failTimes), w.lastErr)
}

// failedSince lists when writes failed, relative to at.
func (w *apiWriter) failedSince(at time.Time) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, f := range w.failTimes {
		out = append(out, fmt.Sprintf("%+.1fs", f.Sub(at).Seconds()))
	}
	return out
}

// checkNoneLost fails for every acknowledged write the API no longer has.
func (w *apiWriter) checkNoneLost(t *testing.T, ctx context.Context) {
	t.Helper()
	list, err := w.cms.List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("list the written ConfigMaps: %v", err)
	}
	have := map[string]bool{}
	for _, cm := range list.Items {
		have[cm.Name] = true
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.acked) == 0 {
		t.Fatalf("no write was acknowledged")
	}
	for _, n := range w.acked {
		if !have[n] {
			t.Errorf("acknowledged write %s was lost", n)
		}
	}
}
