#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Runs overlay-bridge (the C test) inside a network namespace of its own, so the
# host's links, routes and nftables are never touched; removes it on exit.
set -eu
BIN=${1:?usage: overlay-bridge.sh <overlay-bridge binary>}

skip() { echo "SKIP: $*"; exit 77; }
[ "$(id -u)" = 0 ] || skip "needs root"
for c in ip nft; do command -v $c >/dev/null 2>&1 || skip "needs $c"; done
[ -x /bin/busybox ] || skip "needs /bin/busybox (busybox-static) for ping"

NS=shoalnet-test-$$
TMP=$(mktemp -d /tmp/shoalnet-test-XXXXXX)
cleanup() {
	ip netns del "$NS" 2>/dev/null || true
	# netns files are bind-mounted only inside the test's mount namespace;
	# on the host they are plain files.
	rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

ip netns add "$NS" || skip "cannot create a network namespace"
ip netns exec "$NS" nft list ruleset >/dev/null 2>&1 || skip "nftables not usable"
ip netns exec "$NS" ip link add shoalnet-probe type bridge 2>/dev/null || skip "no bridge support"
ip netns exec "$NS" ip link del shoalnet-probe

ip netns exec "$NS" "$BIN" "$TMP"
