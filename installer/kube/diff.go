package kube

import (
	"reflect"
	"sort"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// ignoredMetadata is bookkeeping the API server changes on every write (or
// that an apply cannot change), so it says nothing about whether the object
// kubewright wants differs from the live one.
func ignoredMetadata(field string) bool {
	switch field {
	case "managedFields", "resourceVersion", "generation", "creationTimestamp", "deletionTimestamp", "uid", "selfLink":
		return true
	}
	return false
}

// changedFields names what differs between the live object and what the
// server made of the apply (a dry run or the real one): top-level fields
// ("spec", "data", "rules") and, for metadata, its fields ("metadata.labels").
// Status is left out: applying the main resource never changes it, and it
// moves on its own. The result is sorted; empty means no change.
func changedFields(live, applied *unstructured.Unstructured) []string {
	var out []string
	a, b := live.Object, applied.Object
	for _, k := range unionKeys(a, b) {
		switch k {
		case "status":
			continue
		case "metadata":
			am, _ := a[k].(map[string]any)
			bm, _ := b[k].(map[string]any)
			for _, mk := range unionKeys(am, bm) {
				if ignoredMetadata(mk) {
					continue
				}
				if !reflect.DeepEqual(am[mk], bm[mk]) {
					out = append(out, "metadata."+mk)
				}
			}
		default:
			if !reflect.DeepEqual(a[k], b[k]) {
				out = append(out, k)
			}
		}
	}
	return out
}

func unionKeys(a, b map[string]any) []string {
	seen := make(map[string]bool, len(a)+len(b))
	var keys []string
	for _, m := range []map[string]any{a, b} {
		for k := range m {
			if !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
	}
	sort.Strings(keys)
	return keys
}
