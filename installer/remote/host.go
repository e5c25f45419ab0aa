// Package remote is the host seam: everything kubewright does to a machine goes
// through Host, so the engine and steps can be tested against the in-process
// server in remotetest instead of real machines.
package remote

import (
	"context"
	"io"
	"io/fs"
	"time"
)

// Host is one reachable machine. Implementations must be safe for concurrent use:
// the engine may run several commands on one host at once.
type Host interface {
	// Name is the inventory name, used in errors and logs (host=NAME).
	Name() string
	// Exec runs cmd through the remote shell and returns its stdout. A non-zero
	// exit is returned as *ExitError carrying the code and stderr.
	Exec(ctx context.Context, cmd string, opts ...ExecOption) (stdout string, err error)
	// Upload writes src to dst atomically (temp file, then rename) with mode.
	// It skips the write when the remote file already has the same sha256 and
	// mode, and reports whether it changed anything.
	Upload(ctx context.Context, src io.Reader, dst string, mode fs.FileMode, opts ...UploadOption) (changed bool, err error)
	// Download returns the content of a remote file.
	Download(ctx context.Context, src string) ([]byte, error)
	Close() error
}

// ExecOptions are built from ExecOption values; see WithSudo, WithStdin.
type ExecOptions struct {
	// Sudo runs the command as root via sudo; the sudo password, if any, is
	// written to sudo's stdin, never put on a command line or in a log.
	Sudo  bool
	Stdin io.Reader
	// Env is exported before the command runs.
	Env map[string]string
	// Timeout bounds this command, overriding the host's default command
	// timeout; zero keeps the default.
	Timeout time.Duration
}

// ExecOption changes how a command runs.
type ExecOption func(*ExecOptions)

// WithSudo runs the command as root.
func WithSudo() ExecOption { return func(o *ExecOptions) { o.Sudo = true } }

// WithStdin feeds r to the command's standard input.
func WithStdin(r io.Reader) ExecOption { return func(o *ExecOptions) { o.Stdin = r } }

// WithEnv exports environment variables for the command.
func WithEnv(env map[string]string) ExecOption { return func(o *ExecOptions) { o.Env = env } }

// WithTimeout bounds one command, e.g. a long image pull, independently of
// the host's default command timeout.
func WithTimeout(d time.Duration) ExecOption { return func(o *ExecOptions) { o.Timeout = d } }

// BuildExecOptions applies opts in order.
func BuildExecOptions(opts ...ExecOption) ExecOptions {
	var o ExecOptions
	for _, f := range opts {
		f(&o)
	}
	return o
}

// UploadOptions are built from UploadOption values.
type UploadOptions struct {
	Sudo  bool   // write as root (temp file + sudo mv)
	Owner string // "user:group"; empty keeps the default
}

// UploadOption changes how a file is written.
type UploadOption func(*UploadOptions)

// UploadAsRoot writes the file with root privileges.
func UploadAsRoot() UploadOption { return func(o *UploadOptions) { o.Sudo = true } }

// UploadOwner sets the owner ("user:group") of the written file.
func UploadOwner(owner string) UploadOption { return func(o *UploadOptions) { o.Owner = owner } }

// BuildUploadOptions applies opts in order.
func BuildUploadOptions(opts ...UploadOption) UploadOptions {
	var o UploadOptions
	for _, f := range opts {
		f(&o)
	}
	return o
}
