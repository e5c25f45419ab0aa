package artifacts

import (
	"strings"
	"testing"
)

func TestManifestRoundTrip(t *testing.T) {
	m := testManifest()
	data, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "manifest.yaml", string(data))
	back, err := ParseManifest(data)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := back.Marshal()
	if string(again) != string(data) {
		t.Errorf("round trip changed the manifest:\n%s\nvs\n%s", again, data)
	}
	if f, ok := back.File("kubelet"); !ok || f.Path != "bin/kubelet" || f.Size != int64(len(testFiles["kubelet"])) {
		t.Errorf("File(kubelet) = %+v, %v", f, ok)
	}
	if _, ok := back.File("nope"); ok {
		t.Error("File(nope) found")
	}
}

func TestParseManifestRejects(t *testing.T) {
	base := func() string {
		d, _ := testManifest().Marshal()
		return string(d)
	}
	for _, tc := range []struct {
		name string
		yaml string
	}{
		{"empty", ""},
		{"unknown field", strings.Replace(base(), "arch: amd64", "arch: amd64\nchecksums: none", 1)},
		{"wrong kind", strings.Replace(base(), "kind: ArtifactManifest", "kind: Cluster", 1)},
		{"bad versions", strings.Replace(strings.Replace(base(), "kubernetesVersion: v1.37.2", "kubernetesVersion: 1.37", 1), "etcdVersion: v3.7.3", "etcdVersion: latest", 1)},
		{"escaping path", strings.Replace(base(), "path: bin/kubelet", "path: ../../usr/bin/kubelet", 1)},
		{"absolute path", strings.Replace(base(), "path: bin/etcd", "path: /usr/bin/etcd", 1)},
		{"duplicate name and path", strings.Replace(strings.Replace(base(), "name: kubelet", "name: kube-apiserver", 1), "path: bin/kubelet", "path: bin/kube-apiserver", 1)},
		{"bad sha256", strings.Replace(base(), "sha256: "+sum(testFiles["etcd"]), "sha256: ABC", 1)},
		{"no checksum at all", strings.Replace(base(), "    sha256: "+sum(testFiles["etcd"])+"\n", "", 1)},
		{"bad kind", strings.Replace(base(), "kind: image", "kind: chart", 1)},
		{"os-package without package", strings.Replace(base(), "    package: containerd\n", "", 1)},
		{"image file unknown", strings.Replace(base(), "file: pause-image", "file: pause", 1)},
		{"image file not an image", strings.Replace(base(), "file: pause-image", "file: etcd", 1)},
		{"image bad digest", strings.Replace(base(), "digest: sha256:", "digest: md5:", 1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseManifest([]byte(tc.yaml))
			if err == nil {
				t.Fatal("accepted")
			}
			golden(t, "parse-"+strings.ReplaceAll(tc.name, " ", "-"), err.Error()+"\n")
		})
	}
}
