package addons

import (
	_ "embed"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

//go:embed coredns/coredns.yaml.sed
var corednsManifest []byte

// The coredns/deployment template pins CoreDNS 1.9.4; the artifacts'
// "coredns" image replaces it.
var corednsImages = []imageSpec{
	{"coredns", "coredns/coredns:1.9.4", "docker.io/coredns/coredns:1.9.4"},
}

// Values of the template's variables that kubewright does not vary; they are
// deploy.sh's defaults.
const (
	// reverseZones are answered by the kubernetes plugin for pod and
	// service IPs and fall through to the upstreams for everything else.
	reverseZones = "in-addr.arpa ip6.arpa"
	// resolvConf forwards to the resolvers of the node CoreDNS runs on
	// (dnsPolicy: Default gives the pod the node's resolv.conf).
	resolvConf = "/etc/resolv.conf"
)

// corednsVars are the placeholders of coredns.yaml.sed, all of which must be
// gone after rendering.
var corednsVars = []string{"CLUSTER_DNS_IP", "CLUSTER_DOMAIN", "REVERSE_CIDRS", "UPSTREAMNAMESERVER", "STUBDOMAINS", "FEDERATIONS"}

func renderCoreDNS(p Params) ([]*unstructured.Unstructured, error) {
	objs, err := decodeManifest("coredns/coredns.yaml.sed", corednsManifest)
	if err != nil {
		return nil, err
	}
	dnsIP, err := DNSServiceIP(p.ServiceCIDR)
	if err != nil {
		return nil, err
	}
	cm, err := find(CoreDNS, objs, "ConfigMap", "coredns")
	if err != nil {
		return nil, err
	}
	data, err := configMapData(CoreDNS, cm)
	if err != nil {
		return nil, err
	}
	// The Corefile is text to Kubernetes too: its variables are filled as
	// deploy.sh does, but from validated values only (a domain name, IPs).
	corefile, _ := data["Corefile"].(string)
	corefile = strings.NewReplacer(
		"CLUSTER_DOMAIN", p.ClusterDomain,
		"REVERSE_CIDRS", reverseZones,
		"UPSTREAMNAMESERVER", forwardTo(p.Upstreams),
		"STUBDOMAINS", "",
	).Replace(corefile)
	if !strings.HasSuffix(corefile, "\n") {
		corefile += "\n"
	}
	data["Corefile"] = corefile

	svc, err := find(CoreDNS, objs, "Service", "kube-dns")
	if err != nil {
		return nil, err
	}
	if err := unstructured.SetNestedField(svc.Object, dnsIP, "spec", "clusterIP"); err != nil {
		return nil, err
	}

	dep, err := find(CoreDNS, objs, "Deployment", "coredns")
	if err != nil {
		return nil, err
	}
	if err := unstructured.SetNestedField(dep.Object, int64(p.DNSReplicas), "spec", "replicas"); err != nil {
		return nil, err
	}
	if err := preferSpread(CoreDNS, dep); err != nil {
		return nil, err
	}
	if err := tolerateControlPlane(CoreDNS, dep); err != nil {
		return nil, err
	}
	if err := setImages(CoreDNS, objs, corednsImages, p); err != nil {
		return nil, err
	}
	if err := checkResolved(CoreDNS, objs, corednsVars); err != nil {
		return nil, err
	}
	return objs, nil
}

// forwardTo is the argument list of CoreDNS' forward plugin.
func forwardTo(upstreams []string) string {
	if len(upstreams) == 0 {
		return resolvConf
	}
	out := make([]string, 0, len(upstreams))
	for _, u := range upstreams {
		n, err := upstream(u)
		if err != nil { // validated by Render; keep the value rather than drop a resolver
			n = u
		}
		out = append(out, n)
	}
	return strings.Join(out, " ")
}

// controlPlaneTaint is the taint kubewright puts on masters.
var controlPlaneTaint = map[string]any{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"}

// tolerateControlPlane lets cluster DNS run on masters, as kubeadm's CoreDNS
// does: a cluster of masters only (or one whose workers are all down) still
// resolves names.
func tolerateControlPlane(addon string, dep *unstructured.Unstructured) error {
	ps, err := podSpec(addon, dep)
	if err != nil {
		return err
	}
	tol, _ := ps["tolerations"].([]any)
	ps["tolerations"] = append(tol, controlPlaneTaint)
	return nil
}

// preferSpread turns upstream's required pod anti-affinity into a preferred
// one with the same selector and topology: required leaves the second replica
// Pending on a one-node cluster, and blocks a rolling update when every node
// already runs a replica; preferred still spreads them across nodes.
func preferSpread(addon string, dep *unstructured.Unstructured) error {
	ps, err := podSpec(addon, dep)
	if err != nil {
		return err
	}
	aff, _ := ps["affinity"].(map[string]any)
	anti, _ := aff["podAntiAffinity"].(map[string]any)
	req, _ := anti["requiredDuringSchedulingIgnoredDuringExecution"].([]any)
	if len(req) != 1 {
		return manifestError(addon, "Deployment %s has no single required pod anti-affinity term", dep.GetName())
	}
	term, _ := req[0].(map[string]any)
	if term["topologyKey"] != "kubernetes.io/hostname" {
		return manifestError(addon, "Deployment %s anti-affinity is not per node", dep.GetName())
	}
	ps["affinity"] = map[string]any{"podAntiAffinity": map[string]any{
		"preferredDuringSchedulingIgnoredDuringExecution": []any{
			map[string]any{"weight": int64(100), "podAffinityTerm": term},
		},
	}}
	return nil
}
