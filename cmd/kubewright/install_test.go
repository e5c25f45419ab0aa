package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestInstallRefusesArtifactsNodesCannotUse: artifacts that verify but lack
// kube-proxy and crictl stop install while preparing, before the PKI is made
// or any host is dialed (the inventory's hosts listen nowhere).
func TestInstallRefusesArtifactsNodesCannotUse(t *testing.T) {
	arts := artifactsDir(t)
	inv := filepath.Join(t.TempDir(), "inv.yaml")
	body, err := os.ReadFile("testdata/certs-inventory.yaml")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(body) + "  kubernetes:\n    version: v1.37.2\n  artifacts:\n    source: dir\n    path: " + arts + "\n"
	if err := os.WriteFile(inv, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	_, _, err = bundleCLI(t, "install", "-i", inv, "--state-dir", state)
	if err == nil {
		t.Fatal("install succeeded with artifacts that lack kube-proxy")
	}
	if code := exitCodeQuiet(err); code != exitBadInput {
		t.Errorf("exit %d, want %d (bad input): %v", code, exitBadInput, err)
	}
	for _, want := range []string{"spec.artifacts.path " + arts, "no host was touched", "binary kube-proxy", "binary crictl", "make artifacts"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if _, err := os.Stat(filepath.Join(state, "clusters", "certtest", "pki")); !os.IsNotExist(err) {
		t.Errorf("PKI was generated before the artifacts check: %v", err)
	}
}
