//go:build e2e

package e2e

import (
	"context"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestPlatformAddonsAccepted switches on every platform add-on whose host
// needs nothing the lab machines lack (metrics-server, monitoring, logging,
// ingress-nginx; not the storage add-ons, whose host packages are not in the
// lab image) on a one-master lab. Their images are not built here, so their
// pods cannot start: install must get every object accepted by the real API
// server and then fail naming the workloads that are not ready, and the
// live objects must be there. Nothing of these add-ons runs; this test says
// only that the API server accepts what kubewright renders.
func TestPlatformAddonsAccepted(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), addonVariantTimeout)
	defer cancel()
	t.Setenv("KW_E2E_GRAFANA", "e2e-grafana-password")
	a := newAddonLab(t, ctx, "plat", `  network:
    plugin: flannel
  addons:
    metricsServer: {enabled: true}
    monitoring:
      enabled: true
      retention: 1d
      storageSize: 1Gi
      storageClass: e2e-none
      cpuThreshold: {percent: 90, forMinutes: 10}
      grafanaAdminPasswordEnv: KW_E2E_GRAFANA
      receivers: {webhookURL: "http://127.0.0.1:9/alert"}
    logging:
      enabled: true
      retentionDays: 1
      hostLogDirs: [/var/log/kubewright-e2e]
      storageClass: e2e-none
      elasticsearch: {replicas: 1, heap: 256m, storageSize: 1Gi}
    ingress: {enabled: true, mode: nodePort, nodes: masters}
`)
	r := a.installExpectingPods(t, ctx, "metrics-server")
	for _, w := range []string{"monitoring/kube-state-metrics", "monitoring/prometheus"} {
		if !strings.Contains(r.out, w+" not ready after") {
			t.Errorf("install's failure does not name %s as not ready", w)
		}
	}
	cs, _ := a.clients(t)
	t.Run("the live objects are there", func(t *testing.T) {
		checks := []struct {
			what string
			get  func() error
		}{
			{"kube-system/Deployment metrics-server", func() error {
				_, err := cs.AppsV1().Deployments("kube-system").Get(ctx, "metrics-server", metav1.GetOptions{})
				return err
			}},
			{"monitoring/DaemonSet node-exporter", func() error {
				_, err := cs.AppsV1().DaemonSets("monitoring").Get(ctx, "node-exporter", metav1.GetOptions{})
				return err
			}},
			{"monitoring/StatefulSet prometheus", func() error {
				_, err := cs.AppsV1().StatefulSets("monitoring").Get(ctx, "prometheus", metav1.GetOptions{})
				return err
			}},
			{"monitoring/StatefulSet alertmanager", func() error {
				_, err := cs.AppsV1().StatefulSets("monitoring").Get(ctx, "alertmanager", metav1.GetOptions{})
				return err
			}},
			{"monitoring/Deployment grafana", func() error {
				_, err := cs.AppsV1().Deployments("monitoring").Get(ctx, "grafana", metav1.GetOptions{})
				return err
			}},
			{"monitoring/Secret etcd-client", func() error {
				_, err := cs.CoreV1().Secrets("monitoring").Get(ctx, "etcd-client", metav1.GetOptions{})
				return err
			}},
			{"logging/StatefulSet elasticsearch-logging", func() error {
				_, err := cs.AppsV1().StatefulSets(loggingNamespace(t, ctx, a)).Get(ctx, "elasticsearch-logging", metav1.GetOptions{})
				return err
			}},
			{"IngressClass nginx", func() error {
				_, err := cs.NetworkingV1().IngressClasses().Get(ctx, "nginx", metav1.GetOptions{})
				return err
			}},
		}
		for _, c := range checks {
			if err := c.get(); err != nil {
				t.Errorf("%s: %v", c.what, err)
			}
		}
	})
}

// loggingNamespace finds the namespace the logging add-on put Elasticsearch
// in (upstream's manifests call it logging or kube-logging).
func loggingNamespace(t *testing.T, ctx context.Context, a *addonLab) string {
	cs, _ := a.clients(t)
	sts, err := cs.AppsV1().StatefulSets("").List(ctx, metav1.ListOptions{})
	if err == nil {
		for _, s := range sts.Items {
			if s.Name == "elasticsearch-logging" {
				return s.Namespace
			}
		}
	}
	return "logging"
}
