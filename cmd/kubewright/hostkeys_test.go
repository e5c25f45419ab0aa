package main

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

// sshCommands are the commands that dial inventory hosts over SSH. Each
// must offer both host-key flags; a command missing here that dials could
// not get past a reinstalled host's new key.
var sshCommands = []string{
	"certs renew", "check", "etcd backup", "etcd restore", "install", "plan",
	"remove-node", "repair", "reset", "run", "upgrade",
}

// TestHostKeyFlagsOnEverySSHCommand: exactly the commands that connect to
// hosts take --accept-new-host-keys and --replace-host-key, each with the
// flags addHostKeyFlags defines (same type and help text), and no other
// command offers them (certs check, for one, never contacts a host).
func TestHostKeyFlagsOnEverySSHCommand(t *testing.T) {
	ref := &cobra.Command{}
	addHostKeyFlags(ref, &hostKeyOptions{})
	var got []string
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			walk(sub)
		}
		path := strings.TrimPrefix(c.CommandPath(), "kubewright ")
		replace, accept := c.Flags().Lookup("replace-host-key"), c.Flags().Lookup("accept-new-host-keys")
		if replace == nil && accept == nil {
			return
		}
		got = append(got, path)
		for _, name := range []string{"replace-host-key", "accept-new-host-keys"} {
			f, want := c.Flags().Lookup(name), ref.Flags().Lookup(name)
			if f == nil {
				t.Errorf("%s has one host-key flag but not --%s", path, name)
				continue
			}
			if f.Value.Type() != want.Value.Type() || f.Usage != want.Usage || f.DefValue != want.DefValue {
				t.Errorf("%s --%s is not addHostKeyFlags' flag: %s %q, want %s %q", path, name, f.Value.Type(), f.Usage, want.Value.Type(), want.Usage)
			}
		}
	}
	walk(newRootCmd())
	sort.Strings(got)
	if !slices.Equal(got, sshCommands) {
		t.Errorf("commands with host-key flags: %v, want %v", got, sshCommands)
	}
}

// TestReplaceHostKeyUnknownHostIsBadInput: on every SSH command a
// --replace-host-key that names no inventory host is bad input naming the
// flag, the value and an example, and is refused before anything else
// happens: no question is asked (stdin is empty, so a question would end
// in "not confirmed" instead), install writes no state, remove-node drains
// nothing. The inventory's hosts listen nowhere, so a dial would fail
// differently.
func TestReplaceHostKeyUnknownHostIsBadInput(t *testing.T) {
	base := certsState(t, time.Now())
	dir := t.TempDir()
	// certsInv plus a worker, for remove-node (same cluster, same PKI).
	inv := filepath.Join(dir, "inventory.yaml")
	b, err := os.ReadFile(certsInv)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(b), "  groups:\n", "    - {name: worker1, address: 127.0.0.3, internalAddress: 10.0.0.13}\n  groups:\n    workers: [worker1]\n", 1)
	writeFile(t, inv, text, 0o600)
	// etcd restore verifies its snapshot before it looks at hosts.
	snapData := make([]byte, 4096)
	inner := sha256.Sum256(snapData)
	snapData = append(snapData, inner[:]...)
	snap := filepath.Join(dir, "etcd.db")
	writeFile(t, snap, string(snapData), 0o600)
	outer := sha256.Sum256(snapData)
	writeFile(t, snap+".sha256", hex.EncodeToString(outer[:])+"  etcd.db\n", 0o600)
	fresh := filepath.Join(dir, "fresh-state")

	cases := map[string][]string{
		"certs renew":  {"--state-dir", base, "certs", "renew", "-i", inv},
		"check":        {"--state-dir", base, "check", "-i", inv},
		"etcd backup":  {"--state-dir", base, "etcd", "backup", "-i", inv},
		"etcd restore": {"--state-dir", base, "etcd", "restore", "-i", inv, "--from", snap},
		"install":      {"--state-dir", fresh, "install", "-i", inv},
		"plan":         {"--state-dir", base, "plan", "-i", inv, "check"},
		"remove-node":  {"--state-dir", base, "remove-node", "-i", inv, "worker1"},
		"repair":       {"--state-dir", base, "repair", "-i", inv},
		"reset":        {"--state-dir", base, "reset", "-i", inv},
		"run":          {"--state-dir", base, "run", "-i", inv, "check"},
		"upgrade":      {"--state-dir", base, "upgrade", "-i", inv, "--to", "v1.37.2"},
	}
	var names []string
	for name := range cases {
		names = append(names, name)
	}
	sort.Strings(names)
	if !slices.Equal(names, sshCommands) {
		t.Fatalf("cases %v, want one per SSH command %v", names, sshCommands)
	}
	for _, name := range names {
		t.Run(strings.ReplaceAll(name, " ", "-"), func(t *testing.T) {
			root := newRootCmd()
			var out, errb strings.Builder
			root.SetOut(&out)
			root.SetErr(&errb)
			root.SetIn(strings.NewReader(""))
			root.SetArgs(append(cases[name], "--replace-host-key", "master1", "--replace-host-key", "nosuch"))
			err := root.Execute()
			if code := exitCodeQuiet(err); code != exitBadInput {
				t.Fatalf("exit %d (%v), want %d\n%s%s", code, err, exitBadInput, out.String(), errb.String())
			}
			if want := `--replace-host-key "nosuch": no host of that name in the inventory; name the host whose key changed, e.g. --replace-host-key master1`; !strings.Contains(err.Error(), want) {
				t.Errorf("error %q lacks %q", err, want)
			}
			if strings.Contains(errb.String(), "Type the") {
				t.Errorf("asked for confirmation before refusing the flag: %q", errb.String())
			}
		})
	}
	if _, err := os.Stat(filepath.Join(fresh, "clusters", "certtest")); err == nil {
		t.Error("install wrote the cluster's state before refusing --replace-host-key")
	}
}
