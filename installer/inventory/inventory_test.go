package inventory

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	goldenfile "github.com/kubewright/kubewright/internal/golden"
)

// fakeEnv is the environment the warning checks see in tests: KW_SET is set,
// KW_LONG holds a VRRP password longer than keepalived uses, nothing else.
func fakeEnv(name string) (string, bool) {
	switch name {
	case "KW_SET":
		return "x", true
	case "KW_LONG":
		return "123456789", true
	}
	return "", false
}

// checkGolden compares got with the golden file at path (rewritten with -update).
func checkGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	goldenfile.Assert(t, path, got)
}

func renderFindings(errs []FieldError, warns []Warning) []byte {
	var b bytes.Buffer
	for _, e := range errs {
		b.WriteString(e.Error())
		b.WriteByte('\n')
	}
	for _, w := range warns {
		b.WriteString("warning: ")
		b.WriteString(w.String())
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// TestBadInventories pins the exact message list for each broken file. Every
// error must carry a position, a path (unless file-level) and a fix.
func TestBadInventories(t *testing.T) {
	files, err := filepath.Glob("testdata/bad/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata/bad files: %v", err)
	}
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(strings.TrimSuffix(name, ".yaml"), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			c, warns, err := Parse(name, data, WithLookupEnv(fakeEnv))
			if err == nil {
				t.Fatalf("Parse accepted a bad inventory")
			}
			if c != nil {
				t.Errorf("Parse returned a cluster together with an error")
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("error is %T, want *ValidationError: %v", err, err)
			}
			if len(ve.Warnings) != len(warns) {
				t.Errorf("ValidationError has %d warnings, Parse returned %d", len(ve.Warnings), len(warns))
			}
			for _, fe := range ve.Errors {
				if fe.File != name || fe.Line < 1 || fe.Col < 1 || fe.Msg == "" || fe.Fix == "" {
					t.Errorf("incomplete error %+v", fe)
				}
			}
			checkGolden(t, strings.TrimSuffix(f, ".yaml")+".golden", renderFindings(ve.Errors, ve.Warnings))
		})
	}
}

// TestGoodInventories pins the defaulted result and checks that it reads back
// to itself: show's output is a valid inventory with the same meaning.
func TestGoodInventories(t *testing.T) {
	files, err := filepath.Glob("testdata/good/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata/good files: %v", err)
	}
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(strings.TrimSuffix(name, ".yaml"), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			c, warns, err := Parse(name, data, WithLookupEnv(fakeEnv))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			out, err := c.Render(FormatYAML)
			if err != nil {
				t.Fatal(err)
			}
			got := append(renderFindings(nil, warns), out...)
			checkGolden(t, strings.TrimSuffix(f, ".yaml")+".golden", got)

			c2, _, err := Parse(name, out, WithLookupEnv(fakeEnv))
			if err != nil {
				t.Fatalf("show output does not parse back: %v\n%s", err, out)
			}
			out2, err := c2.Render(FormatYAML)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, out2) {
				t.Errorf("round trip changed the result\n--- first ---\n%s\n--- second ---\n%s", out, out2)
			}
		})
	}
}

// TestSampleInventory keeps inventories/sample valid and warning-free, since
// operators copy it.
func TestSampleInventory(t *testing.T) {
	c, err := Load("../../inventories/sample/inventory.yaml", WithLookupEnv(fakeEnv))
	if err != nil {
		t.Fatalf("sample inventory: %v", err)
	}
	if len(c.Warnings) > 0 {
		t.Errorf("sample inventory has warnings: %v", c.Warnings)
	}
	if got := len(c.Masters()); got != 3 {
		t.Errorf("sample has %d masters, want 3", got)
	}
}

// TestRepositoryInventories keeps every inventory shipped under inventories/
// loadable without errors or warnings, and written in the current schema:
// operators copy these files, so whatever they show is what new inventories
// will say. The legacy spec.storage, spec.logging and spec.monitoring
// sections are migrated silently by Load (no warning), so they are looked
// for in the file itself.
func TestRepositoryInventories(t *testing.T) {
	var files []string
	err := filepath.WalkDir("../../inventories", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && (strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml")) {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("list inventories: %v", err)
	}
	// sample, lab and vagrant today; fewer means the walk went wrong.
	if len(files) < 3 {
		t.Fatalf("found only %d inventories under inventories/: %v", len(files), files)
	}
	for _, f := range files {
		t.Run(filepath.ToSlash(strings.TrimPrefix(f, "../../inventories/")), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			_, warns, err := Parse(f, data, WithLookupEnv(fakeEnv))
			if err != nil {
				t.Errorf("does not load: %v", err)
			}
			for _, w := range warns {
				t.Errorf("warning: %v", w)
			}
			for _, sec := range legacySections(t, data) {
				t.Errorf("uses the earlier spelling spec.%s; write it under spec.addons.%s", sec, sec)
			}
		})
	}
}

// legacySections returns the legacy add-on sections (storage, logging,
// monitoring directly under spec) that data writes.
func legacySections(t *testing.T, data []byte) []string {
	t.Helper()
	var doc struct {
		Spec map[string]yaml.Node `yaml:"spec"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("decode: %v", err)
	}
	var out []string
	for _, sec := range []string{"storage", "logging", "monitoring"} {
		if _, ok := doc.Spec[sec]; ok {
			out = append(out, sec)
		}
	}
	return out
}
