# hack/artifacts.mk: `make artifacts` builds Kubernetes, etcd, crictl and the
# images (pause, testapp, CoreDNS, flannel and its CNI plugin) from Go modules
# (hack/build-artifacts.sh) and checks the result with `kubewright bundle
# verify`. Included by the top-level Makefile.
#
# Variables (override on the command line or in the environment):
#   KUBEWRIGHT_CACHE          cache root; built components live under
#                             $(KUBEWRIGHT_CACHE)/artifacts/<component>-<version>-<key>
#                             and survive `make clean` [/var/cache/kubewright]
#   ARTIFACTS_DIR             output directory with manifest.yaml [_output/artifacts]
#   KUBERNETES_VERSION        [v1.37.2]   ETCD_VERSION [v3.7.3]   CRICTL_VERSION [v1.37.0]
#   COREDNS_VERSION           [v1.15.0]
#   KUBEWRIGHT_BUILD_UPGRADE  1 also builds KUBERNETES_UPGRADE_FROM [v1.36.3] into
#                             $(ARTIFACTS_DIR)-$(KUBERNETES_UPGRADE_FROM) [0]
#   KUBEWRIGHT_BUILD_CRICTL   0 leaves crictl out [1]
# Cold, 2 idle cores: ~14 minutes, estimated (Kubernetes ~9; CoreDNS ~4, as it
# takes 8 CPU-minutes from an empty Go cache; flannel under one). A busy machine
# takes far longer (build-times.txt has the measured runs). Warm: 1-2 seconds.
# Build times: $(KUBEWRIGHT_CACHE)/artifacts/build-times.txt.
KUBEWRIGHT_CACHE   ?= /var/cache/kubewright
ARTIFACTS_DIR      ?= $(CURDIR)/_output/artifacts
KUBERNETES_VERSION ?= v1.37.2
ETCD_VERSION       ?= v3.7.3
CRICTL_VERSION     ?= v1.37.0
COREDNS_VERSION    ?= v1.15.0
KUBEWRIGHT_BUILD_UPGRADE ?= 0

.PHONY: artifacts artifacts-upgrade bundle

artifacts:
	GO="$(GO)" KUBEWRIGHT_CACHE="$(KUBEWRIGHT_CACHE)" KUBEWRIGHT_ARTIFACTS_DIR="$(ARTIFACTS_DIR)" \
	KUBERNETES_VERSION="$(KUBERNETES_VERSION)" ETCD_VERSION="$(ETCD_VERSION)" CRICTL_VERSION="$(CRICTL_VERSION)" \
	COREDNS_VERSION="$(COREDNS_VERSION)" \
	KUBEWRIGHT_BUILD_UPGRADE="$(KUBEWRIGHT_BUILD_UPGRADE)" bash hack/build-artifacts.sh
	$(GO) run ./cmd/kubewright bundle verify "$(ARTIFACTS_DIR)"

# artifacts-upgrade adds the older Kubernetes that upgrade tests start from.
artifacts-upgrade:
	$(MAKE) --no-print-directory artifacts KUBEWRIGHT_BUILD_UPGRADE=1

# bundle packs the artifacts directory for an offline install.
bundle: artifacts
	$(GO) run ./cmd/kubewright bundle create "$(CURDIR)/_output/kubewright-artifacts-$(KUBERNETES_VERSION).tar.gz" --from "$(ARTIFACTS_DIR)"

# test-hack runs the tests of hack/tools (pause, testapp, mkimage): its own Go
# module, so `go test ./...` at the top does not reach it.
.PHONY: test-hack
test-hack:
	cd hack/tools && GOWORK=off $(GO) test ./...
