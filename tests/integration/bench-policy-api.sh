#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Network policy through a running shoald, with one container (a UDP echo of
# service "echo") on its bridge:
#  - `shoal bench policy --api-target`: policy creates through the API timed
#    to the first datagram dropped (a create isolating the service) and the
#    first answered again (a create allowing its port); every figure present
#    and sane (no timed assertion: the figures are logged);
#  - a policy the policy map could not take is refused at create with a 400
#    naming the limit and the count, and nothing is stored;
#  - 10,000 rules: the agent answers _ping while they compile (the compile
#    runs on a thread of its own); its latencies during the compile, the
#    compile's and the apply's times are logged, and the rules are enforced.
. "$(dirname "$0")/lib.sh"
node_start

must "importing udpecho:it" udp_echo_image
must "creating service echo" shoal service create -d --name echo --replicas 1 udpecho:it /udpecho
echo_ip() {
	local c
	c=$(shoal ps -q | head -1)
	[ -n "$c" ] || return 1
	curl -s --unix-socket "$SOCK" "http://shoal/containers/$c/json" |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["NetworkSettings"]["IPAddress"])'
}
has_ip() { [ -n "$(echo_ip 2>/dev/null)" ]; }
wait_until 60 has_ip || fatal "the echo task has no address"
IP=$(echo_ip)
answers() { [ -n "$(udp_ask in_node "$IP" 53)" ]; }
wait_until 30 answers || fatal "the echo at $IP:53 does not answer"
ok "echo at $IP:53"

metric() { curl -s --unix-socket "$SOCK" http://shoal/metrics | awk -v m="$1" '$1 == m {print $2}'; }

log "policy creates through the API, timed to enforcement"
ROUNDS=${BENCH_POLICY_API_ROUNDS:-20}
if in_node "$SHOAL_BIN" bench policy --api-target "$IP:53" --api-service echo \
	--enforce-rounds "$ROUNDS" --json -q -o "$T/api.json" >"$T/api.out" 2>"$T/api.err"; then
	ok "shoal bench policy --api-target ran"
else
	fail "shoal bench policy --api-target: $(cat "$T/api.err")"
fi
python3 - "$T/api.json" "$ROUNDS" <<'EOF' && ok "API figures present and sane" || fail "API figures (above)"
import json, sys
r = json.load(open(sys.argv[1]))
n = int(sys.argv[2])
bad = []
en = r.get("api_enforce_ms", {})
for k in ("deny", "allow"):
    x = en.get(k, {})
    if x.get("rounds") != n:
        bad.append("%s rounds %s, want %d" % (k, x.get("rounds"), n))
    if not (0 <= x.get("min", -1) <= x.get("p50", -1) <= x.get("p99", -1) <= x.get("max", -1) < 2000):
        bad.append("%s: min <= p50 <= p99 <= max < 2000 ms: %s" % (k, x))
if r.get("suite") != "policy":
    bad.append("suite")
if bad:
    print("\n".join(bad))
    sys.exit(1)
for k in ("deny", "allow"):
    x = en[k]
    print("create to %s: p50 %.2f ms, p99 %.2f ms, max %.2f ms over %d creates" %
          ("first dropped" if k == "deny" else "first answered", x["p50"], x["p99"], x["max"], x["rounds"]))
EOF
[ -z "$(shoal policy ls -q)" ] && ok "the bench removed its policies" ||
	fail "policies left by the bench: $(shoal policy ls -q)"
if "$SHOAL_BIN" bench policy --api-target "$IP:53" >"$T/bad" 2>&1; then
	fail "--api-target without --api-service accepted"
else
	grep -q -- "--api-service" "$T/bad" && ok "--api-target alone refused: $(head -1 "$T/bad")" ||
		fail "--api-target alone: unclear error: $(cat "$T/bad")"
fi

log "a policy the map cannot take is refused at create"
python3 - >"$T/big.json" <<'EOF'
import json
# 512 addresses, each on 64 two-port ranges that are not aligned (two
# entries each), twice (published-port variants): past 65,536 entries
rules = []
for r in range(8):
    rules.append({"From": [{"CIDR": "1.0.%d.%d/32" % (r, i)} for i in range(64)],
                  "Ports": [{"Port": 4 * i + 1, "EndPort": 4 * i + 2, "Protocol": "udp"}
                            for i in range(64)]})
print(json.dumps({"Name": "too-big", "Selector": {"Service": "echo"}, "Ingress": rules}))
EOF
out=$(api POST /policies/create "$(cat "$T/big.json")")
expect_eq "an overflowing policy: 400" 400 "${out%% *}"
expect_contains "the refusal names the limit" "65536 fit" "$out"
expect_contains "the refusal names the count" "131075 policy map entries" "$out"
expect_contains "the refusal names the endpoint's side" "ingress" "$out"
[ -z "$(shoal policy ls -q)" ] && ok "nothing stored" || fail "stored anyway: $(shoal policy ls -q)"
answers && ok "the echo still answers (nothing applied)" || fail "the echo stopped answering"
# an update to the same size is refused as well
must "a small policy" shoal policy create echo-small --selector service=echo --port 53/udp
ver=$(api GET /policies/echo-small | sed 's/^[0-9]* //' |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["Version"]["Index"])')
big_upd=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); d["Name"]="echo-small"; print(json.dumps(d))' "$T/big.json")
out=$(api POST "/policies/echo-small/update?version=$ver" "$big_upd")
expect_eq "an overflowing update: 400" 400 "${out%% *}"
spec=$(api GET /policies/echo-small)
expect_not_contains "the update was not stored" "1.0.0.0/32" "$spec"
must "removing echo-small" shoal policy rm echo-small

log "10,000 rules: _ping while they compile"
# 40 policies of 250 rules, each rule from its own /24 to udp/53; the last
# one created while _ping is asked every 5 ms until the compile is applied
python3 - "$SOCK" "$T/ping.json" <<'EOF'
import json, socket, sys, threading, time
sock, outf = sys.argv[1], sys.argv[2]

def call(method, path, body=None):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sock)
    data = json.dumps(body).encode() if body is not None else b""
    s.sendall(("%s %s HTTP/1.0\r\nHost: shoal\r\nContent-Type: application/json\r\n"
               "Content-Length: %d\r\n\r\n" % (method, path, len(data))).encode() + data)
    resp = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        resp += b
    s.close()
    head, _, rest = resp.partition(b"\r\n\r\n")
    return int(head.split()[1]), rest.decode(errors="replace")

def metric(name):
    _, text = call("GET", "/metrics")
    for line in text.splitlines():
        f = line.split()
        if len(f) == 2 and f[0] == name:
            return float(f[1])
    return None

def pol(k):
    return {"Name": "bulk-%02d" % k, "Selector": {"Service": "echo"}, "Types": ["Ingress"],
            "Ingress": [{"From": [{"CIDR": "10.%d.%d.0/24" % (100 + r // 256, r % 256)}],
                         "Ports": [{"Port": 53, "Protocol": "udp"}]}
                        for r in range(k * 250, k * 250 + 250)]}

for k in range(39):
    st, body = call("POST", "/policies/create", pol(k))
    if st != 201:
        print("create bulk-%02d: %d %s" % (k, st, body)); sys.exit(1)
deadline = time.time() + 60
while metric("shoal_policy_policies") != 39 and time.time() < deadline:
    time.sleep(0.05)
applies = metric("shoal_policy_applies_total")
while time.time() < deadline:  # the last compile of the 39 applied
    time.sleep(0.3)
    a = metric("shoal_policy_applies_total")
    if a == applies:
        break
    applies = a
res = {}
def create():
    t = time.monotonic()
    res["status"], res["body"] = call("POST", "/policies/create", pol(39))
    res["create_ms"] = (time.monotonic() - t) * 1e3
th = threading.Thread(target=create)
pings, fails = [], 0
t0 = time.monotonic()
th.start()
while time.time() < deadline:
    t = time.monotonic()
    st, _ = call("GET", "/_ping")
    pings.append((time.monotonic() - t) * 1e3)
    fails += st != 200
    if not th.is_alive() and metric("shoal_policy_applies_total") > applies and \
            metric("shoal_policy_policies") == 40:
        break
    time.sleep(0.005)
th.join()
window = (time.monotonic() - t0) * 1e3
pings.sort()
out = {"create_status": res.get("status"), "create_ms": res.get("create_ms"),
       "window_ms": window, "pings": len(pings), "ping_fails": fails,
       "ping_p50_ms": pings[len(pings) // 2] if pings else None,
       "ping_max_ms": pings[-1] if pings else None,
       "compile_s": metric("shoal_policy_compile_seconds"),
       "apply_s": metric("shoal_policy_apply_seconds"),
       "policies": metric("shoal_policy_policies")}
json.dump(out, open(outf, "w"))
print(json.dumps(out))
sys.exit(0 if res.get("status") == 201 and out["policies"] == 40 else 1)
EOF
rc=$?
[ $rc -eq 0 ] && ok "10,000 rules created and applied: $(cat "$T/ping.json")" ||
	fail "10,000 rules: $(cat "$T/ping.json" 2>/dev/null)"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d["pings"] >= 1 and d["ping_fails"] == 0 else 1)' \
	"$T/ping.json" 2>/dev/null && ok "_ping answered throughout" || fail "_ping failed during the compile"
# enforced: the node's own datagrams are no rule's
! answers && ok "10,000 rules enforced (the node's datagram dropped)" ||
	fail "the echo answers the node under 10,000 rules that do not allow it"
finish
