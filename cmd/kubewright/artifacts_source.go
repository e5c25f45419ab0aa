package main

import (
	"fmt"
	"io"
	"log/slog"
	"path/filepath"

	"github.com/kubewright/kubewright/installer/artifacts"
	"github.com/kubewright/kubewright/installer/inventory"
)

// downloadCacheName is the directory under a cluster's state directory that
// keeps verified downloads (and resumable .part files) between runs.
const downloadCacheName = "downloads"

// openDownloadArtifacts is spec.artifacts.source: download. It returns a
// source of the release files of spec.kubernetes.version, with the etcd and
// crictl releases paired with that minor (artifacts.UpstreamFor), from the
// upstream release URLs operators normally use or, when spec.artifacts.url is
// set, from that mirror (MIRROR/kubernetes, MIRROR/etcd, MIRROR/cri-tools,
// each laid out like its upstream).
//
// Nothing is fetched here: the caller's VerifyAll downloads every file into
// <stateDir>/downloads, resuming partial files, and refuses each one whose
// sha256 is not the one upstream publishes, before any host is touched. A
// re-run fetches only the checksum files. Upstream publishes binaries, not
// image tarballs, so the manifest lists no images. Downloads are reported
// on log, one line per file (nil: silent).
func openDownloadArtifacts(cl *inventory.Cluster, stateDir string, log io.Writer) (artifacts.Source, error) {
	a := cl.Spec.Artifacts
	u, err := artifacts.UpstreamFor(cl.Spec.Kubernetes.Version, a.URL)
	if err != nil {
		return nil, badInput(fmt.Errorf("spec.artifacts.source download: %w; fix: set spec.kubernetes.version to a paired release, or use source: dir or bundle", err))
	}
	m, err := u.Manifest()
	if err != nil {
		return nil, badInput(fmt.Errorf("spec.artifacts.source download: %w", err))
	}
	logger := slog.New(slog.DiscardHandler)
	if log != nil {
		logger = slog.New(slog.NewTextHandler(log, nil))
	}
	r, err := artifacts.NewRemote(m, artifacts.RemoteOptions{CacheDir: filepath.Join(stateDir, downloadCacheName), Logger: logger})
	if err != nil {
		return nil, fmt.Errorf("spec.artifacts.source download: %w", err)
	}
	return r, nil
}
