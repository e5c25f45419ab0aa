package inventory

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/kubewright/kubewright/installer/internal/yamltext"
)

// The fuzz targets here run their seeds (f.Add plus testdata/fuzz/<Name>/)
// in every `go test`; `make fuzz` runs each one for FUZZTIME.

const fuzzFile = "fuzz.yaml"

// checkValidationError asserts what Parse promises about a rejection: a
// non-empty *ValidationError whose every entry names the file, a 1-based
// line and column inside the input, a message and a fix.
func checkValidationError(t *testing.T, err error, data []byte) *ValidationError {
	t.Helper()
	var ve *ValidationError
	if !errors.As(err, &ve) || len(ve.Errors) == 0 {
		t.Fatalf("error is %T %v, want a non-empty *ValidationError", err, err)
	}
	lines := yamltext.Lines(data)
	for _, fe := range ve.Errors {
		if fe.File != fuzzFile || fe.Line < 1 || fe.Col < 1 || fe.Msg == "" || fe.Fix == "" {
			t.Fatalf("incomplete error %+v", fe)
		}
		if fe.Line > lines {
			t.Fatalf("error on line %d of a %d-line input: %+v", fe.Line, lines, fe)
		}
		if !strings.HasPrefix(fe.Error(), fmt.Sprintf("%s:%d:%d: ", fuzzFile, fe.Line, fe.Col)) {
			t.Fatalf("error does not start with file:line:col: %q", fe.Error())
		}
	}
	for _, w := range ve.Warnings {
		if w.File != fuzzFile || w.Line < 1 || w.Col < 1 || w.Msg == "" {
			t.Fatalf("incomplete warning %+v", w)
		}
	}
	return ve
}

// checkAccepted asserts the invariants of an accepted inventory: ranges are
// gone, names are unique, the host limit holds, every group member is a host
// and every host knows its groups.
func checkAccepted(t *testing.T, c *Cluster) {
	t.Helper()
	if len(c.Spec.Hosts) == 0 || len(c.Spec.Hosts) > MaxHosts {
		t.Fatalf("accepted inventory with %d hosts", len(c.Spec.Hosts))
	}
	seen := map[string]bool{}
	for _, h := range c.Spec.Hosts {
		if h.Name == "" || isRange(h.Name) || isRange(h.Address) || isRange(h.InternalAddress) {
			t.Fatalf("accepted host with an empty or unexpanded field: %+v", h)
		}
		if seen[h.Name] {
			t.Fatalf("accepted duplicate host name %q", h.Name)
		}
		seen[h.Name] = true
	}
	if len(c.Spec.Groups[GroupMasters]) == 0 {
		t.Fatalf("accepted inventory without masters: %v", c.Spec.Groups)
	}
	for g, members := range c.Spec.Groups {
		for _, m := range members {
			h := c.Host(m)
			if h == nil {
				t.Fatalf("group %s lists %q, which is not a host", g, m)
			}
			if !slices.Contains(h.Groups, g) {
				t.Fatalf("host %s is in group %s but its Groups are %v", m, g, h.Groups)
			}
		}
	}
}

// FuzzParse: no input may panic, every rejection is a *ValidationError whose
// entries are complete and point into the input, every accepted inventory
// satisfies checkAccepted and renders to YAML that parses back to the same
// rendering.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*/*.yaml")
	for _, s := range seeds {
		data, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(selectInv))
	f.Add([]byte("a: &a [*a]"))
	f.Add([]byte("spec: {hosts: &h [{name: x}, *h]}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, _, err := Parse(fuzzFile, data, WithLookupEnv(fakeEnv))
		if err != nil {
			checkValidationError(t, err, data)
			return
		}
		checkAccepted(t, c)
		out, err := c.Render(FormatYAML)
		if err != nil {
			t.Fatalf("render accepted inventory: %v", err)
		}
		c2, _, err := Parse(fuzzFile, out, WithLookupEnv(fakeEnv))
		if err != nil {
			t.Fatalf("rendered inventory does not parse back: %v\n%s", err, out)
		}
		out2, _ := c2.Render(FormatYAML)
		if string(out) != string(out2) {
			t.Fatalf("round trip changed the result\n%s\n---\n%s", out, out2)
		}
	})
}

// rangeSpec is the test's own reading of the range grammar, kept apart from
// parseRange so the fuzzer compares two implementations:
// prefix "[" digits ":" digits "]" suffix, with no other bracket anywhere.
var rangeSpec = regexp.MustCompile(`^([^\[\]]*)\[([0-9]+):([0-9]+)\]([^\[\]]*)$`)

// expectedExpansion is what expand must return for s, or ok=false when it
// must refuse s.
func expectedExpansion(s string) (names []string, ok bool) {
	if !strings.ContainsAny(s, "[]") {
		return []string{s}, true
	}
	m := rangeSpec.FindStringSubmatch(s)
	if m == nil || len(m[2]) > 6 || len(m[3]) > 6 {
		return nil, false
	}
	lo, _ := strconv.Atoi(m[2])
	hi, _ := strconv.Atoi(m[3])
	if lo > hi || hi-lo+1 > MaxHosts {
		return nil, false
	}
	width := 0
	if len(m[2]) > 1 && m[2][0] == '0' {
		width = len(m[2])
	}
	for n := lo; n <= hi; n++ {
		names = append(names, fmt.Sprintf("%s%0*d%s", m[1], width, n, m[4]))
	}
	return names, true
}

// FuzzExpand checks the host-range expander against expectedExpansion: it
// accepts exactly the well-formed ranges, expands to exactly end-start+1
// distinct names in order with the padding the start bound asks for, and
// every refusal quotes the input so the operator sees which entry is wrong.
func FuzzExpand(f *testing.F) {
	for _, s := range []string{"node1", "node[01:03]", "node[8:11]", "node[098:101]", "[1:2]-x",
		"10.0.1.[11:12]", "n[5:5]", "n[1:3", "n1:3]", "n][1:3", "n[1-3]", "n[:3]", "n[-1:3]",
		"n[3:1]", "n[1:2]x[1:2]", "n[1:9999999]", "n[1:6000]", "n[0:4999]", "n[000000:4999]", "", "[", "]", "[:]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := expand(s)
		want, ok := expectedExpansion(s)
		if !ok {
			if err == nil {
				t.Fatalf("expand(%q) = %d names, want an error", s, len(got))
			}
			if !strings.Contains(err.Error(), strconv.Quote(s)) {
				t.Fatalf("expand(%q) error does not quote the input: %v", s, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("expand(%q): %v, want %d names", s, err, len(want))
		}
		if len(got) != len(want) {
			t.Fatalf("expand(%q) = %d names, want %d", s, len(got), len(want))
		}
		seen := make(map[string]bool, len(got))
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("expand(%q)[%d] = %q, want %q", s, i, got[i], want[i])
			}
			if seen[got[i]] {
				t.Fatalf("expand(%q) repeats %q", s, got[i])
			}
			seen[got[i]] = true
		}
	})
}

// rangeInventory is a minimal valid inventory around one host entry whose
// name and address come from the fuzzer. The name is on line 7, the address
// on line 8.
func rangeInventory(name, addr string) []byte {
	q := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	return []byte(`apiVersion: kubewright.io/v1alpha1
kind: Cluster
metadata:
  name: fuzz
spec:
  hosts:
    - name: ` + q(name) + `
      address: ` + q(addr) + `
  groups:
    masters: [` + q(name) + `]
  controlPlaneEndpoint:
    vip: 10.0.0.10
`)
}

// FuzzHostRange drives ranges through the whole parser: an accepted host
// entry becomes exactly one host per name of the range, paired in order
// with the addresses of the address range, all in masters; a malformed name
// or address range is refused with an error on that field's own line.
func FuzzHostRange(f *testing.F) {
	f.Add("master[1:3]", "10.0.0.[11:13]")
	f.Add("node[08:12]", "192.0.2.[108:112]")
	f.Add("m1", "10.0.0.11")
	f.Add("m[1:3]", "10.0.0.[11:12]")
	f.Add("m[1:3", "10.0.0.[11:13]")
	f.Add("m[1:2]", "10.0.0.11")
	f.Add("m1", "10.0.0.[11:12]")
	f.Add("m[01:10]", "fd00::[10:19]")
	f.Fuzz(func(t *testing.T, name, addr string) {
		for _, s := range []string{name, addr} {
			for _, r := range s {
				if r < 0x20 || r > 0x7e {
					return // the range grammar is ASCII; keep YAML quoting out of the picture
				}
			}
		}
		data := rangeInventory(name, addr)
		c, _, err := Parse(fuzzFile, data, WithLookupEnv(fakeEnv))
		names, nameOK := expectedExpansion(name)
		addrs, addrOK := expectedExpansion(addr)
		if err != nil {
			ve := checkValidationError(t, err, data)
			onLine := func(line int, path string) bool {
				for _, fe := range ve.Errors {
					if fe.Line == line && fe.Path == path {
						return true
					}
				}
				return false
			}
			switch {
			case !nameOK && !onLine(7, "spec.hosts[0].name"):
				t.Fatalf("malformed name range %q: no error for spec.hosts[0].name on line 7:\n%v", name, err)
			case nameOK && isRange(name) && !addrOK && !onLine(8, "spec.hosts[0].address"):
				t.Fatalf("malformed address range %q: no error for spec.hosts[0].address on line 8:\n%v", addr, err)
			}
			return
		}
		if !nameOK || !addrOK {
			t.Fatalf("accepted name %q / address %q, which expand refuses", name, addr)
		}
		checkAccepted(t, c)
		if len(c.Spec.Hosts) != len(names) || len(names) != len(addrs) {
			t.Fatalf("name %q address %q: %d hosts, want %d names paired with %d addresses", name, addr, len(c.Spec.Hosts), len(names), len(addrs))
		}
		for i, h := range c.Spec.Hosts {
			if h.Name != names[i] || h.Address != addrs[i] {
				t.Fatalf("host %d is %s/%s, want %s/%s", i, h.Name, h.Address, names[i], addrs[i])
			}
		}
		if got := c.Spec.Groups[GroupMasters]; !slices.Equal(got, names) {
			t.Fatalf("masters = %v, want %v", got, names)
		}
	})
}
