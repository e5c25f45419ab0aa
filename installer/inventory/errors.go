package inventory

import (
	"fmt"
	"sort"
	"strings"
)

// FieldError is one problem found in an inventory file. It always points at a
// place in the file (Line and Col are 1-based) and says how to fix it, because
// an operator reading "invalid inventory" alone has to guess.
type FieldError struct {
	File string `json:"file"`
	Line int    `json:"line"`
	Col  int    `json:"col"`
	// Path is the field path in the file, e.g. spec.hosts[2].address. For hosts
	// expanded from a range it is the path of the range entry.
	Path string `json:"path"`
	Msg  string `json:"message"`
	Fix  string `json:"fix"`
}

// Error renders the stable one-line form:
// FILE:LINE:COL: PATH: MESSAGE; fix: FIX
func (e FieldError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s:%d:%d: ", e.File, e.Line, e.Col)
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	if e.Fix != "" {
		b.WriteString("; fix: ")
		b.WriteString(e.Fix)
	}
	return b.String()
}

// Warning is a finding that does not stop a run (e.g. an even number of etcd
// members). It has the same shape and rendering as FieldError.
type Warning FieldError

func (w Warning) String() string { return FieldError(w).Error() }

// ValidationError carries every error found in one inventory, sorted by
// position, plus the warnings found alongside them so a caller that only sees
// the error can still show both.
type ValidationError struct {
	Errors   []FieldError
	Warnings []Warning
}

func (e *ValidationError) Error() string {
	switch len(e.Errors) {
	case 0:
		return "inventory is invalid"
	case 1:
		return e.Errors[0].Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "inventory has %d errors:", len(e.Errors))
	for _, fe := range e.Errors {
		b.WriteString("\n  ")
		b.WriteString(fe.Error())
	}
	return b.String()
}

// Lines returns one rendered line per error, in order.
func (e *ValidationError) Lines() []string {
	out := make([]string, len(e.Errors))
	for i, fe := range e.Errors {
		out[i] = fe.Error()
	}
	return out
}

func sortFieldErrors(errs []FieldError) {
	sort.SliceStable(errs, func(i, j int) bool {
		a, b := errs[i], errs[j]
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if a.Col != b.Col {
			return a.Col < b.Col
		}
		if a.Path != b.Path {
			return a.Path < b.Path
		}
		return a.Msg < b.Msg
	})
}

// dedupe drops exact repeats, which can happen when one bad node is reached
// twice through a YAML alias.
func dedupe(errs []FieldError) []FieldError {
	out := errs[:0]
	seen := map[FieldError]bool{}
	for _, e := range errs {
		if seen[e] {
			continue
		}
		seen[e] = true
		out = append(out, e)
	}
	return out
}
