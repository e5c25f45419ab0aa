package kube

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// The record of applied add-ons lives in the cluster, not on the operator's
// machine: any operator (or a rebuilt laptop) then prunes what an earlier run
// applied, and the record survives as long as the objects it lists.
const (
	RecordNamespace = metav1.NamespaceSystem
	RecordName      = "kubewright-addons"
)

// ErrRecordConflict means the record changed between ReadRecord and
// WriteRecord: another kubewright run is applying add-ons.
var ErrRecordConflict = errors.New("add-ons record changed since it was read")

// Record is what kubewright applied, per add-on name.
type Record struct {
	Addons map[string]AddonRecord
	// resourceVersion of the ConfigMap read; empty when there was none, so
	// WriteRecord creates it. Writes are optimistic: never last-writer-wins.
	resourceVersion string
}

// AddonRecord is one add-on's entry: the objects kubewright applied for it
// (the only ones pruning may delete) and settings the caller keeps with it.
type AddonRecord struct {
	Objects  []ObjectRef       `json:"objects"`
	Settings map[string]string `json:"settings,omitempty"`
}

// Setting returns one recorded setting of an add-on, "" when unset.
func (r *Record) Setting(addon, key string) string {
	if r == nil {
		return ""
	}
	return r.Addons[addon].Settings[key]
}

// ReadRecord reads kube-system/kubewright-addons; a cluster without one has
// an empty record.
func ReadRecord(ctx context.Context, cs kubernetes.Interface) (*Record, error) {
	cm, err := cs.CoreV1().ConfigMaps(RecordNamespace).Get(ctx, RecordName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return &Record{Addons: map[string]AddonRecord{}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read add-ons record %s/%s: %w", RecordNamespace, RecordName, err)
	}
	r := &Record{Addons: map[string]AddonRecord{}, resourceVersion: cm.ResourceVersion}
	for name, v := range cm.Data {
		var ar AddonRecord
		if err := json.Unmarshal([]byte(v), &ar); err != nil {
			return nil, fmt.Errorf("read add-ons record %s/%s: key %s: %w", RecordNamespace, RecordName, name, err)
		}
		r.Addons[name] = ar
	}
	return r, nil
}

// WriteRecord stores r, replacing the whole record. An add-on entry with no
// objects and no settings is dropped. It fails with ErrRecordConflict when
// the record changed since r was read; on success r is current again.
func WriteRecord(ctx context.Context, cs kubernetes.Interface, r *Record) error {
	data, err := r.encode()
	if err != nil {
		return err
	}
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{
			Name: RecordName, Namespace: RecordNamespace, ResourceVersion: r.resourceVersion,
			Labels: map[string]string{"app.kubernetes.io/managed-by": FieldManager},
		},
		Data: data,
	}
	var out *corev1.ConfigMap
	if r.resourceVersion == "" {
		out, err = cs.CoreV1().ConfigMaps(RecordNamespace).Create(ctx, cm, metav1.CreateOptions{FieldManager: FieldManager})
	} else {
		out, err = cs.CoreV1().ConfigMaps(RecordNamespace).Update(ctx, cm, metav1.UpdateOptions{FieldManager: FieldManager})
	}
	if apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("write add-ons record %s/%s: %w: %v", RecordNamespace, RecordName, ErrRecordConflict, err)
	}
	if err != nil {
		return fmt.Errorf("write add-ons record %s/%s: %w", RecordNamespace, RecordName, err)
	}
	r.resourceVersion = out.ResourceVersion
	return nil
}

// encode renders the ConfigMap data: one key per add-on, objects sorted, so
// equal records encode equally and an unchanged record is never rewritten.
func (r *Record) encode() (map[string]string, error) {
	data := map[string]string{}
	for name, ar := range r.Addons {
		if len(ar.Objects) == 0 && len(ar.Settings) == 0 {
			continue
		}
		if !addonNameRe.MatchString(name) {
			return nil, fmt.Errorf("add-ons record: add-on name %q is not a valid ConfigMap key", name)
		}
		objs := slices.Clone(ar.Objects)
		sort.Slice(objs, func(i, j int) bool {
			if objs[i].key() == objs[j].key() {
				return objs[i].Version < objs[j].Version
			}
			return refLess(objs[i], objs[j])
		})
		objs = slices.Compact(objs)
		if objs == nil {
			objs = []ObjectRef{}
		}
		b, err := json.Marshal(AddonRecord{Objects: objs, Settings: ar.Settings})
		if err != nil {
			return nil, fmt.Errorf("add-ons record: encode %s: %w", name, err)
		}
		data[name] = string(b)
	}
	return data, nil
}

// sameEncoding reports whether two records would store the same data.
func sameEncoding(a, b *Record) bool {
	da, errA := a.encode()
	db, errB := b.encode()
	return errA == nil && errB == nil && maps.Equal(da, db)
}

func (r *Record) clone() *Record {
	c := &Record{Addons: make(map[string]AddonRecord, len(r.Addons)), resourceVersion: r.resourceVersion}
	for k, v := range r.Addons {
		c.Addons[k] = AddonRecord{Objects: slices.Clone(v.Objects), Settings: maps.Clone(v.Settings)}
	}
	return c
}
