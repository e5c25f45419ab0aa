#!/usr/bin/env bash
# quickstart.sh: from a fresh Debian machine (as root) to a local HA cluster on
# lab machines. It installs host packages and the Go toolchain, builds kubewright
# and the Kubernetes/etcd artifacts (cached under $KUBEWRIGHT_CACHE, keyed by
# version), boots the lab (3 masters, 2 workers) and installs the cluster on it.
# Re-running it is safe: every stage is idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
export KUBEWRIGHT_CACHE="${KUBEWRIGHT_CACHE:-/var/cache/kubewright}"
name="${KUBEWRIGHT_LAB:-demo}"
if [ "$(id -u)" -ne 0 ]; then
	echo "quickstart: lab machines need root (network namespaces, systemd-nspawn); run: sudo bash $0" >&2
	exit 2
fi
bash hack/install-deps.sh
GO="$(hack/ensure-go.sh)"
export PATH="$(dirname "$GO"):$PATH"
make --no-print-directory build GO="$GO"
make --no-print-directory artifacts GO="$GO"
bin/kubewright lab up --name "$name" --masters 3 --workers 2
state="${KUBEWRIGHT_STATE_DIR:-$HOME/.kubewright}"
bin/kubewright install -i "$state/labs/$name/inventory.yaml"
cat <<EOM

Try it:
  export KUBECONFIG=$state/clusters/$name/pki/admin.conf
  _output/artifacts/bin/kubectl get --raw /readyz
  _output/artifacts/bin/kubectl get nodes,pods -A -o wide
  bin/kubewright lab status --name $name
When done:
  bin/kubewright lab down --name $name
EOM
