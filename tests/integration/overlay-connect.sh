#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Containers on several overlay networks (two nodes, etcd, one agent each:
# tests/integration/cluster-lib.sh):
# - run --network front --network back: eth0 on front (the default route),
#   eth1 on back with only its subnet's route; inspect lists both networks;
#   it reaches a container on back on node 2 by address and by name (the
#   embedded DNS answers on each of its networks), and is reached there at
#   its back address (its endpoint programmed on node 2);
# - network connect back to a running container on front: eth1 made, the
#   other node reached; disconnect: eth1 gone, the other node no longer
#   reached, the endpoint's record and address given back;
# - connect to a stopped container: joined at its start; the docker CLI's
#   network connect does the same as shoal's;
# - refused with a message: a non-attachable network, a network it is on
#   already, the bridge, its first network's disconnect, a network it is not
#   on, endpoint settings (aliases), a host-network container;
# - a network policy selecting network back isolates the container's eth1
#   (its own veth), not its eth0;
# - a service on front and back (alias on back): a VIP on each network in
#   Endpoint.VirtualIPs; its name (and the alias, on back only) resolves to
#   the asker's network's VIP, tasks.NAME to the tasks' addresses there, and
#   both VIPs answer; --network-rm gives that network's VIP back, service rm
#   the other; a network given twice is refused;
# - node 1's agent restarted: eth1 still reached; after rm -f nothing is left
#   (no veth of node 1's prefix, no endpoint record).
. "$(dirname "$0")/cluster-lib.sh"

for c in ip nsenter python3 curl etcdctl; do
	command -v $c >/dev/null 2>&1 || { echo "SKIP: needs $c"; exit $SKIP; }
done

cluster_etcd_start
for i in 1 2; do
	cluster_node_start "$i"
	must "loading the test image on node $i" node_shoal "$i" image load -i "$TEST_IMAGE"
done
PFX1="c${TAG:1:5}1"
inspect() { node_shoal "$1" inspect -f "$3" "$2" 2>/dev/null; } # inspect NODE CTR FORMAT
in_ctr() {
	local i=$1 c=$2
	shift 2
	nsenter --net="$(inspect "$i" "$c" '{{.NetworkSettings.SandboxKey}}')" "$@"
}
get() { in_ctr "$1" "$2" timeout 6 busybox sh -c "printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 3 $3 80" 2>/dev/null | tail -n 1; }
reaches() { [ "$(get "$1" "$2" "$3")" = "$4" ]; } # reaches NODE CTR ADDR BODY
by_name() { timeout 10 "$SHOAL_BIN" -H "unix://$(node_sock "$1")" exec "$2" sh -c "printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 3 $3 80 | tail -n 1" 2>/dev/null; }
net_ip() { # net_ip NODE CTR NETWORK: its address there, from inspect
	node_shoal "$1" inspect "$2" | python3 -c '
import json,sys; n=json.load(sys.stdin)[0]["NetworkSettings"]["Networks"].get(sys.argv[1])
print(n["IPAddress"] if n else "")' "$3"
}
keys_under() {
	nsenter --net="/run/netns/$ETCD_NS" env ETCDCTL_API=3 etcdctl --endpoints "$ETCD_EP" \
		get --prefix --keys-only "$1" | grep .
}
serve() { # serve NODE NAME NETWORK BODY
	node_shoal "$1" run -d --name "$2" --network "$3" busybox \
		sh -c "mkdir -p /w && echo $4 > /w/index.html && exec httpd -f -p 80 -h /w"
}

log "networks and servers"
must "network front" node_shoal 1 network create -d overlay --attachable --subnet 10.91.0.0/24 front
must "network back" node_shoal 1 network create -d overlay --attachable --subnet 10.92.0.0/24 back
must "network closed" node_shoal 1 network create -d overlay closed
BACK_ID=$(node_shoal 1 network inspect -f '{{.Id}}' back)
must "srvb on back on node 2" serve 2 srvb back hello-back
must "srvf on front on node 2" serve 2 srvf front hello-front
srvb_ip=$(net_ip 2 srvb back)

log "run with two networks"
must "multi on front and back on node 1" node_shoal 1 run -d --name multi --network front --network back busybox \
	sh -c "mkdir -p /w && echo hello-multi > /w/index.html && exec httpd -f -p 80 -h /w"
m_front=$(net_ip 1 multi front)
m_back=$(net_ip 1 multi back)
[[ $m_front == 10.91.0.* && $m_back == 10.92.0.* ]] && ok "inspect: front $m_front and back $m_back" ||
	fail "inspect's networks: front '$m_front' back '$m_back'"
addrs=$(in_ctr 1 multi ip -o -4 addr show)
grep -q "eth0 .*inet $m_front/" <<<"$(tr -s ' ' <<<"$addrs")" && ok "eth0 holds the front address" ||
	fail "eth0: $addrs"
grep -q "eth1 .*inet $m_back/" <<<"$(tr -s ' ' <<<"$addrs")" && ok "eth1 holds the back address" ||
	fail "eth1: $addrs"
routes=$(in_ctr 1 multi ip -4 route show)
expect_contains "the default route leaves by eth0" "default via 10.91.0." "$routes"
expect_eq "one default route" 1 "$(grep -c '^default' <<<"$routes")"
wait_until 20 reaches 1 multi "$srvb_ip" hello-back && ok "multi reaches srvb on node 2 by its back address" ||
	fail "multi does not reach srvb at $srvb_ip"
expect_eq "multi reaches srvb by name" hello-back "$(by_name 1 multi srvb)"
expect_eq "multi reaches srvf by name" hello-front "$(by_name 1 multi srvf)"
wait_until 20 reaches 2 srvb "$m_back" hello-multi && ok "srvb on node 2 reaches multi at its back address" ||
	fail "srvb does not reach multi at $m_back"

log "connect and disconnect a running container"
must "single on front on node 1" node_shoal 1 run -d --name single --network front busybox sleep 100000
must "network connect back single" node_shoal 1 network connect back single
s_back=$(net_ip 1 single back)
[[ $s_back == 10.92.0.* ]] && ok "single connected: back $s_back" || fail "single's back address: '$s_back'"
grep -q "eth1 .*inet $s_back/" <<<"$(in_ctr 1 single ip -o -4 addr show | tr -s ' ')" &&
	ok "single's eth1 holds it" || fail "single's eth1: $(in_ctr 1 single ip -o -4 addr show)"
wait_until 20 reaches 1 single "$srvb_ip" hello-back && ok "single reaches srvb across nodes once connected" ||
	fail "single does not reach srvb at $srvb_ip"
single_id=$(inspect 1 single '{{.Id}}')
[ -n "$(keys_under "/shoal/endpoints/$BACK_ID/$single_id")" ] && ok "its endpoint recorded on back" ||
	fail "no endpoint record of single on back"
out=$(node_shoal 1 network connect back single 2>&1)
expect_contains "connecting it twice refused" "already exists in network back" "$out"
must "network disconnect back single" node_shoal 1 network disconnect back single
expect_eq "inspect no longer lists back" "" "$(net_ip 1 single back)"
expect_not_contains "no eth1 left inside" "eth1" "$(in_ctr 1 single ip -o link show)"
! reaches 1 single "$srvb_ip" hello-back && ok "srvb no longer reached" || fail "single still reaches srvb"
expect_eq "its endpoint record given back" "" "$(keys_under "/shoal/endpoints/$BACK_ID/$single_id")"
expect_eq "its address given back" "" "$(keys_under "/shoal/ipam/addr/$BACK_ID/$s_back" | grep -x "/shoal/ipam/addr/$BACK_ID/$s_back")"

log "refusals"
out=$(node_shoal 1 network connect closed single 2>&1)
expect_contains "a non-attachable network refused" "not manually attachable" "$out"
out=$(node_shoal 1 network connect bridge single 2>&1)
expect_contains "the bridge refused" "network bridge" "$out"
out=$(node_shoal 1 network disconnect front single 2>&1)
expect_contains "its first network's disconnect refused" "first network (eth0)" "$out"
out=$(node_shoal 1 network disconnect back single 2>&1)
expect_contains "a network it is not on" "is not connected to network back" "$out"
out=$(node_api 1 POST /networks/back/connect '{"Container":"single","EndpointConfig":{"Aliases":["x"]}}')
expect_contains "endpoint settings refused" "EndpointConfig: endpoint settings" "$out"
out=$(node_api 1 POST /networks/back/connect '{"Container":"single","Bogus":1}')
expect_contains "an unknown field refused" "Bogus: unknown field" "$out"
must "a host-network container" node_shoal 1 run -d --name hostc --network host busybox sleep 100000
out=$(node_shoal 1 network connect back hostc 2>&1)
expect_contains "a host-network container refused" "uses the host network" "$out"
must "rm hostc" node_shoal 1 rm -f hostc
out=$(node_shoal 1 run -d --network host --network back busybox true 2>&1)
expect_contains "run with host and another network refused" "uses the host network" "$out"

log "a stopped container joins at its start"
must "stop single" node_shoal 1 stop -t 1 single
if command -v docker >/dev/null 2>&1; then
	must "docker network connect back single" env DOCKER_HOST="unix://$(node_sock 1)" docker network connect back single
else
	must "network connect back single" node_shoal 1 network connect back single
fi
must "start single" node_shoal 1 start single
s_back=$(net_ip 1 single back)
[[ $s_back == 10.92.0.* ]] && ok "single joined back at its start: $s_back" || fail "single's back address after start: '$s_back'"
wait_until 20 reaches 1 single "$srvb_ip" hello-back && ok "and reaches srvb" || fail "single does not reach srvb after its start"

log "a policy on network back isolates multi's eth1, not its eth0"
cat >"$T/pol.json" <<'EOF'
{"Name": "back-closed", "Selector": {"Network": "back"}, "Types": ["Ingress"], "Ingress": []}
EOF
must "policy create" node_shoal 1 policy create -f "$T/pol.json"
# srvb (back) to multi's back address: dropped; srvf (front) to its front one: answered
dropped_b() { ! reaches 2 srvb "$m_back" hello-multi; }
wait_until 20 dropped_b && ok "srvb no longer reaches multi's eth1" || fail "srvb still reaches multi at $m_back"
reaches 2 srvf "$m_front" hello-multi && ok "srvf still reaches multi's eth0" || fail "srvf no longer reaches multi at $m_front"
must "policy rm" node_shoal 1 policy rm back-closed
wait_until 20 reaches 2 srvb "$m_back" hello-multi && ok "reached again once the policy is gone" ||
	fail "srvb does not reach multi again"

log "a service on front and back"
must "service api on front and back" node_shoal 1 service create -d --name api --replicas 2 \
	--network front --network name=back,alias=api-b busybox \
	sh -c "mkdir -p /w && hostname > /w/index.html && exec httpd -f -p 80 -h /w"
svc_json() { node_api 1 GET /services/api | cut -d' ' -f2-; }
vips() { svc_json | python3 -c '
import json,sys; s=json.load(sys.stdin)
print(" ".join("%s=%s" % (v["NetworkID"], v["Addr"].split("/")[0]) for v in s["Endpoint"]["VirtualIPs"]))'; }
FRONT_ID=$(node_shoal 1 network inspect -f '{{.Id}}' front)
running2() { [ "$(node_shoal 1 service ps api 2>/dev/null | grep -c 'Running *Running')" = 2 ]; }
wait_until 60 running2 || fail "api: not 2 running tasks: $(node_shoal 1 service ps api 2>&1)"
v=$(vips)
vip_f=$(tr ' ' '\n' <<<"$v" | sed -n "s/^$FRONT_ID=//p")
vip_b=$(tr ' ' '\n' <<<"$v" | sed -n "s/^$BACK_ID=//p")
[[ $vip_f == 10.214.* && $vip_b == 10.214.* && $vip_f != "$vip_b" ]] &&
	ok "a VIP on each network: front $vip_f, back $vip_b" || fail "Endpoint.VirtualIPs: $v"
ns() { node_shoal "$1" exec "$2" nslookup -type=a "$3" 2>/dev/null | sed -n 's/^Address:[[:space:]]*\(10\.[0-9.]*\)$/\1/p' | sort | xargs; }
expect_eq "api from srvb (on back) is back's VIP" "$vip_b" "$(ns 2 srvb api)"
expect_eq "api from srvf (on front) is front's VIP" "$vip_f" "$(ns 2 srvf api)"
expect_eq "the alias api-b on back" "$vip_b" "$(ns 2 srvb api-b)"
expect_eq "no alias api-b on front" "" "$(ns 2 srvf api-b)"
tb=$(ns 2 srvb tasks.api)
[[ $(wc -w <<<"$tb") == 2 && $tb == 10.92.0.*\ 10.92.0.* ]] && ok "tasks.api on back: its 2 tasks' back addresses ($tb)" ||
	fail "tasks.api from srvb: $tb"
answered() { [ -n "$(by_name 2 "$1" api)" ]; }
wait_until 20 answered srvb && ok "srvb reaches api by its back VIP" || fail "srvb gets no answer from api"
wait_until 20 answered srvf && ok "srvf reaches api by its front VIP" || fail "srvf gets no answer from api"
out=$(node_shoal 1 service update -d --network-rm nosuch api 2>&1)
expect_contains "--network-rm of a network it is not on refused" "not on that network" "$out"
must "service update --network-rm back" node_shoal 1 service update -d --network-rm back api
one_vip() { [ "$(vips | wc -w)" = 1 ]; }
wait_until 10 one_vip && ok "one VIP left after the network's removal" || fail "VirtualIPs after --network-rm: $(vips)"
expect_eq "back's VIP given back" "" "$(keys_under "/shoal/ipam/vips/$vip_b" | grep -x "/shoal/ipam/vips/$vip_b")"
must "service rm api" node_shoal 1 service rm api
api_gone() { ! node_shoal 1 ps -a | grep -q ' api\.'; }
wait_until 30 api_gone || fail "api's containers still on node 1: $(node_shoal 1 ps -a)"
expect_eq "front's VIP given back" "" "$(keys_under "/shoal/ipam/vips/$vip_f" | grep -x "/shoal/ipam/vips/$vip_f")"
out=$(node_shoal 1 service create --name bad --network front --network "$FRONT_ID" busybox sleep 1000 2>&1)
expect_contains "a network given twice refused" "already attached" "$out"

log "node 1's agent restarted"
cluster_node_kill9 1
cluster_node_start 1
expect_eq "multi's back address kept" "$m_back" "$(net_ip 1 multi back)"
wait_until 20 reaches 2 srvb "$m_back" hello-multi && ok "multi's eth1 still reached from node 2" ||
	fail "srvb does not reach multi at $m_back after the restart"
multi_id=$(inspect 1 multi '{{.Id}}')
must "rm -f multi single" node_shoal 1 rm -f multi single
gone() { [ -z "$(keys_under "/shoal/endpoints/$BACK_ID/$multi_id")" ] && [ -z "$(keys_under "/shoal/endpoints/$BACK_ID/$single_id")" ]; }
wait_until 10 gone && ok "their records on back given back" || fail "records left: $(keys_under "/shoal/endpoints/$BACK_ID/")"
veths() { ip -n "$(node_ns 1)" -o link show type veth | grep -c "${PFX1}v"; }
no_veths() { [ "$(veths)" = 0 ]; }
wait_until 10 no_veths && ok "no veth of node 1's containers left" || fail "veths left on node 1: $(ip -n "$(node_ns 1)" -o link show type veth)"
expect_eq "no error in node 1's log" "" "$(grep -E ' (error|warn)' "$T/n1/shoald.log" | grep -iv 'policy\|not recorded again' | head -n 3)"

finish
