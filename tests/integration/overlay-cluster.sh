#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Containers on an overlay network across nodes (three nodes, etcd, one agent
# each: tests/integration/cluster-lib.sh):
# - a non-attachable overlay network is refused for `run` with Docker's words;
# - a container on node 1 and one on node 3 on an attachable network reach
#   each other by address, both ways; addresses distinct and in the subnet;
#   eth0's MTU is the underlay's minus 50;
# - the vxlan device deleted on node 3, an FDB entry deleted by hand: both
#   back within a resync, and traffic works again;
# - node 1's agent restarted: no warning or error in its log, no duplicate FDB
#   or neighbour entry, traffic still works;
# - a container removed: its FDB and neighbour entries gone on the other nodes;
#   the last one on a node: the network's devices gone from it;
# - 30 containers started at once over the three nodes: no address twice;
# - egress off the overlay leaves through the node, masqueraded; not from an
#   --internal network; the docker CLI's run --network works as shoal's;
# - VXLAN sent to a node from the etcd namespace (not a node): dropped, and
#   the counter in /info moves;
# - a full network refuses the next container, naming the network;
# - shoald --teardown removes the devices, the egress table and the filter.
# Run once more with SHOAL_VXLAN_FILTER=nft: the filter's nftables fallback.
. "$(dirname "$0")/cluster-lib.sh"

for c in ip bridge nft tc nsenter python3; do
	command -v $c >/dev/null 2>&1 || { echo "SKIP: needs $c"; exit $SKIP; }
done

cluster_etcd_start
for i in 1 2 3; do
	cluster_node_start "$i"
	must "loading the test image on node $i" node_shoal "$i" image load -i "$TEST_IMAGE"
done
PFX1="c${TAG:1:5}1"
in_ns() { local i=$1; shift; nsenter --net="/run/netns/$(node_ns "$i")" "$@"; }
inspect() { node_shoal "$1" inspect -f "$3" "$2" 2>/dev/null; } # inspect NODE CTR FORMAT
sandbox() { inspect "$1" "$2" '{{.NetworkSettings.SandboxKey}}'; }
in_ctr() { local i=$1 c=$2; shift 2; nsenter --net="$(sandbox "$i" "$c")" "$@"; }
# get NODE CTR ADDR: an HTTP GET from inside CTR's network namespace
get() { in_ctr "$1" "$2" busybox sh -c "printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 3 $3 80" 2>/dev/null | tail -n 1; }
reaches() { [ "$(get "$1" "$2" "$3")" = "$4" ]; } # reaches NODE CTR ADDR BODY
pings() { in_ctr "$1" "$2" busybox ping -c 1 -W 2 "$3" >/dev/null 2>&1; }
info_json() { curl -s --max-time 10 --unix-socket "$(node_sock "$1")" http://shoal/info; }
dropped() { info_json "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["ShoalOverlay"]["Filter"]["DroppedUnknownSource"])'; }
vxdev() { in_ns "$1" ip -o link show type vxlan | awk -F': ' '{print $2}' | cut -d@ -f1 | grep "^c${TAG:1:5}$1x" | head -n 1; }
# (the listings are read whole first: grep -q would end the pipe early)
# the vxlan device's own entry (MAC -> remote VTEP), not the bridge's learned one
fdb_has() { local f; f=$(in_ns "$1" bridge fdb show dev "$(vxdev "$1")"); grep -qi "^$2 dst " <<<"$f"; } # fdb_has NODE MAC
neigh_has() { local n; n=$(in_ns "$1" ip neigh show dev "$(vxdev "$1")"); grep -q "^$2 " <<<"$n"; }
vx_back() { [ -n "$(vxdev "$1")" ]; }
serve() { # serve NODE NAME BODY: a container with an HTTP server answering BODY
	node_shoal "$1" run -d --name "$2" --network ovl busybox \
		sh -c "mkdir -p /w && echo $3 > /w/index.html && exec httpd -f -p 80 -h /w"
}

log "networks"
must "creating a non-attachable overlay network" node_shoal 1 network create -d overlay closed
out=$(node_shoal 1 run -d --network closed busybox sleep 100 2>&1)
expect_contains "run on a non-attachable network refused as Docker does" \
	"network closed not manually attachable" "$out"
out=$(node_shoal 1 run -d --network nosuchnet busybox sleep 100 2>&1)
expect_contains "run on an unknown network refused" "network nosuchnet not found" "$out"
must "creating the attachable network" node_shoal 1 network create -d overlay --attachable \
	--subnet 10.77.0.0/24 ovl

log "a container on node 1, one on node 3"
must "running a on node 1" serve 1 a hello-from-a
must "running b on node 3" serve 3 b hello-from-b
ip_a=$(inspect 1 a '{{.NetworkSettings.IPAddress}}')
ip_b=$(inspect 3 b '{{.NetworkSettings.IPAddress}}')
log "a=$ip_a b=$ip_b"
[[ "$ip_a" == 10.77.0.* ]] || fail "a's address $ip_a is not in 10.77.0.0/24"
[[ "$ip_b" == 10.77.0.* ]] || fail "b's address $ip_b is not in 10.77.0.0/24"
[ -n "$ip_a" ] && [ "$ip_a" != "$ip_b" ] || fail "a and b have the same address $ip_a"
wait_until 20 reaches 1 a "$ip_b" hello-from-b || fail "a (node 1) does not reach b (node 3) at $ip_b"
wait_until 20 reaches 3 b "$ip_a" hello-from-a || fail "b (node 3) does not reach a (node 1) at $ip_a"
pings 1 a "$ip_b" && ok "a pings b" || fail "a does not ping b"
pings 3 b "$ip_a" && ok "b pings a" || fail "b does not ping a"
under_mtu=$(in_ns 1 ip -o link show eth0 | sed 's/.*mtu \([0-9]*\).*/\1/')
ctr_mtu=$(in_ctr 1 a ip -o link show eth0 | sed 's/.*mtu \([0-9]*\).*/\1/')
expect_eq "a's eth0 MTU is the underlay's minus 50" "$((under_mtu - 50))" "$ctr_mtu"
gw_a=$(inspect 1 a '{{.NetworkSettings.Gateway}}')
gw_b=$(inspect 3 b '{{.NetworkSettings.Gateway}}')
[ -n "$gw_a" ] && [ "$gw_a" != "$gw_b" ] || fail "the nodes' gateway addresses are not distinct ($gw_a, $gw_b)"
routes=$(in_ctr 1 a ip route)
expect_contains "a's default route via node 1's address" "default via $gw_a " "$routes"
kind=$(info_json 1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["ShoalOverlay"]["Filter"]["Kind"])')
expect_eq "the VXLAN source filter's kind" "${SHOAL_VXLAN_FILTER:-bpf}" "$kind"
info=$(node_shoal 1 info 2>/dev/null)
expect_contains "shoal info shows the filter" "VXLAN Filter:" "$info"
expect_contains "shoal info shows the network" "Network: ovl" "$info"

log "drift: the vxlan device deleted on node 3"
vx3=$(vxdev 3)
[ -n "$vx3" ] || fatal "no vxlan device on node 3: $(in_ns 3 ip -o link show)"
must "deleting $vx3" in_ns 3 ip link del "$vx3"
wait_until 20 vx_back 3 && ok "$vx3 made again" || fail "$vx3 not made again"
wait_until 20 reaches 1 a "$ip_b" hello-from-b || fail "a does not reach b after the repair"
wait_until 20 reaches 3 b "$ip_a" hello-from-a || fail "b does not reach a after the repair"

log "drift: an FDB entry deleted by hand on node 1"
mac_b=$(inspect 3 b '{{.NetworkSettings.MacAddress}}')
vx1=$(vxdev 1)
fdb_has 1 "$mac_b" || fail "no FDB entry for b ($mac_b) on node 1: $(in_ns 1 bridge fdb show dev "$vx1")"
must "deleting b's FDB entry" in_ns 1 bridge fdb del "$mac_b" dev "$vx1"
fdb_has 1 "$mac_b" && fail "the FDB entry did not go"
wait_until 20 fdb_has 1 "$mac_b" && ok "b's FDB entry back on node 1" ||
	fail "b's FDB entry not back on node 1"
wait_until 20 reaches 1 a "$ip_b" hello-from-b || fail "a does not reach b after the FDB repair"

log "node 1's agent restarted"
cluster_node_kill9 1
: >"$T/n1/shoald.log"
cluster_node_start 1
sleep $((2 * 5 + 1)) # two resyncs
errs=$(grep -Ei ' (warn|error)' "$T/n1/shoald.log")
expect_eq "no warning or error in node 1's log after the restart" "" "$errs"
vx1=$(vxdev 1)
dups=$(in_ns 1 bridge fdb show dev "$vx1" | sort | uniq -d)
expect_eq "no duplicate FDB entry on node 1" "" "$dups"
dups=$(in_ns 1 ip neigh show dev "$vx1" | sort | uniq -d)
expect_eq "no duplicate neighbour entry on node 1" "" "$dups"
wait_until 20 reaches 1 a "$ip_b" hello-from-b || fail "a does not reach b after the restart"
wait_until 20 reaches 3 b "$ip_a" hello-from-a || fail "b does not reach a after the restart"

log "egress through the node, masqueraded"
health() { in_ctr 1 a busybox sh -c "printf 'GET /health HTTP/1.0\r\n\r\n' | nc -w 3 $ETCD_ADDR 2379" 2>/dev/null; }
expect_contains "a reaches a machine off the overlay (etcd) through node 1" '"health":"true"' "$(health)"

must "creating an internal network" node_shoal 1 network create -d overlay --attachable \
	--internal --subnet 10.78.0.0/24 inner
must "running i on it on node 1" node_shoal 1 run -d --name i --network inner busybox sleep 100000
out=$(in_ctr 1 i busybox sh -c "printf 'GET /health HTTP/1.0\r\n\r\n' | nc -w 2 $ETCD_ADDR 2379" 2>&1)
expect_not_contains "a container on an internal network does not get out" '"health"' "$out"
must "removing i" node_shoal 1 rm -f i

log "the docker CLI: run --network on node 2"
if command -v docker >/dev/null 2>&1; then
	dk2() { timeout 30 env DOCKER_HOST="unix://$(node_sock 2)" docker "$@"; }
	must "docker run --network ovl on node 2" dk2 run -d --name d --network ovl busybox sleep 100000
	ip_d=$(inspect 2 d '{{.NetworkSettings.IPAddress}}')
	[[ "$ip_d" == 10.77.0.* ]] || fail "d's address [$ip_d] is not in 10.77.0.0/24"
	wait_until 20 reaches 2 d "$ip_a" hello-from-a || fail "d (node 2) does not reach a at $ip_a"
	wait_until 20 reaches 2 d "$ip_b" hello-from-b || fail "d (node 2) does not reach b at $ip_b"
	ok "d, run by the docker CLI on node 2, reaches a and b"
	must "docker rm -f d" dk2 rm -f d
else
	log "no docker CLI on this machine: its run --network not checked"
fi

log "a container removed"
must "running c on node 1" serve 1 c hello-from-c
ip_c=$(inspect 1 c '{{.NetworkSettings.IPAddress}}')
mac_c=$(inspect 1 c '{{.NetworkSettings.MacAddress}}')
wait_until 20 reaches 3 b "$ip_c" hello-from-c || fail "b does not reach c at $ip_c"
fdb_has 3 "$mac_c" || fail "no FDB entry for c on node 3"
must "removing c" node_shoal 1 rm -f c
gone() { ! fdb_has "$1" "$2" && ! neigh_has "$1" "$3"; }
wait_until 20 gone 3 "$mac_c" "$ip_c" && ok "c's FDB and neighbour entries gone from node 3" ||
	fail "c's FDB or neighbour entry left on node 3"
no_vx() { [ -z "$(vxdev "$1")" ]; }
wait_until 20 no_vx 2 && ok "node 2, its last container on ovl gone, has no vxlan device" ||
	fail "node 2 kept the network without a container on it"

log "30 containers at once over the three nodes"
pids=()
for k in $(seq 1 30); do
	node_shoal $(((k % 3) + 1)) run -d --name "m$k" --network ovl busybox sleep 100000 \
		>"$T/m$k.out" 2>&1 &
	pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || true; done
started=$(grep -l . "$T"/m*.out | xargs grep -L -i 'error' | wc -l)
expect_eq "30 started" 30 "$started"
addrs=$(for i in 1 2 3; do
	for c in $(node_shoal "$i" ps -q); do inspect "$i" "$c" '{{.NetworkSettings.IPAddress}}'; done
done)
expect_eq "32 addresses in all" 32 "$(echo "$addrs" | grep -c .)"
expect_eq "no address twice" "" "$(echo "$addrs" | sort | uniq -d)"
must "removing them" bash -c "for k in \$(seq 1 30); do
	SHOAL_HOST=unix://$T/n\$(((k % 3) + 1))/shoal.sock $SHOAL_BIN rm -f m\$k >/dev/null; done"

log "VXLAN from a namespace that is not a node"
before=$(dropped 2)
in_ns_etcd() { nsenter --net="/run/netns/$ETCD_NS" "$@"; }
must "sending VXLAN to node 2 from the etcd namespace" in_ns_etcd python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
pkt = bytes([8, 0, 0, 0, 0, 0x10, 0x01, 0]) + bytes(64)
for _ in range(5):
    s.sendto(pkt, (sys.argv[1], 4789))' "$(node_addr 2)"
moved() { [ "$(dropped 2)" -ge $((before + 5)) ]; }
wait_until 20 moved && ok "VXLAN from a non-node dropped and counted" ||
	fail "the drop counter on node 2 did not move: $before -> $(dropped 2)"
log "dropped: $before -> $(dropped 2)"

log "the last containers removed"
must "removing a" node_shoal 1 rm -f a
must "removing b" node_shoal 3 rm -f b
wait_until 20 no_vx 1 || fail "node 1 kept the network's devices"
wait_until 20 no_vx 3 || fail "node 3 kept the network's devices"
# keys_under PREFIX: the store's keys under it
keys_under() {
	nsenter --net="/run/netns/$ETCD_NS" env ETCDCTL_API=3 etcdctl --endpoints "$ETCD_EP" \
		get --prefix --keys-only "$1" | grep .
}
expect_eq "no endpoint record left" "" "$(keys_under /shoal/endpoints/)"
expect_eq "no overlay address held" "" "$(keys_under /shoal/ipam/addr/)"
log "a full network"
must "creating a /29 network" node_shoal 1 network create -d overlay --attachable \
	--subnet 10.79.0.0/29 tiny
# 6 host addresses: the network's gateway and node 2's own address leave 4
for k in 1 2 3 4; do
	must "container t$k on tiny" node_shoal 2 run -d --name "t$k" --network tiny busybox sleep 100000
done
out=$(node_shoal 2 run -d --name t5 --network tiny busybox sleep 100000 2>&1)
expect_contains "the fifth is refused naming the network" "network tiny has no free address left" "$out"
for k in 1 2 3 4 5; do node_shoal 2 rm -f "t$k" >/dev/null 2>&1; done

log "shoald --teardown on node 1"
must "a container on ovl on node 1" node_shoal 1 run -d --name z --network ovl busybox sleep 100000
wait_until 20 vx_back 1 || fail "no vxlan device on node 1 for z"
filters() { in_ns 1 tc filter show dev eth0 ingress 2>/dev/null; }
tables() { in_ns 1 nft list tables 2>/dev/null; }
if [ "${SHOAL_VXLAN_FILTER:-bpf}" = bpf ]; then
	expect_contains "the filter program on node 1's underlay" vxlan_filter "$(filters)"
else
	expect_contains "the filter table on node 1" "${PFX1}_vxlan" "$(tables)"
fi
expect_contains "the egress table on node 1" "${PFX1}_ovl" "$(tables)"
cluster_node_kill9 1
must "shoald --teardown" in_ns 1 "$SHOALD_BIN" --data-dir "$T/n1/data" --run-dir "$T/n1/run" \
	--socket "$(node_sock 1)" --cgroup-parent "$CG_PARENT-n1" \
	--bpffs-dir "/sys/fs/bpf/shoal-it-$TAG-n1" --device-prefix "$PFX1" \
	--advertise-addr "$(node_addr 1)" --teardown
expect_eq "no vxlan device left on node 1" "" "$(vxdev 1)"
expect_eq "no overlay bridge left on node 1" "" "$(in_ns 1 ip -o link show type bridge | grep "${PFX1}n")"
expect_not_contains "no filter program left on node 1" vxlan_filter "$(filters)"
expect_not_contains "no egress table left on node 1" "${PFX1}_ovl" "$(tables)"
expect_not_contains "no filter table left on node 1" "${PFX1}_vxlan" "$(tables)"
finish
