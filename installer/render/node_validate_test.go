package render

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// containerd parses the rendered config as it would at start: `config dump`
// merges it with the defaults and fails on TOML errors or wrong types, and
// the dump shows the values containerd actually took.
func TestContainerdAcceptsRenderedConfig(t *testing.T) {
	bin := requireTool(t, "containerd")
	for _, p := range []ContainerdParams{
		{SandboxImage: "registry.k8s.io/pause:3.10", RestrictOOMScoreAdj: true},
		{SandboxImage: "registry.k8s.io/pause:3.10", SystemdCgroup: true, RegistryMirror: "https://mirror.example:5000"},
	} {
		cfg, err := ContainerdConfigFile(p)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "config.toml")
		if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(bin, "--config", path, "config", "dump").CombinedOutput()
		if err != nil {
			t.Fatalf("containerd rejects the rendered config: %v\n%s\n%s", err, out, cfg)
		}
		dump := string(out)
		for _, want := range []string{`sandbox_image = "registry.k8s.io/pause:3.10"`, `bin_dir = "/usr/lib/cni"`,
			"SystemdCgroup = " + map[bool]string{true: "true", false: "false"}[p.SystemdCgroup]} {
			if !strings.Contains(dump, want) {
				t.Errorf("containerd did not take %q from the config; dump:\n%s", want, dump)
			}
		}
		if p.RegistryMirror != "" && !strings.Contains(dump, `endpoint = ["https://mirror.example:5000", "https://registry.k8s.io"]`) {
			t.Errorf("mirror not in containerd's view of the config:\n%s", dump)
		}
	}
}
