#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `docker stack deploy` of a whole compose file on three nodes (etcd, one
# agent each: tests/integration/cluster-lib.sh), the docker CLI against
# node 1. Nodes 1 and 2 are managers labelled tier=front, node 3 a worker.
# - the compose file: web (3 replicas, on tier=front nodes, at most 2 a node,
#   cpu and memory limits and reservations, a rolling-update policy, a
#   restart policy, port 8088, a named volume, a secret) and api (2 replicas
#   on the worker, an update_config without an order), both on the stack's
#   own network (overlay by default);
# - stack deploy, stack ls, stack services (3/3, 2/2), stack ps as Docker
#   shows them; web's tasks on nodes 1 and 2 only, 2 and 1; each web
#   container's cgroup holds its limits and reads the secret (mode 0444);
# - port 8088 answers at every node's address from a non-node (the etcd
#   namespace): the routing mesh over the stack's network; a web task reaches
#   api by its short name and tasks.api (across nodes);
# - a web task killed on node 2: the restart policy replaces it there (the
#   only node with room) and the volume's data its first task wrote is still
#   read;
# - a re-deploy changing web's environment: a rolling update one task at a
#   time, start-first (never fewer than 3 nor more than 4 tasks meant to run),
#   with no failed request to the published port all along;
# - stack rm: services, network and secret gone; no container and no device
#   of the network left on any node; the named volume kept, as Docker keeps it;
# - the same, smaller, with Debian's docker 20.10 client when it is there.
# Every docker command is bounded by a timeout, so a hang fails naming it.
. "$(dirname "$0")/cluster-lib.sh"

for c in ip nsenter python3 curl; do
	command -v $c >/dev/null 2>&1 || { echo "SKIP: needs $c"; exit $SKIP; }
done
DOCKER=${DOCKER:-$(command -v docker || true)}
[ -n "$DOCKER" ] || { echo "SKIP: no docker CLI on this machine (scripts/deps.sh installs it)"; exit $SKIP; }
DOCKER_OLD=/usr/local/libexec/shoal/docker-20.10
unset DOCKER_CONTEXT DOCKER_TLS_VERIFY DOCKER_CERT_PATH
export DOCKER_CONFIG="$T/docker-config"

# dk SECONDS ARGS...: the docker CLI against node 1, with a deadline
dk() {
	local secs=$1
	shift
	DOCKER_HOST="unix://$(node_sock 1)" timeout -k 2 "$secs" "$DOCKER" "$@"
	local rc=$?
	if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then fail "docker $* hung (no answer in ${secs} s)"; fi
	return $rc
}
# dkn NODE SECONDS ARGS...: the docker CLI against node NODE
dkn() {
	local i=$1 secs=$2
	shift 2
	DOCKER_HOST="unix://$(node_sock "$i")" timeout -k 2 "$secs" "$DOCKER" "$@"
	local rc=$?
	if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then fail "docker $* on node $i hung (no answer in ${secs} s)"; fi
	return $rc
}
api_get() { curl -s --max-time 10 --unix-socket "$(node_sock "$1")" "http://shoal$2"; }
in_ns() { local i=$1; shift; nsenter --net="/run/netns/$(node_ns "$i")" "$@"; }
# a client off the cluster: the etcd namespace, on the underlay
mesh_get() { nsenter --net="/run/netns/$ETCD_NS" curl -s --max-time 3 "http://$(node_addr "$1"):$2/" 2>/dev/null; }

# the request loop and the sampler of the rolling update, stopped whatever happens
LOOPS=()
stop_loops() {
	local p
	touch "$T/load.stop" 2>/dev/null
	for p in "${LOOPS[@]}"; do
		kill "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	LOOPS=()
}
trap 'rc=$?; stop_loops; (exit $rc); cleanup' EXIT

# One secrets key for the three nodes, as every node of a cluster is given
head -c 32 /dev/urandom >"$T/secrets.key"
chmod 600 "$T/secrets.key"
cluster_etcd_start
cluster_node_start 1 --secrets-key-file "$T/secrets.key" --node-label tier=front
cluster_node_start 2 --secrets-key-file "$T/secrets.key" --node-label tier=front
cluster_node_start 3 --secrets-key-file "$T/secrets.key" --role worker
NODE_ARGS=() # node id=node index, for tasks()
for i in 1 2 3; do
	must "loading the test image on node $i" node_shoal "$i" image load -i "$TEST_IMAGE"
	nid=$(api_get "$i" /info | python3 -c 'import json,sys; print(json.load(sys.stdin)["Swarm"]["NodeID"])')
	[ -n "$nid" ] || fatal "node $i has no node id"
	NODE_ARGS+=("$nid=$i")
done
log "docker client $("$DOCKER" version --format '{{.Client.Version}} (API {{.Client.APIVersion}})' 2>/dev/null)"

# tasks SERVICE: a line per task meant to run: NODE-INDEX STATE CONTAINER-ID REV
tasks() {
	local f
	f=$(python3 -c 'import json,sys,urllib.parse; print(urllib.parse.quote(json.dumps({"service": {sys.argv[1]: True}, "desired-state": {"running": True}})))' "$1")
	api_get 1 "/tasks?filters=$f" | python3 -c '
import json, sys
nodes = dict(a.split("=") for a in sys.argv[1:])
for t in json.load(sys.stdin):
    env = dict(e.split("=", 1) for e in t["Spec"]["ContainerSpec"].get("Env") or [])
    cid = t.get("Status", {}).get("ContainerStatus", {}).get("ContainerID", "") or "-"
    print(nodes.get(t.get("NodeID", ""), "?"), t["Status"]["State"], cid, env.get("REV", "-"))' \
		"${NODE_ARGS[@]}"
}
running_is() { [ "$(tasks "$1" | grep -c ' running ')" -eq "$2" ]; } # running_is SERVICE N
# serving SERVICE: each running task's httpd answers inside its container
serving() {
	local n c
	while read -r n _ c _; do
		[ -n "$(dkn "$n" 10 exec "$c" sh -c 'printf "GET / HTTP/1.0\r\n\r\n" | nc -w 2 127.0.0.1 80' 2>/dev/null | tail -n 1)" ] ||
			return 1
	done < <(tasks "$1" | grep ' running ')
}
# cg NODE CONTAINER CONTROLLER FILE V2-FILE: a value of the container's cgroup
cg() {
	local base="${CG_PARENT#/}-n$1"
	cat "/sys/fs/cgroup/$3/$base/$2/$4" 2>/dev/null || cat "/sys/fs/cgroup/$base/$2/$5" 2>/dev/null
}
# devs NET-ID: every node's bridge and VXLAN device of the network
devs() {
	local i pfx h
	for i in 1 2 3; do
		pfx="c${TAG:1:5}$i"
		h=$(printf '%s' "$1" | sha256sum | cut -c1-$((14 - ${#pfx})))
		in_ns "$i" ip -o link show | grep -E ": ${pfx}[nx]${h}[@:]" | sed "s/^/node $i: /"
	done
}
# stack_containers STACK: every node's containers of the stack
stack_containers() {
	local i
	for i in 1 2 3; do
		dkn "$i" 10 ps -aq --filter "label=com.docker.stack.namespace=$1" | sed "s/^/node $i: /"
	done
}

# web serves a page with its hostname, its REV, the secret it reads and
# what the first task on its node wrote in the volume
printf '%s' "s3cret-$TAG" >"$T/pass.txt"
compose() { # compose REV
	cat <<'EOF' | sed "s/@REV@/$1/"
version: "3.8"
services:
  web:
    image: busybox
    command:
      - sh
      - -c
      - >-
        mkdir -p /w;
        [ -s /data/first ] || hostname > /data/first;
        echo "$$(hostname) rev=$$REV secret=$$(cat /run/secrets/pass) first=$$(cat /data/first)" > /w/index.html;
        exec httpd -f -p 80 -h /w
    environment:
      REV: "@REV@"
    stop_grace_period: 2s
    ports:
      - "8088:80"
    networks:
      - back
    volumes:
      - webdata:/data
    secrets:
      - pass
    deploy:
      replicas: 3
      resources:
        limits:
          cpus: "0.5"
          memory: 64M
        reservations:
          cpus: "0.1"
          memory: 16M
      update_config:
        parallelism: 1
        delay: 1s
        order: start-first
        failure_action: rollback
        monitor: 2s
      restart_policy:
        condition: on-failure
        delay: 1s
        max_attempts: 3
      placement:
        constraints:
          - node.labels.tier == front
        max_replicas_per_node: 2
  api:
    image: busybox
    command: ["sh", "-c", "mkdir -p /w && hostname > /w/index.html && exec httpd -f -p 80 -h /w"]
    stop_grace_period: 2s
    networks:
      - back
    deploy:
      replicas: 2
      update_config:
        parallelism: 2
      placement:
        constraints:
          - node.role == worker
networks:
  back: {}
volumes:
  webdata: {}
secrets:
  pass:
    file: ./pass.txt
EOF
}
compose 1 >"$T/stack.yml"

log "docker stack deploy"
out=$(dk 90 stack deploy -c "$T/stack.yml" st 2>&1)
rc=$?
log "docker stack deploy said: $(echo $out)"
[ $rc -eq 0 ] || fatal "docker stack deploy exited $rc: $out"
ok "docker stack deploy"
expect_eq "stack ls: st with 2 services" "st 2" "$(dk 10 stack ls --format '{{.Name}} {{.Services}}' 2>&1)"
expect_eq "the stack's network is an overlay network, swarm-scoped" "overlay swarm" \
	"$(dk 10 network inspect -f '{{.Driver}} {{.Scope}}' st_back 2>&1)"
expect_eq "the secret is the stack's" "st_pass" "$(dk 10 secret ls --format '{{.Name}}' 2>&1)"
wait_until 90 running_is st_web 3 || fail "st_web: not 3 running tasks: $(tasks st_web)"
wait_until 60 running_is st_api 2 || fail "st_api: not 2 running tasks: $(tasks st_api)"
out=$(dk 10 stack services --format '{{.Name}} {{.Mode}} {{.Replicas}} {{.Ports}}' st 2>&1)
expect_contains "stack services: web replicated 3/3, max 2 a node, port 8088" \
	"st_web replicated 3/3 (max 2 per node) *:8088->80/tcp" "$out"
expect_contains "stack services: api replicated 2/2" "st_api replicated 2/2 " "$out"
out=$(dk 10 stack ps --filter desired-state=running --format '{{.Name}} {{.DesiredState}} {{.CurrentState}}' st 2>&1)
expect_eq "stack ps: web.1-3 and api.1-2 running" \
	"st_api.1 Running Running st_api.2 Running Running st_web.1 Running Running st_web.2 Running Running st_web.3 Running Running" \
	"$(awk '{print $1, $2, $3}' <<<"$out" | sort | xargs)"
# (the three nodes share the machine's hostname, which Docker shows as NODE)
expect_eq "stack ps: each task's node by its hostname" "$(dk 10 node ls --format '{{.Hostname}}' 2>&1 | sort -u | xargs)" \
	"$(dk 10 stack ps --filter desired-state=running --format '{{.Node}}' st 2>&1 | sort -u | xargs)"

log "placement"
web_nodes=$(tasks st_web | awk '{print $1}' | sort | uniq -c | awk '{print $2 ":" $1}' | xargs)
expect_eq "web's tasks: 2 and 1 on the tier=front nodes 1 and 2 (at most 2 a node)" "1:2 2:1" \
	"$(sed 's/1:1 2:2/1:2 2:1/' <<<"$web_nodes")"
expect_eq "api's tasks on the worker, node 3" "3 3" "$(tasks st_api | awk '{print $1}' | xargs)"
# (constraints kept as given, as Docker does: the CLI removes one by its text)
spec=$(api_get 1 /services/st_web | python3 -c '
import json, sys
s = json.load(sys.stdin)["Spec"]
t = s["TaskTemplate"]
r, u, p = t["Resources"], s["UpdateConfig"], t["RestartPolicy"]
print(r["Limits"]["NanoCPUs"], r["Limits"]["MemoryBytes"], r["Reservations"]["NanoCPUs"],
      r["Reservations"]["MemoryBytes"], t["ContainerSpec"]["StopGracePeriod"],
      u["Parallelism"], u["Delay"], u["Order"], u["FailureAction"], u["Monitor"],
      p["Condition"], p["Delay"], p["MaxAttempts"], t["Placement"]["MaxReplicas"],
      "|".join(t["Placement"]["Constraints"]))')
expect_eq "web's spec holds what the compose file asked" \
	"500000000 67108864 100000000 16777216 2000000000 1 1000000000 start-first rollback 2000000000 on-failure 1000000000 3 2 node.labels.tier == front" \
	"$spec"
# the CLI sends an update_config without order as Order "": the default
expect_eq "api's update_config without an order: stop-first, pause" "2 stop-first pause" \
	"$(dk 10 service inspect -f '{{.Spec.UpdateConfig.Parallelism}} {{.Spec.UpdateConfig.Order}} {{.Spec.UpdateConfig.FailureAction}}' st_api 2>&1)"

log "each web task: its cgroup limits and its secret"
wait_until 30 serving st_web || fail "not every web task serves: $(tasks st_web)"
while read -r n _ c _; do
	expect_eq "web's container ${c:0:12} on node $n: memory limit 64M" 67108864 \
		"$(cg "$n" "$c" memory memory.limit_in_bytes memory.max)"
	quota=$(cg "$n" "$c" cpu cpu.cfs_quota_us cpu.max)
	period=$(cg "$n" "$c" cpu cpu.cfs_period_us cpu.max)
	expect_eq "its cpu quota: half its period" "50000 100000" "${quota%% *} ${period##* }"
	expect_eq "it reads the secret" "s3cret-$TAG" "$(dkn "$n" 10 exec "$c" cat /run/secrets/pass 2>&1)"
	expect_eq "owned by root, mode 0444" "0 0 444" "$(dkn "$n" 10 exec "$c" stat -c '%u %g %a' /run/secrets/pass 2>&1)"
done < <(tasks st_web | grep ' running ')

log "the routing mesh: port 8088 at every node's address, from a non-node"
for i in 1 2 3; do
	up() { [ -n "$(mesh_get "$1" 8088)" ]; }
	wait_until 30 up "$i" || fail "node $i's port 8088 does not answer"
	out=$(for k in $(seq 1 12); do mesh_get "$i" 8088; done)
	expect_eq "12 requests to node $i's port 8088 answered" 12 "$(grep -c 'rev=1 ' <<<"$out")"
	expect_eq "with the secret's content" 12 "$(grep -c "secret=s3cret-$TAG " <<<"$out")"
done
out=$(for k in $(seq 1 30); do mesh_get 3 8088; done)
expect_eq "30 requests at node 3 (no web task there) reach all three web tasks" 3 \
	"$(awk '{print $1}' <<<"$out" | sort -u | grep -c .)"

log "web reaches api by name on the stack's network, across nodes"
read -r wn _ wc _ < <(tasks st_web | grep ' running ' | head -n 1)
api_names=$(while read -r n _ c _; do dkn "$n" 10 exec "$c" hostname; done < <(tasks st_api | grep ' running ') | sort | xargs)
ask() { dkn "$wn" 10 exec "$wc" sh -c "printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 3 $1 80 | tail -n 1" 2>/dev/null; }
got=$(for k in $(seq 1 20); do ask api; done | sort -u | xargs)
expect_eq "web on node $wn: api by its short name, answered by both tasks" "$api_names" "$got"
expect_contains "and by tasks.api" "$(ask tasks.api)" "$api_names"
[ -n "$(ask tasks.api)" ] || fail "tasks.api does not answer"
n_addr=$(dkn "$wn" 10 exec "$wc" nslookup -type=a tasks.api 2>&1 | grep -c '^Address: *[0-9.]*$')
expect_eq "tasks.api: the 2 tasks' addresses" 2 "$n_addr"

log "a web task killed on node 2: replaced there, the volume's data kept"
read -r _ _ c2 _ < <(tasks st_web | grep '^2 running ')
[ -n "$c2" ] || fatal "no running web task on node 2: $(tasks st_web)"
first2=$(dkn 2 10 exec "$c2" cat /data/first 2>&1)
[ -n "$first2" ] || fail "web's task on node 2 wrote nothing in its volume"
# node 2 may run two of web's tasks: the replacement is a container that was
# not running there before, and node 2 runs as many as before
before2=$(tasks st_web | awk '$1 == 2 && $2 == "running" {print $3}')
must "docker kill of web's container on node 2" dkn 2 10 kill "$c2"
fresh2() { tasks st_web | awk '$1 == 2 && $2 == "running" {print $3}' | grep -vxF "$before2"; }
replaced() {
	[ -n "$(fresh2)" ] &&
		[ "$(tasks st_web | grep -c '^2 running ')" -eq "$(grep -c . <<<"$before2")" ]
}
wait_until 60 replaced || fail "web's killed task not replaced on node 2: $(tasks st_web)"
c2b=$(fresh2 | head -n 1)
[ -n "$c2b" ] && [ "$c2b" != "$c2" ] && ok "a new task on node 2 (${c2b:0:12})" || fail "node 2: $(tasks st_web)"
expect_eq "the new task reads what the first one wrote in the volume" "$first2" \
	"$(dkn 2 10 exec "$c2b" cat /data/first 2>&1)"
served2() { dkn 2 10 exec "$c2b" sh -c 'printf "GET / HTTP/1.0\r\n\r\n" | nc -w 2 127.0.0.1 80 | tail -n 1 | grep -o "first=.*"' 2>&1; }
serves_first() { [ "$(served2)" = "first=$first2" ]; }
wait_until 20 serves_first && ok "and serves it" || fail "the new task on node 2 serves: $(served2)"
wait_until 30 serving st_web || fail "not every web task serves after the replacement: $(tasks st_web)"

log "a re-deploy with web's environment changed: a rolling update"
# requests from the non-node to the three nodes in turn, all along the update
# (a request that gets no page within 3 s is a failure)
rm -f "$T/load.stop"
(
	k=0
	while [ -d "$T" ] && [ ! -e "$T/load.stop" ]; do
		i=$((k % 3 + 1))
		if body=$(mesh_get "$i" 8088) && [ -n "$body" ]; then
			echo "ok $i ${body#* }"
		else
			echo "fail $i"
		fi
		k=$((k + 1))
	done
) >"$T/load.out" 2>&1 &
LOOPS+=($!)
# what is meant to run, sampled: running tasks (old, new) and all tasks meant to run
(
	while [ -d "$T" ] && [ ! -e "$T/load.stop" ]; do
		t=$(tasks st_web)
		echo "$(grep -c ' running .* 1$' <<<"$t") $(grep -c ' running .* 2$' <<<"$t") $(grep -c . <<<"$t")"
		sleep 0.2
	done
) >"$T/samples.out" 2>&1 &
LOOPS+=($!)
sleep 1
compose 2 >"$T/stack.yml"
must "docker stack deploy with REV=2" dk 90 stack deploy -c "$T/stack.yml" st
all_new() { [ "$(tasks st_web | grep -c ' running .* 2$')" -eq 3 ] && [ "$(tasks st_web | grep -c .)" -eq 3 ]; }
wait_until 120 all_new || fail "web not updated: $(tasks st_web)"
upd() { api_get 1 /services/st_web | python3 -c 'import json,sys; print(json.load(sys.stdin).get("UpdateStatus", {}).get("State", ""))'; }
wait_until 20 eval '[ "$(upd)" = completed ]' || fail "web's UpdateStatus: $(upd)"
wait_until 30 serving st_web || fail "not every new web task serves: $(tasks st_web)"
sleep 1
touch "$T/load.stop"
for p in "${LOOPS[@]}"; do wait "$p" 2>/dev/null; done
LOOPS=()
total=$(grep -c . "$T/load.out")
failed=$(grep -c '^fail' "$T/load.out")
log "during the update: $total requests, $failed failed; samples (old new meant-to-run): $(sort -u "$T/samples.out" | xargs -d '\n' printf '[%s] ')"
[ "$total" -ge 30 ] || fail "only $total requests during the update"
expect_eq "no request failed during the rolling update" 0 "$failed"
if [ "$failed" -ne 0 ]; then
	log "failures by node: $(grep '^fail' "$T/load.out" | sort | uniq -c | xargs)"
fi
expect_contains "requests answered by the new revision by the end" "rev=2" "$(tail -n 3 "$T/load.out")"
min_run=$(awk '$1 + $2 > 0 {print $1 + $2}' "$T/samples.out" | sort -n | head -n 1)
max_meant=$(awk '{print $3}' "$T/samples.out" | sort -n | tail -n 1)
mixed=$(awk '$1 > 0 && $2 > 0' "$T/samples.out" | wc -l)
expect_eq "start-first: never fewer than 3 running" 3 "$min_run"
[ -n "$max_meant" ] && [ "$max_meant" -le 4 ] && ok "parallelism 1: never more than 4 meant to run ($max_meant)" ||
	fail "parallelism 1: up to $max_meant tasks meant to run at once"
[ "$mixed" -gt 0 ] && ok "old and new tasks ran side by side ($mixed samples)" ||
	fail "no sample with old and new tasks both running: $(sort -u "$T/samples.out" | xargs -d '\n')"
web_nodes=$(tasks st_web | awk '{print $1}' | sort | uniq -c | awk '{print $2 ":" $1}' | xargs)
expect_eq "after the update, still on nodes 1 and 2, at most 2 a node" "1:2 2:1" \
	"$(sed 's/1:1 2:2/1:2 2:1/' <<<"$web_nodes")"
# the CLI sends the stack's secrets back whole at each deploy: the same data
# is no change (above), other data is refused as Docker refuses it
printf '%s' "changed-$TAG" >"$T/pass.txt"
out=$(dk 30 stack deploy -c "$T/stack.yml" st 2>&1)
expect_contains "a re-deploy with the secret's file changed is refused, as Docker does" \
	"failed to update secret st_pass: Error response from daemon: only updates to Labels are allowed" "$out"
printf '%s' "s3cret-$TAG" >"$T/pass.txt"
expect_eq "the tasks read the secret as it was" "secret=s3cret-$TAG" "$(mesh_get 1 8088 | grep -o 'secret=[^ ]*')"

log "docker stack rm"
net_id=$(dk 10 network inspect -f '{{.Id}}' st_back 2>&1)
[ -n "$(devs "$net_id")" ] || fail "no device of st_back on any node before the rm"
n_ctrs=$(stack_containers st | grep -c .)
[ "$n_ctrs" -ge 5 ] && ok "the stack's containers are found by its label before the rm ($n_ctrs)" ||
	fail "the stack's containers before the rm: $(stack_containers st)"
out=$(dk 60 stack rm st 2>&1)
rc=$?
log "docker stack rm said (exit $rc): $(echo $out)"
expect_eq "docker stack rm exits 0" 0 "$rc"
for w in "Removing service st_web" "Removing service st_api" "Removing network st_back" "Removing secret st_pass"; do
	expect_contains "stack rm: $w" "$w" "$out"
done
expect_eq "no service left" "" "$(dk 10 service ls -q 2>&1)"
expect_eq "stack ls is empty" "" "$(dk 10 stack ls --format '{{.Name}}' 2>&1)"
expect_not_contains "the network is gone" "st_back" "$(dk 10 network ls --format '{{.Name}}' 2>&1)"
expect_eq "the secret is gone" "" "$(dk 10 secret ls -q 2>&1)"
no_ctrs() { [ -z "$(stack_containers st)" ]; }
wait_until 60 no_ctrs && ok "no container of the stack left on any node" || fail "left: $(stack_containers st)"
no_devs() { [ -z "$(devs "$net_id")" ]; }
wait_until 30 no_devs && ok "no device of st_back left on any node" || fail "left: $(devs "$net_id")"
# as with Docker, the stack's named volume stays on the nodes that made it
for i in 1 2; do
	expect_eq "node $i keeps the volume st_webdata" "st_webdata" \
		"$(dkn "$i" 10 volume ls -q --filter name=st_webdata 2>&1)"
done

if [ -x "$DOCKER_OLD" ]; then
	log "docker 20.10: a smaller stack deployed and removed"
	DOCKER=$DOCKER_OLD
	log "docker client $("$DOCKER" version --format '{{.Client.Version}} (API {{.Client.APIVersion}})' 2>/dev/null)"
	cat >"$T/small.yml" <<'EOF'
version: "3.8"
services:
  web:
    image: busybox
    command: ["sh", "-c", "mkdir -p /w && echo \"$$(hostname) old=$$(cat /run/secrets/pass)\" > /w/index.html && exec httpd -f -p 80 -h /w"]
    ports:
      - "8089:80"
    secrets:
      - pass
    deploy:
      replicas: 2
      placement:
        max_replicas_per_node: 1
secrets:
  pass:
    file: ./pass.txt
EOF
	must "docker 20.10 stack deploy" dk 60 stack deploy -c "$T/small.yml" old
	wait_until 60 running_is old_web 2 || fail "old_web: not 2 running tasks: $(tasks old_web)"
	expect_eq "docker 20.10 stack services: 2/2" "old_web 2/2 (max 1 per node)" \
		"$(dk 10 stack services --format '{{.Name}} {{.Replicas}}' old 2>&1)"
	old_up() { [ -n "$(mesh_get 3 8089)" ]; }
	wait_until 30 old_up || fail "port 8089 does not answer at node 3"
	expect_contains "its port answers at node 3, with the secret" "old=s3cret-$TAG" "$(mesh_get 3 8089)"
	old_net=$(dk 10 network inspect -f '{{.Id}}' old_default 2>&1)
	out=$(dk 60 stack rm old 2>&1)
	expect_eq "docker 20.10 stack rm exits 0" 0 "$?"
	expect_contains "it removed the network" "Removing network old_default" "$out"
	expect_eq "no service left" "" "$(dk 10 service ls -q 2>&1)"
	expect_eq "no secret left" "" "$(dk 10 secret ls -q 2>&1)"
	no_old() { [ -z "$(stack_containers old)$(devs "$old_net")" ]; }
	wait_until 60 no_old && ok "no container or device of the stack left" ||
		fail "left: $(stack_containers old) $(devs "$old_net")"
else
	log "no docker 20.10 client at $DOCKER_OLD: its round not run"
fi

finish
