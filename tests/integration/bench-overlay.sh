#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `shoal bench overlay`, sized small: its own underlay bridge, two node
# namespaces, etcd, two agents, an overlay network, containers, 100 endpoints
# of a third node in the store.
#  - the JSON has every row with sane values: TCP throughput over the overlay,
#    a bare VXLAN pair and the underlay, with their ratios; HTTP over the
#    overlay and the underlay; an endpoint programmed on the other node (p50,
#    p99, the endpoints present); a dead node forgotten;
#  - nothing is left afterwards: no namespace, link, process, mount, cgroup,
#    bpffs dir or temp dir; also after a Ctrl-C in the middle of a second run,
#    which measures its throughput with shoal bench tcp instead of iperf3 (the
#    fallback when iperf3 is not installed);
#  - bad flags are refused, naming the problem.
set -uo pipefail
SKIP=77
: "${SHOAL_BUILD:?SHOAL_BUILD must point at the build directory}"
SHOAL_BIN="$SHOAL_BUILD/bin/shoal"
for f in "$SHOAL_BIN" "$SHOAL_BUILD/bin/shoald" "$SHOAL_BUILD/bin/shoal-bench-httpd" \
	"$SHOAL_BUILD/bin/shoal-bench-echo" "$SHOAL_BUILD/images/bench.tar"; do
	[ -e "$f" ] || { echo "FAIL: $f is missing (build first)"; exit 1; }
done
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root (network namespaces, agents)"; exit $SKIP; }
for c in python3 etcd ip; do
	command -v $c >/dev/null || { echo "FAIL: needs $c (scripts/deps.sh installs it)"; exit 1; }
done

T=$(mktemp -d /tmp/shoal-it-benchov.XXXXXX)
FAILURES=0
BENCH_PID=""
PIDS=""
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
	# the container monitors name nothing of the run: the mark in their
	# environment does
	for p in /proc/[0-9]*; do
		{ tr '\0' '\n' <"$p/environ"; } 2>/dev/null | grep -q "^SHOAL_BENCH_RUN=$T/" &&
			echo "process ${p#/proc/}: $(tr '\0' ' ' <"$p/cmdline" 2>/dev/null)"
	done
	ip netns list 2>/dev/null | grep "shoal-benchov-$pid-"
	ls -d /sys/fs/cgroup/*/shoal-benchov-"$pid"-* /sys/fs/cgroup/shoal-benchov-"$pid"-* 2>/dev/null
	ls -d /sys/fs/bpf/shoal-benchov-"$pid"-* 2>/dev/null
	grep " $T/" /proc/mounts
	ls -d "$T"/shoal-benchov.* 2>/dev/null
	# the links of the bench: the underlay's veths lived in its namespaces;
	# nothing of it may show up in this one
	ip -o link show 2>/dev/null | grep -E ': (bovx|n[12])@'
}

cleanup() {
	local rc=$? p ns
	set +e
	[ -n "$BENCH_PID" ] && kill -9 "$BENCH_PID" 2>/dev/null && wait "$BENCH_PID" 2>/dev/null
	for p in $(pgrep -f "$T/" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
	# what a failed bench left: its namespaces, its agents' cgroups and bpffs dirs
	for p in $PIDS; do
		for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^shoal-benchov-$p-"); do
			ip netns del "$ns" 2>/dev/null
		done
		for d in /sys/fs/cgroup/*/shoal-benchov-"$p"-* /sys/fs/cgroup/shoal-benchov-"$p"-*; do
			[ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
		done
		rm -rf /sys/fs/bpf/shoal-benchov-"$p"-* 2>/dev/null
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
trap cleanup EXIT

# bench_pid: the bench itself, timeout's child (its pid names what it makes)
bench_pid() {
	local pid=""
	for _ in $(seq 1 100); do
		pid=$(pgrep -P "$BENCH_PID" -x "shoal(-bench)?") && break
		sleep 0.05
	done
	echo "$pid"
}

# ---- bad input, refused before anything starts ----
out=$("$SHOAL_BIN" bench overlay --endpoints 20001 2>&1)
[[ $? -ne 0 && "$out" == *"--endpoints: expected 0 to 20000"* ]] && ok "--endpoints 20001 refused" ||
	fail "--endpoints 20001: $out"
out=$("$SHOAL_BIN" bench overlay --tcp-tool netperf 2>&1)
[[ $? -ne 0 && "$out" == *"--tcp-tool: expected iperf3 or bench-tcp"* ]] && ok "--tcp-tool refused" ||
	fail "--tcp-tool netperf: $out"
out=$("$SHOAL_BIN" bench overlay --duration 0 2>&1)
[[ $? -ne 0 && "$out" == *"--duration: expected 1s to 600s"* ]] && ok "--duration 0 refused" ||
	fail "--duration 0: $out"
out=$("$SHOAL_BIN" bench overlay --help 2>&1)
[[ "$out" == *"routing mesh"*"not measured"* ]] && ok "--help says the routing mesh is not measured" ||
	fail "--help: $out"

# ---- a small run, every row ----
TMPDIR=$T timeout 150 "$SHOAL_BIN" bench overlay --rounds 1 --endpoints 100 --duration 1 \
	--starts 3 --node-ttl 2 --json -o "$T/out.json" >"$T/stdout" 2>"$T/stderr" &
BENCH_PID=$!
pid=$(bench_pid)
PIDS="$PIDS $BENCH_PID $pid"
wait "$BENCH_PID"
rc=$?
BENCH_PID=""
if [ "$rc" -eq 0 ]; then ok "the bench ran"; else fail "the bench exited $rc: $(tail -n 5 "$T/stderr")"; fi
python3 -c 'import json,sys; assert json.load(open(sys.argv[1])) == json.load(open(sys.argv[2]))' \
	"$T/stdout" "$T/out.json" 2>/dev/null && ok "-o wrote what --json printed" ||
	fail "-o and --json differ (or stdout is not JSON): $(head -c 300 "$T/stdout")"
[ ! -s "$T/stderr" ] && ok "quiet with --json" || fail "--json printed progress: $(head -n 3 "$T/stderr")"

checks=$(python3 - "$T/out.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
def get(path):
    v = d
    for k in path.split("."):
        v = v[int(k)] if isinstance(v, list) else v[k]
    return v
def check(what, cond):
    print(("ok " if cond else "FAIL ") + what)
def fig(path, low=0.0):
    try:
        v = get(path)
    except (KeyError, IndexError, TypeError):
        check("figure " + path + " present", False)
        return
    check("figure %s = %s" % (path, v), isinstance(v, (int, float)) and v > low)
try:
    check("schema and suite", d["schema_version"] >= 1 and d["suite"] == "overlay" and "env" in d)
    for v in ["overlay", "bare_vxlan", "underlay"]:
        for k in ["gbit_per_sec", "min_gbit_per_sec", "max_gbit_per_sec"]:
            fig("throughput.%s.%s" % (v, k))
    for r in ["ratio_overlay_to_bare_vxlan", "ratio_overlay_to_underlay"]:
        fig("throughput." + r)
        t = get("throughput")
        check("throughput: %s within its rounds' (%s, %s)" % (r, t[r + "_min"], t[r + "_max"]),
              0 < t[r + "_min"] <= t[r] <= t[r + "_max"])
    check("throughput: the target beside it", get("throughput.target") == ">= 0.95x the bare VXLAN pair"
          and isinstance(get("throughput.target_met"), bool))
    check("throughput: one round of each", len(get("throughput.rounds")) == 1)
    for v in ["overlay", "underlay"]:
        fig("http.%s.per_sec" % v)
        fig("http.%s.latency_us.p50" % v)
        fig("http.%s.latency_us.p99" % v)
    fig("http.ratio_overlay_to_underlay")
    p = get("programmed")
    check("programmed: 3 samples (%s)" % p["runs"], p["runs"] == 3 and len(p["rounds"]) == 3)
    check("programmed: p50 and p99 present (%s, %s ms)" % (p["median_ms"], p["p99_ms"]),
          0 <= p["median_ms"] <= p["p99_ms"] <= p["max_ms"])
    check("programmed: with the 100 endpoints present", p["endpoints_present"] == 100)
    check("programmed: its target beside it", "100 ms" in p["target"])
    check("programmed: how the endpoints were made, said", "third node" in p["how"])
    n = get("dead_node")
    check("dead node forgotten (%s ms)" % n.get("median_ms"), n.get("runs") == 1 and n["median_ms"] > 0)
    check("dead node: both of node 2's endpoints (its container, its address)",
          n["rounds"][0]["endpoints"] >= 2)
    check("dead node: the target from --node-ttl", get("config.node_ttl_s") == 2 and n["target"].endswith("= 3 s")
          and isinstance(n["target_met"], bool))
    check("no routing mesh row", not any("mesh" in k for k in d))
    check("config", get("config.endpoints") == 100 and get("config.rounds") == 1)
except Exception as e:
    print("FAIL reading the JSON: %r" % e)
EOF
)
while read -r verdict what; do
	if [ "$verdict" = ok ]; then ok "$what"; else fail "$what"; fi
done <<<"$checks"

left=$(leftovers "$pid")
[ -z "$left" ] && ok "nothing left after the run" || fail "left after the run: $left"

# ---- the table, and Ctrl-C in the middle: everything it started goes ----
TMPDIR=$T timeout 150 "$SHOAL_BIN" bench overlay --rounds 3 --endpoints 50 --duration 1 \
	--starts 1 --node-ttl 2 --tcp-tool bench-tcp >"$T/stdout2" 2>"$T/stderr" &
BENCH_PID=$!
pid=$(bench_pid)
PIDS="$PIDS $BENCH_PID $pid"
for _ in $(seq 1 600); do
	grep -q "throughput 1/3" "$T/stderr" 2>/dev/null && break
	kill -0 "$BENCH_PID" 2>/dev/null || break
	sleep 0.1
done
line=$(grep "throughput 1/3" "$T/stderr")
if [[ "$line" =~ overlay\ ([0-9.]+),\ bare\ VXLAN\ ([0-9.]+),\ underlay\ ([0-9.]+) ]] &&
	python3 -c 'import sys; sys.exit(0 if all(float(x) > 0 for x in sys.argv[1:]) else 1)' \
		"${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}" "${BASH_REMATCH[3]}"; then
	ok "shoal bench tcp measured the three paths: $line"
else
	fail "no throughput from shoal bench tcp: $line $(tail -n 3 "$T/stderr")"
fi
[ -n "$(pgrep -f "$T/shoal-benchov" 2>/dev/null)" ] && ok "its agents and etcd run" ||
	fail "no agent or etcd of the second run"
[ -n "$pid" ] && kill -INT "$pid"
wait "$BENCH_PID"
rc=$?
BENCH_PID=""
[ "$rc" -ne 0 ] && grep -q "interrupted" "$T/stderr" && ok "Ctrl-C ends it, saying so" ||
	fail "after Ctrl-C: exit $rc, $(tail -n 2 "$T/stderr")"
left=$(leftovers "$pid")
[ -z "$left" ] && ok "nothing left after Ctrl-C" || fail "left after Ctrl-C: $left"
