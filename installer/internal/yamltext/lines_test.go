package yamltext

import (
	"errors"
	"testing"

	"gopkg.in/yaml.v3"
)

func TestLines(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want int
	}{
		{"empty", "", 1},
		{"no final break", "a: 1", 1},
		{"final LF", "a: 1\n", 2},
		{"CRLF is one break", "a: 1\r\nb: 2", 2},
		{"lone CR", "a: 1\rb: 2", 2},
		{"NEL LS PS", "a\u0085b\u2028c\u2029d", 4},
		{"UTF-16BE LS", "\xfe\xff\x20\x28\x00x", 2},
		{"UTF-16LE LS", "\xff\xfe\x28\x20x\x00", 2},
		{"UTF-16BE: 0x0A inside a character is no break", "\xfe\xff\x0a\x41", 1},
		{"UTF-16LE LF", "\xff\xfea\x00\n\x00b\x00", 2},
	} {
		if got := Lines([]byte(tc.in)); got != tc.want {
			t.Errorf("%s: Lines(%q) = %d, want %d", tc.name, tc.in, got, tc.want)
		}
	}
}

func TestEndAndClamp(t *testing.T) {
	for _, tc := range []struct {
		in        string
		line, col int
	}{
		{"", 1, 1},
		{"---", 1, 4},
		{"a: 1\n", 2, 1},
		{"a: 1\r\nbé", 2, 3},
	} {
		if l, c := End([]byte(tc.in)); l != tc.line || c != tc.col {
			t.Errorf("End(%q) = %d:%d, want %d:%d", tc.in, l, c, tc.line, tc.col)
		}
	}
	if l, c := Clamp([]byte("---"), 2, 1); l != 1 || c != 4 {
		t.Errorf("Clamp(---, 2:1) = %d:%d, want 1:4", l, c)
	}
	if l, c := Clamp([]byte("a: 1\nb: 2"), 2, 4); l != 2 || c != 4 {
		t.Errorf("Clamp of a position inside the input moved it to %d:%d", l, c)
	}
}

// TestLinesAgreesWithParser: the line the parser puts on the last node of
// each input is never past Lines.
func TestLinesAgreesWithParser(t *testing.T) {
	for _, in := range []string{
		"\xfe\xff\x20\x28\x00x",
		"\xff\xfe\x28\x20x\x00",
		"a: 1\u2028b: 2",
		"a: 1\r\rb: 2",
		"---\n",
	} {
		var doc yaml.Node
		err := yaml.Unmarshal([]byte(in), &doc)
		var te *yaml.TypeError
		if err != nil && !errors.As(err, &te) {
			t.Fatalf("%q: %v", in, err)
		}
		last := lastLine(&doc)
		if n := Lines([]byte(in)); last > n {
			t.Errorf("%q: parser puts a node on line %d, Lines says %d", in, last, n)
		}
		if last < 2 {
			t.Errorf("%q: parser puts the last node on line %d, want the input to span lines", in, last)
		}
	}
}

func lastLine(n *yaml.Node) int {
	max := n.Line
	for _, c := range n.Content {
		if l := lastLine(c); l > max {
			max = l
		}
	}
	return max
}
