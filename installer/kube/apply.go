package kube

// The add-ons apply engine. Why it works the way it does:
//
//   - Server-side apply, conflicts forced, field manager "kubewright": the
//     API server merges and defaults, so an unchanged object is a no-op write
//     (same resourceVersion) and a re-run costs one GET and one PATCH per
//     object; forcing makes kubewright the owner of every field it renders.
//   - Plan is the same code path with dryRun=All: the server's answer is
//     compared with the live object (bookkeeping and status ignored), so the
//     plan is what the server would really do, defaults and webhooks included.
//   - The record (record.go) lists what was applied per add-on. It is written
//     before applying (old ∪ new, so a crash leaves nothing unlisted) and
//     after a clean apply and prune (exactly what is applied now). Pruning
//     deletes only recorded objects that still carry the add-on's label.

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/go-multierror"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
)

// ApplyOptions tune an Applier. Zero values take the defaults noted.
type ApplyOptions struct {
	// CRDTimeout bounds the wait for an add-on's CRDs to be Established and
	// served by discovery [1m].
	CRDTimeout time.Duration
	// RolloutTimeout bounds the wait for DaemonSets, Deployments and
	// StatefulSets to be ready after an apply [5m].
	RolloutTimeout time.Duration
	// PollInterval is the time between readiness checks [1s].
	PollInterval time.Duration
	// SkipRolloutWait makes Apply return once objects are applied and pruned.
	SkipRolloutWait bool
	// Logf receives one line per event (object created/updated/pruned, CRD
	// established, workload ready, API warnings); nil discards them.
	Logf func(format string, args ...any)
}

func (o ApplyOptions) withDefaults() ApplyOptions {
	if o.CRDTimeout <= 0 {
		o.CRDTimeout = time.Minute
	}
	if o.RolloutTimeout <= 0 {
		o.RolloutTimeout = 5 * time.Minute
	}
	if o.PollInterval <= 0 {
		o.PollInterval = time.Second
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	return o
}

// Action is what applying did, or would do, to one object.
type Action string

const (
	ActionNone   Action = ""
	ActionCreate Action = "create"
	ActionUpdate Action = "update"
	ActionDelete Action = "delete"
	// ActionWait is a workload applied earlier that is not ready yet: Apply
	// changes nothing about it but waits for its rollout.
	ActionWait Action = "wait"
)

// ObjectChange is the outcome for one object: rendered objects in apply
// order, then pruned ones. Fields names what an update changes.
type ObjectChange struct {
	Addon  string
	Ref    ObjectRef
	Action Action
	Fields []string
}

func (c ObjectChange) String() string {
	act := string(c.Action)
	if act == "" {
		act = "unchanged"
	}
	s := act + " " + c.Ref.String()
	if len(c.Fields) > 0 {
		s += " (" + strings.Join(c.Fields, ", ") + ")"
	}
	return s
}

// Result lists every object an Apply or Plan looked at.
type Result struct {
	Objects []ObjectChange
}

// Changed returns only the objects that were (or would be) created,
// updated or deleted: an empty slice is "no change".
func (r *Result) Changed() []ObjectChange {
	var out []ObjectChange
	for _, c := range r.Objects {
		if c.Action != ActionNone {
			out = append(out, c)
		}
	}
	return out
}

// Applier applies add-ons with server-side apply (field manager
// "kubewright", conflicts forced: kubewright owns what it renders).
type Applier struct {
	cs     kubernetes.Interface
	dyn    dynamic.Interface
	mapper *restmapper.DeferredDiscoveryRESTMapper
	opts   ApplyOptions
}

// NewApplier builds an Applier from a REST config. A config with client-side
// rate limits left at zero gets 50 QPS / burst 100 instead of client-go's
// 5/10, which alone would make a re-apply of a few dozen objects take seconds.
func NewApplier(cfg *rest.Config, opts ApplyOptions) (*Applier, error) {
	opts = opts.withDefaults()
	c := rest.CopyConfig(cfg)
	if c.QPS == 0 {
		c.QPS = 50
	}
	if c.Burst == 0 {
		c.Burst = 100
	}
	logf := opts.Logf
	c.WarningHandler = warningLogger{logf: logf}
	hc, err := rest.HTTPClientFor(c)
	if err != nil {
		return nil, fmt.Errorf("build HTTP client for %s: %w", c.Host, err)
	}
	cs, err := kubernetes.NewForConfigAndClient(c, hc)
	if err != nil {
		return nil, fmt.Errorf("build clientset for %s: %w", c.Host, err)
	}
	dyn, err := dynamic.NewForConfigAndClient(c, hc)
	if err != nil {
		return nil, fmt.Errorf("build dynamic client for %s: %w", c.Host, err)
	}
	dc, err := discovery.NewDiscoveryClientForConfigAndClient(c, hc)
	if err != nil {
		return nil, fmt.Errorf("build discovery client for %s: %w", c.Host, err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapperWithContext(memory.NewMemCacheClientWithContext(dc))
	return &Applier{cs: cs, dyn: dyn, mapper: mapper, opts: opts}, nil
}

// warningLogger passes API warnings (deprecated APIs, unknown fields) to the
// progress log instead of client-go's default stderr printer.
type warningLogger struct{ logf func(string, ...any) }

func (w warningLogger) HandleWarningHeader(code int, agent, text string) {
	if code == 299 && text != "" {
		w.logf("api warning: %s", text)
	}
}

// Clientset is the typed client the Applier uses, e.g. for ReadRecord.
func (a *Applier) Clientset() kubernetes.Interface { return a.cs }

// Apply applies the add-ons in the order given. Per add-on: Namespaces and
// CRDs first, then (once the CRDs are Established and the REST mapper has
// rediscovered) everything else in apply order; then objects the record
// lists for the add-on that it no longer renders are deleted. Object errors
// of one add-on are collected; a failed add-on stops the run before the next
// one (later add-ons usually need earlier ones, DNS needs the network) and
// skips its prune. Unless SkipRolloutWait, Apply then waits for every
// DaemonSet, Deployment and StatefulSet applied to be ready.
func (a *Applier) Apply(ctx context.Context, addons []AddonSet) (*Result, error) {
	return a.run(ctx, addons, false)
}

// Plan reports what Apply would do, object by object, without changing the
// cluster: each object is applied with dryRun=All and the server's answer
// compared with the live object; recorded objects no longer rendered are
// reported as deletes.
func (a *Applier) Plan(ctx context.Context, addons []AddonSet) (*Result, error) {
	return a.run(ctx, addons, true)
}

func (a *Applier) run(ctx context.Context, addons []AddonSet, dryRun bool) (*Result, error) {
	if err := validateAddons(addons); err != nil {
		return nil, err
	}
	rec, err := ReadRecord(ctx, a.cs)
	if err != nil {
		return nil, err
	}
	// Objects another add-on renders now or recorded earlier are never
	// pruned here: ownership moved, and deleting would break the other one.
	rendered := map[objectKey]string{}
	for _, set := range addons {
		for _, o := range set.Objects {
			rendered[RefOf(o).key()] = set.Name
		}
	}
	res := &Result{}
	var workloads []addonRef
	for _, set := range addons {
		start := time.Now()
		changes, wl, err := a.applyAddon(ctx, rec, set, rendered, dryRun)
		res.Objects = append(res.Objects, changes...)
		workloads = append(workloads, wl...)
		if err != nil {
			return res, err
		}
		a.logSummary(set.Name, changes, dryRun, time.Since(start))
	}
	if dryRun || a.opts.SkipRolloutWait {
		return res, nil
	}
	return res, a.waitRollouts(ctx, workloads)
}

func (a *Applier) logSummary(addon string, changes []ObjectChange, dryRun bool, took time.Duration) {
	n := map[Action]int{}
	for _, c := range changes {
		n[c.Action]++
	}
	verb := "applied"
	if dryRun {
		verb = "planned"
	}
	a.opts.Logf("addon=%s %s objects=%d create=%d update=%d unchanged=%d delete=%d took=%s",
		addon, verb, len(changes)-n[ActionDelete], n[ActionCreate], n[ActionUpdate], n[ActionNone], n[ActionDelete], took.Round(time.Millisecond))
}

// addonRef is an object with the add-on it belongs to, for messages.
type addonRef struct {
	Addon string
	Ref   ObjectRef
}

func (r addonRef) String() string {
	if r.Addon == "" {
		return r.Ref.String()
	}
	return "add-on " + r.Addon + ": " + r.Ref.String()
}

func (a *Applier) applyAddon(ctx context.Context, rec *Record, set AddonSet, rendered map[objectKey]string, dryRun bool) ([]ObjectChange, []addonRef, error) {
	objs := make([]*unstructured.Unstructured, 0, len(set.Objects))
	var errs *multierror.Error
	for _, o := range set.Objects {
		p, err := prepareForApply(o, set.Name)
		if err != nil {
			errs = multierror.Append(errs, err)
			continue
		}
		objs = append(objs, p)
	}
	if err := errs.ErrorOrNil(); err != nil {
		return nil, nil, err
	}
	sortForApply(objs)

	// Kinds this add-on's own CRDs define: their scope comes from the CRD
	// when the API does not serve them yet, and their mapping is waited for.
	crdScopes := map[schema.GroupKind]bool{}
	for _, o := range objs {
		if isCRD(o.GroupVersionKind().GroupKind()) {
			group, _, _ := unstructured.NestedString(o.Object, "spec", "group")
			kind, _, _ := unstructured.NestedString(o.Object, "spec", "names", "kind")
			scope, _, _ := unstructured.NestedString(o.Object, "spec", "scope")
			crdScopes[schema.GroupKind{Group: group, Kind: kind}] = scope == "Namespaced"
		}
	}

	// Resolve every object's scope before touching the cluster, so the record
	// holds exact references and a wrong kind or missing namespace fails the
	// add-on before anything of it is applied.
	newRefs := make([]ObjectRef, 0, len(objs))
	for _, o := range objs {
		ref := RefOf(o)
		namespaced, err := a.namespaced(ctx, ref.GroupVersionKind(), crdScopes)
		if err != nil {
			errs = multierror.Append(errs, fmt.Errorf("add-on %s: %s: %w", set.Name, ref, err))
			continue
		}
		switch {
		case !namespaced:
			o.SetNamespace("")
		case o.GetNamespace() == "":
			errs = multierror.Append(errs, fmt.Errorf("add-on %s: %s: namespaced kind without metadata.namespace", set.Name, ref))
			continue
		}
		newRefs = append(newRefs, RefOf(o))
	}
	if err := errs.ErrorOrNil(); err != nil {
		return nil, nil, err
	}

	old := rec.Addons[set.Name]
	if !dryRun {
		// Record what is about to be applied before applying it: a run that
		// dies half-way still leaves every object it may have created listed,
		// so a later run can prune it.
		union := rec.clone()
		ar := union.Addons[set.Name]
		ar.Objects = append(ar.Objects, newRefs...)
		union.Addons[set.Name] = ar
		if err := a.writeRecordIfChanged(ctx, rec, union); err != nil {
			return nil, nil, fmt.Errorf("add-on %s: %w", set.Name, err)
		}
	}

	var changes []ObjectChange
	var workloads []addonRef
	newNamespaces := map[string]bool{}
	var crdNames []string
	crdChanged := false

	// Phase one: Namespaces and CRDs.
	for _, o := range objs {
		gk := o.GroupVersionKind().GroupKind()
		if !isPhaseOne(gk) {
			continue
		}
		m, err := a.mapper.RESTMappingWithContext(ctx, gk, o.GroupVersionKind().Version)
		if err != nil {
			errs = multierror.Append(errs, fmt.Errorf("add-on %s: %s: %w", set.Name, RefOf(o), err))
			continue
		}
		c, err := a.applyObject(ctx, set.Name, o, m, dryRun, nil)
		if err != nil {
			errs = multierror.Append(errs, err)
			continue
		}
		changes = append(changes, c)
		if isCRD(gk) {
			crdNames = append(crdNames, o.GetName())
			crdChanged = crdChanged || c.Action != ActionNone
		} else if c.Action == ActionCreate {
			newNamespaces[o.GetName()] = true
		}
	}
	if err := errs.ErrorOrNil(); err != nil {
		return changes, nil, err
	}
	if !dryRun && len(crdNames) > 0 {
		if err := a.waitCRDsEstablished(ctx, set.Name, crdNames); err != nil {
			return changes, nil, err
		}
		if crdChanged {
			a.mapper.ResetWithContext(ctx)
		}
	}

	// Phase two: everything else.
	for _, o := range objs {
		gvk := o.GroupVersionKind()
		if isPhaseOne(gvk.GroupKind()) {
			continue
		}
		_, fromCRD := crdScopes[gvk.GroupKind()]
		m, err := a.mappingFor(ctx, gvk, fromCRD && !dryRun)
		if err != nil {
			if dryRun && fromCRD && meta.IsNoMatchError(err) {
				// Its CRD is part of this plan: the kind exists once applied.
				changes = append(changes, ObjectChange{Addon: set.Name, Ref: RefOf(o), Action: ActionCreate})
				continue
			}
			errs = multierror.Append(errs, fmt.Errorf("add-on %s: %s: %w", set.Name, RefOf(o), err))
			continue
		}
		c, err := a.applyObject(ctx, set.Name, o, m, dryRun, newNamespaces)
		if err != nil {
			errs = multierror.Append(errs, err)
			continue
		}
		changes = append(changes, c)
		if isWorkload(c.Ref) {
			workloads = append(workloads, addonRef{Addon: set.Name, Ref: c.Ref})
		}
	}
	if err := errs.ErrorOrNil(); err != nil {
		a.opts.Logf("addon=%s prune skipped: apply failed", set.Name)
		return changes, workloads, err
	}

	pruned, failed, err := a.prune(ctx, set.Name, staleRefs(rec, set.Name, old.Objects, newRefs, rendered), dryRun)
	changes = append(changes, pruned...)
	if dryRun {
		return changes, workloads, err
	}
	final := rec.clone()
	ar := AddonRecord{Objects: append(newRefs, failed...), Settings: old.Settings}
	if set.Settings != nil {
		ar.Settings = set.Settings
	}
	final.Addons[set.Name] = ar
	if werr := a.writeRecordIfChanged(ctx, rec, final); werr != nil {
		err = multierror.Append(err, fmt.Errorf("add-on %s: %w", set.Name, werr)).ErrorOrNil()
	}
	return changes, workloads, err
}

// writeRecordIfChanged writes next when it differs from cur and then makes
// cur equal to it; an unchanged record costs no request.
func (a *Applier) writeRecordIfChanged(ctx context.Context, cur, next *Record) error {
	if sameEncoding(cur, next) {
		return nil
	}
	if err := WriteRecord(ctx, a.cs, next); err != nil {
		return err
	}
	*cur = *next.clone()
	return nil
}

// LabelAddon names the add-on an object belongs to. Apply sets it on every
// object; prune deletes a recorded object only while it still carries it with
// the add-on's name, so an object someone else re-created under that name, or
// that moved to another add-on, is never deleted. It also keeps every applied
// object's field set non-empty: the API drops empty managedFields entries,
// and an object without kubewright's entry would not re-apply as a no-op.
const LabelAddon = "kubewright.io/addon"

// prepareForApply copies o without the fields an apply request must not
// carry (server bookkeeping, status), so rendered objects read back from a
// cluster apply as cleanly as fresh ones, and labels it with its add-on.
func prepareForApply(o *unstructured.Unstructured, addon string) (*unstructured.Unstructured, error) {
	c := o.DeepCopy()
	for _, f := range []string{"managedFields", "resourceVersion", "uid", "generation", "creationTimestamp", "selfLink"} {
		unstructured.RemoveNestedField(c.Object, "metadata", f)
	}
	delete(c.Object, "status")
	labels := c.GetLabels()
	if v, ok := labels[LabelAddon]; ok && v != addon {
		return nil, fmt.Errorf("add-on %s: %s: label %s=%q names another add-on", addon, RefOf(o), LabelAddon, v)
	}
	if labels == nil {
		labels = map[string]string{}
	}
	labels[LabelAddon] = addon
	c.SetLabels(labels)
	return c, nil
}

// namespaced reports whether gvk is a namespaced kind: from discovery, or,
// for a kind the API does not serve yet, from this add-on's CRD for it.
func (a *Applier) namespaced(ctx context.Context, gvk schema.GroupVersionKind, crdScopes map[schema.GroupKind]bool) (bool, error) {
	m, err := a.mapper.RESTMappingWithContext(ctx, gvk.GroupKind(), gvk.Version)
	if err == nil {
		return m.Scope.Name() == meta.RESTScopeNameNamespace, nil
	}
	if meta.IsNoMatchError(err) {
		if ns, ok := crdScopes[gvk.GroupKind()]; ok {
			return ns, nil
		}
		return false, fmt.Errorf("the API serves no kind %s in %s and the add-on has no CRD for it", gvk.Kind, gvk.GroupVersion())
	}
	return false, fmt.Errorf("discover kind %s: %w", gvk, err)
}

// mappingFor resolves gvk; for a kind of a CRD just applied it rediscovers
// until the API serves it (Established and discovery can lag each other).
func (a *Applier) mappingFor(ctx context.Context, gvk schema.GroupVersionKind, waitForCRD bool) (*meta.RESTMapping, error) {
	deadline := time.Now().Add(a.opts.CRDTimeout)
	for {
		m, err := a.mapper.RESTMappingWithContext(ctx, gvk.GroupKind(), gvk.Version)
		if err == nil || !waitForCRD || !meta.IsNoMatchError(err) || time.Now().After(deadline) {
			return m, err
		}
		if err := sleepCtx(ctx, a.opts.PollInterval); err != nil {
			return nil, err
		}
		a.mapper.ResetWithContext(ctx)
	}
}

func (a *Applier) resource(m *meta.RESTMapping, namespace string) dynamic.ResourceInterface {
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		return a.dyn.Resource(m.Resource).Namespace(namespace)
	}
	return a.dyn.Resource(m.Resource)
}

// applyObject server-side-applies o (or dry-runs it) and compares the
// server's answer with the live object. newNamespaces are namespaces this
// plan creates: a dry run of an object in one cannot succeed yet.
func (a *Applier) applyObject(ctx context.Context, addon string, o *unstructured.Unstructured, m *meta.RESTMapping, dryRun bool, newNamespaces map[string]bool) (ObjectChange, error) {
	ref := RefOf(o)
	c := ObjectChange{Addon: addon, Ref: ref}
	ri := a.resource(m, o.GetNamespace())
	live, err := ri.Get(ctx, o.GetName(), metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		live = nil
	case err != nil:
		return c, fmt.Errorf("add-on %s: read %s: %w", addon, ref, err)
	}
	opts := metav1.ApplyOptions{FieldManager: FieldManager, Force: true}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	out, err := ri.Apply(ctx, o.GetName(), o, opts)
	if err != nil {
		if dryRun && live == nil && apierrors.IsNotFound(err) && newNamespaces[o.GetNamespace()] {
			c.Action = ActionCreate
			return c, nil
		}
		return c, fmt.Errorf("add-on %s: apply %s: %w", addon, ref, err)
	}
	switch {
	case live == nil:
		c.Action = ActionCreate
	case !dryRun && out.GetResourceVersion() == live.GetResourceVersion():
		// The server skipped the write: nothing changed.
	default:
		c.Fields = changedFields(live, out)
		if len(c.Fields) > 0 {
			c.Action = ActionUpdate
		} else if !dryRun {
			// Written, but only field ownership moved (e.g. kubewright took
			// over fields another manager set to the same values).
			c.Action, c.Fields = ActionUpdate, []string{"metadata.managedFields"}
		}
	}
	if c.Action != ActionNone {
		verb := string(c.Action)
		if dryRun {
			verb = "would-" + verb
		}
		if len(c.Fields) > 0 {
			a.opts.Logf("addon=%s %s object=%q fields=%s", addon, verb, ref.String(), strings.Join(c.Fields, ","))
		} else {
			a.opts.Logf("addon=%s %s object=%q", addon, verb, ref.String())
		}
	}
	return c, nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
