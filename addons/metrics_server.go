package addons

import (
	"embed"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

//go:embed metrics-server
var metricsServerFS embed.FS

// metrics-server's base manifests track its main branch; kubewright runs
// the release the manifests were taken at.
var metricsServerImages = []imageSpec{
	{"metrics-server", "gcr.io/k8s-staging-metrics-server/metrics-server:master", "registry.k8s.io/metrics-server/metrics-server:v0.9.0"},
}

// renderMetricsServer applies what upstream's kustomization.yaml says (its
// resources, in its order, with its commonLabels on every object, selector
// and pod template, as kustomize does) and nothing else: the kubelets'
// serving certificates come from the cluster CA (serverTLSBootstrap), so
// metrics-server verifies them without --kubelet-insecure-tls.
func renderMetricsServer(p Params) ([]*unstructured.Unstructured, []string, error) {
	raw, err := metricsServerFS.ReadFile("metrics-server/kustomization.yaml")
	if err != nil {
		return nil, nil, err
	}
	var k struct {
		CommonLabels map[string]string `json:"commonLabels"`
		Resources    []string          `json:"resources"`
	}
	if err := utilyaml.Unmarshal(raw, &k); err != nil {
		return nil, nil, manifestError(MetricsServer, "kustomization.yaml: %v", err)
	}
	if len(k.Resources) == 0 || len(k.CommonLabels) == 0 {
		return nil, nil, manifestError(MetricsServer, "kustomization.yaml has no resources or commonLabels")
	}
	objs, err := decodeFiles(metricsServerFS, "metrics-server", k.Resources...)
	if err != nil {
		return nil, nil, err
	}
	if err := commonLabels(MetricsServer, objs, k.CommonLabels); err != nil {
		return nil, nil, err
	}
	if err := setImages(MetricsServer, objs, metricsServerImages, p); err != nil {
		return nil, nil, err
	}
	return objs, nil, nil
}

// commonLabels does what kustomize's commonLabels does for the kinds used
// here: the labels go on every object, into Deployment/DaemonSet/StatefulSet
// selectors and pod templates, and into Service selectors.
func commonLabels(addon string, objs []*unstructured.Unstructured, labels map[string]string) error {
	for _, o := range objs {
		l := o.GetLabels()
		if l == nil {
			l = map[string]string{}
		}
		for k, v := range labels {
			l[k] = v
		}
		o.SetLabels(l)
		var paths [][]string
		switch o.GetKind() {
		case "Deployment", "DaemonSet", "StatefulSet":
			paths = [][]string{{"spec", "selector", "matchLabels"}, {"spec", "template", "metadata", "labels"}}
		case "Service":
			paths = [][]string{{"spec", "selector"}}
		}
		for _, fp := range paths {
			m, _, err := unstructured.NestedStringMap(o.Object, fp...)
			if err != nil {
				return manifestError(addon, "%s %s: %v", o.GetKind(), o.GetName(), err)
			}
			if m == nil {
				m = map[string]string{}
			}
			for k, v := range labels {
				m[k] = v
			}
			if err := unstructured.SetNestedStringMap(o.Object, m, fp...); err != nil {
				return fmt.Errorf("%s: %w", addon, err)
			}
		}
	}
	return nil
}
