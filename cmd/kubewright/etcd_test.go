package main

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestEtcdRestoreRefusesBeforeTouchingHosts: every check that needs no host
// runs first, and each failure is bad input that says what to do. The
// inventory's hosts do not exist, so reaching SSH would fail differently.
func TestEtcdRestoreRefusesBeforeTouchingHosts(t *testing.T) {
	base := certsState(t, time.Now())
	dir := t.TempDir()
	good := make([]byte, 4096)
	sum := sha256.Sum256(good)
	good = append(good, sum[:]...)
	snap := filepath.Join(dir, "etcd.db")
	os.WriteFile(snap, good, 0o600)
	outer := sha256.Sum256(good)
	os.WriteFile(snap+".sha256", []byte(hex.EncodeToString(outer[:])+"  etcd.db\n"), 0o600)
	bad := filepath.Join(dir, "bad.db")
	os.WriteFile(bad, append(good[:100:100], good[101:]...), 0o600)
	os.WriteFile(bad+".sha256", []byte(hex.EncodeToString(outer[:])+"  bad.db\n"), 0o600)

	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no --from", []string{"etcd", "restore", "-i", certsInv, "--yes"}, "--from is required"},
		{"checksum mismatch", []string{"etcd", "restore", "-i", certsInv, "--yes", "--from", bad}, "does not match its checksum file"},
		{"no checksum file", []string{"etcd", "restore", "-i", certsInv, "--yes", "--from", filepath.Join(dir, "missing.db")}, "read snapshot"},
		{"bad output", []string{"-o", "yaml", "etcd", "restore", "-i", certsInv, "--from", snap}, `--output "yaml"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := runCLI(t, append([]string{"--state-dir", base}, tc.args...)...)
			if err == nil || !isBadInput(err) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want bad input containing %q", err, tc.want)
			}
		})
	}
	t.Run("wrong cluster name typed", func(t *testing.T) {
		root := newRootCmd()
		var out, errb strings.Builder
		root.SetOut(&out)
		root.SetErr(&errb)
		root.SetIn(strings.NewReader("prod\n"))
		root.SetArgs([]string{"--state-dir", base, "etcd", "restore", "-i", certsInv, "--from", snap})
		err := root.Execute()
		if err == nil || !isBadInput(err) || !strings.Contains(err.Error(), "not confirmed; nothing was changed") {
			t.Fatalf("err %v", err)
		}
		if !strings.Contains(errb.String(), "Type the cluster name") {
			t.Errorf("no question asked: %q", errb.String())
		}
	})
}

func TestEtcdBackupUnknownMember(t *testing.T) {
	base := certsState(t, time.Now())
	_, _, err := runCLI(t, "--state-dir", base, "etcd", "backup", "-i", certsInv, "--member", "nope")
	if err == nil || !isBadInput(err) || !strings.Contains(err.Error(), "not an etcd member") || !strings.Contains(err.Error(), "members:") {
		t.Fatalf("err %v", err)
	}
}
