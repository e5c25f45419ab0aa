// Package safety is the cluster-wide half of kubewright-agent's repair
// policy: what lets one node act without asking the others over a home-made
// protocol. Agents coordinate through the cluster itself, with
// coordination.k8s.io Leases in kube-system:
//
//   - a repair budget of MaxConcurrent slot Leases (kubewright-repair-N), so a
//     bad rollout or a shared fault does not make every node restart its
//     kubelet at once;
//   - one control-plane Lease (kubewright-repair-control-plane), so at most
//     one master touches its apiserver, keepalived or etcd at a time;
//   - an etcd quorum guard, so an etcd repair never takes the member that
//     quorum depends on;
//   - an offline rate limit, so a node cut off from the API can still restart
//     its own kubelet a few times an hour, but no more.
//
// Gate composes them into an agent.Gate.
package safety
