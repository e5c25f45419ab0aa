package inventory

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Option changes how an inventory is read.
type Option func(*options)

type options struct {
	lookupEnv func(string) (string, bool)
}

// WithLookupEnv replaces os.LookupEnv for the "is this variable set?"
// warnings, so tests do not depend on the caller's environment.
func WithLookupEnv(f func(string) (string, bool)) Option {
	return func(o *options) { o.lookupEnv = f }
}

// Load reads, expands, defaults and validates the inventory at path. On
// invalid input the error is a *ValidationError listing every problem (and
// the warnings); on success the warnings are in Cluster.Warnings.
func Load(path string, opts ...Option) (*Cluster, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read inventory: %w", err)
	}
	c, _, err := Parse(path, data, opts...)
	return c, err
}

// Parse is Load for data already in memory; name is used in messages and to
// resolve relative paths (key files, artifacts) against its directory.
// Errors are always *ValidationError; warnings are returned in both cases.
func Parse(name string, data []byte, opts ...Option) (c *Cluster, warnings []Warning, err error) {
	o := options{lookupEnv: os.LookupEnv}
	for _, f := range opts {
		f(&o)
	}
	p := newParser(name)
	c = p.parse(data, o)
	sortFieldErrors(p.errs)
	p.errs = dedupe(p.errs)
	ws := make([]FieldError, len(p.warns))
	for i, w := range p.warns {
		ws[i] = FieldError(w)
	}
	sortFieldErrors(ws)
	ws = dedupe(ws)
	warnings = make([]Warning, len(ws))
	for i, w := range ws {
		warnings[i] = Warning(w)
	}
	if len(p.errs) > 0 {
		return nil, warnings, &ValidationError{Errors: p.errs, Warnings: warnings}
	}
	c.Warnings = warnings
	return c, warnings, nil
}

var yamlLineRe = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntaxError turns yaml.v3's "yaml: line N: msg" into a positioned error.
func (p *parser) syntaxError(err error) {
	msg := err.Error()
	line := 1
	if m := yamlLineRe.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	fix := "check indentation (spaces, not tabs) and quoting on or just above this line"
	if strings.Contains(msg, "did not find expected ','") {
		// The usual cause: a host range inside a flow mapping or list,
		// where [ and ] are YAML syntax.
		fix = "quote values containing [ ] { } or , inside {...} or [...], e.g. {name: \"node[01:20]\"}"
	}
	p.errAt(position{max(line, 1), 1}, "", fix, "YAML syntax error: %s", msg)
}

// decodeYAML reads exactly one document. yaml.v3 has panicked on hostile input
// in the past; a panic here becomes an error so bad input never crashes us.
func decodeYAML(data []byte) (doc *yaml.Node, extra *yaml.Node, err error) {
	defer func() {
		if r := recover(); r != nil {
			doc, extra, err = nil, nil, fmt.Errorf("yaml: %v", r)
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var d yaml.Node
	if err := dec.Decode(&d); err != nil {
		return nil, nil, err
	}
	var x yaml.Node
	if err := dec.Decode(&x); err == nil {
		return &d, &x, nil
	} else if !errors.Is(err, io.EOF) {
		return &d, nil, err
	}
	return &d, nil, nil
}

func (p *parser) parse(data []byte, o options) *Cluster {
	p.data = data
	c := &Cluster{Path: p.file}
	doc, extra, err := decodeYAML(data)
	if errors.Is(err, io.EOF) || (err == nil && (len(doc.Content) == 0 || isNull(doc.Content[0]))) {
		p.errAt(position{1, 1}, "", "start from inventories/sample/inventory.yaml", "inventory is empty")
		return c
	}
	if err != nil {
		p.syntaxError(err)
		if doc == nil {
			return c
		}
	}
	if extra != nil {
		p.errAt(position{max(extra.Line, 1), 1}, "", "keep one cluster per file and remove the extra \"---\" document", "file has more than one YAML document")
	}
	root := doc.Content[0]
	if r := p.resolve(root); r != nil && r.Kind != yaml.MappingNode {
		p.errAt(position{r.Line, r.Column}, "", "start from inventories/sample/inventory.yaml", "expected a mapping with apiVersion, kind, metadata and spec, got %s", describe(r))
		return c
	}
	p.decode(root, reflect.ValueOf(c).Elem(), "")
	if p.exceeded {
		return c
	}
	p.checkHeader(c)
	p.splitVIPPrefix(c)
	p.resolvePaths(c)
	p.expandHosts(c)
	p.expandGroups(c)
	applyDefaults(c)
	p.validate(c, o)
	fillHostGroups(c)
	return c
}

// resolvePaths makes relative file paths relative to the inventory file, so an
// inventory committed next to its keys works from any working directory.
func (p *parser) resolvePaths(c *Cluster) {
	dir := filepath.Dir(p.file)
	res := func(s *string) {
		if *s == "" || filepath.IsAbs(*s) || strings.HasPrefix(*s, "~") {
			return
		}
		*s = filepath.Join(dir, *s)
	}
	res(&c.Spec.HostDefaults.KeyFile)
	for i := range c.Spec.Hosts {
		res(&c.Spec.Hosts[i].KeyFile)
	}
	res(&c.Spec.Artifacts.Path)
}

// hostSrc remembers which entry of spec.hosts an expanded host came from, so
// errors point at the line the operator wrote.
type hostSrc struct {
	index  int
	ranged bool
}

func (p *parser) hostPath(c *Cluster, i int) string {
	return indexPath("spec.hosts", p.src[i].index)
}

// expandHosts replaces range entries (name node[01:03], address
// 10.0.0.[11:13]) by one host per name, in order.
func (p *parser) expandHosts(c *Cluster) {
	raw := c.Spec.Hosts
	if len(raw) > MaxHosts {
		p.errorf("spec.hosts", "split the cluster", "inventory lists %d hosts, more than the limit of %d", len(raw), MaxHosts)
		c.Spec.Hosts = nil
		p.failed["spec.hosts"] = true
		return
	}
	var out []Host
	p.src = p.src[:0]
	for i, h := range raw {
		hp := indexPath("spec.hosts", i)
		if p.failed[hp] {
			continue // not a mapping; already reported
		}
		if !isRange(h.Name) {
			bad := false
			for _, f := range []struct{ key, val string }{{"address", h.Address}, {"internalAddress", h.InternalAddress}} {
				if isRange(f.val) {
					p.errorf(hp+"."+f.key, "make name a range of the same length too, e.g. node[01:03], or write a single address", "%s %q is a range but name %q is not", f.key, f.val, h.Name)
					bad = true
				}
			}
			if bad {
				continue
			}
			out = append(out, h)
			p.src = append(p.src, hostSrc{index: i})
			continue
		}
		names, err := expand(h.Name)
		if err != nil {
			p.errorf(hp+".name", "write the range as prefix[start:end]suffix, e.g. node[01:20]", "%v", err)
			continue
		}
		addrs, ok := p.lockstep(hp+".address", h.Address, h.Name, len(names), true)
		if !ok {
			continue
		}
		internal, ok := p.lockstep(hp+".internalAddress", h.InternalAddress, h.Name, len(names), false)
		if !ok {
			continue
		}
		if len(out)+len(names) > MaxHosts {
			p.errorf(hp+".name", "split the cluster or shorten the range", "inventory expands to more than %d hosts", MaxHosts)
			break
		}
		for j, n := range names {
			e := h
			e.Name = n
			e.Address = addrs[j]
			if internal != nil {
				e.InternalAddress = internal[j]
			}
			// Labels and taints are shared by value, not by map identity, so
			// a later change to one host never leaks into its siblings.
			e.Labels = copyMap(h.Labels)
			e.Taints = append([]Taint(nil), h.Taints...)
			out = append(out, e)
			p.src = append(p.src, hostSrc{index: i, ranged: true})
		}
	}
	c.Spec.Hosts = out
}

// lockstep expands an address field of a ranged host; it must be a range of
// exactly n values. An empty optional field returns (nil, true).
func (p *parser) lockstep(path, val, name string, n int, required bool) ([]string, bool) {
	if val == "" {
		if required {
			p.errorf(path, "add e.g. address: 10.0.0.[11:30], one address per name", "missing address for host range %q", name)
			return nil, false
		}
		return nil, true
	}
	if !isRange(val) {
		p.errorf(path, fmt.Sprintf("write a range of %d addresses, e.g. 10.0.0.[11:%d]", n, 10+n), "%q is a single value but name %q is a range of %d hosts", val, name, n)
		return nil, false
	}
	vals, err := expand(val)
	if err != nil {
		p.errorf(path, "write the range as prefix[start:end], e.g. 10.0.0.[11:30]", "%v", err)
		return nil, false
	}
	if len(vals) != n {
		p.errorf(path, "make both ranges the same length", "range %q has %d values but name %q has %d", val, len(vals), name, n)
		return nil, false
	}
	return vals, true
}

func copyMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// expandGroups expands ranges in member lists and drops unknown members
// (reported as errors), so later stages see only real hosts.
func (p *parser) expandGroups(c *Cluster) {
	known := map[string]bool{}
	names := make([]string, 0, len(c.Spec.Hosts))
	for _, h := range c.Spec.Hosts {
		if !known[h.Name] {
			names = append(names, h.Name)
		}
		known[h.Name] = true
	}
	groups := sortedKeys(c.Spec.Groups)
	for _, g := range groups {
		members := c.Spec.Groups[g]
		gp := joinPath("spec.groups", g)
		var out []string
		seen := map[string]bool{}
		for j, m := range members {
			mp := indexPath(gp, j)
			list, err := expand(m)
			if err != nil {
				p.errorf(mp, "write the range as prefix[start:end], e.g. node[01:20]", "%v", err)
				continue
			}
			var unknown []string
			for _, n := range list {
				if !known[n] {
					unknown = append(unknown, n)
					continue
				}
				if seen[n] {
					p.warnf(mp, "list each host once per group", "host %q is listed more than once in group %q", n, g)
					continue
				}
				seen[n] = true
				out = append(out, n)
			}
			switch {
			case len(unknown) == 0:
			case len(list) == 1:
				msg := fmt.Sprintf("%q is not a host in spec.hosts", m)
				if s := suggest(m, names); s != "" {
					p.errorf(mp, fmt.Sprintf("change it to %q", s), "%s (did you mean %q?)", msg, s)
				} else {
					p.errorf(mp, "add the host to spec.hosts or remove it from the group", "%s", msg)
				}
			default:
				shown := unknown
				if len(shown) > 5 {
					shown = append(append([]string(nil), shown[:5]...), "...")
				}
				p.errorf(mp, "add the missing hosts to spec.hosts or shorten the range", "%d of the %d names in %q are not hosts in spec.hosts: %s", len(unknown), len(list), m, strings.Join(shown, ", "))
			}
		}
		if out == nil {
			out = []string{}
		}
		c.Spec.Groups[g] = out
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// fillHostGroups sets Host.Groups from spec.groups.
func fillHostGroups(c *Cluster) {
	idx := map[string]int{}
	for i := range c.Spec.Hosts {
		idx[c.Spec.Hosts[i].Name] = i
		c.Spec.Hosts[i].Groups = nil
	}
	for _, g := range sortedKeys(c.Spec.Groups) {
		for _, m := range c.Spec.Groups[g] {
			if i, ok := idx[m]; ok && !c.Spec.Hosts[i].IsIn(g) {
				c.Spec.Hosts[i].Groups = append(c.Spec.Hosts[i].Groups, g)
			}
		}
	}
}
