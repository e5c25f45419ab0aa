package checks

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/kubewright/kubewright/agent"
)

func TestMemory(t *testing.T) {
	garbage := writeFile(t, filepath.Join(t.TempDir(), "meminfo"), []byte("MemTotal: lots\nnonsense\n\x00\x01"))
	tests := []struct {
		name   string
		path   string
		min    int
		status agent.Status
		reason string
		want   []string
	}{
		// 9876543/16318480 = 60.5%.
		{"healthy", "testdata/meminfo-healthy", 0, agent.OK, "OK", []string{"memory: over 60% available of 15.6 GiB, minimum 5%"}},
		{"healthy at a higher minimum", "testdata/meminfo-healthy", 60, agent.OK, "OK", []string{"over 60%"}},
		{"healthy just above the minimum", "testdata/meminfo-healthy", 58, agent.OK, "OK", []string{"over 60%"}},
		{"rounded to the minimum", "testdata/meminfo-low", 1, agent.OK, "OK", []string{"over 1% available of 3.8 GiB"}},
		{"below a higher minimum", "testdata/meminfo-healthy", 61, agent.Problem, ReasonMemoryPressure, []string{"below the 61% minimum"}},
		// 80530/4026520 = 2.0%.
		{"low", "testdata/meminfo-low", 0, agent.Problem, ReasonMemoryPressure, []string{"2.0% available (79 MiB of 3.8 GiB), below the 5% minimum"}},
		{"old kernel", "testdata/meminfo-no-available", 0, agent.Unknown, ReasonMeminfoUnreadable, []string{"no MemAvailable"}},
		{"garbage", garbage, 0, agent.Unknown, ReasonMeminfoUnreadable, []string{"no usable MemTotal"}},
		{"missing", filepath.Join(t.TempDir(), "none"), 0, agent.Unknown, ReasonMeminfoUnreadable, nil},
		{"bad minimum", "testdata/meminfo-healthy", 101, agent.Unknown, ReasonInvalidConfig, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Memory{MeminfoPath: tt.path, MinAvailablePercent: tt.min}.Run(context.Background())
			expect(t, r, tt.status, tt.reason, tt.want...)
		})
	}
	t.Run("real /proc/meminfo", func(t *testing.T) {
		if _, err := os.Stat(DefaultMeminfoPath); err != nil {
			t.Skip(err)
		}
		r := Memory{MinAvailablePercent: 1}.Run(context.Background())
		if r.Status == agent.Unknown {
			t.Fatalf("got %+v", r)
		}
	})
}
