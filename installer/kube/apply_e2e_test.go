//go:build e2e

package kube_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-multierror"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/kubewright/kubewright/installer/kube"
	"github.com/kubewright/kubewright/installer/kube/kubetest"
)

// decode parses multi-document YAML into objects, the shape the add-on
// renderer produces.
func decode(t *testing.T, docs string) []*unstructured.Unstructured {
	t.Helper()
	d := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(docs), 4096)
	var out []*unstructured.Unstructured
	for {
		var m map[string]any
		err := d.Decode(&m)
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("decode test manifest: %v", err)
		}
		if m != nil {
			out = append(out, &unstructured.Unstructured{Object: m})
		}
	}
}

const demoManifest = `
apiVersion: v1
kind: Namespace
metadata: {name: demo, labels: {app.kubernetes.io/part-of: demo}}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com, labels: {app.kubernetes.io/part-of: demo}}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, listKind: WidgetList}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer, minimum: 1}
---
apiVersion: example.com/v1
kind: Widget
metadata: {name: w1, namespace: demo, labels: {app.kubernetes.io/part-of: demo}}
spec: {size: 3}
---
apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata: {name: demo-critical, labels: {app.kubernetes.io/part-of: demo}}
value: 1000000
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: demo, namespace: demo, labels: {app.kubernetes.io/part-of: demo}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: demo, labels: {app.kubernetes.io/part-of: demo}}
rules:
- {apiGroups: [""], resources: [configmaps], verbs: [get, list, watch]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: demo, labels: {app.kubernetes.io/part-of: demo}}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: demo}
subjects: [{kind: ServiceAccount, name: demo, namespace: demo}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: demo, namespace: demo, labels: {app.kubernetes.io/part-of: demo}}
rules:
- {apiGroups: [""], resources: [secrets], verbs: [get]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: demo, namespace: demo, labels: {app.kubernetes.io/part-of: demo}}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: demo}
subjects: [{kind: ServiceAccount, name: demo, namespace: demo}]
---
apiVersion: v1
kind: Secret
metadata: {name: demo, namespace: demo, labels: {app.kubernetes.io/part-of: demo}}
stringData: {token: not-a-secret}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: demo, labels: {app.kubernetes.io/part-of: demo}}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: demo, labels: {app.kubernetes.io/part-of: demo}}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      serviceAccountName: demo
      priorityClassName: demo-critical
      containers: [{name: web, image: "registry.invalid/web:1"}]
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent, namespace: demo, labels: {app.kubernetes.io/part-of: demo}}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      serviceAccountName: demo
      containers: [{name: agent, image: "registry.invalid/agent:1"}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: demo, labels: {app.kubernetes.io/part-of: demo}}
spec:
  serviceName: web
  replicas: 1
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      serviceAccountName: demo
      containers: [{name: db, image: "registry.invalid/db:1"}]
`

// demo is a realistic add-on of a few dozen objects: a namespace, a CRD and
// one of its custom resources, RBAC, 20 ConfigMaps, a Secret, a Service and
// three workloads. mod may change it before it is returned.
func demo(t *testing.T, mod func(objs []*unstructured.Unstructured) []*unstructured.Unstructured) kube.AddonSet {
	t.Helper()
	objs := decode(t, demoManifest)
	for i := 0; i < 20; i++ {
		objs = append(objs, decode(t, fmt.Sprintf(`
apiVersion: v1
kind: ConfigMap
metadata: {name: cm-%02d, namespace: demo, labels: {app.kubernetes.io/part-of: demo}}
data: {index: "%d", config.yaml: "key: value %d\n"}
`, i, i, i))...)
	}
	if mod != nil {
		objs = mod(objs)
	}
	return kube.AddonSet{Name: "demo", Objects: objs}
}

func find(objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	return nil
}

type cluster struct {
	srv *kubetest.APIServer
	cs  kubernetes.Interface
	dyn dynamic.Interface
}

func (c *cluster) applier(t *testing.T, opts kube.ApplyOptions) *kube.Applier {
	t.Helper()
	var mu sync.Mutex
	opts.Logf = func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		t.Logf(format, args...)
	}
	a, err := kube.NewApplier(c.srv.Config, opts)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func (c *cluster) get(t *testing.T, gvr schema.GroupVersionResource, ns, name string) (*unstructured.Unstructured, error) {
	t.Helper()
	return c.dyn.Resource(gvr).Namespace(ns).Get(context.Background(), name, metav1.GetOptions{})
}

var (
	configMaps  = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	widgets     = schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "widgets"}
	deployments = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
)

func changedStrings(r *kube.Result) []string {
	var out []string
	for _, c := range r.Changed() {
		out = append(out, c.String())
	}
	return out
}

// TestAddonsApplyAgainstAPIServer runs the apply engine against a real etcd
// and kube-apiserver. The subtests build on each other, in order.
func TestAddonsApplyAgainstAPIServer(t *testing.T) {
	srv := kubetest.Start(t)
	cs, err := kubernetes.NewForConfig(srv.Config)
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(srv.Config)
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{srv: srv, cs: cs, dyn: dyn}
	ctx := context.Background()
	noWait := kube.ApplyOptions{SkipRolloutWait: true, PollInterval: 100 * time.Millisecond, CRDTimeout: 30 * time.Second}

	t.Run("plan on an empty cluster creates everything, changes nothing", func(t *testing.T) {
		set := demo(t, nil)
		res, err := c.applier(t, noWait).Plan(ctx, []kube.AddonSet{set})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Objects) != len(set.Objects) {
			t.Fatalf("plan has %d objects, rendered %d", len(res.Objects), len(set.Objects))
		}
		for _, o := range res.Objects {
			if o.Action != kube.ActionCreate {
				t.Errorf("plan: %s, want create", o)
			}
		}
		if _, err := cs.CoreV1().Namespaces().Get(ctx, "demo", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Fatalf("plan created the namespace: %v", err)
		}
	})

	t.Run("CRD and its custom resource in one add-on", func(t *testing.T) {
		set := demo(t, nil)
		res, err := c.applier(t, noWait).Apply(ctx, []kube.AddonSet{set})
		if err != nil {
			t.Fatal(err)
		}
		if got := len(res.Changed()); got != len(set.Objects) {
			t.Fatalf("first apply changed %d of %d objects: %v", got, len(set.Objects), changedStrings(res))
		}
		if res.Objects[0].Ref.Kind != "Namespace" || res.Objects[1].Ref.Kind != "CustomResourceDefinition" {
			t.Fatalf("apply order starts %s, %s", res.Objects[0].Ref, res.Objects[1].Ref)
		}
		w, err := c.get(t, widgets, "demo", "w1")
		if err != nil {
			t.Fatalf("custom resource not applied: %v", err)
		}
		if size, _, _ := unstructured.NestedInt64(w.Object, "spec", "size"); size != 3 {
			t.Fatalf("widget size %d", size)
		}
		if !managedByKubewright(w) {
			t.Fatalf("widget managed fields %v", w.GetManagedFields())
		}
	})

	t.Run("re-apply of unchanged objects reports no change and is fast", func(t *testing.T) {
		set := demo(t, nil)
		before := resourceVersions(t, c)
		start := time.Now()
		plan, err := c.applier(t, noWait).Plan(ctx, []kube.AddonSet{set})
		planTook := time.Since(start)
		if err != nil {
			t.Fatal(err)
		}
		if ch := changedStrings(plan); len(ch) != 0 {
			t.Fatalf("plan of an unchanged add-on: %v", ch)
		}
		start = time.Now()
		res, err := c.applier(t, noWait).Apply(ctx, []kube.AddonSet{set})
		applyTook := time.Since(start)
		if err != nil {
			t.Fatal(err)
		}
		if ch := changedStrings(res); len(ch) != 0 {
			t.Fatalf("re-apply changed %v", ch)
		}
		t.Logf("MEASURED: %d objects: plan (dry-run) %s, re-apply %s (fresh Applier each, discovery included)", len(set.Objects), planTook.Round(time.Millisecond), applyTook.Round(time.Millisecond))
		if planTook > 5*time.Second || applyTook > 5*time.Second {
			t.Fatalf("re-run too slow: plan %s, apply %s (target 5s)", planTook, applyTook)
		}
		if after := resourceVersions(t, c); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Fatalf("re-apply wrote objects:\nbefore %v\nafter  %v", before, after)
		}
	})

	t.Run("changing one field reports an update of that field", func(t *testing.T) {
		mod := func(objs []*unstructured.Unstructured) []*unstructured.Unstructured {
			cm := find(objs, "ConfigMap", "cm-07")
			_ = unstructured.SetNestedField(cm.Object, "key: changed\n", "data", "config.yaml")
			d := find(objs, "Deployment", "web")
			_ = unstructured.SetNestedField(d.Object, int64(3), "spec", "replicas")
			return objs
		}
		plan, err := c.applier(t, noWait).Plan(ctx, []kube.AddonSet{demo(t, mod)})
		if err != nil {
			t.Fatal(err)
		}
		want := "update ConfigMap demo/cm-07 (data),update Deployment demo/web (spec)"
		if got := strings.Join(changedStrings(plan), ","); got != want {
			t.Fatalf("plan = %s, want %s", got, want)
		}
		live, _ := c.get(t, configMaps, "demo", "cm-07")
		if v, _, _ := unstructured.NestedString(live.Object, "data", "config.yaml"); v != "key: value 7\n" {
			t.Fatalf("plan changed the ConfigMap: %q", v)
		}
		res, err := c.applier(t, noWait).Apply(ctx, []kube.AddonSet{demo(t, mod)})
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(changedStrings(res), ","); got != want {
			t.Fatalf("apply = %s, want %s", got, want)
		}
		live, _ = c.get(t, configMaps, "demo", "cm-07")
		if v, _, _ := unstructured.NestedString(live.Object, "data", "config.yaml"); v != "key: changed\n" {
			t.Fatalf("ConfigMap not updated: %q", v)
		}
		// And back, so later subtests start from the plain demo add-on.
		if _, err := c.applier(t, noWait).Apply(ctx, []kube.AddonSet{demo(t, nil)}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("prune deletes exactly the object no longer rendered", func(t *testing.T) {
		// Same labels (the add-on label included), same namespace, created by
		// someone else: not in the record, so never pruned.
		bystander := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "bystander", Namespace: "demo",
			Labels: map[string]string{"app.kubernetes.io/part-of": "demo", kube.LabelAddon: "demo"}}, Data: map[string]string{"a": "b"}}
		if _, err := cs.CoreV1().ConfigMaps("demo").Create(ctx, bystander, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		// In the record, but someone took it over (removed kubewright's label):
		// not deleted either, and dropped from the record.
		taken, err := cs.CoreV1().ConfigMaps("demo").Get(ctx, "cm-05", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		delete(taken.Labels, kube.LabelAddon)
		if _, err := cs.CoreV1().ConfigMaps("demo").Update(ctx, taken, metav1.UpdateOptions{FieldManager: "someone-else"}); err != nil {
			t.Fatal(err)
		}
		without := func(objs []*unstructured.Unstructured) []*unstructured.Unstructured {
			var out []*unstructured.Unstructured
			for _, o := range objs {
				if !(o.GetKind() == "ConfigMap" && (o.GetName() == "cm-03" || o.GetName() == "cm-05")) {
					out = append(out, o)
				}
			}
			return out
		}
		plan, err := c.applier(t, noWait).Plan(ctx, []kube.AddonSet{demo(t, without)})
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(changedStrings(plan), ","); got != "delete ConfigMap demo/cm-03" {
			t.Fatalf("plan = %s", got)
		}
		if _, err := c.get(t, configMaps, "demo", "cm-03"); err != nil {
			t.Fatalf("plan deleted cm-03: %v", err)
		}
		before, err := cs.CoreV1().ConfigMaps("demo").List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		res, err := c.applier(t, noWait).Apply(ctx, []kube.AddonSet{demo(t, without)})
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(changedStrings(res), ","); got != "delete ConfigMap demo/cm-03" {
			t.Fatalf("apply = %s", got)
		}
		if _, err := c.get(t, configMaps, "demo", "cm-03"); !apierrors.IsNotFound(err) {
			t.Fatalf("cm-03 still there: %v", err)
		}
		after, err := cs.CoreV1().ConfigMaps("demo").List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(after.Items) != len(before.Items)-1 {
			t.Fatalf("%d ConfigMaps before, %d after: prune deleted more than cm-03", len(before.Items), len(after.Items))
		}
		for _, name := range []string{"bystander", "cm-05"} {
			if _, err := c.get(t, configMaps, "demo", name); err != nil {
				t.Fatalf("%s was deleted: %v", name, err)
			}
		}
		for _, kind := range []struct {
			gvr  schema.GroupVersionResource
			name string
		}{{widgets, "w1"}, {deployments, "web"}} {
			if _, err := c.get(t, kind.gvr, "demo", kind.name); err != nil {
				t.Fatalf("%s %s gone after prune: %v", kind.gvr.Resource, kind.name, err)
			}
		}
		rec, err := kube.ReadRecord(ctx, cs)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rec.Addons["demo"].Objects {
			if r.Name == "cm-03" || r.Name == "cm-05" || r.Name == "bystander" {
				t.Fatalf("record lists %s", r)
			}
		}
		if n := len(rec.Addons["demo"].Objects); n != len(demo(t, without).Objects) {
			t.Fatalf("record lists %d objects, want %d", n, len(demo(t, without).Objects))
		}
		// Rendered again, both come back under kubewright; nothing is pruned twice.
		res, err = c.applier(t, noWait).Apply(ctx, []kube.AddonSet{demo(t, nil)})
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(changedStrings(res), ","); got != "create ConfigMap demo/cm-03,update ConfigMap demo/cm-05 (metadata.labels)" {
			t.Fatalf("re-adding: %s", got)
		}
	})

	t.Run("bad objects give errors naming them, the add-on and the API's reason", func(t *testing.T) {
		set := kube.AddonSet{Name: "broken", Objects: decode(t, `
apiVersion: v1
kind: ConfigMap
metadata: {name: fine, namespace: demo}
data: {a: b}
---
apiVersion: v1
kind: Service
metadata: {name: bad-port, namespace: demo}
spec:
  ports: [{port: 99999}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: bad-replicas, namespace: demo}
spec:
  replicas: -1
  selector: {matchLabels: {app: x}}
  template:
    metadata: {labels: {app: x}}
    spec: {containers: [{name: x, image: x}]}
`)}
		_, err := c.applier(t, noWait).Apply(ctx, []kube.AddonSet{set})
		if err == nil {
			t.Fatal("no error for invalid objects")
		}
		t.Logf("error as an operator sees it:\n%v", err)
		var merr *multierror.Error
		if !errors.As(err, &merr) || len(merr.Errors) != 2 {
			t.Fatalf("want 2 collected errors, got %T %v", err, err)
		}
		for _, want := range []string{
			"add-on broken: apply Service demo/bad-port:", "spec.ports[0].port: Invalid value: 99999",
			"add-on broken: apply Deployment demo/bad-replicas:", "spec.replicas: Invalid value: -1",
		} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error lacks %q", want)
			}
		}
		if _, err := c.get(t, configMaps, "demo", "fine"); err != nil {
			t.Fatalf("the valid object of the add-on was not applied: %v", err)
		}
		// A kind nothing serves fails before anything is applied.
		set = kube.AddonSet{Name: "unknown", Objects: decode(t, `
apiVersion: v1
kind: ConfigMap
metadata: {name: never, namespace: demo}
---
apiVersion: nothing.example.net/v1
kind: Gizmo
metadata: {name: g, namespace: demo}
`)}
		_, err = c.applier(t, noWait).Apply(ctx, []kube.AddonSet{set})
		if err == nil || !strings.Contains(err.Error(), "add-on unknown: Gizmo demo/g: the API serves no kind Gizmo in nothing.example.net/v1") {
			t.Fatalf("unknown kind: %v", err)
		}
		if _, err := c.get(t, configMaps, "demo", "never"); !apierrors.IsNotFound(err) {
			t.Fatalf("an add-on with an unknown kind was partly applied: %v", err)
		}
	})

	t.Run("record round trip, settings and conflicts", func(t *testing.T) {
		set := demo(t, nil)
		set.Settings = map[string]string{"plugin": "flannel"}
		if _, err := c.applier(t, noWait).Apply(ctx, []kube.AddonSet{set}); err != nil {
			t.Fatal(err)
		}
		rec, err := kube.ReadRecord(ctx, cs)
		if err != nil {
			t.Fatal(err)
		}
		if got := rec.Setting("demo", "plugin"); got != "flannel" {
			t.Fatalf("setting plugin = %q", got)
		}
		want := map[string]bool{}
		for _, o := range set.Objects {
			want[kube.RefOf(o).String()] = true
		}
		for _, r := range rec.Addons["demo"].Objects {
			if !want[r.String()] {
				t.Errorf("record lists %s, not rendered", r)
			}
			delete(want, r.String())
		}
		if len(want) != 0 {
			t.Errorf("record misses %v", want)
		}
		// Applying without settings keeps them.
		if _, err := c.applier(t, noWait).Apply(ctx, []kube.AddonSet{demo(t, nil)}); err != nil {
			t.Fatal(err)
		}
		if rec, _ = kube.ReadRecord(ctx, cs); rec.Setting("demo", "plugin") != "flannel" {
			t.Fatalf("settings lost: %v", rec.Addons["demo"].Settings)
		}
		// The caller's own write, then a stale writer loses.
		stale, err := kube.ReadRecord(ctx, cs)
		if err != nil {
			t.Fatal(err)
		}
		ar := rec.Addons["demo"]
		ar.Settings["pod-cidr"] = "10.244.0.0/16"
		rec.Addons["demo"] = ar
		if err := kube.WriteRecord(ctx, cs, rec); err != nil {
			t.Fatal(err)
		}
		if got, _ := kube.ReadRecord(ctx, cs); got.Setting("demo", "pod-cidr") != "10.244.0.0/16" || len(got.Addons["demo"].Objects) != len(set.Objects) {
			t.Fatalf("round trip: %+v", got.Addons["demo"])
		}
		stale.Addons["demo"] = kube.AddonRecord{}
		if err := kube.WriteRecord(ctx, cs, stale); !errors.Is(err, kube.ErrRecordConflict) {
			t.Fatalf("stale write: %v, want ErrRecordConflict", err)
		}
		if got, _ := kube.ReadRecord(ctx, cs); len(got.Addons["demo"].Objects) != len(set.Objects) {
			t.Fatal("a stale write emptied the record")
		}
	})

	t.Run("rollout wait times out naming the workload, its counts and its pod", func(t *testing.T) {
		set := kube.AddonSet{Name: "stuck", Objects: decode(t, `
apiVersion: v1
kind: Namespace
metadata: {name: stuck}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: web, namespace: stuck}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: stuck}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      serviceAccountName: web
      containers: [{name: web, image: "registry.invalid/web:1"}]
`)}
		opts := kube.ApplyOptions{RolloutTimeout: 2 * time.Second, PollInterval: 200 * time.Millisecond}
		start := time.Now()
		_, err := c.applier(t, opts).Apply(ctx, []kube.AddonSet{set})
		took := time.Since(start)
		if err == nil {
			t.Fatal("a Deployment no controller runs for was reported ready")
		}
		t.Logf("timeout error (no pods):\n%v", err)
		if !errors.Is(err, kube.ErrNotReady) {
			t.Fatalf("error does not wrap ErrNotReady: %v", err)
		}
		for _, want := range []string{
			"add-on stuck: Deployment stuck/web not ready after 2",
			"replicas 2: updated 0, ready 0, available 0, total 0; observed generation 0 of 1",
			"no pods and no warning events (is kube-controller-manager running?)",
		} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error lacks %q", want)
			}
		}
		if took < 2*time.Second || took > 10*time.Second {
			t.Errorf("apply with a 2s rollout timeout took %s", took)
		}

		// A pod that cannot pull its image: the error says so.
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "web-abc12", Namespace: "stuck", Labels: map[string]string{"app": "web"}},
			Spec:       corev1.PodSpec{ServiceAccountName: "web", Containers: []corev1.Container{{Name: "web", Image: "registry.invalid/web:1"}}},
		}
		pod, err = cs.CoreV1().Pods("stuck").Create(ctx, pod, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		pod.Status.Phase = corev1.PodPending
		pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "web", Image: "registry.invalid/web:1",
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: `Back-off pulling image "registry.invalid/web:1"`}}}}
		if _, err := cs.CoreV1().Pods("stuck").UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		ref := kube.ObjectRef{Group: "apps", Version: "v1", Kind: "Deployment", Namespace: "stuck", Name: "web"}
		err = c.applier(t, kube.ApplyOptions{RolloutTimeout: 500 * time.Millisecond, PollInterval: 100 * time.Millisecond}).WaitForRollouts(ctx, []kube.ObjectRef{ref})
		t.Logf("timeout error (with a pod):\n%v", err)
		if err == nil || !strings.Contains(err.Error(), `pod web-abc12: container web waiting: ImagePullBackOff: Back-off pulling image "registry.invalid/web:1"`) {
			t.Fatalf("err = %v", err)
		}

		// The controller's part, by hand: once the status says ready, the wait ends.
		d, err := cs.AppsV1().Deployments("stuck").Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		d.Status.ObservedGeneration = d.Generation
		d.Status.Replicas, d.Status.UpdatedReplicas, d.Status.ReadyReplicas, d.Status.AvailableReplicas = 2, 2, 2, 2
		if _, err := cs.AppsV1().Deployments("stuck").UpdateStatus(ctx, d, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		res, err := c.applier(t, opts).Apply(ctx, []kube.AddonSet{set})
		if err != nil {
			t.Fatalf("apply of a ready Deployment: %v", err)
		}
		if ch := changedStrings(res); len(ch) != 0 {
			t.Fatalf("re-apply changed %v", ch)
		}
	})

	t.Run("a CRD whose names are refused fails naming it and its conditions", func(t *testing.T) {
		set := kube.AddonSet{Name: "conflict", Objects: decode(t, `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: gizmos.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: gizmos, singular: gizmo, kind: Widget, listKind: WidgetList}
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
`)}
		_, err := c.applier(t, kube.ApplyOptions{SkipRolloutWait: true, PollInterval: 100 * time.Millisecond, CRDTimeout: 20 * time.Second}).Apply(ctx, []kube.AddonSet{set})
		t.Logf("error as an operator sees it:\n%v", err)
		if err == nil || !strings.Contains(err.Error(), "add-on conflict: CRD gizmos.example.com will not be established: ") ||
			!strings.Contains(err.Error(), "NamesAccepted=False") {
			t.Fatalf("err = %v", err)
		}
		// The failed CRD was recorded before it was applied, so removing the
		// add-on cleans it up.
		res, err := c.applier(t, noWait).Apply(ctx, []kube.AddonSet{{Name: "conflict"}})
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(changedStrings(res), ","); got != "delete CustomResourceDefinition gizmos.example.com" {
			t.Fatalf("cleanup: %s", got)
		}
		if _, err := c.get(t, widgets, "demo", "w1"); err != nil {
			t.Fatalf("the demo widget suffered: %v", err)
		}
	})

	t.Run("plan for a new add-on with a CRD the API does not serve yet", func(t *testing.T) {
		set := kube.AddonSet{Name: "gadgets", Objects: decode(t, `
apiVersion: v1
kind: Namespace
metadata: {name: gadgets}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: gadgets.example.org}
spec:
  group: example.org
  scope: Cluster
  names: {plural: gadgets, singular: gadget, kind: Gadget, listKind: GadgetList}
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
---
apiVersion: example.org/v1
kind: Gadget
metadata: {name: g1, namespace: ignored-for-cluster-scope}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: c, namespace: gadgets}
`)}
		plan, err := c.applier(t, noWait).Plan(ctx, []kube.AddonSet{set})
		if err != nil {
			t.Fatal(err)
		}
		got := strings.Join(changedStrings(plan), ",")
		if got != "create Namespace gadgets,create CustomResourceDefinition gadgets.example.org,create ConfigMap gadgets/c,create Gadget g1" {
			t.Fatalf("plan = %s", got)
		}
		res, err := c.applier(t, noWait).Apply(ctx, []kube.AddonSet{set})
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(changedStrings(res), ",") != got {
			t.Fatalf("apply %v differs from plan %s", changedStrings(res), got)
		}
		rec, err := kube.ReadRecord(ctx, cs)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rec.Addons["gadgets"].Objects {
			if r.Kind == "Gadget" && r.Namespace != "" {
				t.Fatalf("cluster-scoped Gadget recorded with namespace %q", r.Namespace)
			}
		}
		// Removing the whole add-on prunes it all, custom resource before CRD.
		res, err = c.applier(t, noWait).Apply(ctx, []kube.AddonSet{{Name: "gadgets"}})
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(changedStrings(res), ","); got != "delete Gadget g1,delete ConfigMap gadgets/c,delete CustomResourceDefinition gadgets.example.org,delete Namespace gadgets" {
			t.Fatalf("pruning the add-on: %s", got)
		}
		rec, err = kube.ReadRecord(ctx, cs)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := rec.Addons["gadgets"]; ok {
			t.Fatalf("record still has gadgets: %v", rec.Addons["gadgets"])
		}
		if len(rec.Addons["demo"].Objects) == 0 {
			t.Fatal("the demo add-on's entry lost its objects")
		}
	})
}

func managedByKubewright(u *unstructured.Unstructured) bool {
	for _, f := range u.GetManagedFields() {
		if f.Manager == kube.FieldManager && f.Operation == metav1.ManagedFieldsOperationApply {
			return true
		}
	}
	return false
}

// resourceVersions of everything the demo add-on renders, plus the record:
// a no-op re-apply must leave all of them as they were.
func resourceVersions(t *testing.T, c *cluster) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	cms, err := c.cs.CoreV1().ConfigMaps("demo").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, cm := range cms.Items {
		out["cm/"+cm.Name] = cm.ResourceVersion
	}
	rec, err := c.cs.CoreV1().ConfigMaps(kube.RecordNamespace).Get(ctx, kube.RecordName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out["record"] = rec.ResourceVersion
	for _, x := range []struct {
		gvr      schema.GroupVersionResource
		ns, name string
	}{
		{widgets, "demo", "w1"}, {deployments, "demo", "web"},
		{schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "daemonsets"}, "demo", "agent"},
		{schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "statefulsets"}, "demo", "db"},
		{schema.GroupVersionResource{Version: "v1", Resource: "services"}, "demo", "web"},
		{schema.GroupVersionResource{Version: "v1", Resource: "secrets"}, "demo", "demo"},
		{schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}, "", "widgets.example.com"},
	} {
		u, err := c.get(t, x.gvr, x.ns, x.name)
		if err != nil {
			t.Fatal(err)
		}
		out[x.gvr.Resource+"/"+x.name] = u.GetResourceVersion()
	}
	return out
}
