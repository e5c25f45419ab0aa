package kube

import (
	"context"
	"errors"
	"math/rand"
	"reflect"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
)

func obj(apiVersion, kind, ns, name string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": apiVersion, "kind": kind, "metadata": map[string]any{"name": name}}}
	if ns != "" {
		u.SetNamespace(ns)
	}
	return u
}

func TestSortForApplyOrder(t *testing.T) {
	want := []string{
		"Namespace kube-flannel",
		"CustomResourceDefinition widgets.example.com",
		"PriorityClass critical",
		"ClusterRole flannel",
		"ClusterRoleBinding flannel",
		"Role kube-flannel/r",
		"RoleBinding kube-flannel/r",
		"ServiceAccount kube-flannel/flannel",
		"Secret kube-flannel/a",
		"ConfigMap kube-flannel/a",
		"ConfigMap kube-flannel/b",
		"Service kube-flannel/svc",
		"DaemonSet kube-flannel/flannel",
		"Deployment kube-flannel/a",
		"Deployment kube-system/a",
		"StatefulSet kube-flannel/db",
		"Widget kube-flannel/w",
		"PodDisruptionBudget kube-flannel/pdb",
		"ValidatingWebhookConfiguration hook",
		"APIService v1beta1.metrics.k8s.io",
	}
	objs := []*unstructured.Unstructured{
		obj("v1", "Namespace", "", "kube-flannel"),
		obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", "", "widgets.example.com"),
		obj("scheduling.k8s.io/v1", "PriorityClass", "", "critical"),
		obj("rbac.authorization.k8s.io/v1", "ClusterRole", "", "flannel"),
		obj("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "", "flannel"),
		obj("rbac.authorization.k8s.io/v1", "Role", "kube-flannel", "r"),
		obj("rbac.authorization.k8s.io/v1", "RoleBinding", "kube-flannel", "r"),
		obj("v1", "ServiceAccount", "kube-flannel", "flannel"),
		obj("v1", "Secret", "kube-flannel", "a"),
		obj("v1", "ConfigMap", "kube-flannel", "a"),
		obj("v1", "ConfigMap", "kube-flannel", "b"),
		obj("v1", "Service", "kube-flannel", "svc"),
		obj("apps/v1", "DaemonSet", "kube-flannel", "flannel"),
		obj("apps/v1", "Deployment", "kube-flannel", "a"),
		obj("apps/v1", "Deployment", "kube-system", "a"),
		obj("apps/v1", "StatefulSet", "kube-flannel", "db"),
		obj("example.com/v1", "Widget", "kube-flannel", "w"),
		obj("policy/v1", "PodDisruptionBudget", "kube-flannel", "pdb"),
		obj("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", "", "hook"),
		obj("apiregistration.k8s.io/v1", "APIService", "", "v1beta1.metrics.k8s.io"),
	}
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 20; i++ {
		shuffled := append([]*unstructured.Unstructured(nil), objs...)
		rng.Shuffle(len(shuffled), func(a, b int) { shuffled[a], shuffled[b] = shuffled[b], shuffled[a] })
		sortForApply(shuffled)
		var got []string
		for _, o := range shuffled {
			got = append(got, RefOf(o).String())
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("order after shuffle %d:\n%s\nwant:\n%s", i, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
	// A kind named like a built-in in another group is not the built-in.
	if orderOf(RefOf(obj("example.com/v1", "Service", "x", "y")).GroupKind()).rank != rankOther {
		t.Fatal("example.com Service ranked as a core Service")
	}
	// Pruning goes the other way: webhooks first, namespaces last.
	refs := []ObjectRef{RefOf(objs[0]), RefOf(objs[12]), RefOf(objs[18]), RefOf(objs[1])}
	sortRefsForDelete(refs)
	var got []string
	for _, r := range refs {
		got = append(got, r.Kind)
	}
	if strings.Join(got, ",") != "ValidatingWebhookConfiguration,DaemonSet,CustomResourceDefinition,Namespace" {
		t.Fatalf("delete order %v", got)
	}
}

func TestValidateAddons(t *testing.T) {
	cm := obj("v1", "ConfigMap", "ns", "a")
	tests := []struct {
		name   string
		addons []AddonSet
		want   string
	}{
		{"ok", []AddonSet{{Name: "dns", Objects: []*unstructured.Unstructured{cm}}, {Name: "cni"}}, ""},
		{"bad name", []AddonSet{{Name: "a/b"}}, `add-on name "a/b"`},
		{"not a label value", []AddonSet{{Name: ".hidden"}}, `add-on name ".hidden"`},
		{"empty name", []AddonSet{{Name: ""}}, `add-on name ""`},
		{"twice", []AddonSet{{Name: "dns"}, {Name: "dns"}}, "add-on dns is listed twice"},
		{"nil object", []AddonSet{{Name: "dns", Objects: []*unstructured.Unstructured{nil}}}, "object 0 is nil"},
		{"no name", []AddonSet{{Name: "dns", Objects: []*unstructured.Unstructured{obj("v1", "ConfigMap", "ns", "")}}}, "needs apiVersion, kind and metadata.name"},
		{"duplicate", []AddonSet{{Name: "dns", Objects: []*unstructured.Unstructured{cm, obj("v1", "ConfigMap", "ns", "a")}}}, "add-on dns renders ConfigMap ns/a twice"},
		{"two owners", []AddonSet{{Name: "dns", Objects: []*unstructured.Unstructured{cm}}, {Name: "cni", Objects: []*unstructured.Unstructured{obj("v1", "ConfigMap", "ns", "a")}}},
			"ConfigMap ns/a is rendered by add-ons dns and cni"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := validateAddons(tc.addons)
			switch {
			case tc.want == "" && err != nil:
				t.Fatal(err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestPrepareForApply(t *testing.T) {
	o := obj("v1", "ConfigMap", "ns", "a")
	o.SetResourceVersion("12")
	o.SetManagedFields([]metav1.ManagedFieldsEntry{{Manager: "x"}})
	o.Object["status"] = map[string]any{"a": "b"}
	p, err := prepareForApply(o, "dns")
	if err != nil {
		t.Fatal(err)
	}
	if p.GetResourceVersion() != "" || p.GetManagedFields() != nil || p.Object["status"] != nil {
		t.Fatalf("bookkeeping kept: %v", p.Object)
	}
	if p.GetLabels()[LabelAddon] != "dns" {
		t.Fatalf("labels %v", p.GetLabels())
	}
	if o.GetResourceVersion() != "12" || o.GetLabels() != nil {
		t.Fatal("the caller's object was modified")
	}
	o.SetLabels(map[string]string{LabelAddon: "network"})
	if _, err := prepareForApply(o, "dns"); err == nil || !strings.Contains(err.Error(), `label kubewright.io/addon="network" names another add-on`) {
		t.Fatalf("err = %v", err)
	}
}

func TestChangedFields(t *testing.T) {
	base := func() *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "v1", "kind": "ConfigMap",
			"metadata": map[string]any{
				"name": "c", "namespace": "ns", "uid": "u1", "resourceVersion": "10", "generation": int64(1),
				"creationTimestamp": "2026-01-01T00:00:00Z", "labels": map[string]any{"a": "1"},
				"managedFields": []any{map[string]any{"manager": "kubewright"}},
			},
			"data":   map[string]any{"k": "v"},
			"status": map[string]any{"x": "y"},
		}}
	}
	tests := []struct {
		name string
		mod  func(u *unstructured.Unstructured)
		want []string
	}{
		{"identical", func(*unstructured.Unstructured) {}, nil},
		{"bookkeeping only", func(u *unstructured.Unstructured) {
			u.SetResourceVersion("11")
			u.SetGeneration(2)
			u.SetManagedFields([]metav1.ManagedFieldsEntry{{Manager: "other"}})
			u.SetCreationTimestamp(metav1.NewTime(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)))
		}, nil},
		{"status moves on its own", func(u *unstructured.Unstructured) { u.Object["status"] = map[string]any{"x": "z"} }, nil},
		{"data", func(u *unstructured.Unstructured) { u.Object["data"] = map[string]any{"k": "w"} }, []string{"data"}},
		{"labels", func(u *unstructured.Unstructured) { u.SetLabels(map[string]string{"a": "2"}) }, []string{"metadata.labels"}},
		{"added field and annotation", func(u *unstructured.Unstructured) {
			u.Object["binaryData"] = map[string]any{"b": "AA=="}
			u.SetAnnotations(map[string]string{"n": "1"})
		}, []string{"binaryData", "metadata.annotations"}},
		{"removed field", func(u *unstructured.Unstructured) { delete(u.Object, "data") }, []string{"data"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			applied := base()
			tc.mod(applied)
			if got := changedFields(base(), applied); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("changedFields = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestObjectChangeString(t *testing.T) {
	c := ObjectChange{Ref: ObjectRef{Version: "v1", Kind: "ConfigMap", Namespace: "kube-system", Name: "coredns"}, Action: ActionUpdate, Fields: []string{"data", "metadata.labels"}}
	if got := c.String(); got != "update ConfigMap kube-system/coredns (data, metadata.labels)" {
		t.Fatal(got)
	}
	c = ObjectChange{Ref: ObjectRef{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "ClusterRole", Name: "x"}}
	if got := c.String(); got != "unchanged ClusterRole x" {
		t.Fatal(got)
	}
}

func ptr[T any](v T) *T { return &v }

func TestWorkloadReadiness(t *testing.T) {
	dep := func(gen, observed int64, replicas *int32, st appsv1.DeploymentStatus) *appsv1.Deployment {
		st.ObservedGeneration = observed
		return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Generation: gen}, Spec: appsv1.DeploymentSpec{Replicas: replicas}, Status: st}
	}
	deployments := []struct {
		name  string
		d     *appsv1.Deployment
		ready bool
	}{
		{"rolled out", dep(2, 2, ptr[int32](2), appsv1.DeploymentStatus{Replicas: 2, UpdatedReplicas: 2, ReadyReplicas: 2, AvailableReplicas: 2}), true},
		{"default one replica", dep(1, 1, nil, appsv1.DeploymentStatus{Replicas: 1, UpdatedReplicas: 1, AvailableReplicas: 1}), true},
		{"spec not observed", dep(3, 2, ptr[int32](2), appsv1.DeploymentStatus{Replicas: 2, UpdatedReplicas: 2, AvailableReplicas: 2}), false},
		{"not available", dep(1, 1, ptr[int32](2), appsv1.DeploymentStatus{Replicas: 2, UpdatedReplicas: 2, AvailableReplicas: 1}), false},
		{"old replica left", dep(1, 1, ptr[int32](2), appsv1.DeploymentStatus{Replicas: 3, UpdatedReplicas: 2, AvailableReplicas: 2}), false},
		{"never seen by a controller", dep(1, 0, ptr[int32](1), appsv1.DeploymentStatus{}), false},
		{"scaled to zero", dep(1, 1, ptr[int32](0), appsv1.DeploymentStatus{}), true},
	}
	for _, tc := range deployments {
		t.Run("Deployment "+tc.name, func(t *testing.T) {
			if ready, sum := DeploymentReady(tc.d); ready != tc.ready {
				t.Fatalf("ready = %v (%s), want %v", ready, sum, tc.ready)
			}
		})
	}
	d := dep(1, 1, ptr[int32](2), appsv1.DeploymentStatus{Replicas: 2, UpdatedReplicas: 2, ReadyReplicas: 1, AvailableReplicas: 1,
		Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentProgressing, Status: "False", Reason: "ProgressDeadlineExceeded", Message: `ReplicaSet "x" has timed out progressing.`}}})
	if _, sum := DeploymentReady(d); sum != `replicas 2: updated 2, ready 1, available 1, total 2; observed generation 1 of 1; ProgressDeadlineExceeded: ReplicaSet "x" has timed out progressing.` {
		t.Fatalf("summary %q", sum)
	}

	ds := func(gen, observed int64, onDelete bool, st appsv1.DaemonSetStatus) *appsv1.DaemonSet {
		st.ObservedGeneration = observed
		d := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Generation: gen}, Status: st}
		if onDelete {
			d.Spec.UpdateStrategy.Type = appsv1.OnDeleteDaemonSetStrategyType
		}
		return d
	}
	daemonsets := []struct {
		name  string
		ds    *appsv1.DaemonSet
		ready bool
	}{
		{"rolled out", ds(1, 1, false, appsv1.DaemonSetStatus{DesiredNumberScheduled: 3, NumberReady: 3, UpdatedNumberScheduled: 3, NumberAvailable: 3}), true},
		{"one not ready", ds(1, 1, false, appsv1.DaemonSetStatus{DesiredNumberScheduled: 3, NumberReady: 2, UpdatedNumberScheduled: 3}), false},
		{"one old", ds(1, 1, false, appsv1.DaemonSetStatus{DesiredNumberScheduled: 3, NumberReady: 3, UpdatedNumberScheduled: 2}), false},
		{"one old, OnDelete", ds(1, 1, true, appsv1.DaemonSetStatus{DesiredNumberScheduled: 3, NumberReady: 3, UpdatedNumberScheduled: 2}), true},
		{"not observed", ds(2, 1, false, appsv1.DaemonSetStatus{DesiredNumberScheduled: 3, NumberReady: 3, UpdatedNumberScheduled: 3}), false},
	}
	for _, tc := range daemonsets {
		t.Run("DaemonSet "+tc.name, func(t *testing.T) {
			if ready, sum := DaemonSetReady(tc.ds); ready != tc.ready {
				t.Fatalf("ready = %v (%s), want %v", ready, sum, tc.ready)
			}
		})
	}

	sts := func(partition *int32, onDelete bool, st appsv1.StatefulSetStatus) *appsv1.StatefulSet {
		st.ObservedGeneration = 1
		s := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Generation: 1}, Spec: appsv1.StatefulSetSpec{Replicas: ptr[int32](3)}, Status: st}
		if onDelete {
			s.Spec.UpdateStrategy.Type = appsv1.OnDeleteStatefulSetStrategyType
		} else if partition != nil {
			s.Spec.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateStatefulSetStrategy{Partition: partition}
		}
		return s
	}
	statefulsets := []struct {
		name  string
		s     *appsv1.StatefulSet
		ready bool
	}{
		{"rolled out", sts(nil, false, appsv1.StatefulSetStatus{ReadyReplicas: 3, UpdatedReplicas: 3, CurrentRevision: "r2", UpdateRevision: "r2"}), true},
		{"revision pending", sts(nil, false, appsv1.StatefulSetStatus{ReadyReplicas: 3, UpdatedReplicas: 3, CurrentRevision: "r1", UpdateRevision: "r2"}), false},
		{"partition 2 reached", sts(ptr[int32](2), false, appsv1.StatefulSetStatus{ReadyReplicas: 3, UpdatedReplicas: 1, CurrentRevision: "r1", UpdateRevision: "r2"}), true},
		{"partition 1 not reached", sts(ptr[int32](1), false, appsv1.StatefulSetStatus{ReadyReplicas: 3, UpdatedReplicas: 1}), false},
		{"OnDelete", sts(nil, true, appsv1.StatefulSetStatus{ReadyReplicas: 3, CurrentRevision: "r1", UpdateRevision: "r2"}), true},
		{"not ready", sts(nil, false, appsv1.StatefulSetStatus{ReadyReplicas: 2, UpdatedReplicas: 3, CurrentRevision: "r2", UpdateRevision: "r2"}), false},
	}
	for _, tc := range statefulsets {
		t.Run("StatefulSet "+tc.name, func(t *testing.T) {
			if ready, sum := StatefulSetReady(tc.s); ready != tc.ready {
				t.Fatalf("ready = %v (%s), want %v", ready, sum, tc.ready)
			}
		})
	}
}

func TestPodProblem(t *testing.T) {
	pod := func(mod func(p *corev1.Pod)) *corev1.Pod {
		p := &corev1.Pod{Spec: corev1.PodSpec{NodeName: "n1"}, Status: corev1.PodStatus{Phase: corev1.PodPending}}
		mod(p)
		return p
	}
	tests := []struct {
		name string
		p    *corev1.Pod
		want string
	}{
		{"ready", pod(func(p *corev1.Pod) {
			p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
		}), ""},
		{"image pull", pod(func(p *corev1.Pod) {
			p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "coredns", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: `Back-off pulling image "coredns:v9"`}}}}
		}), `container coredns waiting: ImagePullBackOff: Back-off pulling image "coredns:v9"`},
		{"crash loop", pod(func(p *corev1.Pod) {
			p.Status.ContainerStatuses = []corev1.ContainerStatus{
				{Name: "ok", Ready: true, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}},
				{Name: "app", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: "back-off 5m0s"}},
					LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 2, Reason: "Error"}}},
			}
		}), "container app waiting: CrashLoopBackOff: back-off 5m0s; last exit code 2: Error"},
		{"init container first", pod(func(p *corev1.Pod) {
			p.Status.InitContainerStatuses = []corev1.ContainerStatus{{Name: "install-cni", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1, Reason: "Error", Message: "no /opt/cni/bin"}}}}
			p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "flannel", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "PodInitializing"}}}}
		}), "container install-cni terminated with exit code 1: Error: no /opt/cni/bin"},
		{"running not ready", pod(func(p *corev1.Pod) {
			p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", RestartCount: 3, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}
		}), "container app running but not ready (restarts 3)"},
		{"unschedulable", pod(func(p *corev1.Pod) {
			p.Spec.NodeName = ""
			p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "Unschedulable", Message: "0/3 nodes are available: 3 node(s) had untolerated taint."}}
		}), "not scheduled: Unschedulable: 0/3 nodes are available: 3 node(s) had untolerated taint."},
		{"no scheduler", pod(func(p *corev1.Pod) { p.Spec.NodeName = "" }), "not scheduled yet (is kube-scheduler running?)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := podProblem(tc.p); got != tc.want {
				t.Fatalf("podProblem = %q, want %q", got, tc.want)
			}
		})
	}
}

// The rollout wait against a fake clientset: the timeout bounds it, and the
// error names the workload, its counts and the reason from its pod.
func TestWaitRolloutsTimeoutNamesWhy(t *testing.T) {
	ctx := context.Background()
	labels := map[string]string{"app": "dns"}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "coredns", Namespace: "kube-system", Generation: 1, UID: "d1"},
		Spec:       appsv1.DeploymentSpec{Replicas: ptr[int32](2), Selector: &metav1.LabelSelector{MatchLabels: labels}},
		Status:     appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 2, UpdatedReplicas: 2, ReadyReplicas: 1, AvailableReplicas: 1},
	}
	ready := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "ok", Namespace: "kube-system", Generation: 1},
		Spec:       appsv1.DeploymentSpec{Replicas: ptr[int32](1), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "ok"}}},
		Status:     appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 1, UpdatedReplicas: 1, AvailableReplicas: 1},
	}
	okPod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "coredns-a", Namespace: "kube-system", Labels: labels},
		Status: corev1.PodStatus{Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}}}
	badPod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "coredns-b", Namespace: "kube-system", Labels: labels, UID: "p2"},
		Spec: corev1.PodSpec{NodeName: "n1"},
		Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{Name: "coredns",
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: "Back-off pulling image"}}}}}}
	ev := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: "e1", Namespace: "kube-system"}, Type: corev1.EventTypeWarning, Reason: "Failed",
		Message:        `Failed to pull image "coredns:v9": not found`,
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "coredns-b", UID: "p2"}}
	cs := fake.NewClientset(d, ready, okPod, badPod, ev)
	a := &Applier{cs: cs, opts: ApplyOptions{RolloutTimeout: 300 * time.Millisecond, PollInterval: 50 * time.Millisecond}.withDefaults()}
	refs := []addonRef{
		{Addon: "dns", Ref: ObjectRef{Group: "apps", Version: "v1", Kind: "Deployment", Namespace: "kube-system", Name: "coredns"}},
		{Addon: "dns", Ref: ObjectRef{Group: "apps", Version: "v1", Kind: "Deployment", Namespace: "kube-system", Name: "ok"}},
		{Addon: "dns", Ref: ObjectRef{Version: "v1", Kind: "ConfigMap", Namespace: "kube-system", Name: "ignored"}},
	}
	start := time.Now()
	err := a.waitRollouts(ctx, refs)
	took := time.Since(start)
	if err == nil {
		t.Fatal("no error for a deployment that is not ready")
	}
	if !errors.Is(err, ErrNotReady) {
		t.Fatalf("error does not wrap ErrNotReady: %v", err)
	}
	msg := err.Error()
	for _, want := range []string{
		"add-on dns: Deployment kube-system/coredns not ready after",
		"replicas 2: updated 2, ready 1, available 1",
		"pod coredns-b: container coredns waiting: ImagePullBackOff: Back-off pulling image",
		`event Failed: Failed to pull image "coredns:v9": not found`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "kube-system/ok") {
		t.Errorf("error names the ready deployment:\n%s", msg)
	}
	if took < 300*time.Millisecond || took > 3*time.Second {
		t.Errorf("wait took %s with a 300ms timeout", took)
	}

	// Once the controller reports it ready, the wait ends without error.
	d.Status.ReadyReplicas, d.Status.AvailableReplicas = 2, 2
	if _, err := cs.AppsV1().Deployments("kube-system").UpdateStatus(ctx, d, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := a.waitRollouts(ctx, refs); err != nil {
		t.Fatalf("ready deployments: %v", err)
	}
}

func TestWaitRolloutsNoPodsPointsAtEvents(t *testing.T) {
	ctx := context.Background()
	sel := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "x"}}
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: "ns", Generation: 1, UID: "d1"},
		Spec: appsv1.DeploymentSpec{Selector: sel}, Status: appsv1.DeploymentStatus{ObservedGeneration: 1}}
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "x-123", Namespace: "ns", UID: "r1", Labels: map[string]string{"app": "x"},
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: "x", UID: "d1", Controller: ptr(true)}}}}
	ev := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: "e", Namespace: "ns"}, Type: corev1.EventTypeWarning, Reason: "FailedCreate",
		Message:        `pods "x-123-" is forbidden: error looking up service account ns/x: serviceaccount "x" not found`,
		InvolvedObject: corev1.ObjectReference{Kind: "ReplicaSet", Name: "x-123", UID: "r1"}}
	a := &Applier{cs: fake.NewClientset(d, rs, ev), opts: ApplyOptions{RolloutTimeout: 10 * time.Millisecond, PollInterval: 10 * time.Millisecond}.withDefaults()}
	err := a.WaitForRollouts(ctx, []ObjectRef{{Group: "apps", Version: "v1", Kind: "Deployment", Namespace: "ns", Name: "x"}})
	if err == nil || !strings.Contains(err.Error(), `no pods; ReplicaSet x-123: event FailedCreate: pods "x-123-" is forbidden: error looking up service account`) {
		t.Fatalf("err = %v", err)
	}
	// Nothing at all to go on: say what is probably missing.
	a = &Applier{cs: fake.NewClientset(d), opts: a.opts}
	err = a.WaitForRollouts(ctx, []ObjectRef{{Group: "apps", Version: "v1", Kind: "Deployment", Namespace: "ns", Name: "x"}})
	if err == nil || !strings.Contains(err.Error(), "no pods and no warning events (is kube-controller-manager running?)") {
		t.Fatalf("err = %v", err)
	}
}

// The CRD wait is bounded by CRDTimeout and its error names the CRD and
// its conditions (the e2e test covers refused names on a real server).
func TestWaitCRDsEstablishedTimeout(t *testing.T) {
	crd := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]any{"name": "widgets.example.com"},
		"status": map[string]any{"conditions": []any{
			map[string]any{"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found"},
			map[string]any{"type": "Established", "status": "False", "reason": "Installing", "message": "the initial names have been accepted"},
		}},
	}}
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}: "CustomResourceDefinitionList"}, crd)
	for _, timeout := range []time.Duration{200 * time.Millisecond, 600 * time.Millisecond} {
		a := &Applier{dyn: dyn, opts: ApplyOptions{CRDTimeout: timeout, PollInterval: 20 * time.Millisecond}.withDefaults()}
		start := time.Now()
		err := a.waitCRDsEstablished(context.Background(), "demo", []string{"widgets.example.com"})
		took := time.Since(start)
		want := "add-on demo: CRD widgets.example.com not established after " + timeout.String() +
			": NamesAccepted=True (NoConflicts: no conflicts found), Established=False (Installing: the initial names have been accepted)"
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("err = %v, want %q", err, want)
		}
		if took < timeout || took > timeout+time.Second {
			t.Fatalf("with CRDTimeout %s the wait took %s", timeout, took)
		}
	}
	// Established: no wait at all.
	_ = unstructured.SetNestedSlice(crd.Object, []any{map[string]any{"type": "Established", "status": "True"}}, "status", "conditions")
	dyn = dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}: "CustomResourceDefinitionList"}, crd)
	a := &Applier{dyn: dyn, opts: ApplyOptions{CRDTimeout: time.Minute}.withDefaults()}
	if err := a.waitCRDsEstablished(context.Background(), "demo", []string{"widgets.example.com"}); err != nil {
		t.Fatal(err)
	}
}

func TestRecordRoundTrip(t *testing.T) {
	ctx := context.Background()
	cs := fake.NewClientset()
	r, err := ReadRecord(ctx, cs)
	if err != nil || len(r.Addons) != 0 {
		t.Fatalf("empty cluster: %v %v", r, err)
	}
	r.Addons["network"] = AddonRecord{
		Objects:  []ObjectRef{{Group: "apps", Version: "v1", Kind: "DaemonSet", Namespace: "kube-flannel", Name: "flannel"}, {Version: "v1", Kind: "Namespace", Name: "kube-flannel"}},
		Settings: map[string]string{"plugin": "flannel"},
	}
	r.Addons["gone"] = AddonRecord{}
	if err := WriteRecord(ctx, cs, r); err != nil {
		t.Fatal(err)
	}
	got, err := ReadRecord(ctx, cs)
	if err != nil {
		t.Fatal(err)
	}
	if got.Setting("network", "plugin") != "flannel" {
		t.Fatalf("setting = %q", got.Setting("network", "plugin"))
	}
	if _, ok := got.Addons["gone"]; ok {
		t.Fatal("an empty add-on entry was stored")
	}
	// Stored in apply order, so equal records encode equally.
	if objs := got.Addons["network"].Objects; len(objs) != 2 || objs[0].Kind != "Namespace" {
		t.Fatalf("objects = %v", objs)
	}
	if !sameEncoding(r, got) {
		t.Fatal("record read back encodes differently")
	}
	// Conflicts need a real API server (the fake ignores resourceVersion):
	// see the e2e test.
}
