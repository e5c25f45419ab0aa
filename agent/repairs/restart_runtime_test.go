package repairs

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kubewright/kubewright/agent"
)

func TestRestartRuntimeContainerdThenKubelet(t *testing.T) {
	rec := &recorder{answer: activeAfter(1)}
	r := RestartRuntime{Run: rec.run, Poll: time.Millisecond}
	if r.Name() != "restart-containerd-kubelet" || r.Scope() != agent.ScopeNode {
		t.Fatalf("name %q scope %q", r.Name(), r.Scope())
	}
	if !slices.Equal(r.Units(), []string{"containerd.service", "kubelet.service"}) {
		t.Fatalf("Units() = %v", r.Units())
	}
	if err := r.Act(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"systemctl restart containerd.service",
		"systemctl is-active containerd.service",
		"systemctl is-active containerd.service",
		"systemctl restart kubelet.service",
		"systemctl is-active kubelet.service",
		"systemctl is-active kubelet.service",
	}
	if got := rec.commands(); !slices.Equal(got, want) {
		t.Fatalf("commands\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestRestartRuntimeKubeletWaitsForContainerd(t *testing.T) {
	rec := &recorder{answer: func(cmd string) (string, error) {
		switch cmd {
		case "systemctl is-active containerd.service":
			return "failed\n", errExit3
		case "journalctl -u containerd.service -n 5 --no-pager":
			return "containerd: failed to load plugin io.containerd.grpc.v1.cri\n", nil
		}
		return "", nil
	}}
	err := RestartRuntime{Run: rec.run, Wait: 20 * time.Millisecond, Poll: 5 * time.Millisecond}.Act(context.Background())
	if err == nil {
		t.Fatal("failed containerd reported as success")
	}
	for _, want := range []string{"kubelet not restarted", "containerd.service is failed", "failed to load plugin"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	for _, c := range rec.commands() {
		if strings.Contains(c, "kubelet") {
			t.Fatalf("ran %q although containerd never became active", c)
		}
	}
}
