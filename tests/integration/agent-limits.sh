#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The API under a hostile or careless client: incomplete requests are dropped
# after their timeout and accept pauses instead of spinning, abandoned exec
# and attach sessions give back their descriptors, and exec instances never
# started cannot fill the table.
# Each part: nothing lost, nothing leaked, the API answers.
. "$(dirname "$0")/lib.sh"

# Never-started exec instances expire after 5 minutes; the test shortens that.
EXEC_EXPIRE_S=20
export SHOAL_EXEC_EXPIRE_S=$EXEC_EXPIRE_S
node_start

agent_fds() { ls "/proc/$AGENT_PID/fd" 2>/dev/null | wc -l; }
agent_rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$AGENT_PID/status"; }
agent_cpu_ticks() { awk '{print $14 + $15}' "/proc/$AGENT_PID/stat"; }
ping_ok() { [ "$(curl -s --max-time 2 --unix-socket "$SOCK" http://shoal/_ping)" = "OK" ]; }
# post_file PATH FILE [CURL-ARGS...]: POSTs FILE as the body, prints the status
post_file() {
	local path=$1 file=$2
	shift 2
	curl -s -o /dev/null --max-time 60 --unix-socket "$SOCK" -X POST "$@" \
		--data-binary @"$file" -w '%{http_code}' "http://shoal$path"
}
# ping_p99: the 99th percentile of 100 `_ping` round trips, in ms (python3)
ping_p99() {
	python3 - "$SOCK" <<'PY'
import socket, sys, time
lat = []
for _ in range(100):
    t = time.monotonic()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(sys.argv[1])
    s.sendall(b"GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    s.close()
    if b" 200 " not in data.split(b"\r\n")[0]:
        print("error")
        sys.exit(0)
    lat.append((time.monotonic() - t) * 1000)
lat.sort()
print("%d" % lat[98])
PY
}

log "image uploads still load"
out=$(shoal image load -i "$TEST_IMAGE" 2>&1)
expect_contains "shoal image load" "Loaded image" "$out"
code=$(post_file /images/load "$TEST_IMAGE" -H 'Transfer-Encoding: chunked' -H 'Content-Type: application/x-tar')
expect_eq "a chunked image upload (as docker load sends it) loads" 200 "$code"
code=$(post_file '/images/create?fromSrc=-&repo=limits-import&tag=it' "$TEST_IMAGE")
expect_eq "an image import" 200 "$code"
out=$(shoal image ls 2>&1)
expect_contains "the imported image is listed" "limits-import" "$out"
code=$(curl -s -o /dev/null --max-time 10 --unix-socket "$SOCK" -X POST \
	--data-binary 'not a tarball' -w '%{http_code}' http://shoal/images/load)
expect_eq "a bad upload is a 400" 400 "$code"
log "exec instances: per-container limit, expiry, another container unaffected"
must_get ca "starting container A" shoal run -d --network none busybox sleep 1000
must_get cb "starting container B" shoal run -d --network none busybox sleep 1000
python3 - "$SOCK" "$ca" 4100 >"$T/exec.out" <<'PY'
import http.client, json, socket, sys
class C(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("shoal", timeout=10)
        self.path = path
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)
conn = C(sys.argv[1])
codes = {}
msg = ""
first = ""
for i in range(int(sys.argv[3])):
    conn.request("POST", "/containers/%s/exec" % sys.argv[2], json.dumps({"Cmd": ["true"]}),
                 {"Content-Type": "application/json"})
    r = conn.getresponse()
    body = r.read()
    codes[r.status] = codes.get(r.status, 0) + 1
    if r.status == 201 and not first:
        first = json.loads(body)["Id"]
    if r.status != 201:
        msg = json.loads(body)["message"]
print(codes.get(201, 0), codes.get(409, 0), first)
print(msg)
PY
read -r created refused first_exec <"$T/exec.out"
expect_eq "execs created on A up to the per-container limit" 1024 "$created"
expect_eq "the rest refused with 409" 3076 "$refused"
expect_contains "the refusal says why" "the limit per container" "$(sed -n 2p "$T/exec.out")"
out=$(shoal exec "$cb" echo still-works 2>&1)
expect_eq "exec on container B still works" "still-works" "$out"
exec_created_at=$SECONDS

log "requests a handler holds longer than the I/O timeout are not dropped"
must_get cw "starting a container that exits after 40 s" shoal run -d --network none busybox \
	sh -c 'sleep 40; echo late; exit 3'
shoal wait "$cw" >"$T/wait.out" 2>&1 &
wait_pid=$!
shoal logs -f "$cw" >"$T/logs.out" 2>&1 &
logs_pid=$!

log "slowloris: 5,000 incomplete connections"
fds0=$(agent_fds)
cpu0=$(agent_cpu_ticks)
python3 - "$SOCK" 5000 "$T/slow.ready" "$T/slow.done" >"$T/slow.out" 2>&1 <<'PY' &
import os, socket, sys, time
socks = []
for i in range(int(sys.argv[2])):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sys.argv[1])
    if i % 2:  # half send an incomplete head, half nothing at all
        s.sendall(b"POST /containers/create HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    socks.append(s)
open(sys.argv[3], "w").close()
# wait until the agent has closed them all (recv returns b"" on each)
deadline = time.monotonic() + 90
for s in socks:
    s.settimeout(max(0.1, deadline - time.monotonic()))
    try:
        while s.recv(4096):
            pass
    except OSError:
        pass
closed = 0
for s in socks:
    s.setblocking(False)
    try:
        closed += s.recv(1) == b""
    except BlockingIOError:
        pass
    except OSError:
        closed += 1
print("closed", closed)
open(sys.argv[4], "w").close()
PY
slow_pid=$!
wait_until 60 test -e "$T/slow.ready" || fatal "the slowloris client did not connect ($(cat "$T/slow.out"))"
sleep 1
fds_held=$(agent_fds)
log "agent fds: $fds0 before, $fds_held with the connections held"
if [ "$fds_held" -gt $((fds0 + 4500)) ]; then ok "the agent holds the 5,000 connections"; else fail "only $((fds_held - fds0)) more fds"; fi
p99=$(ping_p99)
log "_ping p99 with 5,000 connections held: ${p99} ms"
if [ "$p99" != "error" ] && [ "$p99" -lt 1000 ]; then ok "_ping answers while 5,000 connections are held"; else fail "_ping p99: $p99"; fi
wait_until 60 test -e "$T/slow.done"
expect_eq "every incomplete connection dropped after the timeout" "closed 5000" "$(cat "$T/slow.out")"
wait "$slow_pid" 2>/dev/null
wait_until 10 sh -c "[ \$(ls /proc/$AGENT_PID/fd | wc -l) -le $((fds0 + 5)) ]"
fds1=$(agent_fds)
log "agent fds after the timeout: $fds1"
if [ "$fds1" -le $((fds0 + 5)) ]; then ok "agent fd count back to where it was"; else fail "fds: $fds0 -> $fds1"; fi
cpu1=$(agent_cpu_ticks)
log "agent CPU over the slowloris run: $((cpu1 - cpu0)) ticks"

wait "$wait_pid"
expect_eq "a 40 s wait gets its exit code" 3 "$(cat "$T/wait.out")"
wait "$logs_pid"
expect_eq "a logs --follow silent for 40 s gets its output" late "$(cat "$T/logs.out")"
must "removing it" shoal rm -f "$cw"

log "accept paused, not spun, when the agent is out of descriptors"
lines0=$(grep -c "api: accept:" "$T/shoald.log")
fds_now=$(agent_fds)
lim=$((fds_now + 200))
read -r soft hard < <(awk '/^Max open files/ {print $4, $5}' "/proc/$AGENT_PID/limits")
must "lowering the agent's RLIMIT_NOFILE" prlimit --pid "$AGENT_PID" --nofile=$lim:$hard
python3 - "$SOCK" 400 "$T/emfile.ready" "$T/emfile.go" >"$T/emfile.out" 2>&1 <<'PY' &
import os, socket, sys, time
socks = []
for i in range(int(sys.argv[2])):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.setblocking(False)
    try:
        s.connect(sys.argv[1])
    except BlockingIOError:
        pass
    except OSError:
        break
    socks.append(s)
open(sys.argv[3], "w").close()
while not os.path.exists(sys.argv[4]):
    time.sleep(0.1)
for s in socks:
    s.close()
PY
emfile_pid=$!
wait_until 30 test -e "$T/emfile.ready"
sleep 1
cpu0=$(agent_cpu_ticks)
sleep 5
cpu1=$(agent_cpu_ticks)
ticks=$((cpu1 - cpu0))
hz=$(getconf CLK_TCK)
log "agent CPU over 5 s at EMFILE: $ticks ticks (spinning would be $((5 * hz)))"
if [ "$ticks" -lt $((5 * hz / 4)) ]; then ok "no accept loop at EMFILE"; else fail "the agent used $ticks ticks in 5 s at EMFILE"; fi
lines=$(($(grep -c "api: accept:" "$T/shoald.log") - lines0))
if [ "$lines" -ge 1 ] && [ "$lines" -le 2 ]; then ok "one log line for it ($lines)"; else fail "$lines log lines about pausing accept"; fi
touch "$T/emfile.go"
wait "$emfile_pid" 2>/dev/null
must "restoring the agent's RLIMIT_NOFILE" prlimit --pid "$AGENT_PID" --nofile=$soft:$hard
wait_until 10 ping_ok; expect_eq "the API answers once descriptors are free again" 0 $?
wait_until 45 sh -c "[ \$(ls /proc/$AGENT_PID/fd | wc -l) -le $((fds_now + 2)) ]"
expect_eq "the connections accepted then time out too" 0 $?

log "descriptors of abandoned exec and attach sessions"
must_get cc "starting a container for sessions" shoal run -d --network none busybox sleep 1000
fds0=$(agent_fds)
# (`wait` for the batch's pids only: shoald is a background job of this shell)
for batch in $(seq 1 10); do
	pids=()
	for i in $(seq 1 10); do
		timeout -k 1 0.2 "$SHOAL_BIN" exec -i "$cc" cat </dev/zero >/dev/null 2>&1 &
		pids+=($!)
	done
	wait "${pids[@]}"
done
log "100 exec sessions abandoned; agent fds: $(agent_fds)"
for batch in $(seq 1 10); do
	pids=()
	for i in $(seq 1 10); do
		timeout -k 1 0.2 curl -s -N --unix-socket "$SOCK" -X POST -H 'Connection: Upgrade' -H 'Upgrade: tcp' \
			"http://shoal/containers/$cc/attach?stream=1&stdout=1&stderr=1&stdin=1" >/dev/null 2>&1 &
		pids+=($!)
	done
	wait "${pids[@]}"
done
wait_until 15 sh -c "[ \$(ls /proc/$AGENT_PID/fd | wc -l) -le $((fds0 + 2)) ]"
fds1=$(agent_fds)
log "agent fds: $fds0 before 200 abandoned sessions, $fds1 after"
if [ "$fds1" -le $((fds0 + 2)) ]; then ok "fd count flat over 200 abandoned exec/attach sessions"; else fail "fds: $fds0 -> $fds1"; fi
out=$(shoal exec "$cc" echo alive 2>&1)
expect_eq "exec still works on that container" "alive" "$out"
must "removing the session container" shoal rm -f "$cc"
wait_until 10 sh -c "[ \$(ls /proc/$AGENT_PID/fd | wc -l) -le $fds0 ]"
fds2=$(agent_fds)
if [ "$fds2" -le "$fds0" ]; then ok "nothing kept after the container is removed ($fds2)"; else fail "fds after rm: $fds0 -> $fds2"; fi

log "never-started exec instances expire"
left=$((exec_created_at + EXEC_EXPIRE_S + 1 - SECONDS))
[ "$left" -gt 0 ] && sleep "$left"
out=$(api GET "/exec/$first_exec/json")
expect_eq "an expired exec instance is gone" 404 "${out%% *}"
out=$(shoal exec "$ca" echo again 2>&1)
expect_eq "container A can exec again once its instances expired" "again" "$out"

must "removing A and B" shoal rm -f "$ca" "$cb"
wait_until 5 ping_ok; expect_eq "the API answers at the end" 0 $?
finish
