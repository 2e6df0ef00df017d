#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Several nodes on one machine, for cluster tests: an underlay bridge in a
# namespace of its own, one namespace per node with a veth into it, etcd in
# another namespace on the underlay, one shoald per node with its own roots,
# all on the etcd store. Everything is torn down on exit, whatever happens.
# Source it (after lib.sh's variables exist), then cluster_etcd_start and
# cluster_node_start I [shoald flags...].
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ETCD_BIN=$(command -v etcd) || fatal "etcd is missing (etcd-server; scripts/deps.sh installs it)"
UNDERLAY_NS="shoal-it-$TAG-u"
ETCD_NS="shoal-it-$TAG-e"
UNDERLAY_NET=10.250.0
ETCD_ADDR=$UNDERLAY_NET.2
ETCD_EP="http://$ETCD_ADDR:2379"
ETCD_PID=""
declare -A NODE_PID=() NODE_NS=()

node_ns() { echo "shoal-it-$TAG-n$1"; }
node_addr() { echo "$UNDERLAY_NET.$((10 + $1))"; }
node_sock() { echo "$T/n$1/shoal.sock"; }
# on_node I CMD...: the shoal CLI (or anything) against node I's agent
on_node() {
	local i=$1
	shift
	SHOAL_HOST="unix://$(node_sock "$i")" "$@"
}
node_shoal() {
	local i=$1
	shift
	SHOAL_HOST="unix://$(node_sock "$i")" "$SHOAL_BIN" "$@"
}
node_api() { # node_api I METHOD PATH [BODY]
	local i=$1 sock
	sock=$(node_sock "$i")
	shift
	SOCK=$sock api "$@"
}

# A namespace with a veth into the underlay bridge and ADDR on it.
underlay_attach() { # underlay_attach NS IFNAME ADDR
	local ns=$1 ifn=$2 addr=$3
	must "making $ns" ip netns add "$ns"
	must "its lo" ip -n "$ns" link set lo up
	must "a veth from $ns" ip -n "$ns" link add eth0 type veth peer name "$ifn" netns "$UNDERLAY_NS"
	must "its address" ip -n "$ns" addr add "$addr/24" dev eth0
	must "up" ip -n "$ns" link set eth0 up
	must "on the bridge" ip -n "$UNDERLAY_NS" link set "$ifn" master br0 up
}

cluster_underlay() {
	must "making the underlay" ip netns add "$UNDERLAY_NS"
	must "its bridge" ip -n "$UNDERLAY_NS" link add br0 type bridge
	must "up" ip -n "$UNDERLAY_NS" link set br0 up
}

cluster_etcd_start() {
	[ -n "$(ip netns list | grep -w "$UNDERLAY_NS")" ] || cluster_underlay
	[ -n "$(ip netns list | grep -w "$ETCD_NS")" ] || underlay_attach "$ETCD_NS" e0 "$ETCD_ADDR"
	mkdir -p "$T/etcd"
	nsenter --net="/run/netns/$ETCD_NS" "$ETCD_BIN" --name it --data-dir "$T/etcd/data" \
		--listen-client-urls "$ETCD_EP" --advertise-client-urls "$ETCD_EP" \
		--listen-peer-urls "http://$ETCD_ADDR:2380" \
		--initial-advertise-peer-urls "http://$ETCD_ADDR:2380" \
		--initial-cluster "it=http://$ETCD_ADDR:2380" >>"$T/etcd/etcd.log" 2>&1 &
	ETCD_PID=$!
	for _ in $(seq 1 100); do
		nsenter --net="/run/netns/$ETCD_NS" curl -s --max-time 1 "$ETCD_EP/health" 2>/dev/null |
			grep -q '"health":"true"' && return 0
		kill -0 "$ETCD_PID" 2>/dev/null || break
		sleep 0.1
	done
	tail -n 20 "$T/etcd/etcd.log"
	fatal "etcd did not come up"
}

cluster_etcd_kill() {
	[ -n "$ETCD_PID" ] && kill -9 "$ETCD_PID" 2>/dev/null
	wait "$ETCD_PID" 2>/dev/null
	ETCD_PID=""
}

# cluster_node_ns I: node I's namespace on the underlay (made once)
cluster_node_ns() {
	local i=$1 ns
	ns=$(node_ns "$i")
	[ -z "${NODE_NS[$i]:-}" ] && {
		[ -n "$(ip netns list | grep -w "$UNDERLAY_NS")" ] || cluster_underlay
		underlay_attach "$ns" "n$i" "$(node_addr "$i")"
		NODE_NS[$i]=$ns
	}
	mkdir -p "$T/n$i"
}

# cluster_shoald I [flags] &: node I's agent (its namespace made first), run
# in the background: the subshell execs nsenter, which execs shoald, so $! is
# shoald's own pid (kill -9 must reach it)
cluster_shoald() {
	local i=$1
	shift
	exec nsenter --net="/run/netns/$(node_ns "$i")" "$SHOALD_BIN" --data-dir "$T/n$i/data" \
		--run-dir "$T/n$i/run" --socket "$(node_sock "$i")" --cgroup-parent "$CG_PARENT-n$i" \
		--bpffs-dir "/sys/fs/bpf/shoal-it-$TAG-n$i" --device-prefix "c${TAG:1:5}$i" \
		--log-level "${AGENT_LOG_LEVEL:-info}" --store etcd --store-endpoints "$ETCD_EP" \
		--advertise-addr "$(node_addr "$i")" "$@"
}

# cluster_node_start I [flags]: node I's namespace (made once) and agent
cluster_node_start() {
	local i=$1
	shift
	cluster_node_ns "$i"
	cluster_shoald "$i" "$@" >>"$T/n$i/shoald.log" 2>&1 &
	NODE_PID[$i]=$!
	for _ in $(seq 1 200); do
		if curl -s --max-time 1 --unix-socket "$(node_sock "$i")" http://shoal/_ping >/dev/null 2>&1; then
			return 0
		fi
		kill -0 "${NODE_PID[$i]}" 2>/dev/null || break
		sleep 0.05
	done
	tail -n 30 "$T/n$i/shoald.log"
	fatal "node $i's shoald did not come up"
}

cluster_node_kill9() {
	local i=$1
	[ -n "${NODE_PID[$i]:-}" ] && kill -9 "${NODE_PID[$i]}" 2>/dev/null
	wait "${NODE_PID[$i]:-}" 2>/dev/null
	NODE_PID[$i]=""
}

# Every process in node I's cgroup trees.
cluster_cg_pids() {
	local d
	for d in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do
		[ -d "$d${CG_PARENT#/}-n$1" ] || continue
		find "$d${CG_PARENT#/}-n$1" -name cgroup.procs -exec cat {} + 2>/dev/null
	done | sort -u
}

# Node I's containers and monitors gone, as if its machine died.
cluster_node_wipe_procs() {
	local i=$1 p
	for p in $(pgrep -f shoal-monitor 2>/dev/null); do
		tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q "$T/n$i/" && kill -9 "$p"
	done
	for _ in 1 2 3 4 5; do
		local pids
		pids=$(cluster_cg_pids "$i")
		[ -z "$pids" ] && break
		kill -9 $pids 2>/dev/null
		sleep 0.1
	done
}

cleanup() {
	local rc=$?
	set +e
	local i d f
	for i in "${!NODE_PID[@]}"; do cluster_node_kill9 "$i"; done
	cluster_etcd_kill
	for i in "${!NODE_NS[@]}"; do
		cluster_node_wipe_procs "$i"
		for d in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do
			[ -d "$d${CG_PARENT#/}-n$i" ] || continue
			find "$d${CG_PARENT#/}-n$i" -depth -type d -exec rmdir {} \; 2>/dev/null
		done
		if [ -d "$T/n$i/run/netns" ]; then
			for f in "$T/n$i"/run/netns/*; do [ -e "$f" ] && umount -l "$f" 2>/dev/null; done
		fi
		rm -rf "/sys/fs/bpf/shoal-it-$TAG-n$i" 2>/dev/null
		ip netns del "${NODE_NS[$i]}" 2>/dev/null
	done
	grep " $T" /proc/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l 2>/dev/null
	ip netns del "$ETCD_NS" 2>/dev/null
	ip netns del "$UNDERLAY_NS" 2>/dev/null
	if [ "$FAILURES" -ne 0 ] || [ "$rc" -ne 0 ]; then
		for i in "${!NODE_NS[@]}"; do
			echo "---- node $i's shoald log ----"
			tail -n 40 "$T/n$i/shoald.log" 2>/dev/null
		done
		echo "---- etcd log ----"
		tail -n 10 "$T/etcd/etcd.log" 2>/dev/null
	fi
	rm -rf "$T"
	if [ "$FAILURES" -ne 0 ]; then
		echo "$FAILURES check(s) failed"
		exit 1
	fi
	exit "$rc"
}
trap cleanup EXIT
