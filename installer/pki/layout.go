package pki

import (
	"crypto/x509"
	"io/fs"
	"path"

	"github.com/kubewright/kubewright/installer/inventory"
)

// Remote locations are kubeadm's, so kubeadm-trained operators and tools find
// everything where they look for it.
const (
	RemoteConfigDir = "/etc/kubernetes"
	RemotePKIDir    = "/etc/kubernetes/pki"
)

// CA names accepted by (*Store).CA: the path of the CA below the PKI dir
// without extension, as kubeadm lays it out.
const (
	CACluster    = "ca"
	CAEtcd       = "etcd/ca"
	CAFrontProxy = "front-proxy-ca"
)

// Organizations and users with meaning to the apiserver's authorizer.
const (
	// ClusterAdminsGroup is bound to cluster-admin by a ClusterRoleBinding the
	// bootstrap step creates (kubeadm ≥ 1.29). Unlike system:masters it can be
	// revoked, so it is what admin.conf uses.
	ClusterAdminsGroup = "kubeadm:cluster-admins"
	// SystemMastersGroup bypasses RBAC entirely; only super-admin.conf, which
	// never leaves the state directory, carries it.
	SystemMastersGroup = "system:masters"
)

// Components that consume the files, named like their systemd units.
const (
	ComponentAPIServer         = "kube-apiserver"
	ComponentControllerManager = "kube-controller-manager"
	ComponentScheduler         = "kube-scheduler"
	ComponentEtcd              = "etcd"
)

// Modes: private keys (and kubeconfigs, which embed one) are owner-only.
const (
	modeDir    fs.FileMode = 0o700
	modeKey    fs.FileMode = 0o600
	modeCert   fs.FileMode = 0o644
	modeConfig fs.FileMode = 0o600
)

// restartRule says a component must restart when an item changes: on every
// member of a group, or (group "") on the item's own host.
type restartRule struct {
	component string
	group     string
}

type caDef struct {
	name    string // kubeadm name shown by check: ca, etcd-ca, front-proxy-ca
	rel     string // path below the store without extension
	cn      string
	restart []restartRule
}

var caDefs = []caDef{
	{name: "ca", rel: CACluster, cn: "kubernetes", restart: []restartRule{
		{ComponentAPIServer, inventory.GroupMasters}, {ComponentControllerManager, inventory.GroupMasters}}},
	{name: "etcd-ca", rel: CAEtcd, cn: "etcd-ca", restart: []restartRule{
		{ComponentEtcd, inventory.GroupEtcd}, {ComponentAPIServer, inventory.GroupMasters}}},
	{name: "front-proxy-ca", rel: CAFrontProxy, cn: "front-proxy-ca", restart: []restartRule{
		{ComponentAPIServer, inventory.GroupMasters}}},
}

const (
	saName   = "sa"
	saKeyRel = "sa.key"
	saPubRel = "sa.pub"
)

var saRestart = []restartRule{{ComponentAPIServer, inventory.GroupMasters}, {ComponentControllerManager, inventory.GroupMasters}}

// leafDef is one certificate or kubeconfig the store manages.
type leafDef struct {
	name       string // kubeadm name, accepted by Renew
	host       string // set for per-host items
	kubeconfig bool
	ca         string // CA rel
	rel        string // certs: path without extension; kubeconfigs: path of the .conf
	req        CertRequest
	server     string // kubeconfigs only
	restart    []restartRule
}

// path is the file reported for the item: the .crt or the .conf.
func (d leafDef) path() string {
	if d.kubeconfig {
		return d.rel
	}
	return d.rel + ".crt"
}

func hostDir(host string) string { return path.Join("hosts", host) }

var (
	serverAuth = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	clientAuth = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	bothAuth   = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
)

// RenewableNames lists the names Renew accepts, in kubeadm's words.
func RenewableNames() []string {
	return []string{
		"admin.conf", "apiserver", "apiserver-etcd-client", "apiserver-kubelet-client",
		"controller-manager.conf", "etcd-healthcheck-client", "etcd-peer", "etcd-server",
		"front-proxy-client", "scheduler.conf", "super-admin.conf",
	}
}

// leaves lists every leaf the spec needs, in a fixed order so reports are
// stable. The spec must be defaulted and valid.
func (s Spec) leaves() ([]leafDef, error) {
	api, err := s.apiServerAltNames()
	if err != nil {
		return nil, err
	}
	onMasters := func(cs ...string) []restartRule {
		var out []restartRule
		for _, c := range cs {
			out = append(out, restartRule{c, inventory.GroupMasters})
		}
		return out
	}
	out := []leafDef{
		{name: "apiserver", ca: CACluster, rel: "apiserver", restart: onMasters(ComponentAPIServer),
			req: CertRequest{CommonName: "kube-apiserver", DNSNames: api.dns, IPAddresses: api.ips, Usages: serverAuth}},
		// kubeadm ≥ 1.29 moved this identity from system:masters to the
		// revocable kubeadm:cluster-admins group.
		{name: "apiserver-kubelet-client", ca: CACluster, rel: "apiserver-kubelet-client", restart: onMasters(ComponentAPIServer),
			req: CertRequest{CommonName: "kube-apiserver-kubelet-client", Organization: []string{ClusterAdminsGroup}, Usages: clientAuth}},
		{name: "front-proxy-client", ca: CAFrontProxy, rel: "front-proxy-client", restart: onMasters(ComponentAPIServer),
			req: CertRequest{CommonName: "front-proxy-client", Usages: clientAuth}},
		{name: "apiserver-etcd-client", ca: CAEtcd, rel: "apiserver-etcd-client", restart: onMasters(ComponentAPIServer),
			req: CertRequest{CommonName: "kube-apiserver-etcd-client", Usages: clientAuth}},
		{name: "etcd-healthcheck-client", ca: CAEtcd, rel: "etcd/healthcheck-client",
			req: CertRequest{CommonName: "kube-etcd-healthcheck-client", Usages: clientAuth}},
	}
	for _, m := range s.Etcd {
		a := etcdAltNames(m)
		req := CertRequest{CommonName: m.Name, DNSNames: a.dns, IPAddresses: a.ips, Usages: bothAuth}
		out = append(out,
			leafDef{name: "etcd-server", host: m.Name, ca: CAEtcd, rel: path.Join(hostDir(m.Name), "etcd/server"), req: req,
				restart: []restartRule{{ComponentEtcd, ""}}},
			leafDef{name: "etcd-peer", host: m.Name, ca: CAEtcd, rel: path.Join(hostDir(m.Name), "etcd/peer"), req: req,
				restart: []restartRule{{ComponentEtcd, ""}}},
		)
	}
	admin := s.AdminServerURL()
	out = append(out,
		leafDef{name: "admin.conf", kubeconfig: true, ca: CACluster, rel: "admin.conf", server: admin,
			req: CertRequest{CommonName: "kubernetes-admin", Organization: []string{ClusterAdminsGroup}, Usages: clientAuth}},
		leafDef{name: "super-admin.conf", kubeconfig: true, ca: CACluster, rel: "super-admin.conf", server: admin,
			req: CertRequest{CommonName: "kubernetes-super-admin", Organization: []string{SystemMastersGroup}, Usages: clientAuth}},
	)
	for _, m := range s.Masters {
		out = append(out,
			leafDef{name: "controller-manager.conf", host: m.Name, kubeconfig: true, ca: CACluster,
				rel: path.Join(hostDir(m.Name), "controller-manager.conf"), server: m.APIServerURL,
				req:     CertRequest{CommonName: "system:kube-controller-manager", Usages: clientAuth},
				restart: []restartRule{{ComponentControllerManager, ""}}},
			leafDef{name: "scheduler.conf", host: m.Name, kubeconfig: true, ca: CACluster,
				rel: path.Join(hostDir(m.Name), "scheduler.conf"), server: m.APIServerURL,
				req:     CertRequest{CommonName: "system:kube-scheduler", Usages: clientAuth},
				restart: []restartRule{{ComponentScheduler, ""}}},
		)
	}
	return out, nil
}

// fileDef maps a file in the store to where a host needs it. local may hold
// the placeholder "{host}" for per-host files.
type fileDef struct {
	local, remote string
	mode          fs.FileMode
}

func pkiFiles(names ...string) []fileDef {
	var out []fileDef
	for _, n := range names {
		mode := modeCert
		if path.Ext(n) == ".key" {
			mode = modeKey
		}
		out = append(out, fileDef{local: n, remote: path.Join(RemotePKIDir, n), mode: mode})
	}
	return out
}

// filesByRole: ca.key goes to masters because controller-manager signs
// kubelet CSRs with it; the etcd and front-proxy CA keys never leave the
// state directory because no component needs them (we issue centrally).
// super-admin.conf stays local too: it bypasses RBAC and is only needed by
// the operator's machine to bootstrap the cluster-admins binding.
var filesByRole = map[string][]fileDef{
	inventory.GroupMasters: append(pkiFiles(
		"ca.crt", "ca.key",
		"apiserver.crt", "apiserver.key",
		"apiserver-kubelet-client.crt", "apiserver-kubelet-client.key",
		"front-proxy-ca.crt",
		"front-proxy-client.crt", "front-proxy-client.key",
		"sa.key", "sa.pub",
		"etcd/ca.crt",
		"apiserver-etcd-client.crt", "apiserver-etcd-client.key",
	),
		fileDef{local: "admin.conf", remote: path.Join(RemoteConfigDir, "admin.conf"), mode: modeConfig},
		fileDef{local: "hosts/{host}/controller-manager.conf", remote: path.Join(RemoteConfigDir, "controller-manager.conf"), mode: modeConfig},
		fileDef{local: "hosts/{host}/scheduler.conf", remote: path.Join(RemoteConfigDir, "scheduler.conf"), mode: modeConfig},
	),
	inventory.GroupEtcd: append(pkiFiles(
		"etcd/ca.crt",
		"etcd/healthcheck-client.crt", "etcd/healthcheck-client.key",
	),
		fileDef{local: "hosts/{host}/etcd/server.crt", remote: path.Join(RemotePKIDir, "etcd/server.crt"), mode: modeCert},
		fileDef{local: "hosts/{host}/etcd/server.key", remote: path.Join(RemotePKIDir, "etcd/server.key"), mode: modeKey},
		fileDef{local: "hosts/{host}/etcd/peer.crt", remote: path.Join(RemotePKIDir, "etcd/peer.crt"), mode: modeCert},
		fileDef{local: "hosts/{host}/etcd/peer.key", remote: path.Join(RemotePKIDir, "etcd/peer.key"), mode: modeKey},
	),
	// Workers' kubelets bootstrap with a token and only need to trust the CA.
	inventory.GroupWorkers: pkiFiles("ca.crt"),
}
