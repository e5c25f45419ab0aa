#!/usr/bin/env bash
# bench.sh prints kubewright's benchmark figures as tables: the engine over
# in-process hosts, artifact build times, and (as root, with a warm image
# cache) lab timings. Figures are measurements of this machine, not targets
# asserted by tests.
set -euo pipefail
cd "$(dirname "$0")/.."
GO="${GO:-$(hack/ensure-go.sh)}"

echo "== engine: 10-step no-op playbook (local: /bin/sh fake hosts; ssh: in-process SSH servers)"
# go test prints "BenchmarkNoopPlaybook/ssh/hosts=50-2  1  665287126 ns/op  28.95 maxrss-MiB ..."
# with the reported metrics as value/unit pairs; pick them by unit, not position.
# max RSS is the process's high-water mark so far: benchmarks run in order.
out="$("$GO" test ./installer/engine -run '^$' -bench NoopPlaybook -benchtime 1x 2>&1)" || {
	echo "$out"
	exit 1
}
echo "$out" | awk '
	BEGIN { printf "%-8s %6s %8s %15s %12s\n", "name", "hosts", "wall s", "peak heap MiB", "max RSS MiB" }
	/^Benchmark/ {
		delete m
		for (i = 3; i < NF; i += 2) m[$(i + 1)] = $i
		n = split($1, part, "/")
		name = part[2]; hosts = part[3]
		sub(/^hosts=/, "", hosts); sub(/-[0-9]+$/, "", hosts)
		printf "%-8s %6d %8.2f %15.1f %12.1f\n", name, hosts, m["wall-s/run"], m["peak-heap-MiB"], m["maxrss-MiB"]
		rows++
	}
	END { if (rows == 0) { print "no benchmark results" > "/dev/stderr"; exit 1 } }'

echo
echo "== artifacts"
bash hack/artifact-times.sh
