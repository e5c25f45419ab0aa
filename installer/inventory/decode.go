package inventory

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"

	"github.com/kubewright/kubewright/installer/internal/yamltext"
)

// maxNodes bounds the work one file can cause. Aliases let a tiny file name the
// same subtree exponentially often; a real inventory has a few thousand nodes.
const maxNodes = 1_000_000

type position struct{ line, col int }

// parser holds the state of one Parse call: the file name for messages, the
// position of every field it saw, and the findings so far. It decodes the
// yaml.Node tree itself (instead of yaml.Node.Decode) so that it can keep
// going after the first problem and attach file:line:col to each one.
type parser struct {
	file  string
	data  []byte // the input, so no position falls past its end
	errs  []FieldError
	warns []Warning
	// pos maps a field path to where its value starts in the file. A path is
	// present exactly when the field was written in the file.
	pos map[string]position
	// failed marks paths whose value could not be decoded, so validation does
	// not pile a "missing" error on top of the "wrong type" one.
	failed   map[string]bool
	budget   int
	exceeded bool
	// src[i] tells which spec.hosts entry expanded host i came from.
	src []hostSrc
	// merging holds the mappings whose merge keys are being expanded; an
	// anchor merged into itself (a: &x {<<: *x}) would otherwise recurse
	// forever, and yaml.v3 accepts it.
	merging map[*yaml.Node]bool
}

func newParser(file string) *parser {
	return &parser{file: file, pos: map[string]position{}, failed: map[string]bool{}, budget: maxNodes, merging: map[*yaml.Node]bool{}}
}

// at returns the position of path, or of its nearest ancestor that was written
// in the file (defaulted fields have no position of their own).
func (p *parser) at(path string) position {
	for {
		if ps, ok := p.pos[path]; ok {
			return ps
		}
		if path == "" {
			return position{1, 1}
		}
		path = parentPath(path)
	}
}

// explicit reports whether path was written in the file (not defaulted).
func (p *parser) explicit(path string) bool { _, ok := p.pos[path]; return ok }

func parentPath(path string) string {
	if strings.HasSuffix(path, "]") {
		if i := strings.LastIndex(path, "["); i >= 0 {
			return path[:i]
		}
	}
	if i := strings.LastIndex(path, "."); i >= 0 {
		return path[:i]
	}
	return ""
}

func (p *parser) errAt(ps position, path, fix, format string, args ...any) {
	ps = p.clamp(ps)
	p.errs = append(p.errs, FieldError{File: p.file, Line: ps.line, Col: ps.col, Path: path, Msg: fmt.Sprintf(format, args...), Fix: fix})
}

// clamp keeps a position inside the file: the YAML library puts an implicit
// empty value ("? key", a bare "---") on the line after the last.
func (p *parser) clamp(ps position) position {
	ps.line, ps.col = yamltext.Clamp(p.data, ps.line, ps.col)
	return ps
}

// errorf reports a problem with the value at path (or its nearest written ancestor).
func (p *parser) errorf(path, fix, format string, args ...any) {
	p.errAt(p.at(path), path, fix, format, args...)
}

func (p *parser) warnf(path, fix, format string, args ...any) {
	ps := p.clamp(p.at(path))
	p.warns = append(p.warns, Warning{File: p.file, Line: ps.line, Col: ps.col, Path: path, Msg: fmt.Sprintf(format, args...), Fix: fix})
}

func joinPath(parent, key string) string {
	if !isPlainKey(key) {
		key = strconv.Quote(key)
		return parent + "[" + key + "]"
	}
	if parent == "" {
		return key
	}
	return parent + "." + key
}

func indexPath(parent string, i int) string { return parent + "[" + strconv.Itoa(i) + "]" }

func isPlainKey(k string) bool {
	if k == "" {
		return false
	}
	for _, r := range k {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// resolve follows aliases and charges the node budget.
func (p *parser) resolve(n *yaml.Node) *yaml.Node {
	for hops := 0; n != nil && n.Kind == yaml.AliasNode; hops++ {
		if hops > 100 {
			return nil
		}
		n = n.Alias
	}
	if n == nil {
		return nil
	}
	p.budget--
	if p.budget < 0 {
		if !p.exceeded {
			p.exceeded = true
			p.errAt(position{max(n.Line, 1), max(n.Column, 1)}, "", "split the file or remove deeply nested aliases", "document too large: more than %d YAML nodes after resolving aliases", maxNodes)
		}
		return nil
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// describe names what a node is, for "expected X, got Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		v := n.Value
		if len(v) > 40 {
			v = v[:37] + "..."
		}
		return strconv.Quote(v)
	}
	return "an unsupported YAML node"
}

type pair struct{ key, val *yaml.Node }

// pairs returns the key/value pairs of a mapping with YAML merge keys ("<<")
// applied: keys written in the mapping itself win over merged ones, and a
// duplicate key written twice is an error (yaml.v3 would silently keep one).
func (p *parser) pairs(n *yaml.Node, path string) []pair {
	if p.merging[n] {
		p.errAt(position{n.Line, n.Column}, path, "merge a different mapping, or remove the merge key", "merge key (<<) merges a mapping into itself")
		return nil
	}
	p.merging[n] = true
	defer delete(p.merging, n)
	var out []pair
	seen := map[string]int{} // key -> line
	var merged []pair
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		k = p.resolve(k)
		if k == nil {
			continue
		}
		if k.Kind != yaml.ScalarNode {
			p.errAt(position{k.Line, k.Column}, path, "use plain text keys", "mapping key must be a string, got %s", describe(k))
			continue
		}
		if k.Tag == "!!merge" {
			merged = append(merged, p.mergePairs(v, path)...)
			continue
		}
		if line, dup := seen[k.Value]; dup {
			p.errAt(position{k.Line, k.Column}, joinPath(path, k.Value), "keep one of them", "duplicate key %q (first at line %d)", k.Value, line)
			continue
		}
		seen[k.Value] = k.Line
		out = append(out, pair{k, v})
	}
	for _, m := range merged {
		if _, dup := seen[m.key.Value]; dup {
			continue
		}
		seen[m.key.Value] = m.key.Line
		out = append(out, m)
	}
	return out
}

func (p *parser) mergePairs(v *yaml.Node, path string) []pair {
	v = p.resolve(v)
	if v == nil {
		return nil
	}
	switch v.Kind {
	case yaml.MappingNode:
		return p.pairs(v, path)
	case yaml.SequenceNode:
		var out []pair
		have := map[string]bool{}
		for _, item := range v.Content {
			item = p.resolve(item)
			if item == nil {
				continue
			}
			if item.Kind != yaml.MappingNode {
				p.errAt(position{item.Line, item.Column}, path, "merge only mappings, e.g. <<: *defaults", "merge key (<<) value must be a mapping, got %s", describe(item))
				continue
			}
			// In a merge list the earlier mapping wins.
			for _, pr := range p.pairs(item, path) {
				if !have[pr.key.Value] {
					have[pr.key.Value] = true
					out = append(out, pr)
				}
			}
		}
		return out
	}
	p.errAt(position{v.Line, v.Column}, path, "merge only mappings, e.g. <<: *defaults", "merge key (<<) value must be a mapping, got %s", describe(v))
	return nil
}

type structField struct {
	name  string
	index int
}

var fieldCache sync.Map // reflect.Type -> []structField

func yamlFields(t reflect.Type) []structField {
	if f, ok := fieldCache.Load(t); ok {
		return f.([]structField)
	}
	var out []structField
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		name, _, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out = append(out, structField{name, i})
	}
	fieldCache.Store(t, out)
	return out
}

// intExamples make "wrong type" fixes concrete for the integer fields.
var intExamples = map[string]int{
	"port":          DefaultSSHPort,
	"apiServerPort": DefaultAPIServerPort,
	"routerID":      DefaultRouterID,
	"vipPrefix":     DefaultVIPPrefixV4,
	"mtu":           DefaultMTU,
	"replicas":      DefaultStorageReplicas,
	"retentionDays": DefaultLogRetentionDays,
	"repairBudget":  DefaultRepairBudget,
}

// underFix finishes a "wrong shape" fix with where to write it.
func underFix(what, path string) string {
	if strings.HasSuffix(path, "]") {
		return what + " for this list item"
	}
	if path == "" {
		return what
	}
	return what + " indented under " + lastKey(path)
}

func lastKey(path string) string {
	if i := strings.LastIndexAny(path, ".]"); i >= 0 {
		return path[i+1:]
	}
	return path
}

// decode fills v from n, reporting every mismatch with its position. It
// returns false when the value at this path could not be used.
func (p *parser) decode(n *yaml.Node, v reflect.Value, path string) bool {
	n = p.resolve(n)
	if n == nil {
		return false
	}
	p.pos[path] = position{n.Line, n.Column}
	if isNull(n) {
		return true
	}
	bad := func(want, fix string) bool {
		p.errAt(position{n.Line, n.Column}, path, fix, "expected %s, got %s", want, describe(n))
		p.failed[path] = true
		return false
	}
	switch v.Kind() {
	case reflect.Pointer:
		e := reflect.New(v.Type().Elem())
		if !p.decode(n, e.Elem(), path) {
			return false
		}
		v.Set(e)
		return true

	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return bad("a mapping", underFix("write key: value pairs", path))
		}
		fields := yamlFields(v.Type())
		names := make([]string, len(fields))
		for i, f := range fields {
			names[i] = f.name
		}
		for _, pr := range p.pairs(n, path) {
			idx := -1
			for _, f := range fields {
				if f.name == pr.key.Value {
					idx = f.index
					break
				}
			}
			fp := joinPath(path, pr.key.Value)
			if idx < 0 {
				kp := position{pr.key.Line, pr.key.Column}
				if s := suggest(pr.key.Value, names); s != "" {
					// The misspelt field is the one meant; do not also
					// report it as missing.
					p.failed[joinPath(path, s)] = true
					p.errAt(kp, fp, fmt.Sprintf("rename it to %q", s), "unknown field %q (did you mean %q?)", pr.key.Value, s)
				} else {
					p.errAt(kp, fp, "remove it; valid fields here: "+strings.Join(names, ", "), "unknown field %q", pr.key.Value)
				}
				continue
			}
			p.decode(pr.val, v.Field(idx), fp)
		}
		return true

	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return bad("a list", underFix("write one \"- item\" per line", path))
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			p.decode(item, s.Index(i), indexPath(path, i))
		}
		v.Set(s)
		return true

	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return bad("a mapping", underFix("write key: value pairs", path))
		}
		m := reflect.MakeMap(v.Type())
		for _, pr := range p.pairs(n, path) {
			fp := joinPath(path, pr.key.Value)
			ev := reflect.New(v.Type().Elem()).Elem()
			if p.decode(pr.val, ev, fp) {
				m.SetMapIndex(reflect.ValueOf(pr.key.Value), ev)
			}
		}
		v.Set(m)
		return true

	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			return bad("a string", "write a single value, quoted if it contains special characters")
		}
		v.SetString(n.Value)
		return true

	case reflect.Int:
		ex := intExamples[lastKey(path)]
		fix := "write a whole number without quotes"
		if ex != 0 {
			fix = fmt.Sprintf("write a whole number without quotes, e.g. %d", ex)
		}
		if n.Kind != yaml.ScalarNode {
			return bad("a whole number", fix)
		}
		var i64 int64
		var err error
		switch n.Tag {
		case "!!int":
			err = n.Decode(&i64)
		case "!!str":
			// "22" in quotes is still clearly a number.
			i64, err = strconv.ParseInt(n.Value, 10, 64)
		default:
			err = fmt.Errorf("not an integer")
		}
		if err != nil {
			return bad("a whole number", fix)
		}
		if i64 > math.MaxInt32 || i64 < math.MinInt32 {
			p.errAt(position{n.Line, n.Column}, path, fix, "number %s is out of range", n.Value)
			p.failed[path] = true
			return false
		}
		v.SetInt(i64)
		return true

	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
			return bad("true or false", "write true or false without quotes")
		}
		var b bool
		if err := n.Decode(&b); err != nil {
			return bad("true or false", "write true or false without quotes")
		}
		v.SetBool(b)
		return true
	}
	// Unreachable for the inventory types; kept so a new field type fails loudly.
	p.errAt(position{n.Line, n.Column}, path, "report this as a kubewright bug", "field of unsupported kind %s", v.Kind())
	return false
}
