package checks

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/kubewright/kubewright/agent"
)

// ClockName is the clock offset check's name.
const ClockName = "clock"

const (
	// ReasonClockSkew: this node's clock and a peer's differ by more than
	// MaxOffset. TLS, etcd leases and token expiry all go wrong with skew.
	ReasonClockSkew = "ClockSkew"
	// ReasonNoPeerTime: no peer answered, so there is nothing to compare
	// with.
	ReasonNoPeerTime = "NoPeerTime"
)

// DefaultMaxClockOffset matches agent.Config's maxClockOffset default.
const DefaultMaxClockOffset = 2 * time.Second

// Clock compares this node's clock with its peers' through the Date header
// of an HTTP answer, which every HTTP server sends (an apiserver's 401 will
// do). It needs no NTP access and no credentials. Date has one-second
// resolution, so a peer is reported only when the offset is certain: the
// peer's time lies in [Date, Date+1s) at some instant between sending the
// request and reading the answer, and only if that whole range is beyond
// MaxOffset is it skew. This node is reported only when it differs from most
// of the peers that answered: if most agree with it, the odd peer's clock is
// the wrong one, and that peer's own agent reports it.
type Clock struct {
	// Peers are "host:port" (asked over https) or full URLs.
	Peers []string
	// MaxOffset allowed; DefaultMaxClockOffset when 0.
	MaxOffset time.Duration
	// Now is time.Now when nil.
	Now func() time.Time
	// Client is used when set. The default skips TLS verification: it
	// sends nothing and reads only the Date header, so the worst a spoofed
	// peer can do is a false ClockSkew report, and it must work against
	// any peer endpoint whatever CA signed it.
	Client *http.Client
	// Timeout bounds each request; all run in parallel (default 3s, ending
	// before the check's context).
	Timeout time.Duration
}

func (c Clock) Name() string { return ClockName }

type peerTime struct {
	peer string
	// low and high bound the peer's offset from this clock.
	low, high time.Duration
	err       error
}

func (c Clock) Run(ctx context.Context) agent.Result {
	if len(c.Peers) == 0 {
		return unknownf(ReasonNoPeerTime, "clock: no peers configured to compare with")
	}
	maxOff := c.MaxOffset
	if maxOff == 0 {
		maxOff = DefaultMaxClockOffset
	}
	if maxOff < 0 {
		return unknownf(ReasonInvalidConfig, "clock: maximum offset %s is negative", maxOff)
	}
	urls := make([]string, len(c.Peers))
	for i, p := range c.Peers {
		urls[i] = peerURL(p)
		if err := validURL(urls[i]); err != nil {
			return unknownf(ReasonInvalidConfig, "clock: peer %q: %v", p, err)
		}
	}
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	client := c.Client
	if client == nil {
		client = newHTTPClient(&tls.Config{InsecureSkipVerify: true}) //nolint:gosec // only the Date header is read; see Client
	}
	pctx, cancel, timeout := probeContext(ctx, c.Timeout)
	defer cancel()

	res := make([]peerTime, len(urls))
	var wg sync.WaitGroup
	for i, u := range urls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i] = askTime(pctx, client, now, redact(c.Peers[i]), u)
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return canceled(ctx, "clock")
	}

	var skewed, fine, failed []string
	answered := 0
	sort.SliceStable(res, func(i, j int) bool { return absDur(mid(res[i])) > absDur(mid(res[j])) })
	for _, r := range res {
		if r.err != nil {
			failed = append(failed, fmt.Sprintf("%s: %s", r.peer, describe(r.err, timeout)))
			continue
		}
		answered++
		est := mid(r)
		switch {
		case r.low > maxOff:
			skewed = append(skewed, fmt.Sprintf("%s is about %s ahead", r.peer, round(est)))
		case r.high < -maxOff:
			skewed = append(skewed, fmt.Sprintf("%s is about %s behind", r.peer, round(-est)))
		default:
			fine = append(fine, r.peer)
		}
	}
	var note string
	if len(failed) > 0 {
		note = "; no answer from " + strings.Join(failed, "; ")
	}
	switch {
	case answered == 0:
		return unknownf(ReasonNoPeerTime, "clock: no peer answered to compare with (%s)", strings.Join(failed, "; "))
	case 2*len(skewed) > answered:
		return problemf(ReasonClockSkew, "clock: differs by more than %s from %d of %d answering peers: %s%s", maxOff, len(skewed), answered, strings.Join(skewed, ", "), note)
	case len(skewed) > 0:
		// Most peers agree with this node: the odd ones out have the wrong
		// clock, and their own agents report it.
		return okf("clock: within %s of %s; %s, so the skew is on their side%s", maxOff, strings.Join(fine, ", "), strings.Join(skewed, ", "), note)
	}
	return okf("clock: within %s of %s%s", maxOff, strings.Join(fine, ", "), note)
}

func mid(r peerTime) time.Duration { return r.low + (r.high-r.low)/2 }

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// askTime bounds the peer's clock offset from one request: the peer read
// its clock at some instant in [sent, received] by ours, and its time then
// was in [Date, Date+1s).
func askTime(ctx context.Context, client *http.Client, now func() time.Time, peer, url string) peerTime {
	sent := now()
	_, hdr, _, err := get(ctx, client, url)
	received := now()
	if err != nil {
		return peerTime{peer: peer, err: err}
	}
	date, err := http.ParseTime(hdr.Get("Date"))
	if err != nil {
		return peerTime{peer: peer, err: fmt.Errorf("answer has no usable Date header (%q)", hdr.Get("Date"))}
	}
	return peerTime{peer: peer, low: date.Sub(received), high: date.Add(time.Second).Sub(sent)}
}

// peerURL turns host:port into an https URL; a URL is kept as is.
func peerURL(p string) string {
	if strings.Contains(p, "://") {
		return p
	}
	return "https://" + p + "/"
}
