package engine_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/kubewright/kubewright/installer/internal/yamltext"

	"github.com/kubewright/kubewright/installer/engine"
)

const fuzzSource = "fuzz.yaml"

// FuzzLoadPlaybook: no input may panic; a refusal is an *InvalidError whose
// every problem has a message and, unless the YAML itself could not be read
// or is empty, a line and column inside the input, and whose rendering puts
// "fuzz.yaml:LINE:COL" before each problem; an accepted playbook satisfies
// the invariants Run relies on, and rendered back to YAML it loads to the
// same playbook.
func FuzzLoadPlaybook(f *testing.F) {
	for _, pattern := range []string{"testdata/playbooks/*.yaml", "../../playbooks/*.yaml"} {
		files, _ := filepath.Glob(pattern)
		for _, p := range files {
			data, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	f.Add([]byte("name: x\nplays: [{hosts: all, steps: [a]}]\n"))
	f.Add([]byte("name: x\nplays:\n  - &p {hosts: all, steps: [a, {name: b, when: host in masters}]}\n  - *p\n"))
	f.Add([]byte("name: x\nplays: [{hosts: all, serial: 30%, max_fail_percentage: 0, steps: [{name: a, retries: 2, retry_delay: 1s, timeout: 1m}]}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		pb, err := engine.LoadPlaybook(fuzzSource, data)
		if err != nil {
			checkInvalid(t, err, data)
			return
		}
		checkPlaybook(t, pb)
		out := renderPlaybook(t, pb)
		pb2, err := engine.LoadPlaybook(fuzzSource, out)
		if err != nil {
			t.Fatalf("rendered playbook does not load back: %v\n%s", err, out)
		}
		if a, b := essence(pb), essence(pb2); !reflect.DeepEqual(a, b) {
			t.Fatalf("round trip changed the playbook\n%+v\n---\n%+v\nrendered:\n%s", a, b, out)
		}
	})
}

func checkInvalid(t *testing.T, err error, data []byte) {
	t.Helper()
	var ie *engine.InvalidError
	if !errors.As(err, &ie) || len(ie.Problems) == 0 || ie.Source != fuzzSource {
		t.Fatalf("error is %T %v, want a non-empty *InvalidError for %s", err, err, fuzzSource)
	}
	lines := yamltext.Lines(data)
	rendered := strings.Split(err.Error(), "\n")
	at := 0
	for _, p := range ie.Problems {
		if p.Msg == "" {
			t.Fatalf("problem without a message: %+v", p)
		}
		unpositioned := strings.HasPrefix(p.Msg, "invalid YAML: ") || strings.HasPrefix(p.Msg, "empty playbook")
		if p.Pos.Line == 0 && !unpositioned {
			t.Fatalf("problem without a position: %+v", p)
		}
		if p.Pos.Line > lines || p.Pos.Line < 0 || (p.Pos.Line > 0 && p.Pos.Column < 1 && !unpositioned) {
			t.Fatalf("problem at %d:%d of a %d-line input: %+v", p.Pos.Line, p.Pos.Column, lines, p)
		}
		// Messages may span lines (YAML errors do not, but stay general):
		// find the line that starts this problem.
		prefix := fuzzSource
		if p.Pos.Line > 0 {
			prefix += ":" + strconv.Itoa(p.Pos.Line)
			if p.Pos.Column > 0 {
				prefix += ":" + strconv.Itoa(p.Pos.Column)
			}
		}
		prefix += ": "
		for at < len(rendered) && !strings.HasPrefix(rendered[at], prefix) {
			at++
		}
		if at == len(rendered) {
			t.Fatalf("rendered error lacks %q for %+v:\n%s", prefix, p, err)
		}
		at++
	}
	for i := 1; i < len(ie.Problems); i++ {
		a, b := ie.Problems[i-1].Pos, ie.Problems[i].Pos
		if a.Line > b.Line || (a.Line == b.Line && a.Column > b.Column) {
			t.Fatalf("problems not sorted by position: %+v before %+v", a, b)
		}
	}
}

// checkPlaybook asserts what the parser guarantees Run: at least one play,
// each with a selector and at least one named step, and every number in
// range.
func checkPlaybook(t *testing.T, pb *engine.Playbook) {
	t.Helper()
	if pb.Source != fuzzSource || len(pb.Plays) == 0 {
		t.Fatalf("accepted playbook with source %q and %d plays", pb.Source, len(pb.Plays))
	}
	for i, pl := range pb.Plays {
		if pl.Name == "" || pl.Hosts == "" || pl.Hosts != strings.TrimSpace(pl.Hosts) || len(pl.Steps) == 0 || pl.Pos.Line < 1 {
			t.Fatalf("play %d: %+v", i, pl)
		}
		if s := pl.Serial; s.Count < 0 || s.Percent < 0 || s.Percent > 100 || (s.Count > 0 && s.Percent > 0) {
			t.Fatalf("play %d: serial %+v", i, s)
		}
		if m := pl.MaxFailPercentage; m != nil && (*m < 0 || *m > 100) {
			t.Fatalf("play %d: max_fail_percentage %d", i, *m)
		}
		for n := range 7 {
			if b := pl.Serial.BatchSize(n); (n == 0 && b != 0) || (n > 0 && (b < 1 || b > n)) {
				t.Fatalf("play %d: serial %+v gives batches of %d for %d hosts", i, pl.Serial, b, n)
			}
		}
		for j, st := range pl.Steps {
			if st.Name == "" || st.Name != strings.TrimSpace(st.Name) || st.Retries < 0 || st.Timeout < 0 || st.RetryDelay < 0 || st.Pos.Line < 1 {
				t.Fatalf("play %d step %d: %+v", i, j, st)
			}
			if st.When != nil && (st.When.Source == "" || st.When.Source != strings.TrimSpace(st.When.Source)) {
				t.Fatalf("play %d step %d: when %q", i, j, st.When.Source)
			}
		}
	}
}

// renderPlaybook writes pb as a playbook file, every string double-quoted
// so that no value is re-read as another type.
func renderPlaybook(t *testing.T, pb *engine.Playbook) []byte {
	t.Helper()
	str := func(s string) *yaml.Node {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Style: yaml.DoubleQuotedStyle, Value: s}
	}
	num := func(n int) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.Itoa(n)} }
	mapping := func(kv ...any) *yaml.Node {
		m := &yaml.Node{Kind: yaml.MappingNode}
		for i := 0; i < len(kv); i += 2 {
			m.Content = append(m.Content, str(kv[i].(string)), kv[i+1].(*yaml.Node))
		}
		return m
	}
	plays := &yaml.Node{Kind: yaml.SequenceNode}
	for _, pl := range pb.Plays {
		steps := &yaml.Node{Kind: yaml.SequenceNode}
		for _, st := range pl.Steps {
			s := mapping("name", str(st.Name))
			if st.With != nil {
				with := mapping()
				for _, k := range sortedWith(st.With) {
					with.Content = append(with.Content, str(k), str(st.With[k]))
				}
				s.Content = append(s.Content, str("with"), with)
			}
			if st.Timeout > 0 {
				s.Content = append(s.Content, str("timeout"), str(st.Timeout.String()))
			}
			if st.Retries > 0 {
				s.Content = append(s.Content, str("retries"), num(st.Retries))
			}
			if st.RetryDelay > 0 {
				s.Content = append(s.Content, str("retry_delay"), str(st.RetryDelay.String()))
			}
			if st.When != nil {
				s.Content = append(s.Content, str("when"), str(st.When.Source))
			}
			steps.Content = append(steps.Content, s)
		}
		p := mapping("name", str(pl.Name), "hosts", str(pl.Hosts))
		switch {
		case pl.Serial.Percent > 0:
			p.Content = append(p.Content, str("serial"), str(fmt.Sprintf("%d%%", pl.Serial.Percent)))
		case pl.Serial.Count > 0:
			p.Content = append(p.Content, str("serial"), num(pl.Serial.Count))
		}
		if pl.MaxFailPercentage != nil {
			p.Content = append(p.Content, str("max_fail_percentage"), num(*pl.MaxFailPercentage))
		}
		if pl.AnyErrorsFatal {
			p.Content = append(p.Content, str("any_errors_fatal"), &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: "true"})
		}
		p.Content = append(p.Content, str("steps"), steps)
		plays.Content = append(plays.Content, p)
	}
	out, err := yaml.Marshal(mapping("name", str(pb.Name), "plays", plays))
	if err != nil {
		t.Fatalf("render playbook: %v", err)
	}
	return out
}

// essence drops what a rendering cannot keep (positions) and replaces
// conditions by their source.
func essence(pb *engine.Playbook) any {
	type step struct {
		Name          string
		With          map[string]string
		Timeout       string
		Retries       int
		RetryDelay    string
		When          string
		HasConditions bool
	}
	type play struct {
		Name, Hosts    string
		Serial         engine.Serial
		MaxFail        int
		HasMaxFail     bool
		AnyErrorsFatal bool
		Steps          []step
	}
	var out []play
	for _, pl := range pb.Plays {
		p := play{Name: pl.Name, Hosts: pl.Hosts, Serial: pl.Serial, AnyErrorsFatal: pl.AnyErrorsFatal}
		if pl.MaxFailPercentage != nil {
			p.MaxFail, p.HasMaxFail = *pl.MaxFailPercentage, true
		}
		for _, st := range pl.Steps {
			s := step{Name: st.Name, With: st.With, Timeout: st.Timeout.String(), Retries: st.Retries, RetryDelay: st.RetryDelay.String()}
			if len(s.With) == 0 {
				s.With = nil
			}
			if st.When != nil {
				s.When, s.HasConditions = st.When.Source, true
			}
			p.Steps = append(p.Steps, s)
		}
		out = append(out, p)
	}
	return struct {
		Name  string
		Plays []play
	}{pb.Name, out}
}

func sortedWith(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
