package steps

import (
	"context"
	"fmt"
	"time"

	"github.com/kubewright/kubewright/installer/engine"
	"github.com/kubewright/kubewright/installer/render"
	"github.com/kubewright/kubewright/installer/steps/stepkit"
)

// HAProxy is the `haproxy` step: haproxy (from the OS package, installed by
// the packages step) on every master, balancing TCP from the control-plane
// endpoint port to every apiserver that passes /readyz. See
// docs/ARCHITECTURE.md for the port layout.
type HAProxy struct{}

func (HAProxy) Name() string { return "haproxy" }

func (HAProxy) group(t *engine.Target) (serviceGroup, error) {
	c := t.Cluster
	if masterIndex(c, t.Inv.Name) < 0 {
		return serviceGroup{}, fmt.Errorf("haproxy runs on masters only; %s is not in the masters group", t.Inv.Name)
	}
	var backends []render.HAProxyBackend
	for _, m := range c.Masters() {
		backends = append(backends, render.HAProxyBackend{Name: m.Name, Address: internalAddress(m)})
	}
	cfg, err := render.HAProxyConfig(render.HAProxyParams{
		BindPort:      c.Spec.ControlPlaneEndpoint.Port,
		APIServerPort: c.Spec.Kubernetes.APIServerPort,
		Backends:      backends,
	})
	if err != nil {
		return serviceGroup{}, err
	}
	return serviceGroup{
		files:         []stepkit.File{{Path: render.HAProxyConf, Content: []byte(cfg), Mode: 0o644, Owner: "root:root"}},
		services:      []service{{unit: "haproxy.service", dependsOn: func(string) bool { return true }}},
		activeTimeout: 30 * time.Second,
	}, nil
}

func (s HAProxy) Plan(ctx context.Context, t *engine.Target) ([]engine.Change, error) {
	g, err := s.group(t)
	if err != nil {
		return nil, err
	}
	return g.plan(ctx, t)
}

func (s HAProxy) Apply(ctx context.Context, t *engine.Target, plan []engine.Change) error {
	g, err := s.group(t)
	if err != nil {
		return err
	}
	return g.apply(ctx, t, plan)
}
