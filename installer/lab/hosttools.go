package lab

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// hostTools maps each program a lab needs on the host to its Debian package.
var hostTools = []struct{ Bin, Package string }{
	{"debootstrap", "debootstrap"},
	{"systemd-nspawn", "systemd-container"},
}

// missingHostPackages lists the packages whose program lookPath cannot find.
func missingHostPackages(lookPath func(string) (string, error)) []string {
	var pkgs []string
	for _, t := range hostTools {
		if _, err := lookPath(t.Bin); err != nil {
			pkgs = append(pkgs, t.Package)
		}
	}
	return pkgs
}

func installCommand(pkgs []string) string {
	return "apt-get install -y --no-install-recommends " + strings.Join(pkgs, " ")
}

// ensureHostTools installs missing host packages with apt-get when allowed,
// and otherwise fails with the exact command to run.
func (m *Manager) ensureHostTools(ctx context.Context) error {
	pkgs := missingHostPackages(exec.LookPath)
	if len(pkgs) == 0 {
		return nil
	}
	cmdline := installCommand(pkgs)
	if !m.cfg.InstallHostTools {
		return fmt.Errorf("lab needs host packages %s; install them with: %s", strings.Join(pkgs, ", "), cmdline)
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		return fmt.Errorf("lab needs host programs from packages %s and this host has no apt-get; install them with your package manager", strings.Join(pkgs, ", "))
	}
	fmt.Fprintf(m.cfg.Out, "installing host packages: apt-get update && %s\n", cmdline)
	for _, args := range [][]string{{"update", "-qq"}, append([]string{"install", "-y", "-qq", "--no-install-recommends"}, pkgs...)} {
		c := exec.CommandContext(ctx, "apt-get", args...)
		c.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := c.CombinedOutput(); err != nil {
			return fmt.Errorf("apt-get %s: %w\n%s\ninstall them by hand with: %s", strings.Join(args, " "), err, out, cmdline)
		}
	}
	if still := missingHostPackages(exec.LookPath); len(still) > 0 {
		return fmt.Errorf("installed %s but programs are still missing from PATH", strings.Join(still, ", "))
	}
	return nil
}
