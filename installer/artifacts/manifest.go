// Package artifacts knows which files `install` puts on hosts (Kubernetes and
// etcd binaries, crictl, image tarballs, the OS packages to install instead of
// binaries), where they come from and whether they are intact.
//
// Everything goes through a versions manifest that pins each file's sha256, so
// a file is checked the same way whatever its source: upstream release URLs
// (Remote), a local directory such as the one hack/build-artifacts.sh writes
// (Dir), or an offline bundle (ExtractBundle, VerifyBundle). A file that does
// not match is refused by name with the expected and actual checksums: a
// half-downloaded or tampered kubelet must never reach a host.
package artifacts

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

// APIVersion and ManifestKind identify the manifest format this release reads.
const (
	APIVersion   = "kubewright.io/v1alpha1"
	ManifestKind = "ArtifactManifest"
	// ManifestFile is the manifest's name in an artifacts directory and the
	// first entry of a bundle.
	ManifestFile = "manifest.yaml"
)

// Kind says what a manifest entry is and so how install uses it.
type Kind string

const (
	KindBinary Kind = "binary" // an executable copied to /usr/local/bin
	KindImage  Kind = "image"  // a docker-archive tarball imported into containerd
	// KindOSPackage is installed with the node's package manager (containerd,
	// runc, CNI plugins); it has no file, only a package name.
	KindOSPackage Kind = "os-package"
)

// Manifest lists every artifact of one release set.
type Manifest struct {
	APIVersion        string  `yaml:"apiVersion" json:"apiVersion"`
	Kind              string  `yaml:"kind" json:"kind"`
	KubernetesVersion string  `yaml:"kubernetesVersion" json:"kubernetesVersion"`
	EtcdVersion       string  `yaml:"etcdVersion" json:"etcdVersion"`
	Arch              string  `yaml:"arch,omitempty" json:"arch,omitempty"`
	Files             []File  `yaml:"files" json:"files"`
	Images            []Image `yaml:"images,omitempty" json:"images,omitempty"`
}

// File is one artifact. Name is its key (what steps ask for, e.g.
// "kube-apiserver"); Path is where it lives relative to the artifacts
// directory or bundle root.
type File struct {
	Name      string `yaml:"name" json:"name"`
	Path      string `yaml:"path,omitempty" json:"path,omitempty"`
	SHA256    string `yaml:"sha256,omitempty" json:"sha256,omitempty"`
	Size      int64  `yaml:"size,omitempty" json:"size,omitempty"`
	Kind      Kind   `yaml:"kind" json:"kind"`
	Component string `yaml:"component" json:"component"`
	Version   string `yaml:"version,omitempty" json:"version,omitempty"`
	// URL is where upstream publishes the file (or the archive holding it).
	URL string `yaml:"url,omitempty" json:"url,omitempty"`
	// ChecksumURL is upstream's sha256 for URL: either a bare hex digest
	// (dl.k8s.io's NAME.sha256) or "digest  filename" lines (SHA256SUMS).
	ChecksumURL string `yaml:"checksumURL,omitempty" json:"checksumURL,omitempty"`
	// Member is the file's path inside the .tar.gz at URL (etcd and crictl
	// ship archives, not bare binaries).
	Member string `yaml:"member,omitempty" json:"member,omitempty"`
	// Package is the OS package name of a KindOSPackage entry.
	Package string `yaml:"package,omitempty" json:"package,omitempty"`
}

// HasFile reports whether the entry is a file to verify and ship (not an OS package).
func (f File) HasFile() bool { return f.Kind != KindOSPackage }

// Image maps an image reference to the image-kind File holding its tarball.
type Image struct {
	Name   string `yaml:"name" json:"name"`     // reference, e.g. registry.k8s.io/pause:3.10
	File   string `yaml:"file" json:"file"`     // name of the File entry
	Digest string `yaml:"digest" json:"digest"` // config digest (image ID)
}

// File returns the entry called name.
func (m *Manifest) File(name string) (File, bool) {
	for _, f := range m.Files {
		if f.Name == name {
			return f, true
		}
	}
	return File{}, false
}

// Clone returns a deep copy, so sources can hand out their manifest without
// callers changing what the source verifies against.
func (m *Manifest) Clone() *Manifest {
	c := *m
	c.Files = append([]File(nil), m.Files...)
	c.Images = append([]Image(nil), m.Images...)
	return &c
}

var (
	sha256Re  = regexp.MustCompile(`^[0-9a-f]{64}$`)
	digestRe  = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
	versionRe = regexp.MustCompile(`^v\d+\.\d+\.\d+([-+.][0-9A-Za-z.-]+)?$`)
)

// Validate checks the manifest's shape and returns every problem at once.
// A file entry needs a pinned sha256 unless upstream publishes one
// (ChecksumURL): Remote fills it in from there before anything is used.
func (m *Manifest) Validate() error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if m.APIVersion != APIVersion || m.Kind != ManifestKind {
		add("apiVersion/kind is %q/%q, want %q/%q", m.APIVersion, m.Kind, APIVersion, ManifestKind)
	}
	if !versionRe.MatchString(m.KubernetesVersion) {
		add("kubernetesVersion %q: want vMAJOR.MINOR.PATCH", m.KubernetesVersion)
	}
	if !versionRe.MatchString(m.EtcdVersion) {
		add("etcdVersion %q: want vMAJOR.MINOR.PATCH", m.EtcdVersion)
	}
	names := map[string]File{}
	paths := map[string]string{}
	for i, f := range m.Files {
		where := fmt.Sprintf("files[%d] (%s)", i, f.Name)
		if f.Name == "" {
			add("files[%d]: name is empty", i)
		} else if _, dup := names[f.Name]; dup {
			add("%s: duplicate name", where)
		}
		names[f.Name] = f
		switch f.Kind {
		case KindBinary, KindImage:
			if f.Path == "" || !isLocalPath(f.Path) || f.Path == ManifestFile {
				add("%s: path %q must be a relative path inside the artifacts directory", where, f.Path)
			} else if other, dup := paths[f.Path]; dup {
				add("%s: path %s is also used by %s", where, f.Path, other)
			} else {
				paths[f.Path] = f.Name
			}
			switch {
			case f.SHA256 != "" && !sha256Re.MatchString(f.SHA256):
				add("%s: sha256 %q is not 64 lowercase hex digits", where, f.SHA256)
			case f.SHA256 == "" && f.ChecksumURL == "":
				add("%s: no sha256 and no checksumURL: the file could not be verified", where)
			}
			if f.Size < 0 {
				add("%s: negative size", where)
			}
			if f.Member != "" && f.URL == "" {
				add("%s: member without url", where)
			}
		case KindOSPackage:
			if f.Package == "" {
				add("%s: os-package entry needs package", where)
			}
		default:
			add("%s: kind %q: want binary, image or os-package", where, f.Kind)
		}
	}
	for i, img := range m.Images {
		f, ok := names[img.File]
		switch {
		case img.Name == "":
			add("images[%d]: name is empty", i)
		case !ok:
			add("images[%d] (%s): file %q is not in files", i, img.Name, img.File)
		case f.Kind != KindImage:
			add("images[%d] (%s): file %q is a %s, not an image", i, img.Name, img.File, f.Kind)
		}
		if img.Digest != "" && !digestRe.MatchString(img.Digest) {
			add("images[%d] (%s): digest %q: want sha256:<64 hex>", i, img.Name, img.Digest)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("invalid artifact manifest: %w", errors.Join(errs...))
	}
	return nil
}

// isLocalPath accepts slash-separated relative paths that stay inside the root.
func isLocalPath(p string) bool {
	return !path.IsAbs(p) && path.Clean(p) == p && p != "." && !strings.HasPrefix(p, "../") && p != ".." &&
		!strings.Contains(p, "\\")
}

// ParseManifest decodes and validates a manifest; unknown fields are errors so
// a typo cannot silently drop a checksum.
func ParseManifest(data []byte) (*Manifest, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("artifact manifest is empty")
		}
		return nil, fmt.Errorf("parse artifact manifest: %w", err)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// LoadManifest reads and parses a manifest file.
func LoadManifest(file string) (*Manifest, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read artifact manifest: %w", err)
	}
	m, err := ParseManifest(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return m, nil
}

// Marshal encodes the manifest as YAML.
func (m *Manifest) Marshal() ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(m); err != nil {
		return nil, fmt.Errorf("encode artifact manifest: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
