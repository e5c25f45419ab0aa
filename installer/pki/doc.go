// Package pki owns the cluster's certificate authorities, certificates,
// kubeconfigs, service-account key pair and bootstrap tokens.
//
// Everything is generated on the operator's machine into the cluster state
// directory (a Store) and copied to hosts later at kubeadm's paths, so that
// kubeadm-trained operators and tools (kubeadm certs check-expiration, etcdctl
// with the usual flags) find what they expect. Generation is idempotent: a
// valid certificate is never rewritten, so a re-run of install changes nothing
// and no component restarts needlessly; a certificate that no longer matches
// the inventory (a new master needs a new SAN) is re-issued with its key.
//
// The package does no SSH or host work: FilesForHost lists what a host needs,
// and the steps upload it. See docs/pki.md for the layout and policies.
package pki
