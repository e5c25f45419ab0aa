// Package stepkit holds the building blocks steps are made of: planning and
// writing remote files, systemd units, OS packages, sysctls and kernel modules.
//
// Every helper follows the same shape as engine.Step: Plan inspects the host in
// as few remote commands as possible and returns engine.Change values (none when
// the host is already as desired), and Apply makes exactly the planned changes.
// Re-running a step on an up-to-date host therefore costs one or two remote
// commands and changes nothing, which is what makes `kubewright install` safe to
// run again.
//
// Paths are written as they are on a real host (/etc/fstab). When the target's
// Vars carry a root (Vars["root"]), every path is prefixed with it, so tests and
// image builds can work inside a directory tree instead of touching /etc.
package stepkit
