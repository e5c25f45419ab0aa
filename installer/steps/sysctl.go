package steps

import (
	"context"
	"fmt"
	"regexp"
	"sort"

	"github.com/kubewright/kubewright/installer/engine"
	"github.com/kubewright/kubewright/installer/steps/stepkit"
)

// DefaultSysctls let the node route pod traffic (ip_forward) and make bridged
// traffic visible to iptables, which kube-proxy and CNI plugins rely on.
var DefaultSysctls = []stepkit.KV{
	{Key: "net.ipv4.ip_forward", Value: "1"},
	{Key: "net.bridge.bridge-nf-call-iptables", Value: "1"},
	{Key: "net.bridge.bridge-nf-call-ip6tables", Value: "1"},
}

var sysctlKeyRe = regexp.MustCompile(`^[a-z0-9_-]+(\.[a-zA-Z0-9_-]+)+$`)

// Sysctl is the `sysctl` step. Every "with:" entry is a sysctl key and value
// added to (or overriding) the defaults, e.g. `fs.inotify.max_user_instances: "8192"`.
type Sysctl struct{ s stepkit.Sysctl }

func newSysctl(with map[string]string) (engine.Step, error) {
	vals := append([]stepkit.KV(nil), DefaultSysctls...)
	keys := make([]string, 0, len(with))
	for k := range with {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !sysctlKeyRe.MatchString(k) {
			return nil, fmt.Errorf("parameter %q is not a sysctl key (like net.ipv4.ip_forward)", k)
		}
		replaced := false
		for i := range vals {
			if vals[i].Key == k {
				vals[i].Value, replaced = with[k], true
			}
		}
		if !replaced {
			vals = append(vals, stepkit.KV{Key: k, Value: with[k]})
		}
	}
	return &Sysctl{s: stepkit.Sysctl{Values: vals}}, nil
}

// Name implements engine.Step.
func (*Sysctl) Name() string { return "sysctl" }

// Plan implements engine.Step.
func (s *Sysctl) Plan(ctx context.Context, t *engine.Target) ([]engine.Change, error) {
	return s.s.Plan(ctx, t)
}

// Apply implements engine.Step.
func (s *Sysctl) Apply(ctx context.Context, t *engine.Target, plan []engine.Change) error {
	return s.s.Apply(ctx, t, plan)
}
