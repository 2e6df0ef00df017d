#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# 200 containers started at once: every one starts, runs and is cleaned up.
. "$(dirname "$0")/lib.sh"
node_start
N=${N:-200}
log "starting $N containers concurrently"
pids=()
for i in $(seq 1 "$N"); do
	net=none
	[ $((i % 4)) -eq 0 ] && net=bridge
	shoal run -d --name "c$i" --network $net busybox sh -c "echo hello-$i; sleep 30" >"$T/out.$i" 2>&1 &
	pids+=($!)
done
failed=0
for p in "${pids[@]}"; do wait "$p" || failed=$((failed + 1)); done
if [ "$failed" -ne 0 ]; then
	cat "$T"/out.* | grep -v '^[0-9a-f]\{64\}$' | sort | uniq -c | head
	fatal "all $N starts succeeded: $failed failed"
fi
ok "all $N starts succeeded"
expect_eq "all running" "$N" "$(shoal ps -q | wc -l)"
sleep 0.5
bad=0
for i in $(seq 1 "$N"); do
	[ "$(shoal logs "c$i" 2>/dev/null)" == "hello-$i" ] || bad=$((bad + 1))
done
expect_eq "every container logged its own line" 0 "$bad"
ips=$(for i in $(seq 4 4 "$N"); do shoal inspect -f '{{.NetworkSettings.IPAddress}}' "c$i"; done | sort | uniq -d | wc -l)
expect_eq "bridge addresses unique" 0 "$ips"
log "removing all"
shoal rm -f $(shoal ps -aq) >/dev/null
expect_eq "none left" 0 "$(shoal ps -aq | wc -l)"
sleep 0.5
expect_eq "no container processes left" "" "$(cg_pids)"
eventually 10 no_veths && ok "no veths left" || fail "veths left: $(in_node ip -o link show | grep -c "${TAG}v")"
left=$(ls "$T/run/netns" 2>/dev/null | wc -l)
expect_eq "no netns left" 0 "$left"
finish
