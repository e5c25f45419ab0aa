package steps

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/kubewright/kubewright/installer/engine"
	"github.com/kubewright/kubewright/installer/inventory"
	"github.com/kubewright/kubewright/installer/kube"
	"github.com/kubewright/kubewright/installer/pki"
	"github.com/kubewright/kubewright/installer/remote"
	"github.com/kubewright/kubewright/installer/render"
	"github.com/kubewright/kubewright/installer/steps/stepkit"
)

// Kubelet is the `kubelet` step: the KubeletConfiguration and unit, then the
// node's join by TLS bootstrap, the kubeadm way but without kubeadm: a
// bootstrap token made for this host only through client-go, a bootstrap
// kubeconfig holding it, the kubelet's client CSR auto-approved by the
// controller-manager (RBAC from cluster-bootstrap), and the token deleted and
// the bootstrap kubeconfig removed as soon as the client certificate exists.
// The kubelet's serving CSR is approved here, and only when its node name and
// addresses are the inventory's (kube.KubeletServingCSRProblem).
type Kubelet struct {
	// JoinTimeout bounds the wait for the client and the serving certificate.
	JoinTimeout time.Duration
	// TokenTTL is the bootstrap token's lifetime: even if deleting it fails,
	// the tokencleaner controller removes it after this.
	TokenTTL time.Duration
	// Client is the API client (nil: super-admin from the state directory).
	Client clientFunc
	// Poll is the interval between checks while joining.
	Poll time.Duration
}

func (Kubelet) Name() string { return "kubelet" }

const unitKubelet = "kubelet.service"

// Change objects the kubelet step plans besides files and the unit.
func joinObject(node string) string    { return "node " + node }
func servingObject(node string) string { return "serving certificate of " + node }

func (s Kubelet) timeouts() (join, ttl, poll time.Duration) {
	join, ttl, poll = s.JoinTimeout, s.TokenTTL, s.Poll
	if join <= 0 {
		join = 3 * time.Minute
	}
	if ttl <= 0 {
		ttl = 15 * time.Minute
	}
	if poll <= 0 {
		poll = 2 * time.Second
	}
	return
}

func kubeletParams(ctx context.Context, t *engine.Target) (render.KubeletParams, error) {
	c := t.Cluster
	dns, err := c.ClusterDNSIP()
	if err != nil {
		return render.KubeletParams{}, fmt.Errorf("cluster DNS address: %w", err)
	}
	rt, err := detectRuntime(ctx, t)
	if err != nil {
		return render.KubeletParams{}, err
	}
	_, taints := nodeRoleLabelsAndTaints(t.Inv)
	var rts []render.Taint
	for _, tt := range taints {
		rts = append(rts, render.Taint{Key: tt.Key, Value: tt.Value, Effect: tt.Effect})
	}
	return render.KubeletParams{
		NodeName:       t.Inv.Name,
		NodeIP:         internalAddress(t.Inv),
		ClusterDNS:     dns.String(),
		ClusterDomain:  c.Spec.DNS.ClusterDomain,
		CgroupDriver:   rt.CgroupDriver(),
		CgroupV1:       !rt.CgroupV2,
		AllowSwap:      rt.Container != "",
		RegisterTaints: rts,
	}, nil
}

func (s Kubelet) group(ctx context.Context, t *engine.Target) (serviceGroup, error) {
	p, err := kubeletParams(ctx, t)
	if err != nil {
		return serviceGroup{}, err
	}
	conf, err := render.KubeletConfigFile(p)
	if err != nil {
		return serviceGroup{}, err
	}
	unit, err := render.KubeletUnit(p)
	if err != nil {
		return serviceGroup{}, err
	}
	ca, err := clusterCAPEM(t)
	if err != nil {
		return serviceGroup{}, err
	}
	return serviceGroup{
		files: []stepkit.File{
			{Path: render.PKIDir + "/ca.crt", Content: ca, Mode: 0o644, Owner: "root:root"},
			{Path: render.KubeletConfigPath, Content: []byte(conf), Mode: 0o644, Owner: "root:root"},
		},
		services:      []service{{unit: unitKubelet, content: []byte(unit), binary: render.BinDir + "/kubelet", dependsOn: func(string) bool { return true }}},
		activeTimeout: time.Minute,
	}, nil
}

func clusterCAPEM(t *engine.Target) ([]byte, error) {
	ca, _, err := pki.NewStore(PKIDir(t.StateDir), nil).CA(pki.CACluster)
	if err != nil {
		return nil, fmt.Errorf("cluster CA: %w", err)
	}
	return pemCert(ca.Raw), nil
}

// nodeCertState reports whether the kubelet has its client (joined) and
// serving (approved) certificates, in one command.
func nodeCertState(ctx context.Context, t *engine.Target) (joined, serving bool, err error) {
	q := func(p string) string { return stepkit.Quote(stepkit.HostPath(t, p)) }
	script := fmt.Sprintf(`if [ -s %s ] && [ -s %s ]; then echo joined; else echo new; fi; if [ -s %s ]; then echo serving; else echo none; fi`,
		q(render.KubeletClientCert), q(render.KubeletKubeconfig), q(render.KubeletServingCert))
	out, err := stepkit.RunAsRoot(ctx, t, script)
	if err != nil {
		return false, false, fmt.Errorf("inspect kubelet certificates on %s: %w", t.Inv.Name, err)
	}
	f := strings.Fields(out)
	if len(f) != 2 {
		return false, false, fmt.Errorf("inspect kubelet certificates on %s: unexpected output %q", t.Inv.Name, out)
	}
	return f[0] == "joined", f[1] == "serving", nil
}

func (s Kubelet) Plan(ctx context.Context, t *engine.Target) ([]engine.Change, error) {
	g, err := s.group(ctx, t)
	if err != nil {
		return nil, err
	}
	changes, err := g.plan(ctx, t)
	if err != nil {
		return nil, err
	}
	joined, serving, err := nodeCertState(ctx, t)
	if err != nil {
		return nil, err
	}
	if !joined {
		changes = append(changes, engine.Change{Action: "join", Object: joinObject(t.Inv.Name), Detail: "TLS bootstrap with a one-time token"})
	}
	if !serving {
		changes = append(changes, engine.Change{Action: "approve", Object: servingObject(t.Inv.Name), Detail: "kubelet serving CSR matching the inventory"})
	}
	return changes, nil
}

func (s Kubelet) Apply(ctx context.Context, t *engine.Target, plan []engine.Change) error {
	g, err := s.group(ctx, t)
	if err != nil {
		return err
	}
	join := stepkit.HasObject(plan, joinObject(t.Inv.Name))
	needServing := stepkit.HasObject(plan, servingObject(t.Inv.Name))
	if !join && !needServing {
		return g.apply(ctx, t, plan)
	}
	cs, err := s.Client.get(ctx, t)
	if err != nil {
		return err
	}
	joinTimeout, ttl, poll := s.timeouts()
	if join {
		tok, err := kube.CreateBootstrapToken(ctx, cs, ttl, time.Now(), "kubewright join of "+t.Inv.Name)
		if err != nil {
			return fmt.Errorf("join %s: %w", t.Inv.Name, err)
		}
		// Delete the token whatever happens; a fresh context so a cancelled
		// run still cleans up (the token also expires after TokenTTL).
		defer func() {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			if err := kube.DeleteBootstrapToken(dctx, cs, tok.ID); err != nil && t.Log != nil {
				t.Log.Warn("bootstrap token not deleted; it expires on its own", "host", t.Inv.Name, "token_id", tok.ID, "expires", tok.Expires, "err", err)
			}
		}()
		if err := s.writeBootstrapKubeconfig(ctx, t, tok.String()); err != nil {
			return err
		}
		if !hasUnitStart(plan) {
			// The unit is running (e.g. a failed earlier join): restart it
			// so it reads the new bootstrap kubeconfig.
			plan = append(plan, engine.Change{Action: stepkit.ActionRestart, Object: unitKubelet, Detail: "join"})
		}
	}
	if err := g.apply(ctx, t, plan); err != nil {
		return err
	}
	deadline := time.Now().Add(joinTimeout)
	if join {
		if err := waitFor(ctx, deadline, poll, func() (bool, error) {
			joined, _, err := nodeCertState(ctx, t)
			return joined, err
		}); err != nil {
			return fmt.Errorf("kubelet on %s did not get its client certificate within %s (journalctl -u kubelet on %s): %w", t.Inv.Name, joinTimeout, t.Inv.Name, err)
		}
		if _, err := stepkit.RunAsRoot(ctx, t, "rm -f "+stepkit.Quote(stepkit.HostPath(t, render.KubeletBootstrapKubeconfig))); err != nil {
			return fmt.Errorf("remove bootstrap kubeconfig on %s: %w", t.Inv.Name, err)
		}
	}
	ident := kube.NodeIdentity{Name: t.Inv.Name, Addresses: inventoryAddresses(t.Inv)}
	refused := map[string]string{}
	err = waitFor(ctx, deadline, poll, func() (bool, error) {
		res, err := kube.ApproveKubeletServingCSRs(ctx, cs, ident)
		if err != nil {
			return false, err
		}
		for n, why := range res.Refused {
			refused[n] = why
		}
		for _, n := range res.Approved {
			if t.Log != nil {
				t.Log.Info("approved kubelet serving CSR", "host", t.Inv.Name, "csr", n)
			}
		}
		_, serving, err := nodeCertState(ctx, t)
		return serving, err
	})
	if err != nil {
		msg := fmt.Sprintf("kubelet on %s has no serving certificate after %s", t.Inv.Name, joinTimeout)
		if len(refused) > 0 {
			var rs []string
			for n, why := range refused {
				rs = append(rs, n+": "+why)
			}
			sort.Strings(rs)
			msg += "; CSRs left pending because they do not match the inventory: " + strings.Join(rs, "; ")
		}
		return fmt.Errorf("%s: %w", msg, err)
	}
	return nil
}

func hasUnitStart(plan []engine.Change) bool {
	for _, c := range plan {
		if c.Object == unitKubelet && (c.Action == stepkit.ActionStart || c.Action == stepkit.ActionRestart) {
			return true
		}
	}
	return false
}

func inventoryAddresses(h *inventory.Host) []string {
	out := []string{h.Address}
	if h.InternalAddress != "" && h.InternalAddress != h.Address {
		out = append(out, h.InternalAddress)
	}
	return out
}

// writeBootstrapKubeconfig uploads the token-bearing kubeconfig (0600). The
// token travels only as file content, never on a command line or in a log.
func (s Kubelet) writeBootstrapKubeconfig(ctx context.Context, t *engine.Target, token string) error {
	ca, err := clusterCAPEM(t)
	if err != nil {
		return err
	}
	cfg := bootstrapKubeconfig("https://"+t.Cluster.Endpoint(), ca, token)
	dir := stepkit.HostPath(t, render.KubernetesDir)
	if _, err := stepkit.RunAsRoot(ctx, t, "mkdir -p "+stepkit.Quote(dir)); err != nil {
		return fmt.Errorf("create %s on %s: %w", render.KubernetesDir, t.Inv.Name, err)
	}
	if _, err := t.Host.Upload(ctx, bytes.NewReader(cfg), stepkit.HostPath(t, render.KubeletBootstrapKubeconfig), 0o600, remote.UploadAsRoot(), remote.UploadOwner("root:root")); err != nil {
		return fmt.Errorf("write bootstrap kubeconfig on %s: %w", t.Inv.Name, err)
	}
	return nil
}

func bootstrapKubeconfig(server string, caPEM []byte, token string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "apiVersion: v1\nkind: Config\nclusters:\n- name: kubernetes\n  cluster:\n    server: %s\n    certificate-authority-data: %s\n", server, b64(caPEM))
	fmt.Fprintf(&b, "contexts:\n- name: tls-bootstrap\n  context:\n    cluster: kubernetes\n    user: tls-bootstrap-token-user\ncurrent-context: tls-bootstrap\n")
	fmt.Fprintf(&b, "users:\n- name: tls-bootstrap-token-user\n  user:\n    token: %s\n", token)
	return b.Bytes()
}

// waitFor polls cond until it is true, ctx ends or deadline passes; the last
// condition error is reported.
func waitFor(ctx context.Context, deadline time.Time, poll time.Duration, cond func() (bool, error)) error {
	var last error
	for {
		ok, err := cond()
		if err == nil && ok {
			return nil
		}
		last = err
		if time.Now().After(deadline) {
			if last != nil {
				return fmt.Errorf("timed out (last error: %w)", last)
			}
			return fmt.Errorf("timed out")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(poll):
		}
	}
}
