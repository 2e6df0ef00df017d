#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `shoal bench lb` against a test agent, sized to prove the path, not to
# measure: every peer (direct, shoal, shoal with XDP, iptables, nftables,
# haproxy, shoal with services loaded) gives a figure, the JSON on stdout
# parses alone (nothing else printed there), its services and containers are
# gone afterwards; --help names the command.
. "$(dirname "$0")/lib.sh"
node_start
out=$(shoal bench lb --help 2>&1)
expect_contains "--help names the command" "Usage:  shoal bench lb [OPTIONS]" "$out"
out=$(shoal bench lb --rounds 0 2>&1)
expect_contains "a bad --rounds refused" "out of range" "$out"
log "one short round of every peer"
shoal bench lb --json --rounds 1 --duration 1 --services 10 --loaded-backends 20 \
	--connections 4 >"$T/lb.json" 2>"$T/lb.err"
expect_eq "bench lb: exit 0" 0 $? || sed 's/^/  /' "$T/lb.err"
res=$(python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
r = j["ratio_to_direct"]
peers = ["shoal", "shoal_xdp", "iptables", "nftables", "haproxy", "shoal_loaded"]
have = [p for p in peers if p in r and r[p]["keepalive"] > 0 and r[p]["newconn"] > 0]
missing = sorted(set(peers) - set(have) - set(j["skipped"]))
print(j["suite"], j["schema_version"] > 0, "missing:" + ",".join(missing))' "$T/lb.json" 2>&1)
expect_eq "the JSON alone on stdout, a ratio for every peer not skipped" "lb True missing:" "$res"
expect_eq "no service left" "" "$(shoal service ls -q)"
expect_eq "no container left" "" "$(shoal ps -aq)"
finish
