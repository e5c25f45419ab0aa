#!/usr/bin/env bash
# artifact-times.sh prints the artifact build times hack/build-artifacts.sh
# recorded, for `make bench`: the latest warm run (everything from the cache),
# the latest cold run (something was built), and for each component its latest
# build from an empty Go build cache, the honest "cold machine" number.
set -euo pipefail
times="${KUBEWRIGHT_CACHE:-/var/cache/kubewright}/artifacts/build-times.txt"
if [ ! -s "$times" ]; then
	echo "artifacts: no build recorded yet in $times (run: make artifacts)"
	exit 0
fi
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p"; }
show() { # label line
	if [ -z "$2" ]; then
		printf '%-42s %s\n' "$1" "not measured"
		return
	fi
	printf '%-42s %6ss  (%s, %s)\n' "$1" "$(field seconds <<<"$2")" "$(cut -d' ' -f1 <<<"$2")" "$(field go <<<"$2")"
}
show "artifacts warm build (latest):" "$(grep " component=total " "$times" | grep " mode=warm " | tail -1 || true)"
show "artifacts cold build (latest):" "$(grep " component=total " "$times" | grep " mode=cold " | tail -1 || true)"
echo "component builds from an empty Go build cache (latest each):"
total=0
for c in $(grep " mode=build " "$times" | field component | sort -u); do
	line="$(grep " component=$c " "$times" | grep " mode=build .*gocache=empty" | tail -1 || true)"
	[ -n "$line" ] || continue
	s="$(field seconds <<<"$line")"
	total=$((total + s))
	printf '  %-40s %6ss  (%s)\n' "$c $(field version <<<"$line")" "$s" "$(cut -d' ' -f1 <<<"$line")"
done
[ "$total" -gt 0 ] && printf '  %-40s %6ss\n' "sum" "$total"
exit 0
