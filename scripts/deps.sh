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

missing=()
for p in "${pkgs[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing packages: ${missing[*]}; run as root (or: sudo $0)" >&2
	exit 1
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
