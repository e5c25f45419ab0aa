package checks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/kubewright/kubewright/agent"
)

// ContainerdName is the containerd check's name.
const ContainerdName = "containerd"

const (
	// ReasonContainerdUnreachable: the CRI socket is missing, or crictl
	// could not get an answer through it.
	ReasonContainerdUnreachable = "ContainerdUnreachable"
	// ReasonRuntimeNotReady: containerd answers but reports RuntimeReady
	// false, so the kubelet cannot start containers.
	ReasonRuntimeNotReady = "RuntimeNotReady"
	// ReasonCrictlMissing: crictl is not installed, so the check cannot look.
	ReasonCrictlMissing = "CrictlMissing"
	// ReasonCRIAnswerUnreadable: crictl answered with something that is not
	// the expected status JSON.
	ReasonCRIAnswerUnreadable = "CRIAnswerUnreadable"
)

// DefaultContainerdSocket is containerd's CRI socket.
const DefaultContainerdSocket = "/run/containerd/containerd.sock"

// Containerd asks containerd's CRI service for its status through crictl,
// the same API the kubelet uses, so "containerd is running" means the
// kubelet can use it. A process that is up but wedged shows here.
type Containerd struct {
	// Socket is the CRI socket path; DefaultContainerdSocket when empty.
	Socket string
	// Crictl is the crictl binary, looked up in PATH; "crictl" when empty.
	Crictl string
	// Runner runs crictl; Exec when nil. With a custom Runner, Crictl is
	// passed to it as is, without a PATH lookup.
	Runner Runner
	// Timeout bounds crictl (default 3s, ending before the check's context).
	Timeout time.Duration
}

func (c Containerd) Name() string { return ContainerdName }

// criInfo is the part of `crictl info` the check reads.
type criInfo struct {
	Status struct {
		Conditions []struct {
			Type    string          `json:"type"`
			Status  json.RawMessage `json:"status"`
			Reason  string          `json:"reason"`
			Message string          `json:"message"`
		} `json:"conditions"`
	} `json:"status"`
}

func (c Containerd) Run(ctx context.Context) agent.Result {
	sock := c.Socket
	if sock == "" {
		sock = DefaultContainerdSocket
	}
	sock = strings.TrimPrefix(sock, "unix://")
	endpoint := "unix://" + sock
	what := "containerd CRI at " + endpoint

	// A missing socket is the cheapest and clearest finding: containerd is
	// not running (or not serving CRI), whatever crictl would say.
	st, err := os.Stat(sock)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return problemf(ReasonContainerdUnreachable, "%s: socket %s does not exist", what, sock)
	case err != nil:
		return unknownf(ReasonContainerdUnreachable, "%s: cannot stat socket: %v", what, err)
	case st.Mode()&os.ModeSocket == 0:
		return problemf(ReasonContainerdUnreachable, "%s: %s exists but is not a socket", what, sock)
	}

	crictl := c.Crictl
	if crictl == "" {
		crictl = "crictl"
	}
	run := c.Runner
	if run == nil {
		path, err := exec.LookPath(crictl)
		if err != nil {
			return unknownf(ReasonCrictlMissing, "%s: cannot run %s to ask it: %v", what, crictl, err)
		}
		crictl, run = path, Exec
	}

	pctx, cancel, timeout := probeContext(ctx, c.Timeout)
	defer cancel()
	// crictl's own timeout is the connection's; the context bounds the rest.
	secs := int(math.Ceil(timeout.Seconds()))
	out, err := run(pctx, crictl, "--runtime-endpoint", endpoint, "--timeout", fmt.Sprintf("%ds", secs), "info")
	if ctx.Err() != nil {
		return canceled(ctx, what)
	}
	if err != nil {
		return problemf(ReasonContainerdUnreachable, "%s: crictl info failed: %s", what, describe(err, timeout))
	}
	var info criInfo
	if err := json.Unmarshal(out, &info); err != nil {
		return unknownf(ReasonCRIAnswerUnreadable, "%s: crictl info output is not JSON: %v", what, err)
	}
	runtimeSeen := false
	var network string
	for _, cond := range info.Status.Conditions {
		ready := condTrue(cond.Status)
		detail := strings.Trim(strings.TrimSpace(cond.Reason+": "+cond.Message), ": ")
		switch cond.Type {
		case "RuntimeReady":
			runtimeSeen = true
			if !ready {
				if detail == "" {
					detail = "no reason given"
				}
				return problemf(ReasonRuntimeNotReady, "%s: RuntimeReady is false (%s)", what, detail)
			}
		case "NetworkReady":
			if !ready {
				network = "; NetworkReady is false"
				if detail != "" {
					network += " (" + detail + ")"
				}
			}
		}
	}
	if !runtimeSeen {
		return unknownf(ReasonCRIAnswerUnreadable, "%s: crictl info reports no RuntimeReady condition", what)
	}
	// NetworkReady false (no CNI yet, or a broken CNI) is noted but is not
	// containerd's problem: restarting containerd would not fix it, and the
	// kubelet reports it on the node already.
	return okf("%s: RuntimeReady%s", what, network)
}

// condTrue accepts a CRI condition status written as a JSON bool (crictl)
// or as the string "true".
func condTrue(raw json.RawMessage) bool {
	var b bool
	if json.Unmarshal(raw, &b) == nil {
		return b
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return strings.EqualFold(s, "true")
	}
	return false
}
