package main

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/kubewright/kubewright/installer/inventory"
)

// runCLI runs kubewright with args and returns stdout, stderr and the error
// main would turn into an exit code.
func runCLI(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	root := newRootCmd()
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), errb.String(), err
}

const (
	sampleInv = "../../inventories/sample/inventory.yaml"
	goodInv   = "../../installer/inventory/testdata/good/weave-bastion.yaml"
	badInv    = "../../installer/inventory/testdata/bad/duplicates.yaml"
)

func TestInventoryValidate(t *testing.T) {
	t.Setenv("KW_SET", "x")
	t.Run("sample", func(t *testing.T) {
		out, _, err := runCLI(t, "inventory", "validate", "-i", sampleInv)
		if err != nil {
			t.Fatalf("validate sample: %v\n%s", err, out)
		}
		if want := "inventory OK: 9 hosts (3 masters, 3 etcd, 5 workers)\n"; out != want {
			t.Errorf("output = %q, want %q", out, want)
		}
	})
	t.Run("warnings", func(t *testing.T) {
		out, _, err := runCLI(t, "inventory", "validate", "-i", goodInv)
		if err != nil {
			t.Fatalf("validate: %v", err)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 3 || !strings.HasPrefix(lines[0], "warning: "+goodInv+":16:11: spec.groups.etcd: etcd has 2 members") ||
			lines[2] != "inventory OK: 4 hosts (3 masters, 2 etcd, 0 workers), 2 warnings" {
			t.Errorf("output:\n%s", out)
		}
	})
	t.Run("errors", func(t *testing.T) {
		out, _, err := runCLI(t, "inventory", "validate", "-i", badInv)
		if !isBadInput(err) || exitCodeOf(err) != exitBadInput {
			t.Fatalf("error = %v, want bad input (exit 2)", err)
		}
		if !strings.Contains(err.Error(), "3 errors") {
			t.Errorf("error = %v", err)
		}
		want := badInv + ":10:16: spec.hosts[1].address: duplicate address 10.0.0.11 (also used by master1 at line 8); fix: give each host its own address\n"
		if !strings.HasPrefix(out, want) || strings.Count(out, "\n") != 4 || strings.Contains(out, "inventory OK") {
			t.Errorf("output:\n%s", out)
		}
	})
	t.Run("json", func(t *testing.T) {
		out, _, err := runCLI(t, "inventory", "validate", "-i", badInv, "-o", "json")
		if !isBadInput(err) {
			t.Fatalf("error = %v, want bad input", err)
		}
		var rep validateReport
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("not JSON: %v\n%s", err, out)
		}
		if rep.OK || len(rep.Errors) != 3 || rep.Errors[0].Line != 10 || rep.Errors[0].Path != "spec.hosts[1].address" || len(rep.Warnings) != 1 {
			t.Errorf("report = %+v", rep)
		}
	})
	t.Run("missing file", func(t *testing.T) {
		_, _, err := runCLI(t, "inventory", "validate", "-i", "does-not-exist.yaml")
		if !isBadInput(err) || !strings.Contains(err.Error(), "does-not-exist.yaml") {
			t.Errorf("error = %v, want bad input naming the file", err)
		}
	})
	t.Run("no -i", func(t *testing.T) {
		_, _, err := runCLI(t, "inventory", "validate")
		if err == nil || !strings.Contains(err.Error(), "inventory") {
			t.Errorf("error = %v, want the required flag named", err)
		}
	})
}

func exitCodeOf(err error) int {
	// exitCode prints the error; keep test output clean.
	stderr := os.Stderr
	defer func() { os.Stderr = stderr }()
	devnull, _ := os.Open(os.DevNull)
	defer devnull.Close()
	os.Stderr = devnull
	return exitCode(err)
}

func TestInventoryShow(t *testing.T) {
	t.Setenv("KW_SET", "x")
	cl, err := inventory.Load(goodInv)
	if err != nil {
		t.Fatal(err)
	}
	wantYAML, _ := cl.Render(inventory.FormatYAML)
	for _, o := range []string{"text", "yaml"} {
		t.Run(o, func(t *testing.T) {
			out, stderr, err := runCLI(t, "inventory", "show", "-i", goodInv, "-o", o)
			if err != nil {
				t.Fatal(err)
			}
			if out != string(wantYAML) {
				t.Errorf("stdout differs from the defaulted inventory:\n%s", out)
			}
			if strings.Count(stderr, "warning: ") != 2 {
				t.Errorf("stderr should carry the 2 warnings:\n%s", stderr)
			}
			// The output is itself a valid inventory.
			if _, _, err := inventory.Parse("shown.yaml", []byte(out)); err != nil {
				t.Errorf("show output does not parse: %v", err)
			}
		})
	}
	t.Run("json", func(t *testing.T) {
		out, _, err := runCLI(t, "inventory", "show", "-i", goodInv, "--output", "json")
		if err != nil {
			t.Fatal(err)
		}
		var got inventory.Cluster
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("not JSON: %v", err)
		}
		if got.Spec.Network.MTU != 1376 || len(got.Spec.Hosts) != 4 || got.Spec.Hosts[1].Groups[0] != "etcd" {
			t.Errorf("json = %+v", got.Spec)
		}
	})
	t.Run("invalid", func(t *testing.T) {
		out, _, err := runCLI(t, "inventory", "show", "-i", badInv)
		if !isBadInput(err) || out != "" {
			t.Fatalf("err = %v, stdout = %q; want bad input and no output", err, out)
		}
		if !strings.Contains(err.Error(), "duplicate host name \"master1\"") {
			t.Errorf("error does not list the problems: %v", err)
		}
	})
	t.Run("bad -o", func(t *testing.T) {
		_, _, err := runCLI(t, "inventory", "show", "-i", goodInv, "-o", "toml")
		if !isBadInput(err) {
			t.Errorf("err = %v, want bad input", err)
		}
	})
}
