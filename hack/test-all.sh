#!/usr/bin/env bash
# test-all.sh runs every kubewright test the way CI does, on a fresh Debian
# machine as root: host packages, Go toolchain, lint, unit tests, the cached
# artifact build, then the lab end-to-end tests. README's test command and
# .ci/run both call this script.
set -euo pipefail
cd "$(dirname "$0")/.."
export KUBEWRIGHT_CACHE="${KUBEWRIGHT_CACHE:-/var/cache/kubewright}"
start=$(date +%s)
stage() { printf '\n=== %s (+%ss)\n' "$*" "$(( $(date +%s) - start ))"; }

stage "host packages"
bash hack/install-deps.sh
GO="$(hack/ensure-go.sh)"
export PATH="$(dirname "$GO"):$PATH"
go version

stage "lint"
make --no-print-directory lint GO="$GO"

stage "unit tests"
make --no-print-directory test test-hack GO="$GO"

# Each fuzz target for a bounded time (KUBEWRIGHT_FUZZTIME, default 15s):
# the seed corpora already ran as part of the unit tests.
stage "fuzzing"
make --no-print-directory fuzz GO="$GO" FUZZTIME="${KUBEWRIGHT_FUZZTIME:-15s}"

if [ "${KUBEWRIGHT_SKIP_E2E:-}" = 1 ]; then
	echo "KUBEWRIGHT_SKIP_E2E=1: end-to-end tests not run" >&2
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "end-to-end tests need root (lab machines use network namespaces and systemd-nspawn)" >&2
	exit 1
fi

# With the older release the upgrade test starts from (artifacts-upgrade):
# cold, about 9 minutes more; cached like the rest.
stage "artifacts (cached under $KUBEWRIGHT_CACHE)"
make --no-print-directory artifacts-upgrade GO="$GO"

stage "end-to-end tests on lab machines"
make --no-print-directory e2e GO="$GO"
stage "all tests passed"
