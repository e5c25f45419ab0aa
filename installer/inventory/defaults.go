package inventory

import "net/netip"

// Defaults live here and only here; docs/inventory.md documents each one and
// must change together with this file.
const (
	DefaultUser    = "root"
	DefaultSSHPort = 22

	DefaultKubernetesVersion = "v1.37.2"
	DefaultProxyMode         = "iptables"
	// DefaultAPIServerPort is the upstream apiserver port; kept so that
	// kubelets, preflight checks and operators' habits keep working when they
	// talk to one master directly.
	DefaultAPIServerPort = 6443

	// DefaultEndpointPort is haproxy's port on every master and therefore the
	// port behind the VIP. It differs from the apiserver port because haproxy
	// and kube-apiserver run side by side on the same masters.
	DefaultEndpointPort = 8443
	DefaultInterface    = "eth0"
	DefaultRouterID     = 51
	DefaultVIPPrefixV4  = 24
	DefaultVIPPrefixV6  = 64

	DefaultPlugin      = "calico"
	DefaultPodCIDR     = "10.244.0.0/16"
	DefaultServiceCIDR = "10.96.0.0/12"
	// DefaultMTU fits a VXLAN or IP-in-IP overlay on a 1500-byte underlay
	// (VXLAN adds 50 bytes, IP-in-IP 20).
	DefaultMTU = 1450
	// DefaultWeaveMTU is Weave Net's own default, which leaves room for its
	// encrypted sleeve fallback.
	DefaultWeaveMTU = 1376
	// DefaultEncapsulation is used by calico and flannel; vxlan works on
	// networks that drop IP protocol 4 (IP-in-IP), e.g. most clouds.
	DefaultEncapsulation = "vxlan"

	DefaultDNSProvider   = "coredns"
	DefaultClusterDomain = "cluster.local"

	// StorageNone is spec.addons.storage.provider's default: no storage
	// add-on. DefaultStorageProvider is what a legacy `storage: {enabled:
	// true}` without a provider chooses.
	StorageNone            = "none"
	DefaultStorageProvider = "longhorn"
	DefaultStorageReplicas = 3
	// LonghornDiskLabel marks the nodes Longhorn creates its default disk
	// on (with its create-default-disk-labeled-nodes setting); the
	// defaults put it on longhorn's storage nodes.
	LonghornDiskLabel = "node.longhorn.io/create-default-disk"
	// The StorageClass each storage add-on creates (and marks default).
	StorageClassLonghorn = "longhorn"
	StorageClassRookCeph = "rook-ceph-block"

	DefaultPrometheusRetention   = "15d"
	DefaultPrometheusStorageSize = "50Gi"
	DefaultCPUThresholdPercent   = 90
	DefaultCPUThresholdMinutes   = 10

	DefaultLogRetentionDays = 7
	DefaultESReplicas       = 1
	DefaultESHeap           = "1g"
	DefaultESStorageSize    = "30Gi"

	DefaultIngressMode   = "hostNetwork"
	DefaultHTTPNodePort  = 30080
	DefaultHTTPSNodePort = 30443

	DefaultArtifactsSource = "dir"
	// DefaultArtifactsPath is shared by all clusters of one operator; "~" is
	// expanded by the artifacts package at use time, so `inventory show`
	// prints the same result on every machine.
	DefaultArtifactsPath = "~/.kubewright/artifacts"

	DefaultAgentEnabled       = true
	DefaultAgentCheckInterval = "30s"
	DefaultRepairBudget       = 1
)

// applyDefaults fills every unset field. It runs after host ranges and group
// members are expanded (storage replicas depend on the number of workers) and
// before validation, so defaulted values are validated too (a default pod CIDR
// that overlaps the hosts' network is still an error).
func applyDefaults(c *Cluster) {
	s := &c.Spec

	hd := &s.HostDefaults
	setString(&hd.User, DefaultUser)
	setInt(&hd.Port, DefaultSSHPort)

	// hostDefaults.bastion is not applied to hosts that are bastions
	// themselves: a jump host cannot be reached through itself.
	bastions := map[string]bool{}
	if hd.Bastion != "" {
		bastions[hd.Bastion] = true
	}
	for i := range s.Hosts {
		if b := s.Hosts[i].Bastion; b != "" {
			bastions[b] = true
		}
	}
	for i := range s.Hosts {
		h := &s.Hosts[i]
		setString(&h.User, hd.User)
		setInt(&h.Port, hd.Port)
		setString(&h.KeyFile, hd.KeyFile)
		if hd.UseAgent {
			h.UseAgent = true
		}
		setString(&h.PasswordEnv, hd.PasswordEnv)
		setString(&h.SudoPasswordEnv, hd.SudoPasswordEnv)
		if h.Bastion == "" && !bastions[h.Name] {
			h.Bastion = hd.Bastion
		}
		// A DNS name is fine for SSH but components need an IP; validation
		// asks for internalAddress in that case.
		if h.InternalAddress == "" {
			if _, err := netip.ParseAddr(h.Address); err == nil {
				h.InternalAddress = h.Address
			}
		}
	}

	if s.Groups == nil {
		s.Groups = map[string][]string{}
	}
	if _, ok := s.Groups[GroupEtcd]; !ok {
		if m, ok := s.Groups[GroupMasters]; ok {
			s.Groups[GroupEtcd] = append([]string(nil), m...)
		}
	}
	if _, ok := s.Groups[GroupWorkers]; !ok {
		s.Groups[GroupWorkers] = []string{}
	}

	k := &s.Kubernetes
	setString(&k.Version, DefaultKubernetesVersion)
	setString(&k.ClusterName, c.Metadata.Name)
	setString(&k.ProxyMode, DefaultProxyMode)
	setInt(&k.APIServerPort, DefaultAPIServerPort)

	ep := &s.ControlPlaneEndpoint
	if ep.VIPPrefix == 0 {
		if a, err := netip.ParseAddr(ep.VIP); err == nil && a.Is6() && !a.Is4In6() {
			ep.VIPPrefix = DefaultVIPPrefixV6
		} else {
			ep.VIPPrefix = DefaultVIPPrefixV4
		}
	}
	setInt(&ep.Port, DefaultEndpointPort)
	setString(&ep.Interface, DefaultInterface)
	setInt(&ep.RouterID, DefaultRouterID)

	n := &s.Network
	setString(&n.Plugin, DefaultPlugin)
	setString(&n.PodCIDR, DefaultPodCIDR)
	setString(&n.ServiceCIDR, DefaultServiceCIDR)
	if n.Plugin == "weave" {
		setInt(&n.MTU, DefaultWeaveMTU)
	} else {
		setInt(&n.MTU, DefaultMTU)
	}
	if n.Plugin == "calico" || n.Plugin == "flannel" {
		setString(&n.Encapsulation, DefaultEncapsulation)
	}

	setString(&s.DNS.Provider, DefaultDNSProvider)
	setString(&s.DNS.ClusterDomain, DefaultClusterDomain)

	applyAddonDefaults(c)

	setString(&s.Artifacts.Source, DefaultArtifactsSource)
	if s.Artifacts.Source == "dir" {
		setString(&s.Artifacts.Path, DefaultArtifactsPath)
	}

	if s.Agent.Enabled == nil {
		v := DefaultAgentEnabled
		s.Agent.Enabled = &v
	}
	setString(&s.Agent.CheckInterval, DefaultAgentCheckInterval)
	setInt(&s.Agent.RepairBudget, DefaultRepairBudget)
}

// migrateLegacyAddons copies the spec.storage, spec.logging and
// spec.monitoring sections of earlier releases into spec.addons. Validation
// reports a section written both ways, names the legacy fields in its
// messages (addonPath) and then clears the legacy sections.
func migrateLegacyAddons(s *Spec) {
	if l := s.LegacyStorage; l != nil {
		st := &s.Addons.Storage
		if l.Enabled {
			st.Provider = l.Provider
			if st.Provider == "" {
				st.Provider = DefaultStorageProvider
			}
		} else {
			st.Provider = StorageNone
		}
		st.Replicas = l.Replicas
	}
	if l := s.LegacyLogging; l != nil {
		lg := &s.Addons.Logging
		lg.Enabled = l.Enabled
		lg.RetentionDays = l.RetentionDays
		lg.HostLogDirs = l.HostLogPaths
	}
	if l := s.LegacyMonitoring; l != nil {
		m := &s.Addons.Monitoring
		m.Enabled = l.Enabled
		m.Receivers.WebhookURL = l.AlertWebhookURL
		if l.AlertEmail != "" {
			m.Receivers.SMTP = &SMTP{To: []string{l.AlertEmail}}
		}
	}
}

// applyAddonDefaults fills the settings of the add-ons that are on; an add-on
// that is off keeps only what the file says, so `inventory show` stays short.
func applyAddonDefaults(c *Cluster) {
	migrateLegacyAddons(&c.Spec)
	a := &c.Spec.Addons
	st := &a.Storage
	setString(&st.Provider, StorageNone)
	if st.Provider != StorageNone {
		if st.Provider == "longhorn" {
			setString(&st.Nodes, defaultNodeSelector(c))
		}
		if st.Replicas == 0 {
			st.Replicas = min(DefaultStorageReplicas, max(1, len(c.StorageNodes())))
		}
		if st.Provider == "longhorn" {
			for _, h := range c.StorageNodes() {
				if _, set := h.Labels[LonghornDiskLabel]; !set {
					if h.Labels == nil {
						h.Labels = map[string]string{}
					}
					h.Labels[LonghornDiskLabel] = "true"
				}
			}
		}
	}
	class := map[string]string{"longhorn": StorageClassLonghorn, "rook-ceph": StorageClassRookCeph}[st.Provider]

	if m := &a.Monitoring; m.Enabled {
		setString(&m.Retention, DefaultPrometheusRetention)
		setString(&m.StorageSize, DefaultPrometheusStorageSize)
		setString(&m.StorageClass, class)
		setInt(&m.CPUThreshold.Percent, DefaultCPUThresholdPercent)
		setInt(&m.CPUThreshold.ForMinutes, DefaultCPUThresholdMinutes)
		if sm := m.Receivers.SMTP; sm != nil && sm.RequireTLS == nil {
			v := true
			sm.RequireTLS = &v
		}
	}
	if l := &a.Logging; l.Enabled {
		setInt(&l.RetentionDays, DefaultLogRetentionDays)
		setString(&l.StorageClass, class)
		setInt(&l.Elasticsearch.Replicas, DefaultESReplicas)
		setString(&l.Elasticsearch.Heap, DefaultESHeap)
		setString(&l.Elasticsearch.StorageSize, DefaultESStorageSize)
	}
	if in := &a.Ingress; in.Enabled {
		setString(&in.Mode, DefaultIngressMode)
		setString(&in.Nodes, defaultNodeSelector(c))
		if in.Mode == "nodePort" {
			setInt(&in.HTTPNodePort, DefaultHTTPNodePort)
			setInt(&in.HTTPSNodePort, DefaultHTTPSNodePort)
		}
	}
}

// defaultNodeSelector is where add-ons that pick nodes go by default: the
// workers, or the masters of a cluster without workers.
func defaultNodeSelector(c *Cluster) string {
	if len(c.Spec.Groups[GroupWorkers]) > 0 {
		return GroupWorkers
	}
	return GroupMasters
}

// StorageNodes are the hosts the storage add-on keeps volume replicas on:
// longhorn's spec.addons.storage.nodes, or the hosts rook-ceph has OSD disks
// on, in inventory order. None without a storage add-on (or with an
// unusable selector, which validation reports).
func (c *Cluster) StorageNodes() []*Host {
	st := c.Spec.Addons.Storage
	switch st.Provider {
	case "longhorn":
		if st.Nodes == "" {
			return nil
		}
		hs, err := c.Select(st.Nodes)
		if err != nil {
			return nil
		}
		return hs
	case "rook-ceph":
		var out []*Host
		for i := range c.Spec.Hosts {
			h := &c.Spec.Hosts[i]
			if len(st.OSDDisks[h.Name]) > 0 && c.isMember(h.Name) {
				out = append(out, h)
			}
		}
		return out
	}
	return nil
}

// IngressNodes are the edge nodes ingress-nginx runs on (none when ingress
// is off or its selector is unusable).
func (c *Cluster) IngressNodes() []*Host {
	in := c.Spec.Addons.Ingress
	if !in.Enabled || in.Nodes == "" {
		return nil
	}
	hs, err := c.Select(in.Nodes)
	if err != nil {
		return nil
	}
	return hs
}

func setString(p *string, def string) {
	if *p == "" {
		*p = def
	}
}

func setInt(p *int, def int) {
	if *p == 0 {
		*p = def
	}
}
