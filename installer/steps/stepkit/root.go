package stepkit

import (
	"context"
	"path"
	"strings"

	"github.com/kubewright/kubewright/installer/engine"
	"github.com/kubewright/kubewright/installer/remote"
)

// RootVar is the Target.Vars key holding a directory that prefixes every path a
// helper reads or writes on the host. Empty (the default) means the real root.
const RootVar = "root"

// Root returns the target's path prefix ("" for the real root).
func Root(t *engine.Target) string {
	if t == nil || t.Vars == nil {
		return ""
	}
	return strings.TrimRight(t.Vars[RootVar], "/")
}

// HostPath maps an absolute host path to the path to use on the target,
// honouring Root.
func HostPath(t *engine.Target, p string) string {
	r := Root(t)
	if r == "" {
		return p
	}
	return r + path.Clean("/"+p)
}

// Quote returns s as one single-quoted shell word. Commands are built from
// inventory values (paths, names), so everything interpolated is quoted.
func Quote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=@%+,", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// QuoteAll quotes every word and joins them with spaces.
func QuoteAll(words []string) string {
	q := make([]string, len(words))
	for i, w := range words {
		q[i] = Quote(w)
	}
	return strings.Join(q, " ")
}

// RunAsRoot runs cmd with root privileges. Everything a step changes on a host
// needs root; the remote layer decides whether that means sudo (and feeds the
// sudo password on stdin) or nothing because the SSH user already is root.
func RunAsRoot(ctx context.Context, t *engine.Target, cmd string, opts ...remote.ExecOption) (string, error) {
	return t.Host.Exec(ctx, cmd, append([]remote.ExecOption{remote.WithSudo()}, opts...)...)
}
