// Package steps is the vocabulary playbooks use: one step per file, each
// with a Plan that inspects a host and an Apply that changes it. Register adds
// every step to an engine registry under the name playbooks write.
package steps

import (
	"github.com/kubewright/kubewright/installer/engine"
)

// Register adds every step in this package to r.
func Register(r *engine.Registry) {
	r.MustRegister("preflight", engine.Static(Preflight{}))
	r.MustRegister("swap-off", engine.Static(NewSwapOff()))
	r.MustRegister("kernel-modules", newKernelModules)
	r.MustRegister("sysctl", newSysctl)
	r.MustRegister("packages", newPackages)
	r.MustRegister("binaries", engine.Static(Binaries{}))
	r.MustRegister("etcd", engine.Static(Etcd{}))
	r.MustRegister("control-plane", engine.Static(ControlPlane{}))
	r.MustRegister("haproxy", engine.Static(HAProxy{}))
	r.MustRegister("keepalived", engine.Static(Keepalived{}))
	r.MustRegister("cluster-bootstrap", engine.Static(ClusterBootstrap{}))
	r.MustRegister("node-binaries", engine.Static(NodeBinaries{}))
	r.MustRegister("containerd", newContainerd)
	r.MustRegister("images", engine.Static(Images{}))
	r.MustRegister("kubelet", engine.Static(Kubelet{}))
	r.MustRegister("kube-proxy", engine.Static(KubeProxy{}))
	r.MustRegister("node-labels", engine.Static(NodeLabels{}))
	r.MustRegister("agent", newAgent)
	r.MustRegister("storage-prep", engine.Static(StoragePrep{}))
	r.MustRegister("addons", engine.Static(Addons{}))
	r.MustRegister("file", newFile)
	r.MustRegister("copy", newCopy)
	r.MustRegister("template", newTemplate)
	r.MustRegister("line", newLine)
	r.MustRegister("directory", newDirectory)
	r.MustRegister("absent", newAbsent)
	r.MustRegister("command", newCommand)
	r.MustRegister("etcd-health", engine.Static(EtcdHealth{}))
	r.MustRegister("etcd-restore", engine.Static(EtcdRestore{}))
	r.MustRegister("etcd-backup-timer", engine.Static(EtcdBackupTimer{}))
	r.MustRegister("reset", engine.Static(Reset{}))
	r.MustRegister("stop-units", newStopUnits)
	r.MustRegister("start-units", newStartUnits)
	r.MustRegister("cordon", engine.Static(Cordon{}))
	r.MustRegister("drain", engine.Static(Drain{}))
	r.MustRegister("uncordon", engine.Static(Uncordon{}))
	r.MustRegister("wait-node-version", engine.Static(WaitNodeVersion{}))
}
