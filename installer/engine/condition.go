package engine

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/kubewright/kubewright/installer/inventory"
)

// Condition is a step's "when:". It is deliberately tiny — comparisons of
// facts and inventory fields joined by "and" — because playbooks should stay
// declarative; anything smarter belongs in a step's Plan.
//
//	facts.osFamily == debian
//	facts.arch != aarch64 and host in masters
//	host.labels.zone == "eu-1"
type Condition struct {
	Source  string
	clauses []clause
}

type clause struct {
	lhs   string // facts.X | host.name | host.labels.K | host (for "in")
	op    string // == | != | in | not in
	value string
}

var factFields = []string{"os", "osVersion", "osFamily", "arch", "kernel", "cpus", "memoryMiB", "swapMiB", "hostname", "machineID", "initSystem", "packageManager"}

// ParseCondition parses a when: expression.
func ParseCondition(s string) (*Condition, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, fmt.Errorf("empty condition")
	}
	c := &Condition{Source: s}
	for _, part := range strings.Split(s, " and ") {
		cl, err := parseClause(strings.TrimSpace(part))
		if err != nil {
			return nil, err
		}
		c.clauses = append(c.clauses, cl)
	}
	return c, nil
}

func parseClause(s string) (clause, error) {
	if rest, ok := strings.CutPrefix(s, "host not in "); ok {
		return clause{lhs: "host", op: "not in", value: unquote(rest)}, nil
	}
	if rest, ok := strings.CutPrefix(s, "host in "); ok {
		return clause{lhs: "host", op: "in", value: unquote(rest)}, nil
	}
	for _, op := range []string{"==", "!="} {
		lhs, rhs, ok := strings.Cut(s, op)
		if !ok {
			continue
		}
		lhs = strings.TrimSpace(lhs)
		if err := checkOperand(lhs); err != nil {
			return clause{}, err
		}
		return clause{lhs: lhs, op: op, value: unquote(strings.TrimSpace(rhs))}, nil
	}
	return clause{}, fmt.Errorf("cannot parse condition %q: want \"facts.FIELD == VALUE\", \"!=\", \"host in GROUP\" or \"host not in GROUP\", joined by \"and\"", s)
}

func checkOperand(lhs string) error {
	switch {
	case lhs == "host.name":
		return nil
	case strings.HasPrefix(lhs, "host.labels.") && len(lhs) > len("host.labels."):
		return nil
	case strings.HasPrefix(lhs, "facts."):
		f := strings.TrimPrefix(lhs, "facts.")
		if contains(factFields, f) {
			return nil
		}
		msg := fmt.Sprintf("unknown fact %q", f)
		if s := suggest(f, factFields); s != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", s)
		}
		return fmt.Errorf("%s", msg)
	}
	return fmt.Errorf("unknown operand %q: want facts.FIELD, host.name or host.labels.KEY", lhs)
}

func unquote(s string) string {
	s = strings.TrimSpace(s)
	if u, err := strconv.Unquote(s); err == nil {
		return u
	}
	if len(s) >= 2 && s[0] == '\'' && s[len(s)-1] == '\'' {
		return s[1 : len(s)-1]
	}
	return s
}

// Eval reports whether the condition holds for a host with its facts.
func (c *Condition) Eval(h *inventory.Host, f *Facts) bool {
	if c == nil {
		return true
	}
	for _, cl := range c.clauses {
		if !cl.eval(h, f) {
			return false
		}
	}
	return true
}

func (cl clause) eval(h *inventory.Host, f *Facts) bool {
	if cl.lhs == "host" {
		in := contains(h.Groups, cl.value)
		return in == (cl.op == "in")
	}
	got := operand(cl.lhs, h, f)
	return (got == cl.value) == (cl.op == "==")
}

func operand(lhs string, h *inventory.Host, f *Facts) string {
	if lhs == "host.name" {
		return h.Name
	}
	if k, ok := strings.CutPrefix(lhs, "host.labels."); ok {
		return h.Labels[k]
	}
	if f == nil {
		return ""
	}
	switch strings.TrimPrefix(lhs, "facts.") {
	case "os":
		return f.OS
	case "osVersion":
		return f.OSVersion
	case "osFamily":
		return f.OSFamily
	case "arch":
		return f.Arch
	case "kernel":
		return f.Kernel
	case "cpus":
		return strconv.Itoa(f.CPUs)
	case "memoryMiB":
		return strconv.Itoa(f.MemoryMiB)
	case "swapMiB":
		return strconv.Itoa(f.SwapMiB)
	case "hostname":
		return f.Hostname
	case "machineID":
		return f.MachineID
	case "initSystem":
		return f.InitSystem
	case "packageManager":
		return f.PackageManager
	}
	return ""
}
