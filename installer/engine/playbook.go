package engine

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/kubewright/kubewright/installer/internal/yamltext"
)

// Playbook is an ordered list of plays, read from YAML. It carries source
// positions so every later error (unknown step, bad selector) can point at the
// line the operator has to fix.
type Playbook struct {
	Name string
	// Source is where the playbook came from: a file path or "embedded:NAME".
	Source string
	Plays  []Play
}

// Play runs steps on the hosts its selector picks, batch by batch.
type Play struct {
	Name string
	// Hosts is an inventory selector: comma list of groups, host names, label=value.
	Hosts  string
	Serial Serial
	// MaxFailPercentage stops the play (and the run) once the share of the
	// play's hosts that failed exceeds it. Nil means no limit: failed hosts drop
	// out and the others carry on, but the run still fails at the end.
	MaxFailPercentage *int
	// AnyErrorsFatal stops the play after the first failure: hosts in the same
	// batch finish the step they are on, then nothing else starts.
	AnyErrorsFatal bool
	Steps          []StepRef
	Pos            Pos
}

// Serial is a batch size: a host count, a percentage of the play's hosts, or
// zero for all hosts in one batch.
type Serial struct {
	Count   int
	Percent int
}

// BatchSize resolves the serial setting for a play with n hosts.
func (s Serial) BatchSize(n int) int {
	switch {
	case n <= 0:
		return 0
	case s.Percent > 0:
		size := (n*s.Percent + 99) / 100 // round up: 30% of 5 hosts is 2, never 0
		return max(1, min(size, n))
	case s.Count > 0:
		return min(s.Count, n)
	default:
		return n
	}
}

func (s Serial) String() string {
	switch {
	case s.Percent > 0:
		return fmt.Sprintf("%d%%", s.Percent)
	case s.Count > 0:
		return strconv.Itoa(s.Count)
	default:
		return "all"
	}
}

// StepRef is one entry of a play's steps list.
type StepRef struct {
	Name string
	With map[string]string
	// Timeout bounds one attempt (Plan and Apply); zero means Options.StepTimeout.
	Timeout time.Duration
	// Retries is how many more attempts follow a failed one.
	Retries int
	// RetryDelay is the wait before the first retry; it doubles for each
	// further retry, capped at MaxRetryDelay. Zero means DefaultRetryDelay.
	RetryDelay time.Duration
	// When, if set, skips the step on hosts where the condition is false.
	When *Condition
	Pos  Pos
}

// Pos is a position in the playbook source (1-based).
type Pos struct {
	Line, Column int
}

// DefaultRetryDelay and MaxRetryDelay bound the exponential backoff between
// attempts: long enough for a restarting daemon, short enough to fail fast.
const (
	DefaultRetryDelay = 2 * time.Second
	MaxRetryDelay     = time.Minute
)

// Problem is one positioned error in a playbook.
type Problem struct {
	Pos  Pos
	Path string // field path, e.g. plays[1].steps[0].timeout
	Msg  string
}

// InvalidError lists every problem found in a playbook (or its host selection)
// before any host was touched. Callers treat it as bad operator input.
type InvalidError struct {
	Source   string
	Problems []Problem
}

func (e *InvalidError) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Source)
		if p.Pos.Line > 0 {
			fmt.Fprintf(&b, ":%d", p.Pos.Line)
			if p.Pos.Column > 0 {
				fmt.Fprintf(&b, ":%d", p.Pos.Column)
			}
		}
		b.WriteString(": ")
		if p.Path != "" {
			b.WriteString(p.Path)
			b.WriteString(": ")
		}
		b.WriteString(p.Msg)
	}
	return b.String()
}

// LoadPlaybook parses a playbook strictly: unknown fields, wrong types and
// bad values are all reported at once with source:line:col. source names the
// data in messages (a path or "embedded:install").
func LoadPlaybook(source string, data []byte) (*Playbook, error) {
	p := &pbParser{source: source, data: data}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, &InvalidError{Source: source, Problems: []Problem{yamlSyntaxProblem(err)}}
	}
	if doc.Kind == 0 || len(doc.Content) == 0 || isEmptyValue(doc.Content[0]) {
		return nil, &InvalidError{Source: source, Problems: []Problem{{Msg: "empty playbook: want name and plays"}}}
	}
	pb := p.playbook(doc.Content[0])
	if len(p.problems) > 0 {
		sortProblems(p.problems)
		return nil, &InvalidError{Source: source, Problems: p.problems}
	}
	pb.Source = source
	return pb, nil
}

var yamlLineRe = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func yamlSyntaxProblem(err error) Problem {
	msg := err.Error()
	if m := yamlLineRe.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return Problem{Pos: Pos{Line: line}, Msg: "invalid YAML: " + m[2]}
	}
	return Problem{Msg: "invalid YAML: " + strings.TrimPrefix(msg, "yaml: ")}
}

type pbParser struct {
	source   string
	data     []byte // the input, so no position falls past its end
	problems []Problem
	// suggested holds "path.field" for fields an unknown key was probably
	// meant to be, so a typo is reported once, not also as "required".
	suggested map[string]bool
}

func (p *pbParser) typo(path, field string) bool { return p.suggested[joinPath(path, field)] }

func sortProblems(ps []Problem) {
	sort.SliceStable(ps, func(a, b int) bool {
		if ps[a].Pos.Line != ps[b].Pos.Line {
			return ps[a].Pos.Line < ps[b].Pos.Line
		}
		return ps[a].Pos.Column < ps[b].Pos.Column
	})
}

func (p *pbParser) errorf(n *yaml.Node, path, format string, args ...any) {
	line, col := yamltext.Clamp(p.data, n.Line, n.Column)
	p.problems = append(p.problems, Problem{Pos: Pos{line, col}, Path: path, Msg: fmt.Sprintf(format, args...)})
}

// isEmptyValue tells a document with nothing in it ("---", or only
// comments after it) from one holding an explicit null or a scalar.
func isEmptyValue(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null" && n.Value == "" && n.Style == 0
}

// fields walks a mapping node, reporting unknown and duplicate keys, and
// calls visit for each known key with its value node.
func (p *pbParser) fields(n *yaml.Node, path, what string, known []string, visit func(key string, v *yaml.Node)) bool {
	n = resolveAlias(n)
	if n.Kind != yaml.MappingNode {
		p.errorf(n, path, "want a mapping (%s), got %s", what, kindName(n))
		return false
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], resolveAlias(n.Content[i+1])
		kp := joinPath(path, k.Value)
		if seen[k.Value] {
			p.errorf(k, kp, "duplicate field")
			continue
		}
		seen[k.Value] = true
		if !contains(known, k.Value) {
			msg := fmt.Sprintf("unknown field %q in %s", k.Value, what)
			if s := suggest(k.Value, known); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
				if p.suggested == nil {
					p.suggested = map[string]bool{}
				}
				p.suggested[joinPath(path, s)] = true
			}
			p.errorf(k, "", "%s", msg)
			continue
		}
		visit(k.Value, v)
	}
	return true
}

func (p *pbParser) playbook(n *yaml.Node) *Playbook {
	pb := &Playbook{}
	var playsNode *yaml.Node
	ok := p.fields(n, "", "playbook", []string{"name", "plays"}, func(k string, v *yaml.Node) {
		switch k {
		case "name":
			pb.Name = p.str(v, "name")
		case "plays":
			playsNode = v
		}
	})
	if !ok {
		return pb
	}
	if playsNode == nil {
		if p.typo("", "plays") {
			return pb
		}
		p.errorf(n, "plays", "required: a playbook needs at least one play")
		return pb
	}
	if playsNode.Kind != yaml.SequenceNode {
		p.errorf(playsNode, "plays", "want a list of plays, got %s", kindName(playsNode))
		return pb
	}
	if len(playsNode.Content) == 0 {
		p.errorf(playsNode, "plays", "empty: a playbook needs at least one play")
	}
	for i, pn := range playsNode.Content {
		pb.Plays = append(pb.Plays, p.play(resolveAlias(pn), fmt.Sprintf("plays[%d]", i)))
	}
	return pb
}

func (p *pbParser) play(n *yaml.Node, path string) Play {
	pl := Play{Pos: Pos{n.Line, n.Column}}
	var stepsNode *yaml.Node
	hasHosts := false
	ok := p.fields(n, path, "play", []string{"name", "hosts", "serial", "max_fail_percentage", "any_errors_fatal", "steps"}, func(k string, v *yaml.Node) {
		fp := joinPath(path, k)
		switch k {
		case "name":
			pl.Name = p.str(v, fp)
		case "hosts":
			hasHosts = true
			pl.Hosts = strings.TrimSpace(p.str(v, fp))
			if pl.Hosts == "" && v.Kind == yaml.ScalarNode {
				p.errorf(v, fp, "empty selector: name groups, hosts or label=value")
			}
		case "serial":
			pl.Serial = p.serial(v, fp)
		case "max_fail_percentage":
			if pct, ok := p.int(v, fp); ok {
				if pct < 0 || pct > 100 {
					p.errorf(v, fp, "must be between 0 and 100, got %d", pct)
				}
				pl.MaxFailPercentage = &pct
			}
		case "any_errors_fatal":
			pl.AnyErrorsFatal = p.bool(v, fp)
		case "steps":
			stepsNode = v
		}
	})
	if !ok {
		return pl
	}
	if pl.Name == "" {
		pl.Name = path
	}
	if !hasHosts && !p.typo(path, "hosts") {
		p.errorf(n, joinPath(path, "hosts"), "required: which hosts the play runs on (e.g. all, masters, role=edge)")
	}
	switch {
	case stepsNode == nil && p.typo(path, "steps"):
	case stepsNode == nil:
		p.errorf(n, joinPath(path, "steps"), "required: a play needs at least one step")
	case stepsNode.Kind != yaml.SequenceNode:
		p.errorf(stepsNode, joinPath(path, "steps"), "want a list of steps, got %s", kindName(stepsNode))
	case len(stepsNode.Content) == 0:
		p.errorf(stepsNode, joinPath(path, "steps"), "empty: a play needs at least one step")
	default:
		for i, sn := range stepsNode.Content {
			pl.Steps = append(pl.Steps, p.step(resolveAlias(sn), fmt.Sprintf("%s.steps[%d]", path, i)))
		}
	}
	return pl
}

func (p *pbParser) step(n *yaml.Node, path string) StepRef {
	ref := StepRef{Pos: Pos{n.Line, n.Column}}
	if n.Kind == yaml.ScalarNode {
		ref.Name = strings.TrimSpace(n.Value)
		if ref.Name == "" {
			p.errorf(n, path, "empty step name")
		}
		return ref
	}
	hasName := false
	ok := p.fields(n, path, "step", []string{"name", "with", "timeout", "retries", "retry_delay", "when"}, func(k string, v *yaml.Node) {
		fp := joinPath(path, k)
		switch k {
		case "name":
			hasName = true
			ref.Name = strings.TrimSpace(p.str(v, fp))
			if ref.Name == "" && v.Kind == yaml.ScalarNode {
				p.errorf(v, fp, "empty step name")
			}
		case "with":
			ref.With = p.with(v, fp)
		case "timeout":
			ref.Timeout = p.duration(v, fp)
		case "retries":
			if r, ok := p.int(v, fp); ok {
				if r < 0 {
					p.errorf(v, fp, "must not be negative, got %d", r)
				}
				ref.Retries = r
			}
		case "retry_delay":
			ref.RetryDelay = p.duration(v, fp)
		case "when":
			s := p.str(v, fp)
			if v.Kind == yaml.ScalarNode {
				c, err := ParseCondition(s)
				if err != nil {
					p.errorf(v, fp, "%v", err)
				}
				ref.When = c
			}
		}
	})
	if ok && !hasName && !p.typo(path, "name") {
		p.errorf(n, joinPath(path, "name"), "required: which step to run")
	}
	return ref
}

func (p *pbParser) with(n *yaml.Node, path string) map[string]string {
	if n.Kind != yaml.MappingNode {
		p.errorf(n, path, "want a mapping of parameters, got %s", kindName(n))
		return nil
	}
	out := map[string]string{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], resolveAlias(n.Content[i+1])
		kp := joinPath(path, k.Value)
		if _, dup := out[k.Value]; dup {
			p.errorf(k, kp, "duplicate parameter")
			continue
		}
		if v.Kind != yaml.ScalarNode {
			p.errorf(v, kp, "want a scalar value, got %s", kindName(v))
			continue
		}
		out[k.Value] = v.Value
	}
	return out
}

func (p *pbParser) str(n *yaml.Node, path string) string {
	if n.Kind != yaml.ScalarNode {
		p.errorf(n, path, "want a string, got %s", kindName(n))
		return ""
	}
	return n.Value
}

func (p *pbParser) int(n *yaml.Node, path string) (int, bool) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
		p.errorf(n, path, "want an integer, got %s", describe(n))
		return 0, false
	}
	v, err := strconv.Atoi(n.Value)
	if err != nil {
		p.errorf(n, path, "want an integer, got %q", n.Value)
		return 0, false
	}
	return v, true
}

func (p *pbParser) bool(n *yaml.Node, path string) bool {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
		p.errorf(n, path, "want true or false, got %s", describe(n))
		return false
	}
	b, _ := strconv.ParseBool(n.Value)
	return b
}

func (p *pbParser) duration(n *yaml.Node, path string) time.Duration {
	if n.Kind != yaml.ScalarNode {
		p.errorf(n, path, "want a duration like 30s or 5m, got %s", kindName(n))
		return 0
	}
	d, err := time.ParseDuration(n.Value)
	if err != nil {
		p.errorf(n, path, "want a duration like 30s or 5m, got %q", n.Value)
		return 0
	}
	if d < 0 {
		p.errorf(n, path, "must not be negative, got %s", n.Value)
		return 0
	}
	return d
}

func (p *pbParser) serial(n *yaml.Node, path string) Serial {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!int" {
		c, err := strconv.Atoi(n.Value)
		if err != nil || c < 0 {
			p.errorf(n, path, "must be a host count >= 0 or a percentage like \"30%%\", got %s", n.Value)
			return Serial{}
		}
		return Serial{Count: c}
	}
	if n.Kind == yaml.ScalarNode && strings.HasSuffix(n.Value, "%") {
		pct, err := strconv.Atoi(strings.TrimSuffix(n.Value, "%"))
		if err != nil || pct < 1 || pct > 100 {
			p.errorf(n, path, "percentage must be between 1%% and 100%%, got %q", n.Value)
			return Serial{}
		}
		return Serial{Percent: pct}
	}
	p.errorf(n, path, "must be a host count or a percentage like \"30%%\", got %s", describe(n))
	return Serial{}
}

func resolveAlias(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return "a scalar"
	default:
		return "nothing"
	}
}

func describe(n *yaml.Node) string {
	if n.Kind == yaml.ScalarNode {
		return strconv.Quote(n.Value)
	}
	return kindName(n)
}

func joinPath(base, field string) string {
	if base == "" {
		return field
	}
	return base + "." + field
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// suggest returns the candidate closest to s when it is close enough to be a
// plausible typo, so errors can say "did you mean".
func suggest(s string, candidates []string) string {
	best, bestD := "", -1
	for _, c := range candidates {
		d := levenshtein(strings.ToLower(s), strings.ToLower(c))
		if bestD < 0 || d < bestD || (d == bestD && c < best) {
			best, bestD = c, d
		}
	}
	limit := max(2, len(s)/3)
	if bestD < 0 || bestD > limit {
		return ""
	}
	return best
}

func levenshtein(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

// Validate checks every step name against the registry and builds each step
// with its parameters, so a typo or a bad parameter is reported before any
// host is touched. All problems are returned at once.
func (pb *Playbook) Validate(r *Registry) error {
	if r == nil {
		return errors.New("validate playbook: no step registry")
	}
	_, err := pb.build(r)
	return err
}

// build instantiates every step of every play, in playbook order.
func (pb *Playbook) build(r *Registry) ([][]Step, error) {
	var problems []Problem
	names := r.Names()
	out := make([][]Step, len(pb.Plays))
	for i, pl := range pb.Plays {
		out[i] = make([]Step, len(pl.Steps))
		for j, ref := range pl.Steps {
			path := fmt.Sprintf("plays[%d].steps[%d]", i, j)
			f, ok := r.lookup(ref.Name)
			if !ok {
				msg := fmt.Sprintf("unknown step %q", ref.Name)
				if s := suggest(ref.Name, names); s != "" {
					msg += fmt.Sprintf(" (did you mean %q?)", s)
				}
				problems = append(problems, Problem{Pos: ref.Pos, Path: path, Msg: msg})
				continue
			}
			st, err := f(ref.With)
			if err != nil {
				problems = append(problems, Problem{Pos: ref.Pos, Path: path, Msg: fmt.Sprintf("step %q: %v", ref.Name, err)})
				continue
			}
			out[i][j] = st
		}
	}
	if len(problems) > 0 {
		sortProblems(problems)
		return nil, &InvalidError{Source: pb.Source, Problems: problems}
	}
	return out, nil
}
