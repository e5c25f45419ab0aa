package addons

import (
	_ "embed"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

//go:embed ingress-nginx/deploy.yaml
var ingressNginxManifest []byte

var ingressNginxImages = []imageSpec{
	{"ingress-nginx-controller", "registry.k8s.io/ingress-nginx/controller:v1.15.1@sha256:594ceea76b01c592858f803f9ff4d2cb40542cae2060410b2c95f75907d659e1",
		"registry.k8s.io/ingress-nginx/controller:v1.15.1@sha256:594ceea76b01c592858f803f9ff4d2cb40542cae2060410b2c95f75907d659e1"},
	{"kube-webhook-certgen", "registry.k8s.io/ingress-nginx/kube-webhook-certgen:v1.6.9@sha256:01038e7de14b78d702d2849c3aad72fd25903c4765af63cf16aa3398f5d5f2dd",
		"registry.k8s.io/ingress-nginx/kube-webhook-certgen:v1.6.9@sha256:01038e7de14b78d702d2849c3aad72fd25903c4765af63cf16aa3398f5d5f2dd"},
}

const (
	ingressController = "ingress-nginx-controller"
	// hostNetworkWebhookPort replaces the admission webhook's 8443 on the
	// host network, where haproxy already listens on masters.
	hostNetworkWebhookPort = 8444
)

// renderIngress: upstream's bare-metal manifest with the controllers on the
// edge nodes. hostNetwork: a DaemonSet on the edge nodes binding ports 80
// and 443 of each (its Service is only cluster-internal). nodePort: one
// replica per edge node behind the NodePort Service with
// externalTrafficPolicy Local, so only edge nodes answer on the ports and
// clients' addresses are kept. IngressClass nginx becomes the default.
func renderIngress(p Params) ([]*unstructured.Unstructured, []string, error) {
	in := p.Ingress
	objs, err := decodeManifest("ingress-nginx/deploy.yaml", ingressNginxManifest)
	if err != nil {
		return nil, nil, err
	}
	dep, err := find(IngressNginx, objs, "Deployment", ingressController)
	if err != nil {
		return nil, nil, err
	}
	svc, err := find(IngressNginx, objs, "Service", ingressController)
	if err != nil {
		return nil, nil, err
	}
	if err := requireNodes(IngressNginx, dep, in.Nodes); err != nil {
		return nil, nil, err
	}
	if in.Masters {
		if err := addToleration(IngressNginx, dep, controlPlaneTaint); err != nil {
			return nil, nil, err
		}
	}
	ps, _ := podSpec(IngressNginx, dep)
	spec := dep.Object["spec"].(map[string]any)
	switch in.Mode {
	case "hostNetwork":
		dep.SetKind("DaemonSet")
		delete(spec, "strategy")
		delete(spec, "replicas")
		spec["updateStrategy"] = map[string]any{"type": "RollingUpdate", "rollingUpdate": map[string]any{"maxUnavailable": int64(1)}}
		ps["hostNetwork"] = true
		ps["dnsPolicy"] = "ClusterFirstWithHostNet"
		if err := moveWebhookPort(dep); err != nil {
			return nil, nil, err
		}
		svc.Object["spec"].(map[string]any)["type"] = "ClusterIP"
	case "nodePort":
		spec["replicas"] = int64(len(in.Nodes))
		sel, _, _ := unstructured.NestedStringMap(dep.Object, "spec", "selector", "matchLabels")
		aff := ps["affinity"].(map[string]any)
		aff["podAntiAffinity"] = map[string]any{"requiredDuringSchedulingIgnoredDuringExecution": []any{map[string]any{
			"topologyKey":   "kubernetes.io/hostname",
			"labelSelector": map[string]any{"matchLabels": stringMapAny(sel)},
		}}}
		s := svc.Object["spec"].(map[string]any)
		s["externalTrafficPolicy"] = "Local"
		for _, port := range s["ports"].([]any) {
			m := port.(map[string]any)
			switch m["name"] {
			case "http":
				m["nodePort"] = int64(in.HTTPNodePort)
			case "https":
				m["nodePort"] = int64(in.HTTPSNodePort)
			}
		}
	}
	// The admission Jobs' TTL of 0 deletes them when done, so every later
	// run would create (and run) them again: kubewright keeps them.
	for _, o := range objs {
		if o.GetKind() == "Job" {
			unstructured.RemoveNestedField(o.Object, "spec", "ttlSecondsAfterFinished")
		}
	}
	ic, err := find(IngressNginx, objs, "IngressClass", "nginx")
	if err != nil {
		return nil, nil, err
	}
	ann := ic.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	ann["ingressclass.kubernetes.io/is-default-class"] = "true"
	ic.SetAnnotations(ann)
	if err := setImages(IngressNginx, objs, ingressNginxImages, p); err != nil {
		return nil, nil, err
	}
	return objs, nil, nil
}

func moveWebhookPort(o *unstructured.Unstructured) error {
	c, err := container(IngressNginx, o, "controller")
	if err != nil {
		return err
	}
	args := stringSlice(c, "args")
	i := slices.IndexFunc(args, func(a string) bool { return strings.HasPrefix(a, "--validating-webhook=") })
	if i < 0 {
		return manifestError(IngressNginx, "controller has no --validating-webhook")
	}
	args[i] = "--validating-webhook=:8444"
	setStringSlice(c, "args", args)
	for _, port := range c["ports"].([]any) {
		if m := port.(map[string]any); m["name"] == "webhook" {
			m["containerPort"] = int64(hostNetworkWebhookPort)
			return nil
		}
	}
	return manifestError(IngressNginx, "controller has no webhook port")
}
