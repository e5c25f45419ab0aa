#!/usr/bin/env bash
# bench.sh prints kubewright's benchmark figures as markdown tables: the
# engine over in-process hosts (up to 1,000), kubewright against Ansible on
# the same ten tasks over loopback sshd hosts, kubewright alone over 200
# real sshd hosts, artifact build times, and (as root, with a warm image
# cache) lab timings. Figures are measurements of this machine, not targets
# asserted by tests; docs/BENCHMARKS.md has the latest ones and the targets.
#
# Environment:
#   KUBEWRIGHT_BENCH_ENGINE=0     skip the in-process engine benchmark
#   KUBEWRIGHT_BENCH_ANSIBLE=0    skip kubewright against Ansible (and the sshd scale run)
#   KUBEWRIGHT_BENCH_HOSTS=10,25,50  host counts for the comparison
#   KUBEWRIGHT_BENCH_RUNS=3       runs per host count and tool (the median is shown)
#   KUBEWRIGHT_BENCH_SCALE=200    real sshd hosts for kubewright alone (0: skip)
#   KUBEWRIGHT_BENCH_LAB=0        skip the lab section (needs root and lab machines)
#
# The comparison installs ansible-core and openssh-server with apt-get when
# they are missing. It starts one sshd of its own (config, host key, pid file
# in a temp dir, port 2222 or the next free one, listening on 127.0.1.x:
# all of 127.0.0.0/8 is loopback on Linux, so no address is added) and stops
# only that sshd, by PID, when it ends.
set -euo pipefail
cd "$(dirname "$0")/.."
GO="${GO:-$(hack/ensure-go.sh)}"

if [ "${KUBEWRIGHT_BENCH_ENGINE:-1}" != 0 ]; then
	echo "### Engine: 10-step no-op playbook, in-process hosts"
	echo
	echo "local: the enginetest fake runs every command with a real /bin/sh. ssh: every host is an"
	echo "in-process SSH server reached with remote.Dial, one handshake per host and one session per"
	echo "command; the servers share the process, so heap, RSS, goroutines and fds include them."
	echo "Concurrency 50, 1 run each; max RSS is the process's high-water mark so far (benchmarks run in order)."
	echo
	# go test prints "BenchmarkNoopPlaybook/ssh/hosts=50-2  1  665287126 ns/op  28.95 maxrss-MiB ..."
	# with the reported metrics as value/unit pairs; pick them by unit, not position.
	rc=0
	out="$("$GO" test ./installer/engine -run '^$' -bench NoopPlaybook -benchtime 1x -timeout 30m 2>&1)" || rc=$?
	echo "$out" | awk '
		BEGIN {
			print "| name | hosts | wall s | peak heap MiB | max RSS MiB | peak goroutines | peak fds |"
			print "|---|---:|---:|---:|---:|---:|---:|"
		}
		/^Benchmark/ {
			delete m
			for (i = 3; i < NF; i += 2) m[$(i + 1)] = $i
			n = split($1, part, "/")
			name = part[2]; hosts = part[3]
			sub(/^hosts=/, "", hosts); sub(/-[0-9]+$/, "", hosts)
			printf "| %s | %d | %.2f | %.1f | %.1f | %d | %d |\n", name, hosts, m["wall-s/run"], m["peak-heap-MiB"], m["maxrss-MiB"], m["peak-goroutines"], m["peak-fds"]
			rows++
		}
		END { if (rows == 0) { print "no benchmark results" > "/dev/stderr"; exit 1 } }' || { echo "$out"; exit 1; }
	if [ "$rc" -ne 0 ]; then
		echo
		echo "Some benchmarks failed (go test exit $rc); their rows are missing:"
		echo
		echo '```'
		echo "$out" | grep -E '^--- FAIL|^\s+bench_test.go|^\s+\* ' | cut -c1-200 | head -8
		echo '```'
	fi
	echo
fi

if [ "${KUBEWRIGHT_BENCH_ANSIBLE:-1}" != 0 ]; then
	echo "### kubewright against Ansible: ten tasks over loopback sshd hosts"
	echo
	if [ "$(id -u)" -ne 0 ]; then
		echo "skipped: needs root (the tasks log in as root; sshd needs /run/sshd)"
	else
		need=()
		command -v ansible-playbook >/dev/null 2>&1 || need+=(ansible-core)
		[ -x /usr/sbin/sshd ] || need+=(openssh-server)
		if [ "${#need[@]}" -gt 0 ]; then
			echo "installing ${need[*]} with apt-get" >&2
			apt-get update -qq >&2
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2
		fi
		make --no-print-directory build GO="$GO" >/dev/null
		echo "ansible-playbook $(ansible-playbook --version | sed -n '1s/.*core \([^]]*\)\].*/\1/p'), $(bin/kubewright version 2>/dev/null | head -1 || echo kubewright)."
		echo
		"$GO" run ./test/bench -kubewright bin/kubewright \
			-hosts "${KUBEWRIGHT_BENCH_HOSTS:-10,25,50}" \
			-runs "${KUBEWRIGHT_BENCH_RUNS:-3}" \
			-scale "${KUBEWRIGHT_BENCH_SCALE:-200}"
	fi
	echo
fi

echo "### Artifacts"
echo
echo '```'
bash hack/artifact-times.sh
echo '```'

# Lab and install timings need root, the lab image and the artifacts; without
# them the table says why instead of guessing.
echo
echo "### Lab and install (3 masters + 2 workers, warm image cache)"
echo
if [ "${KUBEWRIGHT_BENCH_LAB:-1}" = 0 ]; then
	echo "skipped: KUBEWRIGHT_BENCH_LAB=0"
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "skipped: needs root"
	exit 0
fi
make --no-print-directory build GO="$GO" >/dev/null
state="$(mktemp -d)"
kw="bin/kubewright --state-dir $state"
name=kwbench
secs() { local s=$(date +%s.%N); "$@" >/tmp/kwbench.$$.log 2>&1 || { cat /tmp/kwbench.$$.log; exit 1; }; awk -v a="$s" -v b="$(date +%s.%N)" 'BEGIN { print b - a }'; }
trap '$kw lab down --name $name >/dev/null 2>&1 || true; rm -f /tmp/kwbench.$$.log; rm -rf "$state"' EXIT
echo "| what | seconds |"
echo "|---|---:|"
printf '| %s | %.1f |\n' "lab up, 5 machines (target <= 60)" "$(secs $kw lab up --name $name --masters 3 --workers 2)"
inv="$($kw lab status --name $name | sed -n 's/^inventory: //p')"
printf '| %s | %.1f |\n' "install, fresh machines (target <= 300)" "$(secs $kw install -i "$inv")"
newest_journal() { ls -1d "$state"/clusters/*/runs/*/journal.json | sort | tail -1; }
fresh_journal="$(newest_journal)"
printf '| %s | %.1f |\n' "install re-run, nothing to change (target <= 10)" "$(secs $kw install -i "$inv")"
rerun_journal="$(newest_journal)"
printf '| %s | %.1f |\n' "lab down" "$(secs $kw lab down --name $name)"
echo
echo "Install on fresh machines, per play (from its journal: first step started to last step ended):"
echo
"$GO" run ./test/bench/playtimes "$fresh_journal"
echo
echo "The no-op re-run, per play:"
echo
"$GO" run ./test/bench/playtimes "$rerun_journal"
