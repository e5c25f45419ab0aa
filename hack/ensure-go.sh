#!/usr/bin/env bash
# ensure-go.sh prints the path of a Go toolchain new enough for go.mod, installing
# one if needed. A fresh Debian has no Go (or Debian's 1.19, too old), and the only
# reachable sources are Debian's packages and the Go module proxy, so the toolchain
# comes from the proxy as the module golang.org/toolchain, fetched by Debian's go.
set -euo pipefail
want="$(awk '/^go /{print $2; exit}' "$(dirname "$0")/../go.mod")"

newer_or_equal() { # $1 have, $2 want (x.y.z)
	[ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -1)" = "$2" ]
}
for cand in "$(command -v go 2>/dev/null || true)" /usr/local/go/bin/go; do
	[ -n "$cand" ] && [ -x "$cand" ] || continue
	have="$("$cand" env GOVERSION 2>/dev/null | sed 's/^go//')" || continue
	if newer_or_equal "$have" "$want"; then echo "$cand"; exit 0; fi
done

echo "ensure-go: no Go >= $want found; fetching go$want from the Go module proxy" >&2
if ! command -v go >/dev/null 2>&1; then
	apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-go >&2
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mod="golang.org/toolchain@v0.0.1-go${want}.linux-$(dpkg --print-architecture)"
dir="$(cd "$tmp" && GOFLAGS=-modcacherw GO111MODULE=on GOPATH="${GOPATH:-$HOME/go}" go mod download -json "$mod" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')"
[ -x "$dir/bin/go" ] || { echo "ensure-go: toolchain download failed for $mod" >&2; exit 1; }
chmod +x "$dir/bin/"* "$dir/pkg/tool/"*/* 2>/dev/null || true
rm -rf /usr/local/go && cp -a "$dir" /usr/local/go
echo /usr/local/go/bin/go
