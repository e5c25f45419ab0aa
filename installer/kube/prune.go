package kube

import (
	"context"
	"fmt"

	"github.com/hashicorp/go-multierror"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// staleRefs are the objects the record lists for addon (recorded) that this
// run no longer renders (applied), minus any object another add-on renders
// now or recorded earlier: ownership moved, and deleting it would break the
// other add-on.
func staleRefs(rec *Record, addon string, recorded, applied []ObjectRef, rendered map[objectKey]string) []ObjectRef {
	keep := map[objectKey]bool{}
	for _, r := range applied {
		keep[r.key()] = true
	}
	for name, ar := range rec.Addons {
		if name == addon {
			continue
		}
		for _, r := range ar.Objects {
			keep[r.key()] = true
		}
	}
	var stale []ObjectRef
	for _, r := range recorded {
		if keep[r.key()] {
			continue
		}
		if other, ok := rendered[r.key()]; ok && other != addon {
			continue
		}
		keep[r.key()] = true // a record listing an object twice prunes it once
		stale = append(stale, r)
	}
	return stale
}

// prune deletes the stale objects (or, dry, reports them), last-applied
// first. It deletes only what still exists and carries the add-on's label, with
// background propagation and the live UID as precondition, so it deletes
// exactly the object it looked at. failed lists objects that could not be
// deleted: they stay in the record for the next run.
func (a *Applier) prune(ctx context.Context, addon string, refs []ObjectRef, dryRun bool) (changes []ObjectChange, failed []ObjectRef, err error) {
	sortRefsForDelete(refs)
	var errs *multierror.Error
	bg := metav1.DeletePropagationBackground
	for _, ref := range refs {
		m, err := a.mapper.RESTMappingWithContext(ctx, ref.GroupKind(), ref.Version)
		if meta.IsNoMatchError(err) {
			m, err = a.mapper.RESTMappingWithContext(ctx, ref.GroupKind())
		}
		if meta.IsNoMatchError(err) {
			a.opts.Logf("addon=%s prune object=%q gone: the API no longer serves its kind", addon, ref.String())
			continue
		}
		if err != nil {
			failed, errs = append(failed, ref), multierror.Append(errs, fmt.Errorf("add-on %s: prune %s: %w", addon, ref, err))
			continue
		}
		ri := a.resource(m, ref.Namespace)
		live, err := ri.Get(ctx, ref.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			failed, errs = append(failed, ref), multierror.Append(errs, fmt.Errorf("add-on %s: prune %s: %w", addon, ref, err))
			continue
		}
		if v := live.GetLabels()[LabelAddon]; v != addon {
			a.opts.Logf("addon=%s prune object=%q skipped: its label %s=%q does not name this add-on (re-created or taken over by someone else?)", addon, ref.String(), LabelAddon, v)
			continue
		}
		changes = append(changes, ObjectChange{Addon: addon, Ref: ref, Action: ActionDelete})
		if dryRun {
			a.opts.Logf("addon=%s would-delete object=%q", addon, ref.String())
			continue
		}
		uid := live.GetUID()
		err = ri.Delete(ctx, ref.Name, metav1.DeleteOptions{PropagationPolicy: &bg, Preconditions: &metav1.Preconditions{UID: &uid}})
		switch {
		case err == nil:
			a.opts.Logf("addon=%s delete object=%q", addon, ref.String())
		case apierrors.IsNotFound(err) || apierrors.IsConflict(err):
			// Gone meanwhile, or replaced by another object of that name.
		default:
			changes = changes[:len(changes)-1]
			failed, errs = append(failed, ref), multierror.Append(errs, fmt.Errorf("add-on %s: prune %s: %w", addon, ref, err))
		}
	}
	return changes, failed, errs.ErrorOrNil()
}
