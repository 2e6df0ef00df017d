#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Secrets and configs on one agent (SQLite): create, list, inspect without the
# data, label updates, removal refused while a service uses them; the secret's
# data encrypted in state.db; a 2-replica service reading them from read-only
# files with their owner and mode; an agent restart with the key kept, and one
# with another key, which says so; bad input refused with nothing stored; and
# the docker CLI's secret, config, service and stack commands.
. "$(dirname "$0")/lib.sh"
node_start

MARK="s3cr3t-marker-$TAG"
CMARK="config-marker-$TAG"
printf '%s' "$MARK" >"$T/secret.txt"
printf 'listen=%s\n' "$CMARK" >"$T/config.txt"

body() { cut -d' ' -f2-; }
status() { cut -d' ' -f1; }
jget() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }
tasks_json() { curl -s --unix-socket "$SOCK" -G --data-urlencode "filters={\"service\":{\"$1\":true}}" http://shoal/tasks; }
running_ids() { # container ids of the service's running tasks
	tasks_json "$1" | python3 -c '
import json,sys
for t in json.load(sys.stdin):
    if t["DesiredState"]=="running" and t["Status"]["State"]=="running":
        print(t["Status"]["ContainerStatus"]["ContainerID"])'
}
running_is() { [ "$(running_ids "$1" | wc -l)" -eq "$2" ]; }
secret_count() { shoal secret ls -q | wc -l; }

log "the key: made on the first start, 0600, 32 bytes"
expect_eq "secrets.key mode, owner and size" "600 0 32" "$(stat -c '%a %u %s' "$T/data/secrets.key" 2>&1)"

log "create, ls, inspect (no data), update labels"
must_get sid "shoal secret create" shoal secret create --label team=db dbpass "$T/secret.txt"
expect_eq "the id is 25 characters" 25 "${#sid}"
expect_contains "secret ls lists it" "dbpass" "$(shoal secret ls)"
expect_eq "secret ls -q" "$sid" "$(shoal secret ls -q)"
expect_eq "filter name (a prefix, as Docker)" "$sid" "$(shoal secret ls -q -f name=dbp)"
expect_eq "filter label" "$sid" "$(shoal secret ls -q -f label=team=db)"
expect_eq "filter label, no match" "" "$(shoal secret ls -q -f label=team=web)"
out=$(shoal secret inspect dbpass)
expect_contains "inspect shows the name" '"Name": "dbpass"' "$out"
expect_contains "inspect shows the labels" '"team": "db"' "$out"
expect_not_contains "inspect never shows Data" '"Data"' "$out"
expect_not_contains "inspect never shows the sealed value" 'Sealed' "$out"
expect_not_contains "nor the plaintext" "$MARK" "$out"
ver=$(api GET "/secrets/$sid" | body | jget 'd["Version"]["Index"]')
out=$(api POST "/secrets/$sid/update?version=$ver" '{"Name":"dbpass","Labels":{"team":"ops"}}')
expect_eq "label update answered 200" 200 "$(echo "$out" | status)"
expect_eq "the new labels" '{"team": "ops"}' "$(api GET /secrets/dbpass | body | jget 'json.dumps(d["Spec"]["Labels"])')"
out=$(api POST "/secrets/$sid/update?version=$ver" '{"Name":"dbpass","Labels":{}}')
expect_eq "an update at a stale version: 409" 409 "$(echo "$out" | status)"
ver=$(api GET "/secrets/$sid" | body | jget 'd["Version"]["Index"]')
out=$(api POST "/secrets/$sid/update?version=$ver" '{"Name":"dbpass","Data":"eA=="}')
expect_eq "changing the data is refused: 400" 400 "$(echo "$out" | status)"
expect_contains "with Docker's words" "only updates to Labels are allowed" "$out"
out=$(api POST "/secrets/$sid/update?version=$ver" '{"Name":"other"}')
expect_contains "renaming is refused" "only updates to Labels are allowed" "$out"

log "configs: kept as given, shown with their data"
must_get cid "shoal config create" shoal config create appcfg "$T/config.txt"
out=$(api GET /configs/appcfg | body | jget 'd["Spec"]["Data"]')
expect_eq "config inspect shows Data" "$(base64 -w0 <"$T/config.txt")" "$out"
expect_eq "config ls -q" "$cid" "$(shoal config ls -q)"

log "at rest: state.db holds the secret sealed, never its plaintext"
sync
grep -rqa "$MARK" "$T/data/" && fail "the plaintext is in a file of the data dir" ||
	ok "no file of the data dir holds the plaintext"
grep -qa "$(printf '%s' "$MARK" | base64 -w0)" "$T/data/state.db"* && fail "its base64 is in state.db" ||
	ok "nor its base64"
# the store's values are BLOBs: read as text, and the raw dump (hex) too
dump=$(sqlite3 "$T/data/state.db" "SELECT CAST(key AS TEXT), CAST(value AS TEXT) FROM kv;
	SELECT CAST(key AS TEXT), CAST(value AS TEXT) FROM history;" 2>&1)
expect_contains "sqlite3 reads the store" "/shoal/secrets/$sid" "$dump"
raw=$(sqlite3 "$T/data/state.db" .dump 2>&1)
hex=$(printf '%s' "$MARK" | od -An -tx1 | tr -d ' \n')
expect_contains "sqlite3 .dump holds the record" "$(printf '%s' "/shoal/secrets/$sid" | od -An -tx1 | tr -d ' \n')" "$raw"
[[ "${raw,,}" == *"$hex"* ]] && fail "the .dump holds the plaintext (hex)" || ok "the .dump holds no plaintext"
expect_contains "the record names its key" "\"KeyID\":\"$(head -c 32 "$T/data/secrets.key" | sha256sum | cut -c1-16)\"" "$dump"
expect_contains "and its cipher" "AES-256-GCM" "$dump"
expect_not_contains "the dump holds no plaintext" "$MARK" "$dump"
expect_contains "a config is not secret: kept as is" "$(base64 -w0 <"$T/config.txt")" "$dump"

log "bad input is refused and stores nothing"
n0=$(secret_count)
out=$(api POST /secrets/create '{"Name":"b64","Data":"not base64!"}')
expect_eq "bad base64: 400" 400 "$(echo "$out" | status)"
expect_contains "naming base64" "base64" "$out"
head -c 600000 /dev/urandom >"$T/big"
out=$(shoal secret create big "$T/big" 2>&1)
expect_eq "too large: refused" 1 $?
expect_contains "naming the limit" "less than 512000 bytes (500 KB)" "$out"
expect_contains "saying the file is past it, not its first bytes' size" "big: more than 512000 bytes" "$out"
out=$(shoal secret create dbpass "$T/secret.txt" 2>&1)
expect_contains "a taken name: Docker's words" "secret dbpass already exists" "$out"
out=$(api POST /secrets/create '{"Name":"dup","Data":"eA=="}')
out2=$(api POST /secrets/create '{"Name":"dup","Data":"eQ=="}')
expect_eq "the second create of a name: 409" 409 "$(echo "$out2" | status)"
must "removing dup" shoal secret rm dup
out=$(api POST /secrets/create '{"Name":"-bad","Data":"eA=="}')
expect_contains "a bad name" "invalid name, only 64 [a-zA-Z0-9-_.] characters allowed" "$out"
out=$(api POST /secrets/create '{"Name":"empty","Data":""}')
expect_contains "empty data" "must be larger than 0" "$out"
out=$(api POST /secrets/create '{"Name":"drv","Data":"eA==","Driver":{"Name":"vault"}}')
expect_eq "an external driver: 400" 400 "$(echo "$out" | status)"
expect_contains "naming Driver" "Driver" "$out"
expect_eq "none of them stored anything" "$n0" "$(secret_count)"
out=$(shoal service create -d --name nosecret --secret nosuch busybox sleep 1000 2>&1)
expect_contains "a service with an unknown secret: Docker's words" "secret not found: nosuch" "$out"
out=$(shoal service create -d --name abssecret --secret source=dbpass,target=/etc/x busybox sleep 1000 2>&1)
expect_contains "a secret at an absolute path is refused" "not an absolute path" "$out"
expect_eq "no service was made" "" "$(shoal service ls -q)"

log "a 2-replica service reads them: /run/secrets and the config's path"
must "creating service app" shoal service create -d --name app --replicas 2 \
	--secret source=dbpass,target=db,uid=1000,gid=1001,mode=0400 --secret dbpass \
	--config source=appcfg,target=/etc/app.conf busybox sleep 100000
wait_until 60 running_is app 2 && ok "2 tasks running" || fatal "app: $(tasks_json app)"
read_all() { # every running task reads what it was given
	local c n=0
	for c in $(running_ids app); do
		[ "$(shoal exec "$c" cat /run/secrets/db)" = "$MARK" ] || return 1
		[ "$(shoal exec "$c" cat /run/secrets/dbpass)" = "$MARK" ] || return 1
		[ "$(shoal exec "$c" cat /etc/app.conf)" = "listen=$CMARK" ] || return 1
		n=$((n + 1))
	done
	[ "$n" -eq 2 ]
}
read_all && ok "both tasks read the secret (twice) and the config" || fail "reading them: $(for c in $(running_ids app); do shoal exec "$c" sh -c 'ls -l /run/secrets /etc/app.conf; cat /run/secrets/db' 2>&1; done)"
c1=$(running_ids app | head -n 1)
expect_eq "the secret's owner and mode" "1000 1001 400" "$(shoal exec "$c1" stat -c '%u %g %a' /run/secrets/db)"
expect_eq "defaults: 0 0 0444" "0 0 444" "$(shoal exec "$c1" stat -c '%u %g %a' /run/secrets/dbpass)"
expect_eq "the config's" "0 0 444" "$(shoal exec "$c1" stat -c '%u %g %a' /etc/app.conf)"
shoal exec "$c1" sh -c 'echo x > /run/secrets/db' 2>/dev/null && fail "the secret is writable" ||
	ok "the secret is read-only"
expect_contains "it is a tmpfs in the container" "tmpfs /run/secrets/db " "$(shoal exec "$c1" cat /proc/mounts)"
t1=$(tasks_json app | python3 -c 'import json,sys; print([t for t in json.load(sys.stdin) if t["Status"]["ContainerStatus"]["ContainerID"]==sys.argv[1]][0]["ID"])' "$c1")
expect_contains "on the node, a tmpfs per task under the run dir" "tmpfs $T/run/secrets/$t1 tmpfs" "$(cat /proc/mounts)"
grep -rqa "$MARK" "$T/data/" && fail "a task put the plaintext on disk" || ok "still no plaintext on disk"
out=$(shoal service inspect app)
expect_contains "the spec holds the resolved id" "\"SecretID\": \"$sid\"" "$out"

log "removal refused while in use"
out=$(shoal secret rm dbpass 2>&1)
expect_contains "secret rm: Docker's words" "secret 'dbpass' is in use by the following service: app" "$out"
out=$(api DELETE /configs/appcfg)
expect_eq "config rm while in use: 409" 409 "$(echo "$out" | status)"
expect_eq "still there" "$sid" "$(shoal secret ls -q)"

log "the agent restarts with its key: running tasks and new ones read it"
agent_stop
agent_start
read_all && ok "the running tasks still read them" || fail "after restart"
must "removing a task's container" shoal rm -f "$c1"
gone_and_back() { ! running_ids app | grep -qx "$c1" && running_is app 2; }
wait_until 60 gone_and_back && ok "the task was replaced" || fail "no replacement: $(tasks_json app)"
read_all && ok "the new task reads them too (the key was read back)" || fail "new task after restart"
wait_until 10 sh -c "! grep -q 'secrets/$t1 ' /proc/mounts" && ok "the removed container's tmpfs went with it" ||
	fail "the tmpfs of task $t1 is still mounted"

log "an agent with another key says so, and rejects the tasks it cannot decrypt"
head -c 32 /dev/urandom >"$T/other.key"
chmod 600 "$T/other.key"
agent_stop
agent_start --secrets-key-file "$T/other.key"
oid=$(head -c 32 "$T/other.key" | sha256sum | cut -c1-16)
kid=$(head -c 32 "$T/data/secrets.key" | sha256sum | cut -c1-16)
expect_contains "its log names both keys" "encrypted with secrets key $kid, and this node's key ($T/other.key) is $oid" "$(cat "$T/shoald.log")"
c2=$(running_ids app | head -n 1)
must "removing a task's container" shoal rm -f "$c2"
rejected() { tasks_json app | grep -q 'cannot be decrypted'; }
wait_until 60 rejected && ok "a new task is rejected" || fail "no rejection: $(tasks_json app)"
err=$(tasks_json app | python3 -c '
import json,sys
print([t["Status"].get("Err","") for t in json.load(sys.stdin) if "decrypted" in t["Status"].get("Err","")][0])')
expect_contains "the reason names the key mismatch" "secret dbpass cannot be decrypted on this node: it was encrypted with secrets key $kid" "$err"
agent_stop

log "a key file the agent must not use stops it at start, naming the problem"
chmod 644 "$T/other.key"
out=$(timeout 30 nsenter --net="/run/netns/$NETNS" "$SHOALD_BIN" --data-dir "$T/data" --run-dir "$T/run" \
	--socket "$SOCK" --cgroup-parent "$CG_PARENT" --bpffs-dir "/sys/fs/bpf/shoal-it-$TAG" \
	--device-prefix "$TAG" --secrets-key-file "$T/other.key" 2>&1)
expect_eq "refused: exit status" 1 $?
expect_contains "naming the mode" "has mode 0644; group and others must have no access" "$out"
head -c 16 /dev/urandom >"$T/short.key"
chmod 600 "$T/short.key"
out=$(timeout 30 nsenter --net="/run/netns/$NETNS" "$SHOALD_BIN" --data-dir "$T/data" --run-dir "$T/run" \
	--socket "$SOCK" --cgroup-parent "$CG_PARENT" --bpffs-dir "/sys/fs/bpf/shoal-it-$TAG" \
	--device-prefix "$TAG" --secrets-key-file "$T/short.key" 2>&1)
expect_contains "naming the size" "holds 16 bytes; it must hold exactly 32" "$out"

log "back on the right key: the service converges"
agent_start
wait_until 60 running_is app 2 && read_all && ok "2 tasks read them again" || fail "after the key came back: $(tasks_json app)"
must "shoal service update --secret-rm --secret-add" shoal service update -d --secret-rm dbpass \
	--secret-add source=dbpass,target=again app
refs=$(api GET /services/app | body | jget '" ".join(r["SecretName"] + ":" + r["File"]["Name"] for r in d["Spec"]["TaskTemplate"]["ContainerSpec"]["Secrets"])')
expect_eq "the service's secrets after the update" "dbpass:again" "$refs"
must "removing app" shoal service rm app
gone() { [ -z "$(shoal ps -q)" ]; }
wait_until 60 gone || fail "app's containers remain"
must "secret rm once unused" shoal secret rm dbpass
must "config rm once unused" shoal config rm appcfg
expect_eq "no secret left" 0 "$(secret_count)"
expect_eq "no task tmpfs left" "" "$(grep " $T/run/secrets/" /proc/mounts)"

log "a worker answers the swarm's 503"
agent_stop
agent_start --role worker
out=$(api GET /secrets)
expect_eq "GET /secrets on a worker: 503" 503 "$(echo "$out" | status)"
expect_contains "with Docker's words" "not a swarm manager" "$out"
expect_eq "POST /configs/create on a worker: 503" 503 "$(api POST /configs/create '{"Name":"w","Data":"eA=="}' | status)"
agent_stop
# the docker stack puts its services on an overlay network: the node needs an
# underlay address (the client's link)
client_start
agent_start --advertise-addr "$NODE_ADDR"

DOCKER=${DOCKER:-$(command -v docker || true)}
if [ -z "$DOCKER" ]; then
	fail "no docker CLI on this machine: its secret, config and stack commands are not checked"
	finish
fi
export DOCKER_HOST="unix://$SOCK" DOCKER_CONFIG="$T/docker-config"
unset DOCKER_CONTEXT DOCKER_TLS_VERIFY DOCKER_CERT_PATH
dk() {
	local secs=$1
	shift
	timeout -k 2 "$secs" "$DOCKER" "$@"
	local rc=$?
	if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then fail "docker $* hung (no answer in ${secs} s)"; fi
	return $rc
}

log "docker secret and docker config"
must_get dsid "docker secret create" sh -c "printf '%s' '$MARK' | timeout 20 '$DOCKER' secret create --label k=v dsec -"
expect_contains "docker secret ls" "dsec" "$(dk 10 secret ls 2>&1)"
expect_eq "docker secret ls --filter" "dsec" "$(dk 10 secret ls --filter label=k=v --format '{{.Name}}' 2>&1)"
out=$(dk 10 secret inspect dsec 2>&1)
expect_contains "docker secret inspect" "\"ID\": \"$dsid\"" "$out"
expect_not_contains "without the data" "$MARK" "$out"
expect_eq "docker secret inspect --format" "v" "$(dk 10 secret inspect --format '{{index .Spec.Labels "k"}}' dsec 2>&1)"
must_get dcid "docker config create" dk 20 config create dcfg "$T/config.txt"
expect_contains "docker config ls" "dcfg" "$(dk 10 config ls 2>&1)"
expect_contains "docker config inspect --pretty shows the data" "listen=$CMARK" "$(dk 10 config inspect --pretty dcfg 2>&1)"
out=$(dk 10 secret create dsec "$T/secret.txt" 2>&1)
expect_contains "docker secret create of a taken name" "already exists" "$out"

log "docker service create --secret --config"
must "docker service create" dk 60 service create -d --name dsvc --replicas 2 --secret dsec \
	--secret source=dsec,target=other,mode=0400 --config source=dcfg,target=/etc/d.conf busybox sleep 100000
wait_until 60 running_is dsvc 2 && ok "2 tasks" || fail "dsvc: $(tasks_json dsvc)"
dc=$(running_ids dsvc | head -n 1)
expect_eq "the task reads the secret" "$MARK" "$(dk 10 exec "$dc" cat /run/secrets/dsec 2>&1)"
expect_eq "with the mode given" "400" "$(dk 10 exec "$dc" stat -c %a /run/secrets/other 2>&1)"
expect_eq "and the config" "listen=$CMARK" "$(dk 10 exec "$dc" cat /etc/d.conf 2>&1)"
out=$(dk 10 secret rm dsec 2>&1)
expect_contains "docker secret rm while in use" "is in use by the following service: dsvc" "$out"
out=$(dk 30 service update -d --secret-rm dsec --secret-add source=dsec,target=third dsvc 2>&1)
expect_eq "docker service update --secret-rm/--secret-add" 0 $?
third() { c=$(running_ids dsvc | head -n 1) && [ "$(dk 10 exec "$c" cat /run/secrets/third)" = "$MARK" ]; }
wait_until 90 third && ok "the rolling update brought the new target" || fail "after the update: $(tasks_json dsvc)"
must "docker service rm" dk 20 service rm dsvc
wait_until 60 gone || fail "dsvc's containers remain"
must "docker secret rm" dk 10 secret rm dsec
must "docker config rm" dk 10 config rm dcfg
expect_eq "docker secret ls is empty" "" "$(dk 10 secret ls -q 2>&1)"

log "docker stack deploy and rm with a secret"
cat >"$T/stack.yml" <<EOF
version: "3.8"
services:
  web:
    image: busybox
    command: ["sleep", "100000"]
    secrets:
      - source: stpass
        target: pw
        mode: 0440
    configs:
      - source: stcfg
        target: /etc/st.conf
secrets:
  stpass:
    file: $T/secret.txt
configs:
  stcfg:
    file: $T/config.txt
EOF
out=$(dk 90 stack deploy -c "$T/stack.yml" st 2>&1)
drc=$?
log "docker stack deploy said: $out"
expect_contains "stack deploy made the secret" "st_stpass" "$(dk 10 secret ls --format '{{.Name}}' 2>&1)"
expect_contains "and the config" "st_stcfg" "$(dk 10 config ls --format '{{.Name}}' 2>&1)"
if [ $drc -eq 0 ]; then
	ok "docker stack deploy"
	wait_until 60 running_is st_web 1 && ok "the stack's task runs" || fail "st_web: $(tasks_json st_web)"
	sc=$(running_ids st_web | head -n 1)
	expect_eq "it reads the stack's secret" "$MARK" "$(dk 10 exec "$sc" cat /run/secrets/pw 2>&1)"
	expect_eq "with the compose file's mode" "440" "$(dk 10 exec "$sc" stat -c %a /run/secrets/pw 2>&1)"
	expect_eq "and its config" "listen=$CMARK" "$(dk 10 exec "$sc" cat /etc/st.conf 2>&1)"
else
	fail "docker stack deploy: $out"
fi
stnet=$(dk 10 network inspect --format '{{.Id}}' st_default 2>&1)
[ ${#stnet} -eq 25 ] && ok "the stack made its network" || fail "st_default: $stnet"
# the network's records in the store (endpoints, addresses) and its devices
# on the node (bridge and VXLAN device, named from a hash of its id)
st_keys() {
	sqlite3 "$T/data/state.db" "SELECT CAST(key AS TEXT) FROM kv WHERE CAST(key AS TEXT) LIKE '/shoal/endpoints/$stnet/%' OR CAST(key AS TEXT) LIKE '/shoal/ipam/addr/$stnet/%';" 2>&1
}
st_devs() {
	local h
	h=$(printf '%s' "$stnet" | sha256sum | cut -c1-$((14 - ${#TAG})))
	in_node ip -o link show | grep -E ": ${TAG}[nx]$h[@:]"
}
expect_eq "its endpoints and addresses are in the store (container, node)" 4 "$(st_keys | wc -l)"
expect_eq "its bridge and VXLAN device are on the node" 2 "$(st_devs | wc -l)"
out=$(dk 60 stack rm st 2>&1)
rrc=$?
log "docker stack rm said (exit $rrc): $out"
# the network goes at once: the removed service's task being shut down does
# not keep it (as swarmkit judges)
expect_eq "docker stack rm exits 0" 0 "$rrc"
expect_contains "stack rm removed the service" "Removing service st_web" "$out"
expect_contains "stack rm removed the network" "Removing network st_default" "$out"
expect_contains "stack rm removed the secret" "Removing secret st_stpass" "$out"
expect_contains "stack rm removed the config" "Removing config st_stcfg" "$out"
expect_not_contains "no secret or config failed to go" "Failed to remove secret" "$out"
expect_not_contains "no config failed to go" "Failed to remove config" "$out"
expect_not_contains "no network failed to go" "Failed to remove network" "$out"
expect_not_contains "the stack's network is gone" "st_default" "$(dk 10 network ls --format '{{.Name}}' 2>&1)"
wait_until 60 gone || fail "the stack's containers remain"
# the task stopped after its network record had gone: its node still gives
# back the endpoints (its container's and the node's gateway), the
# addresses and the VXLAN devices
no_st_keys() { [ -z "$(st_keys)" ]; }
no_st_devs() { [ -z "$(st_devs)" ]; }
wait_until 30 no_st_keys && ok "no endpoint or address of the network left in the store" ||
	fail "left in the store: $(st_keys)"
wait_until 30 no_st_devs && ok "no device of the network left on the node" ||
	fail "devices left: $(st_devs)"
nothing_left() { [ -z "$(dk 10 secret ls -q)" ] && [ -z "$(dk 10 config ls -q)" ]; }
wait_until 30 nothing_left && ok "no secret or config left" || fail "left: $(dk 10 secret ls 2>&1) $(dk 10 config ls 2>&1)"

finish
