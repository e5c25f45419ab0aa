package kube

import (
	"fmt"
	"regexp"
	"sort"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// AddonSet is one add-on as the renderer produced it: a name (also its key in
// the applied-objects record) and the objects to apply. Settings, when not
// nil, replace the add-on's recorded settings once the apply succeeded (for
// example the network plugin, so a later run can refuse to switch it).
type AddonSet struct {
	Name     string
	Objects  []*unstructured.Unstructured
	Settings map[string]string
}

// ObjectRef names one object the way the record stores it.
type ObjectRef struct {
	Group     string `json:"group,omitempty"`
	Version   string `json:"version"`
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
}

// RefOf returns the reference of an object as written (namespace included
// even when the kind turns out to be cluster-scoped).
func RefOf(u *unstructured.Unstructured) ObjectRef {
	gvk := u.GroupVersionKind()
	return ObjectRef{Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind, Namespace: u.GetNamespace(), Name: u.GetName()}
}

// String is "Kind namespace/name" or "Kind name", how operators name objects.
func (r ObjectRef) String() string {
	if r.Namespace == "" {
		return r.Kind + " " + r.Name
	}
	return r.Kind + " " + r.Namespace + "/" + r.Name
}

// GroupKind of the reference.
func (r ObjectRef) GroupKind() schema.GroupKind {
	return schema.GroupKind{Group: r.Group, Kind: r.Kind}
}

// GroupVersionKind of the reference.
func (r ObjectRef) GroupVersionKind() schema.GroupVersionKind {
	return schema.GroupVersionKind{Group: r.Group, Version: r.Version, Kind: r.Kind}
}

// objectKey identifies an object regardless of the API version it was written
// in: moving a manifest from v1beta1 to v1 is the same object, not a prune.
type objectKey struct{ Group, Kind, Namespace, Name string }

func (r ObjectRef) key() objectKey { return objectKey{r.Group, r.Kind, r.Namespace, r.Name} }

// Apply ranks. Namespaces and CRDs go first (phase one) because everything
// else may live in them or be one of them. Cluster-wide prerequisites come
// next because the API admits a pod only if its PriorityClass exists. Webhook
// configurations and APIServices go last: registered before the Service and
// Deployment behind them, a failing webhook would block the rest of the apply.
const (
	rankNamespace = iota
	rankCRD
	rankClusterPrereq
	rankRBAC
	rankServiceAccount
	rankConfig
	rankService
	rankWorkload
	rankOther
	rankWebhook
)

type kindOrder struct{ rank, sub int }

const (
	rbacGroup  = "rbac.authorization.k8s.io"
	appsGroup  = "apps"
	batchGroup = "batch"
)

// kindOrders is read-only after init; the order is data, not configuration.
var kindOrders = map[schema.GroupKind]kindOrder{
	{Group: "", Kind: "Namespace"}:                                                    {rankNamespace, 0},
	{Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition"}:                 {rankCRD, 0},
	{Group: "scheduling.k8s.io", Kind: "PriorityClass"}:                               {rankClusterPrereq, 0},
	{Group: "storage.k8s.io", Kind: "StorageClass"}:                                   {rankClusterPrereq, 1},
	{Group: "storage.k8s.io", Kind: "CSIDriver"}:                                      {rankClusterPrereq, 2},
	{Group: "node.k8s.io", Kind: "RuntimeClass"}:                                      {rankClusterPrereq, 3},
	{Group: "", Kind: "ResourceQuota"}:                                                {rankClusterPrereq, 4},
	{Group: "", Kind: "LimitRange"}:                                                   {rankClusterPrereq, 5},
	{Group: rbacGroup, Kind: "ClusterRole"}:                                           {rankRBAC, 0},
	{Group: rbacGroup, Kind: "ClusterRoleBinding"}:                                    {rankRBAC, 1},
	{Group: rbacGroup, Kind: "Role"}:                                                  {rankRBAC, 2},
	{Group: rbacGroup, Kind: "RoleBinding"}:                                           {rankRBAC, 3},
	{Group: "", Kind: "ServiceAccount"}:                                               {rankServiceAccount, 0},
	{Group: "", Kind: "Secret"}:                                                       {rankConfig, 0},
	{Group: "", Kind: "ConfigMap"}:                                                    {rankConfig, 1},
	{Group: "", Kind: "PersistentVolume"}:                                             {rankConfig, 2},
	{Group: "", Kind: "PersistentVolumeClaim"}:                                        {rankConfig, 3},
	{Group: "", Kind: "Service"}:                                                      {rankService, 0},
	{Group: appsGroup, Kind: "DaemonSet"}:                                             {rankWorkload, 0},
	{Group: appsGroup, Kind: "Deployment"}:                                            {rankWorkload, 1},
	{Group: appsGroup, Kind: "StatefulSet"}:                                           {rankWorkload, 2},
	{Group: appsGroup, Kind: "ReplicaSet"}:                                            {rankWorkload, 3},
	{Group: "", Kind: "ReplicationController"}:                                        {rankWorkload, 4},
	{Group: "", Kind: "Pod"}:                                                          {rankWorkload, 5},
	{Group: batchGroup, Kind: "Job"}:                                                  {rankWorkload, 6},
	{Group: batchGroup, Kind: "CronJob"}:                                              {rankWorkload, 7},
	{Group: "admissionregistration.k8s.io", Kind: "ValidatingAdmissionPolicy"}:        {rankWebhook, 0},
	{Group: "admissionregistration.k8s.io", Kind: "ValidatingAdmissionPolicyBinding"}: {rankWebhook, 1},
	{Group: "admissionregistration.k8s.io", Kind: "MutatingWebhookConfiguration"}:     {rankWebhook, 2},
	{Group: "admissionregistration.k8s.io", Kind: "ValidatingWebhookConfiguration"}:   {rankWebhook, 3},
	{Group: "apiregistration.k8s.io", Kind: "APIService"}:                             {rankWebhook, 4},
}

func orderOf(gk schema.GroupKind) kindOrder {
	if o, ok := kindOrders[gk]; ok {
		return o
	}
	return kindOrder{rankOther, 0}
}

func isPhaseOne(gk schema.GroupKind) bool { return orderOf(gk).rank <= rankCRD }

func isCRD(gk schema.GroupKind) bool {
	return gk == schema.GroupKind{Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition"}
}

// refLess is the apply order: rank, then the kind's place in its rank, then
// names, so the order never depends on how the renderer listed objects.
func refLess(a, b ObjectRef) bool {
	oa, ob := orderOf(a.GroupKind()), orderOf(b.GroupKind())
	switch {
	case oa.rank != ob.rank:
		return oa.rank < ob.rank
	case oa.sub != ob.sub:
		return oa.sub < ob.sub
	case a.Group != b.Group:
		return a.Group < b.Group
	case a.Kind != b.Kind:
		return a.Kind < b.Kind
	case a.Namespace != b.Namespace:
		return a.Namespace < b.Namespace
	}
	return a.Name < b.Name
}

// sortForApply orders objects for applying (stable, total).
func sortForApply(objs []*unstructured.Unstructured) {
	sort.SliceStable(objs, func(i, j int) bool { return refLess(RefOf(objs[i]), RefOf(objs[j])) })
}

// sortRefsForDelete orders references for pruning: the reverse of applying,
// so workloads go before their RBAC and custom resources before their CRDs.
func sortRefsForDelete(refs []ObjectRef) {
	sort.SliceStable(refs, func(i, j int) bool { return refLess(refs[j], refs[i]) })
}

// addonNameRe is a label value (objects carry LabelAddon), which is also a
// valid ConfigMap data key (the record is keyed by add-on name).
var addonNameRe = regexp.MustCompile(`^[a-zA-Z0-9]([-_.a-zA-Z0-9]{0,61}[a-zA-Z0-9])?$`)

// validateAddons checks what the API would otherwise reject late or what
// would make pruning ambiguous: names, required fields, an object rendered
// twice (in one add-on or in two, which would make them fight over it).
func validateAddons(addons []AddonSet) error {
	seenAddon := map[string]bool{}
	owner := map[objectKey]string{}
	for _, a := range addons {
		if !addonNameRe.MatchString(a.Name) {
			return fmt.Errorf("add-on name %q: must be a label value: 1-63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit", a.Name)
		}
		if seenAddon[a.Name] {
			return fmt.Errorf("add-on %s is listed twice", a.Name)
		}
		seenAddon[a.Name] = true
		for i, o := range a.Objects {
			if o == nil {
				return fmt.Errorf("add-on %s: object %d is nil", a.Name, i)
			}
			r := RefOf(o)
			if r.Version == "" || r.Kind == "" || r.Name == "" {
				return fmt.Errorf("add-on %s: object %d (%s) needs apiVersion, kind and metadata.name", a.Name, i, r)
			}
			if prev, ok := owner[r.key()]; ok {
				if prev == a.Name {
					return fmt.Errorf("add-on %s renders %s twice", a.Name, r)
				}
				return fmt.Errorf("%s is rendered by add-ons %s and %s", r, prev, a.Name)
			}
			owner[r.key()] = a.Name
		}
	}
	return nil
}
