package checks

import (
	"context"
	"testing"
	"time"

	"github.com/kubewright/kubewright/agent"
)

func TestHAProxy(t *testing.T) {
	front := listener(t, "127.0.0.1")
	b1, b2 := listener(t, "127.0.0.1"), listener(t, "127.0.0.1")
	down := closedAddr(t)
	silent := blackhole(t)
	tests := []struct {
		name   string
		h      HAProxy
		status agent.Status
		reason string
		want   []string
	}{
		{"all up", HAProxy{Frontend: front, Backends: []string{b1, b2}}, agent.OK, "OK", []string{"2/2 backends up"}},
		{"one backend down", HAProxy{Frontend: front, Backends: []string{b1, b2, down}}, agent.OK, "OK", []string{"2/3 backends up", down + ": connection refused"}},
		{"frontend down", HAProxy{Frontend: down, Backends: []string{b1}}, agent.Problem, ReasonHAProxyDown, []string{"frontend " + down, "connection refused"}},
		{"frontend hung", HAProxy{Frontend: silent, Backends: []string{b1}, Timeout: 200 * time.Millisecond}, agent.Problem, ReasonHAProxyDown, []string{"no answer within 200ms"}},
		{"no backend up", HAProxy{Frontend: front, Backends: []string{down, silent}, Timeout: 200 * time.Millisecond}, agent.Problem, ReasonHAProxyNoBackends, []string{"none of its 2 backends"}},
		{"no backends configured", HAProxy{Frontend: front}, agent.OK, "OK", []string{"no backends configured"}},
		{"bad backend", HAProxy{Frontend: front, Backends: []string{"10.0.0.1"}}, agent.Unknown, ReasonInvalidConfig, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			expect(t, tt.h.Run(context.Background()), tt.status, tt.reason, tt.want...)
		})
	}
}
