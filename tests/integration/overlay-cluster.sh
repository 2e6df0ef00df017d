#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Containers on an overlay network across nodes (three nodes, etcd, one agent
# each: tests/integration/cluster-lib.sh):
# - a non-attachable overlay network is refused for `run` with Docker's words;
# - a container on node 1 and one on node 3 on an attachable network reach
#   each other by address, both ways; addresses distinct and in the subnet;
#   eth0's MTU is the underlay's minus 50;
# - the vxlan device deleted on node 3, an FDB entry deleted by hand: both
#   back within a resync, and traffic works again;
# - node 1's agent restarted: no warning or error in its log, no duplicate FDB
#   or neighbour entry, traffic still works;
# - a container removed: its FDB and neighbour entries gone on the other nodes;
#   the last one on a node: the network's devices gone from it;
# - 30 containers started at once over the three nodes: no address twice;
#   200 tasks of one service the same;
# - egress off the overlay leaves through the node, masqueraded; not from an
#   --internal network; the docker CLI's run --network works as shoal's;
# - VXLAN sent to a node from the etcd namespace (not a node): dropped, and
#   the counter in /info moves;
# - a full network refuses the next container, naming the network;
# - network rm and prune refuse a network containers are on, naming them;
# - a 3-replica service on the network with an alias, one task per node: a
#   container on node 1 reaches every task at its address
#   (NetworksAttachments); its resolv.conf names its gateway, where the
#   embedded DNS answers: the service's name and alias -> its VIP, tasks.NAME
#   -> the 3 tasks' overlay addresses, a container's name on node 3 -> its
#   address; a bridge asker gets none of these names; a service on a
#   non-attachable network runs; service rm gives the addresses back; a
#   network given twice and a bad alias are refused with a message;
# - node 2's agent killed, its containers running on: the other nodes drop
#   its endpoints from FDB and neighbour tables (within the lease TTL + 1 s,
#   polled with a generous bound), the survivors' traffic unaffected; the
#   service web on the network: before, 30 connections from node 1 to its
#   VIP reach its tasks on all three nodes; after, within the same bound,
#   node 2's task is neither a backend of the VIP on nodes 1 and 3 (30
#   connections from each all answered, none by it) nor in tasks.web; past
#   the grace the leader gives its records and addresses back; its agent
#   restarted: the running container recorded again at the same address and
#   reached again;
# - the ingress network (made with the cluster): a service without a network
#   publishing 8091, 2 tasks off node 2, reached at node 2's address from a
#   non-node with the client's own address seen by both tasks; --network
#   ingress and run --network ingress refused; network rm ingress refused
#   while the service exists, done after; without it, a service's port on
#   node 2 lists its tasks on nodes 1 and 3 as remote, not used; a
#   replacement made with --ingress --subnet, a second one and an attachable
#   one refused;
# - node 2 dead (agent and containers): its endpoints gone from the others;
# - shoald --teardown removes the devices, the egress table and the filter.
# Run once more with SHOAL_VXLAN_FILTER=nft: the filter's nftables fallback, up to
# the filter's checks (reachability, the kind, drops counted, teardown).
. "$(dirname "$0")/cluster-lib.sh"

for c in ip bridge nft tc nsenter python3 curl; do
	command -v $c >/dev/null 2>&1 || { echo "SKIP: needs $c"; exit $SKIP; }
done

cluster_etcd_start
for i in 1 2 3; do
	cluster_node_start "$i"
	must "loading the test image on node $i" node_shoal "$i" image load -i "$TEST_IMAGE"
done
PFX1="c${TAG:1:5}1"
in_ns() { local i=$1; shift; nsenter --net="/run/netns/$(node_ns "$i")" "$@"; }
inspect() { node_shoal "$1" inspect -f "$3" "$2" 2>/dev/null; } # inspect NODE CTR FORMAT
sandbox() { inspect "$1" "$2" '{{.NetworkSettings.SandboxKey}}'; }
in_ctr() { local i=$1 c=$2; shift 2; nsenter --net="$(sandbox "$i" "$c")" "$@"; }
# get NODE CTR ADDR: an HTTP GET from inside CTR's network namespace
get() { in_ctr "$1" "$2" busybox sh -c "printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 3 $3 80" 2>/dev/null | tail -n 1; }
reaches() { [ "$(get "$1" "$2" "$3")" = "$4" ]; } # reaches NODE CTR ADDR BODY
pings() { in_ctr "$1" "$2" busybox ping -c 1 -W 2 "$3" >/dev/null 2>&1; }
info_json() { curl -s --max-time 10 --unix-socket "$(node_sock "$1")" http://shoal/info; }
dropped() { info_json "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["ShoalOverlay"]["Filter"]["DroppedUnknownSource"])'; }
vxdev() { in_ns "$1" ip -o link show type vxlan | awk -F': ' '{print $2}' | cut -d@ -f1 | grep "^c${TAG:1:5}$1x" | head -n 1; }
# (the listings are read whole first: grep -q would end the pipe early)
# the vxlan device's own entry (MAC -> remote VTEP), not the bridge's learned one
fdb_has() { local f; f=$(in_ns "$1" bridge fdb show dev "$(vxdev "$1")"); grep -qi "^$2 dst " <<<"$f"; } # fdb_has NODE MAC
neigh_has() { local n; n=$(in_ns "$1" ip neigh show dev "$(vxdev "$1")"); grep -q "^$2 " <<<"$n"; }
vx_back() { [ -n "$(vxdev "$1")" ]; }
serve() { # serve NODE NAME BODY: a container with an HTTP server answering BODY
	node_shoal "$1" run -d --name "$2" --network ovl busybox \
		sh -c "mkdir -p /w && echo $3 > /w/index.html && exec httpd -f -p 80 -h /w"
}

# VXLAN sent to node 2 from the etcd namespace (not a node): dropped, counted
non_node_vxlan() {
	log "VXLAN from a namespace that is not a node"
	before=$(dropped 2)
	in_ns_etcd() { nsenter --net="/run/netns/$ETCD_NS" "$@"; }
	must "sending VXLAN to node 2 from the etcd namespace" in_ns_etcd python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
pkt = bytes([8, 0, 0, 0, 0, 0x10, 0x01, 0]) + bytes(64)
for _ in range(5):
    s.sendto(pkt, (sys.argv[1], 4789))' "$(node_addr 2)"
	moved() { [ "$(dropped 2)" -ge $((before + 5)) ]; }
	wait_until 20 moved && ok "VXLAN from a non-node dropped and counted" ||
		fail "the drop counter on node 2 did not move: $before -> $(dropped 2)"
	log "dropped: $before -> $(dropped 2)"
}
# shoald --teardown on node 1 removes its devices, the egress table and the filter
teardown_check() {
	log "shoald --teardown on node 1"
	must "a container on ovl on node 1" node_shoal 1 run -d --name z --network ovl busybox sleep 100000
	wait_until 20 vx_back 1 || fail "no vxlan device on node 1 for z"
	filters() { in_ns 1 tc filter show dev eth0 ingress 2>/dev/null; }
	tables() { in_ns 1 nft list tables 2>/dev/null; }
	if [ "${SHOAL_VXLAN_FILTER:-bpf}" = bpf ]; then
		expect_contains "the filter program on node 1's underlay" vxlan_filter "$(filters)"
	else
		expect_contains "the filter table on node 1" "${PFX1}_vxlan" "$(tables)"
	fi
	expect_contains "the egress table on node 1" "${PFX1}_ovl" "$(tables)"
	cluster_node_kill9 1
	must "shoald --teardown" in_ns 1 "$SHOALD_BIN" --data-dir "$T/n1/data" --run-dir "$T/n1/run" \
		--socket "$(node_sock 1)" --cgroup-parent "$CG_PARENT-n1" \
		--bpffs-dir "/sys/fs/bpf/shoal-it-$TAG-n1" --device-prefix "$PFX1" \
		--advertise-addr "$(node_addr 1)" --teardown
	expect_eq "no vxlan device left on node 1" "" "$(vxdev 1)"
	expect_eq "no overlay bridge left on node 1" "" "$(in_ns 1 ip -o link show type bridge | grep "${PFX1}n")"
	expect_not_contains "no filter program left on node 1" vxlan_filter "$(filters)"
	expect_not_contains "no egress table left on node 1" "${PFX1}_ovl" "$(tables)"
	expect_not_contains "no filter table left on node 1" "${PFX1}_vxlan" "$(tables)"
}

log "networks"
must "creating a non-attachable overlay network" node_shoal 1 network create -d overlay closed
out=$(node_shoal 1 run -d --network closed busybox sleep 100 2>&1)
expect_contains "run on a non-attachable network refused as Docker does" \
	"network closed not manually attachable" "$out"
out=$(node_shoal 1 run -d --network nosuchnet busybox sleep 100 2>&1)
expect_contains "run on an unknown network refused" "network nosuchnet not found" "$out"
must "creating the attachable network" node_shoal 1 network create -d overlay --attachable \
	--subnet 10.77.0.0/24 ovl

log "a container on node 1, one on node 3"
must "running a on node 1" serve 1 a hello-from-a
must "running b on node 3" serve 3 b hello-from-b
ip_a=$(inspect 1 a '{{.NetworkSettings.IPAddress}}')
ip_b=$(inspect 3 b '{{.NetworkSettings.IPAddress}}')
log "a=$ip_a b=$ip_b"
[[ "$ip_a" == 10.77.0.* ]] || fail "a's address $ip_a is not in 10.77.0.0/24"
[[ "$ip_b" == 10.77.0.* ]] || fail "b's address $ip_b is not in 10.77.0.0/24"
[ -n "$ip_a" ] && [ "$ip_a" != "$ip_b" ] || fail "a and b have the same address $ip_a"
net_id=$(node_shoal 1 network inspect -f '{{.Id}}' ovl 2>/dev/null)
nets_a=$(inspect 1 a '{{json .NetworkSettings.Networks}}')
expect_contains "inspect keys the network by its name" '"ovl":{' "$nets_a"
expect_contains "with its id" "\"NetworkID\":\"$net_id\"" "$nets_a"
wait_until 20 reaches 1 a "$ip_b" hello-from-b || fail "a (node 1) does not reach b (node 3) at $ip_b"
wait_until 20 reaches 3 b "$ip_a" hello-from-a || fail "b (node 3) does not reach a (node 1) at $ip_a"
pings 1 a "$ip_b" && ok "a pings b" || fail "a does not ping b"
pings 3 b "$ip_a" && ok "b pings a" || fail "b does not ping a"
under_mtu=$(in_ns 1 ip -o link show eth0 | sed 's/.*mtu \([0-9]*\).*/\1/')
ctr_mtu=$(in_ctr 1 a ip -o link show eth0 | sed 's/.*mtu \([0-9]*\).*/\1/')
expect_eq "a's eth0 MTU is the underlay's minus 50" "$((under_mtu - 50))" "$ctr_mtu"
gw_a=$(inspect 1 a '{{.NetworkSettings.Gateway}}')
gw_b=$(inspect 3 b '{{.NetworkSettings.Gateway}}')
[ -n "$gw_a" ] && [ "$gw_a" != "$gw_b" ] || fail "the nodes' gateway addresses are not distinct ($gw_a, $gw_b)"
routes=$(in_ctr 1 a ip route)
expect_contains "a's default route via node 1's address" "default via $gw_a " "$routes"
log "network rm and prune refuse a network in use"
out=$(node_shoal 1 network rm ovl 2>&1)
expect_contains "network rm refused while containers are on it" "has active endpoints" "$out"
names=$(sed -n 's/.*endpoints (\(.*\)).*/\1/p' <<<"$out")
expect_eq "the refusal names a and b" "a b" "$(tr -d ' ' <<<"$names" | tr ',' '\n' | sort | xargs)"
must "network prune" node_shoal 1 network prune -f
must "ovl kept by the prune" node_shoal 1 network inspect ovl
kind=$(info_json 1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["ShoalOverlay"]["Filter"]["Kind"])')
expect_eq "the VXLAN source filter's kind" "${SHOAL_VXLAN_FILTER:-bpf}" "$kind"
info=$(node_shoal 1 info 2>/dev/null)
expect_contains "shoal info shows the filter" "VXLAN Filter:" "$info"
expect_contains "shoal info shows the network" "Network: ovl" "$info"
if [ "${SHOAL_VXLAN_FILTER:-}" = nft ]; then
	# the fallback's run: the filter's checks only, the rest is the same code
	non_node_vxlan
	teardown_check
	finish
fi

log "a service on the overlay network, one task per node"
api_get() { curl -s --max-time 10 --unix-socket "$(node_sock "$1")" "http://shoal$2"; }
# task_addrs SERVICE: its running tasks' addresses on their networks
task_addrs() {
	api_get 1 "/tasks?filters=%7B%22service%22%3A%7B%22$1%22%3Atrue%7D%7D" | python3 -c '
import json, sys
for t in json.load(sys.stdin):
    if t.get("Status", {}).get("State") != "running":
        continue
    for a in t.get("NetworksAttachments", []):
        for addr in a["Addresses"]:
            print(t["NodeID"][:12], a["Network"]["Spec"]["Name"], addr.split("/")[0])'
}
web_create() {
	node_shoal 1 service create -d --name web --replicas 3 --replicas-max-per-node 1 \
		--network name=ovl,alias=www busybox \
		sh -c 'mkdir -p /w && hostname > /w/index.html && exec httpd -f -p 80 -h /w'
}
must "service create --network name=ovl,alias=www" web_create
three_up() { [ "$(task_addrs web | grep -c ' ovl 10\.77\.0\.')" = 3 ]; }
wait_until 60 three_up || fail "web: not 3 running tasks with an address on ovl: $(task_addrs web)"
expect_eq "web's tasks on 3 distinct nodes" 3 "$(task_addrs web | awk '{print $1}' | sort -u | wc -l)"
web_ips=$(task_addrs web | awk '{print $3}')
log "web's tasks: $(echo $web_ips)"
for ip in $web_ips; do
	answers() { [ -n "$(get 1 a "$1")" ]; }
	wait_until 20 answers "$ip" && ok "a (node 1) reaches web's task at $ip" ||
		fail "a (node 1) does not reach web's task at $ip"
done

log "names on the overlay network, across nodes"
vip_of() { api_get 1 "/services/$1" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("VirtualIP", ""))'; }
# dns NODE CTR NAME: the A records the embedded DNS gives CTR (at its gateway) for NAME
dns() {
	local gw
	gw=$(inspect "$1" "$2" '{{.NetworkSettings.Gateway}}')
	in_ctr "$1" "$2" busybox nslookup -type=a "$3" "$gw" 2>/dev/null |
		sed -n 's/^Address:[[:space:]]*\([0-9.]*\)$/\1/p' | sort | xargs
}
web_vip=$(vip_of web)
[[ "$web_vip" == 10.214.* ]] || fail "web has no virtual IP: [$web_vip]"
expect_contains "a's resolv.conf names its gateway" "nameserver $gw_a" \
	"$(node_shoal 1 exec a cat /etc/resolv.conf 2>&1)"
expect_contains "web resolves to its VIP inside a (node 1), through its resolv.conf" \
	"Address: $web_vip" "$(node_shoal 1 exec a nslookup -type=a web 2>&1)"
expect_eq "the alias www resolves to the VIP" "$web_vip" "$(dns 1 a www)"
expect_eq "tasks.web: the 3 tasks' overlay addresses" "$(echo $web_ips | xargs -n1 | sort | xargs)" \
	"$(dns 1 a tasks.web)"
expect_eq "b (a container on node 3) resolves from a (node 1)" "$ip_b" "$(dns 1 a b)"
expect_eq "b resolves on node 3's DNS too" "$ip_b" "$(dns 3 b b)"
# a bridge asker (node 1's own address) gets no name of the overlay network
out=$(in_ns 1 timeout 1 busybox nslookup -type=a b 10.213.0.1 2>&1)
expect_not_contains "a bridge asker does not get b's address" "$ip_b" "$out"
out=$(in_ns 1 timeout 1 busybox nslookup -type=a www 10.213.0.1 2>&1)
expect_not_contains "nor web's alias" "$web_vip" "$out"
must "creating a non-attachable network" node_shoal 1 network create -d overlay locked
must "service create on the non-attachable network" node_shoal 1 service create -d --name inside \
	--network locked busybox sleep 100000
one_up() { [ "$(task_addrs inside | grep -c ' locked ')" = 1 ]; }
wait_until 60 one_up && ok "a task runs on a non-attachable network, with an address" ||
	fail "inside: no running task with an address on locked: $(task_addrs inside)"
out=$(node_shoal 1 run -d --label com.docker.swarm.task.id=x --network locked busybox sleep 100 2>&1)
expect_contains "a container with a task label of its own stays off a non-attachable network" \
	"not manually attachable" "$out"
must "creating a second network" node_shoal 1 network create -d overlay --subnet 10.76.0.0/24 second
out=$(SOCK=$(node_sock 1) api POST /services/create '{"Name": "two", "TaskTemplate": {"ContainerSpec":
	{"Image": "busybox", "Command": ["sleep", "1"]}, "Networks": [{"Target": "ovl"}, {"Target": "ovl"}]}}')
expect_contains "a network given twice refused with a message" "already attached" "$out"
out=$(SOCK=$(node_sock 1) api POST /services/create '{"Name": "al", "TaskTemplate": {"ContainerSpec":
	{"Image": "busybox", "Command": ["sleep", "1"]}, "Networks": [{"Target": "ovl", "Aliases": ["x"]}]}}')
expect_contains "an alias accepted" "201" "${out:0:4}"
must "service rm al" node_shoal 1 service rm al
out=$(node_shoal 1 service create -d --name al2 --network name=ovl,alias=tasks.x busybox sleep 1 2>&1)
expect_contains "an alias the DNS cannot answer refused naming it" '"tasks.x" starts with tasks.' "$out"
out=$(node_shoal 1 service create -d --name nb --network bridge busybox sleep 1 2>&1)
expect_contains "a service on the bridge network refused" "not an overlay network" "$out"
out=$(node_shoal 1 network rm ovl 2>&1)
expect_contains "network rm refused while web uses it" "web" "$out"
log "the routing mesh: a port published on node 2, served by tasks on nodes 1 and 3"
n2_id=$(api_get 2 /info | python3 -c 'import json,sys; print(json.load(sys.stdin)["Swarm"]["NodeID"])')
# each task answers its name and the address its client came from
who='mkdir -p /w/cgi-bin && printf "#!/bin/sh\necho Content-Type: text/plain\necho\necho \$(hostname) \$REMOTE_ADDR\n" > /w/cgi-bin/who && chmod +x /w/cgi-bin/who && exec httpd -f -p 80 -h /w'
must "service create -p 8090:80 on ovl, off node 2" node_shoal 1 service create -d --name pub \
	--replicas 2 --replicas-max-per-node 1 --constraint "node.id!=$n2_id" --network ovl \
	-p 8090:80 busybox sh -c "$who"
two_up() { [ "$(task_addrs pub | grep -c ' ovl ')" = 2 ]; }
wait_until 60 two_up || fail "pub: not 2 tasks running: $(task_addrs pub)"
# a client off the cluster: the etcd namespace, on the underlay
# (busybox httpd gives the client's address as [::ffff:A.B.C.D])
mesh_get() { nsenter --net="/run/netns/$ETCD_NS" curl -s --max-time 3 "http://$(node_addr 2):$1/cgi-bin/who" 2>/dev/null | sed 's/\[::ffff:\(.*\)\]/\1/'; }
# mesh_check PORT: 20 requests to node 2's PORT, answered by both tasks, each
# seeing the client's own address
mesh_check() {
	local out
	mesh_up() { [ -n "$(mesh_get "$1")" ]; }
	wait_until 30 mesh_up "$1" || fail "node 2's port $1 does not answer"
	out=$(for k in $(seq 1 20); do mesh_get "$1"; done)
	expect_eq "20 requests to node 2's port $1 answered" 20 "$(grep -c . <<<"$out")"
	expect_eq "by both tasks, on nodes 1 and 3" 2 "$(awk '{print $1}' <<<"$out" | sort -u | grep -c .)"
	expect_eq "each task saw the client's own address" "$ETCD_ADDR" "$(awk '{print $2}' <<<"$out" | sort -u | xargs)"
}
mesh_check 8090
mesh_count() { info_json "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["ShoalOverlay"]["Mesh"].get("Returned", -1))'; }
[ "$(mesh_count 1)" -gt 0 ] && [ "$(mesh_count 3)" -gt 0 ] &&
	ok "nodes 1 and 3 sent the replies back through node 2 ($(mesh_count 1), $(mesh_count 3) packets)" ||
	fail "the mesh's return path counted nothing on node 1 or 3: $(mesh_count 1) $(mesh_count 3)"
must "service rm pub" node_shoal 1 service rm pub
log "the ingress network: a service without a network of its own, published on node 2, served from nodes 1 and 3"
ingress=$(api_get 3 /networks/ingress)
expect_contains "every node has swarm's ingress network" '"Ingress": true' "$(python3 -m json.tool <<<"$ingress")"
out=$(node_shoal 1 service create -d --name ing2 --network ingress -p 8092:80 busybox sleep 1 2>&1)
expect_contains "a service attached to ingress by name refused" "cannot be explicitly attached to the ingress network" "$out"
out=$(node_shoal 1 run --rm --network ingress busybox true 2>&1)
expect_contains "a container on ingress refused" "not manually attachable" "$out"
must "service create -p 8091:80 without a network, off node 2" node_shoal 1 service create -d \
	--name meshd --replicas 2 --replicas-max-per-node 1 --constraint "node.id!=$n2_id" \
	-p 8091:80 busybox sh -c "$who"
on_ingress() { [ "$(task_addrs meshd | grep -c ' ingress ')" = 2 ]; }
wait_until 60 on_ingress || fail "meshd: not 2 tasks running on ingress: $(task_addrs meshd)"
mesh_check 8091
out=$(node_shoal 1 network rm ingress 2>&1)
expect_contains "network rm ingress refused while meshd publishes a port" "meshd" "$out"
must "service rm meshd" node_shoal 1 service rm meshd
# once its tasks are gone, the ingress network can be replaced, as with Docker
ingress_rm() { node_shoal 1 network rm ingress >/dev/null 2>&1; }
wait_until 30 ingress_rm || fail "network rm ingress refused after meshd went: $(node_shoal 1 network rm ingress 2>&1)"
# without an ingress network: tasks on their nodes' bridges, a port answering
# from a node's own tasks, the others listed as not used
must "service create -p 8093:80 with no ingress network" node_shoal 1 service create -d \
	--name nomesh --replicas 2 --replicas-max-per-node 1 --constraint "node.id!=$n2_id" \
	-p 8093:80 busybox sleep 100000
remote_rows() { node_shoal 2 lb ls | grep -c "remote (node"; }
wait_until 60 eval '[ "$(remote_rows)" -eq 2 ]' &&
	ok "lb ls on node 2 lists nomesh's 2 tasks on other nodes as remote" ||
	fail "lb ls on node 2: $(node_shoal 2 lb ls)"
expect_eq "nomesh's tasks on no overlay network" "" "$(task_addrs nomesh)"
must "service rm nomesh" node_shoal 1 service rm nomesh
out=$(node_shoal 1 network create -d overlay --ingress --attachable ing-a 2>&1)
expect_contains "an attachable ingress network refused" "cannot be attachable" "$out"
must "network create --ingress --subnet" node_shoal 1 network create -d overlay --ingress --subnet 10.81.0.0/24 my-ingress
out=$(node_shoal 2 network create -d overlay --ingress second-ingress 2>&1)
expect_contains "a second ingress network refused, naming the first" "my-ingress is the ingress network already" "$out"
OVL_ID=$(api_get 1 /networks/ovl | python3 -c 'import json,sys; print(json.load(sys.stdin)["Id"])')
must "service rm web" node_shoal 1 service rm web
must "service rm inside" node_shoal 1 service rm inside
SECOND_ID=$(api_get 1 /networks/second | python3 -c 'import json,sys; print(json.load(sys.stdin)["Id"])')
# an address an agent killed mid-start would leave: no endpoint record
nsenter --net="/run/netns/$ETCD_NS" env ETCDCTL_API=3 etcdctl --endpoints "$ETCD_EP" \
	put "/shoal/ipam/addr/$SECOND_ID/10.76.0.9" '{"Node":"gone","Endpoint":"gone"}' >/dev/null
must "network rm second" node_shoal 1 network rm second
keys_under() {
	nsenter --net="/run/netns/$ETCD_NS" env ETCDCTL_API=3 etcdctl --endpoints "$ETCD_EP" \
		get --prefix --keys-only "$1" | grep .
}
key_exists() { # the exact key, not a prefix: 10.77.0.5 is not 10.77.0.51
	nsenter --net="/run/netns/$ETCD_NS" env ETCDCTL_API=3 etcdctl --endpoints "$ETCD_EP" \
		get --keys-only "$1" | grep -q .
}
web_freed() {
	local ip
	for ip in $web_ips; do ! key_exists "/shoal/ipam/addr/$OVL_ID/$ip" || return 1; done
}
if key_exists "/shoal/ipam/addr/$SECOND_ID/10.76.0.9"; then
	fail "network rm left an orphaned address"
else
	ok "network rm gave an orphaned address back"
fi
wait_until 60 web_freed && ok "service rm gave web's addresses back" ||
	fail "web's addresses still held: $(keys_under /shoal/ipam/addr/$OVL_ID/)"
locked_id=$(api_get 1 /networks/locked | python3 -c 'import json,sys; print(json.load(sys.stdin)["Id"])')
locked_free() { [ -z "$(keys_under "/shoal/endpoints/$locked_id/")" ]; }
wait_until 60 locked_free || fail "inside's endpoint records left"
must "network rm locked" node_shoal 1 network rm locked

log "drift: the vxlan device deleted on node 3"
vx3=$(vxdev 3)
[ -n "$vx3" ] || fatal "no vxlan device on node 3: $(in_ns 3 ip -o link show)"
must "deleting $vx3" in_ns 3 ip link del "$vx3"
wait_until 20 vx_back 3 && ok "$vx3 made again" || fail "$vx3 not made again"
wait_until 20 reaches 1 a "$ip_b" hello-from-b || fail "a does not reach b after the repair"
wait_until 20 reaches 3 b "$ip_a" hello-from-a || fail "b does not reach a after the repair"

log "drift: an FDB entry deleted by hand on node 1"
mac_b=$(inspect 3 b '{{.NetworkSettings.MacAddress}}')
vx1=$(vxdev 1)
fdb_has 1 "$mac_b" || fail "no FDB entry for b ($mac_b) on node 1: $(in_ns 1 bridge fdb show dev "$vx1")"
must "deleting b's FDB entry" in_ns 1 bridge fdb del "$mac_b" dev "$vx1"
fdb_has 1 "$mac_b" && fail "the FDB entry did not go"
wait_until 20 fdb_has 1 "$mac_b" && ok "b's FDB entry back on node 1" ||
	fail "b's FDB entry not back on node 1"
wait_until 20 reaches 1 a "$ip_b" hello-from-b || fail "a does not reach b after the FDB repair"

log "node 1's agent restarted"
cluster_node_kill9 1
# the data dir's lock can be let go a moment after the killed agent is
# reaped (seen on a loaded machine): waited for, or the restart is refused
lock_free() { flock -n "$T/n1/data/shoald.lock" true; }
wait_until 5 lock_free || fail "node 1's data dir still locked after its agent was killed"
: >"$T/n1/shoald.log"
cluster_node_start 1
sleep $((2 * 5 + 1)) # two resyncs
errs=$(grep -Ei ' (warn|error)' "$T/n1/shoald.log")
expect_eq "no warning or error in node 1's log after the restart" "" "$errs"
vx1=$(vxdev 1)
dups=$(in_ns 1 bridge fdb show dev "$vx1" | sort | uniq -d)
expect_eq "no duplicate FDB entry on node 1" "" "$dups"
dups=$(in_ns 1 ip neigh show dev "$vx1" | sort | uniq -d)
expect_eq "no duplicate neighbour entry on node 1" "" "$dups"
wait_until 20 reaches 1 a "$ip_b" hello-from-b || fail "a does not reach b after the restart"
wait_until 20 reaches 3 b "$ip_a" hello-from-a || fail "b does not reach a after the restart"

log "egress through the node, masqueraded"
health() { in_ctr 1 a busybox sh -c "printf 'GET /health HTTP/1.0\r\n\r\n' | nc -w 3 $ETCD_ADDR 2379" 2>/dev/null; }
expect_contains "a reaches a machine off the overlay (etcd) through node 1" '"health":"true"' "$(health)"

must "creating an internal network" node_shoal 1 network create -d overlay --attachable \
	--internal --subnet 10.78.0.0/24 inner
must "running i on it on node 1" node_shoal 1 run -d --name i --network inner busybox sleep 100000
out=$(in_ctr 1 i busybox sh -c "printf 'GET /health HTTP/1.0\r\n\r\n' | nc -w 2 $ETCD_ADDR 2379" 2>&1)
expect_not_contains "a container on an internal network does not get out" '"health"' "$out"
must "removing i" node_shoal 1 rm -f i

log "the docker CLI: run --network on node 2"
if command -v docker >/dev/null 2>&1; then
	dk2() { timeout 30 env DOCKER_HOST="unix://$(node_sock 2)" docker "$@"; }
	must "docker run --network ovl on node 2" dk2 run -d --name d --network ovl busybox sleep 100000
	ip_d=$(inspect 2 d '{{.NetworkSettings.IPAddress}}')
	[[ "$ip_d" == 10.77.0.* ]] || fail "d's address [$ip_d] is not in 10.77.0.0/24"
	wait_until 20 reaches 2 d "$ip_a" hello-from-a || fail "d (node 2) does not reach a at $ip_a"
	wait_until 20 reaches 2 d "$ip_b" hello-from-b || fail "d (node 2) does not reach b at $ip_b"
	ok "d, run by the docker CLI on node 2, reaches a and b"
	must "docker rm -f d" dk2 rm -f d
else
	log "no docker CLI on this machine: its run --network not checked"
fi

log "a container removed"
must "running c on node 1" serve 1 c hello-from-c
ip_c=$(inspect 1 c '{{.NetworkSettings.IPAddress}}')
mac_c=$(inspect 1 c '{{.NetworkSettings.MacAddress}}')
wait_until 20 reaches 3 b "$ip_c" hello-from-c || fail "b does not reach c at $ip_c"
fdb_has 3 "$mac_c" || fail "no FDB entry for c on node 3"
must "removing c" node_shoal 1 rm -f c
gone() { ! fdb_has "$1" "$2" && ! neigh_has "$1" "$3"; }
wait_until 20 gone 3 "$mac_c" "$ip_c" && ok "c's FDB and neighbour entries gone from node 3" ||
	fail "c's FDB or neighbour entry left on node 3"
no_vx() { [ -z "$(vxdev "$1")" ]; }
wait_until 20 no_vx 2 && ok "node 2, its last container on ovl gone, has no vxlan device" ||
	fail "node 2 kept the network without a container on it"

log "30 containers at once over the three nodes"
pids=()
for k in $(seq 1 30); do
	node_shoal $(((k % 3) + 1)) run -d --name "m$k" --network ovl busybox sleep 100000 \
		>"$T/m$k.out" 2>&1 &
	pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || true; done
started=$(grep -l . "$T"/m*.out | xargs grep -L -i 'error' | wc -l)
expect_eq "30 started" 30 "$started"
addrs=$(for i in 1 2 3; do
	for c in $(node_shoal "$i" ps -q); do inspect "$i" "$c" '{{.NetworkSettings.IPAddress}}'; done
done)
expect_eq "32 addresses in all" 32 "$(echo "$addrs" | grep -c .)"
expect_eq "no address twice" "" "$(echo "$addrs" | sort | uniq -d)"
must "removing them" bash -c "for k in \$(seq 1 30); do
	SHOAL_HOST=unix://$T/n\$(((k % 3) + 1))/shoal.sock $SHOAL_BIN rm -f m\$k >/dev/null; done"

log "200 tasks at once over the three nodes"
t0=$(date +%s)
must "service many, 200 replicas on ovl" node_shoal 1 service create -d --name many --replicas 200 \
	--network ovl busybox sleep 100000
many_up() { [ "$(task_addrs many | grep -c ' ovl ')" = 200 ]; }
wait_until 240 many_up || fail "many: $(task_addrs many | grep -c ' ovl ') of 200 tasks running with an address on ovl"
log "200 tasks running with an address in $(($(date +%s) - t0)) s"
expect_eq "200 task addresses, none twice" "" "$(task_addrs many | awk '{print $3}' | sort | uniq -d)"
expect_eq "the tasks on all three nodes" 3 "$(task_addrs many | awk '{print $1}' | sort -u | wc -l)"
must "service rm many" node_shoal 1 service rm many
two_left() { [ "$(for i in 1 2 3; do node_shoal "$i" ps -q; done | grep -c .)" = 2 ]; }
wait_until 240 two_left || fail "many's containers still running: $(for i in 1 2 3; do node_shoal "$i" ps -q; done | wc -l)"

non_node_vxlan

log "the last containers removed"
must "removing a" node_shoal 1 rm -f a
must "removing b" node_shoal 3 rm -f b
wait_until 20 no_vx 1 || fail "node 1 kept the network's devices"
wait_until 20 no_vx 3 || fail "node 3 kept the network's devices"
expect_eq "no endpoint record left" "" "$(keys_under /shoal/endpoints/)"
expect_eq "no overlay address held" "" "$(keys_under /shoal/ipam/addr/)"
log "a full network"
must "creating a /29 network" node_shoal 1 network create -d overlay --attachable \
	--subnet 10.79.0.0/29 tiny
# 6 host addresses: the network's gateway and node 2's own address leave 4
for k in 1 2 3 4; do
	must "container t$k on tiny" node_shoal 2 run -d --name "t$k" --network tiny busybox sleep 100000
done
out=$(node_shoal 2 run -d --name t5 --network tiny busybox sleep 100000 2>&1)
expect_contains "the fifth is refused naming the network" "network tiny has no free address left" "$out"
for k in 1 2 3 4 5; do node_shoal 2 rm -f "t$k" >/dev/null 2>&1; done

log "node 2's agent killed, its container running on"
must "p1 on node 1" serve 1 p1 hello-from-p1
must "p3 on node 3" serve 3 p3 hello-from-p3
must "e on node 2" serve 2 e hello-from-e
ip_p1=$(inspect 1 p1 '{{.NetworkSettings.IPAddress}}')
ip_p3=$(inspect 3 p3 '{{.NetworkSettings.IPAddress}}')
ip_e=$(inspect 2 e '{{.NetworkSettings.IPAddress}}')
mac_e=$(inspect 2 e '{{.NetworkSettings.MacAddress}}')
e_id=$(inspect 2 e '{{.Id}}')
wait_until 20 reaches 1 p1 "$ip_e" hello-from-e || fail "p1 does not reach e at $ip_e"
wait_until 20 reaches 3 p3 "$ip_e" hello-from-e || fail "p3 does not reach e at $ip_e"
must "service web on ovl again" web_create
wait_until 60 three_up || fail "web: not 3 running tasks with an address on ovl: $(task_addrs web)"
n2=$(info_json 2 | python3 -c 'import json,sys; print(json.load(sys.stdin)["Swarm"]["NodeID"][:12])')
w2_ip=$(task_addrs web | awk -v n="$n2" '$1 == n {print $3}')
[ -n "$w2_ip" ] || fail "no task of web on node 2: $(task_addrs web)"
answers() { [ -n "$(get 1 p1 "$1")" ]; }
wait_until 20 answers "$w2_ip"
w2_body=$(get 1 p1 "$w2_ip")
[ -n "$w2_body" ] || fail "p1 does not reach node 2's task of web at $w2_ip"
# every task serving (a task is running once its container starts, before
# its httpd listens), so that a connection the VIP sends anywhere is answered
for ip in $(task_addrs web | awk '{print $3}'); do
	wait_until 20 answers "$ip" || fail "p1 does not reach web's task at $ip"
done
# via NODE CTR: 30 connections from CTR to web's VIP (by name), one answer a line
via() {
	node_shoal "$1" exec "$2" sh -c 'for i in $(seq 1 30); do
		printf "GET / HTTP/1.0\r\n\r\n" | nc -w 3 web 80 | tail -n 1; done' 2>/dev/null
}
all3() { [ "$(via 1 p1 | sort -u | grep -c .)" = 3 ]; }
wait_until 20 all3 && ok "30 connections from node 1 to web's VIP reach its tasks on all three nodes" ||
	fail "web's VIP from node 1 reaches: $(via 1 p1 | sort | uniq -c | xargs)"
TTL=5 # shoald's default --node-ttl
e_gone() { ! fdb_has 1 "$mac_e" && ! neigh_has 1 "$ip_e" && ! fdb_has 3 "$mac_e" && ! neigh_has 3 "$ip_e"; }
t0=$(date +%s.%N)
cluster_node_kill9 2
wait_until 30 e_gone || fail "e's FDB or neighbour entries still on node 1 or 3 30 s after node 2's agent died"
t1=$(date +%s.%N)
log "e's entries gone from nodes 1 and 3 $(python3 -c "print('%.1f' % ($t1 - $t0))") s after node 2's agent died (TTL $TTL s)"
reaches 1 p1 "$ip_p3" hello-from-p3 && ok "p1 still reaches p3" || fail "p1 no longer reaches p3"
reaches 3 p3 "$ip_p1" hello-from-p1 && ok "p3 still reaches p1" || fail "p3 no longer reaches p1"
w2_gone() { ! grep -qw "$w2_ip" <<<"$(dns 1 p1 tasks.web) $(dns 3 p3 tasks.web)"; }
wait_until 30 w2_gone || fail "node 2's task $w2_ip still in tasks.web 30 s after node 2's agent died"
t1=$(date +%s.%N)
log "node 2's task out of tasks.web $(python3 -c "print('%.1f' % ($t1 - $t0))") s after node 2's agent died"
expect_eq "tasks.web on node 1: the two tasks left" 2 "$(dns 1 p1 tasks.web | wc -w)"
for i in 1 3; do
	ctr=p$i
	out=$(via $i $ctr)
	expect_eq "30 connections from node $i to web's VIP answered" 30 "$(grep -c . <<<"$out")"
	expect_not_contains "none by node 2's task (not a backend on node $i)" "$w2_body" "$out"
	expect_eq "by the two tasks left" 2 "$(sort -u <<<"$out" | grep -c .)"
done
e_reclaimed() { [ -z "$(keys_under "/shoal/endpoints/$OVL_ID/$e_id")" ] && ! key_exists "/shoal/ipam/addr/$OVL_ID/$ip_e"; }
wait_until 60 e_reclaimed && ok "e's record and address given back after the grace" ||
	fail "e's record or address still held: $(keys_under "/shoal/endpoints/$OVL_ID/")"
cluster_node_start 2
e_back() { key_exists "/shoal/ipam/addr/$OVL_ID/$ip_e" && fdb_has 1 "$mac_e"; }
wait_until 30 e_back && ok "node 2 back: e recorded again at $ip_e" || fail "e not recorded again at $ip_e"
wait_until 20 reaches 1 p1 "$ip_e" hello-from-e && ok "p1 reaches e again" || fail "p1 does not reach e after node 2 came back"

log "node 2 dead: its agent and its containers"
t0=$(date +%s.%N)
cluster_node_kill9 2
cluster_node_wipe_procs 2
wait_until 30 e_gone || fail "e's FDB or neighbour entries still on node 1 or 3 30 s after node 2 died"
t1=$(date +%s.%N)
log "e's entries gone from nodes 1 and 3 $(python3 -c "print('%.1f' % ($t1 - $t0))") s after node 2 died (TTL $TTL s)"
reaches 1 p1 "$ip_p3" hello-from-p3 && ok "p1 still reaches p3" || fail "p1 no longer reaches p3"
reaches 3 p3 "$ip_p1" hello-from-p1 && ok "p3 still reaches p1" || fail "p3 no longer reaches p1"
must "removing p3" node_shoal 3 rm -f p3
must "service rm web" node_shoal 1 service rm web
must "network prune" node_shoal 1 network prune -f
expect_contains "network prune leaves the ingress network" '"Ingress": true' \
	"$(api_get 1 /networks/my-ingress | python3 -m json.tool)"

teardown_check
finish
