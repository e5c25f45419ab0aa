package checks

import (
	"context"
	"testing"
	"time"

	"github.com/kubewright/kubewright/agent"
)

// A check whose context has ended found nothing about the node: it must say
// Unknown, never Problem (which would count towards a repair).
func TestCanceledContextIsUnknown(t *testing.T) {
	ca := newCA(t, "ca")
	p := newEtcdPKI(t)
	sock := criSocket(t)
	silent := blackhole(t)
	_, silentPort := hostPort(t, silent)
	crictl := fakeCrictl(t, sock, "exec sleep 5")
	systemctl := script(t, "systemctl", "exec sleep 5")
	dns := serveDNS(t, nil)

	checks := []agent.Check{
		Kubelet{URL: "http://" + silent + "/healthz"},
		APIServer{URL: "https://" + silent + "/readyz", CACert: writeFile(t, t.TempDir()+"/ca.crt", ca.pem)},
		Etcd{Endpoint: "https://" + silent, CACert: p.caFile, Cert: p.cert, Key: p.key},
		EtcdQuorum{Endpoints: []string{"https://" + silent}, CACert: p.caFile, Cert: p.cert, Key: p.key},
		VIP{Address: "127.0.0.1", Port: silentPort, HeldLocally: func() (bool, error) { return false, nil }},
		VIP{Address: "127.0.0.1", HeldLocally: func() (bool, error) { return false, nil }, Peers: func(ctx context.Context) (int, error) { return 0, ctx.Err() }},
		HAProxy{Frontend: silent},
		Containerd{Socket: sock, Crictl: crictl},
		Unit{Unit: "kubelet.service", Runner: asSystemctl(t, systemctl)},
		Disk{Paths: []string{t.TempDir()}},
		Memory{MeminfoPath: "testdata/meminfo-low"},
		Certs{Dirs: []string{t.TempDir()}},
		Clock{Peers: []string{silent}},
		DNS{Server: dns.addr},
	}
	for _, c := range checks {
		t.Run(c.Name(), func(t *testing.T) {
			expect(t, c.Run(canceledCtx()), agent.Unknown, ReasonCheckCanceled)
		})
	}
}

// Every check has its documented name.
func TestNames(t *testing.T) {
	for _, tt := range []struct {
		c    agent.Check
		want string
	}{
		{Kubelet{}, "kubelet"}, {Containerd{}, "containerd"}, {APIServer{}, "apiserver"}, {Etcd{}, "etcd"},
		{EtcdQuorum{}, "etcd-quorum"}, {VIP{}, "vip"}, {HAProxy{}, "haproxy"}, {Disk{}, "disk"}, {Memory{}, "memory"},
		{Certs{}, "certificates"}, {Clock{}, "clock"}, {DNS{}, "dns"},
		{Unit{Unit: "keepalived.service", CheckName: "keepalived"}, "keepalived"},
		{Unit{Unit: "kube-proxy.service", CheckName: "kube-proxy"}, "kube-proxy"},
	} {
		if got := tt.c.Name(); got != tt.want {
			t.Errorf("%T name %q, want %q", tt.c, got, tt.want)
		}
	}
}

// Zero-value checks never panic, whatever the node has (or lacks).
func TestZeroValuesDoNotPanic(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	for _, c := range []agent.Check{Kubelet{}, Containerd{}, APIServer{}, Etcd{}, EtcdQuorum{}, VIP{}, HAProxy{}, Disk{}, Memory{}, Certs{}, Clock{}, DNS{}, Unit{}} {
		r := c.Run(ctx)
		t.Logf("%s: %s/%s: %s", c.Name(), r.Status, r.Reason, r.Message)
		if r.Status != agent.OK && r.Status != agent.Problem && r.Status != agent.Unknown || r.Reason == "" || r.Message == "" {
			t.Errorf("%s: bad result %+v", c.Name(), r)
		}
	}
}
