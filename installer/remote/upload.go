package remote

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/pkg/sftp"
)

// sftpClient returns the connection's SFTP client, opening the subsystem on
// first use: one per connection, shared by concurrent transfers. It also
// returns the connection, so a failed transfer can tell whether it died.
func (h *SSHHost) sftpClient(ctx context.Context) (*conn, *sftp.Client, error) {
	for attempt := 0; ; attempt++ {
		c, err := h.getConn(ctx)
		if err != nil {
			return nil, nil, err
		}
		c.sftpMu.Lock()
		if c.sftp != nil {
			sc := c.sftp
			c.sftpMu.Unlock()
			return c, sc, nil
		}
		sc, err := sftp.NewClient(c.client)
		if err == nil {
			c.sftp = sc
			c.sftpMu.Unlock()
			return c, sc, nil
		}
		c.sftpMu.Unlock()
		if c.alive() || attempt > 0 {
			return nil, nil, fmt.Errorf("start sftp subsystem: %w", err)
		}
		// The connection died under us: nothing was written, reconnect once.
		if _, err := h.reconnect(ctx, c); err != nil {
			return nil, nil, err
		}
	}
}

// errUploadCut marks a transfer whose connection died under it: the upload
// is retried on a new connection (it only ever wrote to a staging file, and
// the final rename is idempotent).
var errUploadCut = errors.New("connection lost during the upload")

// cut returns err marked with errUploadCut when c died (or is dying) under
// it; other errors are returned as they are.
func cut(c *conn, err error) error {
	if err == nil || errors.Is(err, errUploadCut) {
		return err
	}
	if errors.Is(err, ErrConnectionLost) {
		return fmt.Errorf("%w: %w", errUploadCut, err)
	}
	select {
	case <-c.done:
	case <-time.After(200 * time.Millisecond):
	}
	if c.alive() {
		return err
	}
	if r, ok := c.reason.Load().(string); ok {
		return fmt.Errorf("%w (%s): %w", errUploadCut, r, err)
	}
	return fmt.Errorf("%w: %w", errUploadCut, err)
}

// uploadAttempts bounds how often one Upload starts over after its
// connection was cut.
const uploadAttempts = 3

// unixMode converts mode to the octal permission bits stat -c %a prints.
func unixMode(mode fs.FileMode) uint32 {
	m := uint32(mode.Perm())
	if mode&fs.ModeSetuid != 0 {
		m |= 0o4000
	}
	if mode&fs.ModeSetgid != 0 {
		m |= 0o2000
	}
	if mode&fs.ModeSticky != 0 {
		m |= 0o1000
	}
	return m
}

// source gives the upload's bytes twice (hash, then write) without holding
// big files in memory when the caller passed something seekable.
func source(src io.Reader) (io.ReadSeeker, string, error) {
	rs, ok := src.(io.ReadSeeker)
	if !ok {
		b, err := io.ReadAll(src)
		if err != nil {
			return nil, "", fmt.Errorf("read source: %w", err)
		}
		rs = bytes.NewReader(b)
	}
	start, err := rs.Seek(0, io.SeekCurrent)
	if err != nil {
		return nil, "", fmt.Errorf("seek source: %w", err)
	}
	hash := sha256.New()
	if _, err := io.Copy(hash, rs); err != nil {
		return nil, "", fmt.Errorf("read source: %w", err)
	}
	if _, err := rs.Seek(start, io.SeekStart); err != nil {
		return nil, "", fmt.Errorf("seek source: %w", err)
	}
	return rs, hex.EncodeToString(hash.Sum(nil)), nil
}

func randSuffix() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// remoteState is what the destination looks like now.
type remoteState struct {
	exists     bool
	sum        string
	mode       uint32
	owner, ids string // user:group and uid:gid
}

func (h *SSHHost) stat(ctx context.Context, dst string, sudo bool) (*remoteState, error) {
	script := "f=" + Quote(dst) + `; if [ -f "$f" ]; then set -e; sha256sum < "$f"; stat -c '%a %U:%G %u:%g' -- "$f"; else echo missing; fi`
	var opts []ExecOption
	if sudo {
		opts = append(opts, WithSudo())
	}
	out, err := h.Exec(ctx, script, opts...)
	if err != nil {
		return nil, err
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) == 1 && lines[0] == "missing" {
		return &remoteState{}, nil
	}
	if len(lines) != 2 {
		return nil, fmt.Errorf("unexpected output from sha256sum/stat: %q", out)
	}
	sum, _, _ := strings.Cut(lines[0], " ")
	f := strings.Fields(lines[1])
	if len(f) != 3 {
		return nil, fmt.Errorf("unexpected output from stat: %q", lines[1])
	}
	mode, err := strconv.ParseUint(f[0], 8, 32)
	if err != nil {
		return nil, fmt.Errorf("unexpected mode from stat: %q", f[0])
	}
	return &remoteState{exists: true, sum: sum, mode: uint32(mode), owner: f[1], ids: f[2]}, nil
}

// Upload writes src to dst atomically: the bytes go to a private staging
// directory, get their mode and owner there, and are renamed over dst, so a
// reader (kubelet, systemd) never sees a half-written file. It does nothing
// when dst already has the same sha256, mode and owner, so re-runs are
// cheap and do not restart services needlessly.
func (h *SSHHost) Upload(ctx context.Context, src io.Reader, dst string, mode fs.FileMode, opts ...UploadOption) (bool, error) {
	o := BuildUploadOptions(opts...)
	if !path.IsAbs(dst) {
		return false, fmt.Errorf("upload to %s on %s: destination must be an absolute path", dst, h.cfg.Name)
	}
	body, sum, err := source(src)
	if err != nil {
		return false, fmt.Errorf("upload %s to %s: %w", dst, h.cfg.Name, err)
	}
	st, err := h.stat(ctx, dst, o.Sudo)
	var ee *ExitError
	switch {
	case errors.As(err, &ee):
		// Unreadable or odd destination: writing will tell us more.
		st = &remoteState{}
	case err != nil:
		return false, fmt.Errorf("upload %s to %s: check current file: %w", dst, h.cfg.Name, err)
	}
	if st.exists && st.sum == sum && st.mode == unixMode(mode) && (o.Owner == "" || o.Owner == st.owner || o.Owner == st.ids) {
		h.log.Debug("upload unchanged", "path", dst, "sha256", sum)
		return false, nil
	}
	asRoot := o.Sudo && h.cfg.User != "root"
	start, err := body.Seek(0, io.SeekCurrent)
	if err != nil {
		return false, fmt.Errorf("upload %s to %s: seek source: %w", dst, h.cfg.Name, err)
	}
	// A cut connection leaves at most a staging file behind, never a
	// truncated dst: start over on a new connection, removing what the cut
	// attempt left first.
	var stale []string
	for attempt := 1; ; attempt++ {
		if attempt > 1 {
			if _, err := body.Seek(start, io.SeekStart); err != nil {
				return false, fmt.Errorf("upload %s to %s: seek source: %w", dst, h.cfg.Name, err)
			}
			stale = h.removeStale(ctx, stale)
		}
		err = h.write(ctx, body, dst, mode, o.Owner, asRoot, &stale)
		if err == nil {
			break
		}
		if !errors.Is(err, errUploadCut) || attempt >= uploadAttempts || ctx.Err() != nil {
			if errors.Is(err, errUploadCut) && ctx.Err() == nil {
				err = fmt.Errorf("%w (gave up after %d attempts; %s was not replaced)", err, attempt, dst)
			}
			return false, fmt.Errorf("upload %s to %s: %w", dst, h.cfg.Name, err)
		}
		h.log.Warn("upload cut by a lost connection; starting over", "path", dst, "attempt", attempt, "err", h.cfg.Redactor.Redact(err.Error()))
	}
	if len(stale) > 0 {
		h.removeStale(ctx, stale)
	}
	h.log.Debug("uploaded", "path", dst, "sha256", sum, "mode", fmt.Sprintf("%04o", unixMode(mode)), "owner", o.Owner)
	return true, nil
}

// removeStale deletes the staging paths of cut attempts (staging
// directories over SFTP; "sudo:"-prefixed temp files next to a root-owned
// destination with sudo) and returns those it could not remove yet.
func (h *SSHHost) removeStale(ctx context.Context, paths []string) []string {
	var left []string
	for _, p := range paths {
		var err error
		if root, ok := strings.CutPrefix(p, "sudo:"); ok {
			_, err = h.Exec(ctx, "rm -f -- "+Quote(root), WithSudo())
		} else {
			var sc *sftp.Client
			if _, sc, err = h.sftpClient(ctx); err == nil {
				sc.Remove(path.Join(p, "data"))
				if err = sc.RemoveDirectory(p); errors.Is(err, fs.ErrNotExist) {
					err = nil
				}
			}
		}
		if err != nil {
			left = append(left, p)
		}
	}
	return left
}

// write stages body and moves it over dst. Paths a cut connection may have
// left behind are appended to stale.
func (h *SSHHost) write(ctx context.Context, body io.Reader, dst string, mode fs.FileMode, owner string, asRoot bool, stale *[]string) error {
	c, sc, err := h.sftpClient(ctx)
	if err != nil {
		return err
	}
	err = h.writeOn(ctx, c, sc, body, dst, mode, owner, asRoot, stale)
	return cut(c, err)
}

func (h *SSHHost) writeOn(ctx context.Context, c *conn, sc *sftp.Client, body io.Reader, dst string, mode fs.FileMode, owner string, asRoot bool, stale *[]string) error {
	// Staging dir: same directory as dst when we can write there (rename
	// is then atomic), /tmp when root must move it into place. It is made
	// 0700 before any byte is written, so nobody else can open the file.
	stageParent := path.Dir(dst)
	if asRoot {
		stageParent = "/tmp"
	}
	stage := path.Join(stageParent, ".kubewright-upload-"+randSuffix())
	if err := sc.Mkdir(stage); err != nil {
		return fmt.Errorf("create staging directory %s: %w", stage, err)
	}
	cleanup := true
	defer func() {
		if !cleanup {
			return
		}
		// The connection may die between the cut and this check, so a
		// removal that fails counts as not done either way.
		if c.alive() {
			sc.Remove(path.Join(stage, "data"))
			if err := sc.RemoveDirectory(stage); err == nil || errors.Is(err, fs.ErrNotExist) {
				return
			}
		}
		*stale = append(*stale, stage) // removed over the next connection
	}()
	if err := sc.Chmod(stage, 0o700); err != nil {
		return fmt.Errorf("chmod staging directory: %w", err)
	}
	staged := path.Join(stage, "data")
	f, err := sc.OpenFile(staged, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
	if err != nil {
		return fmt.Errorf("create %s: %w", staged, err)
	}
	copyDone := make(chan error, 1)
	go func() {
		_, err := io.Copy(f, body)
		copyDone <- err
	}()
	select {
	case err = <-copyDone:
	case <-ctx.Done():
		f.Close()
		<-copyDone
		return ctx.Err()
	}
	if err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", staged, err)
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return fmt.Errorf("chmod %s: %w", staged, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", staged, err)
	}
	modeStr := fmt.Sprintf("%04o", unixMode(mode))

	if asRoot {
		// /tmp may be another filesystem: copy next to dst first, then
		// rename, so the replacement itself stays atomic.
		tmp := path.Join(path.Dir(dst), "."+path.Base(dst)+".kubewright-"+randSuffix())
		script := fmt.Sprintf(`t=%s; cp -- %s "$t" && chmod %s "$t"`, Quote(tmp), Quote(staged), modeStr)
		if owner != "" {
			script += fmt.Sprintf(` && chown %s "$t"`, Quote(owner))
		}
		script += fmt.Sprintf(` && mv -f -- "$t" %s; rc=$?; rm -f -- "$t"; rm -rf -- %s; exit $rc`, Quote(dst), Quote(stage))
		if _, err := h.Exec(ctx, script, WithSudo()); err != nil {
			if errors.Is(err, ErrConnectionLost) {
				*stale = append(*stale, "sudo:"+tmp)
			}
			return fmt.Errorf("move into place as root: %w", err)
		}
		cleanup = false
		return nil
	}
	if owner != "" {
		if _, err := h.Exec(ctx, "chown "+Quote(owner)+" "+Quote(staged)); err != nil {
			return fmt.Errorf("set owner: %w", err)
		}
	}
	if err := sc.PosixRename(staged, dst); err != nil {
		return fmt.Errorf("rename into place: %w", err)
	}
	return nil
}

// Download returns the content of src over SFTP. When the file is not
// readable by the SSH user it is read with `sudo cat` instead: the files
// kubewright fetches back (certificates, kubeconfigs) are usually root-only.
func (h *SSHHost) Download(ctx context.Context, src string) ([]byte, error) {
	data, err := h.downloadSFTP(ctx, src)
	if err == nil {
		return data, nil
	}
	if !errors.Is(err, fs.ErrPermission) || h.cfg.User == "root" {
		return nil, fmt.Errorf("download %s from %s: %w", src, h.cfg.Name, err)
	}
	out, err := h.Exec(ctx, "cat -- "+Quote(src), WithSudo())
	if err != nil {
		return nil, fmt.Errorf("download %s from %s as root: %w", src, h.cfg.Name, err)
	}
	return []byte(out), nil
}

func (h *SSHHost) downloadSFTP(ctx context.Context, src string) ([]byte, error) {
	_, sc, err := h.sftpClient(ctx)
	if err != nil {
		return nil, err
	}
	f, err := sc.Open(src)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	type res struct {
		b   []byte
		err error
	}
	done := make(chan res, 1)
	go func() {
		var buf bytes.Buffer
		_, err := f.WriteTo(&buf)
		done <- res{buf.Bytes(), err}
	}()
	select {
	case r := <-done:
		return r.b, r.err
	case <-ctx.Done():
		f.Close()
		return nil, ctx.Err()
	}
}
