package checks

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/kubewright/kubewright/agent"
)

// MemoryName is the memory check's name.
const MemoryName = "memory"

const (
	// ReasonMemoryPressure: less memory is available than the minimum; the
	// OOM killer and the kubelet's evictions are near.
	ReasonMemoryPressure = "MemoryPressure"
	// ReasonMeminfoUnreadable: /proc/meminfo cannot be read or lacks the
	// fields the check needs.
	ReasonMeminfoUnreadable = "MeminfoUnreadable"
)

// Defaults for Memory.
const (
	DefaultMeminfoPath         = "/proc/meminfo"
	DefaultMinAvailablePercent = 5
)

// Memory compares MemAvailable with MemTotal. MemAvailable is the kernel's
// own estimate of what can be allocated without swapping (free memory plus
// reclaimable cache), which is what matters; MemFree alone is near zero on
// any busy node.
type Memory struct {
	// MeminfoPath is DefaultMeminfoPath when empty.
	MeminfoPath string
	// MinAvailablePercent of MemTotal must be available;
	// DefaultMinAvailablePercent when 0.
	MinAvailablePercent int
}

func (m Memory) Name() string { return MemoryName }

func (m Memory) Run(ctx context.Context) agent.Result {
	path := m.MeminfoPath
	if path == "" {
		path = DefaultMeminfoPath
	}
	minPct := m.MinAvailablePercent
	if minPct == 0 {
		minPct = DefaultMinAvailablePercent
	}
	if minPct < 0 || minPct > 100 {
		return unknownf(ReasonInvalidConfig, "memory: minimum available %d%% must be between 0 and 100", minPct)
	}
	if ctx.Err() != nil {
		return canceled(ctx, "memory")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return unknownf(ReasonMeminfoUnreadable, "memory: %v", err)
	}
	fields := parseMeminfo(b)
	total, okT := fields["MemTotal"]
	avail, okA := fields["MemAvailable"]
	switch {
	case !okT || total == 0:
		return unknownf(ReasonMeminfoUnreadable, "memory: %s has no usable MemTotal", path)
	case !okA:
		return unknownf(ReasonMeminfoUnreadable, "memory: %s has no MemAvailable (kernel older than 3.14?)", path)
	}
	pct := 100 * float64(avail) / float64(total)
	if pct < float64(minPct) {
		return problemf(ReasonMemoryPressure, "memory: %.1f%% available (%s of %s), below the %d%% minimum", pct, kib(avail), kib(total), minPct)
	}
	// The healthy message is rounded down to 5%: it becomes the
	// NodeCondition's message, and a figure that changes every run would
	// rewrite the Node's status every run.
	return okf("memory: over %d%% available of %s, minimum %d%%", max(minPct, int(pct)/5*5), kib(total), minPct)
}

// parseMeminfo reads "Name:   1234 kB" lines into KiB values.
func parseMeminfo(b []byte) map[string]uint64 {
	out := map[string]uint64{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		n, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			continue
		}
		out[strings.TrimSpace(k)] = n
	}
	return out
}

func kib(n uint64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.0f MiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d KiB", n)
}
