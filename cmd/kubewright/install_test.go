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

// TestInstallAddonsTimeoutMustFitTheStepTimeout: a rollout wait the step
// timeout would cut short is refused before anything is prepared.
func TestInstallAddonsTimeoutMustFitTheStepTimeout(t *testing.T) {
	state := t.TempDir()
	_, _, err := bundleCLI(t, "install", "-i", "testdata/certs-inventory.yaml", "--state-dir", state, "--addons-timeout", "28m")
	if code := exitCodeQuiet(err); code != exitBadInput || err == nil {
		t.Fatalf("exit %d, want %d: %v", code, exitBadInput, err)
	}
	for _, want := range []string{"--addons-timeout 28m0s does not fit in --step-timeout 30m0s", "fix: raise --step-timeout to at least 31m0s"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if entries, _ := os.ReadDir(state); len(entries) != 0 {
		t.Errorf("a refused flag still wrote to the state directory: %v", entries)
	}
	// With a step timeout that leaves room, the flag is accepted (install
	// then stops at the inventory's missing artifacts, not at the flag).
	_, _, err = bundleCLI(t, "install", "-i", "testdata/certs-inventory.yaml", "--state-dir", state, "--addons-timeout", "28m", "--step-timeout", "40m")
	if err == nil || strings.Contains(err.Error(), "addons-timeout") {
		t.Fatalf("accepted flags: %v", err)
	}
}
