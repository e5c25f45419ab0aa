package steps

import (
	"context"

	"github.com/kubewright/kubewright/installer/engine"
	"github.com/kubewright/kubewright/installer/steps/stepkit"
)

// DefaultKernelModules are what containerd (overlay) and bridged pod traffic
// through iptables (br_netfilter) need.
var DefaultKernelModules = []string{"overlay", "br_netfilter"}

// KernelModules is the `kernel-modules` step: load modules now and at boot.
// Parameter "modules" replaces the default list.
type KernelModules struct{ m stepkit.Modules }

func newKernelModules(with map[string]string) (engine.Step, error) {
	if err := checkParams(with, "modules"); err != nil {
		return nil, err
	}
	names := append([]string(nil), DefaultKernelModules...)
	if v, ok := with["modules"]; ok {
		names = splitList(v)
	}
	return &KernelModules{m: stepkit.Modules{Names: names}}, nil
}

// Name implements engine.Step.
func (*KernelModules) Name() string { return "kernel-modules" }

// Plan implements engine.Step.
func (s *KernelModules) Plan(ctx context.Context, t *engine.Target) ([]engine.Change, error) {
	return s.m.Plan(ctx, t)
}

// Apply implements engine.Step.
func (s *KernelModules) Apply(ctx context.Context, t *engine.Target, plan []engine.Change) error {
	return s.m.Apply(ctx, t, plan)
}
