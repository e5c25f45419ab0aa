package render

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	goldenfile "github.com/kubewright/kubewright/internal/golden"
)

// golden compares got with testdata/NAME.golden (rewritten with -update).
func golden(t *testing.T, name, got string) {
	t.Helper()
	goldenfile.AssertString(t, filepath.Join("testdata", name+".golden"), got)
}

var members = []EtcdMember{
	{Name: "master1", Address: "10.10.0.11"},
	{Name: "master2", Address: "10.10.0.12"},
	{Name: "master3", Address: "10.10.0.13"},
}

func TestGolden(t *testing.T) {
	key := []byte(strings.Repeat("k", 32))
	tests := []struct {
		name   string
		render func() (string, error)
	}{
		{"etcd-new", func() (string, error) {
			return EtcdUnit(EtcdParams{Self: members[0], Members: members, ClusterToken: "kubewright-demo"})
		}},
		{"etcd-existing-ipv6", func() (string, error) {
			m := []EtcdMember{{Name: "a", Address: "fd00::1"}, {Name: "b", Address: "fd00::2"}}
			return EtcdUnit(EtcdParams{Self: m[1], Members: m, ClusterToken: "t", InitialState: "existing"})
		}},
		{"etcd-backup", func() (string, error) {
			script, service, timer, err := EtcdBackupFiles(EtcdBackupParams{})
			return "# " + EtcdBackupScript + "\n" + script + "# " + EtcdBackupService + "\n" + service + "# " + EtcdBackupTimer + "\n" + timer, err
		}},
		{"apiserver", func() (string, error) {
			return APIServerUnit(APIServerParams{AdvertiseAddress: "10.10.0.11", SecurePort: 6443, EtcdMembers: members, ServiceCIDR: "10.96.0.0/12", ClusterDomain: "cluster.local"})
		}},
		{"controller-manager-flannel", func() (string, error) {
			return ControllerManagerUnit(ControllerManagerParams{ClusterName: "demo", PodCIDR: "10.244.0.0/16", ServiceCIDR: "10.96.0.0/12", AllocateNodeCIDRs: true, NodeCIDRMaskSize: 24})
		}},
		{"scheduler", func() (string, error) { return SchedulerUnit(), nil }},
		{"encryption-config", func() (string, error) { return EncryptionConfigFile("key1", key) }},
		{"keepalived-multicast", func() (string, error) {
			return KeepalivedConfig(KeepalivedParams{HostName: "master1", Address: "10.10.0.11", Interface: "eth0", VIP: "10.10.0.100", VIPPrefix: 24, RouterID: 51, Priority: 150, AuthPass: "s3cret"})
		}},
		{"keepalived-unicast", func() (string, error) {
			return KeepalivedConfig(KeepalivedParams{HostName: "master2", Address: "10.10.0.12", Interface: "eth0", VIP: "10.10.0.100", VIPPrefix: 24, RouterID: 51, Priority: 140, Unicast: true,
				Peers: []KeepalivedPeer{{"master1", "10.10.0.11"}, {"master3", "10.10.0.13"}}})
		}},
		{"haproxy", func() (string, error) {
			return HAProxyConfig(HAProxyParams{BindPort: 8443, APIServerPort: 6443, Backends: []HAProxyBackend{{"master1", "10.10.0.11"}, {"master2", "10.10.0.12"}, {"master3", "10.10.0.13"}}})
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.render()
			if err != nil {
				t.Fatal(err)
			}
			golden(t, tc.name, got)
			again, _ := tc.render()
			if again != got {
				t.Fatal("rendering is not deterministic")
			}
		})
	}
}

func TestRenderErrors(t *testing.T) {
	tests := []struct {
		name string
		err  func() error
		want string
	}{
		{"etcd no address", func() error { _, err := EtcdUnit(EtcdParams{Self: EtcdMember{Name: "a"}}); return err }, "needs a name and an address"},
		{"etcd backup retain", func() error { _, _, _, err := EtcdBackupFiles(EtcdBackupParams{Retain: -1}); return err }, "keep at least 1"},
		{"etcd backup schedule", func() error {
			_, _, _, err := EtcdBackupFiles(EtcdBackupParams{OnCalendar: "daily\nExecStart=/bin/evil"})
			return err
		}, "not a systemd calendar expression"},
		{"etcd bad state", func() error {
			_, err := EtcdUnit(EtcdParams{Self: members[0], Members: members, InitialState: "joining"})
			return err
		}, `etcd initial state "joining"`},
		{"apiserver no etcd", func() error {
			_, err := APIServerUnit(APIServerParams{AdvertiseAddress: "1.2.3.4", SecurePort: 6443, ServiceCIDR: "10.96.0.0/12"})
			return err
		}, "etcd members"},
		{"short key", func() error { _, err := EncryptionConfigFile("k", []byte("short")); return err }, "32 bytes, got 5"},
		{"vip not ip", func() error {
			_, err := KeepalivedConfig(KeepalivedParams{VIP: "vip.example", Interface: "eth0", RouterID: 1, Priority: 1})
			return err
		}, `VIP "vip.example" is not an IP`},
		{"router id", func() error {
			_, err := KeepalivedConfig(KeepalivedParams{VIP: "10.0.0.1", Interface: "eth0", RouterID: 256, Priority: 1})
			return err
		}, "virtual router id 256"},
		{"long pass", func() error {
			_, err := KeepalivedConfig(KeepalivedParams{VIP: "10.0.0.1", Interface: "eth0", RouterID: 1, Priority: 1, AuthPass: "123456789"})
			return err
		}, "longer than 8"},
		{"same ports", func() error {
			_, err := HAProxyConfig(HAProxyParams{BindPort: 6443, APIServerPort: 6443, Backends: []HAProxyBackend{{"a", "1.1.1.1"}}})
			return err
		}, "must differ"},
		{"flannel without pod cidr", func() error {
			_, err := ControllerManagerUnit(ControllerManagerParams{ServiceCIDR: "10.96.0.0/12", AllocateNodeCIDRs: true})
			return err
		}, "needs the pod CIDR"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.err()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestKeepalivedCheckScriptProbesReadyz(t *testing.T) {
	s := KeepalivedCheckScript(6443)
	if !strings.Contains(s, "https://127.0.0.1:6443/readyz") || !strings.HasPrefix(s, "#!/bin/sh\n") {
		t.Fatalf("unexpected script:\n%s", s)
	}
}

// TestEtcdBackupScriptKeepsNewest runs the rendered script with a stand-in
// etcdctl: it saves a snapshot with a checksum sha256sum accepts, and keeps
// only the newest Retain snapshots (and their checksum files).
func TestEtcdBackupScriptKeepsNewest(t *testing.T) {
	script, _, _, err := EtcdBackupFiles(EtcdBackupParams{Retain: 3})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bin := t.TempDir()
	os.WriteFile(filepath.Join(bin, "etcdctl"), []byte("#!/bin/sh\nfor a; do last=$a; done\necho snapshot > \"$last\"\n"), 0o755)
	os.WriteFile(filepath.Join(bin, "backup.sh"), []byte(script), 0o755)
	for _, old := range []string{"etcd-m1-20250101T000000Z.db", "etcd-m1-20250102T000000Z.db", "etcd-m1-20250103T000000Z.db"} {
		os.WriteFile(filepath.Join(dir, old), []byte("old"), 0o600)
		os.WriteFile(filepath.Join(dir, old+".sha256"), []byte("x"), 0o600)
	}
	cmd := exec.Command(filepath.Join(bin, "backup.sh"))
	cmd.Env = append(os.Environ(), "KUBEWRIGHT_ETCD_BACKUP_DIR="+dir, "ETCDCTL="+filepath.Join(bin, "etcdctl"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(string(out), "3 snapshots kept") {
		t.Errorf("output %q", out)
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	got := strings.Join(names, " ")
	if strings.Contains(got, "20250101") || !strings.Contains(got, "20250102") || len(names) != 6 {
		t.Fatalf("kept %s, want the newest 3 snapshots with their checksums", got)
	}
	var newest string
	for _, n := range names {
		if strings.HasSuffix(n, ".db.sha256") && !strings.Contains(n, "2025") {
			newest = n
		}
	}
	check := exec.Command("sha256sum", "-c", newest)
	check.Dir = dir
	if out, err := check.CombinedOutput(); newest == "" || err != nil {
		t.Errorf("sha256sum -c %q: %v\n%s", newest, err, out)
	}
}
