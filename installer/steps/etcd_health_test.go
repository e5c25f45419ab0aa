package steps

import (
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kubewright/kubewright/installer/steps/stepkit/stepkittest"
)

// fakeEtcdctl answers unhealthy for the first `sick` calls, counted in a
// file, then reports both members of clusterWith healthy.
func fakeEtcdctl(sick int) string {
	return `c=$(cat "$COUNT" 2>/dev/null || echo 0); c=$((c+1)); echo $c > "$COUNT"
case "$*" in *"endpoint health --cluster"*) ;; *) echo "unexpected args: $*" >&2; exit 3;; esac
if [ $c -le ` + strconv.Itoa(sick) + ` ]; then
  echo "https://10.0.0.11:2379 is healthy: successfully committed proposal: took = 2ms"
  echo "https://10.0.0.12:2379 is unhealthy: failed to commit proposal: context deadline exceeded" >&2
  echo "Error: unhealthy cluster" >&2
  exit 1
fi
echo "https://10.0.0.11:2379 is healthy: successfully committed proposal: took = 2ms"
echo "https://10.0.0.12:2379 is healthy: successfully committed proposal: took = 3ms"`
}

func TestEtcdHealth(t *testing.T) {
	tests := []struct {
		name       string
		sick       int
		jobPending bool // systemd has an etcd job queued at the first check
		wantDetail string
		timeout    time.Duration
		wantPlan   bool
		wantErr    string
		wantCallsA int // calls made by Apply (0 when no plan)
	}{
		{name: "healthy plans nothing", sick: 0},
		{name: "restart still pending", jobPending: true, timeout: 10 * time.Second, wantPlan: true, wantDetail: "systemd job pending for etcd.service", wantCallsA: 1},
		{name: "recovers within timeout", sick: 3, timeout: 10 * time.Second, wantPlan: true, wantDetail: "1 of 2 members healthy", wantCallsA: 3},
		{name: "times out", sick: 1000, timeout: 300 * time.Millisecond, wantPlan: true, wantDetail: "1 of 2 members healthy", wantErr: "1 of 2 members healthy"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tg, h, root := stepkittest.NewTarget(t, "m1", nil)
			tg.Cluster = clusterWith(nil)
			tg.Inv = &tg.Cluster.Spec.Hosts[0]
			stepkittest.FakeTool(t, root, "etcdctl", fakeEtcdctl(tc.sick))
			// systemd reports a pending restart job on the first check only.
			job := `[ "$*" = "list-jobs --no-legend etcd.service" ] || { echo "unexpected args: $*" >&2; exit 3; }`
			if tc.jobPending {
				job += "\n" + `[ -e "$COUNT.job" ] && exit 0; touch "$COUNT.job"; echo "42 etcd.service restart running"`
			}
			stepkittest.FakeTool(t, root, "systemctl", job)
			count := filepath.Join(root, "count")
			h.Env = []string{"PATH=" + filepath.Join(root, "bin") + ":/usr/bin:/bin", "COUNT=" + count}
			s := EtcdHealth{Timeout: tc.timeout, Interval: 20 * time.Millisecond}
			ctx := context.Background()
			plan, err := s.Plan(ctx, tg)
			if err != nil {
				t.Fatal(err)
			}
			if (len(plan) > 0) != tc.wantPlan {
				t.Fatalf("plan %v, want a plan: %v", plan, tc.wantPlan)
			}
			if !tc.wantPlan {
				return
			}
			if !strings.Contains(plan[0].String(), tc.wantDetail) {
				t.Errorf("plan detail %q does not say how many members are healthy", plan[0])
			}
			before := len(h.Commands())
			err = s.Apply(ctx, tg, plan)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "m1") {
					t.Fatalf("apply error %v, want one naming m1 and %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := len(h.Commands()) - before; got != tc.wantCallsA {
				t.Errorf("apply ran etcdctl %d times, want %d", got, tc.wantCallsA)
			}
			if !strings.Contains(h.Commands()[len(h.Commands())-1], "--cert=/etc/kubernetes/pki/apiserver-etcd-client.crt") {
				t.Errorf("etcdctl not run with the apiserver-etcd-client cert: %s", h.Commands()[0])
			}
		})
	}
}

func TestHealthyMembers(t *testing.T) {
	for _, tc := range []struct {
		out  string
		want int
	}{
		{"", 0},
		{"https://a:2379 is healthy: ok\nhttps://b:2379 is unhealthy: failed\n", 1},
		{"https://a:2379 is healthy: ok\nhttps://b:2379 is healthy: ok\nhttps://c:2379 is healthy: ok\n", 3},
	} {
		if got := healthyMembers(tc.out); got != tc.want {
			t.Errorf("healthyMembers(%q) = %d, want %d", tc.out, got, tc.want)
		}
	}
}
