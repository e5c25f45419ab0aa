package repairs

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/kubewright/kubewright/agent"
)

func TestPruneImages(t *testing.T) {
	if (PruneImages{}).Name() != "prune-images" || (PruneImages{}).Scope() != agent.ScopeNode {
		t.Fatal("name or scope changed")
	}
	for _, tc := range []struct {
		p    PruneImages
		want string
	}{
		{PruneImages{}, "crictl rmi --prune"},
		{PruneImages{Crictl: "/usr/local/bin/crictl", Endpoint: "unix:///run/containerd/containerd.sock"},
			"/usr/local/bin/crictl --runtime-endpoint unix:///run/containerd/containerd.sock rmi --prune"},
	} {
		rec := &recorder{}
		tc.p.Run = rec.run
		if err := tc.p.Act(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := rec.commands(); !slices.Equal(got, []string{tc.want}) {
			t.Errorf("commands %q, want %q", got, tc.want)
		}
	}
}

func TestPruneImagesFailureCarriesOutput(t *testing.T) {
	rec := &recorder{answer: func(string) (string, error) {
		return "time=\"...\" level=fatal msg=\"validate service connection: connection refused\"\n", errors.New("exit status 1")
	}}
	err := PruneImages{Run: rec.run}.Act(context.Background())
	if err == nil || !strings.Contains(err.Error(), "connection refused") || !strings.Contains(err.Error(), "prune unused images") {
		t.Fatalf("error %v, want crictl's own message", err)
	}
}
