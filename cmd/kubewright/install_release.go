package main

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/kubewright/kubewright/installer/kube"
	"github.com/kubewright/kubewright/installer/pki"
	"github.com/kubewright/kubewright/installer/steps"
)

// releaseCheckTimeout bounds asking a running cluster for its versions: a
// cluster whose API does not answer is not checked, and must not hold
// install up for long.
const releaseCheckTimeout = 10 * time.Second

// refuseReleaseChange stops install (and repair, which runs install) from
// changing the Kubernetes release of a running cluster. Install restarts
// etcd, the control plane and the kubelets whose binaries it replaced, with
// none of upgrade's care: etcd members one at a time, nodes cordoned and
// drained, a snapshot first, the version-skew rules. A cluster that was
// never installed from this state directory, or whose API does not answer
// (what repair may be for), is not checked.
func refuseReleaseChange(ctx context.Context, clusterDir, invPath, release string) error {
	want, err := kube.ParseVersion(release)
	if err != nil {
		return nil // the inventory's own checks report a bad version
	}
	if _, err := os.Stat(pki.NewStore(steps.PKIDir(clusterDir), nil).AdminKubeconfigPath()); err != nil {
		return nil
	}
	client, err := adminClient(clusterDir)
	if err != nil {
		return nil
	}
	client.Config.Timeout = releaseCheckTimeout
	client, err = kube.NewClientFromConfig(client.Config)
	if err != nil {
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, releaseCheckTimeout)
	defer cancel()
	cur, err := kube.ReadClusterVersions(cctx, client.Clientset)
	if err != nil {
		return nil
	}
	var differ []string
	if cur.APIServer.Compare(want) != 0 {
		differ = append(differ, "the apiserver runs "+cur.APIServer.String())
	}
	nodes := make([]string, 0, len(cur.Kubelets))
	for n := range cur.Kubelets {
		nodes = append(nodes, n)
	}
	sort.Strings(nodes)
	for _, n := range nodes {
		if v := cur.Kubelets[n]; v.Compare(want) != 0 {
			differ = append(differ, "node "+n+" runs "+v.String())
		}
	}
	if len(differ) == 0 {
		return nil
	}
	oldest, _ := cur.Oldest()
	return badInput(fmt.Errorf("%s: the artifacts are Kubernetes %s but %s; nothing was changed: install and repair do not change the release of a running cluster (they would restart every etcd member at once, without draining a node); fix: kubewright upgrade -i %s --to %s, or point spec.artifacts back at %s artifacts",
		invPath, release, strings.Join(differ, ", "), invPath, release, oldest))
}
