package engine

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/kubewright/kubewright/installer/remote"
)

// Redacted replaces secret values in logs, the journal and events.
const Redacted = "[REDACTED]"

// newRedactor combines literal secrets and an optional custom function.
// Longer secrets are replaced first so a secret containing another is not
// left half-visible.
func newRedactor(secrets []string, custom func(string) string) func(string) string {
	var vals []string
	for _, s := range secrets {
		if s != "" {
			vals = append(vals, s)
		}
	}
	sort.Slice(vals, func(i, j int) bool { return len(vals[i]) > len(vals[j]) })
	var rep *strings.Replacer
	if len(vals) > 0 {
		pairs := make([]string, 0, 2*len(vals))
		for _, v := range vals {
			pairs = append(pairs, v, Redacted)
		}
		rep = strings.NewReplacer(pairs...)
	}
	return func(s string) string {
		if rep != nil {
			s = rep.Replace(s)
		}
		if custom != nil {
			s = custom(s)
		}
		return s
	}
}

// hostLog is the per-host log file with every command's full output. It opens
// the file per record rather than holding it, so a 500-host run does not keep
// 500 descriptors next to 500 SSH connections.
type hostLog struct {
	path   string
	redact func(string) string
	now    func() time.Time

	mu  sync.Mutex
	err error
}

func (l *hostLog) write(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err == nil {
		_, err = io.WriteString(f, l.redact(s))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil && l.err == nil {
		l.err = err
	}
}

// Write lets slog handlers write step logs into the host log (redacted).
func (l *hostLog) Write(p []byte) (int, error) {
	l.write(string(p))
	return len(p), nil
}

func (l *hostLog) stamp() string { return l.now().UTC().Format(time.RFC3339Nano) }

// loggedHost records every operation on a host into its log, so an operator
// can see exactly what ran and what it printed, without secrets.
type loggedHost struct {
	inner  remote.Host
	log    *hostLog
	logger *slog.Logger // optional: one debug line per command (--verbose)
	now    func() time.Time
}

var _ remote.Host = (*loggedHost)(nil)

func (h *loggedHost) Name() string { return h.inner.Name() }

func (h *loggedHost) Exec(ctx context.Context, cmd string, opts ...remote.ExecOption) (string, error) {
	o := remote.BuildExecOptions(opts...)
	start := h.now()
	out, err := h.inner.Exec(ctx, cmd, opts...)
	dur := h.now().Sub(start)

	var b strings.Builder
	fmt.Fprintf(&b, "%s exec", h.log.stamp())
	if o.Sudo {
		b.WriteString(" sudo")
	}
	if len(o.Env) > 0 {
		// Values may be secrets that the redactor does not know: keys only.
		fmt.Fprintf(&b, " env=%s", strings.Join(sortedKeys(o.Env), ","))
	}
	if o.Stdin != nil {
		b.WriteString(" stdin=<not logged>")
	}
	fmt.Fprintf(&b, " duration=%s\n$ %s\n", dur.Round(time.Millisecond), indent(cmd))
	if out != "" {
		fmt.Fprintf(&b, "--- stdout\n%s", out)
		if !strings.HasSuffix(out, "\n") {
			b.WriteByte('\n')
		}
	}
	if err != nil {
		fmt.Fprintf(&b, "--- error\n%s\n", err)
	} else {
		b.WriteString("--- ok\n")
	}
	b.WriteByte('\n')
	h.log.write(b.String())
	if h.logger != nil {
		attrs := []any{"host", h.Name(), "cmd", h.log.redact(firstLine(cmd)), "duration", dur.Round(time.Millisecond)}
		if err != nil {
			attrs = append(attrs, "error", h.log.redact(err.Error()))
		}
		h.logger.Debug("exec", attrs...)
	}
	return out, err
}

func (h *loggedHost) Upload(ctx context.Context, src io.Reader, dst string, mode fs.FileMode, opts ...remote.UploadOption) (bool, error) {
	start := h.now()
	changed, err := h.inner.Upload(ctx, src, dst, mode, opts...)
	dur := h.now().Sub(start)
	o := remote.BuildUploadOptions(opts...)
	var b strings.Builder
	fmt.Fprintf(&b, "%s upload %s mode=%04o", h.log.stamp(), dst, mode.Perm())
	if o.Sudo {
		b.WriteString(" sudo")
	}
	if o.Owner != "" {
		fmt.Fprintf(&b, " owner=%s", o.Owner)
	}
	fmt.Fprintf(&b, " changed=%t duration=%s\n", changed, dur.Round(time.Millisecond))
	if err != nil {
		fmt.Fprintf(&b, "--- error\n%s\n", err)
	}
	b.WriteByte('\n')
	h.log.write(b.String())
	if h.logger != nil {
		h.logger.Debug("upload", "host", h.Name(), "dst", dst, "changed", changed, "duration", dur.Round(time.Millisecond))
	}
	return changed, err
}

func (h *loggedHost) Download(ctx context.Context, src string) ([]byte, error) {
	start := h.now()
	data, err := h.inner.Download(ctx, src)
	var b strings.Builder
	// Contents are not logged: downloads fetch keys and kubeconfigs.
	fmt.Fprintf(&b, "%s download %s bytes=%d duration=%s\n", h.log.stamp(), src, len(data), h.now().Sub(start).Round(time.Millisecond))
	if err != nil {
		fmt.Fprintf(&b, "--- error\n%s\n", err)
	}
	b.WriteByte('\n')
	h.log.write(b.String())
	return data, err
}

func (h *loggedHost) Close() error { return h.inner.Close() }

func indent(s string) string { return strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n> ") }

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " ..."
	}
	return s
}
