package main

import (
	"os"
	"path/filepath"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

func writeKubeconfig(t *testing.T, path, name, server string) {
	t.Helper()
	c := clientcmdapi.NewConfig()
	c.Clusters[name] = &clientcmdapi.Cluster{Server: server}
	c.AuthInfos["admin@"+name] = &clientcmdapi.AuthInfo{Token: "t-" + name}
	c.Contexts["admin@"+name] = &clientcmdapi.Context{Cluster: name, AuthInfo: "admin@" + name}
	c.CurrentContext = "admin@" + name
	if err := clientcmd.WriteToFile(*c, path); err != nil {
		t.Fatal(err)
	}
}

func TestMergeKubeconfigKeepsOtherContexts(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "admin.conf"), filepath.Join(dir, "kube", "config")
	writeKubeconfig(t, src, "demo", "https://10.0.0.100:8443")
	// First merge creates the file.
	if _, err := mergeKubeconfig(src, dst); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "other.conf")
	writeKubeconfig(t, other, "prod", "https://prod:6443")
	if _, err := mergeKubeconfig(other, dst); err != nil {
		t.Fatal(err)
	}
	// Re-merging demo (e.g. after a VIP change) replaces only its entries.
	writeKubeconfig(t, src, "demo", "https://10.0.0.200:8443")
	name, err := mergeKubeconfig(src, dst)
	if err != nil {
		t.Fatal(err)
	}
	got, err := clientcmd.LoadFromFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	if name != "admin@demo" || got.CurrentContext != "admin@demo" {
		t.Fatalf("current context %q (returned %q)", got.CurrentContext, name)
	}
	if got.Clusters["prod"] == nil || got.Clusters["prod"].Server != "https://prod:6443" {
		t.Fatal("the other cluster was lost")
	}
	if got.Clusters["demo"].Server != "https://10.0.0.200:8443" {
		t.Fatalf("demo server %s", got.Clusters["demo"].Server)
	}
	st, _ := os.Stat(dst)
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("kubeconfig mode %o, want 0600", st.Mode().Perm())
	}
}

func TestMergeKubeconfigRefusesBrokenTarget(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "admin.conf"), filepath.Join(dir, "config")
	writeKubeconfig(t, src, "demo", "https://10.0.0.100:8443")
	if err := os.WriteFile(dst, []byte("{not yaml: ["), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := mergeKubeconfig(src, dst); err == nil {
		t.Fatal("a broken kubeconfig must not be overwritten")
	}
	if b, _ := os.ReadFile(dst); string(b) != "{not yaml: [" {
		t.Fatal("the broken kubeconfig was modified")
	}
}
