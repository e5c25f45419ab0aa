package checks

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kubewright/kubewright/agent"
)

// EtcdQuorumName is the etcd quorum check's name.
const EtcdQuorumName = "etcd-quorum"

const (
	// ReasonEtcdQuorumAtRisk: quorum holds, but not every member is healthy.
	ReasonEtcdQuorumAtRisk = "EtcdQuorumAtRisk"
	// ReasonEtcdQuorumLost: fewer than a majority of members are healthy;
	// the cluster cannot write.
	ReasonEtcdQuorumLost = "EtcdQuorumLost"
)

// EtcdQuorum counts the healthy members of the whole etcd cluster, as seen
// from this node. A lost member is worth knowing before the next one goes:
// the agents' own etcd repairs are held back (quorum guard) while quorum is
// at risk, and an operator should look. Because it is this node's view, a
// network partition around this node looks like unhealthy peers.
type EtcdQuorum struct {
	// Endpoints are every member's client URL (https://ADDR:2379).
	Endpoints []string
	// CACert, Cert and Key are as for Etcd (empty: the Default* paths).
	CACert, Cert, Key string
	// Client is used as is when set (and the files ignored).
	Client *http.Client
	// Timeout bounds each member's request, which run in parallel (default
	// 3s, ending before the check's context).
	Timeout time.Duration
}

func (q EtcdQuorum) Name() string { return EtcdQuorumName }

func (q EtcdQuorum) Run(ctx context.Context) agent.Result {
	n := len(q.Endpoints)
	if n == 0 {
		return unknownf(ReasonInvalidConfig, "etcd quorum: no member endpoints configured")
	}
	for _, ep := range q.Endpoints {
		if err := validURL(ep); err != nil {
			return unknownf(ReasonInvalidConfig, "etcd quorum: bad member endpoint: %v", err)
		}
	}
	client := q.Client
	if client == nil {
		var err error
		client, err = NewEtcdClient(q.CACert, q.Cert, q.Key)
		if err != nil {
			return unknownf(ReasonEtcdTLSUnreadable, "etcd quorum: %v", err)
		}
	}
	pctx, cancel, timeout := probeContext(ctx, q.Timeout)
	defer cancel()
	ok, details := memberStates(pctx, client, q.Endpoints, timeout)
	if ctx.Err() != nil {
		return canceled(ctx, "etcd quorum")
	}
	healthy := 0
	var bad []string
	for i := range ok {
		if ok[i] {
			healthy++
		} else {
			bad = append(bad, details[i])
		}
	}
	quorum := n/2 + 1
	switch {
	case healthy == n:
		return okf("etcd quorum: %d/%d members healthy", healthy, n)
	case healthy < quorum:
		return problemf(ReasonEtcdQuorumLost, "etcd quorum: %d/%d members healthy, quorum %d lost; unhealthy: %s", healthy, n, quorum, strings.Join(bad, "; "))
	}
	spare := healthy - quorum
	risk := "one more failure loses it"
	if spare > 0 {
		risk = "it survives " + plural(spare, "more failure")
	}
	return problemf(ReasonEtcdQuorumAtRisk, "etcd quorum: %d/%d members healthy, quorum %d holds, %s; unhealthy: %s", healthy, n, quorum, risk, strings.Join(bad, "; "))
}

// HealthyMembers asks every endpoint's /health in parallel and returns how
// many are healthy, with one detail per endpoint in the given order
// ("https://10.0.0.1:2379: healthy", "https://10.0.0.2:2379: connection
// refused"). ctx bounds every request, so give it a deadline. A nil client
// is a proxy-less client with the system roots (fine only for tests).
func HealthyMembers(ctx context.Context, client *http.Client, endpoints []string) (healthy int, details []string) {
	var timeout time.Duration
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl).Round(10 * time.Millisecond)
	}
	ok, details := memberStates(ctx, client, endpoints, timeout)
	for _, b := range ok {
		if b {
			healthy++
		}
	}
	return healthy, details
}

func memberStates(ctx context.Context, client *http.Client, endpoints []string, timeout time.Duration) (ok []bool, details []string) {
	if client == nil {
		client = newHTTPClient(nil)
	}
	ok = make([]bool, len(endpoints))
	details = make([]string, len(endpoints))
	var wg sync.WaitGroup
	for i, ep := range endpoints {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var d string
			ok[i], d = memberHealth(ctx, client, ep, timeout)
			details[i] = redact(ep) + ": " + d
		}()
	}
	wg.Wait()
	return ok, details
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.Itoa(n) + " " + word + "s"
}
