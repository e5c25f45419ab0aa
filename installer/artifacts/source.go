package artifacts

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
)

// Source is where install gets artifacts from. Every implementation checks
// content against the manifest's sha256, so callers never handle an
// unverified byte without being told.
type Source interface {
	// Manifest returns a copy of the source's manifest.
	Manifest() *Manifest
	// Open streams the file called name. The stream fails at its end (instead
	// of io.EOF) with a *ChecksumError if the content does not match, so an
	// upload of a corrupted file fails before it is renamed into place.
	Open(ctx context.Context, name string) (io.ReadCloser, error)
	// VerifyAll checks every file and returns one error per bad file
	// (*MissingError, *ChecksumError) joined in a *multierror.Error.
	VerifyAll(ctx context.Context) error
}

// MissingError names a file the manifest lists but the source lacks.
type MissingError struct {
	Name, Path string
}

func (e *MissingError) Error() string {
	return fmt.Sprintf("%s: missing (expected at %s)", e.Name, e.Path)
}

// ChecksumError names a file whose content does not match its pinned checksum.
type ChecksumError struct {
	Name, Path  string
	Want, Got   string // hex sha256
	WantSize    int64  // 0 when unknown
	GotSize     int64
	ContentFrom string // e.g. a URL, when the file was downloaded
}

func (e *ChecksumError) Error() string {
	where := e.Path
	if e.ContentFrom != "" {
		where = e.ContentFrom
	}
	msg := fmt.Sprintf("%s (%s): sha256 mismatch: expected %s, got %s", e.Name, where, e.Want, e.Got)
	if e.WantSize > 0 && e.WantSize != e.GotSize {
		msg += fmt.Sprintf(" (size %d, expected %d)", e.GotSize, e.WantSize)
	}
	return msg
}

// IsIntegrityError reports whether err (or any error it wraps or joins) says
// an artifact is missing or corrupted, as opposed to an I/O or network failure.
func IsIntegrityError(err error) bool {
	var m *MissingError
	var c *ChecksumError
	return errors.As(err, &m) || errors.As(err, &c)
}

// verifyingReader hashes what passes through and turns the final io.EOF into a
// *ChecksumError when the content is not what the manifest pins.
type verifyingReader struct {
	r    io.Reader
	c    io.Closer
	h    hash.Hash
	n    int64
	f    File
	err  error
	from string
}

func newVerifyingReader(rc io.ReadCloser, f File, from string) *verifyingReader {
	return &verifyingReader{r: rc, c: rc, h: sha256.New(), f: f, from: from}
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	if v.f.Size > 0 && v.n > v.f.Size {
		// Longer than pinned: fail now rather than stream an unbounded file.
		v.err = &ChecksumError{Name: v.f.Name, Path: v.f.Path, Want: v.f.SHA256, Got: "(more bytes than the pinned size)",
			WantSize: v.f.Size, GotSize: v.n, ContentFrom: v.from}
		return n, v.err
	}
	if errors.Is(err, io.EOF) {
		if got := hex.EncodeToString(v.h.Sum(nil)); got != v.f.SHA256 {
			v.err = &ChecksumError{Name: v.f.Name, Path: v.f.Path, Want: v.f.SHA256, Got: got,
				WantSize: v.f.Size, GotSize: v.n, ContentFrom: v.from}
			return n, v.err
		}
		v.err = io.EOF
	}
	return n, err
}

func (v *verifyingReader) Close() error { return v.c.Close() }

// hashReader returns the hex sha256 and length of everything r yields,
// stopping early when ctx is cancelled (files are hundreds of megabytes).
func hashReader(ctx context.Context, r io.Reader) (string, int64, error) {
	h := sha256.New()
	n, err := io.Copy(h, ctxReader{ctx: ctx, r: r})
	if err != nil {
		return "", n, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

func hashFile(ctx context.Context, file string) (string, int64, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	return hashReader(ctx, f)
}

// ctxReader makes long copies cancellable.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// checkFile compares a file's content with its entry.
func checkFile(ctx context.Context, f File, file string) error {
	if _, err := os.Stat(file); errors.Is(err, os.ErrNotExist) {
		return &MissingError{Name: f.Name, Path: f.Path}
	}
	got, n, err := hashFile(ctx, file)
	if err != nil {
		return fmt.Errorf("hash %s: %w", f.Name, err)
	}
	if got != f.SHA256 || (f.Size > 0 && n != f.Size) {
		return &ChecksumError{Name: f.Name, Path: f.Path, Want: f.SHA256, Got: got, WantSize: f.Size, GotSize: n}
	}
	return nil
}
