package addons

import (
	"slices"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestIngressHostNetwork(t *testing.T) {
	a := addon(t, mustRender(t, with(base(), func(p *Params) {
		p.Ingress = IngressParams{Enabled: true, Nodes: []string{"m1", "w1"}, Masters: true}
	})), IngressNginx)
	for _, o := range a.Objects {
		if o.GetKind() == "Deployment" {
			t.Errorf("hostNetwork mode still has Deployment %s", o.GetName())
		}
	}
	ds := object(t, a, "DaemonSet", ingressController)
	ps, _ := podSpec("t", ds)
	if ps["hostNetwork"] != true || ps["dnsPolicy"] != "ClusterFirstWithHostNet" {
		t.Errorf("pod spec hostNetwork %v dnsPolicy %v", ps["hostNetwork"], ps["dnsPolicy"])
	}
	if !tolerates(t, ds, "node-role.kubernetes.io/control-plane") {
		t.Error("an edge master's taint is not tolerated")
	}
	terms := ps["affinity"].(map[string]any)["nodeAffinity"].(map[string]any)["requiredDuringSchedulingIgnoredDuringExecution"].(map[string]any)["nodeSelectorTerms"].([]any)
	values := terms[0].(map[string]any)["matchExpressions"].([]any)[0].(map[string]any)["values"].([]any)
	if !slices.Equal(values, []any{"m1", "w1"}) {
		t.Errorf("edge nodes %v", values)
	}
	c := ctr(t, ds, "controller")
	if !slices.Contains(stringSlice(c, "args"), "--validating-webhook=:8444") {
		t.Errorf("webhook still on 8443, haproxy's port on masters: %v", stringSlice(c, "args"))
	}
	if typ := str(t, object(t, a, "Service", ingressController), "spec", "type"); typ != "ClusterIP" {
		t.Errorf("Service type %s in hostNetwork mode", typ)
	}
	if object(t, a, "IngressClass", "nginx").GetAnnotations()["ingressclass.kubernetes.io/is-default-class"] != "true" {
		t.Error("nginx is not the default IngressClass")
	}
	for _, o := range a.Objects {
		if o.GetKind() == "Job" {
			if _, ok, _ := unstructured.NestedFieldNoCopy(o.Object, "spec", "ttlSecondsAfterFinished"); ok {
				t.Errorf("Job %s is deleted when done, so every run would recreate it", o.GetName())
			}
		}
	}
}

func TestIngressNodePort(t *testing.T) {
	a := addon(t, mustRender(t, with(base(), func(p *Params) {
		p.Ingress = IngressParams{Enabled: true, Mode: "nodePort", Nodes: []string{"w1", "w2", "w3"}}
	})), IngressNginx)
	dep := object(t, a, "Deployment", ingressController)
	if r, _, _ := unstructured.NestedInt64(dep.Object, "spec", "replicas"); r != 3 {
		t.Errorf("replicas %d, want one per edge node", r)
	}
	if tolerates(t, dep, "node-role.kubernetes.io/control-plane") {
		t.Error("tolerates masters without an edge master")
	}
	svc := object(t, a, "Service", ingressController)
	if str(t, svc, "spec", "externalTrafficPolicy") != "Local" || str(t, svc, "spec", "type") != "NodePort" {
		t.Errorf("Service spec %v", svc.Object["spec"])
	}
	ports := map[string]int64{}
	for _, p := range svc.Object["spec"].(map[string]any)["ports"].([]any) {
		m := p.(map[string]any)
		ports[m["name"].(string)], _ = m["nodePort"].(int64)
	}
	if ports["http"] != 30080 || ports["https"] != 30443 {
		t.Errorf("NodePorts %v (defaults 30080, 30443)", ports)
	}
}
