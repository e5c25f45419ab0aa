package steps

import (
	"context"
	"fmt"
	"strings"

	"github.com/kubewright/kubewright/installer/engine"
	"github.com/kubewright/kubewright/installer/steps/stepkit"
)

// SwapOff turns swap off now and keeps it off after a reboot: kubelet
// refuses to start with swap on unless told otherwise, and memory limits mean
// little when pages can be swapped out.
type SwapOff struct {
	// swapoff is the command that disables active swap; tests replace it
	// because the real one acts on the machine's kernel, not on Root.
	swapoff string
}

// NewSwapOff returns the step with its production command.
func NewSwapOff() *SwapOff { return &SwapOff{swapoff: "swapoff -a"} }

// Name implements engine.Step.
func (*SwapOff) Name() string { return "swap-off" }

const fstabPath = "/etc/fstab"

// activeSwaps reads /proc/swaps (a header line, then one device per line).
func activeSwaps(procSwaps string) []string {
	var devs []string
	for i, l := range strings.Split(procSwaps, "\n") {
		f := strings.Fields(l)
		if i == 0 || len(f) == 0 || f[0] == "Filename" {
			continue
		}
		devs = append(devs, f[0])
	}
	return devs
}

// commentSwap comments out every active swap entry of an fstab and returns
// the new content and the entries it commented. Comments and other lines are
// kept byte for byte.
func commentSwap(fstab string) (string, []string) {
	lines := strings.SplitAfter(fstab, "\n")
	var hit []string
	for i, l := range lines {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		f := strings.Fields(t)
		if len(f) >= 3 && f[2] == "swap" {
			lines[i] = "#" + l
			hit = append(hit, f[0])
		}
	}
	return strings.Join(lines, ""), hit
}

type swapState struct {
	active []string
	fstab  string
	hasTab bool
}

func (s *SwapOff) read(ctx context.Context, t *engine.Target) (swapState, error) {
	script := fmt.Sprintf("cat %s 2>/dev/null; echo @@fstab; if [ -f %s ]; then echo present; cat %[2]s; fi",
		stepkit.Quote(stepkit.HostPath(t, "/proc/swaps")), stepkit.Quote(stepkit.HostPath(t, fstabPath)))
	out, err := t.Host.Exec(ctx, script)
	if err != nil {
		return swapState{}, fmt.Errorf("read swap state: %w", err)
	}
	swaps, rest, _ := strings.Cut(out, "@@fstab\n")
	st := swapState{active: activeSwaps(swaps)}
	if tab, ok := strings.CutPrefix(rest, "present\n"); ok {
		st.fstab, st.hasTab = tab, true
	}
	return st, nil
}

// Plan implements engine.Step.
func (s *SwapOff) Plan(ctx context.Context, t *engine.Target) ([]engine.Change, error) {
	st, err := s.read(ctx, t)
	if err != nil {
		return nil, err
	}
	var cs []engine.Change
	if len(st.active) > 0 {
		cs = append(cs, engine.Change{Action: "run", Object: "swapoff", Detail: "active: " + strings.Join(st.active, ", ")})
	}
	if st.hasTab {
		if _, hit := commentSwap(st.fstab); len(hit) > 0 {
			cs = append(cs, engine.Change{Action: "update", Object: fstabPath, Detail: "comment out swap " + strings.Join(hit, ", ")})
		}
	}
	return cs, nil
}

// Apply implements engine.Step. fstab is edited first so that a failure
// later never leaves swap coming back on the next boot.
func (s *SwapOff) Apply(ctx context.Context, t *engine.Target, plan []engine.Change) error {
	if stepkit.HasObject(plan, fstabPath) {
		st, err := s.read(ctx, t)
		if err != nil {
			return err
		}
		states, err := stepkit.StatFiles(ctx, t, []string{fstabPath})
		if err != nil {
			return err
		}
		mode := states[0].Mode.Perm()
		if mode == 0 {
			mode = 0o644
		}
		content, _ := commentSwap(st.fstab)
		f := stepkit.File{Path: fstabPath, Content: []byte(content), Mode: mode}
		if _, err := stepkit.ApplyFiles(ctx, t, []stepkit.File{f}, plan); err != nil {
			return fmt.Errorf("swap-off: %w", err)
		}
	}
	if stepkit.HasObject(plan, "swapoff") {
		if _, err := stepkit.RunAsRoot(ctx, t, s.swapoff); err != nil {
			return fmt.Errorf("swap-off: %w", err)
		}
	}
	return nil
}
