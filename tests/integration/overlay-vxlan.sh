#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# VXLAN overlay networks (overlay/vxlan.h) across three node namespaces on an
# underlay bridge: the same network applied on each, a "container" namespace
# per node on it, ping across the VXLAN; drift repaired by apply (kernel state
# read back with iproute2); a second apply changes nothing; VXLAN from a
# namespace that is not a node dropped and counted, by the eBPF filter and by
# its nftables fallback; removal leaves nothing. Every namespace, pin and
# process is the test's own and goes on exit.
#
# usage: overlay-vxlan.sh <overlay-vxlan-tool binary>
set -uo pipefail
TOOL=${1:?usage: overlay-vxlan.sh <overlay-vxlan-tool binary>}

skip() {
	echo "SKIP: $*"
	exit 77
}
[ "$(id -u)" = 0 ] || skip "needs root"
for c in ip bridge tc nft nsenter; do command -v $c >/dev/null 2>&1 || skip "needs $c"; done
[ -x /bin/busybox ] || skip "needs /bin/busybox (busybox-static) for ping"
grep -q ' /sys/fs/bpf bpf ' /proc/mounts || skip "needs bpffs mounted at /sys/fs/bpf"

N=$(($$ % 100000))
TAG="ovx$N"
PREFIX="ov$N" # device prefix: <= 8 characters
UL="${TAG}ul"
X="${TAG}x"
PIN="/sys/fs/bpf/${TAG}"
NSES=("$UL" "$X")
for i in 1 2 3; do NSES+=("${TAG}n$i" "${TAG}c$i"); done
FAILURES=0

cleanup() {
	for ns in "${NSES[@]}"; do ip netns del "$ns" 2>/dev/null; done
	# pins: one directory per node under the test's own bpffs directory
	rm -rf "$PIN" 2>/dev/null
	return 0
}
trap cleanup EXIT INT TERM

log() { printf '%s %s\n' "$(date +%T.%3N)" "$*"; }
fail() {
	log "FAIL: $*"
	FAILURES=$((FAILURES + 1))
}
ok() { log "ok: $*"; }
fatal() {
	fail "$*"
	exit 1
}
expect_eq() { if [ "$2" == "$3" ]; then ok "$1"; else fail "$1: expected [$2], got [$3]"; fi; }
expect_contains() { if [[ "$3" == *"$2"* ]]; then ok "$1"; else fail "$1: [$2] not in [$3]"; fi; }
expect_not_contains() { if [[ "$3" != *"$2"* ]]; then ok "$1"; else fail "$1: [$2] in [$3]"; fi; }

in_ns() { # in_ns NS CMD...: without remounting /sys (the pins live there)
	local ns=$1
	shift
	nsenter --net="/run/netns/$ns" "$@"
}
node() { echo "${TAG}n$1"; }
ctr() { echo "${TAG}c$1"; }
vtep() { echo "192.168.77.$1"; }
ctr_ip() { echo "10.30.0.1$1"; }
gw_ip() { echo "10.30.0.$1"; }
mac_of() { # 02:42 and the address, as the bridge network and the tool give them
	local IFS=.
	set -- $1
	printf '02:42:%02x:%02x:%02x:%02x' "$1" "$2" "$3" "$4"
}

read -r BR VX < <("$TOOL" names "$PREFIX" net-blue) || fatal "device names"
[ ${#BR} -le 15 ] && [ ${#VX} -le 15 ] || fatal "device names too long: $BR $VX"

net_args() { # net_args I: the network as node I should have it
	local i=$1 j
	printf -- '--id net-blue --prefix %s --vni 4242 --underlay eth0 --local %s --gw %s/24' \
		"$PREFIX" "$(vtep "$i")" "$(gw_ip "$i")"
	for j in 1 2 3; do
		[ "$j" = "$i" ] && continue
		printf -- ' --remote %s,%s --remote %s,%s' "$(ctr_ip "$j")" "$(vtep "$j")" \
			"$(gw_ip "$j")" "$(vtep "$j")"
	done
}
apply() { # apply I [extra options]: prints the tool's stats line
	local i=$1
	shift
	# shellcheck disable=SC2046
	in_ns "$(node "$i")" "$TOOL" apply $(net_args "$i") "$@" 2>&1
}
apply_ok() { # apply_ok I WHAT: an apply that must succeed and change something
	local out
	out=$(apply "$1")
	if [[ "$out" == applied* ]] && [[ "$out" != *"ops=0 "* ]]; then
		ok "$2: $out"
	else
		fail "$2: $out"
	fi
}
no_op() { # no_op I WHAT
	expect_contains "$2" "applied ops=0 " "$(apply "$1")"
}
ping_ok() { # ping_ok NS ADDR WHAT
	if in_ns "$1" /bin/busybox ping -c 3 -W 2 "$2" >/dev/null 2>&1; then ok "$3"; else fail "$3"; fi
}
fdb_of() { in_ns "$(node "$1")" bridge fdb show dev "$VX" | grep ' self' | sort; }
neigh_of() { in_ns "$(node "$1")" ip neigh show dev "$VX" | sort; }
rx_of() { ip netns exec "$(node "$1")" cat "/sys/class/net/$VX/statistics/rx_packets"; }
filter() { # filter CMD I [options]
	local cmd=$1 i=$2
	shift 2
	in_ns "$(node "$i")" "$TOOL" "filter-$cmd" --underlay eth0 --prefix "$PREFIX" --pin-dir "$PIN/n$i" "$@" 2>&1
}
dropped_of() { filter stats "$@" | sed -n 's/.* dropped=\([0-9]*\).*/\1/p'; }

# ---- topology: an underlay bridge; three nodes, an intruder; a container per node ----
for ns in "${NSES[@]}"; do
	ip netns add "$ns" || fatal "cannot create network namespace $ns"
	ip -n "$ns" link set lo up
done
ip -n "$UL" link add br0 type bridge && ip -n "$UL" link set br0 up || fatal "underlay bridge"
for i in 1 2 3 9; do
	ns=$([ $i = 9 ] && echo "$X" || node $i)
	ip -n "$UL" link add "u$i" type veth peer name eth0 netns "$ns" || fatal "underlay veth $i"
	ip -n "$UL" link set "u$i" master br0 up
	ip -n "$ns" addr add "$(vtep $i)/24" dev eth0
	ip -n "$ns" link set eth0 up
done
for i in 1 2 3; do
	ip -n "$(node $i)" link add "c${i}v" mtu 1450 type veth peer name eth0 netns "$(ctr $i)" ||
		fatal "container veth $i"
	ip -n "$(ctr $i)" link set eth0 address "$(mac_of "$(ctr_ip $i)")" mtu 1450 up
	ip -n "$(ctr $i)" addr add "$(ctr_ip $i)/24" dev eth0
done

# ---- build: the same network on each node ----
for i in 1 2 3; do
	apply_ok $i "first apply on node $i"
	ip -n "$(node $i)" link set "c${i}v" master "$BR" up || fatal "plugging container $i"
done
for i in 1 2 3; do no_op $i "second apply on node $i changes nothing"; done
expect_contains "apply reports the network's MTU for the endpoints' veths" "mtu=1450" "$(apply 1)"

link=$(in_ns "$(node 1)" ip -d link show "$VX")
expect_contains "vxlan attributes" "vxlan id 4242 local $(vtep 1) dev eth0" "$link"
expect_contains "vxlan port" "dstport 4789" "$link"
expect_contains "vxlan learning off" "nolearning" "$link"
expect_contains "vxlan ARP proxy" "proxy" "$link"
expect_contains "vxlan MTU = underlay - 50" "mtu 1450" "$link"
expect_contains "vxlan in the bridge" "master $BR" "$link"
expect_contains "bridge MTU" "mtu 1450" "$(in_ns "$(node 1)" ip link show "$BR")"
expect_contains "bridge MAC from the gateway" "$(mac_of "$(gw_ip 1)")" "$(in_ns "$(node 1)" ip link show "$BR")"
expect_eq "bridge address" "$(gw_ip 1)/24" "$(in_ns "$(node 1)" ip -4 -o addr show dev "$BR" | awk '{print $4}')"
want_fdb=$(for j in 2 3; do
	for a in "$(ctr_ip $j)" "$(gw_ip $j)"; do echo "$(mac_of "$a") dst $(vtep $j) self permanent"; done
done | sort)
expect_eq "FDB: one static entry per remote endpoint, nothing else" "$want_fdb" "$(fdb_of 1)"
want_neigh=$(for j in 2 3; do
	for a in "$(ctr_ip $j)" "$(gw_ip $j)"; do echo "$a lladdr $(mac_of "$a") PERMANENT "; done
done | sort)
expect_eq "neighbours: one permanent entry per remote endpoint" "$want_neigh" "$(neigh_of 1)"

ping_ok "$(ctr 1)" "$(ctr_ip 2)" "container 1 -> container 2 across the VXLAN"
ping_ok "$(ctr 1)" "$(ctr_ip 3)" "container 1 -> container 3"
ping_ok "$(ctr 3)" "$(ctr_ip 2)" "container 3 -> container 2"
ping_ok "$(node 1)" "$(ctr_ip 2)" "node 1's gateway address -> container 2"

# ---- drift, repaired by apply on node 1 ----
in_ns "$(node 1)" ip link del "$VX"
apply_ok 1 "vxlan device deleted: apply"
expect_contains "vxlan device recreated" "vxlan id 4242 local $(vtep 1)" "$(in_ns "$(node 1)" ip -d link show "$VX" 2>&1)"
expect_eq "FDB back after the recreate" "$want_fdb" "$(fdb_of 1)"
expect_eq "neighbours back after the recreate" "$want_neigh" "$(neigh_of 1)"
ping_ok "$(ctr 1)" "$(ctr_ip 2)" "container 1 -> container 2 after the recreate"

in_ns "$(node 1)" ip link set "$VX" mtu 1400
apply_ok 1 "MTU changed by hand: apply"
expect_contains "MTU back to 1450" "mtu 1450" "$(in_ns "$(node 1)" ip link show "$VX")"

in_ns "$(node 1)" bridge fdb add 02:42:0a:1e:00:63 dev "$VX" dst 192.168.77.50 self permanent
in_ns "$(node 1)" bridge fdb append 00:00:00:00:00:00 dev "$VX" dst 192.168.77.50 self permanent
in_ns "$(node 1)" ip neigh add 10.30.0.99 lladdr 02:42:0a:1e:00:63 dev "$VX" nud permanent
apply_ok 1 "stray FDB, default FDB and neighbour entries: apply"
expect_eq "stray FDB entries gone" "$want_fdb" "$(fdb_of 1)"
expect_eq "stray neighbour gone" "$want_neigh" "$(neigh_of 1)"

in_ns "$(node 1)" bridge fdb del "$(mac_of "$(ctr_ip 2)")" dev "$VX" dst "$(vtep 2)" self
in_ns "$(node 1)" ip neigh del "$(ctr_ip 3)" dev "$VX"
in_ns "$(node 1)" bridge fdb replace "$(mac_of "$(ctr_ip 3)")" dev "$VX" dst 192.168.77.77 self permanent
apply_ok 1 "FDB entry removed, one pointing elsewhere, a neighbour removed: apply"
expect_eq "FDB entries back" "$want_fdb" "$(fdb_of 1)"
expect_eq "neighbour back" "$want_neigh" "$(neigh_of 1)"
ping_ok "$(ctr 1)" "$(ctr_ip 2)" "container 1 -> container 2 after the FDB repair"
ping_ok "$(ctr 1)" "$(ctr_ip 3)" "container 1 -> container 3 after the FDB repair"

in_ns "$(node 1)" ip link del "$VX"
in_ns "$(node 1)" ip link add "$VX" type vxlan id 999 local "$(vtep 1)" dstport 4789 dev eth0
apply_ok 1 "vxlan device with another VNI under our name: apply"
expect_contains "VNI back" "vxlan id 4242 " "$(in_ns "$(node 1)" ip -d link show "$VX")"
in_ns "$(node 1)" ip link del "$VX"
in_ns "$(node 1)" ip link add "$VX" type vxlan id 4242 local "$(vtep 1)" dstport 8472 dev eth0 learning
apply_ok 1 "vxlan device with another port and learning on: apply"
link=$(in_ns "$(node 1)" ip -d link show "$VX")
expect_contains "port back" "dstport 4789 " "$link"
expect_contains "learning off again" "nolearning" "$link"
ping_ok "$(ctr 1)" "$(ctr_ip 2)" "container 1 -> container 2 after the VNI and port repairs"

# A crash half way through a first apply: the bridge made, nothing else. And
# the address on the bridge changed by hand.
in_ns "$(node 1)" ip link del "$VX"
in_ns "$(node 1)" ip addr flush dev "$BR"
in_ns "$(node 1)" ip addr add 10.30.0.200/16 dev "$BR"
out=$(apply 1)
expect_contains "apply after a half-done first apply" "applied " "$out"
expect_not_contains "no \"File exists\"" "exists" "$out"
expect_eq "bridge address repaired" "$(gw_ip 1)/24" "$(in_ns "$(node 1)" ip -4 -o addr show dev "$BR" | awk '{print $4}')"
expect_eq "FDB complete after the half-done apply" "$want_fdb" "$(fdb_of 1)"

in_ns "$(node 1)" ip link del "$BR"
apply_ok 1 "bridge deleted: apply"
expect_contains "vxlan back in the new bridge" "master $BR" "$(in_ns "$(node 1)" ip link show "$VX")"
in_ns "$(node 1)" ip link set c1v master "$BR" # endpoints are the caller's to re-plug
ping_ok "$(ctr 1)" "$(ctr_ip 3)" "container 1 -> container 3 after the bridge was recreated"
no_op 1 "after all the repairs, apply changes nothing"

out=$(apply 1 --mtu 1451)
expect_contains "an MTU the underlay cannot carry is refused" "at most 1450" "$out"
expect_contains "and nothing changed" "mtu 1450" "$(in_ns "$(node 1)" ip link show "$VX")"
out=$(apply 1 --remote "$(ctr_ip 2),192.168.77.99")
expect_contains "one endpoint behind two VTEPs is refused" "given twice" "$out"

# ---- the VXLAN source filter ----
# The intruder: a VTEP that is no node, with the network's VNI, sending to
# container 1 (and 2) through node 1 (2).
in_ns "$X" ip link add vx0 type vxlan id 4242 local "$(vtep 9)" dstport 4789 dev eth0 nolearning
in_ns "$X" ip link set vx0 up
in_ns "$X" ip addr add 10.30.0.99/24 dev vx0
for i in 1 2; do
	in_ns "$X" bridge fdb add "$(mac_of "$(ctr_ip $i)")" dev vx0 dst "$(vtep $i)" self permanent
	in_ns "$X" ip neigh add "$(ctr_ip $i)" lladdr "$(mac_of "$(ctr_ip $i)")" dev vx0 nud permanent
done
intrude() { in_ns "$X" /bin/busybox ping -c 3 -W 1 "$(ctr_ip "$1")" >/dev/null 2>&1; }

rx0=$(rx_of 1)
intrude 1
rx1=$(rx_of 1)
if [ $((rx1 - rx0)) -ge 3 ]; then
	ok "without a filter, the intruder's VXLAN reaches node 1 ($((rx1 - rx0)) packets)"
else
	fail "the intruder's VXLAN should reach an unfiltered node (rx $rx0 -> $rx1)"
fi

out=$(filter open 1 --allow "$(vtep 2),$(vtep 3)")
expect_eq "filter on node 1 is the eBPF program" "kind=bpf reason=" "$out"
expect_contains "tc program on the underlay's ingress" "vxlan_filter" "$(in_ns "$(node 1)" tc filter show dev eth0 ingress)"
rx0=$(rx_of 1)
intrude 1
rx1=$(rx_of 1)
expect_eq "with the filter, none of the intruder's VXLAN reaches node 1's vxlan device" 0 $((rx1 - rx0))
d=$(dropped_of 1)
if [ "${d:-0}" -ge 3 ]; then ok "dropped and counted ($d)"; else fail "drop counter: [$d], want >= 3"; fi
ping_ok "$(ctr 1)" "$(ctr_ip 2)" "allowed nodes still work through the filter"
ping_ok "$(ctr 3)" "$(ctr_ip 1)" "node 3 -> node 1 through the filter"
acc=$(filter stats 1 | sed -n 's/.* accepted=\([0-9]*\).*/\1/p')
if [ "${acc:-0}" -gt 0 ]; then ok "accepted VXLAN counted ($acc)"; else fail "accepted count: [$acc]"; fi
ping_ok "$X" "$(vtep 1)" "everything but VXLAN passes the filter (intruder pings node 1's underlay address)"

# A restart: opened again, the pinned set and counters are still there.
out=$(filter open 1)
expect_eq "re-opened filter is the eBPF program" "kind=bpf reason=" "$out"
d2=$(dropped_of 1)
if [ "${d2:-0}" -ge "${d:-1}" ]; then ok "drop count kept across a re-open ($d2)"; else fail "drop count after re-open: [$d2] < [$d]"; fi
rx0=$(rx_of 1)
intrude 1
expect_eq "allowed set kept across a re-open" 0 $(($(rx_of 1) - rx0))
filter open 1 --allow "$(vtep 2),$(vtep 3),$(vtep 9)" >/dev/null
rx0=$(rx_of 1)
intrude 1
rx1=$(rx_of 1)
if [ $((rx1 - rx0)) -ge 3 ]; then ok "a VTEP added to the set is let in"; else fail "added VTEP still dropped"; fi
filter open 1 --allow "$(vtep 2),$(vtep 3)" >/dev/null

# The fallback, forced: nftables on node 2.
out=$(filter open 2 --nft --allow "$(vtep 1),$(vtep 3)")
expect_contains "forced fallback is nftables" "kind=nft reason=turned off" "$out"
expect_contains "nftables table on node 2" "table netdev ${PREFIX}_vxlan" "$(in_ns "$(node 2)" nft list tables)"
expect_eq "no tc program with the fallback" "" "$(in_ns "$(node 2)" tc filter show dev eth0 ingress)"
rx0=$(rx_of 2)
intrude 2
rx1=$(rx_of 2)
expect_eq "fallback: none of the intruder's VXLAN reaches node 2" 0 $((rx1 - rx0))
d=$(dropped_of 2 --nft)
if [ "${d:-0}" -ge 3 ]; then ok "fallback: dropped and counted ($d)"; else fail "fallback drop counter: [$d]"; fi
ping_ok "$(ctr 2)" "$(ctr_ip 1)" "fallback: allowed nodes still work"
ping_ok "$(ctr 3)" "$(ctr_ip 2)" "fallback: node 3 -> node 2"
out=$(filter open 2 --allow "$(vtep 1),$(vtep 3)")
expect_eq "back from the fallback to eBPF" "kind=bpf reason=" "$out"
expect_not_contains "fallback table removed" "${PREFIX}_vxlan" "$(in_ns "$(node 2)" nft list tables)"

# ---- sweep and removal ----
read -r BR2 VX2 < <("$TOOL" names "$PREFIX" net-gone)
in_ns "$(node 1)" "$TOOL" apply --id net-gone --prefix "$PREFIX" --vni 4243 --underlay eth0 \
	--local "$(vtep 1)" --gw 10.31.0.1/24 >/dev/null || fail "second network on node 1"
expect_eq "sweep removes a network not kept" "removed=2" "$(in_ns "$(node 1)" "$TOOL" sweep "$PREFIX" "$BR" "$VX" 2>&1)"
expect_eq "the swept network's devices are gone" "" "$(in_ns "$(node 1)" ip -o link show | grep -e "$BR2" -e "$VX2")"
no_op 1 "the kept network is untouched by the sweep"

for i in 1 2 3; do
	in_ns "$(node $i)" "$TOOL" remove "$BR" "$VX" || fail "remove on node $i"
	filter remove $i >/dev/null || fail "filter remove on node $i"
	in_ns "$(node $i)" ip link del "c${i}v" 2>/dev/null
done
for i in 1 2 3; do
	expect_eq "node $i: no device of ours left" "" "$(in_ns "$(node $i)" ip -o link show | grep "$PREFIX")"
	expect_eq "node $i: no tc filter left" "" "$(in_ns "$(node $i)" tc filter show dev eth0 ingress)"
	expect_eq "node $i: no nftables table left" "" "$(in_ns "$(node $i)" nft list tables)"
	expect_eq "node $i: no pins left" "" "$(ls "$PIN/n$i" 2>/dev/null)"
done
expect_eq "removing again is not an error" "" "$(in_ns "$(node 1)" "$TOOL" remove "$BR" "$VX" 2>&1)"

if [ "$FAILURES" -gt 0 ]; then
	log "$FAILURES check(s) failed"
	exit 1
fi
log "all checks passed"
