// Command mkimage packs static binaries as a single-layer container image and
// writes it as a docker-archive tarball that `ctr -n k8s.io images import`
// and `docker load` accept. The lab has no registry and no docker, so this is
// how the pause and test images reach containerd: the same path air-gapped
// installs use.
//
// The output is reproducible: file times, owners and the image's creation
// time are fixed (SOURCE_DATE_EPOCH, default 0), so an unchanged input gives
// a byte-identical tarball and the artifact manifest's checksums stay stable.
//
//	mkimage -ref registry.k8s.io/pause:3.10 -o pause.tar \
//	    -file _build/pause:/pause:0755 -entrypoint /pause
//
// -tree SRC:DST copies a host directory (regular files with their permission
// bits, symlinks as symlinks, subdirectories); the flannel image uses it for
// Debian's iptables extension modules. -env PATH=... replaces the default
// PATH (/usr/local/bin:/usr/bin:/bin) instead of adding a second one.
//
// It prints one JSON object: {"ref":..., "file":..., "digest":...}, where
// digest is the image's config digest (its image ID, as `crictl images` shows
// it); a registry manifest digest would depend on how the importer rewrites
// the manifest.
package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

// spec is everything one image is made of.
type spec struct {
	Ref        string
	Out        string
	Files      []fileSpec
	Trees      []treeSpec
	Links      []linkSpec
	Entrypoint []string
	Cmd        []string
	Env        []string
	Created    time.Time
}

type fileSpec struct {
	Src, Dst string
	Mode     int64
}

type linkSpec struct{ Dst, Target string }

// treeSpec is a host directory copied into the image at Dst.
type treeSpec struct{ Src, Dst string }

// result is what mkimage prints, for the artifact manifest.
type result struct {
	Ref    string `json:"ref"`
	File   string `json:"file"`
	Digest string `json:"digest"`
}

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("mkimage", flag.ContinueOnError)
	var s spec
	var files, trees, links, env listFlag
	var entry, cmd string
	fs.StringVar(&s.Ref, "ref", "", "image reference, e.g. registry.k8s.io/pause:3.10")
	fs.StringVar(&s.Out, "o", "", "output tarball")
	fs.Var(&files, "file", "SRC:DST[:MODE] file to add (repeatable; MODE octal, default 0755)")
	fs.Var(&trees, "tree", "SRC:DST host directory to copy recursively, keeping modes and symlinks (repeatable)")
	fs.Var(&links, "link", "DST=TARGET symlink to add (repeatable)")
	fs.Var(&env, "env", "KEY=VALUE environment variable (repeatable)")
	fs.StringVar(&entry, "entrypoint", "", "entrypoint, space separated")
	fs.StringVar(&cmd, "cmd", "", "default arguments, space separated")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if s.Ref == "" || s.Out == "" || len(files) == 0 {
		return errors.New("-ref, -o and at least one -file are required")
	}
	for _, f := range files {
		fsp, err := parseFile(f)
		if err != nil {
			return err
		}
		s.Files = append(s.Files, fsp)
	}
	for _, tr := range trees {
		src, dst, ok := strings.Cut(tr, ":")
		if !ok || src == "" || !path.IsAbs(dst) || strings.Contains(dst, ":") {
			return fmt.Errorf("-tree %q: want SRC:/ABS/DST", tr)
		}
		s.Trees = append(s.Trees, treeSpec{Src: src, Dst: path.Clean(dst)})
	}
	for _, l := range links {
		dst, target, ok := strings.Cut(l, "=")
		if !ok || dst == "" || target == "" {
			return fmt.Errorf("-link %q: want DST=TARGET", l)
		}
		s.Links = append(s.Links, linkSpec{Dst: dst, Target: target})
	}
	s.Entrypoint = strings.Fields(entry)
	s.Cmd = strings.Fields(cmd)
	for _, e := range env {
		if k, _, ok := strings.Cut(e, "="); !ok || k == "" {
			return fmt.Errorf("-env %q: want KEY=VALUE", e)
		}
	}
	s.Env = env
	epoch := int64(0)
	if v := os.Getenv("SOURCE_DATE_EPOCH"); v != "" {
		e, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("SOURCE_DATE_EPOCH: %w", err)
		}
		epoch = e
	}
	s.Created = time.Unix(epoch, 0).UTC()
	res, err := build(s)
	if err != nil {
		return err
	}
	return json.NewEncoder(stdout).Encode(res)
}

func parseFile(f string) (fileSpec, error) {
	parts := strings.Split(f, ":")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || !path.IsAbs(parts[1]) {
		return fileSpec{}, fmt.Errorf("-file %q: want SRC:/ABS/DST[:MODE]", f)
	}
	fsp := fileSpec{Src: parts[0], Dst: parts[1], Mode: 0o755}
	if len(parts) == 3 {
		m, err := strconv.ParseInt(parts[2], 8, 32)
		if err != nil {
			return fileSpec{}, fmt.Errorf("-file %q: mode: %w", f, err)
		}
		fsp.Mode = m
	}
	return fsp, nil
}

func build(s spec) (result, error) {
	tag, err := name.NewTag(s.Ref, name.WeakValidation)
	if err != nil {
		return result{}, fmt.Errorf("image reference %q: %w", s.Ref, err)
	}
	layerTar, err := layerBytes(s)
	if err != nil {
		return result{}, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	})
	if err != nil {
		return result{}, fmt.Errorf("layer: %w", err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return result{}, fmt.Errorf("append layer: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return result{}, err
	}
	cf = cf.DeepCopy()
	cf.Architecture = "amd64"
	cf.OS = "linux"
	cf.Created = v1.Time{Time: s.Created}
	cf.Config.Entrypoint = s.Entrypoint
	cf.Config.Cmd = s.Cmd
	cf.Config.Env = s.Env
	if !slices.ContainsFunc(s.Env, func(e string) bool { return strings.HasPrefix(e, "PATH=") }) {
		cf.Config.Env = append([]string{"PATH=/usr/local/bin:/usr/bin:/bin"}, s.Env...)
	}
	cf.Config.User = "0"
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return result{}, fmt.Errorf("config: %w", err)
	}
	// The history entry only documents where the layer came from.
	img, err = mutate.CreatedAt(img, v1.Time{Time: s.Created})
	if err != nil {
		return result{}, err
	}
	tmp := s.Out + ".tmp"
	if err := tarball.WriteToFile(tmp, tag, img); err != nil {
		os.Remove(tmp)
		return result{}, fmt.Errorf("write %s: %w", s.Out, err)
	}
	if err := os.Rename(tmp, s.Out); err != nil {
		return result{}, err
	}
	id, err := img.ConfigName()
	if err != nil {
		return result{}, err
	}
	return result{Ref: tag.Name(), File: s.Out, Digest: id.String()}, nil
}

// layerBytes writes the image's one layer: parent directories first, then the
// files and links, all owned by root with fixed times.
func layerBytes(s spec) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	mkdirs := func(p string) error {
		var parents []string
		for d := path.Dir(p); d != "/" && d != "."; d = path.Dir(d) {
			parents = append([]string{d}, parents...)
		}
		for _, d := range parents {
			if dirs[d] {
				continue
			}
			dirs[d] = true
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: strings.TrimPrefix(d, "/") + "/",
				Mode: 0o755, ModTime: s.Created, Format: tar.FormatPAX}); err != nil {
				return err
			}
		}
		return nil
	}
	for _, f := range s.Files {
		b, err := os.ReadFile(f.Src)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", f.Src, err)
		}
		if err := mkdirs(f.Dst); err != nil {
			return nil, err
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(f.Dst, "/"),
			Mode: f.Mode, Size: int64(len(b)), ModTime: s.Created, Format: tar.FormatPAX}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(b); err != nil {
			return nil, err
		}
	}
	for _, t := range s.Trees {
		if err := addTree(tw, t, s.Created, dirs, mkdirs); err != nil {
			return nil, err
		}
	}
	for _, l := range s.Links {
		if err := mkdirs(l.Dst); err != nil {
			return nil, err
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: strings.TrimPrefix(l.Dst, "/"),
			Linkname: l.Target, Mode: 0o777, ModTime: s.Created, Format: tar.FormatPAX}); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// addTree writes host directory t.Src below t.Dst in lexical order: directories
// and regular files with their permission bits, symlinks with their targets as
// they are (relative ones keep working inside the image). Anything else is an
// error. Owners and times are fixed like the rest of the layer.
func addTree(tw *tar.Writer, t treeSpec, created time.Time, dirs map[string]bool, mkdirs func(string) error) error {
	st, err := os.Stat(t.Src)
	if err != nil {
		return fmt.Errorf("-tree %s: %w", t.Src, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("-tree %s: not a directory", t.Src)
	}
	// The parents of Dst; Dst itself is written by the walk with Src's mode.
	if err := mkdirs(t.Dst); err != nil {
		return err
	}
	return filepath.WalkDir(t.Src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(t.Src, p)
		if err != nil {
			return err
		}
		dst := path.Join(t.Dst, filepath.ToSlash(rel))
		info, err := d.Info()
		if err != nil {
			return err
		}
		h := &tar.Header{Name: strings.TrimPrefix(dst, "/"), Mode: int64(info.Mode().Perm()), ModTime: created, Format: tar.FormatPAX}
		switch {
		case d.IsDir():
			if dirs[dst] {
				return nil
			}
			dirs[dst] = true
			h.Typeflag, h.Name = tar.TypeDir, h.Name+"/"
			return tw.WriteHeader(h)
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			h.Typeflag, h.Linkname, h.Mode = tar.TypeSymlink, target, 0o777
			return tw.WriteHeader(h)
		case d.Type().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			h.Typeflag, h.Size = tar.TypeReg, int64(len(b))
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
			_, err = tw.Write(b)
			return err
		default:
			return fmt.Errorf("-tree %s: %s is a %v, want a directory, file or symlink", t.Src, p, d.Type())
		}
	})
}
