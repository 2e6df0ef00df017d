#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs the Debian packages shoal needs to build, test and demo.
# A fast no-op when everything is already there.
set -euo pipefail

pkgs=(
	build-essential cmake pkg-config clang llvm bpftool
	libevent-dev libnl-3-dev libnl-route-3-dev libmnl-dev libbpf-dev
	libjansson-dev libsqlite3-dev libarchive-dev libssl-dev libseccomp-dev
	libcap-dev libcmocka-dev libclang-rt-14-dev libnftables-dev libhttp-parser-dev libyaml-dev
	busybox-static iproute2 nftables iptables haproxy runc util-linux procps curl python3
	etcd-server etcd-client libcurl4-openssl-dev docker-registry skopeo apache2-utils
)

# Debian's docker client (docker.io, 20.10, API 1.41) for the tests, beside
# whatever docker the machine has: only its client binary, taken out of the
# package (installing docker.io would bring and start its daemon).
DOCKER_OLD_DIR=/usr/local/libexec/shoal
DOCKER_OLD=$DOCKER_OLD_DIR/docker-20.10

missing=()
for p in "${pkgs[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done
[ ${#missing[@]} -eq 0 ] && [ -x "$DOCKER_OLD" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing: ${missing[*]} ${DOCKER_OLD}; run as root (or: sudo $0)" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
if [ ${#missing[@]} -gt 0 ]; then
	echo "deps: installing ${missing[*]}"
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if [ ! -x "$DOCKER_OLD" ]; then
	echo "deps: Debian's docker client into $DOCKER_OLD"
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	(cd "$tmp" && apt-get download -qq docker.io >/dev/null 2>&1) &&
		dpkg-deb -x "$tmp"/docker.io_*.deb "$tmp/x" &&
		install -D -m 0755 "$tmp/x/usr/bin/docker" "$DOCKER_OLD" ||
		echo "deps: Debian's docker client not available; its tests will say so" >&2
fi
