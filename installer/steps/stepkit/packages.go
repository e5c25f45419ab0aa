package stepkit

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/kubewright/kubewright/installer/engine"
)

// PackageManager knows how to ask which packages are installed and how to
// install more, non-interactively.
type PackageManager struct {
	Name string
	// QueryCmd prints installed packages among names.
	QueryCmd func(names []string) string
	// ParseInstalled reads QueryCmd's output.
	ParseInstalled func(out string) map[string]bool
	// InstallCmds are tried in order until one succeeds: the apt variant
	// retries after `apt-get update`, because a fresh host's package lists
	// are often empty or stale.
	InstallCmds func(names []string) []string
}

// Apt is Debian/Ubuntu's manager.
var Apt = PackageManager{
	Name: "apt",
	QueryCmd: func(names []string) string {
		return "dpkg-query -W -f='${Package} ${db:Status-Abbrev}\\n' -- " + QuoteAll(names) + " 2>/dev/null; true"
	},
	ParseInstalled: parseDpkgQuery,
	InstallCmds: func(names []string) []string {
		inst := "DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold -- " + QuoteAll(names)
		return []string{inst, "DEBIAN_FRONTEND=noninteractive apt-get update -q && " + inst}
	},
}

// Dnf is the RHEL family's manager (yum shares the interface).
var Dnf = PackageManager{
	Name: "dnf",
	QueryCmd: func(names []string) string {
		return "rpm -q --qf '%{NAME}\\n' -- " + QuoteAll(names) + " 2>/dev/null; true"
	},
	ParseInstalled: parseRPMQuery,
	InstallCmds: func(names []string) []string {
		return []string{"dnf install -y -q -- " + QuoteAll(names)}
	},
}

// Yum is dnf's predecessor on older RHEL-family hosts.
var Yum = PackageManager{
	Name:           "yum",
	QueryCmd:       Dnf.QueryCmd,
	ParseInstalled: parseRPMQuery,
	InstallCmds: func(names []string) []string {
		return []string{"yum install -y -q -- " + QuoteAll(names)}
	},
}

// ManagerFor maps Facts.PackageManager to a PackageManager.
func ManagerFor(name string) (PackageManager, error) {
	switch name {
	case "apt":
		return Apt, nil
	case "dnf":
		return Dnf, nil
	case "yum":
		return Yum, nil
	}
	return PackageManager{}, fmt.Errorf("unsupported package manager %q (kubewright supports apt, dnf and yum)", name)
}

// parseDpkgQuery reads "NAME ii " lines; only "ii" (desired install, status
// installed) counts — "rc" (removed, config left) is not installed.
func parseDpkgQuery(out string) map[string]bool {
	got := map[string]bool{}
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 && f[1] == "ii" {
			name, _, _ := strings.Cut(f[0], ":") // strip :amd64
			got[name] = true
		}
	}
	return got
}

// parseRPMQuery reads one name per installed package; missing ones print
// "package X is not installed", which has spaces and is ignored.
func parseRPMQuery(out string) map[string]bool {
	got := map[string]bool{}
	for _, l := range strings.Split(out, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.ContainsAny(l, " \t") {
			got[l] = true
		}
	}
	return got
}

// Packages ensures OS packages are installed. It never upgrades or removes.
type Packages struct {
	Names []string
	// Manager overrides the one chosen from Facts (tests use a fake).
	Manager *PackageManager
}

func (p Packages) manager(t *engine.Target) (PackageManager, error) {
	if p.Manager != nil {
		return *p.Manager, nil
	}
	if t.Facts == nil {
		return PackageManager{}, errors.New("no facts: cannot tell the package manager")
	}
	return ManagerFor(t.Facts.PackageManager)
}

// Missing returns the packages not installed, sorted.
func (p Packages) Missing(ctx context.Context, t *engine.Target) ([]string, error) {
	if len(p.Names) == 0 {
		return nil, nil
	}
	m, err := p.manager(t)
	if err != nil {
		return nil, err
	}
	out, err := t.Host.Exec(ctx, m.QueryCmd(p.Names))
	if err != nil {
		return nil, fmt.Errorf("query packages: %w", err)
	}
	have := m.ParseInstalled(out)
	var missing []string
	for _, n := range p.Names {
		if !have[n] {
			missing = append(missing, n)
		}
	}
	sort.Strings(missing)
	return missing, nil
}

// Plan returns one "install" change per missing package.
func (p Packages) Plan(ctx context.Context, t *engine.Target) ([]engine.Change, error) {
	missing, err := p.Missing(ctx, t)
	if err != nil {
		return nil, err
	}
	var cs []engine.Change
	for _, n := range missing {
		cs = append(cs, engine.Change{Action: "install", Object: "package " + n})
	}
	return cs, nil
}

// Apply installs the planned packages in one transaction.
func (p Packages) Apply(ctx context.Context, t *engine.Target, plan []engine.Change) error {
	var names []string
	for _, c := range plan {
		if n, ok := strings.CutPrefix(c.Object, "package "); ok && c.Action == "install" {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return nil
	}
	m, err := p.manager(t)
	if err != nil {
		return err
	}
	var errs []error
	for _, cmd := range m.InstallCmds(names) {
		if _, err := RunAsRoot(ctx, t, cmd); err != nil {
			errs = append(errs, err)
			continue
		}
		return nil
	}
	return fmt.Errorf("install packages %s with %s: %w", strings.Join(names, " "), m.Name, errors.Join(errs...))
}
