package inventory

import (
	"fmt"
	"strconv"
	"strings"
)

// MaxHosts bounds the hosts one inventory may expand to. It keeps a typo such
// as node[1:1000000] from eating the operator's memory; it is far above any
// cluster kubewright is meant for.
const MaxHosts = 5000

// hostRange is a parsed "prefix[start:end]suffix".
type hostRange struct {
	prefix, suffix string
	start, end     int
	width          int // zero-pad to this many digits; 0 = no padding
}

func (r hostRange) count() int { return r.end - r.start + 1 }

func (r hostRange) at(i int) string {
	n := strconv.Itoa(r.start + i)
	if pad := r.width - len(n); pad > 0 {
		n = strings.Repeat("0", pad) + n
	}
	return r.prefix + n + r.suffix
}

// isRange reports whether s uses range syntax at all (even if malformed), so
// that a malformed range is reported as such and not as a bad host name.
func isRange(s string) bool { return strings.ContainsAny(s, "[]") }

// parseRange parses s. Zero padding follows the start bound: node[01:20] gives
// node01..node20, node[1:20] gives node1..node20.
func parseRange(s string) (hostRange, error) {
	open := strings.IndexByte(s, '[')
	closeIdx := strings.IndexByte(s, ']')
	switch {
	case open < 0:
		return hostRange{}, fmt.Errorf("range %q has \"]\" but no \"[\"", s)
	case closeIdx < 0:
		return hostRange{}, fmt.Errorf("range %q is missing the closing \"]\"", s)
	case closeIdx < open:
		return hostRange{}, fmt.Errorf("range %q has \"]\" before \"[\"", s)
	case strings.ContainsAny(s[closeIdx+1:], "[]") || strings.Contains(s[open+1:closeIdx], "["):
		return hostRange{}, fmt.Errorf("range %q has more than one [start:end] part; only one is allowed", s)
	}
	body := s[open+1 : closeIdx]
	lo, hi, ok := strings.Cut(body, ":")
	if !ok {
		return hostRange{}, fmt.Errorf("range %q needs the form [start:end], e.g. [01:20]", s)
	}
	if !isDigits(lo) || !isDigits(hi) {
		return hostRange{}, fmt.Errorf("range %q bounds must be decimal numbers, e.g. [01:20]", s)
	}
	if len(lo) > 6 || len(hi) > 6 {
		return hostRange{}, fmt.Errorf("range %q bounds are too large (at most 6 digits)", s)
	}
	a, _ := strconv.Atoi(lo)
	b, _ := strconv.Atoi(hi)
	if a > b {
		return hostRange{}, fmt.Errorf("range %q starts after it ends (%d > %d)", s, a, b)
	}
	r := hostRange{prefix: s[:open], suffix: s[closeIdx+1:], start: a, end: b}
	if len(lo) > 1 && lo[0] == '0' {
		r.width = len(lo)
	}
	if r.count() > MaxHosts {
		return hostRange{}, fmt.Errorf("range %q expands to %d names, more than the limit of %d", s, r.count(), MaxHosts)
	}
	return r, nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// expand returns s itself, or every name of the range s.
func expand(s string) ([]string, error) {
	if !isRange(s) {
		return []string{s}, nil
	}
	r, err := parseRange(s)
	if err != nil {
		return nil, err
	}
	out := make([]string, r.count())
	for i := range out {
		out[i] = r.at(i)
	}
	return out, nil
}
