#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Published ports from the node itself without the socket hooks: with
# SHOAL_LB_DISABLE=socket-lb the agent answers localhost:PORT and the node's
# addresses through its userland proxy (agent/publish-proxy.c), TCP and UDP,
# round-robin over the active replicas, with half-close, backpressure, ports
# that come and go, a port someone else holds, and no descriptor left behind.
# Clients on an uplink still go through the eBPF data path.
. "$(dirname "$0")/lib.sh"
# every process of the node started from here (shoald among them) sees it
export SHOAL_LB_DISABLE=socket-lb
# UDP sessions end after 5 s of quiet instead of 30, so that the test waits less
export SHOAL_PROXY_UDP_IDLE_S=5
node_start
client_start
sleep 2.5

# node_distinct ADDR PORT N: distinct answers among N requests from the node
node_distinct() { for _ in $(seq 1 "$3"); do node_get "$1" "$2"; done | sort -u | grep -c .; }
client_distinct() { for _ in $(seq 1 "$2"); do http_get "$1"; done | sort -u | grep -c .; }
agent_fds() { ls "/proc/$AGENT_PID/fd" | wc -l; }
proxied() { grep -c "port $1 answers on the node through the userland proxy (socket hooks unavailable)" "$T/shoald.log"; }

log "the socket hooks are off"
[ ! -e "/sys/fs/bpf/shoal-it-$TAG/node/link_node_connect4" ] &&
	ok "no node hook is pinned" || fail "the node hooks are attached: SHOAL_LB_DISABLE=socket-lb not honoured"

log "a TCP published port from the node itself"
must "creating service pub" shoal service create -d --name pub --replicas 3 -p 8080:80 --stop-grace-period 1s \
	busybox sh -c 'hostname > /var/www/index.html; exec httpd -f -p 80 -h /var/www' >/dev/null
three() { [ "$(node_distinct 127.0.0.1 8080 30)" = 3 ]; }
wait_until 40 three && ok "30 connections to 127.0.0.1:8080 reach the 3 replicas" ||
	fail "127.0.0.1:8080 from the node: $(node_distinct 127.0.0.1 8080 30) replica(s) [$(node_get 127.0.0.1 8080)]"
expect_eq "the node's address:8080, from the node, reaches the 3 replicas" 3 "$(node_distinct "$NODE_ADDR" 8080 30)"
[ -n "$(node_get localhost 8080)" ] && ok "localhost:8080 on the node answers" || fail "localhost:8080 from the node"
expect_eq "the proxy is announced once for tcp/8080" 1 "$(proxied tcp/8080)"
expect_eq "a client on the uplink still reaches the 3 replicas (eBPF path)" 3 "$(client_distinct 8080 30)"
out=$(shoal run --rm busybox sh -c "printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 3 $NODE_ADDR 8080" 2>/dev/null | tail -n 1)
[ -n "$out" ] && ok "a container reaches the node's address:8080 ($out)" || fail "container -> $NODE_ADDR:8080"
expect_eq "another network namespace's localhost:8080 is left alone" "" \
	"$(in_client busybox sh -c "printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 2 127.0.0.1 8080" 2>/dev/null | tail -n 1)"

log "half-close and backpressure"
must "creating service echo" shoal service create -d --name echo -p 8082:7 --stop-grace-period 1s busybox nc -ll -p 7 -e cat
# 8 MiB through the echo: sent by a thread, read back in full, then the
# client's FIN must reach the backend (cat ends) and the backend's come back
echo_big() {
	in_node python3 -c '
import hashlib, os, socket, threading
data = os.urandom(8 << 20)
s = socket.create_connection(("127.0.0.1", 8082), 3)
s.settimeout(10)
def send():
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
t = threading.Thread(target=send)
t.start()
got = bytearray()
while True:
    b = s.recv(1 << 16)
    if not b:
        break
    got += b
t.join()
print("same" if hashlib.sha256(got).digest() == hashlib.sha256(data).digest() else "differs %d" % len(got))
'
}
echo_up() { [ "$(in_node busybox sh -c 'echo ping | nc -w 2 127.0.0.1 8082')" = ping ]; }
wait_until 30 echo_up && ok "the echo service answers on 127.0.0.1:8082" || fail "127.0.0.1:8082 never answered"
expect_eq "8 MiB echoed back whole, then EOF both ways" same "$(echo_big 2>&1 | tail -n 1)"
# a client that does not read: the proxy stops reading from the backend
# instead of buffering everything (the agent's memory stays put)
rss() { awk '/^VmRSS/ {print $2}' "/proc/$AGENT_PID/status"; }
rss0=$(rss)
in_node python3 -c '
import socket, time
s = socket.create_connection(("127.0.0.1", 8082), 3)
s.setblocking(False)
sent, end = 0, time.time() + 4
chunk = b"x" * 65536
while time.time() < end:
    try:
        sent += s.send(chunk)
    except BlockingIOError:
        time.sleep(0.05)
print(sent)
' >"$T/slow.out" 2>&1
sent=$(cat "$T/slow.out")
rss1=$(rss)
[ "${sent:-0}" -gt 0 ] && [ "${sent:-0}" -lt $((64 << 20)) ] &&
	ok "a client that never reads can send only $((sent >> 10)) KiB before the proxy pushes back" ||
	fail "a non-reading client sent [$sent] bytes"
[ $((rss1 - rss0)) -lt 32768 ] && ok "the agent's memory grew by $((rss1 - rss0)) KiB" ||
	fail "the agent's memory grew by $((rss1 - rss0)) KiB"

log "no descriptor leak"
sleep 1
fds0=$(agent_fds)
in_node python3 -c '
import socket
ok = 0
for i in range(200):
    s = socket.create_connection(("127.0.0.1", 8080), 3)
    s.settimeout(3)
    s.sendall(b"GET / HTTP/1.0\r\n\r\n")
    data = b""
    while True:
        b = s.recv(4096)
        if not b:
            break
        data += b
    s.close()
    ok += b"200 OK" in data
print(ok)
' >"$T/fds.out" 2>&1
expect_eq "200 proxied connections answered" 200 "$(cat "$T/fds.out")"
fds_back() { [ "$(agent_fds)" -le "$fds0" ]; }
wait_until 10 fds_back && ok "the agent's descriptors are back to $fds0" || fail "descriptors: $fds0 before, $(agent_fds) after 200 connections"

log "at its descriptor budget the proxy stops accepting, then resumes"
# with a limit of 400 descriptors the proxy takes 200 of them: 100 connections
# (the soft limit only: raising the hard one back would need CAP_SYS_RESOURCE)
limits=$(awk '/^Max open files/ {print $4":"$5}' "/proc/$AGENT_PID/limits")
prlimit --pid "$AGENT_PID" --nofile="400:${limits#*:}"
sleep 2.5 # the next sync reads the limit
cpu() { awk '{print $14 + $15}' "/proc/$AGENT_PID/stat"; }
cpu0=$(cpu)
# 100 connections, one after the other, each echoes; 50 more wait in the
# backlog; each of the first that closes lets one of them in. (One at a
# time: busybox nc's own backlog would drop a burst of SYNs.)
in_node python3 -c '
import select, socket, time
def conn():
    c = socket.create_connection(("127.0.0.1", 8082), 3)
    c.sendall(b"x\n")
    return c
def echoed(c, tmo):
    c.settimeout(tmo)
    try:
        return c.recv(16) == b"x\n"
    except OSError:
        return False
first = [c for c in (conn() for _ in range(100)) if echoed(c, 5)]
waiting = [conn() for _ in range(50)]
early = len(select.select(waiting, [], [], 3)[0])
later = 0
for c in first:
    c.close()
    if not waiting:
        break
    for w in select.select(waiting, [], [], 5)[0]:
        later += echoed(w, 1)
        waiting.remove(w)
print(len(first), early, later)
' >"$T/limit.out" 2>&1
cpu1=$(cpu)
prlimit --pid "$AGENT_PID" --nofile="$limits" || fail "restoring the agent's descriptor limit"
read -r first early later <"$T/limit.out"
expect_eq "100 connections served one after the other" 100 "${first:-$(cat "$T/limit.out")}"
expect_eq "50 more wait, not served" 0 "${early:-}"
expect_eq "each that closes lets one in: the 50 are served" 50 "${later:-}"
[ $((cpu1 - cpu0)) -lt 150 ] && ok "the agent did not spin while paused ($((cpu1 - cpu0)) ticks)" ||
	fail "the agent used $((cpu1 - cpu0)) ticks of CPU while paused"
expect_eq "the limit is logged once" 1 "$(grep -c 'port tcp/8082: userland proxy at its limit' "$T/shoald.log")"

log "a UDP published port from the node itself"
if udp_echo_image 2>"$T/cc.log"; then
	must "creating service udp" shoal service create -d --name udp --replicas 3 -p 5300:53/udp --stop-grace-period 1s udpecho:it /udpecho
	udp_three() { [ "$(for _ in $(seq 1 20); do udp_ask in_node 127.0.0.1 5300; done | cut -d' ' -f2 | sort -u | grep -c .)" = 3 ]; }
	wait_until 40 udp_three && ok "20 datagrams from new sockets to 127.0.0.1:5300 reach the 3 replicas" ||
		fail "UDP 127.0.0.1:5300: [$(udp_ask in_node 127.0.0.1 5300)]"
	expect_eq "answered from 127.0.0.1:5300" "127.0.0.1:5300" "$(udp_ask in_node 127.0.0.1 5300 | cut -d' ' -f1)"
	expect_eq "the node's address:5300 answers from $NODE_ADDR:5300" "$NODE_ADDR:5300" "$(udp_ask in_node "$NODE_ADDR" 5300 | cut -d' ' -f1)"
	out=$(in_node python3 -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
s.connect(("127.0.0.1", 5300))
hosts = set()
for i in range(10):
    s.send(b"n%d" % i)
    hosts.add(s.recv(512).split()[0])
print(len(hosts))
' 2>&1)
	expect_eq "one client's datagrams stay with one replica" 1 "$out"
	expect_eq "the proxy is announced once for udp/5300" 1 "$(proxied udp/5300)"
	expect_eq "a client on the uplink still gets UDP answers from $NODE_ADDR:5300" "$NODE_ADDR:5300" \
		"$(udp_ask in_client "$NODE_ADDR" 5300 | cut -d' ' -f1)"
	# a session is a connected socket of the agent's to a replica; it ends
	# SHOAL_PROXY_UDP_IDLE_S (5 s here, 30 s by default) after its client's
	# last datagram
	sessions() { in_node ss -Hun state established 'dst 10.213.0.0/16 and dport = :53' | grep -c .; }
	n=$(sessions)
	[ "$n" -gt 0 ] && ok "$n UDP sessions open" || fail "no UDP session seen"
	no_sessions() { [ "$(sessions)" = 0 ]; }
	sleep 3
	[ "$(sessions)" -gt 0 ] && ok "3 s later they are still open" || fail "UDP sessions ended before 5 s"
	wait_until 15 no_sessions && ok "5 s without traffic ends them" || fail "$(sessions) UDP session(s) still open"
	[ -n "$(udp_ask in_node 127.0.0.1 5300)" ] && ok "a datagram after that opens a new one" || fail "no UDP answer after the idle timeout"
	shoal service rm udp >/dev/null
	udp_gone() { [ -z "$(udp_ask in_node 127.0.0.1 5300)" ]; }
	wait_until 30 udp_gone && ok "service rm stops UDP answers" || fail "127.0.0.1:5300 still answers"
	wait_until 10 no_sessions && ok "and closes its sessions" || fail "$(sessions) UDP session(s) left"
else
	fail "the UDP echo image: $(head -c 300 "$T/cc.log")"
fi

log "a port that goes closes its connections"
coproc HELD { in_node busybox nc 127.0.0.1 8082; }
held_pid=$HELD_PID # bash unsets HELD_PID when the coproc ends
echo before >&"${HELD[1]}"
read -r -t 5 line <&"${HELD[0]}"
expect_eq "a held connection to 8082 echoes" before "$line"
shoal service rm echo >/dev/null
closed() { ! kill -0 "$held_pid" 2>/dev/null; }
wait_until 20 closed && ok "removing the service closes its proxied connection" || fail "the held connection is still open"
no_listener() { [ -z "$(in_node ss -Hltn 'sport = :8082')" ]; }
wait_until 10 no_listener && ok "and closes its listener" || fail "8082 still has a listener: $(in_node ss -Hltnp 'sport = :8082')"

log "a port another process holds"
in_node python3 -c '
import socket, time
s = socket.socket()
s.bind(("0.0.0.0", 8085))
s.listen(1)
time.sleep(8)
' &
squatter=$!
sleep 0.5
must "creating service late" shoal service create -d --name late -p 8085:80 --stop-grace-period 1s \
	busybox sh -c 'echo late > /var/www/index.html; exec httpd -f -p 80 -h /var/www' >/dev/null
warned() { grep -q "port tcp/8085 does not answer on the node" "$T/shoald.log"; }
wait_until 20 warned && ok "the port in use is logged" || fail "no warning for tcp/8085"
wait "$squatter"
late_up() { [ "$(node_get 127.0.0.1 8085)" = late ]; }
wait_until 20 late_up && ok "once it is free, 127.0.0.1:8085 answers" || fail "127.0.0.1:8085: [$(node_get 127.0.0.1 8085)]"
expect_eq "the port in use was logged once, not every sync" 1 "$(grep -c "port tcp/8085 does not answer on the node" "$T/shoald.log")"
shoal service rm late >/dev/null

log "no active backend"
must "scaling pub to 0" shoal service scale pub=0 -d
refused_fast() {
	in_node python3 -c '
import socket, time
s = socket.create_connection(("127.0.0.1", 8080), 2)
s.settimeout(2)
t = time.time()
try:
    b = s.recv(1)
except ConnectionResetError:
    b = b""
assert b == b"" and time.time() - t < 1
'
}
wait_until 30 refused_fast && ok "with no replica, a connection to 127.0.0.1:8080 is closed at once" || fail "no replica: 8080 does not close at once"
shoal service rm pub >/dev/null
finish
