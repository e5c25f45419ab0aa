package addons

import (
	"embed"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

var (
	//go:embed efk
	efkFS embed.FS
	//go:embed fluent-bit
	fluentBitFS embed.FS
	//go:embed logging
	loggingFS embed.FS
)

// loggingImages: upstream's Elasticsearch and Kibana 7.10.2 (the OSS
// builds the manifests are written for), Fluent Bit's 1.5 line pinned to
// its last release, and curl for the retention job. Upstream pulls them
// Always; kubewright uses IfNotPresent so an offline node starts them.
var loggingImages = []imageSpec{
	{"elasticsearch", "quay.io/fluentd_elasticsearch/elasticsearch:v7.10.2", "quay.io/fluentd_elasticsearch/elasticsearch:v7.10.2"},
	{"alpine", "alpine:3.6", "docker.io/library/alpine:3.6"},
	{"kibana-oss", "docker.elastic.co/kibana/kibana-oss:7.10.2", "docker.elastic.co/kibana/kibana-oss:7.10.2"},
	{"fluent-bit", "fluent/fluent-bit:1.5", "docker.io/fluent/fluent-bit:1.5.7"},
	{"curl", "docker.io/curlimages/curl:8.11.1", "docker.io/curlimages/curl:8.11.1"},
}

const (
	esName       = "elasticsearch-logging"
	loggingNS    = "logging"
	hostLogsConf = "input-hosts.conf"
)

// renderLogging: namespace logging, Elasticsearch (StatefulSet on
// PersistentVolumes, replicas and heap from the inventory), Kibana, Fluent
// Bit on every node (container logs and the inventory's host log
// directories) and the retention CronJob.
func renderLogging(p Params) ([]*unstructured.Unstructured, []string, error) {
	l := p.Logging
	objs, err := decodeFiles(efkFS, "efk", "create-logging-namespace.yaml", "es-statefulset.yaml", "es-service.yaml", "kibana-deployment.yaml", "kibana-service.yaml")
	if err != nil {
		return nil, nil, err
	}
	fb, err := decodeFiles(fluentBitFS, "fluent-bit", "fluent-bit-service-account.yaml", "fluent-bit-role-1.22.yaml", "fluent-bit-role-binding-1.22.yaml", "fluent-bit-configmap.yaml", "fluent-bit-ds.yaml")
	if err != nil {
		return nil, nil, err
	}
	objs = append(objs, fb...)
	ret, err := decodeFiles(loggingFS, "logging", "retention.yaml")
	if err != nil {
		return nil, nil, err
	}
	objs = append(objs, ret...)

	if err := editElasticsearch(objs, l); err != nil {
		return nil, nil, err
	}
	if err := editFluentBit(objs, l); err != nil {
		return nil, nil, err
	}
	cj, err := find(Logging, objs, "CronJob", "elasticsearch-retention")
	if err != nil {
		return nil, nil, err
	}
	c, err := container(Logging, cj, "retention")
	if err != nil {
		return nil, nil, err
	}
	setEnv(c, "RETENTION_DAYS", strconv.Itoa(l.RetentionDays))
	setEnv(c, "INDEX_REPLICAS", strconv.Itoa(min(1, l.ESReplicas-1)))

	for _, o := range objs {
		if slices.Contains(workloadKinds, o.GetKind()) {
			ps, _ := podSpec(Logging, o)
			for _, c := range containers(ps) {
				c["imagePullPolicy"] = "IfNotPresent"
			}
		}
		// The manifests were written for the addon-manager, which kubewright
		// is not: its mode label would invite it to fight over the objects.
		if lb := o.GetLabels(); lb["addonmanager.kubernetes.io/mode"] != "" {
			delete(lb, "addonmanager.kubernetes.io/mode")
			o.SetLabels(lb)
		}
	}
	if err := setImages(Logging, objs, loggingImages, p); err != nil {
		return nil, nil, err
	}
	return objs, nil, nil
}

func editElasticsearch(objs []*unstructured.Unstructured, l LoggingParams) error {
	// Upstream writes roleRef.apiGroup "", which the API defaults to the
	// RBAC group; writing it out keeps the applied and the live object equal.
	crb, err := find(Logging, objs, "ClusterRoleBinding", esName)
	if err != nil {
		return err
	}
	if err := unstructured.SetNestedField(crb.Object, "rbac.authorization.k8s.io", "roleRef", "apiGroup"); err != nil {
		return err
	}
	subjects, _, _ := unstructured.NestedSlice(crb.Object, "subjects")
	for _, s := range subjects {
		delete(s.(map[string]any), "apiGroup")
	}
	if err := unstructured.SetNestedSlice(crb.Object, subjects, "subjects"); err != nil {
		return err
	}

	sts, err := find(Logging, objs, "StatefulSet", esName)
	if err != nil {
		return err
	}
	if err := unstructured.SetNestedField(sts.Object, int64(l.ESReplicas), "spec", "replicas"); err != nil {
		return err
	}
	c, err := container(Logging, sts, esName)
	if err != nil {
		return err
	}
	heap, _ := heapMiB(l.ESHeap)
	if _, ok := envValue(c, "MINIMUM_MASTER_NODES"); !ok {
		return manifestError(Logging, "StatefulSet %s has no MINIMUM_MASTER_NODES", esName)
	}
	setEnv(c, "MINIMUM_MASTER_NODES", strconv.Itoa(l.ESReplicas/2+1))
	setEnv(c, "ES_JAVA_OPTS", fmt.Sprintf("-Xms%[1]s -Xmx%[1]s", l.ESHeap))
	// The heap plus as much again for Lucene's file cache and the JVM.
	mem := fmt.Sprintf("%dMi", 2*heap)
	for _, kind := range []string{"requests", "limits"} {
		if err := unstructured.SetNestedField(c, mem, "resources", kind, "memory"); err != nil {
			return err
		}
	}
	ps, _ := podSpec(Logging, sts)
	vols, _ := ps["volumes"].([]any)
	i := slices.IndexFunc(vols, func(v any) bool { m, _ := v.(map[string]any); return m["name"] == esName && m["emptyDir"] != nil })
	if i < 0 {
		return manifestError(Logging, "StatefulSet %s has no emptyDir volume %s", esName, esName)
	}
	ps["volumes"] = slices.Delete(vols, i, i+1)
	if len(ps["volumes"].([]any)) == 0 {
		delete(ps, "volumes")
	}
	claim := map[string]any{
		"metadata": map[string]any{"name": esName},
		"spec": map[string]any{
			"accessModes":      []any{"ReadWriteOnce"},
			"storageClassName": l.StorageClass,
			"resources":        map[string]any{"requests": map[string]any{"storage": l.ESStorageSize}},
		},
	}
	if err := unstructured.SetNestedSlice(sts.Object, []any{claim}, "spec", "volumeClaimTemplates"); err != nil {
		return err
	}
	// Spread the nodes: two Elasticsearch nodes on one host lose their
	// replicas together.
	sel, _, _ := unstructured.NestedStringMap(sts.Object, "spec", "selector", "matchLabels")
	ps["affinity"] = map[string]any{"podAntiAffinity": map[string]any{
		"preferredDuringSchedulingIgnoredDuringExecution": []any{map[string]any{
			"weight": int64(100),
			"podAffinityTerm": map[string]any{
				"topologyKey":   "kubernetes.io/hostname",
				"labelSelector": map[string]any{"matchLabels": stringMapAny(sel)},
			},
		}},
	}}
	return nil
}

// editFluentBit points Fluent Bit at Elasticsearch, reads containerd's CRI
// log format, and tails the host log directories.
func editFluentBit(objs []*unstructured.Unstructured, l LoggingParams) error {
	cm, err := find(Logging, objs, "ConfigMap", "fluent-bit-config")
	if err != nil {
		return err
	}
	data, err := configMapData(Logging, cm)
	if err != nil {
		return err
	}
	// containerd writes CRI-format lines, not Docker's JSON: upstream's
	// parsers.conf has the cri parser for them.
	in, _ := data["input-kubernetes.conf"].(string)
	if !strings.Contains(in, "Parser            docker") {
		return manifestError(Logging, "input-kubernetes.conf does not use the docker parser")
	}
	data["input-kubernetes.conf"] = strings.Replace(in, "Parser            docker", "Parser            cri", 1)

	ds, err := find(Logging, objs, "DaemonSet", "fluent-bit")
	if err != nil {
		return err
	}
	c, err := container(Logging, ds, "fluent-bit")
	if err != nil {
		return err
	}
	setEnv(c, "FLUENT_ELASTICSEARCH_HOST", esName)
	// Docker's container directory: containerd keeps logs under
	// /var/log/pods, which the /var/log mount already has.
	ps, _ := podSpec(Logging, ds)
	ps["volumes"] = slices.DeleteFunc(ps["volumes"].([]any), func(v any) bool { return v.(map[string]any)["name"] == "varlibdockercontainers" })
	c["volumeMounts"] = slices.DeleteFunc(c["volumeMounts"].([]any), func(v any) bool { return v.(map[string]any)["name"] == "varlibdockercontainers" })

	if len(l.HostLogDirs) == 0 {
		return nil
	}
	var patterns, mounts []string
	for _, d := range l.HostLogDirs {
		ps, mount, err := hostLogSource(d)
		if err != nil {
			return err
		}
		for _, pt := range ps {
			if !slices.Contains(patterns, pt) {
				patterns = append(patterns, pt)
			}
		}
		if !under(mount, "/var/log") && !slices.ContainsFunc(mounts, func(m string) bool { return under(mount, m) }) {
			mounts = slices.DeleteFunc(mounts, func(m string) bool { return under(m, mount) })
			mounts = append(mounts, mount)
		}
	}
	data[hostLogsConf] = fmt.Sprintf(`[INPUT]
    Name              tail
    Tag               host.*
    Path              %s
    Path_Key          path
    DB                /var/log/flb_host.db
    Mem_Buf_Limit     5MB
    Skip_Long_Lines   On
    Refresh_Interval  10
`, strings.Join(patterns, ","))
	main, _ := data["fluent-bit.conf"].(string)
	const anchor = "@INCLUDE input-kubernetes.conf\n"
	if !strings.Contains(main, anchor) {
		return manifestError(Logging, "fluent-bit.conf does not include input-kubernetes.conf")
	}
	data["fluent-bit.conf"] = strings.Replace(main, anchor, anchor+"@INCLUDE "+hostLogsConf+"\n", 1)
	slices.Sort(mounts)
	for i, m := range mounts {
		name := fmt.Sprintf("hostlogs-%d", i)
		// DirectoryOrCreate: a node without the application still runs
		// Fluent Bit (it finds an empty directory).
		ps["volumes"] = append(ps["volumes"].([]any), map[string]any{"name": name, "hostPath": map[string]any{"path": m, "type": "DirectoryOrCreate"}})
		c["volumeMounts"] = append(c["volumeMounts"].([]any), map[string]any{"name": name, "mountPath": m, "readOnly": true})
	}
	return nil
}

// under reports whether p is dir or inside it.
func under(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/") || dir == "/"
}
