package remote_test

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/kubewright/kubewright/installer/remote"
)

func TestRedactor(t *testing.T) {
	tests := []struct {
		name    string
		secrets []string
		in      string
		want    string
	}{
		{name: "nothing registered", in: "pw=hunter2", want: "pw=hunter2"},
		{name: "every occurrence", secrets: []string{"hunter2"}, in: "a hunter2 b hunter2", want: "a [REDACTED] b [REDACTED]"},
		{name: "longest first", secrets: []string{"abc", "abcdef"}, in: "x abcdef y abc", want: "x [REDACTED] y [REDACTED]"},
		{name: "empty ignored", secrets: []string{""}, in: "text", want: "text"},
		{name: "trailing newline variant", secrets: []string{"tok\n"}, in: "tok", want: "[REDACTED]"},
		{name: "short secrets too", secrets: []string{"x1"}, in: "ax1b", want: "a[REDACTED]b"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := remote.NewRedactor(tc.secrets...)
			if got := r.Redact(tc.in); got != tc.want {
				t.Errorf("Redact(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
	var nilR *remote.Redactor
	if nilR.Redact("a") != "a" {
		t.Error("nil redactor must pass text through")
	}
}

func TestRedactorHandler(t *testing.T) {
	r := remote.NewRedactor()
	var buf bytes.Buffer
	log := slog.New(r.Handler(slog.NewTextHandler(&buf, nil)))
	r.Add("s3cret") // added after the logger was built: still applies
	log = log.With("pre", "with s3cret")
	log.WithGroup("g").Info("msg s3cret", "k", "v s3cret", "err", errors.New("failed: s3cret"), slog.Group("sub", "x", "s3cret"), "n", 3)
	out := buf.String()
	if strings.Contains(out, "s3cret") {
		t.Fatalf("secret leaked: %s", out)
	}
	for _, want := range []string{`msg="msg [REDACTED]"`, `pre="with [REDACTED]"`, `g.k="v [REDACTED]"`, `g.err="failed: [REDACTED]"`, `g.sub.x=[REDACTED]`, `g.n=3`} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %s in %s", want, out)
		}
	}
}

func TestQuote(t *testing.T) {
	tests := map[string]string{
		"":               "''",
		"/etc/kubelet":   "/etc/kubelet",
		"a b":            "'a b'",
		"it's":           `'it'"'"'s'`,
		"$(reboot)":      "'$(reboot)'",
		"x;rm -rf /":     "'x;rm -rf /'",
		"user:group,1.2": "user:group,1.2",
	}
	for in, want := range tests {
		if got := remote.Quote(in); got != want {
			t.Errorf("Quote(%q) = %s, want %s", in, got, want)
		}
	}
}
