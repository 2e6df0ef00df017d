#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Shared harness for agent integration tests: a private shoald in a fresh
# network namespace with its own data, run, cgroup and device roots, torn down
# on exit whatever happens. Source it, then call node_start.
#
# Environment: SHOAL_BUILD (build dir with shoald, shoal, images/busybox.tar).
set -uo pipefail

SKIP=77
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root"; exit $SKIP; }
: "${SHOAL_BUILD:?SHOAL_BUILD must point at the build directory}"
SHOALD_BIN="$SHOAL_BUILD/bin/shoald"
SHOAL_BIN="$SHOAL_BUILD/bin/shoal"
TEST_IMAGE="$SHOAL_BUILD/images/busybox.tar"
for f in "$SHOALD_BIN" "$SHOAL_BIN" "$TEST_IMAGE"; do
	[ -e "$f" ] || { echo "FAIL: $f is missing (build first)"; exit 1; }
done

TAG="t$(printf '%05d' $(($$ % 100000)))"
T=$(mktemp -d "/tmp/shoal-it-$TAG.XXXXXX")
NETNS="shoal-it-$TAG"
CG_PARENT="/shoal-it-$TAG"
SOCK="$T/shoal.sock"
AGENT_PID=""
FAILURES=0
export SHOAL_HOST="unix://$SOCK"

log() { printf '%s %s\n' "$(date +%T.%3N)" "$*"; }
fail() {
	log "FAIL: $*"
	FAILURES=$((FAILURES + 1))
}
ok() { log "ok: $*"; }
# fatal MSG: a failed precondition. The checks after it depend on it and would
# each fail for the same reason, many after waiting out a timeout: log it and
# stop here (the EXIT trap tears down).
fatal() {
	fail "$*"
	log "stopping: the checks after this depend on it"
	exit 1
}
# must WHAT CMD...: runs CMD, a precondition of what follows; if it fails,
# fatal "WHAT: <its output>". must_get VAR WHAT CMD... also keeps CMD's stdout
# in VAR, and an empty one is a failure too (an id, a pid, an address). Call
# them from the script itself, not from $(...) or a pipeline, where exit would
# end only the subshell. CMD may be a shell function: it runs in a subshell.
must() {
	local what=$1 out rc
	shift
	out=$("$@" 2>&1) && return 0
	rc=$?
	fatal "$what: ${out:-exit status $rc}"
}
must_get() { # the locals' names are not ones a caller's VAR would have
	local _mg_var=$1 _mg_what=$2 _mg_out _mg_rc
	shift 2
	_mg_out=$("$@" 2>"$T/must.err")
	_mg_rc=$?
	if [ "$_mg_rc" -ne 0 ] || [ -z "$_mg_out" ]; then
		_mg_out="$_mg_out$(cat "$T/must.err")"
		fatal "$_mg_what: ${_mg_out:-exit status $_mg_rc, no output}"
	fi
	printf -v "$_mg_var" '%s' "$_mg_out"
}

expect_eq() { # expect_eq WHAT EXPECTED ACTUAL
	if [ "$2" == "$3" ]; then ok "$1"; else fail "$1: expected [$2], got [$3]"; fi
}
expect_contains() { # expect_contains WHAT NEEDLE HAYSTACK
	if [[ "$3" == *"$2"* ]]; then ok "$1"; else fail "$1: [$2] not in [$3]"; fi
}
expect_not_contains() {
	if [[ "$3" != *"$2"* ]]; then ok "$1"; else fail "$1: [$2] unexpectedly in [$3]"; fi
}

shoal() { "$SHOAL_BIN" "$@"; }

# eventually SECONDS CMD...: retries CMD every 0.1 s until it succeeds
eventually() {
	local end=$((SECONDS + $1))
	shift
	while [ $SECONDS -lt $end ]; do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	"$@" >/dev/null 2>&1
}
# the kernel frees a container's veth pair with its netns, asynchronously
no_veths() { [ "$(in_node ip -o link show | grep -c "${TAG}v")" -eq 0 ]; }

# Runs a command inside the node's network namespace without remounting /sys.
in_node() { nsenter --net="/run/netns/$NETNS" "$@"; }

# Raw API call: api METHOD PATH [BODY] -> prints "STATUS BODY"
api() {
	local method=$1 path=$2 body=${3-}
	local out
	if [ -n "$body" ]; then
		out=$(printf '%s' "$body" | curl -s --max-time 30 --unix-socket "$SOCK" -X "$method" \
			-H 'Content-Type: application/json' --data-binary @- -w '\n%{http_code}' "http://shoal$path")
	else
		out=$(curl -s --max-time 30 --unix-socket "$SOCK" -X "$method" -w '\n%{http_code}' "http://shoal$path")
	fi
	local code=${out##*$'\n'}
	printf '%s %s\n' "$code" "${out%$'\n'*}"
}

agent_start() {
	# nsenter execs shoald, so $! is shoald's own pid (kill -9 must reach it)
	nsenter --net="/run/netns/$NETNS" "$SHOALD_BIN" --data-dir "$T/data" --run-dir "$T/run" --socket "$SOCK" \
		--cgroup-parent "$CG_PARENT" --bpffs-dir "/sys/fs/bpf/shoal-it-$TAG" \
		--device-prefix "$TAG" --bridge-subnet 10.213.0.0/16 --log-level "${AGENT_LOG_LEVEL:-info}" \
		"$@" >>"$T/shoald.log" 2>&1 &
	AGENT_PID=$!
	for _ in $(seq 1 200); do
		if curl -s --max-time 1 --unix-socket "$SOCK" http://shoal/_ping >/dev/null 2>&1; then
			return 0
		fi
		kill -0 "$AGENT_PID" 2>/dev/null || break
		sleep 0.05
	done
	fatal "shoald did not come up (its log is below)"
}

agent_kill9() {
	[ -n "$AGENT_PID" ] && kill -9 "$AGENT_PID" 2>/dev/null
	wait "$AGENT_PID" 2>/dev/null
	AGENT_PID=""
}

agent_stop() {
	if [ -n "$AGENT_PID" ]; then
		kill -TERM "$AGENT_PID" 2>/dev/null
		wait "$AGENT_PID" 2>/dev/null
		AGENT_PID=""
	fi
}

node_start() {
	must "creating the node's network namespace" ip netns add "$NETNS"
	must "bringing up the node's lo" ip -n "$NETNS" link set lo up
	agent_start "$@"
	must "loading the test image" shoal image load -i "$TEST_IMAGE"
}

# A client host: its own netns, a veth into the node's netns (the node's
# uplink), 10.250.0.1 on the node side and 10.250.0.2 on the client's.
CLIENT_NS="$NETNS-c"
NODE_ADDR=10.250.0.1
client_start() {
	must "creating the client's network namespace" ip netns add "$CLIENT_NS"
	must "creating the uplink" ip link add "up${TAG}" type veth peer name "cl${TAG}"
	must "moving the uplink to the node" ip link set "up${TAG}" netns "$NETNS"
	must "moving its peer to the client" ip link set "cl${TAG}" netns "$CLIENT_NS"
	must "addressing the uplink" ip -n "$NETNS" addr add "$NODE_ADDR/24" dev "up${TAG}"
	must "bringing up the uplink" ip -n "$NETNS" link set "up${TAG}" up
	must "addressing the client" ip -n "$CLIENT_NS" addr add 10.250.0.2/24 dev "cl${TAG}"
	must "bringing up the client's link" ip -n "$CLIENT_NS" link set "cl${TAG}" up
	must "bringing up the client's lo" ip -n "$CLIENT_NS" link set lo up
}
in_client() { nsenter --net="/run/netns/$CLIENT_NS" "$@"; }
# http_get PORT: one HTTP/1.0 request from the client to the node's address
http_get() { in_client busybox sh -c "printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 3 $NODE_ADDR $1" 2>/dev/null | tail -n 1; }

# wait_until SECONDS CMD...: retries CMD every 0.2 s until it succeeds; 1 if it never does
wait_until() {
	local t=$1
	shift
	local end=$((SECONDS + t))
	while [ $SECONDS -lt $end ]; do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	return 1
}
# node_get ADDR PORT: one HTTP/1.0 request from a process of the node itself
node_get() { in_node busybox sh -c "printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 3 $1 $2" 2>/dev/null | tail -n 1; }
# udp_ask NS-CMD ADDR PORT: one datagram from a new socket; prints "SOURCE-ADDR:PORT REPLY"
udp_ask() {
	"$1" python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
s.sendto(b"ping", (sys.argv[1], int(sys.argv[2])))
data, src = s.recvfrom(512)
print("%s:%d %s" % (src[0], src[1], data.decode().strip()))
' "$2" "$3" 2>/dev/null
}
# udp_echo_image: imports udpecho:it, a static UDP echo on port 53 answering
# "HOSTNAME DATAGRAM" (busybox has no UDP server); what went wrong on stderr
udp_echo_image() {
	cat >"$T/udpecho.c" <<'C'
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
int main(void)
{
	int s = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(53)};
	char host[64] = "", buf[512];
	gethostname(host, sizeof(host) - 1);
	if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) < 0)
		return 1;
	for (;;) {
		struct sockaddr_in from;
		socklen_t len = sizeof(from);
		ssize_t n = recvfrom(s, buf, sizeof(buf) - 1, 0, (struct sockaddr *)&from, &len);
		if (n < 0)
			continue;
		buf[n] = '\0';
		char out[600];
		int m = snprintf(out, sizeof(out), "%s %s", host, buf);
		sendto(s, out, (size_t)m, 0, (struct sockaddr *)&from, len);
	}
}
C
	mkdir -p "$T/udpimg" &&
		cc -static -O2 -o "$T/udpimg/udpecho" "$T/udpecho.c" &&
		tar -C "$T/udpimg" -cf "$T/udpimg.tar" udpecho &&
		shoal image import "$T/udpimg.tar" udpecho:it >/dev/null
}

# Every process in a cgroup tree, in every hierarchy.
cg_pids() {
	local d
	for d in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do
		[ -d "$d${CG_PARENT#/}" ] || continue
		find "$d${CG_PARENT#/}" -name cgroup.procs -exec cat {} + 2>/dev/null
	done | sort -u
}

cleanup() {
	local rc=$?
	set +e
	agent_kill9
	# monitors are not in the container cgroups: find them by their run dir
	for p in $(pgrep -f "shoal-monitor" 2>/dev/null); do
		if tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q "$T"; then kill -9 "$p"; fi
	done
	for _ in 1 2 3 4 5; do
		local pids
		pids=$(cg_pids)
		[ -z "$pids" ] && break
		kill -9 $pids 2>/dev/null
		sleep 0.1
	done
	local d
	for d in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do
		[ -d "$d${CG_PARENT#/}" ] || continue
		find "$d${CG_PARENT#/}" -depth -type d -exec rmdir {} \; 2>/dev/null
	done
	if [ -d "$T/run/netns" ]; then
		for f in "$T"/run/netns/*; do [ -e "$f" ] && umount -l "$f" 2>/dev/null; done
	fi
	grep " $T" /proc/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l 2>/dev/null
	ip netns del "$NETNS" 2>/dev/null
	ip netns del "$CLIENT_NS" 2>/dev/null
	rm -rf "/sys/fs/bpf/shoal-it-$TAG" 2>/dev/null
	if [ "$FAILURES" -ne 0 ] || [ "$rc" -ne 0 ]; then
		echo "---- shoald log ----"
		tail -n 60 "$T/shoald.log" 2>/dev/null
	fi
	rm -rf "$T"
	if [ "$FAILURES" -ne 0 ]; then
		echo "$FAILURES check(s) failed"
		exit 1
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

finish() {
	if [ "$FAILURES" -eq 0 ]; then echo "all checks passed"; fi
	exit 0
}
