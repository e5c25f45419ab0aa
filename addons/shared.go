package addons

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"regexp"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// Labels every rendered object carries. The apply engine selects on them to
// prune objects a later render no longer produces.
const (
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedBy      = "kubewright"
	LabelAddon     = "kubewright.io/addon"
)

// decodeManifest turns a vendored YAML stream into objects, in file order.
// A v1 List (weave ships one) is expanded into its items, empty documents are
// skipped, and explicit nulls (`env:` with nothing under it) are dropped: the
// API treats them as absent, and server-side apply is happier without them.
func decodeManifest(name string, data []byte) ([]*unstructured.Unstructured, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var out []*unstructured.Unstructured
	for i := 0; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("vendored manifest %s: document %d: %w", name, i, err)
		}
		js, err := utilyaml.ToJSON(doc)
		if err != nil {
			return nil, fmt.Errorf("vendored manifest %s: document %d: %w", name, i, err)
		}
		if s := strings.TrimSpace(string(js)); s == "null" || s == "" {
			continue
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(js); err != nil {
			return nil, fmt.Errorf("vendored manifest %s: document %d: %w", name, i, err)
		}
		if u.IsList() {
			l, err := u.ToList()
			if err != nil {
				return nil, fmt.Errorf("vendored manifest %s: document %d: %w", name, i, err)
			}
			for j := range l.Items {
				item := l.Items[j]
				pruneNulls(item.Object)
				out = append(out, &item)
			}
			continue
		}
		pruneNulls(u.Object)
		out = append(out, u)
	}
	return out, nil
}

func pruneNulls(v any) {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			if x == nil {
				delete(t, k)
				continue
			}
			pruneNulls(x)
		}
	case []any:
		for _, x := range t {
			pruneNulls(x)
		}
	}
}

// manifestError reports that a vendored manifest no longer has the shape the
// renderer edits: a bug to fix here after an upstream bump, never user input.
func manifestError(addon, format string, args ...any) error {
	return fmt.Errorf("%s: vendored manifest changed: %s", addon, fmt.Sprintf(format, args...))
}

// find returns the object of kind and name, or an error naming what is missing.
func find(addon string, objs []*unstructured.Unstructured, kind, name string) (*unstructured.Unstructured, error) {
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o, nil
		}
	}
	return nil, manifestError(addon, "no %s %s", kind, name)
}

// podSpec returns spec.template.spec of a workload (Deployment, DaemonSet,
// StatefulSet, Job), or a CronJob's job template's.
func podSpec(addon string, o *unstructured.Unstructured) (map[string]any, error) {
	fields := []string{"spec", "template", "spec"}
	if o.GetKind() == "CronJob" {
		fields = []string{"spec", "jobTemplate", "spec", "template", "spec"}
	}
	v, ok, err := unstructured.NestedFieldNoCopy(o.Object, fields...)
	ps, isMap := v.(map[string]any)
	if err != nil || !ok || !isMap {
		return nil, manifestError(addon, "%s %s has no pod template", o.GetKind(), o.GetName())
	}
	return ps, nil
}

// containers returns the live init containers and containers of a pod spec.
func containers(ps map[string]any) []map[string]any {
	var out []map[string]any
	for _, key := range []string{"initContainers", "containers"} {
		list, _ := ps[key].([]any)
		for _, c := range list {
			if m, ok := c.(map[string]any); ok {
				out = append(out, m)
			}
		}
	}
	return out
}

// container returns the (init) container called name.
func container(addon string, o *unstructured.Unstructured, name string) (map[string]any, error) {
	ps, err := podSpec(addon, o)
	if err != nil {
		return nil, err
	}
	for _, c := range containers(ps) {
		if c["name"] == name {
			return c, nil
		}
	}
	return nil, manifestError(addon, "%s %s has no container %s", o.GetKind(), o.GetName(), name)
}

// setEnv sets a container's environment variable to a literal value,
// replacing a valueFrom if there was one, appending it if it was absent.
func setEnv(c map[string]any, name, value string) {
	setEnvVar(c, map[string]any{"name": name, "value": value})
}

// setEnvVar replaces the env entry with v's name in place (keeping the
// manifest's order readable in diffs) or appends it.
func setEnvVar(c map[string]any, v map[string]any) {
	env, _ := c["env"].([]any)
	for i, e := range env {
		if m, ok := e.(map[string]any); ok && m["name"] == v["name"] {
			env[i] = v
			return
		}
	}
	c["env"] = append(env, v)
}

// insertEnvAfter adds v right after the entry called after (or at the end).
func insertEnvAfter(c map[string]any, after string, v map[string]any) {
	env, _ := c["env"].([]any)
	for i, e := range env {
		if m, ok := e.(map[string]any); ok && m["name"] == v["name"] {
			env[i] = v
			return
		}
	}
	for i, e := range env {
		if m, ok := e.(map[string]any); ok && m["name"] == after {
			c["env"] = slices.Insert(env, i+1, any(v))
			return
		}
	}
	c["env"] = append(env, v)
}

// envValue returns the literal value of a container's env entry.
func envValue(c map[string]any, name string) (string, bool) {
	env, _ := c["env"].([]any)
	for _, e := range env {
		if m, ok := e.(map[string]any); ok && m["name"] == name {
			s, ok := m["value"].(string)
			return s, ok
		}
	}
	return "", false
}

// setHostPath points the hostPath volume called vol at path.
func setHostPath(addon string, o *unstructured.Unstructured, vol, path string) error {
	ps, err := podSpec(addon, o)
	if err != nil {
		return err
	}
	vols, _ := ps["volumes"].([]any)
	for _, v := range vols {
		m, ok := v.(map[string]any)
		if !ok || m["name"] != vol {
			continue
		}
		hp, ok := m["hostPath"].(map[string]any)
		if !ok {
			return manifestError(addon, "volume %s of %s %s is not a hostPath", vol, o.GetKind(), o.GetName())
		}
		hp["path"] = path
		return nil
	}
	return manifestError(addon, "%s %s has no volume %s", o.GetKind(), o.GetName(), vol)
}

// stringSlice returns a live []any field of m as strings, for flag edits.
func stringSlice(m map[string]any, key string) []string {
	list, _ := m[key].([]any)
	out := make([]string, 0, len(list))
	for _, x := range list {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

func setStringSlice(m map[string]any, key string, ss []string) {
	list := make([]any, len(ss))
	for i, s := range ss {
		list[i] = s
	}
	m[key] = list
}

// replaceInStrings applies r to every string in the named list field of m
// (a container's args or command). Upstream embeds template variables inside
// flags such as --domain=dns_domain., so the element is the smallest unit.
func replaceInStrings(m map[string]any, key string, r *strings.Replacer) {
	ss := stringSlice(m, key)
	for i := range ss {
		ss[i] = r.Replace(ss[i])
	}
	setStringSlice(m, key, ss)
}

// configMapData returns the live data map of a ConfigMap.
func configMapData(addon string, o *unstructured.Unstructured) (map[string]any, error) {
	d, ok := o.Object["data"].(map[string]any)
	if !ok {
		return nil, manifestError(addon, "ConfigMap %s has no data", o.GetName())
	}
	return d, nil
}

// labelAll adds the kubewright labels to every object's metadata.
func labelAll(addon string, objs []*unstructured.Unstructured) {
	for _, o := range objs {
		l := o.GetLabels()
		if l == nil {
			l = map[string]string{}
		}
		l[LabelManagedBy] = ManagedBy
		l[LabelAddon] = addon
		o.SetLabels(l)
	}
}

// workloadKinds hold a pod template whose containers carry images.
var workloadKinds = []string{"DaemonSet", "Deployment", "StatefulSet", "Job", "CronJob"}

// imageSpec ties one image in a vendored manifest to a component name (the
// key of Params.Images) and the reference kubewright deploys by default.
type imageSpec struct {
	Component string
	Upstream  string // the ref exactly as the vendored manifest writes it
	Default   string // what kubewright deploys when the artifacts have none
}

// setImages replaces every container image: by the artifacts' image for its
// component when there is one (used as is: it is what the bundle imported into
// containerd), else by the default ref with the registry override applied. An
// image the table does not know means the vendored manifest changed.
func setImages(addon string, objs []*unstructured.Unstructured, table []imageSpec, p Params) error {
	for _, o := range objs {
		if !slices.Contains(workloadKinds, o.GetKind()) {
			continue
		}
		ps, err := podSpec(addon, o)
		if err != nil {
			return err
		}
		for _, c := range containers(ps) {
			img, _ := c["image"].(string)
			i := slices.IndexFunc(table, func(s imageSpec) bool { return s.Upstream == img })
			if i < 0 {
				return manifestError(addon, "container %s of %s %s has unknown image %q", c["name"], o.GetKind(), o.GetName(), img)
			}
			ref, err := imageRef(table[i], p)
			if err != nil {
				return err
			}
			c["image"] = ref
		}
	}
	return nil
}

func imageRef(s imageSpec, p Params) (string, error) {
	if ref := p.Images[s.Component]; ref != "" {
		return ref, nil
	}
	return withRegistry(s.Default, p.Registry)
}

// splitRef splits an image reference into registry host and the rest
// (repository path with tag/digest), normalising Docker Hub's implicit forms
// the way containerd does: "busybox" is docker.io/library/busybox and
// "weaveworks/weave-kube" is docker.io/weaveworks/weave-kube.
func splitRef(ref string) (registry, rest string, err error) {
	if ref == "" || strings.ContainsAny(ref, " \t\r\n") || strings.Contains(ref, "://") {
		return "", "", fmt.Errorf("invalid image reference %q", ref)
	}
	first, remainder, found := strings.Cut(ref, "/")
	if found && (strings.ContainsAny(first, ".:") || first == "localhost") {
		if remainder == "" {
			return "", "", fmt.Errorf("invalid image reference %q", ref)
		}
		return first, remainder, nil
	}
	if !found {
		return "docker.io", "library/" + ref, nil
	}
	return "docker.io", ref, nil
}

// withRegistry puts ref's repository under registry (host[:port][/prefix]);
// "" leaves ref as upstream wrote it.
func withRegistry(ref, registry string) (string, error) {
	if registry == "" {
		return ref, nil
	}
	_, rest, err := splitRef(ref)
	if err != nil {
		return "", err
	}
	return strings.TrimSuffix(registry, "/") + "/" + rest, nil
}

// DNSServiceIP returns the ClusterIP of the cluster DNS Service: the tenth
// address of the service CIDR, the convention kubeadm and kubelets' default
// configs share (10.96.0.0/12 -> 10.96.0.10). Like the inventory, it counts
// from the network address, so host bits in the CIDR are ignored.
func DNSServiceIP(serviceCIDR string) (string, error) {
	pf, err := netip.ParsePrefix(strings.TrimSpace(serviceCIDR))
	if err != nil {
		return "", fmt.Errorf("service CIDR %q is not a CIDR such as 10.96.0.0/12", serviceCIDR)
	}
	pf = pf.Masked()
	a := pf.Addr()
	for range 10 {
		a = a.Next()
	}
	if !a.IsValid() || !pf.Contains(a) {
		return "", fmt.Errorf("service CIDR %s is too small to hold the DNS service address (its 10th address)", pf)
	}
	return a.String(), nil
}

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

func isDNSSubdomain(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if len(l) > 63 || !dnsLabel.MatchString(l) {
			return false
		}
	}
	return true
}

// checkResolved fails when a template variable survived rendering anywhere,
// which would mean the vendored template grew a use the renderer misses.
// Tokens in allow are ones the add-on itself fills at run time.
func checkResolved(addon string, objs []*unstructured.Unstructured, vars []string, allow ...string) error {
	for _, o := range objs {
		var left string
		walkStrings(o.Object, func(s string) {
			for _, a := range allow {
				s = strings.ReplaceAll(s, a, "")
			}
			for _, v := range vars {
				if left == "" && strings.Contains(s, v) {
					left = v
				}
			}
		})
		if left != "" {
			return manifestError(addon, "%s %s still contains the template variable %s", o.GetKind(), o.GetName(), left)
		}
	}
	return nil
}

func walkStrings(v any, f func(string)) {
	switch t := v.(type) {
	case string:
		f(t)
	case map[string]any:
		for k, x := range t {
			f(k)
			walkStrings(x, f)
		}
	case []any:
		for _, x := range t {
			walkStrings(x, f)
		}
	}
}
