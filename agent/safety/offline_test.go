package safety

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kubewright/kubewright/agent"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	clocktesting "k8s.io/utils/clock/testing"
)

// refused is what client-go returns when nothing listens on the VIP.
func refused() error {
	return &url.Error{Op: "Get", URL: "https://10.0.0.10:6443/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/kubewright-repair-0",
		Err: &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}}
}

func TestOfflineRateLimit(t *testing.T) {
	cs := fake.NewClientset()
	cs.PrependReactor("*", "*", func(k8stesting.Action) (bool, runtime.Object, error) { return true, nil, refused() })
	clk := clocktesting.NewFakeClock(t0)
	g := newGate(cs, "node-a", 1, clk)
	g.Quorum = healthyEtcd(3, 3, true)

	// Three node restarts in a sliding hour: at 0, 20 and 40 minutes.
	for i := 0; i < 3; i++ {
		if i > 0 {
			clk.Step(20 * time.Minute)
		}
		mustAcquire(t, g, "restart-kubelet", agent.ScopeNode)()
	}
	be := mustBlock(t, g, "restart-kubelet", agent.ScopeNode, "offline-rate")
	for _, want := range []string{"connection refused", "3/3 offline repairs used in the last hour", "next allowed in 20m0s"} {
		if !strings.Contains(be.Reason, want) {
			t.Fatalf("reason %q lacks %q", be.Reason, want)
		}
	}
	for _, scope := range []agent.Scope{agent.ScopeControlPlane, agent.ScopeEtcd} {
		be := mustBlock(t, g, "restart-kube-apiserver", scope, "api-unreachable")
		if !strings.Contains(be.Reason, "connection refused") {
			t.Fatalf("reason %q does not say why", be.Reason)
		}
	}

	// At 60m01s the first restart has left the window: one more.
	clk.Step(20*time.Minute + time.Second)
	mustAcquire(t, g, "restart-kubelet", agent.ScopeNode)()
	mustBlock(t, g, "restart-kubelet", agent.ScopeNode, "offline-rate")
	// At 80m01s the second one has left too.
	clk.Step(20 * time.Minute)
	mustAcquire(t, g, "restart-kubelet", agent.ScopeNode)()
	mustBlock(t, g, "restart-kubelet", agent.ScopeNode, "offline-rate")
}

func TestOfflineLimitIsConfigured(t *testing.T) {
	cs := fake.NewClientset()
	cs.PrependReactor("*", "*", func(k8stesting.Action) (bool, runtime.Object, error) { return true, nil, refused() })
	clk := clocktesting.NewFakeClock(t0)
	for _, perHour := range []int{0, 1, 5} {
		g := newGate(cs, fmt.Sprintf("node-%d", perHour), 1, clk)
		g.Config.OfflineRestartsPerHour = perHour
		for i := 0; i < perHour; i++ {
			mustAcquire(t, g, "restart-kubelet", agent.ScopeNode)()
		}
		mustBlock(t, g, "restart-kubelet", agent.ScopeNode, "offline-rate")
	}
}

func TestOfflineNotUsedWhenCallerGaveUp(t *testing.T) {
	cs := fake.NewClientset()
	ctx, cancel := context.WithCancel(context.Background())
	cs.PrependReactor("*", "*", func(k8stesting.Action) (bool, runtime.Object, error) {
		cancel()
		return true, nil, fmt.Errorf("get lease: %w", context.Canceled)
	})
	g := newGate(cs, "node-a", 1, clocktesting.NewFakeClock(t0))
	_, err := g.Acquire(ctx, "restart-kubelet", agent.ScopeNode)
	var be *agent.BlockedError
	if err == nil || errors.As(err, &be) {
		t.Fatalf("Acquire with a cancelled context: %v, want the plain error", err)
	}
}

func TestUnreachable(t *testing.T) {
	gr := schema.GroupResource{Group: "coordination.k8s.io", Resource: "leases"}
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"connection refused", refused(), true},
		{"no route", &url.Error{Op: "Get", URL: "https://x", Err: &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.EHOSTUNREACH)}}, true},
		{"dns", &url.Error{Op: "Get", URL: "https://x", Err: &net.DNSError{Err: "no such host", Name: "api.example"}}, true},
		{"client timeout", &url.Error{Op: "Get", URL: "https://x", Err: context.DeadlineExceeded}, true},
		{"haproxy without backends", apierrors.NewServiceUnavailable("no server is available"), true},
		{"forbidden", apierrors.NewForbidden(gr, "kubewright-repair-0", errors.New("rbac")), false},
		{"conflict", apierrors.NewConflict(gr, "kubewright-repair-0", errors.New("rv")), false},
		{"not found", apierrors.NewNotFound(gr, "kubewright-repair-0"), false},
		{"internal", apierrors.NewInternalError(errors.New("etcd")), false},
		{"tls", errors.New("x509: certificate signed by unknown authority"), false},
		{"nil", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Unreachable(fmt.Errorf("read lease: %w", tc.err)); got != tc.want && tc.err != nil {
				t.Fatalf("Unreachable(%v) = %v, want %v", tc.err, got, tc.want)
			}
			if tc.err == nil && Unreachable(nil) {
				t.Fatal("Unreachable(nil)")
			}
		})
	}
}
