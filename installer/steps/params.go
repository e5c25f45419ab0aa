package steps

import (
	"fmt"
	"sort"
	"strings"
)

// splitList reads a playbook list parameter: "socat, conntrack ipset".
func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' })
}

// checkParams rejects parameters a step does not know, so a typo in a
// playbook fails at load time instead of being ignored.
func checkParams(with map[string]string, known ...string) error {
	var bad []string
	for k := range with {
		ok := false
		for _, n := range known {
			if k == n {
				ok = true
			}
		}
		if !ok {
			bad = append(bad, k)
		}
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		return fmt.Errorf("unknown parameter(s) %s (known: %s)", strings.Join(bad, ", "), strings.Join(known, ", "))
	}
	return nil
}
