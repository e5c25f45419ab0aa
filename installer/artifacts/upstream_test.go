package artifacts

import (
	"strings"
	"testing"
)

func TestUpstreamFor(t *testing.T) {
	for _, tc := range []struct {
		name, version, mirror string
		want                  Upstream
		err                   string
	}{
		{name: "upstream", version: "v1.37.2",
			want: Upstream{KubernetesVersion: "v1.37.2", EtcdVersion: "v3.7.3", CrictlVersion: "v1.37.0"}},
		{name: "previous minor", version: "v1.36.3",
			want: Upstream{KubernetesVersion: "v1.36.3", EtcdVersion: "v3.7.3", CrictlVersion: "v1.37.0"}},
		{name: "mirror", version: "v1.37.2", mirror: "https://mirror.example.com/kw/",
			want: Upstream{KubernetesVersion: "v1.37.2", EtcdVersion: "v3.7.3", CrictlVersion: "v1.37.0",
				KubernetesURL: "https://mirror.example.com/kw/kubernetes", EtcdURL: "https://mirror.example.com/kw/etcd",
				CrictlURL: "https://mirror.example.com/kw/cri-tools"}},
		{name: "unpaired minor", version: "v1.35.0", err: "no etcd and crictl releases are paired with Kubernetes v1.35 (this kubewright pairs v1.36, v1.37)"},
		{name: "not a release", version: "latest", err: `kubernetes version "latest": want a release like v1.37.2`},
		{name: "pre-release", version: "v1.37.0-rc.1", err: "want a release like"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := UpstreamFor(tc.version, tc.mirror)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("UpstreamFor = %+v, %v; want %+v", got, err, tc.want)
			}
			m, err := got.Manifest()
			if err != nil {
				t.Fatalf("manifest: %v", err)
			}
			if f, _ := m.File("kubelet"); tc.mirror != "" && !strings.HasPrefix(f.URL, "https://mirror.example.com/kw/kubernetes/v1.37.2/bin/linux/amd64/") {
				t.Errorf("kubelet URL %s is not under the mirror", f.URL)
			}
		})
	}
}
