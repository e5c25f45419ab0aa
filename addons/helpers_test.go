package addons

import (
	"bytes"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// base is a flannel + CoreDNS cluster on the inventory's defaults.
func base() Params {
	return Params{
		Plugin:        Flannel,
		PodCIDR:       "10.244.0.0/16",
		ServiceCIDR:   "10.96.0.0/12",
		Encapsulation: "vxlan",
		MTU:           1450,
		DNSProvider:   CoreDNS,
		ClusterDomain: "cluster.local",
		CNIBinDir:     "/usr/lib/cni",
	}
}

func with(p Params, f func(*Params)) Params {
	f(&p)
	return p
}

func mustRender(t *testing.T, p Params) []Addon {
	t.Helper()
	addons, err := Render(p)
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	return addons
}

func addon(t *testing.T, addons []Addon, name string) Addon {
	t.Helper()
	for _, a := range addons {
		if a.Name == name {
			return a
		}
	}
	t.Fatalf("no add-on %s in %v", name, names(addons))
	return Addon{}
}

func names(addons []Addon) []string {
	var out []string
	for _, a := range addons {
		out = append(out, a.Name)
	}
	return out
}

func object(t *testing.T, a Addon, kind, name string) *unstructured.Unstructured {
	t.Helper()
	o, err := find(a.Name, a.Objects, kind, name)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func str(t *testing.T, o *unstructured.Unstructured, fields ...string) string {
	t.Helper()
	s, ok, err := unstructured.NestedString(o.Object, fields...)
	if err != nil || !ok {
		t.Fatalf("%s %s: no string at %s (%v)", o.GetKind(), o.GetName(), strings.Join(fields, "."), err)
	}
	return s
}

func ctr(t *testing.T, o *unstructured.Unstructured, name string) map[string]any {
	t.Helper()
	c, err := container("test", o, name)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// env returns a container's env entry by name (nil when absent).
func env(c map[string]any, name string) map[string]any {
	list, _ := c["env"].([]any)
	for _, e := range list {
		if m, ok := e.(map[string]any); ok && m["name"] == name {
			return m
		}
	}
	return nil
}

func hostPath(t *testing.T, o *unstructured.Unstructured, vol string) string {
	t.Helper()
	ps, err := podSpec("test", o)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range ps["volumes"].([]any) {
		if m := v.(map[string]any); m["name"] == vol {
			return m["hostPath"].(map[string]any)["path"].(string)
		}
	}
	t.Fatalf("%s has no volume %s", o.GetName(), vol)
	return ""
}

// encode writes objects as one YAML stream, the golden files' format. Keys are
// sorted (yaml.v3 sorts maps), so output is stable.
func encode(t testing.TB, objs []*unstructured.Unstructured) string {
	t.Helper()
	var b bytes.Buffer
	for _, o := range objs {
		b.WriteString("---\n")
		enc := yaml.NewEncoder(&b)
		enc.SetIndent(2)
		if err := enc.Encode(o.Object); err != nil {
			t.Fatal(err)
		}
		if err := enc.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return b.String()
}

func allObjects(addons []Addon) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, a := range addons {
		out = append(out, a.Objects...)
	}
	return out
}
