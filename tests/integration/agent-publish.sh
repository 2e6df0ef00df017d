#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Published ports through the eBPF data plane: a client in its own network
# namespace reaches a service's replicas (and a container's -p port) through
# the node's uplink, TCP and UDP; the node's own processes reach them on
# localhost and the node's address; host publish mode; backends follow tasks;
# flows survive an agent restart.
#
# Run once as the kernel allows, and once more with every optional part of
# the data plane turned off (SHOAL_LB_DISABLE, as if the kernel lacked it,
# shoald asked for --xdp all the same): the same traffic must flow through
# the fallbacks, which `shoal info` and the log must name.
. "$(dirname "$0")/lib.sh"
AGENT_ARGS=()
[ -n "${SHOAL_LB_DISABLE:-}" ] && AGENT_ARGS=(--xdp)
node_start "${AGENT_ARGS[@]}"
client_start
# feature STATE: the data-plane feature's state as /info says
feature() { api GET /info | cut -d' ' -f2- | python3 -c '
import json, sys
for f in json.load(sys.stdin).get("ShoalDataPlane") or []:
    if f["Name"] == sys.argv[1]:
        print(f["State"])' "$1"; }
disabled() { [[ ",${SHOAL_LB_DISABLE:-}," == *",$1,"* ]]; }
SOCKET_LB=$(feature socket-lb)
log "data plane: socket-lb $SOCKET_LB, host-routing $(feature host-routing), xdp $(feature xdp)"
for f in xdp host-routing socket-lb coarse-clock; do
	if disabled "$f"; then
		expect_eq "$f turned off shows as unavailable in /info" unavailable "$(feature "$f")"
		# a kernel that lacks it anyway: its own reason is the one given
		why="turned off"
		info=$(shoal info 2>&1)
		if ! grep -q "data plane: $f unavailable: turned off" <<<"$info"; then
			why=$(sed -n "s/^WARNING: data plane: $f unavailable: \([^;]*\).*/\1/p" <<<"$info")
			[ -n "$why" ] && log "$f: this kernel lacks it anyway: $why"
		fi
		expect_contains "shoal info warns of $f and why" "data plane: $f unavailable: ${why:-turned off}" "$info"
		expect_contains "the agent's log names $f and what it does instead" "$f unavailable: ${why:-turned off}" "$(cat "$T/shoald.log")"
	fi
done
for f in tc maps; do
	expect_eq "required feature $f is on" on "$(feature "$f")"
done
# the uplink appeared after the agent: it is picked up on the next resync
sleep 2.5

# distinct answers among N requests to PORT
distinct() { for _ in $(seq 1 "$2"); do http_get "$1"; done | sort -u | grep -c .; }
answers() { [ -n "$(http_get "$1")" ]; }
tasks_json() { curl -s --unix-socket "$SOCK" -G --data-urlencode "filters={\"service\":{\"$1\":true}}" http://shoal/tasks; }
# node_get ADDR PORT: one HTTP/1.0 request from a process of the node itself
# the program behind the node hook's pinned connect4 link
node_prog() { bpftool -j link show pinned "/sys/fs/bpf/shoal-it-$TAG/node/link_node_connect4" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["prog_id"])'; }
root_progs() { bpftool -j cgroup show /sys/fs/cgroup/unified 2>/dev/null; }
update_done() { [ "$(api GET "/services/$1" | cut -d' ' -f2- | python3 -c 'import json,sys; print((json.load(sys.stdin).get("UpdateStatus") or {}).get("State",""))')" = completed ]; }

log "a published port reaches every replica"
must "creating service pub" shoal service create -d --name pub --replicas 3 -p 8080:80 --stop-grace-period 1s \
	busybox sh -c 'hostname > /var/www/index.html; exec httpd -f -p 80 -h /var/www' >/dev/null
wait_until 30 answers 8080 && ok "port 8080 answers from the client namespace" || fatal "8080 never answered"
sleep 0.5
n=$(distinct 8080 30)
expect_eq "30 requests spread over the 3 replicas" 3 "$n"
expect_contains "service inspect shows the published port's counters" '"NewFlows"' "$(api GET /services/pub)"
expect_eq "shoal lb ls lists the 3 backends" 3 "$(shoal lb ls | grep -c ':80 .*active')"
flows=$(curl -s --unix-socket "$SOCK" http://shoal/metrics | sed -n 's/^shoal_lb_new_flows_total{proto="tcp",port="8080"} //p')
[ "${flows:-0}" -ge 30 ] && ok "/metrics counts the new flows ($flows)" || fail "/metrics new flows: [$flows]"

log "published ports from the node itself"
node_spread() { [ "$(for _ in $(seq 1 30); do node_get 127.0.0.1 8080; done | sort -u | grep -c .)" = 3 ]; }
wait_until 10 node_spread && ok "127.0.0.1:8080 on the node reaches the 3 replicas" || fail "127.0.0.1:8080 from the node: [$(node_get 127.0.0.1 8080)]"
[ -n "$(node_get localhost 8080)" ] && ok "localhost:8080 on the node answers" || fail "localhost:8080 from the node"
node_addr_up() { [ -n "$(node_get "$NODE_ADDR" 8080)" ]; }
wait_until 10 node_addr_up && ok "the node's address:8080 answers from the node itself" || fail "$NODE_ADDR:8080 from the node"
out=$(in_node python3 -c 'import socket; s=socket.create_connection(("127.0.0.1",8080),3); print("%s:%d" % s.getpeername())' 2>&1)
expect_eq "the node's socket sees 127.0.0.1:8080 as its peer" "127.0.0.1:8080" "$out"
out=$(in_client busybox sh -c "printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 2 127.0.0.1 8080" 2>/dev/null | tail -n 1)
expect_eq "another network namespace's localhost:8080 is left alone" "" "$out"

log "the service's name and virtual IP from inside a container"
vip=$(api GET /services/pub | cut -d' ' -f2- | python3 -c 'import json,sys; print(json.load(sys.stdin)["VirtualIP"])')
out=$(shoal run --rm busybox nslookup -type=a pub 2>&1)
if [ "$SOCKET_LB" = on ]; then
	expect_contains "the service name resolves to its virtual IP" "$vip" "$out"
else
	expect_eq "without socket hooks the service name resolves to a task address" 1 \
		"$(echo "$out" | grep -c 'Address: 10\.213\.')"
	expect_not_contains "and not to the virtual IP, which nothing balances" "$vip" "$out"
fi
out=$(shoal run --rm busybox nslookup -type=a tasks.pub 2>&1 | grep -c 'Address: 10\.213\.')
expect_eq "tasks.NAME resolves to the 3 task addresses" 3 "$out"
out=$(shoal run --rm busybox sh -c 'for i in $(seq 1 30); do printf "GET / HTTP/1.0\r\n\r\n" | nc -w 3 pub 80 | tail -n 1; done' | sort -u | grep -c .)
expect_eq "connections to the service name spread over the 3 replicas" 3 "$out"
must "starting container named" shoal run -d --name named busybox sleep 60
out=$(shoal run --rm busybox nslookup -type=a named 2>&1)
expect_contains "a container's name resolves to its address" "$(shoal inspect -f '{{.NetworkSettings.IPAddress}}' named)" "$out"
shoal rm -f named >/dev/null

log "scaling changes the backends"
must "scaling pub to 1" shoal service scale pub=1 -d
one_backend() { [ "$(distinct 8080 10)" = 1 ]; }
wait_until 30 one_backend && ok "after scaling to 1, one replica answers" || fail "after scale: $(distinct 8080 10) replicas answer"
must "scaling pub to 2" shoal service scale pub=2 -d
two_backends() { [ "$(distinct 8080 20)" = 2 ]; }
wait_until 30 two_backends && ok "after scaling to 2, two replicas answer" || fail "after scale to 2: $(distinct 8080 20)"

log "conflicts and bad input"
out=$(api POST /services/create '{"Name":"dup","TaskTemplate":{"ContainerSpec":{"Image":"busybox"}},"EndpointSpec":{"Ports":[{"TargetPort":80,"PublishedPort":8080}]}}')
expect_eq "a port already published: 409" 409 "${out%% *}"
expect_contains "names who publishes it" "service pub" "$out"
out=$(api POST /containers/create '{"Image":"busybox","HostConfig":{"PortBindings":{"80/tcp":[{"HostPort":"99999"}]}}}')
expect_eq "a bad host port: 400" 400 "${out%% *}"
out=$(api POST /services/create '{"Name":"auto","TaskTemplate":{"ContainerSpec":{"Image":"busybox","Command":["sleep","100"]}},"EndpointSpec":{"Ports":[{"TargetPort":80}]}}')
expect_eq "a port of 0 is assigned" 201 "${out%% *}"
expect_contains "assigned from 30000 up" '"PublishedPort":30000' "$(api GET /services/auto)"
shoal service rm auto >/dev/null

log "shoal run -p"
must "starting container single" shoal run -d --name single -p 8081:80 busybox sh -c 'echo single > /var/www/index.html; exec httpd -f -p 80 -h /var/www'
wait_until 20 answers 8081 && ok "a container's published port answers" || fail "8081 never answered"
expect_eq "it is the container" single "$(http_get 8081)"
shoal rm -f single >/dev/null
gone() { ! answers 8081; }
wait_until 20 gone && ok "removing the container unpublishes the port" || fail "8081 still answers"

log "a UDP published port"
if udp_echo_image 2>"$T/cc.log"; then
	must "creating service udp" shoal service create -d --name udp --replicas 2 -p 5300:53/udp --stop-grace-period 1s udpecho:it /udpecho
	udp_up() { udp_ask in_client "$NODE_ADDR" 5300 | grep -q ' ping$'; }
	wait_until 30 udp_up && ok "UDP 5300 answers from the client namespace" || fail "UDP 5300: [$(udp_ask in_client "$NODE_ADDR" 5300)]"
	expect_eq "the answer comes from the published address" "$NODE_ADDR:5300" "$(udp_ask in_client "$NODE_ADDR" 5300 | cut -d' ' -f1)"
	n=$(for _ in $(seq 1 20); do udp_ask in_client "$NODE_ADDR" 5300; done | cut -d' ' -f2 | sort -u | grep -c .)
	expect_eq "20 datagrams from new sockets spread over the 2 replicas" 2 "$n"
	expect_eq "UDP from the node to 127.0.0.1:5300, answered from there" "127.0.0.1:5300" "$(udp_ask in_node 127.0.0.1 5300 | cut -d' ' -f1)"
	shoal service rm udp >/dev/null
else
	fail "the UDP echo image: $(head -c 300 "$T/cc.log")"
fi

log "host publish mode"
must "creating service hostm" shoal service create -d --name hostm --stop-grace-period 1s -p published=8090,target=80,mode=host \
	busybox sh -c 'hostname > /var/www/index.html; exec httpd -f -p 80 -h /var/www' >/dev/null
wait_until 30 answers 8090 && ok "a host-mode port answers where its task runs" || fail "8090 never answered"
node_8090() { [ -n "$(node_get 127.0.0.1 8090)" ]; }
wait_until 10 node_8090 && ok "and from the node itself" || fail "127.0.0.1:8090 from the node"
expect_contains "the task shows its port in PortStatus" '"PublishedPort":8090' "$(tasks_json hostm)"
must "scaling hostm to 2" shoal service scale hostm=2 -d
host_reason() { tasks_json hostm | grep -q 'host port 8090/tcp in use'; }
wait_until 20 host_reason && ok "a second task on the node stays pending, naming the port" || fail "no host port reason: $(tasks_json hostm | head -c 600)"
running=$(tasks_json hostm | python3 -c 'import json,sys; print(sum(1 for t in json.load(sys.stdin) if t["Status"]["State"]=="running"))')
expect_eq "one task of the host-mode service runs" 1 "$running"
must "scaling hostm to 0" shoal service scale hostm=0 -d
gone_8090() { ! answers 8090; }
wait_until 30 gone_8090 && ok "scaled to 0, the host-mode port is not published" || fail "8090 still answers"
expect_not_contains "shoal lb ls no longer lists it" "8090" "$(shoal lb ls)"
shoal service rm hostm >/dev/null
must "creating service hostany" shoal service create -d --name hostany --stop-grace-period 1s -p target=80,mode=host \
	busybox sh -c 'echo any > /var/www/index.html; exec httpd -f -p 80 -h /var/www' >/dev/null
hp() { tasks_json hostany | python3 -c '
import json,sys
for t in json.load(sys.stdin):
    for p in ((t.get("Status") or {}).get("PortStatus") or {}).get("Ports") or []:
        print(p["PublishedPort"])' | head -n 1; }
has_hp() { [ -n "$(hp)" ]; }
wait_until 30 has_hp && ok "a host-mode port without a published port gets one per task ($(hp))" || fail "no PortStatus: $(tasks_json hostany | head -c 600)"
any_up() { [ "$(http_get "$(hp)")" = any ]; }
wait_until 20 any_up && ok "the task answers on its assigned port" || fail "port $(hp) does not answer"
out=$(api POST /services/create '{"Name":"auto2","TaskTemplate":{"ContainerSpec":{"Image":"busybox","Command":["sleep","100"]}},"EndpointSpec":{"Ports":[{"TargetPort":80}]}}')
expect_eq "an ingress port of 0 is assigned" 201 "${out%% *}"
auto2=$(api GET /services/auto2 | cut -d' ' -f2- | python3 -c 'import json,sys; print(json.load(sys.stdin)["Spec"]["EndpointSpec"]["Ports"][0]["PublishedPort"])')
[ -n "$auto2" ] && [ "$auto2" != "$(hp)" ] && ok "not the port a task holds ($auto2)" || fail "ingress port $auto2, task port $(hp)"
shoal service rm auto2 >/dev/null
shoal service rm hostany >/dev/null

log "load balancer sizes"
out=$(bpftool map show pinned "/sys/fs/bpf/shoal-it-$TAG/lb/lb_maglev" 2>&1)
expect_contains "Maglev tables of 16381 entries by default" "value 65524B" "$out"
out=$("$SHOALD_BIN" --maglev-size 100 2>&1) && fail "--maglev-size 100 accepted" ||
	expect_contains "a Maglev size out of range is refused" "expected a prime from 101" "$out"
out=$("$SHOALD_BIN" --maglev-size 16382 2>&1) && fail "--maglev-size 16382 accepted" ||
	expect_contains "a Maglev size that is no prime is refused" "not a prime" "$out"
out=$("$SHOALD_BIN" --lb-flows lots 2>&1) && fail "--lb-flows lots accepted" ||
	expect_contains "a flow table size that is no number is refused" "--lb-flows lots" "$out"

log "the data plane outlives the agent"
must "creating service echo" shoal service create -d --name echo -p 8082:7 --stop-grace-period 1s busybox nc -ll -p 7 -e cat
echo_up() { [ "$(in_client busybox sh -c "echo ping | nc -w 2 $NODE_ADDR 8082")" = ping ]; }
wait_until 30 echo_up && ok "echo service answers" || fatal "echo service never answered"
# one TCP connection held open across kill -9 and restart of shoald
coproc ECHO { in_client busybox nc "$NODE_ADDR" 8082; }
echo before >&"${ECHO[1]}"
read -r -t 5 line <&"${ECHO[0]}"
expect_eq "the held connection works" before "$line"
old_prog=$(node_prog)
[ "$SOCKET_LB" = on ] || old_prog=""
agent_kill9
expect_contains "while shoald is down the port still answers" "" "$(http_get 8080)"
[ -n "$(http_get 8080)" ] && ok "port answers with the agent down" || fail "no answer with the agent down"
echo during >&"${ECHO[1]}"
read -r -t 5 line <&"${ECHO[0]}"
expect_eq "the held connection works while shoald is down" during "$line"
agent_start "${AGENT_ARGS[@]}"
wait_until 20 two_backends && ok "after the restart both replicas answer" || fail "after restart: $(distinct 8080 20)"
new_prog=$(node_prog)
if [ "$SOCKET_LB" = on ]; then
	[ -n "$old_prog" ] && [ -n "$new_prog" ] && [ "$old_prog" != "$new_prog" ] &&
		ok "the restarted agent swapped its node hooks in place" || fail "node hook program: [$old_prog] -> [$new_prog]"
	expect_not_contains "the old node hook is no longer on the cgroup root" "\"id\":$old_prog," "$(root_progs)"
else
	expect_eq "without socket hooks no node hook is pinned" "" "$new_prog"
fi
[ -n "$(node_get 127.0.0.1 8080)" ] && ok "127.0.0.1:8080 answers on the node after the restart" || fail "127.0.0.1:8080 after restart"
sleep 2.5
echo after >&"${ECHO[1]}"
read -r -t 5 line <&"${ECHO[0]}"
expect_eq "the held connection survives the restart" after "$line"
exec {ECHO[1]}>&-
kill "$ECHO_PID" 2>/dev/null
shoal service rm echo >/dev/null

log "scaling down breaks no other flow"
# each connection is greeted with its backend's hostname, then echoes
must "creating service echo3" shoal service create -d --name echo3 --replicas 3 -p 8084:7 --stop-grace-period 1s \
	busybox nc -ll -p 7 -e sh -c 'hostname; exec cat' >/dev/null
# held N GO: opens N connections, prints their backends, waits for the file GO,
# then prints "host:1" for each connection that still echoes, "host:0" otherwise
held() {
	in_client python3 -c '
import os, socket, sys, time
addr, n, go = sys.argv[1], int(sys.argv[2]), sys.argv[3]
conns = []
for _ in range(n):
    s = socket.create_connection((addr, 8084), 3)
    f = s.makefile("r")
    conns.append((s, f, f.readline().strip()))
print(" ".join(h for _, _, h in conns), flush=True)
end = time.time() + 120
while not os.path.exists(go) and time.time() < end:
    time.sleep(0.1)
out = []
for s, f, h in conns:
    try:
        s.settimeout(3)
        s.sendall(b"ping\n")
        out.append("%s:%d" % (h, f.readline().strip() == "ping"))
    except OSError:
        out.append("%s:0" % h)
print(" ".join(out), flush=True)
' "$NODE_ADDR" "$1" "$2"
}
echo3_hosts() { held 12 /dev/null | head -n 1 | tr ' ' '\n' | sort -u | grep -c .; }
echo3_three() { [ "$(echo3_hosts)" = 3 ]; }
wait_until 40 echo3_three && ok "3 echo replicas answer" || fatal "echo3: $(echo3_hosts) replicas"
held 24 "$T/go" >"$T/held.out" 2>"$T/held.err" &
hp=$!
wait_until 10 test -s "$T/held.out"
before=$(head -n 1 "$T/held.out" | tr ' ' '\n' | sort -u | grep -c .)
expect_eq "24 held connections spread over the 3 replicas" 3 "$before"
must "scaling echo3 to 1" shoal service scale echo3=1 -d
echo3_one() { [ "$(echo3_hosts)" = 1 ]; }
wait_until 40 echo3_one && ok "scaled to 1, one echo replica answers" || fail "echo3 after scale: $(echo3_hosts)"
survivor=$(held 1 /dev/null | head -n 1)
touch "$T/go"
wait "$hp"
res=$(sed -n 2p "$T/held.out" | tr ' ' '\n')
kept=$(echo "$res" | grep -c "^$survivor:") || true
broken=$(echo "$res" | grep -c "^$survivor:0") || true
[ "${kept:-0}" -gt 0 ] && [ "${broken:-0}" = 0 ] &&
	ok "all $kept held connections to the remaining replica still echo" ||
	fail "held connections to $survivor: $kept, broken $broken ($(cat "$T/held.out" "$T/held.err" | head -c 600))"
shoal service rm echo3 >/dev/null

log "rolling updates under load lose no request"
# a request every 20 ms from the client during the update; each must get an answer
load() { # load SECONDS -> prints failures
	local end=$((SECONDS + $1)) fails=0 n=0
	while [ $SECONDS -lt $end ]; do
		[ -n "$(http_get 8080)" ] || fails=$((fails + 1))
		n=$((n + 1))
		sleep 0.02
	done
	echo "$fails $n"
}
must "adding a health check to pub" shoal service update -d --health-cmd 'nc 127.0.0.1 80 </dev/null' --health-interval 200ms \
	--health-retries 2 pub >/dev/null
wait_until 60 update_done pub || fatal "the health check update of pub did not complete"
for order in start-first stop-first; do
	load 12 >"$T/load.$order" &
	lp=$!
	sleep 1
	must "a $order update of pub" shoal service update -d --env-add ROUND=$order --update-order $order --update-parallelism 1 \
		--update-delay 500ms pub >/dev/null
	wait $lp
	read -r fails n <"$T/load.$order"
	expect_eq "$order update: no failed request (of $n)" 0 "$fails"
	wait_until 60 update_done pub || fail "$order update did not complete"
done
moved=$(api GET /services/pub | grep -o '"NewFlows":[0-9]*' | head -1 | cut -d: -f2)
[ "${moved:-0}" -gt 0 ] && ok "the counters show traffic on the new tasks ($moved new flows on the port)" || fail "no flows counted"

log "a task whose health check fails stops receiving traffic"
must "creating service hc" shoal service create -d --name hc --replicas 2 -p 8083:80 --stop-grace-period 1s \
	--health-cmd 'test -f /var/www/index.html' --health-interval 200ms --health-retries 2 \
	--restart-delay 10s busybox sh -c 'hostname > /var/www/index.html; exec httpd -f -p 80 -h /var/www' >/dev/null
hc_two() { [ "$(distinct 8083 20)" = 2 ]; }
wait_until 40 hc_two && ok "both healthy replicas answer" || fatal "hc: $(distinct 8083 20) replicas"
sick=$(shoal ps --format '{{.ID}} {{.Names}}' | awk '/ hc\.1\./ {print $1}')
must "making hc's first task unhealthy" shoal exec "$sick" rm /var/www/index.html
# a request that reaches the sick replica gets a 404 page instead of a hostname
healthy=$(shoal ps --format '{{.ID}} {{.Names}}' | awk '/ hc\.2\./ {print $1}')
# every one of 20 requests must be answered, by the healthy replica (its hostname)
only_healthy() { [ "$(for _ in $(seq 1 20); do http_get 8083; done | sort | uniq -c | awk '{print $1" "$2}')" = "20 ${healthy:0:12}" ]; }
sleep 1
wait_until 20 only_healthy && ok "the unhealthy task gets no more requests" || fail "requests still reach the unhealthy task"
shoal service rm hc >/dev/null

log "removal"
shoal service rm pub >/dev/null
unpublished() { ! answers 8080; }
wait_until 30 unpublished && ok "service rm unpublishes the port" || fail "8080 still answers"

log "shoald --teardown"
prog=$(node_prog)
must "a container whose namespace teardown must unmount" shoal run -d --name leftover busybox sleep 600
agent_stop
in_node "$SHOALD_BIN" --data-dir "$T/data" --run-dir "$T/run" --socket "$SOCK" --cgroup-parent "$CG_PARENT" \
	--bpffs-dir "/sys/fs/bpf/shoal-it-$TAG" --device-prefix "$TAG" --bridge-subnet 10.213.0.0/16 \
	--teardown >>"$T/shoald.log" 2>&1 || fail "shoald --teardown"
[ -z "$prog" ] || expect_not_contains "the node hooks leave the cgroup root" "\"id\":$prog," "$(root_progs)"
expect_eq "no namespace of the agent stays mounted" "" "$(grep -F "$T/run/netns" /proc/self/mountinfo)"
expect_eq "no pin of the agent stays" "" "$(ls "/sys/fs/bpf/shoal-it-$TAG" 2>/dev/null)"
expect_eq "no tc filter of ours on the uplink" "" "$(in_node tc filter show dev "up${TAG}" ingress 2>/dev/null | grep lb_ingress)"
finish
