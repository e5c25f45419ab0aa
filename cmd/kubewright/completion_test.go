package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// asCLIEnv makes the test binary behave as the kubewright binary, so shell
// scripts under test can call "kubewright" the way an operator's shell does.
const asCLIEnv = "KUBEWRIGHT_TEST_AS_CLI"

func TestMain(m *testing.M) {
	if os.Getenv(asCLIEnv) == "1" {
		main() // exits
	}
	os.Exit(m.Run())
}

// cliOnPath puts a "kubewright" that is this test binary (running main) on a
// fresh PATH directory and returns the environment to run shells with.
func cliOnPath(t *testing.T) []string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.Symlink(self, filepath.Join(dir, "kubewright")); err != nil {
		t.Fatal(err)
	}
	return append(os.Environ(), asCLIEnv+"=1", "PATH="+dir+string(os.PathListSeparator)+os.Getenv("PATH"))
}

func TestCompletionScripts(t *testing.T) {
	for _, tc := range []struct {
		shell string
		want  []string // what makes it that shell's script for kubewright
	}{
		{"bash", []string{"# bash completion V2 for kubewright", "__start_kubewright()", "complete -o default -F __start_kubewright kubewright", " __complete "}},
		{"zsh", []string{"#compdef kubewright", "compdef _kubewright kubewright", " __complete "}},
	} {
		t.Run(tc.shell, func(t *testing.T) {
			out, _, err := runCLI(t, "completion", tc.shell)
			if code := exitCodeQuiet(err); code != exitOK {
				t.Fatalf("completion %s: exit %d: %v", tc.shell, code, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("completion %s script lacks %q", tc.shell, w)
				}
			}
		})
	}
	// Both scripts ask the binary itself (kubewright __complete ...) for
	// candidates, so what they complete is what __complete answers.
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"__complete", ""}, []string{"install", "inventory", "lab", "bundle", "check", "certs"}},
		{[]string{"__complete", "inventory", ""}, []string{"validate", "show"}},
		{[]string{"__complete", "lab", ""}, []string{"up", "down", "status", "ssh"}},
	} {
		out, _, err := runCLI(t, tc.args...)
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		got := map[string]bool{}
		for _, l := range strings.Split(out, "\n") {
			got[strings.SplitN(l, "\t", 2)[0]] = true
		}
		for _, w := range tc.want {
			if !got[w] {
				t.Errorf("kubewright %s: no candidate %q in:\n%s", strings.Join(tc.args, " "), w, out)
			}
		}
	}
}

// TestBashCompletionInBash runs what the README tells operators to run,
// source <(kubewright completion bash), in a real bash, and asks the loaded
// completion function to complete command lines.
func TestBashCompletionInBash(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatalf("bash not found: %v", err)
	}
	// The script uses the bash-completion package's _get_comp_words_by_ref.
	// Where that package is missing (CI images), a minimal stand-in splits
	// words the way bash itself does for these plain command lines.
	const script = `
if [ -r /usr/share/bash-completion/bash_completion ]; then . /usr/share/bash-completion/bash_completion; fi
if ! declare -F _get_comp_words_by_ref >/dev/null; then
	_get_comp_words_by_ref() {
		words=("${COMP_WORDS[@]}"); cword=$COMP_CWORD
		cur=${COMP_WORDS[COMP_CWORD]}; prev=${COMP_WORDS[COMP_CWORD-1]}
	}
fi
source <(kubewright completion bash)
complete -p kubewright
try() {
	COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}; COMPREPLY=()
	__start_kubewright kubewright "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
	echo "== $*"
	printf '%s\n' "${COMPREPLY[@]}"
}
try kubewright inv
try kubewright inventory ''
try kubewright lab st
try kubewright bundle create --fr
`
	cmd := exec.Command(bash, "--norc", "--noprofile", "-c", script)
	cmd.Env = append(cliOnPath(t), "COLUMNS=200")
	// stderr has bash's "compopt: not currently executing completion
	// function": the function runs outside a real <TAB>, which is all it misses.
	var stderr strings.Builder
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	out := string(b)
	if err != nil {
		t.Fatalf("bash: %v\n%s\n%s", err, out, stderr.String())
	}
	if !strings.Contains(out, "complete -o default -F __start_kubewright kubewright") {
		t.Errorf("sourcing the script registered no completion for kubewright:\n%s", out)
	}
	sections := map[string][]string{}
	var cur string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "== ") {
			cur = strings.TrimPrefix(l, "== ")
			continue
		}
		if cur != "" && strings.TrimSpace(l) != "" {
			sections[cur] = append(sections[cur], strings.Fields(l)[0])
		}
	}
	for line, want := range map[string]string{
		"kubewright inv":                "inventory",
		"kubewright inventory ":         "show validate",
		"kubewright lab st":             "status",
		"kubewright bundle create --fr": "--from",
	} {
		got := sections[line]
		sort.Strings(got)
		if strings.Join(got, " ") != want {
			t.Errorf("completing %q gave %q, want %q\nbash stdout:\n%s\nstderr:\n%s", line, got, want, out, stderr.String())
		}
	}
}

// TestFlagValueNames: cobra shows a back-quoted word in a flag's usage as the
// flag's value name ("--from make artifacts"), so a usage that quotes a
// command in backticks garbles --help. Every flag's value name must be its
// type or one upper-case placeholder.
func TestFlagValueNames(t *testing.T) {
	placeholder := regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`)
	types := map[string]bool{"": true, "string": true, "int": true, "duration": true, "strings": true, "stringArray": true, "uint": true, "float": true}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		c.Flags().VisitAll(func(f *pflag.Flag) {
			name, _ := pflag.UnquoteUsage(f)
			if !types[name] && !placeholder.MatchString(name) {
				t.Errorf("%s --%s: value name %q in --help (usage %q); reword the usage or quote one placeholder like `DIR`", c.CommandPath(), f.Name, name, f.Usage)
			}
		})
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRootCmd())

	out, _, err := runCLI(t, "bundle", "create", "--help")
	if err != nil {
		t.Fatal(err)
	}
	var fromLine string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "--from") {
			fromLine = strings.TrimSpace(l)
		}
	}
	if !regexp.MustCompile(`^--from DIR\s+artifacts DIR with a manifest\.yaml`).MatchString(fromLine) {
		t.Errorf("bundle create --help shows %q, want --from DIR and its description", fromLine)
	}
}

// TestOutputFlagAsDocumented holds the commands to what the -o help says:
// commands that take -o refuse values they do not support, before doing
// anything, and inventory show's yaml is its text output.
func TestOutputFlagAsDocumented(t *testing.T) {
	state := t.TempDir()
	for _, args := range [][]string{
		{"check", "-i", sampleInv},
		{"inventory", "validate", "-i", sampleInv},
		{"inventory", "show", "-i", sampleInv},
		{"certs", "check", "-i", certsInv},
		{"certs", "renew", "-i", certsInv},
		{"install", "-i", certsInv},
		{"run", "-i", sampleInv, "check"},
		{"plan", "-i", sampleInv, "check"},
		{"bundle", "inspect", state},
		{"bundle", "verify", state},
		{"bundle", "create", filepath.Join(state, "b.tar.gz"), "--from", state},
	} {
		t.Run(strings.Join(args[:2], " "), func(t *testing.T) {
			_, _, err := runCLI(t, append(args, "--state-dir", state, "-o", "xml")...)
			if !isBadInput(err) || !strings.Contains(err.Error(), `"xml"`) {
				t.Fatalf("-o xml: err = %v, want bad input naming the format", err)
			}
		})
	}
	if entries, _ := os.ReadDir(state); len(entries) != 0 {
		t.Errorf("a refused -o still wrote to the state directory: %v", entries)
	}
	text, _, err := runCLI(t, "inventory", "show", "-i", sampleInv)
	if err != nil {
		t.Fatal(err)
	}
	yaml, _, err := runCLI(t, "inventory", "show", "-i", sampleInv, "-o", "yaml")
	if err != nil || yaml != text {
		t.Errorf("inventory show -o yaml differs from its text output (err %v)", err)
	}
}
