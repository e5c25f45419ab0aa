package main

import (
	"encoding/base64"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/kubewright/kubewright/installer/inventory"
	"github.com/kubewright/kubewright/installer/steps"
)

// runSecrets is everything a run must never print: the inventory's secrets
// (clusterSecrets), the SSH private keys it names and the cluster's
// generated secrets in its state directory (stateSecrets). The engine
// replaces each by [REDACTED] in host logs, the journal, events and errors.
func runSecrets(cl *inventory.Cluster, clusterDir string) []string {
	out := append(clusterSecrets(cl), stateSecrets(clusterDir)...)
	seen := map[string]bool{}
	for _, h := range cl.Spec.Hosts {
		if h.KeyFile == "" || seen[h.KeyFile] {
			continue
		}
		seen[h.KeyFile] = true
		if b, err := os.ReadFile(h.KeyFile); err == nil {
			out = append(out, keySecrets(b)...)
		}
	}
	return out
}

// keySecrets are the forms of a PEM private key a host could echo: the
// whole key, its base64 (a kubeconfig's client-key-data) and each line.
func keySecrets(pem []byte) []string {
	out := []string{string(pem), base64.StdEncoding.EncodeToString(pem)}
	for _, line := range strings.Split(string(pem), "\n") {
		if !strings.HasPrefix(line, "-----") {
			out = append(out, line)
		}
	}
	return longEnough(out)
}

// longEnough drops values too short to be secret material (a PEM's last
// line can be "Zw=="), which would only blank out unrelated text.
func longEnough(vals []string) []string {
	out := vals[:0]
	for _, v := range vals {
		if v = strings.TrimSpace(v); len(v) >= 8 {
			out = append(out, v)
		}
	}
	return out
}

// stateSecrets reads the cluster's generated secrets in the forms a host
// could echo them back in: the Secrets encryption key as the base64 of the
// EncryptionConfiguration, the VRRP password as it is, every private key of
// the PKI as a whole, line by line and as a kubeconfig's base64
// client-key-data, and the keys and tokens embedded in its kubeconfigs.
// Nothing generated yet (a first run) gives nothing.
func stateSecrets(clusterDir string) []string {
	var out []string
	add := func(s string) { out = append(out, longEnough([]string{s})...) }
	secrets := steps.SecretsDir(clusterDir)
	entries, _ := os.ReadDir(secrets)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(secrets, e.Name()))
		if err != nil || len(b) == 0 {
			continue
		}
		add(string(b))
		add(base64.StdEncoding.EncodeToString(b))
	}
	_ = filepath.WalkDir(steps.PKIDir(clusterDir), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		switch filepath.Ext(p) {
		case ".key":
			b, err := os.ReadFile(p)
			if err != nil {
				return nil
			}
			out = append(out, keySecrets(b)...)
		case ".conf", ".kubeconfig":
			b, err := os.ReadFile(p)
			if err != nil {
				return nil
			}
			for _, line := range strings.Split(string(b), "\n") {
				line = strings.TrimSpace(line)
				for _, field := range []string{"client-key-data:", "token:"} {
					if v, ok := strings.CutPrefix(line, field); ok {
						add(v)
					}
				}
			}
		}
		return nil
	})
	return out
}
