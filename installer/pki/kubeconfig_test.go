package pki

import (
	"fmt"
	"strings"
	"testing"
)

func TestRenderKubeconfigGolden(t *testing.T) {
	k := KubeconfigData{
		ClusterName: "prod", Server: "https://192.0.2.100:6443", User: "kubernetes-admin",
		CAPEM: []byte("CA PEM\n"), ClientCertPEM: []byte("CERT PEM\n"), ClientKeyPEM: []byte("KEY PEM\n"),
	}
	got, err := RenderKubeconfig(k)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "kubeconfig.golden", string(got))
	back, err := ParseKubeconfig(got)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(back) != fmt.Sprint(k) {
		t.Errorf("round trip:\n got %+v\nwant %+v", back, k)
	}
}

func TestParseKubeconfigErrors(t *testing.T) {
	cases := []struct{ name, in string }{
		{"not yaml", "{{{"},
		{"wrong kind", "kind: Pod\n"},
		{"no current context", "kind: Config\ncurrent-context: x\n"},
		{"missing cluster", "kind: Config\ncurrent-context: c\ncontexts: [{name: c, context: {cluster: k, user: u}}]\n"},
		{"missing user", "kind: Config\ncurrent-context: c\ncontexts: [{name: c, context: {cluster: k, user: u}}]\nclusters: [{name: k, cluster: {server: s}}]\n"},
		{"bad base64", "kind: Config\ncurrent-context: c\ncontexts: [{name: c, context: {cluster: k, user: u}}]\nclusters: [{name: k, cluster: {server: s, certificate-authority-data: '***'}}]\n"},
	}
	var out strings.Builder
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseKubeconfig([]byte(tc.in))
			if err == nil {
				t.Fatal("want an error")
			}
			fmt.Fprintf(&out, "== %s\n%s\n", tc.name, err)
		})
	}
	golden(t, "kubeconfig-errors.golden", out.String())
	if _, err := RenderKubeconfig(KubeconfigData{}); err == nil {
		t.Error("RenderKubeconfig accepted empty data")
	}
}
