package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// What the agent publishes on its Node, as `kubewright status` reads it.
// AgentConditionPrefix must equal agent.ConditionPrefix (a test holds them
// together); installer/kube does not import the agent.
const (
	AgentConditionPrefix = "kubewright.io/"
	// AgentStaleAfter is how old the newest heartbeat of a node's agent
	// conditions may be before the agent counts as not reporting: the agent
	// refreshes them every 30s, so this is four missed heartbeats.
	AgentStaleAfter = 2 * time.Minute
)

// Agent states in the AGENT column.
const (
	AgentOK      = "ok"
	AgentStale   = "stale"
	AgentMissing = "missing" // a Node without any agent condition
	AgentNoNode  = "no-node" // an inventory host not registered as a Node
)

// Condition states, from NodeCondition.Status: True means the problem is
// present (the kubelet's MemoryPressure convention).
const (
	ConditionOK      = "OK"
	ConditionProblem = "Problem"
	ConditionUnknown = "Unknown"
)

// AgentCondition is one agent condition of one node.
type AgentCondition struct {
	Status        string    `json:"status"` // OK | Problem | Unknown
	Reason        string    `json:"reason,omitempty"`
	Message       string    `json:"message,omitempty"`
	LastHeartbeat time.Time `json:"lastHeartbeat"`
}

// NodeAgentStatus is one row of `kubewright status`.
type NodeAgentStatus struct {
	Node  string `json:"node"`
	Role  string `json:"role"`  // master | worker | "" (not a node)
	Agent string `json:"agent"` // ok | stale | missing | no-node
	// LastHeartbeat is the newest heartbeat of the node's agent conditions.
	LastHeartbeat *time.Time `json:"lastHeartbeat,omitempty"`
	// Conditions by full type (kubewright.io/KubeletProblem).
	Conditions map[string]AgentCondition `json:"conditions"`
	LastRepair string                    `json:"lastRepair,omitempty"`
}

// AgentStatusReport is the cluster's agent status at one instant.
type AgentStatusReport struct {
	Time time.Time `json:"time"`
	// Types are every agent condition type found on any node, sorted: one
	// column each.
	Types  []string          `json:"types"`
	Nodes  []NodeAgentStatus `json:"nodes"`
	Failed bool              `json:"failed"`
}

// AgentStatus lists the Nodes and builds the report. expected are the
// inventory's host names: one that is not a Node gets a no-node row.
func AgentStatus(ctx context.Context, cs kubernetes.Interface, expected []string, now time.Time) (*AgentStatusReport, error) {
	list, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	r := NewAgentStatusReport(list.Items, expected, now)
	// The last repair comes from the agents' Events on their Nodes. They
	// expire with the API's event TTL (1 h by default), so an old repair
	// shows "-"; a failed list leaves the column empty, not the command.
	evs, err := cs.CoreV1().Events(metav1.NamespaceDefault).List(ctx, metav1.ListOptions{FieldSelector: "source=kubewright-agent"})
	if err == nil {
		setLastRepairs(r, evs.Items, now)
	}
	return r, nil
}

// setLastRepairs fills each node's LastRepair from its newest repair
// outcome Event: "restart-kubelet RepairSucceeded 3m ago".
func setLastRepairs(r *AgentStatusReport, evs []corev1.Event, now time.Time) {
	newest := map[string]corev1.Event{}
	for _, e := range evs {
		if e.InvolvedObject.Kind != "Node" {
			continue
		}
		switch e.Reason {
		case "RepairSucceeded", "RepairFailed", "RepairExhausted":
		default:
			continue
		}
		if o, ok := newest[e.InvolvedObject.Name]; !ok || e.LastTimestamp.After(o.LastTimestamp.Time) {
			newest[e.InvolvedObject.Name] = e
		}
	}
	for i := range r.Nodes {
		if e, ok := newest[r.Nodes[i].Node]; ok {
			r.Nodes[i].LastRepair = fmt.Sprintf("%s %s %s ago", e.Action, e.Reason, now.Sub(e.LastTimestamp.Time).Round(time.Second))
		}
	}
}

// NewAgentStatusReport builds the report from Nodes (pure, for tests).
func NewAgentStatusReport(nodes []corev1.Node, expected []string, now time.Time) *AgentStatusReport {
	r := &AgentStatusReport{Time: now}
	types := map[string]bool{}
	seen := map[string]bool{}
	for _, n := range nodes {
		seen[n.Name] = true
		row := NodeAgentStatus{Node: n.Name, Role: nodeRole(&n), Conditions: map[string]AgentCondition{}}
		var newest time.Time
		for _, c := range n.Status.Conditions {
			t := string(c.Type)
			if !strings.HasPrefix(t, AgentConditionPrefix) {
				continue
			}
			types[t] = true
			row.Conditions[t] = AgentCondition{Status: conditionState(c.Status), Reason: c.Reason, Message: c.Message, LastHeartbeat: c.LastHeartbeatTime.UTC()}
			if hb := c.LastHeartbeatTime.Time; hb.After(newest) {
				newest = hb
			}
		}
		switch {
		case len(row.Conditions) == 0:
			row.Agent = AgentMissing
		case now.Sub(newest) > AgentStaleAfter:
			row.Agent = AgentStale
		default:
			row.Agent = AgentOK
		}
		if !newest.IsZero() {
			hb := newest.UTC()
			row.LastHeartbeat = &hb
		}
		r.Nodes = append(r.Nodes, row)
	}
	for _, name := range expected {
		if !seen[name] {
			r.Nodes = append(r.Nodes, NodeAgentStatus{Node: name, Agent: AgentNoNode, Conditions: map[string]AgentCondition{}})
		}
	}
	sort.Slice(r.Nodes, func(i, j int) bool { return r.Nodes[i].Node < r.Nodes[j].Node })
	for t := range types {
		r.Types = append(r.Types, t)
	}
	sort.Strings(r.Types)
	for _, n := range r.Nodes {
		if n.Agent != AgentOK {
			r.Failed = true
		}
		for _, c := range n.Conditions {
			if c.Status == ConditionProblem {
				r.Failed = true
			}
		}
	}
	return r
}

func nodeRole(n *corev1.Node) string {
	if _, ok := n.Labels[LabelControlPlane]; ok {
		return "master"
	}
	return "worker"
}

func conditionState(s corev1.ConditionStatus) string {
	switch s {
	case corev1.ConditionFalse:
		return ConditionOK
	case corev1.ConditionTrue:
		return ConditionProblem
	default:
		return ConditionUnknown
	}
}

// columnName turns kubewright.io/EtcdQuorumProblem into ETCD-QUORUM.
func columnName(t string) string {
	s := strings.TrimSuffix(strings.TrimPrefix(t, AgentConditionPrefix), "Problem")
	var b strings.Builder
	prev := rune(0)
	for _, r := range s {
		if unicode.IsUpper(r) && prev != 0 && unicode.IsLower(prev) {
			b.WriteByte('-')
		}
		b.WriteRune(unicode.ToUpper(r))
		prev = r
	}
	return b.String()
}

func (n NodeAgentStatus) agentCell(now time.Time) string {
	if n.Agent == AgentStale && n.LastHeartbeat != nil {
		return fmt.Sprintf("stale (%s ago)", now.Sub(*n.LastHeartbeat).Round(time.Second))
	}
	return n.Agent
}

// WriteTable prints one row per node and one column per condition type,
// then every condition that is not OK with its reason and message: the
// table says where to look, the list says what is wrong.
func (r *AgentStatusReport) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	head := []string{"NODE", "ROLE", "AGENT"}
	for _, t := range r.Types {
		head = append(head, columnName(t))
	}
	head = append(head, "REPAIRS")
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	for _, n := range r.Nodes {
		row := []string{n.Node, dash(n.Role), n.agentCell(r.Time)}
		for _, t := range r.Types {
			c, ok := n.Conditions[t]
			if !ok {
				row = append(row, "-")
				continue
			}
			row = append(row, c.Status)
		}
		row = append(row, dash(oneLine(n.LastRepair, 80)))
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var details []string
	for _, n := range r.Nodes {
		switch n.Agent {
		case AgentMissing:
			details = append(details, fmt.Sprintf("%s: no kubewright.io conditions: the agent has not reported (systemctl status kubewright-agent on %s)", n.Node, n.Node))
		case AgentStale:
			details = append(details, fmt.Sprintf("%s: agent not reporting for more than %s (systemctl status kubewright-agent on %s)", n.Node, AgentStaleAfter, n.Node))
		case AgentNoNode:
			details = append(details, fmt.Sprintf("%s: in the inventory but not a Node of the cluster", n.Node))
		}
		for _, t := range r.Types {
			if c, ok := n.Conditions[t]; ok && c.Status != ConditionOK {
				details = append(details, fmt.Sprintf("%s: %s %s: %s: %s", n.Node, columnName(t), c.Status, c.Reason, oneLine(c.Message, 300)))
			}
		}
	}
	if len(details) > 0 {
		if _, err := fmt.Fprintf(w, "\n%s\n", strings.Join(details, "\n")); err != nil {
			return err
		}
	}
	return nil
}

// WriteJSON prints the report as one JSON document.
func (r *AgentStatusReport) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > max {
		return s[:max-3] + "..."
	}
	return s
}
