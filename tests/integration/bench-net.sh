#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `shoal bench tcp` and `udp` against shoal-bench-echo in a network namespace
# this script makes (unshare), so nothing leaves it:
#  - closed and open loop, new connections, large payloads: every echo
#    checked, no errors;
#  - a server that drops every 5th datagram: lost ones counted, never a hang;
#    one that corrupts every 9th answer: mismatches counted;
#  - --netns-client for tcp, udp and http: the load from a namespace the
#    bench makes and removes (also on Ctrl-C);
#  - --from-container: the load from a "container"'s namespace, its pid from
#    a stand-in for the agent's API;
#  - bad flags and unreachable targets: clear errors;
#  - the JSON (schema, suite, config), and compare and report on the results,
#    with the scaling curves of runs at 1, 4 and 16 connections.
# No agent is needed; SHOAL_HOST points nowhere.
set -uo pipefail
SKIP=77
: "${SHOAL_BUILD:?SHOAL_BUILD must point at the build directory}"
SHOAL_BIN="$SHOAL_BUILD/bin/shoal"
ECHO_BIN="$SHOAL_BUILD/bin/shoal-bench-echo"
HTTPD_BIN="$SHOAL_BUILD/bin/shoal-bench-httpd"
for f in "$SHOAL_BIN" "$ECHO_BIN" "$HTTPD_BIN"; do
	[ -x "$f" ] || { echo "FAIL: $f is missing (build first)"; exit 1; }
done
command -v python3 >/dev/null || { echo "SKIP: needs python3 (JSON checks)"; exit $SKIP; }
command -v ip >/dev/null || { echo "SKIP: needs ip (iproute2)"; exit $SKIP; }

# Into a network namespace of our own (torn down with the last process in it).
if [ -z "${BENCH_NET_IN_NS:-}" ]; then
	[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root (network namespaces, veth)"; exit $SKIP; }
	if ! unshare --net true 2>/dev/null; then
		echo "SKIP: cannot make a network namespace"
		exit $SKIP
	fi
	BENCH_NET_IN_NS=1 exec unshare --net bash "$0" "$@"
fi
ip link set lo up || { echo "FAIL: lo up in the test namespace"; exit 1; }
# the address a client namespace reaches this one at: its own, on lo
ADDR=169.254.1.1
ip addr add "$ADDR/32" dev lo || { echo "FAIL: adding $ADDR"; exit 1; }

T=$(mktemp -d /tmp/shoal-bench-net.XXXXXX)
export SHOAL_HOST="unix://$T/no-agent.sock"
FAILURES=0
PIDS=()
log() { printf '%s %s\n' "$(date +%T.%3N)" "$*"; }
fail() { log "FAIL: $*"; FAILURES=$((FAILURES + 1)); }
ok() { log "ok: $*"; }
cleanup() {
	for p in "${PIDS[@]}"; do
		kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
	done
	rm -rf "$T"
}
trap cleanup EXIT

start() { # start NAME CMD...: a server in the background, up when it says so
	local name=$1
	shift
	"$@" >"$T/$name.out" 2>&1 &
	PIDS+=($!)
	for _ in $(seq 50); do
		grep -q listening "$T/$name.out" 2>/dev/null && return 0
		[ "$name" = httpd ] && sleep 0.2 && return 0
		sleep 0.05
	done
	log "FAIL: $name did not start: $(cat "$T/$name.out")"
	exit 1
}
start echo "$ECHO_BIN" 7007
start lossy "$ECHO_BIN" -d 5 7008
start corrupt "$ECHO_BIN" -x 9 7009
start httpd "$HTTPD_BIN" 8080

# jq-free JSON reads: jget FILE PYTHON-EXPR (d is the document, v its first variant)
jget() {
	python3 -c "import json,sys; d=json.load(open(sys.argv[1])); v=d['variants'][0]; print($2)" "$1"
}
# bench NAME PROTO ARGS...: runs shoal bench PROTO --json into $T/NAME.json
bench() {
	local name=$1 proto=$2
	shift 2
	"$SHOAL_BIN" bench "$proto" --warmup 200ms -d 1s --rounds 2 --json "$@" \
		>"$T/$name.json" 2>"$T/$name.err"
	local rc=$?
	[ $rc -eq 0 ] || fail "$name: shoal bench $proto $*: exit $rc: $(cat "$T/$name.err")"
	return $rc
}
# jexec FILE PYTHON-STATEMENTS: the same, for checks that need statements
jexec() {
	python3 -c "import json,sys; d=json.load(open(sys.argv[1])); v=d['variants'][0]
$2" "$1"
}
shb_links() { ip -o link show | grep -c ' shb' || true; }

# ---- direct, on this namespace's loopback ----
if bench tcp1 tcp --target 127.0.0.1:7007 -c 1; then
	v=$(jget "$T/tcp1.json" 'v["requests"] > 100, sum(v["errors"].values()), sorted(v["errors"])')
	[ "$v" = "True 0 ['closed', 'connect', 'mismatch', 'reset', 'timeout']" ] &&
		ok "tcp closed loop: every echo checked, no errors" || fail "tcp closed loop: $v"
	v=$(jget "$T/tcp1.json" 'd["schema_version"], d["suite"], d["config"]["protocol"], d["config"]["mode"], d["config"]["size"], d["config"]["client"]["kind"], d["config"]["target"], "bench" in d["env"]["command"], len(v["rounds"]), v["latency_us"]["p50"] > 0')
	[ "$v" = "1 tcp tcp closed-loop 64 host 127.0.0.1:7007 True 2 True" ] &&
		ok "tcp JSON: schema, suite, config, environment, rounds" || fail "tcp JSON: $v"
fi
bench tcp4 tcp --target 127.0.0.1:7007 -c 4 && bench tcp16 tcp --target 127.0.0.1:7007 -c 16
if bench tcpopen tcp --target 127.0.0.1:7007 --rate 500 -c 4; then
	# 500/s over 1 s: about 500 sent, each answered
	v=$(jget "$T/tcpopen.json" 'd["config"]["mode"], 400 <= v["schedule"]["sent"] <= 600, v["requests"] >= 400, sum(v["errors"].values())')
	[ "$v" = "open-loop True True 0" ] && ok "tcp open loop: the schedule's requests, answered" ||
		fail "tcp open loop: $v"
fi
if bench tcpnew tcp --target 127.0.0.1:7007 --new-connections -c 2; then
	v=$(jget "$T/tcpnew.json" 'v["requests"] > 50, sum(v["errors"].values()), d["config"]["new_connections"]')
	[ "$v" = "True 0 True" ] && ok "tcp --new-connections: a connection per request" ||
		fail "tcp --new-connections: $v"
fi
if bench tcpbig tcp --target 127.0.0.1:7007 -c 2 --size 200000; then
	v=$(jget "$T/tcpbig.json" 'v["requests"] > 10, sum(v["errors"].values())')
	[ "$v" = "True 0" ] && ok "tcp 200 kB requests: echoed in pieces, all checked" ||
		fail "tcp --size 200000: $v"
fi
if bench udp1 udp --target 127.0.0.1:7007 -c 4; then
	v=$(jget "$T/udp1.json" 'd["suite"], v["requests"] > 100, sum(v["errors"].values()), sorted(v["errors"]), v["late_replies"]')
	[ "$v" = "udp True 0 ['lost', 'mismatch', 'refused', 'send'] 0" ] &&
		ok "udp closed loop: every datagram echoed and checked" || fail "udp closed loop: $v"
fi
if bench udpopen udp --target 127.0.0.1:7007 --rate 400 -c 4 --size 1400; then
	v=$(jget "$T/udpopen.json" '320 <= v["schedule"]["sent"] <= 480, v["requests"] >= 320, sum(v["errors"].values())')
	[ "$v" = "True True 0" ] && ok "udp open loop at 400/s" || fail "udp open loop: $v"
fi

# ---- what goes wrong is counted by kind ----
if bench lossy udp --target 127.0.0.1:7008 -c 8 --timeout 100ms; then
	# every 5th datagram dropped: a fifth of the requests lost, none taken
	# for another's answer
	v=$(jexec "$T/lossy.json" 'l = v["errors"]["lost"]; n = v["requests"]
print(l > 0, 0.1 < l / (l + n) < 0.3, v["errors"]["mismatch"], v["errors"]["refused"])')
	[ "$v" = "True True 0 0" ] && ok "udp: dropped datagrams counted as lost" ||
		fail "udp lossy: $v $(jget "$T/lossy.json" 'v["errors"], v["requests"]')"
fi
if bench corrupt tcp --target 127.0.0.1:7009 -c 2; then
	v=$(jexec "$T/corrupt.json" 'm = v["errors"]["mismatch"]; n = v["requests"]
print(m > 0, 0.05 < m / (m + n) < 0.2)')
	[ "$v" = "True True" ] && ok "tcp: corrupted echoes counted as mismatches" ||
		fail "tcp corrupt: $v $(jget "$T/corrupt.json" 'v["errors"], v["requests"]')"
fi
bench corruptu udp --target 127.0.0.1:7009 -c 2 &&
	{ v=$(jget "$T/corruptu.json" 'v["errors"]["mismatch"] > 0, v["errors"]["lost"]')
	[ "$v" = "True 0" ] && ok "udp: corrupted echoes counted as mismatches" || fail "udp corrupt: $v"; }

# ---- from a client namespace the bench makes ----
if bench nstcp tcp --target "$ADDR:7007" -c 4 --netns-client; then
	v=$(jexec "$T/nstcp.json" 'import ipaddress as i; c = d["config"]["client"]
a = i.ip_address(c["address"])
print(c["kind"], a in i.ip_network("169.254.64.0/18"), i.ip_address(c["host_address"]) + 1 == a,
      v["requests"] > 100, sum(v["errors"].values()))')
	[ "$v" = "netns True True True 0" ] && ok "tcp --netns-client: from 169.254.64.0/18, no errors" ||
		fail "tcp --netns-client: $v"
fi
if bench nsudp udp --target "$ADDR:7007" -c 4 --netns-client; then
	v=$(jget "$T/nsudp.json" 'd["config"]["client"]["kind"], v["requests"] > 100, sum(v["errors"].values())')
	[ "$v" = "netns True 0" ] && ok "udp --netns-client" || fail "udp --netns-client: $v"
fi
"$SHOAL_BIN" bench http --url "http://$ADDR:8080/" -c 2 --warmup 200ms -d 1s --rounds 1 \
	--netns-client --json >"$T/nshttp.json" 2>"$T/nshttp.err"
rc=$?
v=$(jget "$T/nshttp.json" 'd["config"]["client"]["kind"], v["requests"] > 100, sum(v["errors"].values())' 2>&1)
[ $rc -eq 0 ] && [ "$v" = "netns True 0" ] && ok "http --netns-client" ||
	fail "http --netns-client: exit $rc, $v $(cat "$T/nshttp.err")"
n=$(shb_links)
[ "$n" = 0 ] && ok "no veth left after the runs" || fail "$n veth links left: $(ip -br link)"
out=$("$SHOAL_BIN" bench tcp --target 127.0.0.1:7007 -d 1s --netns-client 2>&1)
rc=$?
[ $rc -eq 1 ] && [[ "$out" == *"the client namespace's own loopback"* ]] &&
	ok "--netns-client to loopback: refused, says why" || fail "--netns-client loopback: $rc $out"
# Ctrl-C in the middle: the namespace and its veth go
"$SHOAL_BIN" bench tcp --target "$ADDR:7007" -c 2 -d 30s --netns-client -q >"$T/int.out" 2>&1 &
BP=$!
for _ in $(seq 50); do [ "$(shb_links)" != 0 ] && break; sleep 0.1; done
up=$(shb_links)
sleep 0.5
kill -INT $BP
wait $BP
rc=$?
n=$(shb_links)
[ "$up" = 1 ] && [ $rc -ne 0 ] && [ "$n" = 0 ] && grep -q interrupted "$T/int.out" &&
	ok "Ctrl-C: interrupted, the client namespace's veth removed" ||
	fail "Ctrl-C: veth while running $up, exit $rc, left $n: $(cat "$T/int.out")"

# ---- from a container's namespace ----
# The agent's API as far as --from-container asks it (GET /containers/NAME/json),
# on a unix socket: "web" runs, its process an echo server in a namespace of
# its own whose loopback only it has; "stopped" does not run.
unshare --net bash -c 'ip link set lo up && exec "$0" 7010' "$ECHO_BIN" >"$T/ctr.out" 2>&1 &
CTR=$!
PIDS+=($CTR)
cat >"$T/api.py" <<'PY'
import json, os, socketserver, sys
from http.server import BaseHTTPRequestHandler
pid = int(sys.argv[2])
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        if self.path == "/containers/web/json":
            code, body = 200, {"Name": "/web", "State": {"Running": True, "Pid": pid}}
        elif self.path == "/containers/stopped/json":
            code, body = 200, {"Name": "/stopped", "State": {"Running": False, "Pid": 0}}
        else:
            code, body = 404, {"message": "No such container"}
        b = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)
    def log_message(self, *a):
        pass
    def address_string(self):
        return "unix"
class S(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
S(sys.argv[1], H).serve_forever()
PY
python3 "$T/api.py" "$T/api.sock" "$CTR" &
PIDS+=($!)
for _ in $(seq 50); do [ -S "$T/api.sock" ] && grep -q listening "$T/ctr.out" && break; sleep 0.1; done
if SHOAL_HOST="unix://$T/api.sock" bench ctr tcp --target 127.0.0.1:7010 -c 2 --from-container web; then
	v=$(jexec "$T/ctr.json" 'c = d["config"]["client"]
print(c["kind"], c["container"], c["pid"] == '"$CTR"', v["requests"] > 100, sum(v["errors"].values()))')
	[ "$v" = "container web True True 0" ] &&
		ok "tcp --from-container: load from the container's namespace, its loopback" ||
		fail "tcp --from-container: $v"
fi
SHOAL_HOST="unix://$T/api.sock" bench ctru udp --target 127.0.0.1:7010 -c 2 --from-container web &&
	{ v=$(jget "$T/ctru.json" 'd["config"]["client"]["kind"], v["requests"] > 100, sum(v["errors"].values())')
	[ "$v" = "container True 0" ] && ok "udp --from-container" || fail "udp --from-container: $v"; }
# the bench came back: this namespace's loopback has no echo server on 7010
out=$("$SHOAL_BIN" bench tcp --target 127.0.0.1:7010 -d 1s 2>&1)
[ $? -eq 1 ] && [[ "$out" == *"Connection refused"* ]] &&
	ok "7010 answers only inside the container's namespace" || fail "7010 from here: $out"
out=$(SHOAL_HOST="unix://$T/api.sock" "$SHOAL_BIN" bench tcp --target 127.0.0.1:7010 \
	--from-container stopped 2>&1)
[ $? -eq 1 ] && [[ "$out" == *"the container is not running"* ]] &&
	ok "--from-container of a stopped container: says so" || fail "--from-container stopped: $out"
out=$(SHOAL_HOST="unix://$T/api.sock" "$SHOAL_BIN" bench tcp --target 127.0.0.1:7010 \
	--from-container nope 2>&1)
[ $? -eq 1 ] && [[ "$out" == *"--from-container nope"*"No such container"* ]] &&
	ok "--from-container of an unknown container: says so" || fail "--from-container nope: $out"

# ---- bad flags and unreachable targets ----
expect_err() { # expect_err WHAT STATUS NEEDLE PROTO ARGS...
	local what=$1 want=$2 needle=$3 out rc
	shift 3
	out=$("$SHOAL_BIN" bench "$@" 2>&1)
	rc=$?
	if [ "$rc" -eq "$want" ] && [[ "$out" == *"$needle"* ]]; then
		ok "$what: exit $rc, '$needle'"
	else
		fail "$what: exit $rc (want $want), output: $out"
	fi
}
E=127.0.0.1:7007
expect_err "no target" 125 "give the target" tcp
expect_err "not ADDR:PORT" 125 "expected ADDR:PORT" tcp --target 127.0.0.1
expect_err "bad port" 125 "the port must be 1 to 65535" udp --target 127.0.0.1:70000
expect_err "zero size" 125 "--size 0: expected 1 to" tcp --target $E --size 0
expect_err "udp size below its header" 125 "8-byte sequence number" udp --target $E --size 4
expect_err "udp datagram too large" 125 "expected 8 to 65507" udp --target $E --size 70000
expect_err "udp new connections" 125 "UDP has no connections" udp --target $E --new-connections
expect_err "both client places" 125 "give one of them" tcp --target $E --netns-client \
	--from-container web
expect_err "bad rate" 125 "--rate fast" udp --target $E --rate fast
expect_err "tcp refused" 1 "cannot connect to 127.0.0.1:1: Connection refused" tcp \
	--target 127.0.0.1:1
expect_err "udp: nobody there" 1 "no echo from 127.0.0.1:9" udp --target 127.0.0.1:9
expect_err "--from-container without an agent" 1 "--from-container web" tcp --target $E \
	--from-container web
expect_err "--service without an agent" 1 "Cannot connect" udp --service web

# ---- compare and report ----
"$SHOAL_BIN" bench compare "$T/tcp4.json" "$T/tcp4.json" >"$T/cmp.out" 2>&1 &&
	ok "compare of a tcp result with itself: no regression" ||
	fail "compare tcp A A: $(cat "$T/cmp.out")"
# A: the measured result with its rounds made equal (a loaded machine's
# rounds can spread by more than half, which compare rightly calls noise);
# B: the same at half the rate
python3 - "$T/udp1.json" "$T/udpsteady.json" "$T/udpslow.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
v = d["variants"][0]
for r in v["rounds"]:
    r["per_sec"] = v["per_sec"]
json.dump(d, open(sys.argv[2], "w"))
v["per_sec"] *= 0.5
for r in v["rounds"]:
    r["per_sec"] *= 0.5
json.dump(d, open(sys.argv[3], "w"))
PY
"$SHOAL_BIN" bench compare "$T/udpsteady.json" "$T/udpslow.json" >"$T/cmp.out" 2>&1
rc=$?
[ $rc -eq 1 ] && grep -q "variants.udp.per_sec .*REGRESSION" "$T/cmp.out" &&
	ok "compare flags half the udp throughput, exit 1" || fail "compare udp: $rc $(cat "$T/cmp.out")"
out=$("$SHOAL_BIN" bench compare "$T/tcp1.json" "$T/udp1.json" 2>&1)
[ $? -eq 2 ] && [[ "$out" == *"different suites"* ]] && ok "compare of tcp with udp refused" ||
	fail "compare tcp udp: $out"
"$SHOAL_BIN" bench report "$T/tcp1.json" "$T/tcp4.json" "$T/tcp16.json" "$T/udp1.json" \
	"$T/nsudp.json" -o "$T/report" >"$T/rep.out" 2>&1
rc=$?
if [ $rc -eq 0 ] && [ -s "$T/report/index.html" ]; then
	v=$(python3 - "$T/report/index.html" <<'PY'
import re, sys
h = open(sys.argv[1]).read()
charts = re.findall(r'<figcaption>([^<]*)</figcaption>\s*<svg class="chart curve"(.*?)</svg>', h, re.S)
tcp = [body for cap, body in charts if cap.startswith("tcp: ")]
xs = sorted({float(x) for body in tcp for x in re.findall(r'class="point"[^>]*data-x="([^"]+)"', body)})
udp = [cap for cap, _ in charts if cap.startswith("udp: ")]
print(len(tcp), xs, len(udp), h.count("<h2>Scaling</h2>"), "src=" in h)
PY
)
	# tcp: throughput and p99 by connections (1, 4, 16); the two udp runs
	# differ in nothing the curves plot against
	[ "$v" = "2 [1.0, 4.0, 16.0] 0 1 False" ] &&
		ok "report: tcp throughput and p99 by connections, one point per run" ||
		fail "report curves: $v"
else
	fail "report: exit $rc: $(cat "$T/rep.out")"
fi

if [ "$FAILURES" -ne 0 ]; then
	log "$FAILURES check(s) failed"
	exit 1
fi
log "all checks passed"
