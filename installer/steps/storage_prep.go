package steps

import (
	"context"
	"slices"

	"github.com/kubewright/kubewright/installer/engine"
	"github.com/kubewright/kubewright/installer/steps/stepkit"
)

// StorageModulesFile is where storage-prep persists its kernel modules;
// kernel-modules owns stepkit.ModulesFile, and the two must not rewrite
// each other's list.
const StorageModulesFile = "/etc/modules-load.d/kubewright-storage.conf"

// StoragePrep is the `storage-prep` step: what spec.addons.storage needs on
// the hosts before its pods start. longhorn, on every node (any node may
// mount a volume): the iSCSI initiator (open-iscsi / iscsi-initiator-utils)
// with iscsid running and iscsi_tcp loaded, and the NFS client (nfs-common /
// nfs-utils) for RWX volumes. rook-ceph: the rbd module on every node (the
// kernel maps the volumes) and lvm2 on the hosts with OSD disks (ceph-volume
// builds its OSDs on LVM). Without a storage add-on it does nothing.
type StoragePrep struct {
	// Test seams: a fake package manager, modprobe and systemctl.
	manager   *stepkit.PackageManager
	modprobe  string
	systemctl string
}

// Name implements engine.Step.
func (StoragePrep) Name() string { return "storage-prep" }

// storageNeeds lists what this host needs for the cluster's storage add-on.
func storageNeeds(t *engine.Target) (pkgs, modules, units []string) {
	if t.Cluster == nil || t.Inv == nil {
		return nil, nil, nil
	}
	rhel := t.Facts != nil && t.Facts.OSFamily == "rhel"
	st := t.Cluster.Spec.Addons.Storage
	switch st.Provider {
	case "longhorn":
		if rhel {
			pkgs = []string{"iscsi-initiator-utils", "nfs-utils"}
		} else {
			pkgs = []string{"open-iscsi", "nfs-common"}
		}
		return pkgs, []string{"iscsi_tcp"}, []string{"iscsid.service"}
	case "rook-ceph":
		if len(st.OSDDisks[t.Inv.Name]) > 0 {
			pkgs = []string{"lvm2"}
		}
		return pkgs, []string{"rbd"}, nil
	}
	return nil, nil, nil
}

func (s StoragePrep) parts(t *engine.Target) (stepkit.Packages, stepkit.Modules, []stepkit.Unit) {
	pkgs, mods, units := storageNeeds(t)
	var us []stepkit.Unit
	for _, u := range units {
		us = append(us, stepkit.Unit{Name: u, Systemctl: s.systemctl})
	}
	return stepkit.Packages{Names: pkgs, Manager: s.manager},
		stepkit.Modules{Names: mods, File: StorageModulesFile, Modprobe: s.modprobe}, us
}

// Plan implements engine.Step: missing packages, modules, then units.
func (s StoragePrep) Plan(ctx context.Context, t *engine.Target) ([]engine.Change, error) {
	p, m, us := s.parts(t)
	var out []engine.Change
	if len(p.Names) > 0 {
		cs, err := p.Plan(ctx, t)
		if err != nil {
			return nil, err
		}
		out = append(out, cs...)
	}
	if len(m.Names) > 0 {
		cs, err := m.Plan(ctx, t)
		if err != nil {
			return nil, err
		}
		out = append(out, cs...)
	}
	for _, u := range us {
		cs, err := u.Plan(ctx, t)
		if err != nil {
			return nil, err
		}
		out = append(out, cs...)
	}
	return out, nil
}

// Apply implements engine.Step. Packages go first: they bring the unit
// files and the modules' userland.
func (s StoragePrep) Apply(ctx context.Context, t *engine.Target, plan []engine.Change) error {
	p, m, us := s.parts(t)
	if len(p.Names) > 0 {
		if err := p.Apply(ctx, t, plan); err != nil {
			return err
		}
	}
	if len(m.Names) > 0 {
		if err := m.Apply(ctx, t, plan); err != nil {
			return err
		}
	}
	for _, u := range us {
		// The unit's state was planned before its package existed: ask
		// again now that it is installed.
		if slices.ContainsFunc(plan, func(c engine.Change) bool { return c.Object == u.Name }) {
			cs, err := u.Plan(ctx, t)
			if err != nil {
				return err
			}
			if err := u.Apply(ctx, t, cs); err != nil {
				return err
			}
		}
	}
	return nil
}
