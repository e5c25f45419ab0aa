package artifacts

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// Default upstream locations: the URLs operators normally download from.
const (
	DefaultKubernetesURL = "https://dl.k8s.io/release"
	DefaultEtcdURL       = "https://github.com/etcd-io/etcd/releases/download"
	DefaultCrictlURL     = "https://github.com/kubernetes-sigs/cri-tools/releases/download"
)

// KubernetesBinaries are the Kubernetes files install uses, in install order.
var KubernetesBinaries = []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy", "kubectl"}

// EtcdBinaries are the files of an etcd release that install uses.
var EtcdBinaries = []string{"etcd", "etcdctl", "etcdutl"}

// OSPackages are installed with the node's package manager rather than shipped:
// they are what the distribution patches, and containerd needs cgo to build.
var OSPackages = []string{"containerd", "runc", "containernetworking-plugins"}

// Upstream says where to download each component from and which versions.
// Base URLs may point at a mirror with the same layout.
type Upstream struct {
	KubernetesVersion string
	EtcdVersion       string
	CrictlVersion     string // "" leaves crictl out
	Arch              string // default amd64

	KubernetesURL string // default DefaultKubernetesURL: BASE/vX/bin/linux/ARCH/NAME(.sha256)
	EtcdURL       string // default DefaultEtcdURL: BASE/vX/etcd-vX-linux-ARCH.tar.gz + SHA256SUMS
	CrictlURL     string // default DefaultCrictlURL: BASE/vX/crictl-vX-linux-ARCH.tar.gz(.sha256)
}

// Manifest returns the manifest of u's release files. Checksums are not
// pinned: Remote takes them from upstream's checksum files. Images are not
// listed: registries are out of reach of an air-gapped install, so image
// tarballs come from a built directory or a bundle.
func (u Upstream) Manifest() (*Manifest, error) {
	if u.Arch == "" {
		u.Arch = "amd64"
	}
	k8sBase := strings.TrimRight(orDefault(u.KubernetesURL, DefaultKubernetesURL), "/")
	etcdBase := strings.TrimRight(orDefault(u.EtcdURL, DefaultEtcdURL), "/")
	crictlBase := strings.TrimRight(orDefault(u.CrictlURL, DefaultCrictlURL), "/")
	m := &Manifest{APIVersion: APIVersion, Kind: ManifestKind, KubernetesVersion: u.KubernetesVersion,
		EtcdVersion: u.EtcdVersion, Arch: u.Arch}
	for _, b := range KubernetesBinaries {
		url := fmt.Sprintf("%s/%s/bin/linux/%s/%s", k8sBase, u.KubernetesVersion, u.Arch, b)
		m.Files = append(m.Files, File{Name: b, Path: "bin/" + b, Kind: KindBinary, Component: "kubernetes",
			Version: u.KubernetesVersion, URL: url, ChecksumURL: url + ".sha256"})
	}
	etcdDir := fmt.Sprintf("etcd-%s-linux-%s", u.EtcdVersion, u.Arch)
	for _, b := range EtcdBinaries {
		m.Files = append(m.Files, File{Name: b, Path: "bin/" + b, Kind: KindBinary, Component: "etcd",
			Version: u.EtcdVersion, URL: fmt.Sprintf("%s/%s/%s.tar.gz", etcdBase, u.EtcdVersion, etcdDir),
			ChecksumURL: fmt.Sprintf("%s/%s/SHA256SUMS", etcdBase, u.EtcdVersion), Member: etcdDir + "/" + b})
	}
	if u.CrictlVersion != "" {
		url := fmt.Sprintf("%s/%s/crictl-%s-linux-%s.tar.gz", crictlBase, u.CrictlVersion, u.CrictlVersion, u.Arch)
		m.Files = append(m.Files, File{Name: "crictl", Path: "bin/crictl", Kind: KindBinary, Component: "crictl",
			Version: u.CrictlVersion, URL: url, ChecksumURL: url + ".sha256", Member: "crictl"})
	}
	for _, p := range OSPackages {
		m.Files = append(m.Files, File{Name: p, Kind: KindOSPackage, Component: p, Package: p})
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return m, nil
}

// Paths under a mirror (spec.artifacts.url): one directory per upstream, each
// laid out like that upstream, so a mirror is three plain copies.
const (
	MirrorKubernetesPath = "/kubernetes" // like DefaultKubernetesURL
	MirrorEtcdPath       = "/etcd"       // like DefaultEtcdURL
	MirrorCrictlPath     = "/cri-tools"  // like DefaultCrictlURL
)

// companions pins, per Kubernetes minor, the etcd and crictl releases
// installed with it (kubeadm pins etcd per minor the same way). They are the
// versions this release of kubewright builds and tests with each minor
// (hack/build-artifacts.sh).
var companions = map[string]struct{ etcd, crictl string }{
	"v1.36": {etcd: "v3.7.3", crictl: "v1.37.0"},
	"v1.37": {etcd: "v3.7.3", crictl: "v1.37.0"},
}

var releaseRE = regexp.MustCompile(`^(v\d+\.\d+)\.\d+$`)

// UpstreamFor is the upstream release set for one Kubernetes release: that
// release, with the etcd and crictl releases paired with its minor. A
// non-empty mirror replaces the upstream base URLs with MIRROR/kubernetes,
// MIRROR/etcd and MIRROR/cri-tools.
func UpstreamFor(kubernetesVersion, mirror string) (Upstream, error) {
	m := releaseRE.FindStringSubmatch(kubernetesVersion)
	if m == nil {
		return Upstream{}, fmt.Errorf("kubernetes version %q: want a release like v1.37.2", kubernetesVersion)
	}
	c, ok := companions[m[1]]
	if !ok {
		known := make([]string, 0, len(companions))
		for k := range companions {
			known = append(known, k)
		}
		sort.Strings(known)
		return Upstream{}, fmt.Errorf("no etcd and crictl releases are paired with Kubernetes %s (this kubewright pairs %s)", m[1], strings.Join(known, ", "))
	}
	u := Upstream{KubernetesVersion: kubernetesVersion, EtcdVersion: c.etcd, CrictlVersion: c.crictl}
	if mirror != "" {
		base := strings.TrimRight(mirror, "/")
		u.KubernetesURL, u.EtcdURL, u.CrictlURL = base+MirrorKubernetesPath, base+MirrorEtcdPath, base+MirrorCrictlPath
	}
	return u, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
