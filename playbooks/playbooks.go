// Package playbooks holds the playbooks shipped inside the kubewright binary.
// They are plain YAML so operators can copy one, change it and run their
// copy with `kubewright run -i INV ./my.yaml`.
package playbooks

import (
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strings"
)

//go:embed *.yaml
var files embed.FS

// Names lists the embedded playbooks by name (file name without .yaml).
func Names() []string {
	entries, err := fs.ReadDir(files, ".")
	if err != nil {
		return nil // cannot happen: the embed directory always exists
	}
	var out []string
	for _, e := range entries {
		if name, ok := strings.CutSuffix(e.Name(), ".yaml"); ok {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// Get returns an embedded playbook's YAML.
func Get(name string) ([]byte, error) {
	data, err := files.ReadFile(name + ".yaml")
	if err != nil {
		return nil, fmt.Errorf("no embedded playbook %q (have: %s)", name, strings.Join(Names(), ", "))
	}
	return data, nil
}
