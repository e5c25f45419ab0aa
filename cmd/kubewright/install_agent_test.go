package main

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/kubewright/kubewright/installer/artifacts"
)

// nodeArtifactsDir is an artifacts directory with everything install's
// preparation checks (node binaries, a pause image), for this machine's
// architecture.
func nodeArtifactsDir(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	m := &artifacts.Manifest{APIVersion: artifacts.APIVersion, Kind: artifacts.ManifestKind,
		KubernetesVersion: "v1.37.2", EtcdVersion: "v3.7.3", Arch: runtime.GOARCH}
	for _, f := range []struct {
		name, path, comp string
		kind             artifacts.Kind
	}{
		{"kubelet", "bin/kubelet", "kubernetes", artifacts.KindBinary},
		{"kube-proxy", "bin/kube-proxy", "kubernetes", artifacts.KindBinary},
		{"crictl", "bin/crictl", "crictl", artifacts.KindBinary},
		{"pause-image", "images/pause.tar", "pause", artifacts.KindImage},
	} {
		p := filepath.Join(root, f.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(f.name), 0o755); err != nil {
			t.Fatal(err)
		}
		m.Files = append(m.Files, artifacts.File{Name: f.name, Path: f.path, SHA256: hexSum([]byte(f.name)),
			Size: int64(len(f.name)), Kind: f.kind, Component: f.comp, Version: "v1"})
	}
	m.Images = []artifacts.Image{{Name: "registry.k8s.io/pause:3.10", File: "pause-image", Digest: "sha256:" + hexSum([]byte("config"))}}
	data, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, artifacts.ManifestFile), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

// TestInstallChecksTheAgentBinaryFirst: the agent executable lives on the
// operator's machine, so a missing one or one that cannot run on the nodes
// stops install while preparing, before any host is dialed (the
// inventory's hosts listen nowhere), not at the last plays.
func TestInstallChecksTheAgentBinaryFirst(t *testing.T) {
	arts := nodeArtifactsDir(t)
	inv := filepath.Join(t.TempDir(), "inv.yaml")
	body, err := os.ReadFile(certsInv)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(body) + "  kubernetes:\n    version: v1.37.2\n  artifacts:\n    source: dir\n    path: " + arts + "\n"
	if err := os.WriteFile(inv, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(t.TempDir(), "kubewright-agent")
	if err := os.WriteFile(script, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	self, _ := os.Executable()
	self, _ = filepath.EvalSymlinks(self)
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"none beside kubewright", nil, []string{"no host was touched", filepath.Join(filepath.Dir(self), "kubewright-agent"), "expected beside the kubewright executable", "make build", "--agent-binary PATH"}},
		{"--agent-binary missing", []string{"--agent-binary", "/nonexistent/agent"}, []string{"no host was touched", "/nonexistent/agent (given by --agent-binary): no such file"}},
		{"not a Linux executable", []string{"--agent-binary", script}, []string{"no host was touched", script + " is not a Linux executable, but the artifacts are for " + runtime.GOARCH}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := bundleCLI(t, append([]string{"install", "-i", inv, "--state-dir", t.TempDir()}, tc.args...)...)
			if code := exitCodeQuiet(err); code != exitBadInput {
				t.Fatalf("exit %d, want %d (bad input): %v", code, exitBadInput, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
	// A Linux executable for the artifacts' architecture passes: install
	// goes on to the hosts (which are unreachable).
	_, _, err = bundleCLI(t, "install", "-i", inv, "--state-dir", t.TempDir(), "--agent-binary", self)
	if err == nil || isBadInput(err) || strings.Contains(err.Error(), "kubewright-agent") {
		t.Fatalf("with a good agent binary: %v", err)
	}
}
