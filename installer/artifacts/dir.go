package artifacts

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/hashicorp/go-multierror"
)

// Dir is an artifacts directory: manifest.yaml plus the files at their
// manifest paths. hack/build-artifacts.sh writes one; ExtractBundle makes one.
type Dir struct {
	root     string
	manifest *Manifest
}

var _ Source = (*Dir)(nil)

// OpenDir reads root/manifest.yaml. Files are checked when opened or by VerifyAll.
func OpenDir(root string) (*Dir, error) {
	m, err := LoadManifest(filepath.Join(root, ManifestFile))
	if err != nil {
		return nil, fmt.Errorf("open artifacts directory %s: %w", root, err)
	}
	for _, f := range m.Files {
		if f.HasFile() && f.SHA256 == "" {
			return nil, fmt.Errorf("open artifacts directory %s: %s has no sha256: a directory must pin every file", root, f.Name)
		}
	}
	return &Dir{root: root, manifest: m}, nil
}

// Root is the directory's path.
func (d *Dir) Root() string { return d.root }

// Manifest implements Source.
func (d *Dir) Manifest() *Manifest { return d.manifest.Clone() }

// Path returns the local path of the file called name, for callers (the lab)
// that bind-mount or copy files rather than stream them. Verify first.
func (d *Dir) Path(name string) (string, error) {
	f, ok := d.manifest.File(name)
	if !ok || !f.HasFile() {
		return "", fmt.Errorf("artifact %q is not in %s", name, filepath.Join(d.root, ManifestFile))
	}
	return filepath.Join(d.root, filepath.FromSlash(f.Path)), nil
}

// Open implements Source.
func (d *Dir) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	p, err := d.Path(name)
	if err != nil {
		return nil, err
	}
	f, _ := d.manifest.File(name)
	fh, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, &MissingError{Name: f.Name, Path: f.Path}
	}
	if err != nil {
		return nil, fmt.Errorf("open artifact %s: %w", name, err)
	}
	// A wrong size is known before reading a byte: fail fast.
	if st, err := fh.Stat(); err == nil && f.Size > 0 && st.Size() != f.Size {
		fh.Close()
		return nil, &ChecksumError{Name: f.Name, Path: f.Path, Want: f.SHA256, Got: "(not computed: size differs)",
			WantSize: f.Size, GotSize: st.Size()}
	}
	return newVerifyingReader(fh, f, ""), nil
}

// VerifyAll implements Source: it hashes every file and reports each missing
// or corrupted one.
func (d *Dir) VerifyAll(ctx context.Context) error {
	var errs *multierror.Error
	for _, f := range d.manifest.Files {
		if !f.HasFile() {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := checkFile(ctx, f, filepath.Join(d.root, filepath.FromSlash(f.Path))); err != nil {
			errs = multierror.Append(errs, err)
		}
	}
	return errs.ErrorOrNil()
}
