package inventory

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse: no input may panic, every rejection is a *ValidationError whose
// entries are complete, and every accepted inventory renders to YAML that
// parses back to the same rendering.
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
		c, _, err := Parse("fuzz.yaml", data, WithLookupEnv(fakeEnv))
		if err != nil {
			var ve *ValidationError
			if !errors.As(err, &ve) || len(ve.Errors) == 0 {
				t.Fatalf("error is %T %v, want a non-empty *ValidationError", err, err)
			}
			for _, fe := range ve.Errors {
				if fe.Line < 1 || fe.Col < 1 || fe.Msg == "" || fe.Fix == "" {
					t.Fatalf("incomplete error %+v", fe)
				}
			}
			return
		}
		out, err := c.Render(FormatYAML)
		if err != nil {
			t.Fatalf("render accepted inventory: %v", err)
		}
		c2, _, err := Parse("fuzz.yaml", out, WithLookupEnv(fakeEnv))
		if err != nil {
			t.Fatalf("rendered inventory does not parse back: %v\n%s", err, out)
		}
		out2, _ := c2.Render(FormatYAML)
		if string(out) != string(out2) {
			t.Fatalf("round trip changed the result\n%s\n---\n%s", out, out2)
		}
	})
}
