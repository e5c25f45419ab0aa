package steps

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/kubewright/kubewright/installer/engine"
	"github.com/kubewright/kubewright/installer/inventory"
	"github.com/kubewright/kubewright/installer/steps/stepkit"
	"github.com/kubewright/kubewright/installer/steps/stepkit/stepkittest"
)

// storageFakes are a package database, modprobe and systemctl kept under
// the target's root, like the stepkit tests' fakes.
func storageFakes(t *testing.T, root string) StoragePrep {
	db := stepkit.Quote(root + "/pkgdb")
	m := &stepkit.PackageManager{
		Name:     "fake",
		QueryCmd: func([]string) string { return "cat " + db + " 2>/dev/null; true" },
		ParseInstalled: func(out string) map[string]bool {
			have := map[string]bool{}
			for _, l := range strings.Fields(out) {
				have[l] = true
			}
			return have
		},
		InstallCmds: func(names []string) []string {
			return []string{"printf '%s\\n' " + stepkit.QuoteAll(names) + " >> " + db}
		},
	}
	modprobe := stepkittest.FakeTool(t, root, "modprobe", `mkdir -p "$(dirname "$0")/../sys/module/$2" && echo "$2" >> "$(dirname "$0")/../modprobe.log"`)
	systemctl := stepkittest.FakeTool(t, root, "systemctl", `d=$(dirname "$0")/../systemd-state; mkdir -p "$d"; echo "$*" >> "$d/log"
case "$1" in
is-enabled) if [ -e "$d/enabled-$2" ]; then echo enabled; else echo disabled; exit 1; fi ;;
is-active) if [ -e "$d/active-$2" ]; then echo active; else echo inactive; exit 3; fi ;;
enable) touch "$d/enabled-$2" ;;
start|restart) touch "$d/active-$2" ;;
*) exit 1 ;;
esac`)
	return StoragePrep{manager: m, modprobe: modprobe, systemctl: systemctl}
}

func storageTarget(t *testing.T, host string, facts *engine.Facts, st inventory.Storage) (*engine.Target, string) {
	tg, _, root := stepkittest.NewTarget(t, host, facts)
	tg.Cluster = clusterWith(func(s *inventory.Spec) { s.Addons.Storage = st })
	tg.Inv = tg.Cluster.Host(host)
	return tg, root
}

func TestStoragePrepLonghorn(t *testing.T) {
	ctx := context.Background()
	tg, root := storageTarget(t, "w1", &engine.Facts{OSFamily: "debian"}, inventory.Storage{Provider: "longhorn", Nodes: "workers"})
	s := storageFakes(t, root)
	plan, err := s.Plan(ctx, tg)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"install package nfs-common", "install package open-iscsi",
		"create " + StorageModulesFile + " (mode 0644)", "load module iscsi_tcp",
		"enable iscsid.service", "start iscsid.service (not active)",
	}
	if got := changeStrings(plan); !reflect.DeepEqual(got, want) {
		t.Fatalf("plan %q\nwant %q", got, want)
	}
	if err := s.Apply(ctx, tg, plan); err != nil {
		t.Fatal(err)
	}
	if db, _ := stepkittest.ReadFile(t, root, "/pkgdb"); db != "nfs-common\nopen-iscsi\n" {
		t.Errorf("installed %q", db)
	}
	if c, _ := stepkittest.ReadFile(t, root, StorageModulesFile); !strings.HasSuffix(c, "\niscsi_tcp\n") {
		t.Errorf("modules file %q", c)
	}
	if _, ok := stepkittest.ReadFile(t, root, stepkit.ModulesFile); ok {
		t.Error("storage-prep wrote kernel-modules' file")
	}
	again, err := s.Plan(ctx, tg)
	if err != nil || len(again) != 0 {
		t.Fatalf("second plan %q, %v", changeStrings(again), err)
	}

	// RHEL names the packages differently.
	tg, root = storageTarget(t, "m1", &engine.Facts{OSFamily: "rhel"}, inventory.Storage{Provider: "longhorn"})
	plan, err = storageFakes(t, root).Plan(ctx, tg)
	if err != nil {
		t.Fatal(err)
	}
	if got := changeStrings(plan)[:2]; !reflect.DeepEqual(got, []string{"install package iscsi-initiator-utils", "install package nfs-utils"}) {
		t.Errorf("RHEL plan %q", got)
	}
}

func TestStoragePrepRookCeph(t *testing.T) {
	ctx := context.Background()
	st := inventory.Storage{Provider: "rook-ceph", OSDDisks: map[string][]string{"w1": {"sdb"}}}
	tg, root := storageTarget(t, "w1", &engine.Facts{OSFamily: "debian"}, st)
	plan, err := storageFakes(t, root).Plan(ctx, tg)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := changeStrings(plan), []string{"install package lvm2", "create " + StorageModulesFile + " (mode 0644)", "load module rbd"}; !reflect.DeepEqual(got, want) {
		t.Errorf("OSD host plan %q, want %q", got, want)
	}
	// A host without OSDs only maps volumes.
	tg, root = storageTarget(t, "m1", &engine.Facts{OSFamily: "debian"}, st)
	plan, err = storageFakes(t, root).Plan(ctx, tg)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := changeStrings(plan), []string{"create " + StorageModulesFile + " (mode 0644)", "load module rbd"}; !reflect.DeepEqual(got, want) {
		t.Errorf("non-OSD host plan %q, want %q", got, want)
	}
}

func TestStoragePrepWithoutStorage(t *testing.T) {
	tg, root := storageTarget(t, "w1", &engine.Facts{OSFamily: "debian"}, inventory.Storage{Provider: "none"})
	s := storageFakes(t, root)
	plan, err := s.Plan(context.Background(), tg)
	if err != nil || len(plan) != 0 {
		t.Fatalf("plan %q, %v", changeStrings(plan), err)
	}
	if err := s.Apply(context.Background(), tg, nil); err != nil {
		t.Fatal(err)
	}
	if _, ok := stepkittest.ReadFile(t, root, StorageModulesFile); ok {
		t.Error("modules file written without storage")
	}
}
