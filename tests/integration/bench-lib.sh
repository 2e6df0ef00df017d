#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# What the scripts of the benches that build a cluster of their own share
# (bench-cluster.sh, bench-overlay.sh): checks counted, the bench's own pid
# found, its JSON checked, and what a run leaves behind listed and cleaned.
# A script sources it, checks what it needs, then calls bench_setup LABEL
# (LABEL: what the bench names its temp dir, cgroups and bpffs dirs after,
# shoal-benchcl or shoal-benchov). It may define bench_leftovers_more PID and
# bench_cleanup_more PID for what only its bench makes.
set -uo pipefail
SKIP=77
: "${SHOAL_BUILD:?SHOAL_BUILD must point at the build directory}"
SHOAL_BIN="$SHOAL_BUILD/bin/shoal"
FAILURES=0
BENCH_PID=""
PIDS=""
T=""
BENCH_LABEL=""
log() { printf '%s %s\n' "$(date +%T.%3N)" "$*"; }
fail() {
	log "FAIL: $*"
	FAILURES=$((FAILURES + 1))
}
ok() { log "ok: $*"; }

# What a bench of pid $1 would leave behind, one line each.
leftovers() {
	local pid=$1 p
	for p in $(pgrep -f "$T/" 2>/dev/null); do
		[ "$p" != "$$" ] && echo "process $p: $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)"
	done
	ls -d /sys/fs/cgroup/*/"$BENCH_LABEL-$pid"-* /sys/fs/cgroup/"$BENCH_LABEL-$pid"-* 2>/dev/null
	ls -d /sys/fs/bpf/"$BENCH_LABEL-$pid"-* 2>/dev/null
	ls -d "$T/$BENCH_LABEL".* 2>/dev/null
	if declare -F bench_leftovers_more >/dev/null; then bench_leftovers_more "$pid"; fi
}

bench_cleanup() {
	local rc=$? p d
	set +e
	[ -n "$BENCH_PID" ] && kill -9 "$BENCH_PID" 2>/dev/null && wait "$BENCH_PID" 2>/dev/null
	for p in $(pgrep -f "$T/" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
	# what a failed bench left: its agents' cgroups and bpffs dirs, and what
	# only this bench makes
	for p in $PIDS; do
		if declare -F bench_cleanup_more >/dev/null; then bench_cleanup_more "$p"; fi
		for d in /sys/fs/cgroup/*/"$BENCH_LABEL-$p"-* /sys/fs/cgroup/"$BENCH_LABEL-$p"-*; do
			[ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
		done
		rm -rf /sys/fs/bpf/"$BENCH_LABEL-$p"-* 2>/dev/null
	done
	grep " $T/" /proc/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l 2>/dev/null
	if [ "$FAILURES" -ne 0 ] || [ "$rc" -ne 0 ]; then
		echo "---- bench stderr ----"
		tail -n 30 "$T/stderr" 2>/dev/null
	fi
	rm -rf "$T"
	[ "$FAILURES" -ne 0 ] && { echo "$FAILURES check(s) failed"; exit 1; }
	exit "$rc"
}

# The temp dir (T) every run writes under, removed on exit with what the
# runs left.
bench_setup() {
	BENCH_LABEL=$1
	T=$(mktemp -d "/tmp/shoal-it-${BENCH_LABEL#shoal-}.XXXXXX")
	trap bench_cleanup EXIT
}

# The bench itself, timeout's child (its pid names what it makes).
bench_pid() {
	local pid=""
	for _ in $(seq 1 100); do
		pid=$(pgrep -P "$BENCH_PID" -x "shoal(-bench)?") && break
		sleep 0.05
	done
	echo "$pid"
}

# Waits (at most $1 tenths of a second) until the running bench's stderr
# says $2, or it has ended.
bench_wait_stderr() {
	for _ in $(seq 1 "$1"); do
		grep -q "$2" "$T/stderr" 2>/dev/null && break
		kill -0 "$BENCH_PID" 2>/dev/null || break
		sleep 0.1
	done
}

# Ctrl-C to the running bench ($1 its pid): it must end saying so, and leave
# nothing behind.
bench_interrupt() {
	local pid=$1 rc left
	[ -n "$pid" ] && kill -INT "$pid"
	wait "$BENCH_PID"
	rc=$?
	BENCH_PID=""
	[ "$rc" -ne 0 ] && grep -q "interrupted" "$T/stderr" && ok "Ctrl-C ends it, saying so" ||
		fail "after Ctrl-C: exit $rc, $(tail -n 2 "$T/stderr")"
	left=$(leftovers "$pid")
	[ -z "$left" ] && ok "nothing left after Ctrl-C" || fail "left after Ctrl-C: $left"
}

# json_checks FILE: the python checks on stdin run against FILE's JSON (d,
# get("a.0.b"), check(what, cond)), each "ok WHAT" or "FAIL WHAT" line they
# print counted.
json_checks() {
	local checks verdict what
	checks=$(python3 - "$1" 3<&0 <<'EOF'
import json, os, sys
d = json.load(open(sys.argv[1]))
def get(path):
    v = d
    for k in path.split("."):
        v = v[int(k)] if isinstance(v, list) else v[k]
    return v
def check(what, cond):
    print(("ok " if cond else "FAIL ") + what)
exec(os.fdopen(3).read())
EOF
)
	while read -r verdict what; do
		if [ "$verdict" = ok ]; then ok "$what"; else fail "$what"; fi
	done <<<"$checks"
}

# The processes of this run that name nothing of it (container monitors):
# the mark in their environment does. A line each.
bench_marked_procs() {
	local p
	for p in /proc/[0-9]*; do
		{ tr '\0' '\n' <"$p/environ"; } 2>/dev/null | grep -q "^SHOAL_BENCH_RUN=$T/" &&
			echo "process ${p#/proc/}: $(tr '\0' ' ' <"$p/cmdline" 2>/dev/null)"
	done
}
