#!/usr/bin/env bash
# install-deps.sh installs the Debian packages kubewright's build, tests and lab
# need on the operator's (or CI's) machine. Idempotent: apt only runs when a
# package is missing, so a warm machine spends no time here.
set -euo pipefail
pkgs=(make git openssh-server openssh-client debootstrap systemd-container iproute2 iptables keepalived haproxy
      ca-certificates tar gzip containerd sudo)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "install-deps: missing packages: ${missing[*]}; run as root: apt-get install -y ${missing[*]}" >&2
		exit 1
	fi
	echo "install-deps: installing ${missing[*]}" >&2
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# The Debian sshd service is not needed (tests start their own sshd); keep it off
# so it does not hold port 22 in CI.
# keepalived and haproxy are installed only so tests can validate rendered configs
# with the real programs (keepalived -t, haproxy -c), containerd so the image test
# can import the built images into a private containerd it starts; stop the Debian services if
# an init system started them, so they hold no ports or addresses on this host.
if [ -d /run/systemd/system ]; then
	systemctl disable --now keepalived haproxy containerd >/dev/null 2>&1 || true
fi
