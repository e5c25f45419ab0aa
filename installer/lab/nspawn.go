package lab

// nspawnArgs are systemd-nspawn's arguments for a machine (LAB.md, "kubelet +
// containerd inside a machine"): all capabilities, /dev/kmsg for kubelet, the
// keyring and bpf syscalls for runc, and the per-machine v1 cgroups bound
// read-write over a tmpfs /sys/fs/cgroup. containerd's state is bound from the
// host filesystem because its overlay snapshotter cannot use an overlay root.
func nspawnArgs(root, machine, nsPath, containerdDir string, cgs []cgroupDir) []string {
	args := []string{
		"--directory=" + root,
		"--boot",
		"--register=no",
		"--keep-unit",
		"--machine=" + machine,
		"--hostname=" + machine,
		"--network-namespace-path=" + nsPath,
		"--console=read-only",
		"--capability=all",
		"--system-call-filter=add_key keyctl bpf",
		"--bind=/dev/kmsg",
		"--tmpfs=/sys/fs/cgroup:mode=755",
		"--bind=" + containerdDir + ":/var/lib/containerd",
	}
	for _, c := range cgs {
		if c.Bind != "" {
			args = append(args, "--bind="+c.Dir+":"+c.Bind)
		}
	}
	return args
}
