package inventory

import (
	"bytes"
	"encoding/json"
	"fmt"

	"gopkg.in/yaml.v3"
)

// Format names accepted by Render.
const (
	FormatYAML = "yaml"
	FormatJSON = "json"
)

// Render prints the defaulted cluster: YAML that Parse reads back to the same
// result, or JSON (which also lists each host's groups).
func (c *Cluster) Render(format string) ([]byte, error) {
	switch format {
	case FormatYAML, "":
		var b bytes.Buffer
		enc := yaml.NewEncoder(&b)
		enc.SetIndent(2)
		if err := enc.Encode(c); err != nil {
			return nil, fmt.Errorf("render inventory as yaml: %w", err)
		}
		if err := enc.Close(); err != nil {
			return nil, fmt.Errorf("render inventory as yaml: %w", err)
		}
		return b.Bytes(), nil
	case FormatJSON:
		out, err := json.MarshalIndent(c, "", "  ")
		if err != nil {
			return nil, fmt.Errorf("render inventory as json: %w", err)
		}
		return append(out, '\n'), nil
	}
	return nil, fmt.Errorf("unknown output format %q (use yaml or json)", format)
}
