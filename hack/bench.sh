#!/usr/bin/env bash
# bench.sh prints kubewright's benchmark figures as tables: the engine over
# in-process hosts, artifact build times, and (as root, with a warm image
# cache) lab timings. Figures are measurements of this machine, not targets
# asserted by tests.
set -euo pipefail
cd "$(dirname "$0")/.."
GO="${GO:-$(hack/ensure-go.sh)}"

echo "== engine: 10-step no-op playbook"
"$GO" test ./installer/engine -run '^$' -bench NoopPlaybook -benchtime 1x 2>&1 |
	awk '/^Benchmark/ {printf "%-60s %s %s  %s %s  %s %s\n", $1, $3, $4, $5, $6, $7, $8}'

echo
echo "== artifacts"
bash hack/artifact-times.sh
