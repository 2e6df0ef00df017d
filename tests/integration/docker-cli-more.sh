#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The docker CLI's container and image operations beyond the life cycle,
# against shoald: restart, rename, pause/unpause, update, top, stats, events
# (a container's network connect/disconnect and volume mount/unmount too),
# system df, container and image prune, image tag and history; and what they
# refuse. Every command is bounded by a timeout, so a hang fails naming it.
. "$(dirname "$0")/lib.sh"

DOCKER=${DOCKER:-$(command -v docker)}
[ -n "$DOCKER" ] || { echo "SKIP: no docker CLI on this machine"; exit $SKIP; }
[ -x "$DOCKER" ] || { echo "SKIP: no docker CLI at $DOCKER (scripts/deps.sh installs it)"; exit $SKIP; }
log "docker client $("$DOCKER" version --format '{{.Client.Version}} (API {{.Client.APIVersion}})' 2>/dev/null)"
node_start
export DOCKER_HOST="unix://$SOCK"
unset DOCKER_CONTEXT DOCKER_TLS_VERIFY DOCKER_CERT_PATH
export DOCKER_CONFIG="$T/docker-config"

dk() {
	local secs=$1
	shift
	timeout -k 2 "$secs" "$DOCKER" "$@"
	local rc=$?
	if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
		fail "docker $* hung (no answer in ${secs} s)"
	fi
	return $rc
}
lines() { dk 10 logs "$1" 2>/dev/null | wc -l; }
# Docker's --until is whole seconds (the CLI sends "0s" as now, truncated):
# what is asked for right after an event waits for the clock's next second.
next_second() {
	local s
	s=$(date +%s)
	while [ "$(date +%s)" -eq "$s" ]; do sleep 0.05; done
}

must "docker load" dk 30 load -i "$TEST_IMAGE"

log "events: a container's create, start, die and destroy, in order"
must "docker run" dk 20 run --name ev --label team=fish busybox true
must "docker rm" dk 10 rm ev
next_second
out=$(dk 10 events --since 1m --until 0s --filter container=ev --format '{{.Action}}' 2>&1)
expect_eq "docker events --since 1m --until 0s" "create start die destroy" "$(echo $out)"
out=$(dk 10 events --since 1m --until 0s --filter event=die --filter label=team=fish \
	--format '{{.Type}} {{.Actor.Attributes.name}} {{.Actor.Attributes.exitCode}}' 2>&1)
expect_eq "events filtered by event and label carry Docker's attributes" "container ev 0" "$out"
out=$(dk 10 events --since 1m --until 0s --filter bogus=1 2>&1)
expect_contains "an unknown events filter is refused, naming it" "bogus is not supported" "$out"
out=$(dk 10 events --since 1m --until 0s --filter type=spaceship 2>&1)
expect_contains "an unknown event type is refused" "type spaceship" "$out"
# a follower sees what happens after it subscribed (since: none is missed
# while it connects)
since=$(date +%s)
dk 15 events --since "$since" --filter container=ev2 --format '{{.Action}}' >"$T/follow.out" 2>&1 &
FOLLOW=$!
must "docker run ev2" dk 20 run --rm --name ev2 busybox true
eventually 5 grep -q destroy "$T/follow.out"
kill "$FOLLOW" 2>/dev/null
wait "$FOLLOW" 2>/dev/null
expect_eq "docker events follows new events" "create start die destroy" "$(echo $(cat "$T/follow.out"))"

log "events: volumes, networks, services and nodes"
must "docker volume create" dk 10 volume create evvol
must "docker volume rm" dk 10 volume rm evvol
must "docker network create" dk 10 network create -d overlay evnet
must "docker network rm" dk 10 network rm evnet
must "docker service create" dk 20 service create -d --name evsvc busybox sleep 1000
must "docker service update" dk 20 service update -d --replicas 2 evsvc
must "docker service rm" dk 20 service rm evsvc
next_second
out=$(dk 10 events --since 1m --until 0s --filter type=volume --format '{{.Action}} {{.Actor.ID}} {{.Actor.Attributes.driver}}' 2>&1)
expect_eq "volume create and destroy" "create evvol local destroy evvol local" "$(echo $out)"
out=$(dk 10 events --since 1m --until 0s --filter network=evnet --format '{{.Type}} {{.Action}} {{.Actor.Attributes.type}} {{.Scope}}' 2>&1)
expect_eq "network create and destroy, swarm-scoped" \
	"network create overlay swarm network destroy overlay swarm" "$(echo $out)"
svc_events() { dk 10 events --since 1m --until 0s --filter service=evsvc --format '{{.Action}} {{.Actor.Attributes.name}}' 2>&1; }
# the record goes once its tasks have stopped
eventually 15 eval 'svc_events | grep -q "remove evsvc"'
out=$(svc_events)
expect_eq "service create first, named" "create evsvc" "$(echo "$out" | head -n 1)"
expect_contains "the update" "update evsvc" "$out"
expect_eq "the remove last" "remove evsvc" "$(echo "$out" | tail -n 1)"
must_get node "the node's id" dk 10 node ls -q
must "docker node update" dk 10 node update --label-add ev=1 "$node"
next_second
out=$(dk 10 events --since 1m --until 0s --filter node="$node" --filter scope=swarm --format '{{.Action}}' 2>&1)
expect_contains "a node update is an event" "update" "$out"
out=$(dk 10 events --since 1m --until 0s --filter scope=local --filter type=service 2>&1)
expect_eq "no service event is local" "" "$out"

log "events: a container's network and volumes around its run"
must_get evm "docker run with a named volume" dk 20 run -d --name evm -v evmvol:/data busybox true
must "docker wait" dk 20 wait evm
next_second
out=$(dk 10 events --since 1m --until 0s --filter volume=evmvol --format '{{.Action}}' 2>&1)
expect_eq "the volume: created, mounted at the start, unmounted at the end" "create mount unmount" "$(echo $out)"
out=$(dk 10 events --since 1m --until 0s --filter volume=evmvol --filter event=mount \
	--format '{{.Actor.Attributes.container}} {{.Actor.Attributes.destination}} {{index .Actor.Attributes "read/write"}}' 2>&1)
expect_eq "the mount names the container, where and how" "$evm /data true" "$out"
out=$(dk 10 events --since 1m --until 0s --filter type=network --filter network=bridge \
	--format '{{.Action}} {{.Actor.Attributes.container}} {{.Actor.Attributes.type}}' 2>&1 | grep "$evm")
expect_eq "the bridge network: connect at the start, disconnect at the end" \
	"connect $evm bridge disconnect $evm bridge" "$(echo $out)"
must "docker rm evm" dk 10 rm evm
must "docker volume rm evmvol" dk 10 volume rm evmvol

log "restart: same id, a new start"
must_get id "docker run -d" dk 20 run -d --name r1 busybox sleep 1000
must_get s1 "StartedAt" dk 10 inspect -f '{{.State.StartedAt}}' r1
must "docker restart" dk 30 restart -t 1 r1
out=$(dk 10 inspect -f '{{.Id}} {{.State.Status}}' r1 2>&1)
expect_eq "restart keeps the id and runs it again" "$id running" "$out"
next_second
must_get s2 "StartedAt after the restart" dk 10 inspect -f '{{.State.StartedAt}}' r1
if [ "$s1" != "$s2" ]; then ok "restart: StartedAt moved ($s1 -> $s2)"; else fail "restart: StartedAt unchanged ($s1)"; fi
out=$(dk 10 events --since 1m --until 0s --filter container=r1 --format '{{.Action}}' 2>&1)
# sleep as pid 1 ignores SIGTERM: the stop's KILL follows it a second later
expect_eq "restart: kill (TERM, then KILL), die, stop, start, restart" \
	"create start kill kill die stop start restart" "$(echo $out)"
out=$(dk 10 events --since 1m --until 0s --filter container=r1 --filter event=kill --format '{{.Actor.Attributes.signal}}' 2>&1)
expect_eq "kill events carry the signal" "15 9" "$(echo $out)"
out=$(dk 10 restart nosuch 2>&1)
expect_contains "restart of an unknown container: Docker's 404" "No such container: nosuch" "$out"

log "rename"
must "docker rename" dk 10 rename r1 r2
out=$(dk 10 ps --format '{{.Names}}' 2>&1)
expect_eq "ps shows the new name" "r2" "$out"
out=$(dk 10 container inspect r1 2>&1)
expect_contains "the old name is gone" "No such container: r1" "$out"
must_get idr "the new name finds it" dk 10 inspect -f '{{.Id}}' r2
expect_eq "same container" "$id" "$idr"
must_get other "another container" dk 20 run -d --name taken busybox sleep 1000
out=$(dk 10 rename r2 taken 2>&1)
expect_contains "a name in use is refused" "is already in use" "$out"
out=$(dk 10 rename r2 'bad/name' 2>&1)
expect_contains "a bad name is refused" "Invalid container name" "$out"
next_second
out=$(dk 10 events --since 1m --until 0s --filter event=rename --format '{{.Actor.Attributes.name}} {{.Actor.Attributes.oldName}}' 2>&1)
expect_eq "rename is an event with the old name" "r2 /r1" "$out"

log "top"
out=$(dk 10 top r2 2>&1)
expect_contains "top lists the container's process" "sleep 1000" "$out"
expect_contains "top has ps -ef's titles" "PPID" "$out"
out=$(dk 10 top r2 aux 2>&1)
expect_contains "top aux has ps aux's titles" "%MEM" "$out"
out=$(dk 10 top r2 -o pid 2>&1)
expect_contains "unsupported ps options are refused" "ps_args -o pid: not supported" "$out"

log "update"
must "docker update --memory" dk 10 update --memory 64m --memory-swap 128m r2
out=$(dk 10 inspect -f '{{.HostConfig.Memory}}' r2 2>&1)
expect_eq "inspect shows the new memory limit" "67108864" "$out"
if [ -d /sys/fs/cgroup/memory ]; then
	cgf="/sys/fs/cgroup/memory$CG_PARENT/$id/memory.limit_in_bytes"
else
	cgf="/sys/fs/cgroup$CG_PARENT/$id/memory.max"
fi
expect_eq "the cgroup holds it" "67108864" "$(cat "$cgf" 2>&1)"
must "docker update --cpus" dk 10 update --cpus 0.5 r2
out=$(dk 10 inspect -f '{{.HostConfig.NanoCpus}}' r2 2>&1)
expect_eq "inspect shows the CPU limit" "500000000" "$out"
out=$(dk 10 update --cpuset-cpus 0 r2 2>&1)
expect_contains "a resource shoal does not enforce is refused, naming it" "CpusetCpus: not supported" "$out"
out=$(dk 10 update --memory 1k r2 2>&1)
expect_contains "a limit Docker would refuse is refused" "Minimum memory limit" "$out"

log "stats"
out=$(dk 15 stats --no-stream --format '{{.Name}}|{{.MemUsage}}|{{.CPUPerc}}|{{.PIDs}}' r2 2>&1)
expect_contains "stats --no-stream names the container" "r2|" "$out"
mem=${out#*|}
mem=${mem%%|*}
case "$mem" in
0B*|"") fail "stats --no-stream: memory usage is zero: [$out]" ;;
*) ok "stats --no-stream: memory usage $mem" ;;
esac
expect_contains "stats shows the memory limit set by update" "/ 64MiB" "$out"
expect_eq "stats counts the container's processes" "1" "${out##*|}"
# the docker CLI's stats stream outlives SIGTERM and SIGINT
timeout -s KILL 4 "$DOCKER" stats --format '{{.Name}} {{.NetIO}}' r2 >"$T/stats.out" 2>&1
n=$(tr '\033' '\n' <"$T/stats.out" | grep -o 'r2 [0-9][^ ]*B / [0-9][^ ]*B' | sort -u | wc -l)
if [ "$n" -ge 1 ]; then ok "docker stats streams network figures"; else fail "docker stats streamed no figures: $(head -c 500 "$T/stats.out")"; fi
out=$(timeout 5 curl -sN --unix-socket "$SOCK" "http://d/containers/r2/stats?stream=1" | head -3 |
	python3 -c 'import json,sys; v=[json.loads(l) for l in sys.stdin]; print(len(v), all(x["precpu_stats"]["system_cpu_usage"] > 0 for x in v[1:]), v[-1]["memory_stats"]["usage"] > 0)')
expect_eq "the stats stream: one sample a second, each with the one before" "3 True True" "$out"
out=$(dk 10 stats --no-stream nosuch 2>&1)
expect_contains "stats of an unknown container" "No such container: nosuch" "$out"

log "pause and unpause"
must_get pid "a counter" dk 20 run -d --name p1 busybox sh -c 'while true; do echo tick; sleep 0.1; done'
eventually 5 sh -c "[ \$($DOCKER logs p1 2>/dev/null | wc -l) -ge 3 ]"
must "docker pause" dk 10 pause p1
out=$(dk 10 ps --filter name=p1 --format '{{.Status}}' 2>&1)
expect_contains "ps shows it paused" "(Paused)" "$out"
out=$(dk 10 inspect -f '{{.State.Status}} {{.State.Paused}}' p1 2>&1)
expect_eq "inspect shows it paused" "paused true" "$out"
out=$(dk 10 ps --filter status=paused --format '{{.Names}}' 2>&1)
expect_eq "ps --filter status=paused" "p1" "$out"
a=$(lines p1)
sleep 1
b=$(lines p1)
expect_eq "a paused counter does not advance" "$a" "$b"
out=$(dk 10 exec p1 true 2>&1)
expect_contains "exec into a paused container is refused" "is paused" "$out"
out=$(dk 10 pause p1 2>&1)
expect_contains "pausing twice is refused" "already paused" "$out"
must "docker unpause" dk 10 unpause p1
eventually 5 sh -c "[ \$($DOCKER logs p1 2>/dev/null | wc -l) -gt $b ]"
c=$(lines p1)
if [ "$c" -gt "$b" ]; then ok "an unpaused counter advances again ($b -> $c)"; else fail "no progress after unpause ($b -> $c)"; fi
out=$(dk 10 inspect -f '{{.State.Status}}' p1 2>&1)
expect_eq "running again" "running" "$out"
next_second
out=$(dk 10 events --since 1m --until 0s --filter container=p1 --filter event=pause --filter event=unpause --format '{{.Action}}' 2>&1)
expect_eq "pause and unpause are events" "pause unpause" "$(echo $out)"
must "pausing it again" dk 10 pause p1
must "a paused container stops" dk 20 stop -t 1 p1
out=$(dk 10 inspect -f '{{.State.Status}}' p1 2>&1)
expect_eq "stopped" "exited" "$out"
must_get pid "a second counter" dk 20 run -d --name p2 busybox sh -c 'while true; do sleep 0.1; done'
must "pausing it" dk 10 pause p2
must "a paused container is removed with -f" dk 20 rm -f p2
out=$(dk 10 ps -a --filter name=p2 -q 2>&1)
expect_eq "it is gone" "" "$out"

log "system df, container prune"
out=$(dk 15 system df --format '{{.Type}} {{.TotalCount}} {{.Active}}' 2>&1)
expect_contains "system df counts the images" "Images 1 1" "$out"
expect_contains "system df counts the containers" "Containers 3 2" "$out"
must_get stopped_id "a stopped container" dk 20 run -d --name stopped busybox sh -c 'echo data > /f'
must "waiting for it" dk 20 wait stopped
out=$(dk 20 container prune -f 2>&1)
expect_contains "container prune removes the stopped ones" "$stopped_id" "$out"
expect_contains "container prune reports what it reclaimed" "Total reclaimed space" "$out"
out=$(dk 10 ps -a --format '{{.Names}}' 2>&1)
expect_eq "the running ones stay" "r2 taken" "$(echo $(echo "$out" | sort))"
out=$(dk 10 container prune -f --filter color=red 2>&1)
expect_contains "an unknown prune filter is refused" "color is not supported" "$out"
out=$(dk 10 container prune -f --filter until=yesterday 2>&1)
expect_contains "a bad until is refused" "until yesterday" "$out"

log "image tag, history, prune"
must "docker tag" dk 10 tag busybox mybox:v1
out=$(dk 10 images --format '{{.Repository}}:{{.Tag}}' 2>&1)
expect_contains "image ls shows the new tag" "mybox:v1" "$out"
expect_contains "and the old one" "busybox:latest" "$out"
out=$(dk 10 tag nosuch mybox:v2 2>&1)
expect_contains "tagging an unknown image" "No such image: nosuch" "$out"
out=$(dk 10 image history --no-trunc mybox:v1 --format '{{.ID}}|{{.Size}}' 2>&1)
rc=$?
expect_eq "image history exits 0" 0 "$rc"
must_get img "the image id" dk 10 inspect -f '{{.Id}}' busybox
expect_contains "history's top row is the image" "$img|" "$(echo "$out" | head -1)"
rows=$(echo "$out" | wc -l)
expect_eq "a row per layer, the older ones <missing>" "1" "$(echo "$out" | tail -n +2 | grep -c '^<missing>|')"
[ "$rows" -eq 2 ] || fail "history has $rows rows: $out"
base=$(echo "$out" | tail -1)
case "${base#*|}" in
*MB | *kB) ok "history sizes the layers (${base#*|})" ;;
*) fail "history: the base layer's size is ${base#*|}" ;;
esac
out=$(dk 10 image prune -f 2>&1)
expect_contains "image prune: nothing dangling" "Total reclaimed space: 0B" "$out"
must "docker rmi mybox" dk 10 rmi mybox:v1
out=$(dk 10 images --format '{{.Repository}}:{{.Tag}}' 2>&1)
expect_not_contains "the tag is gone" "mybox" "$out"
next_second
out=$(dk 10 events --since 1m --until 0s --filter type=image --format '{{.Action}} {{.Actor.ID}} {{.Actor.Attributes.name}}' 2>&1)
expect_eq "tag and untag are image events" "tag $img mybox:v1 untag $img mybox:v1" "$(echo $out)"
log "restart policies: --restart always restarts, docker stop keeps it stopped"
must "docker run -d --restart always" dk 20 run -d --name rp --restart always busybox sleep 0.2
rp_restarted() { [ "$(dk 10 inspect -f '{{.RestartCount}}' rp 2>/dev/null)" -ge 2 ]; }
eventually 10 rp_restarted || fail "--restart always: RestartCount $(dk 10 inspect -f '{{.RestartCount}}' rp 2>&1) after 10 s"
expect_eq "inspect shows the policy" "always" "$(dk 10 inspect -f '{{.HostConfig.RestartPolicy.Name}}' rp 2>&1)"
must "docker stop" dk 20 stop -t 1 rp
rp_exited() { [ "$(dk 10 inspect -f '{{.State.Status}}' rp 2>/dev/null)" = exited ]; }
eventually 5 rp_exited
n=$(dk 10 inspect -f '{{.RestartCount}}' rp 2>&1)
sleep 0.8
expect_eq "docker stop keeps it stopped" "exited $n" "$(dk 10 inspect -f '{{.State.Status}} {{.RestartCount}}' rp 2>&1)"
must "docker update --restart" dk 10 update --restart on-failure:3 rp
expect_eq "update --restart changes the policy" "on-failure 3" \
	"$(dk 10 inspect -f '{{.HostConfig.RestartPolicy.Name}} {{.HostConfig.RestartPolicy.MaximumRetryCount}}' rp 2>&1)"
out=$(dk 10 run -d --rm --restart always busybox true 2>&1) && fail "--rm with --restart accepted"
case "$out" in
*"cannot specify both --restart and --rm"* | *"can't create 'AutoRemove' container with restart policy"* | \
	*"Conflicting options: --restart and --rm"*)
	ok "--rm with --restart refused" ;;
*) fail "--rm with --restart: [$out]" ;;
esac
out=$(dk 10 run -d --restart always:2 busybox true 2>&1) && fail "--restart always:2 accepted"
expect_contains "a retry count for always is refused" "maximum retry count can only be used with 'on-failure'" "$out"
must "docker rm -f rp" dk 20 rm -f rp
must "removing the rest" dk 20 rm -f r2 taken
out=$(dk 20 image prune -a -f 2>&1)
expect_contains "image prune -a removes an unused image" "deleted: sha256:" "$out"
out=$(dk 10 images -q 2>&1)
expect_eq "no images left" "" "$out"
left=$(ls -d /sys/fs/cgroup/*"$CG_PARENT"/*/ /sys/fs/cgroup"$CG_PARENT"/*/ 2>/dev/null)
expect_eq "no container cgroup is left in any hierarchy (freezer and cpuacct too)" "" "$left"

finish
