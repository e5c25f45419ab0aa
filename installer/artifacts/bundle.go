package artifacts

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"time"

	"github.com/hashicorp/go-multierror"
)

// A bundle is a .tar.gz whose first entry is manifest.yaml and whose other
// entries are the manifest's files at their paths. The manifest comes first
// so inspect reads a few kilobytes, and verify knows every checksum before
// the first file streams past. Gzip, not zstd: the standard library reads it
// everywhere, and binaries compress only ~10% better with zstd.

// bundleTime is every entry's modification time, so the same inputs give the
// same bundle bytes.
var bundleTime = time.Unix(0, 0).UTC()

// BundleOptions tune CreateBundle.
type BundleOptions struct {
	// Level is the gzip level (default gzip.BestSpeed: a 450 MB bundle takes
	// seconds instead of half a minute, for a few percent in size).
	Level int
}

// CreateBundle writes src's manifest and every file into a .tar.gz at out.
// Each file is verified as it streams in; on any error out is not created.
// Returns the manifest written (with checksums a Remote source resolved).
func CreateBundle(ctx context.Context, src Source, out string, opts BundleOptions) (*Manifest, error) {
	m := src.Manifest()
	for _, f := range m.Files {
		if f.HasFile() && f.SHA256 == "" {
			// A Remote learns checksums by downloading: do that first, since
			// the manifest is the bundle's first entry.
			if err := src.VerifyAll(ctx); err != nil {
				return nil, fmt.Errorf("create bundle: %w", err)
			}
			m = src.Manifest()
			break
		}
	}
	// A bundle is self-contained: drop download locations and keep the pins.
	for i := range m.Files {
		m.Files[i].URL, m.Files[i].ChecksumURL, m.Files[i].Member = "", "", ""
	}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("create bundle: %w", err)
	}
	manifest, err := m.Marshal()
	if err != nil {
		return nil, err
	}
	level := opts.Level
	if level == 0 {
		level = gzip.BestSpeed
	}
	tmp := out + ".tmp"
	fh, err := os.Create(tmp)
	if err != nil {
		return nil, fmt.Errorf("create bundle: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			fh.Close()
			os.Remove(tmp)
		}
	}()
	bw := bufio.NewWriterSize(fh, 1<<20)
	zw, err := gzip.NewWriterLevel(bw, level)
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(zw)
	if err := tw.WriteHeader(&tar.Header{Name: ManifestFile, Mode: 0o644, Size: int64(len(manifest)),
		ModTime: bundleTime, Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
		return nil, err
	}
	if _, err := tw.Write(manifest); err != nil {
		return nil, err
	}
	for _, f := range m.Files {
		if !f.HasFile() {
			continue
		}
		if err := addToBundle(ctx, tw, src, f); err != nil {
			return nil, fmt.Errorf("create bundle: %w", err)
		}
	}
	for _, c := range []io.Closer{tw, zw} {
		if err := c.Close(); err != nil {
			return nil, fmt.Errorf("create bundle: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return nil, fmt.Errorf("create bundle: %w", err)
	}
	if err := fh.Close(); err != nil {
		return nil, fmt.Errorf("create bundle: %w", err)
	}
	if err := os.Rename(tmp, out); err != nil {
		return nil, fmt.Errorf("create bundle: %w", err)
	}
	ok = true
	return m, nil
}

func addToBundle(ctx context.Context, tw *tar.Writer, src Source, f File) error {
	rc, err := src.Open(ctx, f.Name)
	if err != nil {
		return err
	}
	defer rc.Close()
	mode := int64(0o644)
	if f.Kind == KindBinary {
		mode = 0o755
	}
	if err := tw.WriteHeader(&tar.Header{Name: f.Path, Mode: mode, Size: f.Size, ModTime: bundleTime,
		Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
		return fmt.Errorf("add %s: %w", f.Name, err)
	}
	// The verifying reader fails at EOF on a mismatch; tar fails on a short file.
	if _, err := io.Copy(tw, ctxReader{ctx: ctx, r: rc}); err != nil {
		return fmt.Errorf("add %s: %w", f.Name, err)
	}
	return nil
}

// BundleEntry is one file in a bundle, as stored.
type BundleEntry struct {
	Path string
	Size int64
	Mode int64
}

// InspectBundle returns the bundle's manifest and the entries it holds, without
// checking contents (VerifyBundle does).
func InspectBundle(ctx context.Context, file string) (*Manifest, []BundleEntry, error) {
	var entries []BundleEntry
	m, err := walkBundle(ctx, file, func(h *tar.Header, _ io.Reader) error {
		entries = append(entries, BundleEntry{Path: h.Name, Size: h.Size, Mode: h.Mode})
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return m, entries, nil
}

// VerifyBundle checks every file of the bundle against its manifest: each
// missing, corrupted, duplicated or unexpected entry is one error, so an
// operator sees everything wrong with a bundle at once.
func VerifyBundle(ctx context.Context, file string) (*Manifest, error) {
	return checkBundle(ctx, file, "")
}

// ExtractBundle verifies the whole bundle while unpacking it into dir and
// returns dir as a Source. Nothing is left in dir if any file is bad, so
// install can refuse a bad bundle before it touches any host.
func ExtractBundle(ctx context.Context, file, dir string) (*Dir, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("extract bundle: %w", err)
	}
	staging, err := os.MkdirTemp(dir, ".extract-")
	if err != nil {
		return nil, fmt.Errorf("extract bundle: %w", err)
	}
	defer os.RemoveAll(staging)
	m, err := checkBundle(ctx, file, staging)
	if err != nil {
		return nil, err
	}
	data, err := m.Marshal()
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(staging, ManifestFile), data, 0o644); err != nil {
		return nil, fmt.Errorf("extract bundle: %w", err)
	}
	// Move the verified tree into place: manifest last, so a crash leaves a
	// directory that OpenDir refuses rather than one it half trusts.
	os.Remove(filepath.Join(dir, ManifestFile))
	for _, f := range m.Files {
		if !f.HasFile() {
			continue
		}
		dst := filepath.Join(dir, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return nil, fmt.Errorf("extract bundle: %w", err)
		}
		if err := os.Rename(filepath.Join(staging, filepath.FromSlash(f.Path)), dst); err != nil {
			return nil, fmt.Errorf("extract bundle: %w", err)
		}
	}
	if err := os.Rename(filepath.Join(staging, ManifestFile), filepath.Join(dir, ManifestFile)); err != nil {
		return nil, fmt.Errorf("extract bundle: %w", err)
	}
	return OpenDir(dir)
}

// checkBundle verifies every entry, writing files under into when it is set.
func checkBundle(ctx context.Context, file, into string) (*Manifest, error) {
	var errs *multierror.Error
	seen := map[string]bool{}
	var byPath map[string]File
	m, err := walkBundle(ctx, file, func(h *tar.Header, r io.Reader) error {
		if byPath == nil {
			return errors.New("internal: manifest not read")
		}
		name := path.Clean(h.Name)
		f, ok := byPath[name]
		switch {
		case !ok:
			errs = multierror.Append(errs, fmt.Errorf("%s: unexpected entry (not in the manifest)", h.Name))
			return nil
		case seen[name]:
			errs = multierror.Append(errs, fmt.Errorf("%s (%s): duplicate entry", f.Name, h.Name))
			return nil
		case h.Typeflag != tar.TypeReg:
			errs = multierror.Append(errs, fmt.Errorf("%s (%s): not a regular file", f.Name, h.Name))
			return nil
		}
		seen[name] = true
		var w io.Writer = io.Discard
		var out *os.File
		if into != "" {
			dst := filepath.Join(into, filepath.FromSlash(name))
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return err
			}
			mode := os.FileMode(0o644)
			if f.Kind == KindBinary {
				mode = 0o755
			}
			o, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
			if err != nil {
				return err
			}
			out, w = o, o
		}
		h256 := sha256.New()
		n, err := io.Copy(io.MultiWriter(h256, w), ctxReader{ctx: ctx, r: r})
		if out != nil {
			if cerr := out.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", f.Name, err)
		}
		if got := hex.EncodeToString(h256.Sum(nil)); got != f.SHA256 || (f.Size > 0 && n != f.Size) {
			errs = multierror.Append(errs, &ChecksumError{Name: f.Name, Path: f.Path, Want: f.SHA256, Got: got,
				WantSize: f.Size, GotSize: n})
		}
		return nil
	}, func(m *Manifest) error {
		byPath = map[string]File{}
		for _, f := range m.Files {
			if f.HasFile() {
				if f.SHA256 == "" {
					return fmt.Errorf("manifest entry %s has no sha256", f.Name)
				}
				byPath[f.Path] = f
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var missing []File
	for p, f := range byPath {
		if !seen[p] {
			missing = append(missing, f)
		}
	}
	// Manifest order, so messages are stable and read like the manifest.
	order := map[string]int{}
	for i, f := range m.Files {
		order[f.Name] = i
	}
	sort.Slice(missing, func(i, j int) bool { return order[missing[i].Name] < order[missing[j].Name] })
	for _, f := range missing {
		errs = multierror.Append(errs, &MissingError{Name: f.Name, Path: f.Path})
	}
	if err := errs.ErrorOrNil(); err != nil {
		return nil, fmt.Errorf("bundle %s: %w", file, err)
	}
	return m, nil
}

// walkBundle reads the manifest (first entry) and calls fn for every other
// entry. onManifest, when given, runs once the manifest is parsed.
func walkBundle(ctx context.Context, file string, fn func(*tar.Header, io.Reader) error, onManifest ...func(*Manifest) error) (*Manifest, error) {
	fh, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("open bundle: %w", err)
	}
	defer fh.Close()
	zr, err := gzip.NewReader(bufio.NewReaderSize(fh, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("bundle %s: not a gzip file: %w", file, err)
	}
	tr := tar.NewReader(zr)
	h, err := tr.Next()
	if err != nil {
		return nil, fmt.Errorf("bundle %s: read first entry: %w", file, err)
	}
	if path.Clean(h.Name) != ManifestFile {
		return nil, fmt.Errorf("bundle %s: first entry is %q, want %s: not a kubewright bundle", file, h.Name, ManifestFile)
	}
	data, err := io.ReadAll(io.LimitReader(tr, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("bundle %s: read manifest: %w", file, err)
	}
	m, err := ParseManifest(data)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", file, err)
	}
	for _, f := range onManifest {
		if err := f(m); err != nil {
			return nil, fmt.Errorf("bundle %s: %w", file, err)
		}
	}
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return m, nil
		}
		if err != nil {
			return nil, fmt.Errorf("bundle %s: %w", file, err)
		}
		if err := fn(h, tr); err != nil {
			return nil, fmt.Errorf("bundle %s: %w", file, err)
		}
	}
}
