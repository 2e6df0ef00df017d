#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `shoal bench overlay`, sized small: its own underlay bridge, two node
# namespaces, etcd, two agents, an overlay network, containers, 100 endpoints
# of a third node in the store.
#  - the JSON has every row with sane values: TCP throughput over the overlay,
#    a bare VXLAN pair and the underlay, with their ratios; HTTP over the
#    overlay and the underlay; HTTP through the routing mesh from the underlay
#    (entering at node 1, the backend on node 2) against the same port at
#    node 2, the backend seeing the client's address and node 2's mesh
#    counters moving for the mesh's requests only; an endpoint programmed on
#    the other node (p50, p99, the endpoints present); a dead node forgotten;
#  - nothing is left afterwards: no namespace, link, process, mount, cgroup,
#    bpffs dir or temp dir; also after a Ctrl-C in the middle of a second run,
#    which measures its throughput with shoal bench tcp instead of iperf3 (the
#    fallback when iperf3 is not installed);
#  - bad flags are refused, naming the problem.
. "$(dirname "$0")/bench-lib.sh"
for f in "$SHOAL_BIN" "$SHOAL_BUILD/bin/shoald" "$SHOAL_BUILD/bin/shoal-bench-httpd" \
	"$SHOAL_BUILD/bin/shoal-bench-echo" "$SHOAL_BUILD/images/bench.tar"; do
	[ -e "$f" ] || { echo "FAIL: $f is missing (build first)"; exit 1; }
done
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root (network namespaces, agents)"; exit $SKIP; }
for c in python3 etcd ip; do
	command -v $c >/dev/null || { echo "FAIL: needs $c (scripts/deps.sh installs it)"; exit 1; }
done
bench_setup shoal-benchov

bench_leftovers_more() {
	local pid=$1
	bench_marked_procs
	ip netns list 2>/dev/null | grep "shoal-benchov-$pid-"
	grep " $T/" /proc/mounts
	# the links of the bench: the underlay's veths lived in its namespaces;
	# nothing of it may show up in this one
	ip -o link show 2>/dev/null | grep -E ': (bovx|n[12])@'
}

# a failed bench's namespaces
bench_cleanup_more() {
	local ns
	for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^shoal-benchov-$1-"); do
		ip netns del "$ns" 2>/dev/null
	done
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
[[ "$out" == *"routing mesh"*"backend's node"* && "$out" != *"not measured"* ]] &&
	ok "--help lists the routing mesh row" || fail "--help: $out"

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

json_checks "$T/out.json" <<'EOF'
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
    m = get("routing_mesh")
    for v in ["mesh", "local"]:
        fig("routing_mesh.%s.per_sec" % v)
        fig("routing_mesh.%s.latency_us.p50" % v)
        fig("routing_mesh.%s.latency_us.p99" % v)
    fig("routing_mesh.ratio_mesh_to_local")
    fig("routing_mesh.p99_mesh_over_local")
    check("routing mesh: entering at node 1, node 2 the local one (%s, %s)"
          % (m["mesh"]["address"], m["local"]["address"]),
          m["mesh"]["address"] == "10.214.0.11:8090" and m["local"]["address"] == "10.214.0.12:8090")
    check("routing mesh: the backend saw the client's own address (%s)" % m["client_address"],
          m["backend_saw_client_address"] is True and m["client_address"] == "10.214.0.1")
    check("routing mesh: node 2 sent the mesh's replies back through node 1 (%s packets, %s flows)"
          % (m["mesh"]["returned_packets"], m["mesh"]["noted_flows"]),
          m["mesh"]["returned_packets"] > 0 and m["mesh"]["noted_flows"] > 0)
    check("routing mesh: the local requests did not take the mesh (%s packets)"
          % m["local"]["returned_packets"], m["local"]["returned_packets"] == 0)
    check("routing mesh: one round", len(m["rounds"]) == 1)
    check("config", get("config.endpoints") == 100 and get("config.rounds") == 1)
except Exception as e:
    print("FAIL reading the JSON: %r" % e)
EOF

left=$(leftovers "$pid")
[ -z "$left" ] && ok "nothing left after the run" || fail "left after the run: $left"

# ---- the table, and Ctrl-C in the middle: everything it started goes ----
TMPDIR=$T timeout 150 "$SHOAL_BIN" bench overlay --rounds 3 --endpoints 50 --duration 1 \
	--starts 1 --node-ttl 2 --tcp-tool bench-tcp >"$T/stdout2" 2>"$T/stderr" &
BENCH_PID=$!
pid=$(bench_pid)
PIDS="$PIDS $BENCH_PID $pid"
bench_wait_stderr 600 "throughput 1/3"
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
bench_interrupt "$pid"
