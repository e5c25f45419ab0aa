// Builds the flannel CNI plugin (plugins/meta/flannel) from containernetworking/plugins
// v0.9.1, the last release that has it (github.com/flannel-io/cni-plugin, where it moved,
// is not served here); see hack/build-artifacts.sh. It speaks CNI 0.3.1, the version
// kube-flannel's cni-conf.json asks for, and delegates to the bridge and host-local
// plugins installed on the node. Its own module so kubewright's main module never
// depends on it.
module kubewright.dev/hack/cni-plugins

go 1.26.0

tool github.com/containernetworking/plugins/plugins/meta/flannel

require (
	github.com/Microsoft/go-winio v0.4.11 // indirect
	github.com/Microsoft/hcsshim v0.8.6 // indirect
	github.com/buger/jsonparser v0.0.0-20180808090653-f4dd9f5a6b44 // indirect
	github.com/containernetworking/cni v0.8.1 // indirect
	github.com/containernetworking/plugins v0.9.1 // indirect
	github.com/sirupsen/logrus v1.0.6 // indirect
	golang.org/x/crypto v0.0.0-20200622213623-75b288015ac9 // indirect
	golang.org/x/sys v0.0.0-20201117170446-d9b008d0a637 // indirect
)
