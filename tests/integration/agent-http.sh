#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The API server's limits, per route and per connection (agent/http-guard.c):
# - a body over its route's limit is refused before it is read: four 900 MB
#   POSTs at once (create with a Content-Length, create chunked, _ping, service
#   create chunked) all get 413 and the agent's peak RSS barely moves;
# - an upload streams to the data dir: a 300 MB image import (sent with
#   Expect: 100-continue) loads while the agent's peak RSS stays far below its
#   size; an upload over the 1 GiB limit is refused before its body;
# - a request head trickled in byte by byte is dropped at the head deadline,
#   a stalled body at the body deadline, both with 408;
# - past --max-connections the listener pauses: the agent holds no more
#   connections than the cap, does not spin, logs it once, and a client waiting
#   in the backlog is served once connections close.
. "$(dirname "$0")/lib.sh"

# shorter deadlines than the defaults (10 s head, 30 s body)
export SHOAL_HTTP_HEAD_TIMEOUT_S=3 SHOAL_HTTP_BODY_TIMEOUT_S=3
CAP=64
node_start --max-connections $CAP

agent_hwm_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$AGENT_PID/status"; }
agent_fds() { ls "/proc/$AGENT_PID/fd" 2>/dev/null | wc -l; }
agent_cpu_ticks() { awk '{print $14 + $15}' "/proc/$AGENT_PID/stat"; }

# raw_post PATH MODE SIZE: a POST whose body is SIZE bytes of JSON-ish filler,
# with a Content-Length (MODE=length) or chunked (MODE=chunked), sent until the
# agent stops reading; prints the status line the agent answered with.
raw_post() {
	python3 - "$SOCK" "$@" <<'PY'
import socket, sys
path, mode, size = sys.argv[2], sys.argv[3], int(sys.argv[4])
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.settimeout(20)
head = "POST %s HTTP/1.1\r\nHost: shoal\r\nContent-Type: application/json\r\n" % path
head += ("Content-Length: %d\r\n" % size) if mode == "length" else "Transfer-Encoding: chunked\r\n"
try:
    s.sendall((head + "\r\n").encode())
    piece = b" " * 65536
    sent = 0
    while sent < size:
        if mode == "length":
            s.sendall(piece)
        else:
            s.sendall(b"%x\r\n" % len(piece) + piece + b"\r\n")
        sent += len(piece)
except OSError:
    pass
data = b""
try:
    while True:
        b = s.recv(4096)
        if not b:
            break
        data += b
except OSError:
    pass
print(data.split(b"\r\n", 1)[0].decode(errors="replace"))
PY
}

log "bodies over their route's limit: four 900 MB POSTs at once"
hwm0=$(agent_hwm_kb)
raw_post /containers/create length $((900 << 20)) >"$T/b1" &
p1=$!
raw_post /v1.43/containers/create chunked $((900 << 20)) >"$T/b2" &
p2=$!
raw_post /_ping length $((900 << 20)) >"$T/b3" &
p3=$!
raw_post /services/create chunked $((900 << 20)) >"$T/b4" &
p4=$!
wait $p1 $p2 $p3 $p4
for i in 1 2 3 4; do
	expect_contains "POST $i of 900 MB answered 413" "HTTP/1.1 413" "$(cat "$T/b$i")"
done
hwm1=$(agent_hwm_kb)
log "agent peak RSS: ${hwm0} kB before, ${hwm1} kB after"
if [ $((hwm1 - hwm0)) -lt $((32 << 10)) ]; then ok "peak RSS grew by less than 32 MB"; else fail "peak RSS grew by $((hwm1 - hwm0)) kB"; fi
out=$(curl -s --max-time 5 --unix-socket "$SOCK" -X POST -H 'Content-Type: application/json' \
	--data-binary @- -w ' %{http_code}' "http://shoal/containers/create" < <(head -c $((2 << 20)) /dev/zero))
expect_contains "a 2 MB JSON body names the route and the limit" "limit for /containers/create is 1048576" "$out"
out=$(api POST /containers/create '{"Image":"busybox","Cmd":["true"]}')
expect_eq "a JSON body within the limit is served" 201 "${out%% *}"

log "an image upload streams to the data dir"
mkdir -p "$T/bigroot/etc"
echo big >"$T/bigroot/etc/hostname"
must "making a 300 MB file for the image" sh -c "head -c 300M /dev/urandom >'$T/bigroot/blob'"
must "packing the root file system" tar -C "$T/bigroot" -cf "$T/bigroot.tar" .
rm -f "$T/bigroot/blob"
hwm0=$(agent_hwm_kb)
# curl sends Expect: 100-continue for a body this size and waits for the 100
out=$(curl -s --max-time 120 --unix-socket "$SOCK" -X POST -T "$T/bigroot.tar" \
	-w '\n%{http_code}' "http://shoal/images/create?fromSrc=-&repo=big&tag=1")
expect_eq "the 300 MB import answered 200" 200 "${out##*$'\n'}"
rm -f "$T/bigroot.tar"
hwm1=$(agent_hwm_kb)
log "agent peak RSS: ${hwm0} kB before the import, ${hwm1} kB after"
if [ $((hwm1 - hwm0)) -lt $((100 << 10)) ]; then ok "peak RSS grew by less than 100 MB for a 300 MB upload"; else fail "peak RSS grew by $((hwm1 - hwm0)) kB"; fi
out=$(shoal image inspect big:1 2>&1)
expect_contains "the imported image is there" '"big:1"' "$out"
must "removing it" shoal image rm big:1
truncate -s 2G "$T/huge"
out=$(curl -s --max-time 10 --unix-socket "$SOCK" -X POST -T "$T/huge" -w ' %{http_code}' \
	"http://shoal/images/load")
expect_contains "an upload over 1 GiB is refused before its body" "413" "$out"
expect_contains "naming the limit" "limit for /images/load" "$out"
rm -f "$T/huge"
out=$(shoal image ls 2>&1)
expect_contains "the images stored before are intact" "busybox" "$out"

log "deadlines: a head trickled in, a body stalled"
python3 - "$SOCK" >"$T/slow.out" <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.settimeout(30)
t0 = time.monotonic()
head = b"GET /_ping HTTP/1.1\r\nHost: shoal\r\nX-Drip: " + b"a" * 200
reply = b""
try:
    for c in head:  # one byte every 0.2 s: never idle, never complete
        s.send(bytes([c]))
        time.sleep(0.2)
except OSError:
    pass
try:
    while True:
        b = s.recv(4096)
        if not b:
            break
        reply += b
except OSError:
    pass
print("%.1f %s" % (time.monotonic() - t0, reply.split(b"\r\n", 1)[0].decode()))
PY
drip=$!
python3 - "$SOCK" >"$T/stall.out" <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.settimeout(30)
t0 = time.monotonic()
s.sendall(b"POST /containers/create HTTP/1.1\r\nHost: shoal\r\nContent-Length: 100\r\n\r\n{\"Ima")
reply = b""
try:
    while True:
        b = s.recv(4096)
        if not b:
            break
        reply += b
except OSError:
    pass
print("%.1f %s" % (time.monotonic() - t0, reply.split(b"\r\n", 1)[0].decode()))
PY
stall=$!
wait $drip $stall
read -r secs line <"$T/slow.out"
expect_eq "a trickled head is answered 408" "HTTP/1.1 408 Request Timeout" "$line"
log "the trickled head was dropped after ${secs} s (deadline 3 s, idle timeout 30 s)"
if [ "${secs%.*}" -lt 20 ]; then ok "dropped at the head deadline, not kept alive by the trickle"; else fail "kept ${secs} s"; fi
read -r secs line <"$T/stall.out"
expect_eq "a stalled body is answered 408" "HTTP/1.1 408 Request Timeout" "$line"
log "the stalled body was dropped after ${secs} s (deadline 3 s)"

log "the connection cap: $CAP"
fds0=$(agent_fds)
python3 - "$SOCK" 100 "$T/cap.ready" "$T/cap.go" >"$T/cap.out" 2>&1 <<'PY' &
import os, socket, sys, time
socks = []
for i in range(int(sys.argv[2])):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.setblocking(False)
    try:
        s.connect(sys.argv[1])
    except BlockingIOError:
        pass
    socks.append(s)
open(sys.argv[3], "w").close()
while not os.path.exists(sys.argv[4]):
    time.sleep(0.05)
for s in socks:
    s.close()
PY
capper=$!
wait_until 20 test -e "$T/cap.ready" || fatal "the connecting client did not start ($(cat "$T/cap.out"))"
sleep 1
fds_held=$(agent_fds)
log "agent fds: $fds0 before, $fds_held with 100 connections asked for"
if [ "$fds_held" -le $((fds0 + CAP + 2)) ]; then ok "the agent holds at most the cap"; else fail "$((fds_held - fds0)) connections held"; fi
curl -s --max-time 20 --unix-socket "$SOCK" -o "$T/waiting.out" -w '%{http_code}' http://shoal/_ping >"$T/waiting.code" &
waiter=$!
cpu0=$(agent_cpu_ticks)
sleep 2
cpu1=$(agent_cpu_ticks)
log "agent CPU over 2 s at the cap: $((cpu1 - cpu0)) ticks"
if [ $((cpu1 - cpu0)) -lt 20 ]; then ok "the agent does not spin at the cap"; else fail "$((cpu1 - cpu0)) ticks in 2 s"; fi
if kill -0 "$waiter" 2>/dev/null; then ok "a client past the cap waits"; else fail "a client past the cap was not held back ($(cat "$T/waiting.code"))"; fi
touch "$T/cap.go"
wait "$capper"
wait "$waiter"
expect_eq "the waiting client is served once connections close" 200 "$(cat "$T/waiting.code")"
n=$(grep -c "the limit (--max-connections)" "$T/shoald.log")
expect_eq "the cap is logged once" 1 "$n"
wait_until 10 sh -c "[ \$(ls /proc/$AGENT_PID/fd | wc -l) -le $((fds0 + 2)) ]"
fds1=$(agent_fds)
if [ "$fds1" -le $((fds0 + 2)) ]; then ok "agent fds back to $fds1"; else fail "fds: $fds0 -> $fds1"; fi
out=$(api GET /_ping)
expect_eq "the API answers" "200 OK" "$out"

finish
