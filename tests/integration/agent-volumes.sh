#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Mounts and volumes: bind mounts (-v and --mount, read-only too, a missing
# host directory made by -v and refused by --mount), named volumes keeping data
# across container removal, anonymous volumes removed with rm -v and --rm and
# kept otherwise, tmpfs with its options, the /volumes API (ls, inspect, rm
# refused while in use, prune of anonymous ones, prune --all), bad mounts
# refused naming the field, mounts kept across an agent restart, and the
# docker CLI's -v and volume commands.
. "$(dirname "$0")/lib.sh"
node_start

HOST="$T/host"
mkdir -p "$HOST"
echo hello >"$HOST/f"

log "bind mounts"
out=$(shoal run --rm -v "$HOST:/h" busybox cat /h/f 2>&1)
expect_eq "a bind mount shows the host's file" "hello" "$out"
shoal run --rm -v "$HOST:/h" busybox sh -c 'echo from-ctr >/h/g' >/dev/null 2>&1
expect_eq "a write through it reaches the host" "from-ctr" "$(cat "$HOST/g" 2>/dev/null)"
out=$(shoal run --rm -v "$HOST:/h:ro" busybox sh -c 'echo x >/h/f; cat /h/f' 2>&1)
expect_contains "read-only: the write is refused" "Read-only file system" "$out"
expect_eq "read-only: the host's file is unchanged" "hello" "$(cat "$HOST/f")"
out=$(shoal run --rm --mount "type=bind,source=$HOST,target=/m,readonly" busybox sh -c 'cat /m/f; touch /m/n 2>&1')
expect_contains "--mount type=bind reads" "hello" "$out"
expect_contains "--mount readonly refuses writes" "Read-only file system" "$out"
must "-v of a missing host directory" shoal run --rm -v "$T/made/by/v:/d" busybox true
[ -d "$T/made/by/v" ] && ok "-v made the missing host directory" || fail "no $T/made/by/v"
out=$(shoal run --rm --mount "type=bind,source=$T/not-there,target=/d" busybox true 2>&1)
expect_contains "--mount of a missing source is refused" "bind source path does not exist: $T/not-there" "$out"
[ ! -e "$T/not-there" ] && ok "and nothing was made" || fail "$T/not-there was made"

log "named volumes"
must "writing into a named volume" shoal run --rm -v data1:/v busybox sh -c 'echo kept >/v/k'
out=$(shoal run --rm -v data1:/v busybox cat /v/k 2>&1)
expect_eq "its data outlives the container" "kept" "$out"
out=$(api GET /volumes/data1)
expect_contains "inspect: 200" "200 " "$out"
expect_contains "inspect: the local driver" '"Driver":"local"' "$out"
must "a container holding it" shoal create --name holder -v data1:/v busybox true
out=$(api DELETE /volumes/data1)
expect_contains "removal while in use: 409" "409 " "$out"
expect_contains "it names the container" "volume is in use - [$(shoal inspect -f '{{.Id}}' holder | cut -c1-12)]" "$out"
out=$(shoal inspect holder)
expect_contains "the container's Mounts name the volume" '"Name": "data1"' "$out"
must "removing the holder" shoal rm holder
must "removing the volume" shoal volume rm data1
expect_contains "gone: 404" "404 " "$(api GET /volumes/data1)"
must "a volume with a label" shoal volume create --label team=a labelled
expect_contains "ls --filter label" "labelled" "$(shoal volume ls -q --filter label=team=a)"
expect_eq "ls --filter label excludes" "" "$(shoal volume ls -q --filter label=team=b)"

log "anonymous volumes"
cid=$(shoal run -d -v /anon busybox sh -c 'echo a >/anon/x')
must "waiting for it" shoal wait "$cid"
anon=$(shoal inspect "$cid" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["Mounts"][0]["Name"])')
[ ${#anon} -eq 64 ] && ok "an anonymous volume gets a 64-hex name" || fail "name: [$anon]"
must "rm without -v" shoal rm "$cid"
expect_contains "rm without -v keeps it" "200 " "$(api GET "/volumes/$anon")"
cid=$(shoal create -v /anon2 busybox true)
anon2=$(shoal inspect "$cid" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["Mounts"][0]["Name"])')
expect_contains "rm -v removes it" "204" "$(api DELETE "/containers/$cid?v=1")"
expect_contains "gone with its container" "404 " "$(api GET "/volumes/$anon2")"
must "--rm with an anonymous volume" shoal run --rm -v /anon3 busybox true
left=$(api GET /volumes | cut -d' ' -f2- | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["Volumes"]))')
expect_eq "--rm took its anonymous volume along (labelled and the kept one remain)" 2 "$left"
out=$(shoal volume prune -f)
expect_contains "prune removes the unused anonymous volume" "$anon" "$out"
expect_contains "prune keeps named ones" "labelled" "$(shoal volume ls -q)"
out=$(shoal volume prune -f --all)
expect_contains "prune --all removes unused named ones" "labelled" "$out"
expect_eq "nothing left" "" "$(shoal volume ls -q)"

log "tmpfs"
out=$(shoal run --rm --tmpfs /t:size=1m busybox sh -c 'grep " /t " /proc/mounts')
expect_contains "a tmpfs at /t" "tmpfs /t tmpfs" "$out"
expect_contains "with its size" "size=1024k" "$out"
expect_contains "noexec by default" "noexec" "$out"
out=$(shoal run --rm --mount type=tmpfs,target=/t2,tmpfs-size=2m busybox grep " /t2 " /proc/mounts)
expect_contains "--mount type=tmpfs with tmpfs-size" "size=2048k" "$out"

log "bad mounts are refused, naming the field"
out=$(api POST /containers/create '{"Image":"busybox","HostConfig":{"Binds":["'"$HOST"':/h:z"]}}')
expect_contains "an unsupported mode: 400" "400 " "$out"
expect_contains "it names the field and option" 'HostConfig.Binds[0]: mode option \"z\"' "$out"
out=$(api POST /containers/create '{"Image":"busybox","HostConfig":{"Binds":["'"$HOST"':rel"]}}')
expect_contains "a relative destination: 400" "HostConfig.Binds[0]: the destination must be an absolute path" "$out"
out=$(api POST /containers/create '{"Image":"busybox","HostConfig":{"Binds":["'"$HOST"':/a","'"$HOST"':/a"]}}')
expect_contains "two mounts on one path: 400" "Duplicate mount point: /a" "$out"
out=$(api POST /containers/create '{"Image":"busybox","HostConfig":{"Mounts":[{"Type":"volume","Source":"v1","Target":"/v","VolumeOptions":{"DriverConfig":{"Name":"nfs"}}}]}}')
expect_contains "another volume driver: 400" "HostConfig.Mounts[0].VolumeOptions.DriverConfig: only the local driver" "$out"
out=$(api POST /containers/create '{"Image":"busybox","HostConfig":{"Mounts":[{"Type":"npipe","Source":"x","Target":"/v"}]}}')
expect_contains "another mount type: 400" 'HostConfig.Mounts[0].Type: \"npipe\" is not supported' "$out"
out=$(api POST /volumes/create '{"Name":"x y"}')
expect_contains "a bad volume name: 400" "400 " "$out"
out=$(api POST /volumes/create '{"Name":"optvol","DriverOpts":{"type":"tmpfs"}}')
expect_contains "driver options: 400" "DriverOpts: not supported" "$out"
expect_eq "no volume was made by the refused requests" "" "$(shoal volume ls -q)"

log "mounts survive an agent restart"
cid=$(shoal run -d -v keep:/k busybox sh -c 'echo 1 >/k/n; sleep 1000')
agent_kill9
agent_start
must "stopping it" shoal stop -t 1 "$cid"
must "starting it again" shoal start "$cid"
out=$(shoal exec "$cid" cat /k/n 2>&1)
expect_eq "the volume is mounted again after the agent's restart" "1" "$out"
must "removing it" shoal rm -f "$cid"

log "a service's mounts: a named volume, a bind, a tmpfs"
mkdir -p "$T/svc-bind" && echo from-host >"$T/svc-bind/f"
must "creating a service with mounts" shoal service create -d --name vsvc --replicas 2 \
	--mount type=volume,source=svcvol,target=/data \
	--mount "type=bind,source=$T/svc-bind,target=/h,readonly" \
	--mount type=tmpfs,target=/scratch,tmpfs-size=1m \
	busybox sh -c 'echo $HOSTNAME >>/data/seen; sleep 1000'
svc_running() { [ "$(shoal service ps -q --filter desired-state=running vsvc | wc -l)" -eq 2 ] &&
	[ "$(shoal ps -q --filter label=com.docker.swarm.service.name=vsvc | wc -l)" -eq 2 ]; }
eventually 20 svc_running && ok "both tasks running" || fail "tasks: $(shoal service ps vsvc 2>&1)"
first=$(shoal ps -q --filter label=com.docker.swarm.service.name=vsvc | head -n 1)
seen() { [ "$(shoal exec "$first" sh -c 'wc -l </data/seen' 2>/dev/null)" = 2 ]; }
eventually 10 seen && ok "both tasks write to the one named volume" ||
	fail "the volume holds: $(shoal exec "$first" cat /data/seen 2>&1)"
expect_eq "the bind is the host's directory" "from-host" "$(shoal exec "$first" cat /h/f 2>&1)"
out=$(shoal exec "$first" sh -c 'echo x >/h/g' 2>&1)
expect_contains "the readonly bind refuses writes" "Read-only file system" "$out"
expect_contains "a tmpfs of 1 MiB at /scratch" "tmpfs 1024 " \
	"$(shoal exec "$first" df -k /scratch 2>&1 | tail -n 1 | awk '{print $1, $2}') "
expect_contains "service inspect shows the mounts" '"Target":"/scratch"' \
	"$(shoal service inspect -f '{{json .Spec.TaskTemplate.ContainerSpec.Mounts}}' vsvc 2>&1)"
must "removing the bind and the tmpfs by their targets" shoal service update -d \
	--mount-rm /h --mount-rm /scratch vsvc
out=$(shoal service inspect -f '{{json .Spec.TaskTemplate.ContainerSpec.Mounts}}' vsvc 2>&1)
expect_not_contains "the bind is gone from the spec" '"/h"' "$out"
expect_contains "the volume stays" '"/data"' "$out"
must "removing the service" shoal service rm vsvc
expect_contains "the named volume outlives the service" "svcvol" "$(shoal volume ls -q)"
out=$(shoal service create --name badm --mount type=bind,source=rel,target=/x busybox true 2>&1)
expect_contains "a relative bind source: refused naming the field" \
	"TaskTemplate.ContainerSpec.Mounts[0].Source: a bind source must be an absolute host path" "$out"
out=$(api POST /services/create '{"Name":"badm","TaskTemplate":{"ContainerSpec":{"Image":"busybox","Mounts":[{"Type":"volume","Source":"aa","Target":"/a"},{"Type":"tmpfs","Target":"/a"}]}}}')
expect_contains "two mounts on one target: 400" "400 " "$out"
expect_contains "and why" "Duplicate mount point: /a" "$out"
out=$(api POST /services/create '{"Name":"badm","TaskTemplate":{"ContainerSpec":{"Image":"busybox","Mounts":[{"Source":"a"}]}}}')
expect_contains "a mount without a type or target: 400" "Mounts[0].Type: required" "$out"
expect_eq "no service made by the refused requests" "" "$(shoal service ls -q)"

DOCKER=$(command -v docker || true)
if [ -n "$DOCKER" ]; then
	log "the docker CLI"
	export DOCKER_HOST="unix://$SOCK" DOCKER_CONFIG="$T/docker-config"
	dk() { timeout -k 2 20 "$DOCKER" "$@"; }
	out=$(dk volume create dvol 2>&1)
	expect_eq "docker volume create" "dvol" "$out"
	out=$(dk run --rm -v dvol:/d busybox sh -c 'echo via-docker >/d/f; cat /d/f' 2>&1)
	expect_eq "docker run -v NAME:/d" "via-docker" "$out"
	out=$(dk run --rm -v "$HOST:/h:ro" busybox cat /h/f 2>&1)
	expect_eq "docker run -v HOST:/h:ro" "hello" "$out"
	expect_contains "docker volume ls" "dvol" "$(dk volume ls 2>&1)"
	expect_contains "docker volume inspect" '"Mountpoint"' "$(dk volume inspect dvol 2>&1)"
	must "docker volume rm" dk volume rm dvol
	must "docker service create --mount" dk service create -d --name dsvc \
		--mount type=volume,source=dsvol,target=/d busybox sleep 1000
	out=$(dk service inspect -f '{{range .Spec.TaskTemplate.ContainerSpec.Mounts}}{{.Type}} {{.Source}} {{.Target}}{{end}}' dsvc 2>&1)
	expect_eq "docker service inspect shows the mount" "volume dsvol /d" "$out"
	must "docker service rm" dk service rm dsvc
fi
finish
