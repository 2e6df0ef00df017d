#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `shoal bench http`, `compare` and `report` against servers on the loopback of
# a network namespace this script makes (unshare), so nothing leaves it:
#  - a server that stalls 500 ms once: the open loop (--rate) must show the
#    stall at p99, as wrk2 does; the closed loop only at its max;
#  - chunked and Content-Length bodies, 5xx counted by kind;
#  - bad flags and unreachable targets: clear errors, usage exit status;
#  - the JSON: schema version, environment, command;
#  - compare and report on two real results.
# No agent is needed; SHOAL_HOST points nowhere, so the environment says so.
set -uo pipefail
SKIP=77
: "${SHOAL_BUILD:?SHOAL_BUILD must point at the build directory}"
SHOAL_BIN="$SHOAL_BUILD/bin/shoal"
[ -x "$SHOAL_BIN" ] || { echo "FAIL: $SHOAL_BIN is missing (build first)"; exit 1; }
command -v python3 >/dev/null || { echo "SKIP: needs python3 (the stalling server)"; exit $SKIP; }

# Into a network namespace of our own (torn down with the last process in it).
if [ -z "${BENCH_HTTP_IN_NS:-}" ]; then
	if ! unshare --net true 2>/dev/null; then
		echo "SKIP: cannot make a network namespace (needs root or user namespaces)"
		exit $SKIP
	fi
	BENCH_HTTP_IN_NS=1 exec unshare --net bash "$0" "$@"
fi
ip link set lo up || { echo "FAIL: lo up in the test namespace"; exit 1; }

T=$(mktemp -d /tmp/shoal-bench-http.XXXXXX)
export SHOAL_HOST="unix://$T/no-agent.sock"
FAILURES=0
SERVER_PID=""
log() { printf '%s %s\n' "$(date +%T.%3N)" "$*"; }
fail() { log "FAIL: $*"; FAILURES=$((FAILURES + 1)); }
ok() { log "ok: $*"; }
cleanup() {
	[ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT

# A single-threaded HTTP/1.1 keep-alive server. STALL_AT seconds after its
# first request it sleeps 500 ms once, holding every connection (a GC pause, a
# blocked disk). /chunked answers chunked, /500 a server error.
cat >"$T/server.py" <<'PY'
import os, selectors, socket, sys, time
stall_at = float(sys.argv[1])
sel = selectors.DefaultSelector()
ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", 0)); ls.listen(512); ls.setblocking(False)
sel.register(ls, selectors.EVENT_READ)
print(ls.getsockname()[1], flush=True)
first, stalled, bufs = None, stall_at < 0, {}
body = b"hello, stall\n"
plain = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n8\r\n, chunks\r\n0\r\n\r\n"
err = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy"
while True:
    for key, _ in sel.select():
        s = key.fileobj
        if s is ls:
            try:
                c, _ = ls.accept()
            except BlockingIOError:
                continue
            c.setblocking(False); c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sel.register(c, selectors.EVENT_READ); bufs[c] = b""
            continue
        try:
            d = s.recv(65536)
        except (ConnectionError, BlockingIOError):
            d = b""
        if not d:
            sel.unregister(s); bufs.pop(s, None); s.close(); continue
        bufs[s] += d
        while b"\r\n\r\n" in bufs[s]:
            head, bufs[s] = bufs[s].split(b"\r\n\r\n", 1)
            now = time.monotonic()
            if first is None:
                first = now
            if not stalled and now - first >= stall_at:
                stalled = True
                time.sleep(0.5)
            path = head.split(b" ", 2)[1]
            r = chunked if path == b"/chunked" else err if path == b"/500" else plain
            try:
                s.sendall(r)
            except OSError:
                pass
PY

# server_start STALL_AT: a fresh server; its port in PORT.
server_start() {
	[ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
	python3 "$T/server.py" "$1" >"$T/port" &
	SERVER_PID=$!
	PORT=""
	for _ in $(seq 50); do
		PORT=$(head -n1 "$T/port" 2>/dev/null)
		[ -n "$PORT" ] && return 0
		sleep 0.1
	done
	log "FAIL: the test server did not start"
	exit 1
}
# jq-free JSON reads: jget FILE PYTHON-EXPR (d is the document)
jget() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"; }

# ---- the stall: open loop shows it at p99, closed loop does not ----
server_start 1.2
"$SHOAL_BIN" bench http --url "http://127.0.0.1:$PORT/" --rate 1000 -c 10 --warmup 300ms \
	-d 3s --rounds 3 --name open --json >"$T/open.json" 2>"$T/open.err"
rc=$?
if [ $rc -ne 0 ]; then
	fail "open loop: exit $rc: $(cat "$T/open.err")"
else
	p99=$(jget "$T/open.json" 'd["variants"][0]["latency_us"]["p99"]')
	mx=$(jget "$T/open.json" 'd["variants"][0]["latency_us"]["max"]')
	waited=$(jget "$T/open.json" 'd["variants"][0]["schedule"]["waited_for_connection"]')
	log "open loop, 1000/s, stall of 500 ms: p99 ${p99} us, max ${mx} us, ${waited} waited"
	# ~500 of the 3000 requests are due in the stall, their latency from 0 to
	# 500 ms: p99 ~ 490 ms. 300 ms leaves room for a loaded machine.
	[ "$p99" -ge 300000 ] && ok "open loop p99 shows the stall (${p99} us)" ||
		fail "open loop p99 ${p99} us does not show a 500 ms stall"
	[ "$waited" -gt 100 ] && ok "requests due during the stall waited for a connection" ||
		fail "only $waited requests waited for a connection during the stall"
fi

server_start 1.2
"$SHOAL_BIN" bench http --url "http://127.0.0.1:$PORT/" -c 4 --warmup 300ms -d 3s \
	--name closed --json >"$T/closed.json" 2>"$T/closed.err"
rc=$?
if [ $rc -ne 0 ]; then
	fail "closed loop: exit $rc: $(cat "$T/closed.err")"
else
	p99=$(jget "$T/closed.json" 'd["variants"][0]["latency_us"]["p99"]')
	mx=$(jget "$T/closed.json" 'd["variants"][0]["latency_us"]["max"]')
	n=$(jget "$T/closed.json" 'd["variants"][0]["requests"]')
	log "closed loop, 4 connections, same stall: p99 ${p99} us, max ${mx} us, $n requests"
	# only the 4 requests in flight see the stall: the max, never the p99
	[ "$mx" -ge 400000 ] && ok "closed loop saw the stall at its max (${mx} us)" ||
		fail "closed loop max ${mx} us: the stall was not measured at all"
	[ "$p99" -lt 150000 ] && ok "closed loop hides the stall at p99 (${p99} us), as wrk does" ||
		fail "closed loop p99 ${p99} us: expected coordinated omission to hide the stall"
fi

# ---- bodies and statuses ----
server_start -1
"$SHOAL_BIN" bench http --url "http://127.0.0.1:$PORT/chunked" -c 2 --warmup 0 -d 1s \
	--rounds 1 --json >"$T/chunked.json" 2>"$T/chunked.err"
n=$(jget "$T/chunked.json" 'd["variants"][0]["requests"]' 2>/dev/null || echo 0)
e=$(jget "$T/chunked.json" 'sum(d["variants"][0]["errors"].values())' 2>/dev/null || echo x)
[ "${n:-0}" -gt 100 ] && [ "$e" = 0 ] && ok "chunked answers parsed ($n requests, no errors)" ||
	fail "chunked: $n requests, errors $e: $(cat "$T/chunked.err")"
"$SHOAL_BIN" bench http --url "http://127.0.0.1:$PORT/500" -c 2 --warmup 0 -d 1s --rounds 1 \
	-X POST -H 'X-Test: 1' --json >"$T/500.json" 2>"$T/500.err"
n=$(jget "$T/500.json" 'd["variants"][0]["requests"]' 2>/dev/null || echo 0)
e=$(jget "$T/500.json" 'd["variants"][0]["errors"]["status_5xx"]' 2>/dev/null || echo 0)
[ "${n:-0}" -gt 0 ] && [ "$e" = "$n" ] && ok "503 answers counted as status_5xx ($e)" ||
	fail "503s: $n requests, status_5xx $e"
"$SHOAL_BIN" bench http --url "http://127.0.0.1:$PORT/" -c 2 --warmup 0 -d 1s --rounds 1 \
	--new-connections --json >"$T/new.json" 2>"$T/new.err"
n=$(jget "$T/new.json" 'd["variants"][0]["requests"]' 2>/dev/null || echo 0)
[ "${n:-0}" -gt 50 ] && ok "--new-connections: $n requests" ||
	fail "--new-connections: $n requests: $(cat "$T/new.err")"

# ---- the JSON carries its schema and environment ----
v=$(jget "$T/open.json" 'd["schema_version"], d["suite"], bool(d["env"]["kernel"]), d["env"]["cpus"] > 0, "bench" in d["env"]["command"], d["config"]["mode"], "not reached" in d["env"]["agent"]')
[ "$v" = "1 http True True True open-loop True" ] && ok "JSON: schema 1, suite, environment, command" ||
	fail "JSON header: $v"

# ---- bad flags and unreachable targets ----
# expect_err WHAT STATUS NEEDLE ARGS...: the command fails with STATUS and says NEEDLE.
expect_err() {
	local what=$1 want=$2 needle=$3 out rc
	shift 3
	out=$("$SHOAL_BIN" bench http "$@" 2>&1)
	rc=$?
	if [ "$rc" -eq "$want" ] && [[ "$out" == *"$needle"* ]]; then
		ok "$what: exit $rc, '$needle'"
	else
		fail "$what: exit $rc (want $want), output: $out"
	fi
}
U="http://127.0.0.1:$PORT/"
expect_err "no target" 125 "give the target"
expect_err "bad rate" 125 "--rate fast" --url "$U" --rate fast
expect_err "zero connections" 125 "--connections 0: expected 1 to 10000" --url "$U" -c 0
expect_err "too many connections" 125 "expected 1 to 10000" --url "$U" -c 20000
expect_err "bad duration" 125 "--duration 5x: expected a duration" --url "$U" -d 5x
expect_err "https" 125 "https is not supported" --url "https://127.0.0.1:$PORT/"
expect_err "not a URL" 125 "expected http://ADDR" --url "127.0.0.1:$PORT"
expect_err "bad port" 125 "the port must be 1 to 65535" --url "http://127.0.0.1:99999/"
expect_err "bad header" 125 "expected NAME:VALUE" --url "$U" -H "no colon here"
expect_err "bad method" 125 "--method get" --url "$U" -X get
expect_err "missing body file" 1 "--body-file $T/none" --url "$U" --body-file "$T/none"
expect_err "refused" 1 "cannot connect to 127.0.0.1:1: Connection refused" --url http://127.0.0.1:1/
expect_err "unresolvable" 1 "cannot resolve no-such-host.invalid" --url http://no-such-host.invalid/
expect_err "no agent for --service" 1 "Cannot connect" --service web

# ---- compare and report on real runs ----
"$SHOAL_BIN" bench compare "$T/chunked.json" "$T/chunked.json" >"$T/cmp.out" 2>&1
rc=$?
[ $rc -eq 0 ] && ok "compare of a result with itself: no regression" ||
	fail "compare A A: exit $rc: $(cat "$T/cmp.out")"
# the same run with a third of its throughput gone, rounds and all (a run
# without a stall: the stalled ones' rounds are noisy by 30% and more, and a
# change within the noise is rightly not a regression)
python3 - "$T/chunked.json" "$T/slower.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
v = d["variants"][0]
v["per_sec"] *= 0.66
for r in v["rounds"]:
    r["per_sec"] *= 0.66
json.dump(d, open(sys.argv[2], "w"))
PY
"$SHOAL_BIN" bench compare "$T/chunked.json" "$T/slower.json" >"$T/cmp.out" 2>&1
rc=$?
[ $rc -eq 1 ] && grep -q "variants.http.per_sec .*REGRESSION" "$T/cmp.out" &&
	ok "compare flags a 34% throughput loss, exit 1" ||
	fail "compare A slower: exit $rc: $(cat "$T/cmp.out")"
out=$("$SHOAL_BIN" bench compare "$T/closed.json" "$T/open.json" 2>&1)
rc=$?
[ $rc -eq 2 ] && [[ "$out" == *"no figure in common"* ]] &&
	ok "compare of runs without common figures says so" || fail "compare closed open: $rc $out"
out=$("$SHOAL_BIN" bench compare "$T/closed.json" 2>&1)
[ $? -eq 1 ] && [[ "$out" == *"requires exactly 2 arguments"* ]] && ok "compare with one file" ||
	fail "compare with one file: $out"
out=$("$SHOAL_BIN" bench compare --threshold lots "$T/closed.json" "$T/closed.json" 2>&1)
[ $? -eq 125 ] && [[ "$out" == *"--threshold lots"* ]] && ok "compare --threshold lots" ||
	fail "compare --threshold lots: $out"

"$SHOAL_BIN" bench report "$T/open.json" "$T/closed.json" "$T/chunked.json" -o "$T/report" \
	>"$T/rep.out" 2>&1
rc=$?
if [ $rc -eq 0 ] && [ -s "$T/report/index.html" ]; then
	# parses, one latency chart per variant (open, closed, http), nothing remote
	v=$(python3 - "$T/report/index.html" <<'PY'
import sys
from html.parser import HTMLParser
class P(HTMLParser):
    def __init__(self):
        super().__init__()
        self.stack, self.charts, self.remote, self.lines = [], [], 0, {}
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag not in ("line", "rect", "polyline", "meta", "br"):
            self.stack.append(tag)
        if tag == "svg" and "latency" in (a.get("class") or ""):
            self.charts.append(a.get("data-variant"))
        if tag == "polyline" and self.charts:
            self.lines[self.charts[-1]] = self.lines.get(self.charts[-1], 0) + 1
        if tag in ("script", "link", "img", "iframe") or "src" in a:
            self.remote += 1
    def handle_endtag(self, tag):
        if tag in ("line", "rect", "polyline", "meta", "br"):
            return
        if not self.stack or self.stack.pop() != tag:
            raise SystemExit("unbalanced </%s>" % tag)
p = P()
p.feed(open(sys.argv[1]).read())
p.close()
if p.stack:
    raise SystemExit("unclosed: %s" % p.stack)
print(",".join(sorted(p.charts)), sorted(p.lines.values()), p.remote)
PY
)
	[ "$v" = "closed,http,open [1, 1, 1] 0" ] &&
		ok "report: HTML parses, one latency chart per variant, self-contained" ||
		fail "report HTML: $v"
else
	fail "report: exit $rc: $(cat "$T/rep.out")"
fi
out=$("$SHOAL_BIN" bench report "$T/open.json" 2>&1)
[ $? -eq 125 ] && [[ "$out" == *"-o DIR is required"* ]] && ok "report without -o" ||
	fail "report without -o: $out"
echo '{"schema_version": 7}' >"$T/future.json"
out=$("$SHOAL_BIN" bench report "$T/future.json" -o "$T/r2" 2>&1)
[ $? -ne 0 ] && [[ "$out" == *"schema version 7 is newer"* ]] && ok "report refuses a newer schema" ||
	fail "report of a newer schema: $out"

if [ "$FAILURES" -ne 0 ]; then
	log "$FAILURES check(s) failed"
	exit 1
fi
log "all checks passed"
