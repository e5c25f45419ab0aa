package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sversion "k8s.io/apimachinery/pkg/version"

	"github.com/kubewright/kubewright/installer/artifacts"
	"github.com/kubewright/kubewright/installer/engine"
	"github.com/kubewright/kubewright/installer/etcdbackup"
	"github.com/kubewright/kubewright/installer/inventory"
	"github.com/kubewright/kubewright/installer/kube"
	"github.com/kubewright/kubewright/installer/remote"
	"github.com/kubewright/kubewright/installer/remote/remotetest"
	"github.com/kubewright/kubewright/installer/steps"
)

// upgradeArtifactsDir is nodeArtifactsDir for release v.
func upgradeArtifactsDir(t *testing.T, v string) string {
	t.Helper()
	dir := nodeArtifactsDir(t)
	src, err := artifacts.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := src.Manifest().Clone()
	m.KubernetesVersion = v
	data, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, artifacts.ManifestFile), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// upgradeInv is certsInv (two masters that listen nowhere, so any attempt
// to reach a host fails) with spec.kubernetes.version and artifacts at arts.
func upgradeInv(t *testing.T, invVersion, arts string) string {
	t.Helper()
	body, err := os.ReadFile(certsInv)
	if err != nil {
		t.Fatal(err)
	}
	inv := filepath.Join(t.TempDir(), "inv.yaml")
	doc := string(body) + "  kubernetes:\n    version: " + invVersion + "\n  artifacts:\n    source: dir\n    path: " + arts + "\n"
	if err := os.WriteFile(inv, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return inv
}

type apiNode struct {
	name, kubelet string
	cordoned      bool
}

// upgradeAPI serves /version and the nodes, and points the state
// directory's admin kubeconfig at itself.
func upgradeAPI(t *testing.T, base, apiserver string, nodes ...apiNode) {
	t.Helper()
	var items []corev1.Node
	for _, n := range nodes {
		node := corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.name}}
		node.Status.NodeInfo.KubeletVersion = n.kubelet
		if n.cordoned {
			node.Spec.Unschedulable = true
			node.Annotations = map[string]string{steps.AnnotationUpgradeCordoned: "v1.37.2"}
		}
		items = append(items, node)
	}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/version":
			_ = json.NewEncoder(w).Encode(&k8sversion.Info{GitVersion: apiserver})
		case "/api/v1/nodes":
			_ = json.NewEncoder(w).Encode(&corev1.NodeList{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "NodeList"}, Items: items})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	pointAdminAt(t, base, srv)
}

// TestUpgradeRefusesBadInput: each refusal is bad input (exit 2) naming the
// thing and the fix, decided before the API or any host is contacted (no
// API is served here; the hosts listen nowhere).
func TestUpgradeRefusesBadInput(t *testing.T) {
	base := certsState(t, time.Now())
	arts := upgradeArtifactsDir(t, "v1.37.2")
	inv := upgradeInv(t, "v1.36.3", arts)
	missing := upgradeInv(t, "v1.36.3", filepath.Join(t.TempDir(), "nope"))
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"no --to", []string{"upgrade", "-i", inv}, []string{"--to is required", "--to v1.37.2"}},
		{"unknown version format", []string{"upgrade", "-i", inv, "--to", "1.37.2"}, []string{`--to: "1.37.2" is not a Kubernetes version`, "e.g. v1.37.2"}},
		{"a minor only", []string{"upgrade", "-i", inv, "--to", "v1.37"}, []string{`"v1.37" is not a Kubernetes version`}},
		{"max-unavailable zero", []string{"upgrade", "-i", inv, "--to", "v1.37.2", "--max-unavailable", "0"}, []string{`--max-unavailable "0"`, "10%"}},
		{"max-unavailable over 100%", []string{"upgrade", "-i", inv, "--to", "v1.37.2", "--max-unavailable", "150%"}, []string{`--max-unavailable "150%"`}},
		{"drain timeout", []string{"upgrade", "-i", inv, "--to", "v1.37.2", "--drain-timeout", "0s"}, []string{"--drain-timeout must be positive"}},
		{"drain timeout beyond the step timeout", []string{"upgrade", "-i", inv, "--to", "v1.37.2", "--drain-timeout", "10m", "--step-timeout", "10m"}, []string{"--drain-timeout 10m0s does not fit in --step-timeout 10m0s", "at least 11m0s"}},
		{"via without step", []string{"upgrade", "-i", inv, "--to", "v1.37.2", "--via", arts}, []string{"only --step walks", "add --step"}},
		{"missing artifacts", []string{"upgrade", "-i", missing, "--to", "v1.37.2"}, []string{"spec.artifacts.path", "nope", "fix: build them with `make artifacts`"}},
		{"artifacts of another release", []string{"upgrade", "-i", inv, "--to", "v1.38.0"}, []string{"--to v1.38.0, but " + inv + " spec.artifacts", "holds Kubernetes v1.37.2", "fix: point spec.artifacts.path in " + inv + " at artifacts built for v1.38.0", "or pass --to v1.37.2"}},
		{"a --via that is no artifacts", []string{"upgrade", "-i", inv, "--to", "v1.37.2", "--step", "--via", t.TempDir()}, []string{"--via ", "fix: give an artifacts directory"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := runCLI(t, append([]string{"--state-dir", base}, tc.args...)...)
			if err == nil || !isBadInput(err) {
				t.Fatalf("err %v, want bad input", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err %q\nlacks %q", err, w)
				}
			}
		})
	}
	t.Run("never installed", func(t *testing.T) {
		_, _, err := runCLI(t, "--state-dir", filepath.Join(t.TempDir(), "s"), "upgrade", "-i", inv, "--to", "v1.37.2")
		if err == nil || !isBadInput(err) || !strings.Contains(err.Error(), "run kubewright install -i "+inv+" first") {
			t.Fatalf("err %v", err)
		}
	})
}

// TestUpgradeSkewRules: what the cluster reports decides, through the API.
func TestUpgradeSkewRules(t *testing.T) {
	for _, tc := range []struct {
		name      string
		artifacts string
		apiserver string
		nodes     []apiNode
		args      []string
		want      []string
	}{
		{"downgrade", "v1.36.3", "v1.37.2", []apiNode{{"master1", "v1.37.2", false}, {"master2", "v1.37.2", false}}, nil,
			[]string{"nothing was changed", "v1.36.3 is older than the apiserver, which runs v1.37.2: downgrades are not supported"}},
		{"skipping a minor", "v1.37.2", "v1.35.4", []apiNode{{"master1", "v1.35.4", false}, {"master2", "v1.35.4", false}}, nil,
			[]string{"v1.37.2 is 2 minor versions past the apiserver (v1.35.4): Kubernetes upgrades one minor at a time", "fix: upgrade to a v1.36 release first", "--step with --via DIR"}},
		{"the oldest kubelet decides", "v1.37.2", "v1.36.3", []apiNode{{"master1", "v1.36.3", false}, {"master2", "v1.35.4", false}}, nil,
			[]string{"past node master2's kubelet (v1.35.4)"}},
		{"a step without the release in between", "v1.37.2", "v1.35.4", []apiNode{{"master1", "v1.35.4", false}, {"master2", "v1.35.4", false}}, []string{"--step"},
			[]string{"add --via DIR with artifacts of a v1.36 release"}},
		{"a host with no Node", "v1.37.2", "v1.36.3", []apiNode{{"master1", "v1.36.3", false}}, nil,
			[]string{"host master2 in", "has no Node", "kubewright install -i"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := certsState(t, time.Now())
			inv := upgradeInv(t, "v1.36.3", upgradeArtifactsDir(t, tc.artifacts))
			upgradeAPI(t, base, tc.apiserver, tc.nodes...)
			args := append([]string{"--state-dir", base, "upgrade", "-i", inv, "--to", tc.artifacts}, tc.args...)
			_, _, err := runCLI(t, args...)
			if err == nil || !isBadInput(err) {
				t.Fatalf("err %v, want bad input", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err %q\nlacks %q", err, w)
				}
			}
		})
	}
}

// A cluster already at --to is left alone: exit 0, a message, no host
// contacted (they listen nowhere) and no snapshot.
func TestUpgradeSameVersionIsANoOp(t *testing.T) {
	base := certsState(t, time.Now())
	inv := upgradeInv(t, "v1.36.3", upgradeArtifactsDir(t, "v1.37.2"))
	upgradeAPI(t, base, "v1.37.2", apiNode{"master1", "v1.37.2", false}, apiNode{"master2", "v1.37.2", false})
	out, _, err := runCLI(t, "--state-dir", base, "upgrade", "-i", inv, "--to", "v1.37.2")
	if err != nil {
		t.Fatalf("err %v\n%s", err, out)
	}
	for _, w := range []string{"cluster certtest already runs v1.37.2 (the apiserver and every kubelet): nothing to upgrade", "set spec.kubernetes.version: v1.37.2"} {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
	if _, err := os.Stat(etcdbackup.Dir(filepath.Join(base, "clusters", "certtest"))); !os.IsNotExist(err) {
		t.Errorf("a no-op upgrade made a backups directory: %v", err)
	}
}

// Every kubelet at --to, but a node a cut run left cordoned: the upgrade is
// not finished, so it goes on (here to the check that every master and
// etcd member answers, which fails: the hosts listen nowhere).
func TestUpgradeWithANodeLeftCordonedIsNotANoOp(t *testing.T) {
	base := certsState(t, time.Now())
	inv := upgradeInv(t, "v1.37.2", upgradeArtifactsDir(t, "v1.37.2"))
	upgradeAPI(t, base, "v1.37.2", apiNode{"master1", "v1.37.2", true}, apiNode{"master2", "v1.37.2", false})
	out, _, err := runCLI(t, "--state-dir", base, "upgrade", "-i", inv, "--to", "v1.37.2")
	if err == nil || isBadInput(err) || !strings.Contains(err.Error(), "upgrade: nothing was changed") || !strings.Contains(err.Error(), "connect to master1") {
		t.Fatalf("err %v\n%s", err, out)
	}
}

// --dry-run prints the order, takes no snapshot, and runs the playbook's
// plan (which here cannot reach the hosts: exit 1, not bad input).
func TestUpgradeDryRunShowsTheOrder(t *testing.T) {
	base := certsState(t, time.Now())
	inv := upgradeInv(t, "v1.37.2", upgradeArtifactsDir(t, "v1.37.2"))
	upgradeAPI(t, base, "v1.36.3", apiNode{"master1", "v1.36.3", false}, apiNode{"master2", "v1.36.3", false}, apiNode{"old9", "v1.36.3", false})
	out, _, err := runCLI(t, "--state-dir", base, "upgrade", "-i", inv, "--to", "v1.37.2", "--dry-run", "--max-unavailable", "50%")
	if err == nil || isBadInput(err) || !strings.Contains(err.Error(), "--dry-run (nothing was changed)") {
		t.Fatalf("err %v, want the unreachable hosts' failure", err)
	}
	for _, w := range []string{
		"cluster certtest: oldest component v1.36.3 (the apiserver), apiserver v1.36.3; upgrading to v1.37.2",
		"masters, one at a time: master1, master2",
		"not in the inventory, so not upgraded (they count for the version skew): old9",
		"upgrade pass 1 of 1: v1.36.3 (the apiserver) -> v1.37.2",
	} {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
	if strings.Contains(out, "etcd snapshot") {
		t.Errorf("a dry run took a snapshot:\n%s", out)
	}
}

func TestParseMaxUnavailable(t *testing.T) {
	for in, want := range map[string]string{"1": "1", "3": "3", "10%": "10%", "100%": "100%"} {
		s, err := parseMaxUnavailable(in)
		if err != nil || s.String() != want {
			t.Errorf("%s: %v, %v", in, s, err)
		}
	}
	for _, in := range []string{"0", "-1", "0%", "101%", "x", "10 %", ""} {
		if _, err := parseMaxUnavailable(in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

// The command sets the workers play's batch from --max-unavailable and
// leaves the masters at one at a time.
func TestUpgradeMaxUnavailableSetsOnlyTheWorkersPlay(t *testing.T) {
	pb, _, err := loadPlaybook("upgrade")
	if err != nil {
		t.Fatal(err)
	}
	s, _ := parseMaxUnavailable("25%")
	if err := setPlaySerial(pb, upgradeWorkersPlay, s); err != nil {
		t.Fatal(err)
	}
	for _, p := range pb.Plays {
		switch p.Name {
		case "workers":
			if p.Serial.Percent != 25 {
				t.Errorf("workers serial %s", p.Serial)
			}
		case "masters", "etcd members":
			if p.Serial.Count != 1 {
				t.Errorf("%s serial %s", p.Name, p.Serial)
			}
		}
	}
}

// The snapshot comes from the first etcd member that gives one, over SSH
// (an in-process server whose etcdctl writes a snapshot), and is named so
// an operator finds it: after the cluster and the release it precedes.
func TestUpgradeSnapshotNamedAfterTheRelease(t *testing.T) {
	db := make([]byte, 2*4096)
	if _, err := rand.Read(db); err != nil {
		t.Fatal(err)
	}
	inner := sha256.Sum256(db)
	src := filepath.Join(t.TempDir(), "snap")
	writeFile(t, src, string(append(db, inner[:]...)), 0o600)
	bin := t.TempDir()
	writeFile(t, filepath.Join(bin, "etcdctl"), "#!/bin/sh\nfor a; do last=$a; done\ncp '"+src+"' \"$last\"\n", 0o755)
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	srv := remotetest.NewServer(t, remotetest.WithSudo(""))

	cl, err := inventory.Load(certsInv)
	if err != nil {
		t.Fatal(err)
	}
	conn := engine.ConnectorFunc(func(ctx context.Context, h *inventory.Host) (remote.Host, error) {
		if h.Name == "master1" {
			return nil, errors.New("master1 is down")
		}
		rh, err := remote.Dial(ctx, srv.Config(h.Name))
		if err == nil {
			t.Cleanup(func() { rh.Close() })
		}
		return rh, err
	})
	dir := t.TempDir()
	v, _ := kube.ParseVersion("v1.37.2")
	snap, err := upgradeSnapshot(context.Background(), conn, cl, dir, v, filepath.Join(t.TempDir(), "remote"))
	if err != nil {
		t.Fatal(err)
	}
	if snap.Member != "master2" || filepath.Dir(snap.Path) != etcdbackup.Dir(dir) ||
		!strings.HasPrefix(filepath.Base(snap.Path), "etcd-certtest-pre-upgrade-v1.37.2-") || !strings.HasSuffix(snap.Path, ".db") {
		t.Fatalf("snapshot %+v", snap)
	}
	if _, err := etcdbackup.Verify(snap.Path); err != nil {
		t.Fatalf("the saved snapshot does not verify: %v", err)
	}

	// No member gives one: the error names each.
	down := engine.ConnectorFunc(func(context.Context, *inventory.Host) (remote.Host, error) { return nil, errors.New("down") })
	if _, err := upgradeSnapshot(context.Background(), down, cl, dir, v, ""); err == nil || !strings.Contains(err.Error(), "no member gave one") {
		t.Fatalf("err = %v", err)
	}
}

// install (and repair, which runs it) refuses artifacts of another release
// than the running cluster's, pointing at upgrade; the same release passes
// that check (and fails later: the hosts listen nowhere).
func TestInstallRefusesToChangeTheRelease(t *testing.T) {
	base := certsState(t, time.Now())
	inv := upgradeInv(t, "v1.37.2", upgradeArtifactsDir(t, "v1.37.2"))
	upgradeAPI(t, base, "v1.36.3", apiNode{"master1", "v1.36.3", false}, apiNode{"master2", "v1.37.2", false})
	for _, args := range [][]string{{"install", "-i", inv}, {"repair", "-i", inv}} {
		_, _, err := runCLI(t, append([]string{"--state-dir", base}, args...)...)
		if err == nil || !isBadInput(err) {
			t.Fatalf("%v: err %v, want bad input", args, err)
		}
		for _, w := range []string{"artifacts are Kubernetes v1.37.2 but the apiserver runs v1.36.3, node master1 runs v1.36.3;", "nothing was changed", "fix: kubewright upgrade -i " + inv + " --to v1.37.2", "back at v1.36.3 artifacts"} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: err %q\nlacks %q", args, err, w)
			}
		}
	}

	same := certsState(t, time.Now())
	upgradeAPI(t, same, "v1.37.2", apiNode{"master1", "v1.37.2", false}, apiNode{"master2", "v1.37.2", false})
	_, _, err := runCLI(t, "--state-dir", same, "install", "-i", inv)
	if err == nil || strings.Contains(err.Error(), "kubewright upgrade") {
		t.Fatalf("same release: err %v, want install to go on (and fail on the hosts)", err)
	}
}
