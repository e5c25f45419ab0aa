package main

import (
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubewright/kubewright/installer/kube"
	"github.com/kubewright/kubewright/installer/pki"
	"github.com/kubewright/kubewright/installer/steps"
)

// statusAPI serves GET /api/v1/nodes with nodes and points the state
// directory's admin kubeconfig at it.
func statusAPI(t *testing.T, base string, nodes []corev1.Node) {
	t.Helper()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/nodes" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(&corev1.NodeList{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "NodeList"}, Items: nodes})
	}))
	t.Cleanup(srv.Close)
	pointAdminAt(t, base, srv)
}

// pointAdminAt writes the certtest cluster's admin kubeconfig in base so
// that it trusts and talks to srv.
func pointAdminAt(t *testing.T, base string, srv *httptest.Server) {
	t.Helper()
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	kc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: %q, certificate-authority-data: %s}}]
users: [{name: u, user: {token: test}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`, srv.URL, base64.StdEncoding.EncodeToString(ca))
	admin := pki.NewStore(steps.PKIDir(filepath.Join(base, "clusters", "certtest")), nil).AdminKubeconfigPath()
	if err := os.WriteFile(admin, []byte(kc), 0o600); err != nil {
		t.Fatal(err)
	}
}

func statusNode(name string, kubelet corev1.ConditionStatus, heartbeat time.Time) corev1.Node {
	n := corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{kube.LabelControlPlane: ""}}}
	n.Status.Conditions = []corev1.NodeCondition{{Type: "kubewright.io/KubeletProblem", Status: kubelet, Reason: "KubeletDown", Message: "refused", LastHeartbeatTime: metav1.NewTime(heartbeat)}}
	return n
}

func TestStatus(t *testing.T) {
	now := time.Now()
	t.Run("healthy", func(t *testing.T) {
		base := certsState(t, now)
		statusAPI(t, base, []corev1.Node{statusNode("master1", corev1.ConditionFalse, now), statusNode("master2", corev1.ConditionFalse, now)})
		out, _, err := runCLI(t, "status", "-i", certsInv, "--state-dir", base)
		if err != nil {
			t.Fatalf("status: %v\n%s", err, out)
		}
		want := "NODE     ROLE    AGENT  KUBELET  REPAIRS\nmaster1  master  ok     OK       -\nmaster2  master  ok     OK       -\n"
		if out != want {
			t.Fatalf("status:\n%s\nwant:\n%s", out, want)
		}
	})
	t.Run("a problem and a stale agent exit 1", func(t *testing.T) {
		base := certsState(t, now)
		statusAPI(t, base, []corev1.Node{statusNode("master1", corev1.ConditionTrue, now), statusNode("master2", corev1.ConditionFalse, now.Add(-10*time.Minute))})
		out, _, err := runCLI(t, "status", "-i", certsInv, "--state-dir", base)
		if code := exitCodeQuiet(err); code != exitFailed {
			t.Fatalf("exit %d, want %d: %v", code, exitFailed, err)
		}
		if err.Error() != "2 of 2 nodes not healthy: master1, master2" {
			t.Errorf("err = %v", err)
		}
		for _, w := range []string{"master1  master  ok", "Problem", "master2  master  stale (10m", "master1: KUBELET Problem: KubeletDown: refused"} {
			if !strings.Contains(out, w) {
				t.Errorf("output lacks %q:\n%s", w, out)
			}
		}
		js, _, err := runCLI(t, "status", "-i", certsInv, "--state-dir", base, "-o", "json")
		var rep kube.AgentStatusReport
		if exitCodeQuiet(err) != exitFailed || json.Unmarshal([]byte(js), &rep) != nil || !rep.Failed || len(rep.Nodes) != 2 {
			t.Fatalf("-o json: %v\n%s", err, js)
		}
	})
	t.Run("an inventory host that is not a node", func(t *testing.T) {
		base := certsState(t, now)
		statusAPI(t, base, []corev1.Node{statusNode("master1", corev1.ConditionFalse, now)})
		out, _, err := runCLI(t, "status", "-i", certsInv, "--state-dir", base)
		if exitCodeQuiet(err) != exitFailed || !strings.Contains(out, "master2  -       no-node") {
			t.Fatalf("err %v\n%s", err, out)
		}
	})
}

func TestStatusBadInput(t *testing.T) {
	state := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"status", "-i", certsInv, "-o", "xml"}, `"xml"`},
		{[]string{"status", "-i", certsInv, "--timeout", "0s"}, "--timeout must be positive"},
		{[]string{"status", "-i", certsInv}, "run kubewright install -i testdata/certs-inventory.yaml first"},
	} {
		t.Run(strings.Join(tc.args[3:], " "), func(t *testing.T) {
			_, _, err := runCLI(t, append(tc.args, "--state-dir", state)...)
			if !isBadInput(err) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want bad input containing %q", err, tc.want)
			}
		})
	}
}

// --agent-binary is install's, and only for playbooks that install the agent.
func TestInstallAgentBinaryFlag(t *testing.T) {
	pb := filepath.Join(t.TempDir(), "noagent.yaml")
	if err := os.WriteFile(pb, []byte("name: noagent\nplays:\n  - {hosts: all, steps: [preflight]}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	_, _, err := runCLI(t, "install", "-i", certsInv, "--state-dir", state, "--playbook", pb, "--agent-binary", "/x/kubewright-agent")
	if !isBadInput(err) || !strings.Contains(err.Error(), "--agent-binary /x/kubewright-agent: playbook noagent has no agent step") {
		t.Fatalf("err = %v", err)
	}
	if entries, _ := os.ReadDir(state); len(entries) != 0 {
		t.Errorf("a refused flag still wrote to the state directory: %v", entries)
	}
	help, _, err := runCLI(t, "install", "--help")
	if err != nil || !strings.Contains(help, "--agent-binary PATH") {
		t.Fatalf("install --help lacks --agent-binary PATH (%v):\n%s", err, help)
	}
}
