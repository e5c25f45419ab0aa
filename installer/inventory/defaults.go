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

	DefaultStorageProvider  = "longhorn"
	DefaultStorageReplicas  = 3
	DefaultLogRetentionDays = 7

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

	setString(&s.Storage.Provider, DefaultStorageProvider)
	if s.Storage.Replicas == 0 {
		// Never ask for more replicas than there are workers to hold them.
		s.Storage.Replicas = min(DefaultStorageReplicas, max(1, len(s.Groups[GroupWorkers])))
	}
	setInt(&s.Logging.RetentionDays, DefaultLogRetentionDays)

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
