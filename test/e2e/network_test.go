//go:build e2e

// Network and DNS checks (issue 6), run on TestNodesJoin's lab so the five
// machines are booted and installed once: flannel gives every node a pod
// network, CoreDNS answers as the kube-dns Service, kube-proxy makes
// ClusterIPs work across nodes. Pods are the lab's testapp image; a client
// pod runs one testapp subcommand and its phase (Succeeded or Failed) is the
// result, so no kubectl exec or logs access is needed.
package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
)

const testappImage = "kubewright.io/testapp:v1"

// netCheck holds what the network subtests share.
type netCheck struct {
	cs      kubernetes.Interface
	ns      string
	workers []string
	// kubectl runs the artifacts' kubectl with the admin kubeconfig.
	kubectl func(ctx context.Context, args ...string) (string, error)
}

func (n *netCheck) waitNodesReady(t *testing.T, ctx context.Context, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		nodes, err := n.cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var notReady []string
		for _, node := range nodes.Items {
			for _, c := range node.Status.Conditions {
				if c.Type == corev1.NodeReady && c.Status != corev1.ConditionTrue {
					notReady = append(notReady, fmt.Sprintf("%s: %s", node.Name, c.Message))
				}
			}
		}
		if len(notReady) == 0 && len(nodes.Items) > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nodes not Ready after %s:\n%s", timeout, strings.Join(notReady, "\n"))
		}
		time.Sleep(2 * time.Second)
	}
}

// waitRollout waits for a DaemonSet or Deployment to be fully ready.
func (n *netCheck) waitDaemonSet(t *testing.T, ctx context.Context, ns, name string, timeout time.Duration) *appsv1.DaemonSet {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ds, err := n.cs.AppsV1().DaemonSets(ns).Get(ctx, name, metav1.GetOptions{})
		if err == nil && ds.Status.DesiredNumberScheduled > 0 && ds.Status.NumberReady == ds.Status.DesiredNumberScheduled {
			return ds
		}
		if time.Now().After(deadline) {
			if err != nil {
				t.Fatalf("DaemonSet %s/%s: %v", ns, name, err)
			}
			t.Fatalf("DaemonSet %s/%s not ready after %s: %d of %d ready", ns, name, timeout, ds.Status.NumberReady, ds.Status.DesiredNumberScheduled)
		}
		time.Sleep(2 * time.Second)
	}
}

func (n *netCheck) waitDeployment(t *testing.T, ctx context.Context, ns, name string, timeout time.Duration) *appsv1.Deployment {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		d, err := n.cs.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err == nil && d.Spec.Replicas != nil && d.Status.AvailableReplicas == *d.Spec.Replicas && d.Status.UpdatedReplicas == *d.Spec.Replicas {
			return d
		}
		if time.Now().After(deadline) {
			if err != nil {
				t.Fatalf("Deployment %s/%s: %v", ns, name, err)
			}
			t.Fatalf("Deployment %s/%s not available after %s: %d available, want %d", ns, name, timeout, d.Status.AvailableReplicas, *d.Spec.Replicas)
		}
		time.Sleep(2 * time.Second)
	}
}

// server starts a testapp HTTP server pod on node and returns it once it
// runs with an IP.
func (n *netCheck) server(t *testing.T, ctx context.Context, name, node string) *corev1.Pod {
	t.Helper()
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": "echo"}},
		Spec: corev1.PodSpec{
			NodeName:    node,
			Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
			Containers: []corev1.Container{{
				Name: "echo", Image: testappImage, ImagePullPolicy: corev1.PullNever,
				Args:           []string{"serve", "-addr", ":8080"},
				Ports:          []corev1.ContainerPort{{ContainerPort: 8080}},
				ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(8080)}}, PeriodSeconds: 1},
			}},
		},
	}
	if _, err := n.cs.CoreV1().Pods(n.ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create pod %s: %v", name, err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		got, err := n.cs.CoreV1().Pods(n.ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ready := false
		for _, c := range got.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				ready = true
			}
		}
		if ready && got.Status.PodIP != "" {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("pod %s on %s not ready: %s", name, node, podProblem(got))
		}
		time.Sleep(time.Second)
	}
}

// client runs `testapp ARGS...` in a pod on node and reports whether it
// exited 0, with the pod's status for the failure message.
func (n *netCheck) client(t *testing.T, ctx context.Context, name, node string, args ...string) (bool, string) {
	t.Helper()
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			NodeName:      node,
			RestartPolicy: corev1.RestartPolicyNever,
			Tolerations:   []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
			Containers: []corev1.Container{{
				Name: "client", Image: testappImage, ImagePullPolicy: corev1.PullNever,
				Args:                     args,
				TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
			}},
		},
	}
	if _, err := n.cs.CoreV1().Pods(n.ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create pod %s: %v", name, err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		got, err := n.cs.CoreV1().Pods(n.ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		switch got.Status.Phase {
		case corev1.PodSucceeded:
			return true, ""
		case corev1.PodFailed:
			return false, podProblem(got)
		}
		if time.Now().After(deadline) {
			return false, "did not finish: " + podProblem(got)
		}
		time.Sleep(time.Second)
	}
}

// podProblem summarises why a pod is not where it should be.
func podProblem(p *corev1.Pod) string {
	var b strings.Builder
	fmt.Fprintf(&b, "phase %s on %s", p.Status.Phase, p.Spec.NodeName)
	for _, c := range p.Status.Conditions {
		if c.Status != corev1.ConditionTrue && c.Message != "" {
			fmt.Fprintf(&b, "; %s: %s", c.Type, c.Message)
		}
	}
	for _, cs := range p.Status.ContainerStatuses {
		if w := cs.State.Waiting; w != nil {
			fmt.Fprintf(&b, "; %s waiting: %s %s", cs.Name, w.Reason, w.Message)
		}
		if tm := cs.State.Terminated; tm != nil {
			fmt.Fprintf(&b, "; %s exited %d: %s", cs.Name, tm.ExitCode, strings.TrimSpace(tm.Message))
		}
	}
	return b.String()
}

// checkWorkload runs a two-replica Deployment of the test image, one pod per
// worker, and reads a pod's logs and execs into it with kubectl: both go
// from the apiserver to the kubelet's serving certificate.
func (n *netCheck) checkWorkload(t *testing.T, ctx context.Context) {
	replicas := int32(len(n.workers))
	labels := map[string]string{"app": "web"}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					NodeSelector: map[string]string{"node-role.kubernetes.io/worker": ""},
					Affinity: &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
						RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{
							LabelSelector: &metav1.LabelSelector{MatchLabels: labels}, TopologyKey: "kubernetes.io/hostname",
						}},
					}},
					Containers: []corev1.Container{{
						Name: "web", Image: testappImage, ImagePullPolicy: corev1.PullNever,
						Args: []string{"serve", "-addr", ":8080"},
					}},
				},
			},
		},
	}
	if _, err := n.cs.AppsV1().Deployments(n.ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	n.waitDeployment(t, ctx, n.ns, "web", 2*time.Minute)
	pods, err := n.cs.CoreV1().Pods(n.ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		t.Fatal(err)
	}
	on := map[string]string{}
	for _, p := range pods.Items {
		if p.Status.Phase == corev1.PodRunning {
			on[p.Spec.NodeName] = p.Name
		}
	}
	for _, w := range n.workers {
		if on[w] == "" {
			t.Errorf("no running web pod on worker %s: %v", w, on)
		}
	}
	pod := on[n.workers[0]]
	if pod == "" {
		return
	}
	out, err := n.kubectl(ctx, "-n", n.ns, "logs", pod)
	if err != nil || !strings.Contains(out, "testapp listening on :8080") {
		t.Errorf("kubectl logs %s: %v\n%s", pod, err, out)
	}
	out, err = n.kubectl(ctx, "-n", n.ns, "exec", pod, "--", "sh", "-c", "echo hello from exec")
	if err != nil || strings.TrimSpace(out) != "hello from exec" {
		t.Errorf("kubectl exec %s: %v\n%s", pod, err, out)
	}
}

// checkNetwork runs the network and DNS subtests on an installed lab.
func checkNetwork(t *testing.T, ctx context.Context, n *netCheck) {
	cs, workers := n.cs, n.workers
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: n.ns}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}

	t.Run("every node Ready with flannel, CoreDNS available", func(t *testing.T) {
		n.waitNodesReady(t, ctx, 3*time.Minute)
		n.waitDaemonSet(t, ctx, "kube-flannel", "kube-flannel-ds", 3*time.Minute)
		n.waitDeployment(t, ctx, "kube-system", "coredns", 3*time.Minute)
		svc, err := cs.CoreV1().Services("kube-system").Get(ctx, "kube-dns", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if svc.Spec.ClusterIP != "10.96.0.10" {
			t.Errorf("kube-dns ClusterIP %s, want 10.96.0.10 (the 10th address of the service CIDR)", svc.Spec.ClusterIP)
		}
	})

	var a, b *corev1.Pod
	t.Run("pods on different workers reach each other by pod IP", func(t *testing.T) {
		a = n.server(t, ctx, "echo-a", workers[0])
		b = n.server(t, ctx, "echo-b", workers[1])
		if ok, why := n.client(t, ctx, "get-b-from-a-node", workers[0], "get", "http://"+b.Status.PodIP+":8080/"); !ok {
			t.Errorf("GET pod %s (%s on %s) from %s: %s", b.Name, b.Status.PodIP, workers[1], workers[0], why)
		}
		if ok, why := n.client(t, ctx, "get-a-from-b-node", workers[1], "get", "http://"+a.Status.PodIP+":8080/"); !ok {
			t.Errorf("GET pod %s (%s on %s) from %s: %s", a.Name, a.Status.PodIP, workers[0], workers[1], why)
		}
	})
	if a == nil || b == nil {
		return
	}

	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "echo"},
		Spec: corev1.ServiceSpec{
			// Only echo-b behind it, so a client on workers[0] must cross nodes.
			Selector: map[string]string{"app": "echo"},
			Ports:    []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}},
		},
	}
	if err := cs.CoreV1().Pods(n.ns).Delete(ctx, "echo-a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	created, err := cs.CoreV1().Services(n.ns).Create(ctx, svc, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("a Service ClusterIP answers from a pod on another node", func(t *testing.T) {
		if ok, why := n.client(t, ctx, "get-clusterip", workers[0], "get", "http://"+created.Spec.ClusterIP+"/"); !ok {
			t.Errorf("GET ClusterIP %s (echo-b on %s) from %s: %s", created.Spec.ClusterIP, workers[1], workers[0], why)
		}
	})

	t.Run("a Deployment runs on both workers; kubectl logs and exec work", func(t *testing.T) {
		n.checkWorkload(t, ctx)
	})

	t.Run("pods resolve the API and a Service by name through kube-dns", func(t *testing.T) {
		if ok, why := n.client(t, ctx, "lookup-kubernetes", workers[0], "lookup", "kubernetes.default.svc.cluster.local"); !ok {
			t.Errorf("lookup kubernetes.default.svc.cluster.local: %s", why)
		}
		if ok, why := n.client(t, ctx, "get-by-name", workers[0], "get", "http://echo."+n.ns+".svc.cluster.local/"); !ok {
			t.Errorf("GET the echo Service by name: %s", why)
		}
		if ok, why := n.client(t, ctx, "get-by-short-name", workers[1], "get", "http://echo/"); !ok {
			t.Errorf("GET the echo Service by its short name (search path): %s", why)
		}
	})
}
