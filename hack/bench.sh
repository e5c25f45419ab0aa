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

# Lab and install timings need root, the lab image and the artifacts; without
# them the table says why instead of guessing.
echo
echo "== lab and install (3 masters + 2 workers, warm image cache)"
if [ "$(id -u)" -ne 0 ]; then
	echo "skipped: needs root"
	exit 0
fi
make --no-print-directory build GO="$GO" >/dev/null
kw="bin/kubewright --state-dir $(mktemp -d)"
name=kwbench
secs() { local s=$(date +%s.%N); "$@" >/tmp/kwbench.$$.log 2>&1 || { cat /tmp/kwbench.$$.log; exit 1; }; awk -v a="$s" -v b="$(date +%s.%N)" 'BEGIN { print b - a }'; }
trap '$kw lab down --name $name >/dev/null 2>&1 || true; rm -f /tmp/kwbench.$$.log' EXIT
printf '%-44s %8s\n' "what" "seconds"
printf '%-44s %8.1f\n' "lab up, 5 machines (target <= 60)" "$(secs $kw lab up --name $name --masters 3 --workers 2)"
inv="$($kw lab status --name $name | sed -n 's/^inventory: //p')"
printf '%-44s %8.1f\n' "install, fresh machines" "$(secs $kw install -i "$inv")"
printf '%-44s %8.1f\n' "install re-run, nothing to change (<= 15)" "$(secs $kw install -i "$inv")"
printf '%-44s %8.1f\n' "lab down" "$(secs $kw lab down --name $name)"
