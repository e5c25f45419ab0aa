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
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-multierror"
)

// RemoteOptions configure downloads. The zero value of each field has a
// sensible default, filled in by NewRemote.
type RemoteOptions struct {
	// CacheDir keeps verified downloads and resumable .part files between runs.
	CacheDir string
	// Client is the HTTP client (default: http.DefaultClient).
	Client *http.Client
	// Attempts is how many times one download is tried; each retry resumes
	// from what is already on disk with an HTTP Range request (default 3).
	Attempts int
	// RetryDelay is the pause before the second attempt, doubled for each
	// later one, so a 503 or 429 from a busy mirror gets time (default 1s).
	RetryDelay time.Duration
	Logger     *slog.Logger
}

// Remote downloads artifacts from upstream release URLs into a local cache,
// resuming partial downloads and refusing any file whose sha256 is not the
// one upstream publishes (and, when the manifest pins one, the pinned one).
type Remote struct {
	opts RemoteOptions

	mu       sync.Mutex
	manifest *Manifest              // SHA256/Size filled in as files are verified
	locks    map[string]*sync.Mutex // one download at a time per URL
}

var _ Source = (*Remote)(nil)

// NewRemote returns a source for m's URLs. Every file entry needs a URL.
func NewRemote(m *Manifest, opts RemoteOptions) (*Remote, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	for _, f := range m.Files {
		if f.HasFile() && f.URL == "" {
			return nil, fmt.Errorf("artifact %s has no url to download it from", f.Name)
		}
	}
	if opts.CacheDir == "" {
		return nil, errors.New("remote artifacts: CacheDir is required")
	}
	if opts.Client == nil {
		opts.Client = http.DefaultClient
	}
	if opts.Attempts <= 0 {
		opts.Attempts = 3
	}
	if opts.RetryDelay <= 0 {
		opts.RetryDelay = time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Remote{opts: opts, manifest: m.Clone(), locks: map[string]*sync.Mutex{}}, nil
}

// Manifest implements Source; checksums upstream publishes appear once the
// file was fetched (VerifyAll fetches all).
func (r *Remote) Manifest() *Manifest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.manifest.Clone()
}

// Open implements Source: it downloads (or reuses the cached copy of) the
// file, verifies it, and streams the verified local copy.
func (r *Remote) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	f, ok := r.Manifest().File(name)
	if !ok || !f.HasFile() {
		return nil, fmt.Errorf("artifact %q is not in the manifest", name)
	}
	local, f, err := r.fetch(ctx, f)
	if err != nil {
		return nil, err
	}
	fh, err := os.Open(local)
	if err != nil {
		return nil, fmt.Errorf("open cached %s: %w", name, err)
	}
	return newVerifyingReader(fh, f, ""), nil
}

// LocalPath downloads name if needed and returns its verified cached path.
func (r *Remote) LocalPath(ctx context.Context, name string) (string, error) {
	f, ok := r.Manifest().File(name)
	if !ok || !f.HasFile() {
		return "", fmt.Errorf("artifact %q is not in the manifest", name)
	}
	local, _, err := r.fetch(ctx, f)
	return local, err
}

// VerifyAll implements Source: it downloads every file (reusing the cache)
// and reports each one that could not be fetched or verified.
func (r *Remote) VerifyAll(ctx context.Context) error {
	var errs *multierror.Error
	for _, f := range r.Manifest().Files {
		if !f.HasFile() {
			continue
		}
		if _, _, err := r.fetch(ctx, f); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			errs = multierror.Append(errs, err)
		}
	}
	return errs.ErrorOrNil()
}

// fetch returns the verified local copy of f and f with its checksum filled in.
func (r *Remote) fetch(ctx context.Context, f File) (string, File, error) {
	want := f.SHA256
	archiveWant := ""
	if f.ChecksumURL != "" {
		upstream, err := r.checksum(ctx, f)
		if err != nil {
			return "", f, err
		}
		if f.Member != "" {
			archiveWant = upstream // upstream's checksum covers the archive
		} else if want != "" && want != upstream {
			return "", f, &ChecksumError{Name: f.Name, Path: f.Path, Want: want, Got: upstream,
				ContentFrom: f.ChecksumURL + " (upstream checksum differs from the manifest's pin)"}
		} else {
			want = upstream
		}
	}
	var local string
	if f.Member == "" {
		p, err := r.download(ctx, f.Name, f.URL, want)
		if err != nil {
			return "", f, err
		}
		local = p
	} else {
		archive, err := r.download(ctx, f.Name, f.URL, archiveWant)
		if err != nil {
			return "", f, err
		}
		p, err := r.extractMember(ctx, f, archive, want)
		if err != nil {
			return "", f, err
		}
		local = p
	}
	sum, n, err := hashFile(ctx, local)
	if err != nil {
		return "", f, fmt.Errorf("hash %s: %w", f.Name, err)
	}
	if want != "" && sum != want {
		return "", f, &ChecksumError{Name: f.Name, Path: local, Want: want, Got: sum}
	}
	f.SHA256, f.Size = sum, n
	r.record(f)
	return local, f, nil
}

func (r *Remote) record(f File) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range r.manifest.Files {
		if r.manifest.Files[i].Name == f.Name {
			r.manifest.Files[i].SHA256, r.manifest.Files[i].Size = f.SHA256, f.Size
		}
	}
}

// checksum fetches upstream's sha256 for f.URL.
func (r *Remote) checksum(ctx context.Context, f File) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.ChecksumURL, nil)
	if err != nil {
		return "", fmt.Errorf("checksum for %s: %w", f.Name, err)
	}
	resp, err := r.opts.Client.Do(req)
	if err != nil {
		return "", fmt.Errorf("fetch checksum for %s: %w", f.Name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("fetch checksum for %s from %s: %s", f.Name, f.ChecksumURL, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", fmt.Errorf("fetch checksum for %s: %w", f.Name, err)
	}
	sum, err := parseChecksum(string(body), path.Base(urlPath(f.URL)))
	if err != nil {
		return "", fmt.Errorf("checksum for %s from %s: %w", f.Name, f.ChecksumURL, err)
	}
	return sum, nil
}

// parseChecksum reads a bare digest or the line for file in a SHA256SUMS list.
func parseChecksum(body, file string) (string, error) {
	lines := strings.Split(strings.TrimSpace(body), "\n")
	if len(lines) == 1 {
		fields := strings.Fields(lines[0])
		if len(fields) == 1 || (len(fields) == 2 && strings.TrimPrefix(fields[1], "*") == file) {
			if sum := strings.ToLower(fields[0]); sha256Re.MatchString(sum) {
				return sum, nil
			}
		}
	}
	for _, l := range lines {
		fields := strings.Fields(l)
		if len(fields) == 2 && strings.TrimPrefix(fields[1], "*") == file && sha256Re.MatchString(strings.ToLower(fields[0])) {
			return strings.ToLower(fields[0]), nil
		}
	}
	return "", fmt.Errorf("no sha256 for %s in the checksum file", file)
}

func urlPath(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Path
	}
	return raw
}

func (r *Remote) lockFor(key string) *sync.Mutex {
	r.mu.Lock()
	defer r.mu.Unlock()
	l, ok := r.locks[key]
	if !ok {
		l = &sync.Mutex{}
		r.locks[key] = l
	}
	return l
}

// cachePath is where the verified download of rawURL lives. Keyed by the URL
// (not the checksum) so a .part can be resumed before the content is known.
func (r *Remote) cachePath(rawURL string) string {
	h := sha256.Sum256([]byte(rawURL))
	base := path.Base(urlPath(rawURL))
	if base == "/" || base == "." || base == "" {
		base = "download"
	}
	return filepath.Join(r.opts.CacheDir, "downloads", hex.EncodeToString(h[:8]), base)
}

// download makes sure the cache holds rawURL's content with sha256 want
// (any content when want is empty, which only archives whose members are
// pinned use) and returns its path.
func (r *Remote) download(ctx context.Context, name, rawURL, want string) (string, error) {
	l := r.lockFor(rawURL)
	l.Lock()
	defer l.Unlock()
	final := r.cachePath(rawURL)
	if sum, _, err := hashFile(ctx, final); err == nil {
		if want == "" || sum == want {
			r.opts.Logger.Debug("artifact cached", "artifact", name, "path", final)
			return final, nil
		}
		r.opts.Logger.Warn("cached artifact does not match; downloading again", "artifact", name, "path", final)
		os.Remove(final)
	}
	if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
		return "", fmt.Errorf("download %s: %w", name, err)
	}
	part := final + ".part"
	var lastErr error
	restarted := false
	delay := r.opts.RetryDelay
	for attempt := 1; attempt <= r.opts.Attempts; attempt++ {
		if lastErr != nil {
			select {
			case <-ctx.Done():
				return "", ctx.Err()
			case <-time.After(delay):
			}
			delay *= 2
		}
		if err := ctx.Err(); err != nil {
			return "", err
		}
		err := r.fetchInto(ctx, rawURL, part)
		var se *statusError
		if errors.As(err, &se) && se.permanent() {
			return "", fmt.Errorf("download %s: %w", name, err)
		}
		if err != nil {
			lastErr = err
			r.opts.Logger.Warn("download interrupted; will resume", "artifact", name, "url", rawURL, "attempt", attempt, "err", err)
			continue
		}
		sum, n, err := hashFile(ctx, part)
		if err != nil {
			return "", fmt.Errorf("download %s: %w", name, err)
		}
		if want != "" && sum != want {
			// Start over once before calling the file bad: a resumed .part may
			// hold stale bytes from an older upload of the same URL, and a
			// proxy may have served one broken copy.
			os.Remove(part)
			if !restarted {
				restarted = true
				r.opts.Logger.Warn("downloaded artifact does not match its checksum; downloading again from the start",
					"artifact", name, "url", rawURL)
				attempt--
				continue
			}
			return "", &ChecksumError{Name: name, Want: want, Got: sum, GotSize: n, ContentFrom: rawURL}
		}
		if err := os.Rename(part, final); err != nil {
			return "", fmt.Errorf("download %s: %w", name, err)
		}
		r.opts.Logger.Info("artifact downloaded", "artifact", name, "url", rawURL, "bytes", n)
		return final, nil
	}
	return "", fmt.Errorf("download %s from %s: %d attempts failed, last: %w", name, rawURL, r.opts.Attempts, lastErr)
}

// fetchInto appends the rest of rawURL to part, asking only for the bytes it
// does not have yet. A server that ignores Range (200) restarts the file.
func (r *Remote) fetchInto(ctx context.Context, rawURL, part string) error {
	var have int64
	if st, err := os.Stat(part); err == nil {
		have = st.Size()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return err
	}
	if have > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(have, 10)+"-")
	}
	resp, err := r.opts.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	flags := os.O_WRONLY | os.O_CREATE
	switch {
	case resp.StatusCode == http.StatusPartialContent && have > 0:
		start, err := contentRangeStart(resp.Header.Get("Content-Range"))
		if err != nil || start != have {
			return fmt.Errorf("server answered range request for byte %d with Content-Range %q", have, resp.Header.Get("Content-Range"))
		}
		flags |= os.O_APPEND
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable && have > 0:
		return nil // the .part is already complete; the checksum decides
	case resp.StatusCode == http.StatusOK:
		flags |= os.O_TRUNC
	default:
		return &statusError{url: rawURL, code: resp.StatusCode, status: resp.Status}
	}
	out, err := os.OpenFile(part, flags, 0o644)
	if err != nil {
		return err
	}
	_, cerr := io.Copy(out, ctxReader{ctx: ctx, r: resp.Body})
	if err := out.Close(); cerr == nil {
		cerr = err
	}
	return cerr
}

// statusError is an unexpected HTTP status.
type statusError struct {
	url    string
	code   int
	status string
}

func (e *statusError) Error() string { return fmt.Sprintf("GET %s: %s", e.url, e.status) }

// permanent says retrying cannot help (a wrong URL or version), unlike 5xx,
// timeouts (408) and rate limits (429).
func (e *statusError) permanent() bool {
	return e.code >= 400 && e.code < 500 && e.code != http.StatusRequestTimeout && e.code != http.StatusTooManyRequests
}

func contentRangeStart(h string) (int64, error) {
	// "bytes START-END/TOTAL"
	rest, ok := strings.CutPrefix(h, "bytes ")
	if !ok {
		return 0, fmt.Errorf("bad Content-Range %q", h)
	}
	start, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, fmt.Errorf("bad Content-Range %q", h)
	}
	return strconv.ParseInt(start, 10, 64)
}

// extractMember copies f.Member out of the .tar.gz archive into the cache.
func (r *Remote) extractMember(ctx context.Context, f File, archive, want string) (string, error) {
	dst := filepath.Join(filepath.Dir(archive), "members", filepath.FromSlash(path.Clean(f.Member)))
	if sum, _, err := hashFile(ctx, dst); err == nil && (want == "" || sum == want) {
		return dst, nil
	}
	af, err := os.Open(archive)
	if err != nil {
		return "", fmt.Errorf("open archive for %s: %w", f.Name, err)
	}
	defer af.Close()
	zr, err := gzip.NewReader(bufio.NewReader(af))
	if err != nil {
		return "", fmt.Errorf("read archive %s for %s: %w", filepath.Base(archive), f.Name, err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return "", fmt.Errorf("archive %s has no %s (for %s)", f.URL, f.Member, f.Name)
		}
		if err != nil {
			return "", fmt.Errorf("read archive %s for %s: %w", filepath.Base(archive), f.Name, err)
		}
		if path.Clean(strings.TrimPrefix(h.Name, "./")) != path.Clean(f.Member) || h.Typeflag != tar.TypeReg {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return "", err
		}
		tmp := dst + ".tmp"
		out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o755)
		if err != nil {
			return "", err
		}
		_, cerr := io.Copy(out, ctxReader{ctx: ctx, r: tr})
		if err := out.Close(); cerr == nil {
			cerr = err
		}
		if cerr != nil {
			os.Remove(tmp)
			return "", fmt.Errorf("extract %s: %w", f.Name, cerr)
		}
		return dst, os.Rename(tmp, dst)
	}
}
