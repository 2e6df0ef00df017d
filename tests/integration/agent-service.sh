#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Services on one node: replicas, restarts, scaling, health checks, rolling
# updates and rollbacks, global mode, placement failures, stale updates, and an
# agent restart in the middle of an update.
. "$(dirname "$0")/lib.sh"
node_start

svc_id() { api GET "/services/$1" | cut -d' ' -f2- | python3 -c 'import json,sys; print(json.load(sys.stdin)["ID"])'; }
tasks_json() { curl -s --unix-socket "$SOCK" -G --data-urlencode "filters={\"service\":{\"$1\":true}}" http://shoal/tasks; }
# count of the service's tasks with desired state running and observed state $2
count_state() {
	tasks_json "$1" | python3 -c '
import json,sys
want=sys.argv[1]
print(sum(1 for t in json.load(sys.stdin) if t["DesiredState"]=="running" and t["Status"]["State"]==want))' "$2"
}
running_is() { [ "$(count_state "$1" running)" = "$2" ]; }
update_state() { api GET "/services/$1" | cut -d' ' -f2- | python3 -c 'import json,sys; print((json.load(sys.stdin).get("UpdateStatus") or {}).get("State",""))'; }
update_state_is() { [ "$(update_state "$1")" = "$2" ]; }
task_env_all() { # every running task's container has env $2
	local ids
	ids=$(tasks_json "$1" | python3 -c '
import json,sys
for t in json.load(sys.stdin):
    if t["DesiredState"]=="running" and t["Status"]["State"]=="running":
        print(t["Status"]["ContainerStatus"]["ContainerID"])')
	[ -n "$ids" ] || return 1
	for c in $ids; do shoal exec "$c" sh -c "echo \$V" | grep -qx "$2" || return 1; done
}

log "3 replicas come up"
must "creating service web" shoal service create -d --name web --replicas 3 --env V=1 \
	--restart-delay 100ms busybox sh -c 'trap "exit 0" TERM; while true; do sleep 0.2; done'
wait_until 30 running_is web 3 && ok "3 tasks running" || fatal "3 tasks running: $(count_state web running)"
n=$(shoal service ls | grep -c ' web ')
expect_eq "service ls lists it" 1 "$n"
expect_contains "service ls shows 3/3" "3/3" "$(shoal service ls)"

log "a killed container is replaced (restart policy any)"
victim=$(tasks_json web | python3 -c '
import json,sys
print([t for t in json.load(sys.stdin) if t["Status"]["State"]=="running"][0]["Status"]["ContainerStatus"]["ContainerID"])')
must "killing a task's container [$victim]" shoal kill "$victim"
has_failed() { [ "$(tasks_json web | grep -o '"State":"failed"' | wc -l)" -ge 1 ]; }
wait_until 30 has_failed
wait_until 30 running_is web 3 && ok "back to 3 running after a kill" || fail "after kill: $(count_state web running) running"
expect_contains "service ps shows the failed task" "Failed" "$(shoal service ps web)"

log "scale up and down"
must "scaling web to 5" shoal service scale web=5 -d
wait_until 30 running_is web 5 && ok "scaled to 5" || fail "scale to 5: $(count_state web running)"
must "scaling web to 2" shoal service scale web=2 -d
wait_until 30 running_is web 2 && ok "scaled to 2" || fail "scale to 2: $(count_state web running)"
containers_are() { [ "$(shoal ps -q | wc -l)" -eq "$1" ]; }
wait_until 20 containers_are 2 && ok "scale down stopped the extra containers" || fail "containers after scale down: $(shoal ps -q | wc -l)"

log "stale-version update is refused"
must_get sid "web's id" svc_id web
spec=$(api GET "/services/$sid" | cut -d' ' -f2- | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["Spec"]))')
out=$(api POST "/services/$sid/update?version=1" "$spec")
expect_eq "stale version: 409" 409 "${out%% *}"
expect_contains "stale version: message" "out of sequence" "$out"

log "rolling update changes every task"
must "updating web to V=2" shoal service update -d --env-add V=2 --update-parallelism 1 \
	--update-delay 200ms web
wait_until 60 update_state_is web completed && ok "update completed" || fatal "update state: $(update_state web)"
wait_until 20 task_env_all web 2 && ok "every running task runs the new spec" || fail "tasks not all on V=2"
wait_until 20 running_is web 2 && ok "still 2 running after the update" || fail "after update: $(count_state web running)"
# _up-to-date (what the docker CLI's progress waits for): the tasks on the
# current spec, not the replaced ones kept as history
q() { python3 -c 'import json,sys,urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$1"; }
all=$(api GET "/tasks?filters=$(q '{"service":{"web":true}}')" | cut -d' ' -f2-)
cur=$(api GET "/tasks?filters=$(q '{"service":{"web":true},"_up-to-date":{"true":true}}')" | cut -d' ' -f2-)
read -r n_all n_v2 same < <(python3 -c '
import json,sys
a=json.loads(sys.argv[1]); c=json.loads(sys.argv[2])
v2={t["ID"] for t in a if "V=2" in (t["Spec"]["ContainerSpec"].get("Env") or [])}
print(len(a), len(v2), int({t["ID"] for t in c} == v2))' "$all" "$cur")
[ "$n_all" -gt "$n_v2" ] && [ "$same" = 1 ] && ok "_up-to-date: the $n_v2 tasks on V=2 of $n_all" ||
	fail "_up-to-date: $n_all tasks, $n_v2 on V=2, the filter's $(echo "$cur" | head -c 300)"
expect_not_contains "tasks show no orchestrator state" '"Orch"' "$all"
expect_eq "a label filter no service matches: no task" "200 []" \
	"$(api GET "/tasks?filters=$(q '{"label":{"no-such=label":true}}')")"
out=$(api GET "/tasks?filters=$(q '{"bogus":{"x":true}}')")
expect_eq "an unknown task filter: 400" 400 "${out%% *}"
expect_contains "naming it" "bogus is not supported" "$out"

log "a failing update rolls back automatically"
shoal service update -d --args "sh -c 'exit 3'" --update-failure-action rollback \
	--update-monitor 2s --update-parallelism 1 web >/dev/null 2>&1 ||
	must "a failing update of web" shoal service update -d --args "exit 3" \
		--update-failure-action rollback --update-monitor 2s web
wait_until 60 update_state_is web rollback_completed && ok "rolled back" || fail "rollback state: $(update_state web)"
wait_until 30 task_env_all web 2 && ok "tasks run the previous spec again" || fail "tasks after rollback"

log "manual rollback"
must "updating web to V=3" shoal service update -d --env-add V=3 web
wait_until 60 update_state_is web completed && ok "update to V=3 completed" || fatal "update to V=3: $(update_state web)"
must "rolling web back" shoal service rollback -d web
wait_until 60 update_state_is web rollback_completed && ok "manual rollback completed" || fail "manual rollback: $(update_state web)"
wait_until 30 task_env_all web 2 && ok "manual rollback restored V=2" || fail "manual rollback tasks"

log "failing health check gets its task replaced"
must "creating service sick" shoal service create -d --name sick --health-cmd 'test -f /tmp/ok' \
	--health-interval 200ms --health-retries 2 --health-timeout 1s --restart-delay 100ms \
	busybox sh -c 'touch /tmp/ok; sleep 2; rm /tmp/ok; sleep 100'
wait_until 30 running_is sick 1 && ok "healthy task is running" || fatal "sick never became running"
sick_unhealthy() { tasks_json sick | grep -q 'unhealthy'; }
wait_until 30 sick_unhealthy && ok "unhealthy task failed" || fail "no unhealthy failure"
sick_replaced() { [ "$(tasks_json sick | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" -ge 2 ]; }
wait_until 30 sick_replaced && ok "a replacement task was created" || fail "no replacement"
must "removing service sick" shoal service rm sick

log "global mode"
must "creating service everywhere" shoal service create -d --name everywhere --mode global \
	busybox sleep 1000
wait_until 30 running_is everywhere 1 && ok "global: one task on the node" || fail "global: $(count_state everywhere running)"
must "removing service everywhere" shoal service rm everywhere

log "dry run: the plan, and nothing created"
out=$(shoal service create --dry-run --name plan --replicas 2 busybox true)
expect_contains "dry run places on the node" "$(shoal node ls -q | head -1 | cut -c1-12)" "$out"
out=$(shoal service create --dry-run --name plan --replicas 2 --constraint node.labels.zone==nowhere busybox true)
expect_contains "dry run explains what cannot be placed" "constraint node.labels.zone==nowhere" "$out"
expect_eq "dry run created nothing" 0 "$(shoal service ls | grep -c ' plan ')"

log "an unsatisfiable constraint stays pending with its reason"
must "creating service nowhere" shoal service create -d --name nowhere \
	--constraint node.labels.zone==nowhere busybox sleep 1
nowhere_reason() { tasks_json nowhere | grep -q 'constraint node.labels.zone==nowhere'; }
wait_until 20 nowhere_reason && ok "pending with a constraint reason" || fail "reason: $(tasks_json nowhere | head -c 400)"
expect_eq "no task runs" 0 "$(count_state nowhere running)"
must "removing service nowhere" shoal service rm nowhere

log "the agent restarted mid-update finishes the update"
must "scaling web to 3" shoal service scale web=3 -d
wait_until 30 running_is web 3 || fatal "3 running before the update: $(count_state web running)"
must "updating web to V=4" shoal service update -d --env-add V=4 --update-parallelism 1 \
	--update-delay 1s web
wait_until 20 update_state_is web updating || fatal "update to V=4 not under way: [$(update_state web)]"
sleep 1.2
agent_kill9
agent_start
wait_until 90 update_state_is web completed && ok "update completed after the restart" || fail "after restart: $(update_state web)"
wait_until 30 task_env_all web 4 && ok "all tasks on V=4 after the restart" || fail "tasks after restart"
wait_until 30 running_is web 3 && ok "3 running, no duplicates" || fail "after restart: $(count_state web running) running"
# the removed services' containers, re-adopted mid-stop, end by their grace period
containers_are() { [ "$(shoal ps -q | wc -l)" -eq "$1" ]; }
wait_until 30 containers_are 3 && ok "exactly 3 containers" || fail "containers: $(shoal ps)"

log "draining the node moves tasks off; active brings them back"
node_id() { shoal node ls -q | head -1; }
must_get node "the node's id" node_id
must "draining the node" shoal node update --availability drain "$node"
wait_until 40 running_is web 0 && ok "drained: no task runs" || fail "drained: $(count_state web running) running"
drain_reason() { tasks_json web | grep -q 'draining'; }
wait_until 20 drain_reason && ok "pending tasks say the node is draining" || fail "no draining reason"
must "making the node active" shoal node update --availability active "$node"
wait_until 40 running_is web 3 && ok "active again: 3 running" || fail "after active: $(count_state web running)"

log "a new service starts while another waits out its stop grace period"
must "a service ignoring TERM" shoal service create -d --name slowstop --stop-grace-period 12s \
	busybox sleep 100000
wait_until 30 running_is slowstop 1 || fatal "slowstop running: $(count_state slowstop running)"
must "its forced update" shoal service update -d --force slowstop
old_stopping() { tasks_json slowstop | python3 -c '
import json, sys
sys.exit(0 if any(t["DesiredState"] == "shutdown" and t["Status"]["State"] == "running"
                  for t in json.load(sys.stdin)) else 1)'; }
wait_until 10 old_stopping || fatal "the old task is not stopping: $(tasks_json slowstop | head -c 300)"
must "another service meanwhile" shoal service create -d --name quick busybox sleep 100000
wait_until 15 running_is quick 1 || fail "quick did not start"
old_stopping && ok "quick runs while slowstop's old task is still in its grace period" ||
	fail "quick started only after slowstop's stop"
must "removing them" shoal service rm slowstop quick

log "service rm removes everything"
must "removing service web" shoal service rm web
all_gone() { [ "$(shoal ps -aq | wc -l)" -eq 0 ]; }
wait_until 30 all_gone && ok "all task containers removed" || fail "containers left: $(shoal ps -a)"
expect_eq "no services left" "" "$(shoal service ls -q)"
finish
