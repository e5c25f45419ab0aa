package checks

import (
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/kubewright/kubewright/agent"
)

// criSocket is a real unix socket standing in for containerd's.
func criSocket(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "containerd.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return path
}

// fakeCrictl checks that it is called as `crictl --runtime-endpoint
// unix://SOCK --timeout Ns info`, then runs body.
func fakeCrictl(t *testing.T, sock, body string) string {
	t.Helper()
	return script(t, "crictl", `
if [ "$1" != --runtime-endpoint ] || [ "$2" != "unix://`+sock+`" ] || [ "$3" != --timeout ] || [ "$5" != info ] || [ $# -ne 5 ]; then
	echo "unexpected arguments: $*" >&2; exit 99
fi
case "$4" in [0-9]*s) ;; *) echo "bad timeout $4" >&2; exit 99;; esac
`+body)
}

const criReady = `{"status":{"conditions":[
 {"type":"RuntimeReady","status":true,"reason":"","message":""},
 {"type":"NetworkReady","status":true,"reason":"","message":""}]},"config":{}}`

func TestContainerd(t *testing.T) {
	sock := criSocket(t)
	notSock := writeFile(t, filepath.Join(t.TempDir(), "plain"), []byte("x"))
	tests := []struct {
		name    string
		socket  string
		body    string // crictl script body; "" means no crictl (name not in PATH)
		timeout time.Duration
		status  agent.Status
		reason  string
		want    []string
	}{
		{"ready", sock, "cat <<'E'\n" + criReady + "\nE", 0, agent.OK, "OK", []string{"RuntimeReady", "unix://" + sock}},
		{"network not ready is not containerd's problem", sock, `echo '{"status":{"conditions":[{"type":"RuntimeReady","status":true},{"type":"NetworkReady","status":false,"reason":"NetworkPluginNotReady","message":"cni plugin not initialized"}]}}'`, 0,
			agent.OK, "OK", []string{"NetworkReady is false", "NetworkPluginNotReady"}},
		{"runtime not ready", sock, `echo '{"status":{"conditions":[{"type":"RuntimeReady","status":false,"reason":"DeadlineExceeded","message":"runtime stuck"}]}}'`, 0,
			agent.Problem, ReasonRuntimeNotReady, []string{"RuntimeReady is false", "runtime stuck"}},
		{"crictl fails", sock, `echo 'validate service connection: dial unix: connect: connection refused' >&2; exit 1`, 0,
			agent.Problem, ReasonContainerdUnreachable, []string{"crictl info failed", "connection refused"}},
		{"crictl hangs", sock, `exec sleep 5`, 300 * time.Millisecond,
			agent.Problem, ReasonContainerdUnreachable, []string{"no answer within 300ms"}},
		{"garbage", sock, `echo 'not json'`, 0, agent.Unknown, ReasonCRIAnswerUnreadable, nil},
		{"no RuntimeReady", sock, `echo '{"status":{"conditions":[]}}'`, 0, agent.Unknown, ReasonCRIAnswerUnreadable, nil},
		{"string status", sock, `echo '{"status":{"conditions":[{"type":"RuntimeReady","status":"true"}]}}'`, 0, agent.OK, "OK", nil},
		{"socket missing", filepath.Join(t.TempDir(), "none.sock"), "exit 0", 0, agent.Problem, ReasonContainerdUnreachable, []string{"does not exist"}},
		{"socket is a file", notSock, "exit 0", 0, agent.Problem, ReasonContainerdUnreachable, []string{"not a socket"}},
		{"crictl missing", sock, "", 0, agent.Unknown, ReasonCrictlMissing, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Containerd{Socket: tt.socket, Crictl: "kubewright-test-no-such-crictl", Timeout: tt.timeout}
			if tt.body != "" {
				c.Crictl = fakeCrictl(t, tt.socket, tt.body)
			}
			start := time.Now()
			r := c.Run(context.Background())
			expect(t, r, tt.status, tt.reason, tt.want...)
			if time.Since(start) > 2*time.Second {
				t.Fatalf("took %s", time.Since(start))
			}
		})
	}

	t.Run("unix:// prefix and injected runner", func(t *testing.T) {
		var got []string
		c := Containerd{Socket: "unix://" + sock, Runner: func(ctx context.Context, name string, args ...string) ([]byte, error) {
			got = append([]string{name}, args...)
			return []byte(criReady), nil
		}}
		expect(t, c.Run(context.Background()), agent.OK, "OK")
		want := []string{"crictl", "--runtime-endpoint", "unix://" + sock, "--timeout", "3s", "info"}
		if len(got) != len(want) {
			t.Fatalf("ran %q, want %q", got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("ran %q, want %q", got, want)
			}
		}
	})
}
