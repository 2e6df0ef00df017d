#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `shoal bench policy --nodes N`, sized small: after the one-node rows (cut
# short here), its own cluster: node namespaces on an underlay bridge, etcd,
# a shoald on each node, an overlay network, a receiver on every node probed
# from the next one, policy creates through node 1's API timed to
# enforcement on every node.
#  - the JSON has the cluster row beside the one-node rows: for the
#    isolating create and the allowing one, p50/p99/max on every node and
#    per node, all > 0, "every node" being each round's slowest node, the
#    target named; -o writes what --json prints;
#  - the table (3 nodes) names the target beside the figures;
#  - bad flags are refused with a clear message, before anything starts;
#  - nothing is left behind: no namespace, link, process, mount, cgroup,
#    bpffs dir or temp dir; also after a Ctrl-C in the middle of the rounds.
. "$(dirname "$0")/bench-lib.sh"
for f in "$SHOAL_BIN" "$SHOAL_BUILD/bin/shoald" "$SHOAL_BUILD/bin/shoal-bench-echo" \
	"$SHOAL_BUILD/images/bench.tar"; do
	[ -e "$f" ] || { echo "FAIL: $f is missing (build first)"; exit 1; }
done
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root (network namespaces, eBPF, agents)"; exit $SKIP; }
command -v etcd >/dev/null ||
	{ echo "SKIP: needs etcd (Debian: etcd-server; scripts/deps.sh installs it)"; exit $SKIP; }
for c in python3 ip iptables-restore nft; do
	command -v $c >/dev/null || { echo "FAIL: needs $c (scripts/deps.sh installs it)"; exit 1; }
done
bench_setup shoal-benchpc

bench_leftovers_more() {
	local pid=$1
	bench_marked_procs
	pgrep -af "shoal-bench-echo -a 10\.218\." 2>/dev/null
	ip netns list 2>/dev/null | grep -E "^(shoal-benchpc-$pid-|shoal-pb$pid-)"
	grep " $T/" /proc/mounts
	# the node veths lived in the bench's namespaces, the one-node pair too
	ip -o link show 2>/dev/null | grep -E ": (n[1-5]|pb[cs]$pid)@"
}

# a failed bench's namespaces
bench_cleanup_more() {
	local ns
	for ns in $(ip netns list 2>/dev/null | awk '{print $1}' |
		grep -E "^(shoal-benchpc-$1-|shoal-pb$1-)"); do
		ip netns del "$ns" 2>/dev/null
	done
}

# the one-node rows as short as they go
SMALL="--rules 10 --duration 0.3 --warmup 0 --rounds 1 --connections 2 --enforce-rounds 3"

# ---- bad input, refused before anything starts ----
refused() { # WHAT WANT ARGS...: the bench exits non-zero saying WANT
	local what=$1 want=$2 out
	shift 2
	out=$("$SHOAL_BIN" bench policy "$@" 2>&1)
	if [[ $? -ne 0 && "$out" == *"$want"* ]]; then
		ok "$what refused: $(head -n 1 <<<"$out")"
	else
		fail "$what: $out"
	fi
}
refused "--nodes 0" "--nodes: expected 2 to 5" --nodes 0
refused "--nodes 99" "--nodes: expected 2 to 5" --nodes 99
refused "--nodes x" "--nodes: expected 2 to 5" --nodes x
refused "--cluster-rounds 0" "--cluster-rounds: expected an integer from 1" --nodes 2 --cluster-rounds 0
refused "--cluster-rounds without --nodes" "--cluster-rounds needs --nodes" --cluster-rounds 3
refused "--nodes with --api-target" "give one of them" --nodes 2 --api-target 10.0.0.1:53 \
	--api-service x
[ -z "$(ip netns list 2>/dev/null | grep -E '^(shoal-benchpc-|shoal-pb)')" ] &&
	ok "nothing made for a refused flag" || fail "namespaces after refused flags"
out=$("$SHOAL_BIN" bench policy --help 2>&1)
[[ "$out" == *"--nodes"*"every node"* && "$out" == *"--cluster-rounds"* ]] &&
	ok "--help lists --nodes and --cluster-rounds" || fail "--help: $out"

# ---- a small run: the cluster row in the JSON ----
# shellcheck disable=SC2086
TMPDIR=$T timeout 120 "$SHOAL_BIN" bench policy $SMALL --nodes 2 --cluster-rounds 3 --json \
	-o "$T/out.json" >"$T/stdout" 2>"$T/stderr" &
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

json_checks "$T/out.json" <<'EOF'
try:
    check("schema and suite", d["schema_version"] >= 1 and d["suite"] == "policy" and "env" in d)
    check("the one-node rows in the same run",
          {v["name"] for v in d["variants"]} >= {"none-10", "shoal-10", "iptables-10", "nftables-10"}
          and d["enforce_ms"]["rounds"] == 3)
    c = get("cluster_enforce_ms")
    check("2 nodes, 3 rounds", c["nodes"] == 2 and c["rounds"] == 3
          and get("config.nodes") == 2 and get("config.cluster_rounds") == 3)
    check("the target beside it: %s" % c["target"], "100 ms p99" in c["target"]
          and "every node" in c["target"] and isinstance(c["target_met"], bool))
    for k in ("deny", "allow"):
        e = c[k]["every_node"]
        check("%s on every node: p50 %s, p99 %s, max %s ms over %s rounds"
              % (k, e["p50"], e["p99"], e["max"], e["rounds"]),
              e["rounds"] == 3 and 0 < e["min"] <= e["p50"] <= e["p99"] <= e["max"] < 2000)
        per = c[k]["per_node"]
        check("%s: a row per node" % k, [x["node"] for x in per] == [1, 2])
        for x in per:
            check("%s on node %d: p50 %s, p99 %s, max %s ms" % (k, x["node"], x["p50"], x["p99"], x["max"]),
                  x["rounds"] == 3 and 0 < x["min"] <= x["p50"] <= x["p99"] <= x["max"])
        # a round's every-node time is its slowest node's
        check("%s: every node's max is the slowest node's max" % k,
              abs(e["max"] - max(x["max"] for x in per)) < 1e-9)
        check("%s: every node's min is no node's better" % k,
              e["min"] >= max(x["min"] for x in per) - 1e-9)
    check("the target met or warned", c["target_met"] or
          any("every node" in w for w in d["warnings"]))
except Exception as e:
    print("FAIL reading the JSON: %r" % e)
EOF
[ ! -s "$T/stderr" ] && ok "quiet with --json" || fail "--json printed progress: $(head -n 3 "$T/stderr")"
left=$(leftovers "$pid")
[ -z "$left" ] && ok "nothing left after the run" || fail "left after the run: $left"

# ---- the table, 3 nodes ----
# shellcheck disable=SC2086
TMPDIR=$T timeout 120 "$SHOAL_BIN" bench policy $SMALL --nodes 3 --cluster-rounds 2 \
	>"$T/table" 2>"$T/stderr" &
BENCH_PID=$!
pid=$(bench_pid)
PIDS="$PIDS $BENCH_PID $pid"
wait "$BENCH_PID"
rc=$?
BENCH_PID=""
if [ "$rc" -eq 0 ]; then ok "the bench ran on 3 nodes"; else fail "3 nodes: exit $rc: $(tail -n 5 "$T/stderr")"; fi
sed -n '/to enforcement on every node/,$p' "$T/table"
grep -q "TARGET P99" "$T/table" && grep -Eq "^isolate: first dropped +every +2 .*<= 100 (ok|MISSED)" "$T/table" &&
	grep -Eq "^allow: first answered +every +2 .*<= 100 (ok|MISSED)" "$T/table" &&
	ok "the table names the target beside every node's figures" || fail "the table: $(cat "$T/table")"
[ "$(grep -cE '^ +node [123] +2 ' "$T/table")" -eq 6 ] && ok "the table has a row per node and create" ||
	fail "per-node rows: $(grep -E 'node [0-9]' "$T/table")"
left=$(leftovers "$pid")
[ -z "$left" ] && ok "nothing left after the 3-node run" || fail "left after the 3-node run: $left"

# ---- Ctrl-C in the rounds: everything it started goes ----
# shellcheck disable=SC2086
TMPDIR=$T timeout 120 "$SHOAL_BIN" bench policy $SMALL --nodes 2 --cluster-rounds 1000 \
	>"$T/stdout3" 2>"$T/stderr" &
BENCH_PID=$!
pid=$(bench_pid)
PIDS="$PIDS $BENCH_PID $pid"
bench_wait_stderr 900 "cluster round 2 of"
grep -q "cluster round 2 of" "$T/stderr" && ok "the rounds run" ||
	fail "no cluster round: $(tail -n 3 "$T/stderr")"
[ -n "$(pgrep -f "$T/shoal-benchpc" 2>/dev/null)" ] && ok "its agents and etcd run" ||
	fail "no agent or etcd of the interrupted run"
bench_interrupt "$pid"
[ ! -s "$T/stdout3" ] && ok "no result printed after Ctrl-C" || fail "a result after Ctrl-C"
