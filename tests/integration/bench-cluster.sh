#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `shoal bench cluster` on a small cluster: its own etcd, 20 simulated nodes,
# 100 tasks, two real agents in a network namespace the bench makes.
#  - the JSON has every figure (create, spread, node death, failover, idle
#    load per node and per agent, the 10,000-node arithmetic); an idle agent
#    reads no records;
#  - the tasks ran on the simulated nodes: all 100 running, spread over them,
#    none on the agents; the failover put a different agent in the lead;
#  - nothing is left afterwards: no shoald or etcd, no veth, no cgroup, no
#    bpffs dir, no temp dir; also after a Ctrl-C in the middle;
#  - bad flags and a loopback --store-endpoints are refused, naming the
#    problem.
. "$(dirname "$0")/bench-lib.sh"
for f in "$SHOAL_BIN" "$SHOAL_BUILD/bin/shoald"; do
	[ -x "$f" ] || { echo "FAIL: $f is missing (build first)"; exit 1; }
done
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root (network namespaces, agents)"; exit $SKIP; }
command -v python3 >/dev/null || { echo "FAIL: needs python3 (JSON checks)"; exit 1; }
command -v etcd >/dev/null || { echo "FAIL: etcd is missing (etcd-server; scripts/deps.sh)"; exit 1; }
bench_setup shoal-benchcl

# the bench's veth into its namespace
bench_leftovers_more() { ip -o link show "shb$(($1 % 10000000))" 2>/dev/null | cut -d: -f2; }
bench_cleanup_more() { ip link del "shb$(($1 % 10000000))" 2>/dev/null; }

# ---- bad input, refused before anything starts ----
out=$("$SHOAL_BIN" bench cluster --nodes 0 2>&1)
[[ $? -ne 0 && "$out" == *"--nodes: expected 1 to 20000"* ]] && ok "--nodes 0 refused" ||
	fail "--nodes 0: $out"
out=$("$SHOAL_BIN" bench cluster --watch sometimes 2>&1)
[[ $? -ne 0 && "$out" == *"--watch: expected shared or per-node"* ]] && ok "--watch refused" ||
	fail "--watch sometimes: $out"
out=$("$SHOAL_BIN" bench cluster --store-endpoints http://127.0.0.1:2379 2>&1)
[[ $? -ne 0 && "$out" == *"loopback"* ]] && ok "a loopback --store-endpoints refused" ||
	fail "--store-endpoints http://127.0.0.1:2379: $out"

# ---- a small cluster, every figure ----
TMPDIR=$T timeout 150 "$SHOAL_BIN" bench cluster --nodes 20 --tasks 100 --agents 2 --rounds 1 \
	--idle 2 --node-ttl 3 --json -o "$T/out.json" >"$T/stdout" 2>"$T/stderr" &
BENCH_PID=$!
PIDS="$PIDS $BENCH_PID"
# the bench itself, timeout's child: its pid names what it makes
bench_ns="" pid=""
my_ns=$(readlink /proc/$$/ns/net)
for _ in $(seq 1 200); do
	[ -z "$pid" ] && pid=$(pgrep -P "$BENCH_PID" -x "shoal(-bench)?")
	[ -n "$pid" ] && bench_ns=$(readlink "/proc/$pid/ns/net" 2>/dev/null)
	[ -n "$bench_ns" ] && [ "$bench_ns" != "$my_ns" ] && break
	bench_ns=""
	sleep 0.05
done
PIDS="$PIDS $pid"
[ -n "$bench_ns" ] && ok "the bench moved into a network namespace of its own" ||
	fail "the bench did not make a network namespace"
wait "$BENCH_PID"
rc=$?
BENCH_PID=""
if [ "$rc" -eq 0 ]; then ok "the bench ran"; else fail "the bench exited $rc: $(tail -n 5 "$T/stderr")"; fi
cmp -s "$T/stdout" "$T/out.json" 2>/dev/null ||
	python3 -c 'import json,sys; assert json.load(open(sys.argv[1])) == json.load(open(sys.argv[2]))' \
		"$T/stdout" "$T/out.json" 2>/dev/null && ok "-o wrote what --json printed" ||
	fail "-o and --json differ"
[ ! -s "$T/stderr" ] && ok "quiet with --json" || fail "--json printed progress: $(head -n 3 "$T/stderr")"

json_checks "$T/out.json" <<'EOF'
try:
    check("schema and suite", d["schema_version"] >= 1 and d["suite"] == "cluster" and "env" in d)
    for f in ["create.converged.median_ms", "create.first_running.median_ms", "create.tasks_per_s",
              "node_death.replaced_running.median_ms", "failover.leader.median_ms",
              "failover.scale_placed.median_ms", "failover.scale_running.median_ms",
              "idle.per_simulated_node.requests_per_s", "idle.per_simulated_node.bytes_per_s",
              "idle.projection_10000_nodes.leases_requests_per_s"]:
        check("figure " + f, get(f) > 0)
    # an idle agent reads nothing (its caches come from watches): what is
    # left of it, one lease's renewals, may be within the windows' noise
    for f in ["idle.per_agent.requests_per_s", "idle.per_agent.bytes_per_s",
              "idle.projection_10000_nodes.agents_bytes_per_s"]:
        check("figure " + f, get(f) >= 0)
    check("an idle agent reads no record (%s)" % get("idle.per_agent.requests_by_method_per_s"),
          get("idle.per_agent.requests_by_method_per_s").get("Range", 0) < 0.2)
    check("the 10,000-node arithmetic", "10,000 x" in get("idle.projection_10000_nodes.arithmetic"))
    check("targets beside the figures", all(isinstance(get(p), str) for p in
          ["create.target", "node_death.target", "failover.target"]))
    sp = get("create.spread")
    check("all 100 tasks running on simulated nodes (%s)" % sp,
          sp["running_on_simulated_nodes"] == 100 and sp["running_on_agents"] == 0)
    check("spread over the nodes (%d used, %d to %d a node)" % (sp["nodes_used"], sp["min_per_node"], sp["max_per_node"]),
          sp["nodes_used"] >= 15 and sp["max_per_node"] <= 10)
    r = get("failover.rounds.0")
    check("a different leader after the failover (%d -> %d)" % (r["old_leader"], r["new_leader"]),
          r["old_leader"] != r["new_leader"] and r["new_leader"] >= 0)
    check("the scale during the failover ran (%d replicas)" % r["replicas"], r["replicas"] == 110)
    nd = get("node_death.rounds.0")
    check("a dead node's tasks moved (%d)" % nd["tasks_moved"], nd["tasks_moved"] > 0)
    s = get("simulated")
    check("the simulated nodes started the tasks and failed nothing (%s)" % s,
          s["tasks_started"] >= 100 + nd["tasks_moved"] + 10 and s["errors"] == 0 and s["status_writes"] >= 4 * 100)
    check("idle load counted by etcd", "etcd" in get("idle.counted_by"))
except Exception as e:
    print("FAIL reading the JSON: %r" % e)
EOF

left=$(leftovers "$pid")
[ -z "$left" ] && ok "nothing left after the run" || fail "left after the run: $left"
# the bench's namespace has no name: it goes with the last process in it, and
# its veth pair (checked above) with it
# (a killed child may take a moment to be gone after the bench returns: a
# process that stays is named with its command line)
in_bench_ns() {
	local p
	for p in /proc/[0-9]*; do
		[ -n "$bench_ns" ] && [ "$(readlink "$p/ns/net" 2>/dev/null)" = "$bench_ns" ] &&
			echo "${p#/proc/} ($(tr '\0' ' ' <"$p/cmdline" 2>/dev/null | cut -c1-80))"
	done
}
for _ in $(seq 1 50); do [ -z "$(in_bench_ns)" ] && break; sleep 0.1; done
left=$(in_bench_ns)
[ -z "$left" ] && ok "no process left in the bench's network namespace" ||
	fail "processes left in the bench's namespace: $left"

# ---- Ctrl-C in the middle: everything it started goes ----
TMPDIR=$T timeout 150 "$SHOAL_BIN" bench cluster --nodes 10 --tasks 20 --agents 2 --rounds 5 \
	--node-ttl 3 >"$T/stdout2" 2>"$T/stderr" &
BENCH_PID=$!
PIDS="$PIDS $BENCH_PID"
bench_wait_stderr 300 "running on"
grep -q "running on" "$T/stderr" && ok "the second run got going" || fail "the second run did not get going"
[ -n "$(pgrep -f "$T/shoal-benchcl" 2>/dev/null)" ] && ok "its agents and etcd run" ||
	fail "no agent or etcd of the second run"
pid=$(pgrep -P "$BENCH_PID" -x "shoal(-bench)?")
PIDS="$PIDS $pid"
bench_interrupt "$pid"
