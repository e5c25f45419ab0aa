#!/usr/bin/env bash
# build-artifacts.sh builds everything `kubewright install` puts on hosts, from Go
# modules (the only source reachable here, and the one air-gapped users can audit):
# Kubernetes server binaries and kubectl, etcd, crictl, and as image tarballs
# pause, the test workload, CoreDNS, flannel and flannel's CNI plugin. It writes
# a local artifacts directory with a manifest.yaml that lists every file with
# its sha256; `kubewright bundle verify DIR` checks it and `kubewright bundle
# create` packs it for offline installs.
#
# Each component is built once into a cache directory that survives runs:
#   $KUBEWRIGHT_CACHE/artifacts/<component>-<version>-<key>/
# where <key> hashes the build recipe (flags, ldflags, Go version, the wrapper
# module's go.mod/go.sum and sources). A cache hit costs one hash of a few small
# files, so a warm run takes seconds; editing this script's comments does not
# throw away a 10-minute Kubernetes build, but changing a flag does.
#
# Environment (defaults in brackets):
#   KUBEWRIGHT_CACHE           cache root [/var/cache/kubewright]
#   KUBEWRIGHT_ARTIFACTS_DIR   output directory [<repo>/_output/artifacts]
#   KUBERNETES_VERSION         [v1.37.2]   ETCD_VERSION [v3.7.3]   CRICTL_VERSION [v1.37.0]
#   COREDNS_VERSION            [v1.15.0] (needs hack/modules/coredns-<version>)
#   KUBEWRIGHT_BUILD_UPGRADE=1 also build KUBERNETES_UPGRADE_FROM [v1.36.3] into
#                              <output>-<that version>, for upgrade tests (off by
#                              default: another ~8 minutes of two cores, cold)
#   KUBEWRIGHT_BUILD_CRICTL=0  leave crictl out [1]
#   GO                         Go toolchain [go]
# Build times go to $KUBEWRIGHT_CACHE/artifacts/build-times.txt (read by `make bench`),
# one line per built component (mode=build) and one per run (component=total,
# mode=cold if anything was built, warm if all came from the cache; gocache=empty
# marks a build from nothing). To measure a build from nothing:
#   GOCACHE=$(mktemp -d) KUBEWRIGHT_CACHE=$(mktemp -d) hack/build-artifacts.sh
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
hack="$repo/hack"
GO="${GO:-go}"
CACHE_ROOT="${KUBEWRIGHT_CACHE:-/var/cache/kubewright}"
CACHE="$CACHE_ROOT/artifacts"
OUT="${KUBEWRIGHT_ARTIFACTS_DIR:-$repo/_output/artifacts}"
KUBERNETES_VERSION="${KUBERNETES_VERSION:-v1.37.2}"
KUBERNETES_UPGRADE_FROM="${KUBERNETES_UPGRADE_FROM:-v1.36.3}"
ETCD_VERSION="${ETCD_VERSION:-v3.7.3}"
CRICTL_VERSION="${CRICTL_VERSION:-v1.37.0}"
COREDNS_VERSION="${COREDNS_VERSION:-v1.15.0}"
PAUSE_REF="registry.k8s.io/pause:3.10"
COREDNS_REF="registry.k8s.io/coredns/coredns:$COREDNS_VERSION"
TESTAPP_REF="kubewright.io/testapp:v1"
# flannel: our own flanneld on flannel's packages, in an image with upstream's name
# and layout; its CNI plugin comes from containernetworking/plugins v0.9.1, not
# upstream's v1.x cni-plugin (not served), so that image has our own name.
FLANNEL_VERSION=v0.28.10
FLANNEL_REF="ghcr.io/flannel-io/flannel:$FLANNEL_VERSION"
FLANNEL_CNI_REF="kubewright.io/flannel-cni-plugin:v0.9.1"
# Debian packages install provides on nodes instead of binaries we build: they are
# what Debian's security team patches, and containerd's own build needs cgo.
OS_PACKAGES=(containerd runc containernetworking-plugins)
# Bump when a recipe changes in a way the hashed inputs below do not show.
RECIPE_REVISION=1

# -buildvcs=false: the tools module sits in kubewright's git tree, and a VCS stamp
# (commit, time) would make the images change with every commit.
export GOWORK=off GOFLAGS="-mod=readonly -buildvcs=false" CGO_ENABLED=0 GOOS=linux GOARCH=amd64
GO_VERSION="$("$GO" env GOVERSION)"
# Whether Go's build cache was empty tells a true cold build from a rebuild of a
# changed recipe (which reuses compiled packages); build-times.txt records it.
gocache_state=populated
gocache_dir="$("$GO" env GOCACHE)"
if [ -z "$(find "$gocache_dir" -mindepth 2 -type f -print -quit 2>/dev/null)" ]; then
	gocache_state=empty
fi

log() { printf '[artifacts %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

mkdir -p "$CACHE"
# One build at a time per cache: `make artifacts` and an e2e run may race.
exec 9>"$CACHE/.lock"
flock 9

run_start=$(date +%s)
run_id="$run_start-$$"
# Components are built inside $(...) subshells, so "something was built" is a file.
built_marker="$CACHE/.built.$$"
rm -f "$built_marker"
trap 'rm -f "$built_marker"' EXIT
times_file="$CACHE/build-times.txt"
record_time() { # component version seconds mode
	printf '%s component=%s version=%s mode=%s seconds=%s gocache=%s go=%s run=%s\n' \
		"$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$1" "$2" "$4" "$3" "$gocache_state" "$GO_VERSION" "$run_id" >>"$times_file"
}

# recipe_key prints a short hash of the recipe text on stdin plus the given files.
recipe_key() {
	{
		cat
		echo "go=$GO_VERSION goflags=$GOFLAGS revision=$RECIPE_REVISION"
		for f in "$@"; do
			printf '%s ' "${f#"$repo"/}"
			sha256sum <"$f"
		done
	} | sha256sum | cut -c1-12
}

# cached NAME VERSION KEY BUILDFN: runs BUILDFN DIR into a fresh directory unless
# the cache already has a complete build, and prints the cache directory.
cached() {
	local name=$1 version=$2 key=$3 fn=$4
	local dir="$CACHE/$name-$version-$key"
	if [ -f "$dir/.complete" ]; then
		log "$name $version: cached ($dir)"
		echo "$dir"
		return
	fi
	log "$name $version: building into $dir"
	local tmp="$dir.tmp.$$" t0
	rm -rf "$tmp"
	mkdir -p "$tmp"
	t0=$(date +%s)
	"$fn" "$tmp" "$version" >&2 || { rm -rf "$tmp"; die "$name $version: build failed"; }
	(cd "$tmp" && find . -type f ! -name .complete -printf '%P\n' | sort | xargs -r sha256sum) >"$tmp/.complete"
	rm -rf "$dir"
	mv "$tmp" "$dir"
	record_time "$name" "$version" "$(($(date +%s) - t0))" build
	touch "$built_marker"
	echo "$dir"
}

module_info_time() { # module@version -> its publication time, used as buildDate
	"$GO" mod download -json "$1" | sed -n 's/.*"Time": "\(.*\)".*/\1/p'
}

# ---- Kubernetes ---------------------------------------------------------------
KUBE_BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)
KUBE_TAGS="selinux,notest,grpcnotrace"

kube_module_dir() { # version -> wrapper module dir (committed, or generated into the cache)
	local v=$1
	if [ -f "$hack/modules/kubernetes-$v/go.mod" ]; then
		echo "$hack/modules/kubernetes-$v"
		return
	fi
	local d="$CACHE/modules/kubernetes-$v"
	if [ ! -f "$d/go.sum" ]; then
		log "kubernetes $v: no committed wrapper module; generating $d"
		GO="$GO" GOFLAGS=-mod=mod bash "$hack/gen-kube-module.sh" "$v" "$d" >&2
	fi
	echo "$d"
}

kube_ldflags() { # version buildDate
	local v=$1 date=$2 minor
	minor="${v#v1.}"
	minor="${minor%%.*}"
	local out="-s -w"
	for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
		out+=" -X $pkg.gitVersion=$v -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
		out+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$date -X $pkg.gitCommit="
	done
	echo "$out"
}

build_kubernetes() { # outdir version
	local out=$1 v=$2 mod date pkgs=()
	mod="$(kube_module_dir "$v")"
	date="$(cd "$mod" && module_info_time "k8s.io/kubernetes@$v")"
	for b in "${KUBE_BINARIES[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$b"); done
	(cd "$mod" && "$GO" build -trimpath -tags "$KUBE_TAGS" -ldflags "$(kube_ldflags "$v" "$date")" -o "$out/" "${pkgs[@]}")
	local got
	got="$("$out/kube-apiserver" --version)"
	[ "$got" = "Kubernetes $v" ] || { log "kube-apiserver --version printed '$got', want 'Kubernetes $v'"; return 1; }
	got="$("$out/kubelet" --version)"
	[ "$got" = "Kubernetes $v" ] || { log "kubelet --version printed '$got', want 'Kubernetes $v'"; return 1; }
	# Output is captured before grep: with pipefail, grep -q exiting at the
	# first match can kill the writer with SIGPIPE and fail a good build.
	got="$("$out/kubectl" version --client 2>&1 || true)"
	grep -qx "Client Version: $v" <<<"$got" ||
		{ log "kubectl version --client does not report $v: $got"; return 1; }
}

kubernetes_component() { # version -> cache dir
	local v=$1 mod key
	mod="$(kube_module_dir "$v")"
	key="$(printf 'kubernetes %s tags=%s ldflags=%s bins=%s\n' "$v" "$KUBE_TAGS" "$(kube_ldflags "$v" X)" "${KUBE_BINARIES[*]}" |
		recipe_key "$mod/go.mod" "$mod/go.sum")"
	cached kubernetes "$v" "$key" build_kubernetes
}

# ---- etcd -----------------------------------------------------------------------
build_etcd() {
	local out=$1 v=$2 mod="$hack/modules/etcd-$2"
	[ -f "$mod/go.mod" ] || { log "no wrapper module $mod for etcd $v"; return 1; }
	(cd "$mod" && "$GO" build -trimpath -ldflags "-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=$v" -o "$out/" \
		go.etcd.io/etcd/server/v3 go.etcd.io/etcd/etcdctl/v3 go.etcd.io/etcd/etcdutl/v3)
	# go build names the server after its module directory (server/v3 -> server).
	mv "$out/server" "$out/etcd"
	[ -x "$out/etcd" ] || { log "etcd binary missing after build: $(ls "$out")"; return 1; }
	local got
	got="$("$out/etcd" --version 2>&1 || true)"
	grep -qx "etcd Version: ${v#v}" <<<"$got" || { log "etcd --version: $got"; return 1; }
	got="$("$out/etcdctl" version 2>&1 || true)"
	grep -qx "etcdctl version: ${v#v}" <<<"$got" || { log "etcdctl version: $got"; return 1; }
}

etcd_component() {
	local v=$1 mod="$hack/modules/etcd-$1" key
	key="$(printf 'etcd %s\n' "$v" | recipe_key "$mod/go.mod" "$mod/go.sum")"
	cached etcd "$v" "$key" build_etcd
}

# ---- crictl ---------------------------------------------------------------------
build_crictl() {
	local out=$1 v=$2 mod="$hack/modules/crictl-$2"
	(cd "$mod" && "$GO" build -trimpath -ldflags "-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=$v" -o "$out/" \
		sigs.k8s.io/cri-tools/cmd/crictl)
	local got
	got="$("$out/crictl" --version 2>&1 || true)"
	grep -q "crictl version $v" <<<"$got" || { log "crictl --version: $got"; return 1; }
}

crictl_component() {
	local v=$1 mod="$hack/modules/crictl-$1" key
	key="$(printf 'crictl %s\n' "$v" | recipe_key "$mod/go.mod" "$mod/go.sum")"
	cached crictl "$v" "$key" build_crictl
}

# ---- images ---------------------------------------------------------------------
TOOLS="$hack/tools"
tools_inputs() { find "$TOOLS" -type f \( -name '*.go' ! -name '*_test.go' -o -name go.mod -o -name go.sum \) | sort; }

build_images() {
	local out=$1 bin="$1/.bin"
	mkdir -p "$bin"
	(cd "$TOOLS" && "$GO" build -trimpath -ldflags "-s -w" -o "$bin/" ./pause ./testapp ./mkimage)
	export SOURCE_DATE_EPOCH=0
	"$bin/mkimage" -ref "$PAUSE_REF" -o "$out/pause.tar" -file "$bin/pause:/pause" -entrypoint /pause >"$out/pause.json"
	"$bin/mkimage" -ref "$TESTAPP_REF" -o "$out/testapp.tar" -file "$bin/testapp:/testapp" \
		-link /bin/sh=/testapp -entrypoint /testapp -cmd serve >"$out/testapp.json"
	rm -rf "$bin"
}

images_component() {
	local key
	# shellcheck disable=SC2046
	key="$(printf 'images pause=%s testapp=%s\n' "$PAUSE_REF" "$TESTAPP_REF" | recipe_key $(tools_inputs))"
	cached images v1 "$key" build_images
}

# ---- coredns ----------------------------------------------------------------------
# CoreDNS's own main package, built the way its Makefile builds a release:
# CGO_ENABLED=0, -tags grpcnotrace, -ldflags "-s -w -X coremain.GitCommit=$(git
# describe --dirty --always)", which at a release tag is the tag itself. The
# version CoreDNS prints comes from the constant coremain.CoreVersion, so
# `coredns -version` says CoreDNS-1.15.0 and then "linux/amd64, goX, v1.15.0".
# The image has upstream's layout (the binary at /coredns as entrypoint; the
# Deployment passes -conf /etc/coredns/Corefile) but runs as uid 0, not
# distroless' 65532: mkimage writes no file capabilities, and upstream's
# cap_net_bind_service file capability is what lets uid 65532 bind port 53.
# As root, the Deployment's `capabilities: {drop: [all], add: [NET_BIND_SERVICE]}`
# leaves exactly the capability it needs.
COREDNS_TAGS="grpcnotrace"
coredns_ldflags() { echo "-s -w -X github.com/coredns/coredns/coremain.GitCommit=$1"; }
# The CoreDNS image depends on mkimage, not on the other tools (pause, testapp).
mkimage_inputs() { find "$TOOLS/mkimage" -type f -name '*.go' ! -name '*_test.go' | sort; echo "$TOOLS/go.mod"; echo "$TOOLS/go.sum"; }

# Every step ends in `|| return 1`: `cached` calls this as `fn ... || die`, and
# bash ignores set -e inside a function called that way.
build_coredns() { # outdir version
	local out=$1 v=$2 mod="$hack/modules/coredns-$2" bin="$1/.bin" got
	[ -f "$mod/go.mod" ] || { log "no wrapper module $mod for coredns $v"; return 1; }
	mkdir -p "$bin" || return 1
	(cd "$mod" && "$GO" build -trimpath -tags "$COREDNS_TAGS" -ldflags "$(coredns_ldflags "$v")" -o "$bin/coredns" \
		github.com/coredns/coredns) || return 1
	got="$("$bin/coredns" -version | head -n1)"
	[ "$got" = "CoreDNS-${v#v}" ] || { log "coredns -version printed '$got', want 'CoreDNS-${v#v}'"; return 1; }
	(cd "$TOOLS" && "$GO" build -trimpath -ldflags "-s -w" -o "$bin/" ./mkimage) || return 1
	SOURCE_DATE_EPOCH=0 "$bin/mkimage" -ref "$COREDNS_REF" -o "$out/coredns.tar" -file "$bin/coredns:/coredns" \
		-entrypoint /coredns >"$out/coredns.json" || return 1
	rm -rf "$bin"
}

coredns_component() {
	local v=$1 mod="$hack/modules/coredns-$1" key
	# shellcheck disable=SC2046
	key="$(printf 'coredns %s ref=%s tags=%s ldflags=%s\n' "$v" "$COREDNS_REF" "$COREDNS_TAGS" "$(coredns_ldflags "$v")" |
		recipe_key "$mod/go.mod" "$mod/go.sum" $(mkimage_inputs))"
	cached coredns "$v" "$key" build_coredns
}

# ---- flannel ----------------------------------------------------------------------
# Two images for the upstream kube-flannel.yml DaemonSet (unchanged but for the
# image refs and the CNI plugin hostPath):
#   $FLANNEL_REF      /opt/bin/flanneld (hack/modules/flannel-<version>: flannel's
#                     main cannot be built here, see its README), /opt/bin/install-conf
#                     (hack/tools/fileinstall), and Debian's iptables: the build
#                     host's xtables-nft-multi as iptables{,-save,-restore} and
#                     ip6tables{,-save,-restore}, its extension modules and every
#                     shared library ldd lists for them, at the host's paths.
#   $FLANNEL_CNI_REF  /flannel (plugins/meta/flannel of containernetworking/plugins
#                     v0.9.1) and /bin/cp (fileinstall again), for the init container's
#                     `cp -f /flannel /opt/cni/bin/flannel`.
# Both are checked before they are cached: the flannel image's root file system is
# unpacked and its iptables run with chroot, flannel's iptables traffic manager
# sets up its rules through them in an empty network namespace (nothing on this
# host changes), and the CNI image's cp installs /flannel.
FLANNEL_MOD="$hack/modules/flannel-$FLANNEL_VERSION"
CNI_PLUGINS_VERSION=v0.9.1
CNI_PLUGINS_MOD="$hack/modules/cni-plugins-$CNI_PLUGINS_VERSION"
XTABLES_MULTI=/usr/sbin/xtables-nft-multi
XTABLES_LIBDIR=/usr/lib/x86_64-linux-gnu/xtables
IPTABLES_NAMES=(iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore)
# Debian's packages behind the bundled files; their versions go into the cache key.
IPTABLES_DEBS=(iptables libxtables12 libnftnl11 libmnl0 libnetfilter-conntrack3 libnfnetlink0 libc6)
FLANNEL_IMAGE_PATH="PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
flannel_ldflags() { echo "-s -w -X github.com/flannel-io/flannel/pkg/version.Version=$1"; }
cni_plugins_ldflags() { echo "-s -w -X github.com/containernetworking/plugins/pkg/utils/buildversion.BuildVersion=$1"; }
flannel_tools_inputs() {
	find "$TOOLS/mkimage" "$TOOLS/fileinstall" -type f -name '*.go' ! -name '*_test.go' | sort
	echo "$TOOLS/go.mod"
	echo "$TOOLS/go.sum"
}
flannel_inputs() {
	echo "$FLANNEL_MOD/go.mod" "$FLANNEL_MOD/go.sum"
	find "$FLANNEL_MOD" -type f -name '*.go' ! -name '*_test.go' | sort
	echo "$CNI_PLUGINS_MOD/go.mod" "$CNI_PLUGINS_MOD/go.sum"
	flannel_tools_inputs
}

need_host_iptables() {
	[ -x "$XTABLES_MULTI" ] && [ -d "$XTABLES_LIBDIR" ] ||
		die "the flannel image bundles Debian's iptables: $XTABLES_MULTI or $XTABLES_LIBDIR is missing (apt-get install iptables; hack/install-deps.sh)"
}

# iptables_libs prints the shared libraries (and the dynamic loader) that
# xtables-nft-multi and its extension modules need, as ldd names them.
iptables_libs() {
	ldd "$XTABLES_MULTI" "$XTABLES_LIBDIR"/*.so | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// && $2 ~ /^\(/ {print $1}' | sort -u
}

# as_root runs a command as root: directly when we are, else as root of a new
# user namespace (enough for chroot and an own network namespace).
as_root() {
	if [ "$(id -u)" = 0 ]; then "$@"; else unshare --map-root-user "$@"; fi
}

# image_rootfs TARBALL DIR unpacks the one layer of an mkimage tarball into DIR.
image_rootfs() {
	local layer
	layer="$(tar -tf "$1" | grep '\.tar\.gz$')"
	[ -n "$layer" ] && [ "$(printf '%s\n' "$layer" | wc -l)" = 1 ] || { log "$1: want one .tar.gz layer, have: $layer"; return 1; }
	mkdir -p "$2"
	tar -xOf "$1" "$layer" | tar -xzf - -C "$2"
}

# check_flannel_images runs the images' programs from their unpacked root file
# systems, with the images' PATH and nothing else in the environment. Like
# build_flannel, every step returns on failure by itself.
check_flannel_images() { # outdir scratchdir selfcheckbin
	local out=$1 tmp=$2 selfcheck=$3 root="$2/flannel-root" cni="$2/cni-root" got n chroot_bin
	chroot_bin="$(command -v chroot || echo /usr/sbin/chroot)"
	image_rootfs "$out/flannel.tar" "$root" || return 1
	for n in "${IPTABLES_NAMES[@]}"; do
		got="$(as_root env -i "$FLANNEL_IMAGE_PATH" "$chroot_bin" "$root" "/usr/sbin/$n" --version)" ||
			{ log "flannel image: $n --version failed: $got"; return 1; }
		[[ "$got" =~ ^$n\ v[0-9.]+\ \(nf_tables\)$ ]] || { log "flannel image: $n --version printed '$got', want '$n vX (nf_tables)'"; return 1; }
	done
	log "flannel image: ${IPTABLES_NAMES[*]} run in the image's root: $got"
	# Container runtimes give a container /dev; Go's os/exec needs /dev/null.
	mkdir -p "$root/dev" || return 1
	as_root mknod -m 666 "$root/dev/null" c 1 3 2>/dev/null || : >"$root/dev/null" || return 1
	mkdir -p "$root/.selfcheck" && cp "$selfcheck" "$root/.selfcheck/iptables-selfcheck" || return 1
	as_root unshare --net env -i "$FLANNEL_IMAGE_PATH" "$chroot_bin" "$root" /.selfcheck/iptables-selfcheck >&2 ||
		{ log "flannel image: flannel's iptables rules do not work with the bundled iptables"; return 1; }
	got="$(as_root env -i "$FLANNEL_IMAGE_PATH" "$chroot_bin" "$root" /opt/bin/flanneld --version 2>&1)"
	[ "$got" = "$FLANNEL_VERSION" ] || { log "flannel image: flanneld --version printed '$got'"; return 1; }
	mkdir -p "$root/etc/kube-flannel" "$root/etc/cni/net.d" || return 1
	echo '{"name":"cbr0","cniVersion":"0.3.1"}' >"$root/etc/kube-flannel/cni-conf.json" || return 1
	as_root env -i "$FLANNEL_IMAGE_PATH" "$chroot_bin" "$root" /opt/bin/install-conf \
		/etc/kube-flannel/cni-conf.json /etc/cni/net.d/10-flannel.conflist || { log "flannel image: install-conf failed"; return 1; }
	cmp -s "$root/etc/kube-flannel/cni-conf.json" "$root/etc/cni/net.d/10-flannel.conflist" &&
		[ "$(stat -c %a "$root/etc/cni/net.d/10-flannel.conflist")" = 644 ] ||
		{ log "flannel image: install-conf did not install the config with mode 0644"; return 1; }

	image_rootfs "$out/flannel-cni-plugin.tar" "$cni" || return 1
	mkdir -p "$cni/opt/cni/bin" || return 1
	# As the init container runs it: `cp` looked up in the image's PATH.
	as_root env -i PATH=/usr/local/bin:/usr/bin:/bin "$chroot_bin" "$cni" cp -f /flannel /opt/cni/bin/flannel ||
		{ log "flannel CNI image: cp -f /flannel /opt/cni/bin/flannel failed"; return 1; }
	cmp -s "$cni/flannel" "$cni/opt/cni/bin/flannel" && [ "$(stat -c %a "$cni/opt/cni/bin/flannel")" = 755 ] ||
		{ log "flannel CNI image: cp did not install /flannel with mode 0755"; return 1; }
	got="$(as_root env -i CNI_COMMAND=VERSION "$chroot_bin" "$cni" /opt/cni/bin/flannel)"
	[[ "$got" == *'"0.3.1"'* ]] || { log "flannel CNI plugin: VERSION printed '$got', want 0.3.1 supported"; return 1; }
	log "flannel images: flanneld, install-conf, iptables (nf_tables) and the CNI plugin's cp check out"
}

# Every step ends in `|| return 1`: `cached` calls this as `fn ... || die`, and
# bash ignores set -e inside a function called that way.
build_flannel() { # outdir version
	local out=$1 v=$2 bin="$1/.bin" got lib libs files=() links=()
	[ -f "$FLANNEL_MOD/go.mod" ] || { log "no wrapper module $FLANNEL_MOD for flannel $v"; return 1; }
	mkdir -p "$bin" || return 1
	# The wrapper's own tests (flags, health endpoints, subnet.env) run here,
	# where its code is compiled; -trimpath like the build, so both share the
	# compiled dependencies.
	(cd "$FLANNEL_MOD" && "$GO" test -trimpath -count=1 ./...) || { log "flannel wrapper module tests failed"; return 1; }
	(cd "$FLANNEL_MOD" && "$GO" build -trimpath -ldflags "$(flannel_ldflags "$v")" -o "$bin/flanneld" . &&
		"$GO" build -trimpath -ldflags "-s -w" -o "$bin/" ./cmd/iptables-selfcheck) || return 1
	got="$("$bin/flanneld" --version 2>&1)"
	[ "$got" = "$v" ] || { log "flanneld --version printed '$got', want '$v'"; return 1; }
	(cd "$CNI_PLUGINS_MOD" && "$GO" build -trimpath -ldflags "$(cni_plugins_ldflags "$CNI_PLUGINS_VERSION")" -o "$bin/flannel" \
		github.com/containernetworking/plugins/plugins/meta/flannel) || return 1
	got="$("$bin/flannel" 2>&1 || true)"
	[ "$got" = "CNI flannel plugin $CNI_PLUGINS_VERSION" ] || { log "flannel CNI plugin printed '$got'"; return 1; }
	(cd "$TOOLS" && "$GO" build -trimpath -ldflags "-s -w" -o "$bin/" ./mkimage ./fileinstall) || return 1

	libs="$(iptables_libs)" || { log "ldd $XTABLES_MULTI failed"; return 1; }
	[[ "$libs" == */libc.so.6* && "$libs" == */ld-linux-x86-64.so.2* && "$libs" == */libxtables.so.* ]] ||
		{ log "ldd found no libc, loader or libxtables for $XTABLES_MULTI: $libs"; return 1; }
	for lib in $libs; do files+=(-file "$(readlink -f "$lib"):$lib:0755"); done
	for n in "${IPTABLES_NAMES[@]}"; do links+=(-link "/usr/sbin/$n=xtables-nft-multi"); done
	export SOURCE_DATE_EPOCH=0
	"$bin/mkimage" -ref "$FLANNEL_REF" -o "$out/flannel.tar" \
		-file "$bin/flanneld:/opt/bin/flanneld" -file "$bin/fileinstall:/opt/bin/fileinstall" -link /opt/bin/install-conf=fileinstall \
		-file "$XTABLES_MULTI:$XTABLES_MULTI:0755" "${files[@]}" -tree "$XTABLES_LIBDIR:$XTABLES_LIBDIR" "${links[@]}" \
		-env "$FLANNEL_IMAGE_PATH" -entrypoint /opt/bin/flanneld >"$out/flannel.json" || return 1
	"$bin/mkimage" -ref "$FLANNEL_CNI_REF" -o "$out/flannel-cni-plugin.tar" \
		-file "$bin/flannel:/flannel" -file "$bin/fileinstall:/usr/local/bin/fileinstall" -link /bin/cp=/usr/local/bin/fileinstall \
		-cmd "cp -f /flannel /opt/cni/bin/flannel" >"$out/flannel-cni-plugin.json" || return 1
	check_flannel_images "$out" "$bin" "$bin/iptables-selfcheck" || return 1
	rm -rf "$bin"
}

flannel_component() { # -> cache dir
	local key debs
	need_host_iptables # before recipe_key hashes $XTABLES_MULTI
	debs="$(dpkg-query -W -f '${Package}=${Version} ' "${IPTABLES_DEBS[@]}" 2>/dev/null || true)"
	# shellcheck disable=SC2046
	key="$(printf 'flannel %s ref=%s cni=%s ldflags=%s cni-ldflags=%s iptables=%s debs=%s path=%s\n' "$FLANNEL_VERSION" \
		"$FLANNEL_REF" "$FLANNEL_CNI_REF" "$(flannel_ldflags "$FLANNEL_VERSION")" "$(cni_plugins_ldflags "$CNI_PLUGINS_VERSION")" \
		"${IPTABLES_NAMES[*]}" "$debs" "$FLANNEL_IMAGE_PATH" | recipe_key $(flannel_inputs) "$XTABLES_MULTI")"
	cached flannel "$FLANNEL_VERSION" "$key" build_flannel
}

# ---- output directory and manifest ------------------------------------------------
json_field() { sed -n "s/.*\"$2\":\"\([^\"]*\)\".*/\1/p" "$1"; }

# link_into SRC DST: a hard link when the cache is on the same file system (free),
# else a copy; never a symlink, so the directory can be bind-mounted or copied.
link_into() { mkdir -p "$(dirname "$2")"; ln -f "$1" "$2" 2>/dev/null || cp -f "$1" "$2"; }

# file_entry takes the checksum from the cache directory's .complete list, written
# when the component was built: hashing ~500 MB again would make every warm run
# slower, and a file changed since then is exactly what `bundle verify` must catch.
file_entry() { # name path component version kind cachedir cachedname
	local f="$OUT_TMP/$2" sum
	sum="$(awk -v n="$7" '$2==n {print $1}' "$6/.complete")"
	[ -n "$sum" ] || die "$6/.complete has no checksum for $7"
	cat <<EOF
  - name: $1
    path: $2
    sha256: $sum
    size: $(stat -c %s "$f")
    kind: $5
    component: $3
    version: $4
EOF
}

# image_entry links an image tarball into the output, prints its file entry and
# queues its images: entry (printed after the files). The tarball's sibling
# NAME.json is mkimage's output, with the image ID; the tag is the version.
image_entry() { # ref filename component cachedir tarball
	local ref=$1 name=$2 comp=$3 dir=$4 tar=$5 digest
	digest="$(json_field "$dir/${tar%.tar}.json" digest)"
	[ -n "$digest" ] || die "$dir/${tar%.tar}.json has no digest for $ref"
	link_into "$dir/$tar" "$OUT_TMP/images/$tar"
	file_entry "$name" "images/$tar" "$comp" "${ref##*:}" image "$dir" "$tar"
	IMAGE_ENTRIES+=("$(printf '  - name: %s\n    file: %s\n    digest: %s' "$ref" "$name" "$digest")")
}

# assemble writes one artifacts directory from the component cache directories:
# the Kubernetes build and version vary (upgrade sets), the other components are
# the same for every set and come from main's *_dir variables.
assemble() { # outdir kubeDir kubeVersion
	local out=$1 kdir=$2 kv=$3
	OUT_TMP="$out.tmp.$$"
	IMAGE_ENTRIES=()
	rm -rf "$OUT_TMP"
	mkdir -p "$OUT_TMP/bin" "$OUT_TMP/images"
	{
		echo "# Generated by hack/build-artifacts.sh; check with: kubewright bundle verify $(basename "$out")"
		echo "apiVersion: kubewright.io/v1alpha1"
		echo "kind: ArtifactManifest"
		echo "kubernetesVersion: $kv"
		echo "etcdVersion: $ETCD_VERSION"
		echo "arch: amd64"
		echo "files:"
		for b in "${KUBE_BINARIES[@]}"; do
			link_into "$kdir/$b" "$OUT_TMP/bin/$b"
			file_entry "$b" "bin/$b" kubernetes "$kv" binary "$kdir" "$b"
		done
		for b in etcd etcdctl etcdutl; do
			link_into "$etcd_dir/$b" "$OUT_TMP/bin/$b"
			file_entry "$b" "bin/$b" etcd "$ETCD_VERSION" binary "$etcd_dir" "$b"
		done
		if [ -n "$crictl_dir" ]; then
			link_into "$crictl_dir/crictl" "$OUT_TMP/bin/crictl"
			file_entry crictl bin/crictl crictl "$CRICTL_VERSION" binary "$crictl_dir" crictl
		fi
		image_entry "$PAUSE_REF" pause-image pause "$images_dir" pause.tar
		image_entry "$TESTAPP_REF" testapp-image testapp "$images_dir" testapp.tar
		image_entry "$COREDNS_REF" coredns-image coredns "$coredns_dir" coredns.tar
		image_entry "$FLANNEL_REF" flannel-image flannel "$flannel_dir" flannel.tar
		image_entry "$FLANNEL_CNI_REF" flannel-cni-plugin-image flannel-cni-plugin "$flannel_dir" flannel-cni-plugin.tar
		for p in "${OS_PACKAGES[@]}"; do
			printf '  - name: %s\n    kind: os-package\n    component: %s\n    package: %s\n' "$p" "$p" "$p"
		done
		echo "images:"
		printf '%s\n' "${IMAGE_ENTRIES[@]}"
	} >"$OUT_TMP/manifest.yaml"
	rm -rf "$out"
	mkdir -p "$(dirname "$out")"
	mv "$OUT_TMP" "$out"
	log "wrote $out ($(du -sh "$out" | cut -f1))"
}

# ---- main -------------------------------------------------------------------------
kube_dir="$(kubernetes_component "$KUBERNETES_VERSION")"
etcd_dir="$(etcd_component "$ETCD_VERSION")"
crictl_dir=""
if [ "${KUBEWRIGHT_BUILD_CRICTL:-1}" = 1 ]; then
	crictl_dir="$(crictl_component "$CRICTL_VERSION")"
fi
images_dir="$(images_component)"
coredns_dir="$(coredns_component "$COREDNS_VERSION")"
flannel_dir="$(flannel_component)"
assemble "$OUT" "$kube_dir" "$KUBERNETES_VERSION"
# A second copy (hard links) at a stable path: `kubewright lab up` points the
# inventories it writes here, wherever the repository was cloned.
if [ "$OUT" != "$CACHE/latest" ]; then
	assemble "$CACHE/latest" "$kube_dir" "$KUBERNETES_VERSION"
fi

if [ "${KUBEWRIGHT_BUILD_UPGRADE:-0}" = 1 ]; then
	old_dir="$(kubernetes_component "$KUBERNETES_UPGRADE_FROM")"
	assemble "$OUT-$KUBERNETES_UPGRADE_FROM" "$old_dir" "$KUBERNETES_UPGRADE_FROM"
fi

mode=warm
[ -f "$built_marker" ] && mode=cold
record_time total all "$(($(date +%s) - run_start))" "$mode"
log "done in $(($(date +%s) - run_start))s ($mode); times in $times_file"
