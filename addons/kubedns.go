package addons

import (
	_ "embed"
	"encoding/json"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

//go:embed kube-dns/kube-dns.yaml.in
var kubeDNSManifest []byte

var kubeDNSImages = []imageSpec{
	{"k8s-dns-kube-dns", "registry.k8s.io/dns/k8s-dns-kube-dns:1.23.1", "registry.k8s.io/dns/k8s-dns-kube-dns:1.23.1"},
	{"k8s-dns-dnsmasq-nanny", "registry.k8s.io/dns/k8s-dns-dnsmasq-nanny:1.23.1", "registry.k8s.io/dns/k8s-dns-dnsmasq-nanny:1.23.1"},
	{"k8s-dns-sidecar", "registry.k8s.io/dns/k8s-dns-sidecar:1.23.1", "registry.k8s.io/dns/k8s-dns-sidecar:1.23.1"},
}

const (
	// kubeDNSMemoryLimit is dns_memory_limit: the kubedns container's memory
	// limit, the value Kubernetes' own cluster scripts use (and CoreDNS's).
	kubeDNSMemoryLimit = "170Mi"
	// kubeDNSMaxUpstreams is kube-dns' limit on upstreamNameservers.
	kubeDNSMaxUpstreams = 3
)

// kubeDNSVars are the placeholders of kube-dns.yaml.in.
var kubeDNSVars = []string{"dns_domain", "dns_server", "dns_memory_limit"}

// renderKubeDNS is the legacy DNS option. It answers as the same kube-dns
// Service at the same address as CoreDNS would, so kubelets' clusterDNS does
// not depend on the provider.
func renderKubeDNS(p Params) ([]*unstructured.Unstructured, error) {
	objs, err := decodeManifest("kube-dns/kube-dns.yaml.in", kubeDNSManifest)
	if err != nil {
		return nil, err
	}
	dnsIP, err := DNSServiceIP(p.ServiceCIDR)
	if err != nil {
		return nil, err
	}
	svc, err := find(KubeDNS, objs, "Service", "kube-dns")
	if err != nil {
		return nil, err
	}
	if err := unstructured.SetNestedField(svc.Object, dnsIP, "spec", "clusterIP"); err != nil {
		return nil, err
	}

	dep, err := find(KubeDNS, objs, "Deployment", "kube-dns")
	if err != nil {
		return nil, err
	}
	if err := unstructured.SetNestedField(dep.Object, int64(p.DNSReplicas), "spec", "replicas"); err != nil {
		return nil, err
	}
	if err := tolerateControlPlane(KubeDNS, dep); err != nil {
		return nil, err
	}
	// The domain is embedded in flags (--domain=dns_domain.,
	// --server=/dns_domain/127.0.0.1#10053, the sidecar's probes), so the
	// flag is the smallest structured unit to edit.
	domain := strings.NewReplacer("dns_domain", p.ClusterDomain)
	for _, name := range []string{"kubedns", "dnsmasq", "sidecar"} {
		c, err := container(KubeDNS, dep, name)
		if err != nil {
			return nil, err
		}
		replaceInStrings(c, "args", domain)
	}
	kubedns, err := container(KubeDNS, dep, "kubedns")
	if err != nil {
		return nil, err
	}
	if err := unstructured.SetNestedField(kubedns, kubeDNSMemoryLimit, "resources", "limits", "memory"); err != nil {
		return nil, err
	}

	// kube-dns reads its upstreams from its ConfigMap; without any, dnsmasq
	// uses the node's resolv.conf (dnsPolicy: Default), like CoreDNS.
	if len(p.Upstreams) > 0 {
		cm, err := find(KubeDNS, objs, "ConfigMap", "kube-dns")
		if err != nil {
			return nil, err
		}
		ups := make([]string, 0, len(p.Upstreams))
		for _, u := range p.Upstreams {
			n, err := upstream(u)
			if err != nil {
				n = u
			}
			ups = append(ups, n)
		}
		js, err := json.Marshal(ups)
		if err != nil {
			return nil, err
		}
		cm.Object["data"] = map[string]any{"upstreamNameservers": string(js)}
	}
	if err := setImages(KubeDNS, objs, kubeDNSImages, p); err != nil {
		return nil, err
	}
	if err := checkResolved(KubeDNS, objs, kubeDNSVars); err != nil {
		return nil, err
	}
	return objs, nil
}
