package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func TestBuildImageReadsBackAndIsReproducible(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "app")
	if err := os.WriteFile(bin, []byte("#!fake binary\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	out1, out2 := filepath.Join(dir, "a.tar"), filepath.Join(dir, "b.tar")
	var stdout bytes.Buffer
	args := func(out string) []string {
		return []string{"-ref", "kubewright.io/testapp:v1", "-o", out, "-file", bin + ":/testapp",
			"-link", "/bin/sh=/testapp", "-entrypoint", "/testapp", "-cmd", "serve"}
	}
	if err := run(args(out1), &stdout); err != nil {
		t.Fatal(err)
	}
	if err := run(args(out2), io.Discard); err != nil {
		t.Fatal(err)
	}
	var res result
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("output %q: %v", stdout.String(), err)
	}
	b1, _ := os.ReadFile(out1)
	b2, _ := os.ReadFile(out2)
	if !bytes.Equal(b1, b2) {
		t.Error("two builds of the same input differ")
	}

	tag, _ := name.NewTag("kubewright.io/testapp:v1")
	img, err := tarball.ImageFromPath(out1, &tag)
	if err != nil {
		t.Fatalf("read back: %v", err)
	}
	id, _ := img.ConfigName()
	if res.Digest != id.String() || res.Ref != "kubewright.io/testapp:v1" {
		t.Errorf("result %+v, want digest %s", res, id)
	}
	cf, _ := img.ConfigFile()
	if got := strings.Join(cf.Config.Entrypoint, " "); got != "/testapp" || cf.OS != "linux" || cf.Architecture != "amd64" {
		t.Errorf("config: entrypoint %q os %s arch %s", got, cf.OS, cf.Architecture)
	}
	layers, _ := img.Layers()
	if len(layers) != 1 {
		t.Fatalf("layers = %d, want 1", len(layers))
	}
	rc, _ := layers[0].Uncompressed()
	defer rc.Close()
	tr := tar.NewReader(rc)
	got := map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		switch h.Typeflag {
		case tar.TypeReg:
			b, _ := io.ReadAll(tr)
			got[h.Name] = string(b)
		case tar.TypeSymlink:
			got[h.Name] = "-> " + h.Linkname
		case tar.TypeDir:
			got[h.Name] = "dir"
		}
	}
	want := map[string]string{"testapp": "#!fake binary\n", "bin/": "dir", "bin/sh": "-> /testapp"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("layer entry %s = %q, want %q (all: %v)", k, got[k], v, got)
		}
	}
}

func TestRunRejectsBadFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"missing ref", []string{"-o", "x", "-file", "a:/a"}, "-ref, -o and at least one -file are required"},
		{"relative dst", []string{"-ref", "a/b:c", "-o", "x", "-file", "a:rel"}, `-file "a:rel": want SRC:/ABS/DST[:MODE]`},
		{"bad mode", []string{"-ref", "a/b:c", "-o", "x", "-file", "a:/a:9z"}, `-file "a:/a:9z": mode`},
		{"bad link", []string{"-ref", "a/b:c", "-o", "x", "-file", "a:/a", "-link", "nolink"}, `-link "nolink": want DST=TARGET`},
		{"relative tree dst", []string{"-ref", "a/b:c", "-o", "x", "-file", "a:/a", "-tree", "d:rel"}, `-tree "d:rel": want SRC:/ABS/DST`},
		{"tree without dst", []string{"-ref", "a/b:c", "-o", "x", "-file", "a:/a", "-tree", "d"}, `-tree "d": want SRC:/ABS/DST`},
		{"bad env", []string{"-ref", "a/b:c", "-o", "x", "-file", "a:/a", "-env", "NOEQUALS"}, `-env "NOEQUALS": want KEY=VALUE`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := run(tc.args, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// layerEntries reads the one layer of the image tarball at out as a map from
// entry name to "dir MODE", "file MODE CONTENT" or "-> TARGET".
func layerEntries(t *testing.T, out, ref string) (map[string]string, *v1.ConfigFile) {
	t.Helper()
	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := tarball.ImageFromPath(out, &tag)
	if err != nil {
		t.Fatalf("read back: %v", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers = %d (%v), want 1", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	got := map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, dup := got[h.Name]; dup {
			t.Errorf("layer has %s twice", h.Name)
		}
		switch h.Typeflag {
		case tar.TypeReg:
			b, _ := io.ReadAll(tr)
			got[h.Name] = fmt.Sprintf("file %04o %s", h.Mode, b)
		case tar.TypeSymlink:
			got[h.Name] = "-> " + h.Linkname
		case tar.TypeDir:
			got[h.Name] = fmt.Sprintf("dir %04o", h.Mode)
		default:
			got[h.Name] = fmt.Sprintf("type %c", h.Typeflag)
		}
		if h.Uid != 0 || h.Gid != 0 || !h.ModTime.Equal(time.Unix(0, 0)) {
			t.Errorf("%s: uid %d gid %d mtime %v, want root and the epoch", h.Name, h.Uid, h.Gid, h.ModTime)
		}
	}
	return got, cf
}

func TestTreeCopiesDirectoryWithModesAndSymlinks(t *testing.T) {
	dir := t.TempDir()
	lib := filepath.Join(dir, "xtables")
	if err := os.MkdirAll(filepath.Join(lib, "sub"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(lib, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, mode := range map[string]os.FileMode{"libxt_comment.so": 0o644, "sub/tool": 0o755} {
		p := filepath.Join(lib, name)
		if err := os.WriteFile(p, []byte(name), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("libxt_comment.so", filepath.Join(lib, "libxt_state.so")); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "multi")
	if err := os.WriteFile(bin, []byte("elf"), 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "img.tar")
	args := []string{"-ref", "example.com/x:v1", "-o", out,
		"-file", bin + ":/usr/sbin/multi",
		"-file", bin + ":/usr/lib/x86_64-linux-gnu/libfoo.so.1:0644",
		"-tree", lib + ":/usr/lib/x86_64-linux-gnu/xtables",
		"-link", "/usr/sbin/iptables=multi",
		"-env", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "-env", "A=b"}
	if err := run(args, io.Discard); err != nil {
		t.Fatal(err)
	}
	got, cf := layerEntries(t, out, "example.com/x:v1")
	want := map[string]string{
		"usr/":                                              "dir 0755",
		"usr/lib/":                                          "dir 0755",
		"usr/lib/x86_64-linux-gnu/":                         "dir 0755",
		"usr/lib/x86_64-linux-gnu/libfoo.so.1":              "file 0644 elf",
		"usr/lib/x86_64-linux-gnu/xtables/":                 "dir 0755",
		"usr/lib/x86_64-linux-gnu/xtables/sub/":             "dir 0750",
		"usr/lib/x86_64-linux-gnu/xtables/libxt_comment.so": "file 0644 libxt_comment.so",
		"usr/lib/x86_64-linux-gnu/xtables/libxt_state.so":   "-> libxt_comment.so",
		"usr/lib/x86_64-linux-gnu/xtables/sub/tool":         "file 0755 sub/tool",
		"usr/sbin/":         "dir 0755",
		"usr/sbin/multi":    "file 0755 elf",
		"usr/sbin/iptables": "-> multi",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("layer entry %s = %q, want %q", k, got[k], v)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected layer entry %s = %q", k, got[k])
		}
	}
	// -env PATH replaces the default PATH rather than adding a second one.
	if env := strings.Join(cf.Config.Env, " "); env != "PATH=/usr/sbin:/usr/bin:/sbin:/bin A=b" {
		t.Errorf("env = %q", env)
	}

	// Without -env PATH the default stays.
	if err := run([]string{"-ref", "example.com/x:v1", "-o", out, "-file", bin + ":/multi", "-env", "A=b"}, io.Discard); err != nil {
		t.Fatal(err)
	}
	if _, cf := layerEntries(t, out, "example.com/x:v1"); strings.Join(cf.Config.Env, " ") != "PATH=/usr/local/bin:/usr/bin:/bin A=b" {
		t.Errorf("default env = %q", cf.Config.Env)
	}
}

func TestTreeRejectsMissingSourceAndSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "a")
	if err := os.WriteFile(bin, []byte("a"), 0o755); err != nil {
		t.Fatal(err)
	}
	base := []string{"-ref", "example.com/x:v1", "-o", filepath.Join(dir, "x.tar"), "-file", bin + ":/a"}
	if err := run(append(base, "-tree", filepath.Join(dir, "missing")+":/lib"), io.Discard); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing tree: err = %v", err)
	}
	if err := run(append(base, "-tree", bin+":/lib"), io.Discard); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("file as tree: err = %v", err)
	}
	fifoDir := filepath.Join(dir, "fifo")
	if err := os.Mkdir(fifoDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(fifoDir, "p"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := run(append(base, "-tree", fifoDir+":/lib"), io.Discard); err == nil || !strings.Contains(err.Error(), "want a directory, file or symlink") {
		t.Errorf("fifo in tree: err = %v", err)
	}
}
