#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Three nodes sharing one state in etcd (tests/integration/cluster-lib.sh: an
# underlay bridge, a namespace and an agent per node, etcd on the underlay):
# - every node registers and is ready, one manager leads, the worker never;
# - networks created at once through both managers get distinct subnets and
#   VXLAN ids; the worker sees them and refuses to create one;
# - a 6-replica service spreads 2/2/2;
# - the leader's agent killed: the other manager leads within the TTL and the
#   service stays at 6 running tasks, one per slot; back, it follows;
#   its replaced tasks' containers are stopped;
# - a node's agent and containers killed (its machine gone): it is down within
#   the TTL, its tasks run on the others; back, it runs nothing stale;
# - etcd killed and restarted: every container keeps running, the agents
#   reconnect and a scale after it converges.
. "$(dirname "$0")/cluster-lib.sh"

TTL=3
cluster_etcd_start
cluster_node_start 1 --node-ttl $TTL
cluster_node_start 2 --node-ttl $TTL
cluster_node_start 3 --node-ttl $TTL --role worker --node-label zone=c
for i in 1 2 3; do
	must "loading the test image on node $i" node_shoal "$i" image load -i "$TEST_IMAGE"
done

# nodes_json I: GET /nodes on node I
nodes_json() { curl -s --max-time 10 --unix-socket "$(node_sock "$1")" http://shoal/nodes; }
# node_states I: "ADDR STATE ROLE LEADER" per node, sorted
node_states() {
	nodes_json "$1" | python3 -c '
import json,sys
for n in json.load(sys.stdin):
    ms = n.get("ManagerStatus") or {}
    print(n["Status"].get("Addr"), n["Status"]["State"], n["Spec"]["Role"], "leader" if ms.get("Leader") else "-")' | sort
}
leader_addr() { node_states "$1" | awk '$4 == "leader" {print $1}'; }
# running_by_node I SERVICE: "ADDR COUNT" of running tasks, and the slot count
tasks_summary() {
	local i=$1 svc=$2
	curl -s --max-time 10 --unix-socket "$(node_sock "$i")" -G \
		--data-urlencode "filters={\"service\":{\"$svc\":true}}" http://shoal/tasks |
		python3 -c '
import json,sys,collections
nodes = {n["ID"]: n["Status"]["Addr"] for n in json.loads(sys.argv[1])}
run = [t for t in json.load(sys.stdin) if t["Status"]["State"] == "running" and t.get("DesiredState") == "running"]
by = collections.Counter(nodes.get(t.get("NodeID"), "?") for t in run)
slots = collections.Counter(t.get("Slot") for t in run)
print(" ".join("%s=%d" % kv for kv in sorted(by.items())), "running=%d" % len(run),
      "dupslots=%d" % sum(1 for c in slots.values() if c > 1))' "$(nodes_json "$i")"
}

# predicates for wait_until (they run in this shell)
all_ready() { [ "$(node_states "$1" | grep -c ' ready ')" -eq 3 ]; }
svc_at() { tasks_summary "$1" web | grep -q "running=$2 dupslots=0"; } # svc_at NODE N
leads() { [ "$(leader_addr "$1")" = "$(node_addr "$1")" ]; }
no_pids() { [ -z "$(cluster_cg_pids "$1")" ]; }
sees_ready() { node_states "$1" | grep -q "^$(node_addr "$2") ready"; } # sees_ready ON NODE
sees_down() { node_states "$1" | grep -q "^$(node_addr "$2") down"; }
node_containers() { node_shoal "$1" ps -q 2>/dev/null | wc -l; }
containers_are() { # containers_are N: running containers over the nodes
	[ $(($(node_containers 1) + $(node_containers 2) + $(node_containers 3))) -eq "$1" ]
}

log "membership"
wait_until 15 all_ready 1 ||
	fail "not every node ready: $(node_states 1)"
states=$(node_states 1)
log "nodes: $(echo $states)"
expect_eq "three nodes ready" 3 "$(echo "$states" | grep -c ' ready ')"
expect_eq "one leader" 1 "$(echo "$states" | grep -c ' leader$')"
expect_contains "the worker is a worker and does not lead" "$(node_addr 3) ready worker -" "$states"
expect_eq "both managers see the same leader" "$(leader_addr 1)" "$(leader_addr 2)"
# the worker answers no cluster calls (Docker's 503): its record read on a manager
id3=$(curl -s --max-time 10 --unix-socket "$(node_sock 3)" http://shoal/info | python3 -c 'import json,sys; print(json.load(sys.stdin)["Swarm"]["NodeID"])')
out=$(node_shoal 1 node inspect "$id3" 2>&1)
expect_contains "node labels from --node-label" '"zone": "c"' "$out"

log "networks created at once through both managers"
creates=()
for i in $(seq 1 8); do
	for n in 1 2; do
		curl -s --max-time 20 --unix-socket "$(node_sock $n)" -H 'Content-Type: application/json' \
			-d "{\"Name\":\"net$n-$i\",\"Driver\":\"overlay\"}" \
			-o /dev/null -w '%{http_code}\n' http://shoal/networks/create >>"$T/netcodes" &
		creates+=($!)
	done
done
wait "${creates[@]}"
expect_eq "all 16 created" 16 "$(grep -c '^201$' "$T/netcodes")"
nets=$(curl -s --unix-socket "$(node_sock 3)" http://shoal/networks | python3 -c '
import json,sys
n=[x for x in json.load(sys.stdin) if x["Scope"]=="swarm" and not x["Ingress"]]
print(len(n), len({x["IPAM"]["Config"][0]["Subnet"] for x in n}),
      len({x["Options"]["com.docker.network.driver.overlay.vxlanid_list"] for x in n}))')
expect_eq "16 networks, 16 subnets, 16 VNIs, seen from the worker" "16 16 16" "$nets"
ingress=$(curl -s --unix-socket "$(node_sock 3)" http://shoal/networks/ingress | python3 -c '
import json,sys
n=json.load(sys.stdin)
print(n["Ingress"], n["Driver"], n["IPAM"]["Config"][0]["Subnet"])')
expect_eq "the cluster has swarm's ingress network, the pool's first /24" "True overlay 10.0.0.0/24" "$ingress"
out=$(curl -s --unix-socket "$(node_sock 3)" -H 'Content-Type: application/json' -d '{"Name":"w","Driver":"overlay"}' http://shoal/networks/create)
expect_contains "the worker does not create networks" "from a worker node" "$out"

log "a 6-replica service spreads over the three nodes"
must "creating it" node_shoal 1 service create -d --name web --replicas 6 --stop-grace-period 1s -p 8080:80 busybox sleep 100000
wait_until 60 svc_at 1 6 || fail "the service did not converge: $(tasks_summary 1 web)"
sum=$(tasks_summary 1 web)
log "tasks: $sum"
expect_contains "2 on node 1" "$(node_addr 1)=2" "$sum"
expect_contains "2 on node 2" "$(node_addr 2)=2" "$sum"
expect_contains "2 on node 3" "$(node_addr 3)=2" "$sum"
expect_contains "no slot twice" "dupslots=0" "$sum"
# on the ingress network: node 1 balances its port over every task, on every
# node, through the routing mesh (without the mesh's programs, over its own)
mesh=$(curl -s --unix-socket "$(node_sock 1)" http://shoal/info | python3 -c '
import json,sys; print(json.load(sys.stdin)["ShoalOverlay"]["Mesh"]["State"])')
want=6
[ "$mesh" = on ] || want=2
mesh_rows() { node_shoal 1 lb ls | grep -cE '^ +10\.0\.0\.[0-9]+:80 +active'; }
wait_until 10 eval '[ "$(mesh_rows)" -eq $want ]' &&
	ok "lb ls on node 1 balances 8080 over $want tasks' ingress addresses (mesh $mesh)" ||
	fail "lb ls: $(node_shoal 1 lb ls)"

# The managers' node lists come from the store's watches, not a read of every
# record each pass: a node record changed through one manager reaches the
# leader's placement through them.
log "node 3 drained, then active again"
id3_avail() { nodes_json "$1" | python3 -c '
import json,sys
print(" ".join(n["Spec"]["Availability"] for n in json.load(sys.stdin) if n["ID"] == sys.argv[1]))' "$id3"; }
must "draining node 3 through node 2" node_shoal 2 node update --availability drain "$id3"
drained() { svc_at 1 6 && ! tasks_summary 1 web | grep -q "$(node_addr 3)="; }
wait_until 30 drained || fail "node 3's tasks did not move: $(tasks_summary 1 web)"
sum=$(tasks_summary 1 web)
log "tasks: $sum"
expect_not_contains "nothing runs on the drained node" "$(node_addr 3)=" "$sum"
expect_eq "node 1 shows it drained" "drain" "$(id3_avail 1)"
must "node 3 active again" node_shoal 1 node update --availability active "$id3"
expect_eq "node 2 shows it active" "active" "$(id3_avail 2)"
wait_until 30 containers_are 6 ||
	fail "containers after the drain: $(for i in 1 2 3; do echo "node $i: $(node_containers $i)"; done)"

log "the leader's agent killed"
lead=$(leader_addr 1)
for i in 1 2; do [ "$(node_addr $i)" = "$lead" ] && L=$i; done
O=$((3 - L))
t0=$(date +%s.%N)
cluster_node_kill9 "$L"
wait_until $((TTL * 3)) leads "$O" ||
	fail "node $O did not take the lead: $(node_states $O)"
t1=$(date +%s.%N)
log "node $O leads $(python3 -c "print('%.1f' % ($t1 - $t0))") s after node $L's agent died (TTL $TTL s)"
wait_until 60 svc_at "$O" 6 || fail "the service did not stay at 6: $(tasks_summary $O web)"
log "tasks: $(tasks_summary $O web)"
cluster_node_start "$L" --node-ttl $TTL
wait_until 15 sees_ready "$O" "$L" || fail "node $L not back"
expect_eq "one leader after node $L came back" 1 "$(node_states $O | grep -c ' leader$')"
wait_until 60 svc_at "$O" 6 || fail "the service is not at 6 with node $L back: $(tasks_summary $O web)"
# the replaced tasks' containers, still running on node L, are stopped
wait_until 30 containers_are 6 ||
	fail "stale containers: $(for i in 1 2 3; do echo "node $i: $(node_containers $i)"; done)"

log "node 3's machine gone (agent and containers)"
cluster_node_kill9 3
cluster_node_wipe_procs 3
wait_until $((TTL * 3)) sees_down "$O" 3 || fail "node 3 not down: $(node_states $O)"
wait_until 60 svc_at "$O" 6 || fail "the service did not stay at 6: $(tasks_summary $O web)"
sum=$(tasks_summary $O web)
log "tasks: $sum"
expect_not_contains "nothing runs on node 3" "$(node_addr 3)=" "$sum"
cluster_node_start 3 --node-ttl $TTL --role worker --node-label zone=c
wait_until 15 sees_ready "$O" 3 || fail "node 3 not back"
wait_until 30 containers_are 6 ||
	fail "stale containers: $(for i in 1 2 3; do echo "node $i: $(node_containers $i)"; done)"

log "etcd killed and restarted"
pids_before=$(cluster_cg_pids 1; cluster_cg_pids 2; cluster_cg_pids 3)
cluster_etcd_kill
sleep $((TTL + 1))
pids_during=$(cluster_cg_pids 1; cluster_cg_pids 2; cluster_cg_pids 3)
expect_eq "every container kept running while etcd was away" "$pids_before" "$pids_during"
out=$(curl -s --max-time 5 --unix-socket "$(node_sock 1)" http://shoal/_ping)
expect_eq "the API answers while etcd is away" "OK" "$out"
cluster_etcd_start
must "scaling after etcd is back" node_shoal 1 service scale -d web=9
wait_until 60 svc_at 1 9 ||
	fail "the scale after etcd came back did not converge: $(tasks_summary 1 web)"
log "tasks: $(tasks_summary 1 web)"

must "removing the service" node_shoal 1 service rm web
for i in 1 2 3; do
	wait_until 30 no_pids "$i" || fail "containers left on node $i"
done
finish
