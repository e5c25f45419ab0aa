package steps

import (
	"context"
	"errors"
	"slices"

	"github.com/kubewright/kubewright/installer/artifacts"
	"github.com/kubewright/kubewright/installer/engine"
	"github.com/kubewright/kubewright/installer/steps/stepkit"
)

// Packages is the `packages` step: install OS packages kube-proxy, kubelet
// and the CNI plugins call (socat for port-forward, conntrack for kube-proxy's
// stale-connection cleanup, ipset for network policies; ipvsadm in ipvs mode),
// and the artifacts' os-package entries (containerd, runc and the CNI
// plugins: what the distribution's security team patches, so they are not
// shipped as binaries). Parameter "list" replaces the default list.
type Packages struct {
	list []string // nil: the defaults for the host
	// manager overrides the one from Facts (tests).
	manager *stepkit.PackageManager
}

func newPackages(with map[string]string) (engine.Step, error) {
	if err := checkParams(with, "list"); err != nil {
		return nil, err
	}
	p := &Packages{}
	if v, ok := with["list"]; ok {
		p.list = splitList(v)
		if len(p.list) == 0 {
			return nil, errors.New(`parameter "list" is empty`)
		}
	}
	return p, nil
}

// Name implements engine.Step.
func (*Packages) Name() string { return "packages" }

// defaultPackages depends on the family (conntrack is conntrack-tools on
// RHEL) and on the proxy mode.
func defaultPackages(t *engine.Target) []string {
	conntrack := "conntrack"
	if t.Facts != nil && t.Facts.OSFamily == "rhel" {
		conntrack = "conntrack-tools"
	}
	names := []string{"socat", conntrack, "ipset"}
	if t.Cluster != nil && t.Cluster.Spec.Kubernetes.ProxyMode == "ipvs" {
		names = append(names, "ipvsadm")
	}
	if src, err := sharedSource(t); err == nil {
		for _, f := range src.Manifest().Files {
			if f.Kind == artifacts.KindOSPackage && f.Package != "" && !slices.Contains(names, f.Package) {
				names = append(names, f.Package)
			}
		}
	}
	return names
}

func (p *Packages) helper(t *engine.Target) stepkit.Packages {
	names := p.list
	if names == nil {
		names = defaultPackages(t)
	}
	return stepkit.Packages{Names: names, Manager: p.manager}
}

// Plan implements engine.Step.
func (p *Packages) Plan(ctx context.Context, t *engine.Target) ([]engine.Change, error) {
	return p.helper(t).Plan(ctx, t)
}

// Apply implements engine.Step.
func (p *Packages) Apply(ctx context.Context, t *engine.Target, plan []engine.Change) error {
	return p.helper(t).Apply(ctx, t, plan)
}
