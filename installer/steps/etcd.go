package steps

import (
	"context"
	"strings"
	"time"

	"github.com/kubewright/kubewright/installer/engine"
	"github.com/kubewright/kubewright/installer/render"
)

// Etcd is the `etcd` step: a TLS etcd member as a systemd unit, with its
// certificates at kubeadm's paths. Run it on all etcd hosts at once (no
// serial): a member's start only completes when a quorum is up, which is also
// why a re-run that changes nothing leaves every member running untouched.
// The data directory is never touched, so etcd ignores the initial-cluster
// flags once it has data.
type Etcd struct{}

func (Etcd) Name() string { return "etcd" }

func (Etcd) group(t *engine.Target) (serviceGroup, error) {
	self := render.EtcdMember{Name: t.Inv.Name, Address: internalAddress(t.Inv)}
	name := t.Cluster.Metadata.Name
	unit, err := render.EtcdUnit(render.EtcdParams{Self: self, Members: etcdMembers(t.Cluster), ClusterToken: "kubewright-" + name})
	if err != nil {
		return serviceGroup{}, err
	}
	files, err := pkiFiles(t, func(p string) bool {
		return isEtcdPath(p) && !strings.Contains(p, "apiserver")
	})
	if err != nil {
		return serviceGroup{}, err
	}
	return serviceGroup{
		files:         files,
		services:      []service{{unit: "etcd.service", content: []byte(unit), binary: render.BinDir + "/etcd", dependsOn: isEtcdPath, noWait: true}},
		activeTimeout: 3 * time.Minute,
	}, nil
}

func (s Etcd) Plan(ctx context.Context, t *engine.Target) ([]engine.Change, error) {
	g, err := s.group(t)
	if err != nil {
		return nil, err
	}
	return g.plan(ctx, t)
}

func (s Etcd) Apply(ctx context.Context, t *engine.Target, plan []engine.Change) error {
	g, err := s.group(t)
	if err != nil {
		return err
	}
	return g.apply(ctx, t, plan)
}
