#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Docker's swarm object and join tokens on a cluster sharing etcd
# (tests/integration/cluster-lib.sh):
# - the first manager makes the cluster and its tokens; GET /swarm and the
#   docker CLI's `swarm join-token` show them, `info` the cluster's id;
# - a node started with the worker token is a worker, with the manager token
#   a manager (whatever --role it leaves out); a wrong token, a rotated one,
#   a token that contradicts --role, and a token with no cluster in the store
#   keep shoald from starting, each with a message naming the problem;
# - swarm init, join and leave answer as Docker's do for a node in a swarm
#   and say how a shoal node joins; a spec change shoal cannot make is
#   refused naming the field; labels change.
. "$(dirname "$0")/cluster-lib.sh"

DOCKER=$(command -v docker || true)

# shoald on node I with flags, expected to refuse to start: "rc=STATUS
# OUTPUT" in $out (not a subshell: the node's namespace is made here once)
refused_start() {
	local i=$1 rc
	shift
	cluster_node_ns "$i"
	# a refusal is immediate: after 20 s it was not refused (killed, rc 137)
	local pid watch
	cluster_shoald "$i" "$@" >"$T/refused.out" 2>&1 &
	pid=$!
	(sleep 20 && kill -9 "$pid" 2>/dev/null) &
	watch=$!
	wait "$pid"
	rc=$?
	kill "$watch" 2>/dev/null
	wait "$watch" 2>/dev/null
	out="rc=$rc $(cat "$T/refused.out")"
}

cluster_etcd_start

log "a token with no cluster in the store"
refused_start 1 --join-token SWMTKN-1-0000-aaaa
expect_contains "refused before any manager made the cluster" "the store holds no cluster yet" "$out"
expect_not_contains "with a failure status" "rc=0 " "$out"

log "the first manager makes the cluster"
cluster_node_start 1
must_get sw "GET /swarm" node_api 1 GET /swarm
expect_contains "GET /swarm: 200" "200 " "$sw"
wtok=$(printf '%s' "${sw#* }" | python3 -c 'import json,sys; print(json.load(sys.stdin)["JoinTokens"]["Worker"])')
mtok=$(printf '%s' "${sw#* }" | python3 -c 'import json,sys; print(json.load(sys.stdin)["JoinTokens"]["Manager"])')
cid=$(printf '%s' "${sw#* }" | python3 -c 'import json,sys; print(json.load(sys.stdin)["ID"])')
expect_contains "a worker token of Docker's shape" "SWMTKN-1-" "$wtok"
[ "$wtok" != "$mtok" ] && ok "two different tokens" || fail "one token for both roles"
out=$(node_api 1 GET /info)
expect_contains "info shows the cluster's id" "\"ID\":\"$cid\"" "$out"
expect_not_contains "but not its tokens" "SWMTKN" "$out"

log "joining with tokens"
cluster_node_start 2 --join-token "$wtok"
cluster_node_start 3 --join-token "$mtok"
roles() { node_shoal 1 node ls --format '{{.Hostname}} {{.ManagerStatus}}' >/dev/null 2>&1 &&
	[ "$(node_shoal 1 node ls -q | wc -l)" -eq 3 ]; }
eventually 10 roles || fail "three nodes: $(node_shoal 1 node ls 2>&1)"
out=$(node_api 2 GET /info)
expect_contains "the worker token made a worker" '"ControlAvailable":false' "$out"
out=$(node_api 3 GET /info)
expect_contains "the manager token made a manager" '"ControlAvailable":true' "$out"
out=$(node_api 2 GET /swarm)
expect_contains "a worker does not show the swarm" "503 " "$out"
out=$(node_api 3 GET /swarm)
expect_contains "the other manager shows the same cluster" "\"ID\":\"$cid\"" "$out"

log "tokens refused"
# its last character changed (to one it is not: x, unless it is x)
bad=x
[ "${wtok: -1}" = x ] && bad=y
refused_start 4 --join-token "${wtok%?}$bad"
expect_contains "a wrong token" "not a join token of the cluster in this store" "$out"
refused_start 4 --join-token "$wtok" --role manager
expect_contains "a worker token with --role manager" "--role manager: the join token is the cluster's worker token" "$out"
refused_start 4 --join-token nonsense
expect_contains "a token of another shape" "expected a token of the form SWMTKN-1-" "$out"
must_get sw "GET /swarm" node_api 1 GET /swarm
ver=$(printf '%s' "${sw#* }" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Version"]["Index"])')
spec=$(printf '%s' "${sw#* }" | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["Spec"]))')
out=$(node_api 1 POST "/swarm/update?version=$ver&rotateWorkerToken=true" "$spec")
expect_contains "the worker token rotated" "200 " "$out"
out=$(node_api 1 POST "/swarm/update?version=$ver&rotateWorkerToken=true" "$spec")
expect_contains "an update from an old version: 409" "409 " "$out"
expect_contains "out of sequence" "update out of sequence" "$out"
refused_start 4 --join-token "$wtok"
expect_contains "the rotated-out token no longer admits" "not a join token of the cluster" "$out"
must_get sw "GET /swarm" node_api 1 GET /swarm
ntok=$(printf '%s' "${sw#* }" | python3 -c 'import json,sys; print(json.load(sys.stdin)["JoinTokens"]["Worker"])')
[ "$ntok" != "$wtok" ] && ok "a new worker token" || fail "the worker token did not change"
expect_contains "the manager token kept" "$mtok" "$sw"
cluster_node_start 4 --join-token "$ntok"
ok "the new token admits a node"

log "spec changes"
ver=$(printf '%s' "${sw#* }" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Version"]["Index"])')
bad=$(printf '%s' "$spec" | python3 -c 'import json,sys; s=json.load(sys.stdin); s["Orchestration"]["TaskHistoryRetentionLimit"]=99; print(json.dumps(s))')
out=$(node_api 1 POST "/swarm/update?version=$ver" "$bad")
expect_contains "a spec change shoal cannot make: 400 naming it" \
	"Spec.Orchestration.TaskHistoryRetentionLimit: cannot be changed in shoal" "$out"
lab=$(printf '%s' "$spec" | python3 -c 'import json,sys; s=json.load(sys.stdin); s["Labels"]={"env":"test"}; print(json.dumps(s))')
out=$(node_api 1 POST "/swarm/update?version=$ver" "$lab")
expect_contains "labels change" "200 " "$out"
expect_contains "and show" '"env":"test"' "$(node_api 3 GET /swarm)"

log "init, join and leave"
out=$(node_api 1 POST /swarm/init '{"ListenAddr":"0.0.0.0:2377"}')
expect_contains "init: 503, already in a swarm" "This node is already part of a swarm" "$out"
out=$(node_api 2 POST /swarm/join "{\"RemoteAddrs\":[\"$(node_addr 1):2377\"],\"JoinToken\":\"$ntok\"}")
expect_contains "join: says how a shoal node joins" "--join-token TOKEN" "$out"
out=$(node_api 2 POST /swarm/leave)
expect_contains "leave: says how a shoal node leaves" "leaves its cluster when its shoald stops" "$out"

if [ -n "$DOCKER" ]; then
	log "the docker CLI"
	export DOCKER_CONFIG="$T/docker-config"
	dk() { DOCKER_HOST="unix://$(node_sock "$1")" timeout -k 2 20 "$DOCKER" "${@:2}"; }
	out=$(dk 1 swarm join-token -q worker 2>&1)
	expect_eq "docker swarm join-token -q worker" "$ntok" "$out"
	out=$(dk 1 swarm join-token manager 2>&1)
	expect_contains "docker swarm join-token manager prints the command" \
		"docker swarm join --token $mtok" "$out"
	out=$(dk 3 swarm join-token --rotate -q manager 2>&1)
	[ -n "$out" ] && [ "$out" != "$mtok" ] && ok "docker swarm join-token --rotate" ||
		fail "rotation through the docker CLI: $out"
	out=$(dk 1 info --format '{{.Swarm.Cluster.ID}} {{.Swarm.ControlAvailable}}' 2>&1)
	expect_eq "docker info: the cluster id" "$cid true" "$out"
	out=$(dk 1 swarm update --autolock 2>&1)
	expect_contains "docker swarm update --autolock: refused" "autolock is not supported by shoal" "$out"
fi
