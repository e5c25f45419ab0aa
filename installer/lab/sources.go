package lab

import (
	"bufio"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// DefaultMirror is used when the host's apt has no Debian entry to copy.
const DefaultMirror = "http://deb.debian.org/debian"

// aptSource is one (URI, suite) pair from the host's apt configuration.
type aptSource struct {
	URI   string
	Suite string
}

// hostMirror picks the Debian mirror the host's apt uses for suite: the image
// must come from where this machine can reach, which on closed networks is
// only the mirror (or proxy) apt is configured with.
func hostMirror(root, suite string) string {
	var srcs []aptSource
	if f, err := os.Open(filepath.Join(root, "etc/apt/sources.list")); err == nil {
		srcs = append(srcs, parseOneLineSources(f)...)
		f.Close()
	}
	dir := filepath.Join(root, "etc/apt/sources.list.d")
	entries, _ := os.ReadDir(dir)
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	for _, n := range names {
		f, err := os.Open(filepath.Join(dir, n))
		if err != nil {
			continue
		}
		switch {
		case strings.HasSuffix(n, ".list"):
			srcs = append(srcs, parseOneLineSources(f)...)
		case strings.HasSuffix(n, ".sources"):
			srcs = append(srcs, parseDeb822Sources(f)...)
		}
		f.Close()
	}
	return chooseMirror(srcs, suite)
}

// chooseMirror prefers an entry for exactly suite, then any plain Debian
// release suite (no -updates/-security), else DefaultMirror.
func chooseMirror(srcs []aptSource, suite string) string {
	for _, s := range srcs {
		if s.Suite == suite {
			return s.URI
		}
	}
	for _, s := range srcs {
		if !strings.Contains(s.Suite, "-") && !strings.Contains(s.Suite, "/") &&
			strings.Contains(s.URI, "debian") && !strings.Contains(s.URI, "security") {
			return s.URI
		}
	}
	return DefaultMirror
}

// parseOneLineSources reads "deb [opts] URI suite comp..." lines.
func parseOneLineSources(r io.Reader) []aptSource {
	var out []aptSource
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		f := strings.Fields(line)
		if len(f) < 3 || f[0] != "deb" {
			continue
		}
		f = f[1:]
		if strings.HasPrefix(f[0], "[") {
			for len(f) > 0 && !strings.HasSuffix(f[0], "]") {
				f = f[1:]
			}
			if len(f) == 0 {
				continue
			}
			f = f[1:]
		}
		if len(f) < 2 {
			continue
		}
		out = append(out, aptSource{URI: strings.TrimSuffix(f[0], "/"), Suite: f[1]})
	}
	return out
}

// parseDeb822Sources reads deb822 stanzas (Types/URIs/Suites, Enabled: no skipped).
func parseDeb822Sources(r io.Reader) []aptSource {
	var out []aptSource
	fields := map[string]string{}
	flush := func() {
		enabled := !strings.EqualFold(strings.TrimSpace(fields["enabled"]), "no")
		if enabled && hasWord(fields["types"], "deb") {
			for _, u := range strings.Fields(fields["uris"]) {
				for _, s := range strings.Fields(fields["suites"]) {
					out = append(out, aptSource{URI: strings.TrimSuffix(u, "/"), Suite: s})
				}
			}
		}
		fields = map[string]string{}
	}
	var last string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.TrimSpace(line) == "":
			flush()
			last = ""
		case strings.HasPrefix(strings.TrimSpace(line), "#"):
		case line[0] == ' ' || line[0] == '\t':
			if last != "" {
				fields[last] += " " + strings.TrimSpace(line)
			}
		default:
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			last = strings.ToLower(strings.TrimSpace(k))
			fields[last] = strings.TrimSpace(v)
		}
	}
	flush()
	return out
}

func hasWord(s, w string) bool {
	for _, f := range strings.Fields(s) {
		if f == w {
			return true
		}
	}
	return false
}
