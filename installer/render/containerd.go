package render

import (
	"fmt"
	"net/url"
	"strings"
)

// Container runtime paths on hosts.
const (
	ContainerdConfig = "/etc/containerd/config.toml"
	ContainerdSocket = "unix:///run/containerd/containerd.sock"
	CrictlConfig     = "/etc/crictl.yaml"
	// CNIBinDirDebian is where Debian's containernetworking-plugins puts the
	// plugins; upstream tarballs and most CNI add-ons use /opt/cni/bin.
	CNIBinDirDebian = "/usr/lib/cni"
	CNIConfDir      = "/etc/cni/net.d"
)

// ManagedMarker starts every file kubewright owns on a host. Steps look for
// it before replacing a file a package or an operator may have written.
const ManagedMarker = "# Managed by kubewright"

// ContainerdParams are the host-specific settings of containerd's config.
type ContainerdParams struct {
	// SandboxImage is the pause image imported from the artifacts; pinning
	// it means containerd never tries to pull registry.k8s.io/pause offline.
	SandboxImage string
	// SystemdCgroup selects runc's systemd cgroup driver; it must match the
	// kubelet's cgroupDriver (systemd when PID 1 is systemd on cgroup v2).
	SystemdCgroup bool
	// RestrictOOMScoreAdj is needed where containerd lacks CAP_SYS_RESOURCE
	// (inside a container such as the lab's nspawn machines).
	RestrictOOMScoreAdj bool
	CNIBinDir           string
	CNIConfDir          string
	// RegistryMirror, when set, is tried first for every registry (with the
	// upstream registry as fallback), e.g. https://mirror.example:5000.
	RegistryMirror string
}

// mirroredRegistries are the registries the mirror fronts: where upstream
// Kubernetes and add-on images live.
var mirroredRegistries = []string{"docker.io", "registry.k8s.io", "quay.io", "ghcr.io"}

// ContainerdConfigFile renders /etc/containerd/config.toml (config version 2,
// what containerd 1.6 and 1.7 read; 2.x migrates it on load).
func ContainerdConfigFile(p ContainerdParams) (string, error) {
	if p.SandboxImage == "" {
		return "", fmt.Errorf("containerd config: sandbox image is required")
	}
	if strings.ContainsAny(p.SandboxImage, "\"\\\n") || strings.ContainsAny(p.CNIBinDir+p.CNIConfDir, "\"\\\n") {
		return "", fmt.Errorf("containerd config: sandbox image and CNI dirs must not contain quotes, backslashes or newlines")
	}
	if p.CNIBinDir == "" {
		p.CNIBinDir = CNIBinDirDebian
	}
	if p.CNIConfDir == "" {
		p.CNIConfDir = CNIConfDir
	}
	var mirror string
	if p.RegistryMirror != "" {
		u, err := url.Parse(p.RegistryMirror)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.ContainsAny(p.RegistryMirror, "\"\\\n ") {
			return "", fmt.Errorf("containerd config: registry mirror %q must be an http(s) URL such as https://mirror.example:5000", p.RegistryMirror)
		}
		mirror = strings.TrimRight(p.RegistryMirror, "/")
	}
	var b strings.Builder
	b.WriteString(ManagedMarker + ": changes are overwritten by the next install/upgrade.\n")
	b.WriteString("version = 2\n\n")
	b.WriteString("[plugins]\n")
	b.WriteString("  [plugins.\"io.containerd.grpc.v1.cri\"]\n")
	fmt.Fprintf(&b, "    sandbox_image = %q\n", p.SandboxImage)
	fmt.Fprintf(&b, "    restrict_oom_score_adj = %t\n", p.RestrictOOMScoreAdj)
	b.WriteString("    [plugins.\"io.containerd.grpc.v1.cri\".cni]\n")
	fmt.Fprintf(&b, "      bin_dir = %q\n", p.CNIBinDir)
	fmt.Fprintf(&b, "      conf_dir = %q\n", p.CNIConfDir)
	b.WriteString("    [plugins.\"io.containerd.grpc.v1.cri\".containerd]\n")
	b.WriteString("      default_runtime_name = \"runc\"\n")
	b.WriteString("      [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc]\n")
	b.WriteString("        runtime_type = \"io.containerd.runc.v2\"\n")
	b.WriteString("        [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc.options]\n")
	fmt.Fprintf(&b, "          SystemdCgroup = %t\n", p.SystemdCgroup)
	if mirror != "" {
		b.WriteString("    [plugins.\"io.containerd.grpc.v1.cri\".registry]\n")
		b.WriteString("      [plugins.\"io.containerd.grpc.v1.cri\".registry.mirrors]\n")
		for _, r := range mirroredRegistries {
			upstream := "https://" + r
			if r == "docker.io" {
				upstream = "https://registry-1.docker.io"
			}
			fmt.Fprintf(&b, "        [plugins.\"io.containerd.grpc.v1.cri\".registry.mirrors.%q]\n", r)
			fmt.Fprintf(&b, "          endpoint = [%q, %q]\n", mirror, upstream)
		}
	}
	return b.String(), nil
}

// CrictlConfigFile points crictl at containerd so operators (and the images
// step) need no flags.
func CrictlConfigFile() string {
	return ManagedMarker + ": changes are overwritten by the next install/upgrade.\n" +
		"runtime-endpoint: " + ContainerdSocket + "\n" +
		"image-endpoint: " + ContainerdSocket + "\n" +
		"timeout: 30\n"
}
