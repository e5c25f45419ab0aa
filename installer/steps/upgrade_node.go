package steps

import (
	"context"
	"encoding/json"
	"fmt"
	"path"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/kubewright/kubewright/installer/engine"
)

// AnnotationUpgradeCordoned marks a node the upgrade cordoned, with the
// release it is being upgraded to. Only such a node is uncordoned by the
// uncordon step: a node an operator cordoned stays cordoned. A run cut
// while a node is cordoned leaves the annotation, so the next run knows the
// node is its own to finish and to uncordon.
const AnnotationUpgradeCordoned = "kubewright.io/upgrade-cordoned"

// SharedDrainTimeout is the engine.SharedData key (a time.Duration) the
// upgrade command sets from --drain-timeout.
const SharedDrainTimeout = "drain-timeout"

// DefaultDrainTimeout bounds one node's drain when the run sets none.
const DefaultDrainTimeout = 5 * time.Minute

// nodeUpgrade is one node's upgrade state, as the cordon, drain, uncordon
// and wait-node-version steps judge it.
type nodeUpgrade struct {
	node   *corev1.Node
	target string
	// pending says why the node is not at the target yet (kubelet version,
	// binaries differing from the artifacts); empty means it is done.
	pending []string
	// ours is true when the upgrade cordoned it and has not uncordoned it.
	ours bool
}

func (u nodeUpgrade) done() bool { return len(u.pending) == 0 }

// inspectNodeUpgrade reads the Node and compares the host's binaries with
// the run's artifacts. A node whose kubelet reports the artifacts' release
// and whose binaries all match is done: every upgrade step then plans
// nothing for it, which is what makes a re-run resume where it stopped.
func inspectNodeUpgrade(ctx context.Context, t *engine.Target, client clientFunc) (nodeUpgrade, kubernetes.Interface, error) {
	src, err := sharedSource(t)
	if err != nil {
		return nodeUpgrade{}, nil, err
	}
	cs, err := client.get(ctx, t)
	if err != nil {
		return nodeUpgrade{}, nil, err
	}
	node, err := cs.CoreV1().Nodes().Get(ctx, t.Inv.Name, metav1.GetOptions{})
	if err != nil {
		return nodeUpgrade{}, nil, fmt.Errorf("get node %s (upgrade needs every host joined; run kubewright install first): %w", t.Inv.Name, err)
	}
	u := nodeUpgrade{node: node, target: src.Manifest().KubernetesVersion}
	_, u.ours = node.Annotations[AnnotationUpgradeCordoned]
	if v := node.Status.NodeInfo.KubeletVersion; v != u.target {
		u.pending = append(u.pending, fmt.Sprintf("kubelet %s -> %s", v, u.target))
	}
	for _, s := range []engine.Step{Binaries{}, NodeBinaries{}} {
		changes, err := s.Plan(ctx, t)
		if err != nil {
			return nodeUpgrade{}, nil, err
		}
		var names []string
		for _, c := range changes {
			names = append(names, path.Base(c.Object))
		}
		if len(names) > 0 {
			u.pending = append(u.pending, "binaries to replace: "+strings.Join(names, " "))
		}
	}
	return u, cs, nil
}

func nodeObject(name string) string { return "node " + name }

// setUpgradeCordon cordons a node and marks it as the upgrade's (on), or
// uncordons it and removes the mark, in one merge patch: the mark and the
// cordon never disagree.
func setUpgradeCordon(ctx context.Context, cs kubernetes.Interface, node, target string, on bool) error {
	var ann any // null removes the annotation
	if on {
		ann = target
	}
	patch, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"annotations": map[string]any{AnnotationUpgradeCordoned: ann}},
		"spec":     map[string]any{"unschedulable": on},
	})
	if err != nil {
		return err
	}
	if _, err := cs.CoreV1().Nodes().Patch(ctx, node, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		verb := "cordon"
		if !on {
			verb = "uncordon"
		}
		return fmt.Errorf("%s node %s: %w", verb, node, err)
	}
	return nil
}
