package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
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
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := run(tc.args, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}
