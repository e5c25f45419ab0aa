package kube

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/go-multierror"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// waitCRDsEstablished polls the add-on's CRDs until each is Established.
// A CRD whose names are refused never will be, so that fails at once.
func (a *Applier) waitCRDsEstablished(ctx context.Context, addon string, names []string) error {
	deadline := time.Now().Add(a.opts.CRDTimeout)
	ri := a.dyn.Resource(schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"})
	pending := names
	for {
		var still []string
		why := map[string]string{}
		for _, n := range pending {
			u, err := ri.Get(ctx, n, metav1.GetOptions{})
			if err != nil {
				still, why[n] = append(still, n), err.Error()
				continue
			}
			established, refused, conds := crdConditions(u)
			switch {
			case established:
				a.opts.Logf("addon=%s crd=%s established", addon, n)
			case refused:
				return fmt.Errorf("add-on %s: CRD %s will not be established: %s", addon, n, conds)
			default:
				still, why[n] = append(still, n), conds
			}
		}
		if len(still) == 0 {
			return nil
		}
		pending = still
		if time.Now().After(deadline) || sleepCtx(ctx, a.opts.PollInterval) != nil {
			var errs *multierror.Error
			for _, n := range pending {
				errs = multierror.Append(errs, fmt.Errorf("add-on %s: CRD %s not established after %s: %s", addon, n, a.opts.CRDTimeout, why[n]))
			}
			if ctx.Err() != nil {
				errs = multierror.Append(errs, ctx.Err())
			}
			return errs.ErrorOrNil()
		}
	}
}

// crdConditions reads a CRD's status: whether it is Established, whether
// its names were refused (NamesAccepted=False), and all conditions as text.
func crdConditions(u *unstructured.Unstructured) (established, refused bool, text string) {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	var parts []string
	for _, c := range conds {
		m, _ := c.(map[string]any)
		typ, _ := m["type"].(string)
		status, _ := m["status"].(string)
		reason, _ := m["reason"].(string)
		msg, _ := m["message"].(string)
		parts = append(parts, fmt.Sprintf("%s=%s (%s: %s)", typ, status, reason, msg))
		switch {
		case typ == "Established" && status == "True":
			established = true
		case typ == "NamesAccepted" && status == "False":
			refused = true
		}
	}
	if len(parts) == 0 {
		return false, false, "no conditions yet"
	}
	return established, refused, strings.Join(parts, ", ")
}

func isWorkload(r ObjectRef) bool {
	return r.Group == appsGroup && (r.Kind == "DaemonSet" || r.Kind == "Deployment" || r.Kind == "StatefulSet")
}

// DeploymentReady reports whether a Deployment finished rolling out: the
// controller saw the current spec and every wanted replica is updated and
// available, with no old replica left. The summary has the counts.
func DeploymentReady(d *appsv1.Deployment) (bool, string) {
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	s := d.Status
	summary := fmt.Sprintf("replicas %d: updated %d, ready %d, available %d, total %d; observed generation %d of %d",
		want, s.UpdatedReplicas, s.ReadyReplicas, s.AvailableReplicas, s.Replicas, s.ObservedGeneration, d.Generation)
	for _, c := range s.Conditions {
		switch {
		case c.Type == appsv1.DeploymentProgressing && c.Reason == "ProgressDeadlineExceeded",
			c.Type == appsv1.DeploymentReplicaFailure && c.Status == corev1.ConditionTrue:
			summary += fmt.Sprintf("; %s: %s", c.Reason, c.Message)
		}
	}
	ready := s.ObservedGeneration >= d.Generation && s.UpdatedReplicas == want && s.AvailableReplicas == want && s.Replicas == want
	return ready, summary
}

// DaemonSetReady reports whether a DaemonSet finished rolling out: the
// controller saw the current spec and every node that should run it runs an
// updated, ready pod (with OnDelete updates, ready is enough: pods update
// only when someone deletes them).
func DaemonSetReady(ds *appsv1.DaemonSet) (bool, string) {
	s := ds.Status
	summary := fmt.Sprintf("desired %d: updated %d, ready %d, available %d; observed generation %d of %d",
		s.DesiredNumberScheduled, s.UpdatedNumberScheduled, s.NumberReady, s.NumberAvailable, s.ObservedGeneration, ds.Generation)
	updated := ds.Spec.UpdateStrategy.Type == appsv1.OnDeleteDaemonSetStrategyType || s.UpdatedNumberScheduled == s.DesiredNumberScheduled
	ready := s.ObservedGeneration >= ds.Generation && s.NumberReady == s.DesiredNumberScheduled && updated
	return ready, summary
}

// StatefulSetReady reports whether a StatefulSet finished rolling out, the
// way `kubectl rollout status` judges it: every replica ready and, for
// rolling updates, updated (only those above the partition, if one is set).
func StatefulSetReady(sts *appsv1.StatefulSet) (bool, string) {
	want := int32(1)
	if sts.Spec.Replicas != nil {
		want = *sts.Spec.Replicas
	}
	s := sts.Status
	summary := fmt.Sprintf("replicas %d: updated %d, ready %d, available %d; observed generation %d of %d",
		want, s.UpdatedReplicas, s.ReadyReplicas, s.AvailableReplicas, s.ObservedGeneration, sts.Generation)
	updated := true
	if sts.Spec.UpdateStrategy.Type != appsv1.OnDeleteStatefulSetStrategyType {
		var partition int32
		if ru := sts.Spec.UpdateStrategy.RollingUpdate; ru != nil && ru.Partition != nil {
			partition = *ru.Partition
		}
		if partition > 0 {
			updated = s.UpdatedReplicas >= want-partition
		} else {
			updated = s.UpdatedReplicas == want && s.CurrentRevision == s.UpdateRevision
			if s.CurrentRevision != s.UpdateRevision {
				summary += fmt.Sprintf("; revision %s, updating to %s", s.CurrentRevision, s.UpdateRevision)
			}
		}
	}
	ready := s.ObservedGeneration >= sts.Generation && s.ReadyReplicas == want && updated
	return ready, summary
}

// WaitForRollouts waits until every DaemonSet, Deployment and StatefulSet in
// refs is ready (other kinds are ignored), within RolloutTimeout. The error
// names each workload still not ready with its counts and why, from its pods
// or its events.
func (a *Applier) WaitForRollouts(ctx context.Context, refs []ObjectRef) error {
	items := make([]addonRef, 0, len(refs))
	for _, r := range refs {
		items = append(items, addonRef{Ref: r})
	}
	return a.waitRollouts(ctx, items)
}

// NotReady returns, for every DaemonSet, Deployment and StatefulSet the
// add-ons render, the ones not ready now, with their status summary. A plan
// that finds no object to change still reports these, so a re-run after a
// rollout timed out (or after a node joined) waits again instead of
// reporting success.
func (a *Applier) NotReady(ctx context.Context, addons []AddonSet) []ObjectChange {
	var out []ObjectChange
	for _, set := range addons {
		for _, o := range set.Objects {
			ref := RefOf(o)
			if !isWorkload(ref) {
				continue
			}
			if st := a.workloadStatus(ctx, ref); !st.ready {
				out = append(out, ObjectChange{Addon: set.Name, Ref: ref, Action: ActionWait, Fields: []string{st.summary}})
			}
		}
	}
	return out
}

type workloadState struct {
	ready    bool
	summary  string
	uid      types.UID
	selector *metav1.LabelSelector
}

func (a *Applier) waitRollouts(ctx context.Context, items []addonRef) error {
	var pending []addonRef
	for _, it := range items {
		if isWorkload(it.Ref) {
			pending = append(pending, it)
		}
	}
	if len(pending) == 0 {
		return nil
	}
	start := time.Now()
	deadline := start.Add(a.opts.RolloutTimeout)
	last := map[objectKey]workloadState{}
	for {
		var still []addonRef
		for _, it := range pending {
			st := a.workloadStatus(ctx, it.Ref)
			if st.ready {
				a.opts.Logf("addon=%s ready object=%q %s", it.Addon, it.Ref.String(), st.summary)
				continue
			}
			still = append(still, it)
			last[it.Ref.key()] = st
		}
		pending = still
		if len(pending) == 0 {
			return nil
		}
		if time.Now().After(deadline) || sleepCtx(ctx, a.opts.PollInterval) != nil {
			return a.notReadyError(ctx, pending, last, time.Since(start))
		}
	}
}

func (a *Applier) workloadStatus(ctx context.Context, ref ObjectRef) workloadState {
	apps := a.cs.AppsV1()
	opts := metav1.GetOptions{}
	var st workloadState
	switch ref.Kind {
	case "Deployment":
		d, err := apps.Deployments(ref.Namespace).Get(ctx, ref.Name, opts)
		if err != nil {
			return workloadState{summary: "read: " + err.Error()}
		}
		st.ready, st.summary = DeploymentReady(d)
		st.uid, st.selector = d.UID, d.Spec.Selector
	case "DaemonSet":
		ds, err := apps.DaemonSets(ref.Namespace).Get(ctx, ref.Name, opts)
		if err != nil {
			return workloadState{summary: "read: " + err.Error()}
		}
		st.ready, st.summary = DaemonSetReady(ds)
		st.uid, st.selector = ds.UID, ds.Spec.Selector
	case "StatefulSet":
		sts, err := apps.StatefulSets(ref.Namespace).Get(ctx, ref.Name, opts)
		if err != nil {
			return workloadState{summary: "read: " + err.Error()}
		}
		st.ready, st.summary = StatefulSetReady(sts)
		st.uid, st.selector = sts.UID, sts.Spec.Selector
	}
	return st
}

// notReadyError names every workload still not ready. Its diagnosis gets a
// context of its own: the run's may be what just expired.
func (a *Applier) notReadyError(ctx context.Context, pending []addonRef, last map[objectKey]workloadState, waited time.Duration) error {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	var errs *multierror.Error
	for _, it := range pending {
		st := last[it.Ref.key()]
		msg := st.summary
		if why := a.whyNotReady(dctx, it.Ref, st); why != "" {
			msg += "; " + why
		}
		errs = multierror.Append(errs, fmt.Errorf("%s %w after %s: %s", it, ErrNotReady, roundWait(waited), msg))
	}
	if ctx.Err() != nil {
		errs = multierror.Append(errs, fmt.Errorf("wait for rollouts: %w", ctx.Err()))
	}
	return errs.ErrorOrNil()
}

func roundWait(d time.Duration) time.Duration {
	if d < 10*time.Second {
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Second)
}

// whyNotReady finds what an operator needs to see: the first pod that is
// not ready and why, or, when there are no pods, the latest warning event
// of the workload (for a Deployment, of its ReplicaSets too: FailedCreate
// lands there).
func (a *Applier) whyNotReady(ctx context.Context, ref ObjectRef, st workloadState) string {
	if st.selector == nil {
		return ""
	}
	sel, err := metav1.LabelSelectorAsSelector(st.selector)
	if err != nil {
		return "bad selector: " + err.Error()
	}
	pods, err := a.cs.CoreV1().Pods(ref.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return "list pods: " + err.Error()
	}
	sort.Slice(pods.Items, func(i, j int) bool { return pods.Items[i].Name < pods.Items[j].Name })
	for i := range pods.Items {
		p := &pods.Items[i]
		prob := podProblem(p)
		if prob == "" {
			continue
		}
		if ev := a.lastWarning(ctx, ref.Namespace, "Pod", p.Name, p.UID); ev != "" {
			prob += "; " + ev
		}
		return fmt.Sprintf("pod %s: %s", p.Name, prob)
	}
	if len(pods.Items) > 0 {
		return fmt.Sprintf("%d pods, all ready", len(pods.Items))
	}
	ev := a.lastWarning(ctx, ref.Namespace, ref.Kind, ref.Name, st.uid)
	if ev == "" && ref.Kind == "Deployment" {
		rss, err := a.cs.AppsV1().ReplicaSets(ref.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
		if err == nil {
			sort.Slice(rss.Items, func(i, j int) bool {
				return rss.Items[j].CreationTimestamp.Before(&rss.Items[i].CreationTimestamp)
			})
			for _, rs := range rss.Items {
				if owner := metav1.GetControllerOf(&rs); owner == nil || owner.UID != st.uid {
					continue
				}
				if ev = a.lastWarning(ctx, ref.Namespace, "ReplicaSet", rs.Name, rs.UID); ev != "" {
					ev = "ReplicaSet " + rs.Name + ": " + ev
					break
				}
			}
		}
	}
	if ev != "" {
		return "no pods; " + ev
	}
	return "no pods and no warning events (is kube-controller-manager running?)"
}

// lastWarning is the newest Warning event about one object, "" if none.
func (a *Applier) lastWarning(ctx context.Context, namespace, kind, name string, uid types.UID) string {
	sel := fields.Set{"involvedObject.kind": kind, "involvedObject.name": name, "type": corev1.EventTypeWarning}
	list, err := a.cs.CoreV1().Events(namespace).List(ctx, metav1.ListOptions{FieldSelector: sel.AsSelector().String()})
	if err != nil {
		return ""
	}
	var best *corev1.Event
	var bestAt time.Time
	for i := range list.Items {
		ev := &list.Items[i]
		io := ev.InvolvedObject
		if io.Kind != kind || io.Name != name || ev.Type != corev1.EventTypeWarning || (uid != "" && io.UID != "" && io.UID != uid) {
			continue
		}
		at := eventTime(ev)
		if best == nil || at.After(bestAt) {
			best, bestAt = ev, at
		}
	}
	if best == nil {
		return ""
	}
	return fmt.Sprintf("event %s: %s", best.Reason, truncate(strings.TrimSpace(best.Message), 300))
}

func eventTime(ev *corev1.Event) time.Time {
	switch {
	case !ev.LastTimestamp.IsZero():
		return ev.LastTimestamp.Time
	case !ev.EventTime.IsZero():
		return ev.EventTime.Time
	}
	return ev.CreationTimestamp.Time
}

// podProblem says why a pod is not ready, "" when it is: the first
// container that waits or failed (init containers first, as they run
// first), else why it is not scheduled or which condition fails.
func podProblem(p *corev1.Pod) string {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			return ""
		}
	}
	if p.DeletionTimestamp != nil {
		return "terminating"
	}
	statuses := append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...)
	for _, cs := range statuses {
		if cs.Ready {
			continue
		}
		switch {
		case cs.State.Waiting != nil:
			s := fmt.Sprintf("container %s waiting: %s", cs.Name, reasonMessage(cs.State.Waiting.Reason, cs.State.Waiting.Message))
			if t := cs.LastTerminationState.Terminated; t != nil {
				s += fmt.Sprintf("; last exit code %d: %s", t.ExitCode, reasonMessage(t.Reason, t.Message))
			}
			return s
		case cs.State.Terminated != nil:
			if t := cs.State.Terminated; t.ExitCode != 0 {
				return fmt.Sprintf("container %s terminated with exit code %d: %s", cs.Name, t.ExitCode, reasonMessage(t.Reason, t.Message))
			}
		case cs.State.Running != nil:
			return fmt.Sprintf("container %s running but not ready (restarts %d)", cs.Name, cs.RestartCount)
		}
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
			return "not scheduled: " + reasonMessage(c.Reason, c.Message)
		}
	}
	if p.Spec.NodeName == "" {
		return "not scheduled yet (is kube-scheduler running?)"
	}
	for _, c := range p.Status.Conditions {
		if c.Status == corev1.ConditionFalse && c.Reason != "" {
			return fmt.Sprintf("phase %s, %s: %s", p.Status.Phase, c.Type, reasonMessage(c.Reason, c.Message))
		}
	}
	return fmt.Sprintf("phase %s on node %s", p.Status.Phase, p.Spec.NodeName)
}

func reasonMessage(reason, msg string) string {
	msg = truncate(strings.TrimSpace(msg), 300)
	switch {
	case reason == "":
		return msg
	case msg == "":
		return reason
	}
	return reason + ": " + msg
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
