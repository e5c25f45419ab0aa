#!/usr/bin/env bash
# build-artifacts.sh builds everything `kubewright install` puts on hosts, from Go
# modules (the only source reachable here, and the one air-gapped users can audit):
# Kubernetes server binaries and kubectl, etcd, crictl, and the pause and test
# images as tarballs. It writes a local artifacts directory with a manifest.yaml
# that lists every file with its sha256; `kubewright bundle verify DIR` checks it
# and `kubewright bundle create` packs it for offline installs.
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
PAUSE_REF="registry.k8s.io/pause:3.10"
TESTAPP_REF="kubewright.io/testapp:v1"
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
	"$out/kubectl" version --client 2>/dev/null | grep -qx "Client Version: $v" ||
		{ log "kubectl version --client does not report $v"; return 1; }
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
	"$out/etcd" --version | grep -qx "etcd Version: ${v#v}" || { log "etcd --version: $("$out/etcd" --version)"; return 1; }
	"$out/etcdctl" version | grep -qx "etcdctl version: ${v#v}" || { log "etcdctl version: $("$out/etcdctl" version)"; return 1; }
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
	"$out/crictl" --version | grep -q "crictl version $v" || { log "crictl --version: $("$out/crictl" --version)"; return 1; }
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

# ---- output directory and manifest ------------------------------------------------
json_field() { sed -n "s/.*\"$2\":\"\([^\"]*\)\".*/\1/p" "$1"; }

# link_into SRC DST: a hard link when the cache is on the same file system (free),
# else a copy; never a symlink, so the directory can be bind-mounted or copied.
link_into() { mkdir -p "$(dirname "$2")"; ln -f "$1" "$2" 2>/dev/null || cp -f "$1" "$2"; }

# file_entry takes the checksum from the cache directory's .complete list, written
# when the component was built: hashing ~450 MB again would make every warm run
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

assemble() { # outdir kubeDir kubeVersion etcdDir crictlDir imagesDir
	local out=$1 kdir=$2 kv=$3 edir=$4 cdir=$5 idir=$6
	OUT_TMP="$out.tmp.$$"
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
			link_into "$edir/$b" "$OUT_TMP/bin/$b"
			file_entry "$b" "bin/$b" etcd "$ETCD_VERSION" binary "$edir" "$b"
		done
		if [ -n "$cdir" ]; then
			link_into "$cdir/crictl" "$OUT_TMP/bin/crictl"
			file_entry crictl bin/crictl crictl "$CRICTL_VERSION" binary "$cdir" crictl
		fi
		link_into "$idir/pause.tar" "$OUT_TMP/images/pause.tar"
		file_entry pause-image images/pause.tar pause "${PAUSE_REF##*:}" image "$idir" pause.tar
		link_into "$idir/testapp.tar" "$OUT_TMP/images/testapp.tar"
		file_entry testapp-image images/testapp.tar testapp "${TESTAPP_REF##*:}" image "$idir" testapp.tar
		for p in "${OS_PACKAGES[@]}"; do
			printf '  - name: %s\n    kind: os-package\n    component: %s\n    package: %s\n' "$p" "$p" "$p"
		done
		echo "images:"
		printf '  - name: %s\n    file: pause-image\n    digest: %s\n' "$PAUSE_REF" "$(json_field "$idir/pause.json" digest)"
		printf '  - name: %s\n    file: testapp-image\n    digest: %s\n' "$TESTAPP_REF" "$(json_field "$idir/testapp.json" digest)"
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
assemble "$OUT" "$kube_dir" "$KUBERNETES_VERSION" "$etcd_dir" "$crictl_dir" "$images_dir"
# A second copy (hard links) at a stable path: `kubewright lab up` points the
# inventories it writes here, wherever the repository was cloned.
if [ "$OUT" != "$CACHE/latest" ]; then
	assemble "$CACHE/latest" "$kube_dir" "$KUBERNETES_VERSION" "$etcd_dir" "$crictl_dir" "$images_dir"
fi

if [ "${KUBEWRIGHT_BUILD_UPGRADE:-0}" = 1 ]; then
	old_dir="$(kubernetes_component "$KUBERNETES_UPGRADE_FROM")"
	assemble "$OUT-$KUBERNETES_UPGRADE_FROM" "$old_dir" "$KUBERNETES_UPGRADE_FROM" "$etcd_dir" "$crictl_dir" "$images_dir"
fi

mode=warm
[ -f "$built_marker" ] && mode=cold
record_time total all "$(($(date +%s) - run_start))" "$mode"
log "done in $(($(date +%s) - run_start))s ($mode); times in $times_file"
