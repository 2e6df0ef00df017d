#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Network policy on one node: services x, y and z with two tasks each, and two
# client addresses outside the cluster. For each policy case the probed
# matrix must equal the one a small oracle computes from the policies
# (policy_oracle.py, shared with policy-cluster.sh: written from the model's
# rules, not from shoal's code). Every pair is probed on TCP 80 and 81 and on
# UDP 80 and 81 (a datagram answered by a small echo in each task), for more
# than 40 policy cases. Then: the flow log names the deciding policy
# and rule of an allowed, a dropped and an audited flow; bad policies are
# refused naming the field; an agent killed with -9 keeps enforcing while it
# is away and right after its restart.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/policy-lib.sh"
node_start
client_start
must "a second client address" ip -n "$CLIENT_NS" addr add 10.250.0.3/24 dev "cl${TAG}"
must "a client route to the bridge" ip -n "$CLIENT_NS" route add 10.213.0.0/16 via "$NODE_ADDR"
must "forwarding in the node" in_node sysctl -qw net.ipv4.ip_forward=1

# --- the services ---
# The tasks' image adds /udptool (policy-lib.sh): a UDP echo in each task
# and the UDP prober.
policy_image_make
must "importing busybox-udp:it" shoal image import "$T/img/udp.tar" busybox-udp:it
SERVE='/udptool serve 80 81 & mkdir -p /tmp/www && echo ok >/tmp/www/index.html && httpd -p 80 -h /tmp/www && exec httpd -f -p 81 -h /tmp/www'
for s in x:web y:api z:db; do
	must "creating service ${s%%:*}" shoal service create -d --name "${s%%:*}" --replicas 2 \
		--container-label "role=${s#*:}" busybox-udp:it sh -c "$SERVE"
done
running_tasks() { [ "$(shoal ps -q | wc -l)" -eq 6 ]; }
wait_until 60 running_tasks || fatal "6 tasks running: $(shoal ps -q | wc -l)"

# name ip service role, one line per task
tasks_table() {
	local c
	for c in $(shoal ps -q); do
		curl -s --unix-socket "$SOCK" "http://shoal/containers/$c/json"
		echo
	done | python3 -c '
import json, sys
for line in sys.stdin:
    if not line.strip():
        continue
    c = json.loads(line)
    lab = c["Config"].get("Labels") or {}
    print(c["Name"].lstrip("/"), c["NetworkSettings"]["IPAddress"],
          lab.get("com.docker.swarm.service.name", ""), lab.get("role", ""),
          c["NetworkSettings"].get("SandboxKey", ""))'
}
must_get TASKS "the tasks" tasks_table
[ "$(echo "$TASKS" | awk '$2 != "" && $3 != ""' | wc -l)" -eq 6 ] || fatal "tasks without an address: $TASKS"
echo "$TASKS" >"$T/tasks"
task_name() { echo "$TASKS" | awk -v s="$1" '$3 == s {print $1}' | sed -n "${2}p"; }
task_ip() { echo "$TASKS" | awk -v n="$1" '$1 == n {print $2}'; }
task_by_ip() { echo "$TASKS" | awk -v a="$1" '$2 == a {print $1}'; }
serving() { # every task answers on 80 and 81 (no policy yet)
	local n ip
	for n in $(echo "$TASKS" | awk '{print $1}'); do
		ip=$(task_ip "$n")
		for p in 80 81; do
			in_node busybox sh -c "printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 2 $ip $p" | grep -q '^ok' || return 1
		done
		[ "$(in_node "$T/udptool" probe "$ip:80" "$ip:81" | grep -c ' 1$')" -eq 2 ] || return 1
	done
}
wait_until 30 serving || fatal "the tasks serve on 80 and 81"

# --- probing ---
# One line per probe: "SRC DST PORT 1|0". Task sources probe from inside
# their container (shoal exec: the container's cgroup and veth), the client
# addresses from the client namespace, all in parallel.
probe_all() {
	local out="$T/probed" n ip targets="" pids=""
	: >"$out"
	while read -r n ip _; do targets="$targets $n:$ip"; done <"$T/tasks"
	while read -r n ip _; do
		(
			script='for t in '"$targets"'; do for p in 80 81; do
				dn=${t%%:*}; dip=${t#*:}
				[ "$dip" = "'"$ip"'" ] && continue
				( if printf "GET / HTTP/1.0\r\n\r\n" | nc -w 1 $dip $p 2>/dev/null | grep -q "^ok"; then r=1; else r=0; fi
				  echo "'"$n"' $dn $p/tcp $r" ) &
			done; done; wait'
			shoal exec "$n" sh -c "$script" >"$T/probe.$n" 2>/dev/null
		) &
		pids="$pids $!"
		(
			local udp=""
			while read -r dn dip _; do
				[ "$dip" = "$ip" ] || udp="$udp $dip:80 $dip:81"
			done <"$T/tasks"
			# shellcheck disable=SC2086
			shoal exec "$n" /udptool probe $udp 2>/dev/null |
				while read -r dip p r; do
					echo "$n $(task_by_ip "$dip") $p $r"
				done >"$T/probe.$n.udp"
		) &
		pids="$pids $!"
	done <"$T/tasks"
	in_client python3 - "$T/tasks" >"$T/probe.client" <<'PY' &
import socket, sys, threading
tasks = [l.split() for l in open(sys.argv[1]) if l.strip()]
out, lock = [], threading.Lock()
def probe(src, dn, dip, port):
    ok = 0
    try:
        s = socket.socket()
        s.settimeout(1)
        s.bind((src, 0))
        s.connect((dip, port))
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        data = b""
        while True:
            d = s.recv(4096)
            if not d:
                break
            data += d
        ok = 1 if b"\nok" in data else 0
    except OSError:
        ok = 0
    with lock:
        out.append("%s %s %d/tcp %d" % (src, dn, port, ok))
def probe_udp(src, dn, dip, port):
    ok = 0
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(1)
        s.bind((src, 0))
        s.sendto(b"ping", (dip, port))
        ok = 1 if s.recv(64) == b"ok" else 0
    except OSError:
        ok = 0
    with lock:
        out.append("%s %s %d/udp %d" % (src, dn, port, ok))
th = [threading.Thread(target=f, args=(src, t[0], t[1], p))
      for src in ("10.250.0.2", "10.250.0.3") for t in tasks for p in (80, 81)
      for f in (probe, probe_udp)]
[t.start() for t in th]
[t.join() for t in th]
print("\n".join(out))
PY
	pids="$pids $!"
	wait $pids # not the agent
	cat "$T"/probe.* | sort >"$out"
	rm -f "$T"/probe.*
}

# The oracle (policy_oracle.py): the expected "SRC DST PORT 1|0" lines for
# the policies in $1 (a JSON array), the tasks on the network "bridge" and
# the two client addresses outside the cluster.
oracle() {
	echo "$1" >"$T/oracle.json"
	awk '{print $1, $2, $3, $4, "bridge"}' "$T/tasks" >"$T/parties"
	policy_oracle "$T/oracle.json" "$T/parties" --outside 10.250.0.2 --outside 10.250.0.3
}

metric() { curl -s --unix-socket "$SOCK" http://shoal/metrics | awk -v m="$1" '$1 == m {print $2}'; }
# applied N BEFORE: N policies in force and a compile written since BEFORE
applied() { [ "$(metric shoal_policy_policies)" = "$1" ] && [ "$(metric shoal_policy_applies_total)" -gt "$2" ]; }

# check_case NAME POLICIES-JSON: the probed matrix equals the oracle's
check_case() {
	local name=$1 pols=$2 exp
	exp=$(oracle "$pols") || { fail "$name: the oracle failed"; return; }
	probe_all
	if [ "$(cat "$T/probed")" = "$exp" ]; then
		ok "$name: $(grep -c ' 1$' "$T/probed") allowed, $(grep -c ' 0$' "$T/probed") denied, as expected"
	else
		fail "$name: probed matrix differs from the oracle's (< expected, > probed):"
		diff <(echo "$exp") "$T/probed" | grep '^[<>]' | head -20
	fi
}

# set_policies NAME JSON-ARRAY: removes every policy, creates these, waits
# until they are in force, then checks the matrix
set_policies() {
	local name=$1 pols=$2 before n i old
	before=$(metric shoal_policy_applies_total)
	old=$(shoal policy ls -q)
	for p in $old; do must "removing policy $p" shoal policy rm "$p"; done
	[ -n "$old" ] || before=$((before - 1)) # nothing to wait for when nothing changes
	n=$(echo "$pols" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
	for ((i = 0; i < n; i++)); do
		echo "$pols" | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)['"$i"']))' >"$T/pol.json"
		must "$name: creating policy $i" shoal policy create -f "$T/pol.json"
	done
	wait_until 20 applied "$n" "$before" || fatal "$name: policies in force: $(metric shoal_policy_policies)"
	check_case "$name" "$pols"
}

X1=$(task_name x 1) Y1=$(task_name y 1) Z1=$(task_name z 1)
[ -n "$X1" ] && [ -n "$Y1" ] && [ -n "$Z1" ] || fatal "task names: $TASKS"

log "the truth table"
set_policies "no policy" '[]'
out=$(shoal policy explain "$X1" "$Y1" 80/tcp 2>&1)
expect_contains "explain without any policy" "allowed" "$out"
set_policies "default deny ingress" '[{"Name":"deny-in","Selector":{"Service":"y"},"Types":["Ingress"],"Ingress":[]}]'
set_policies "default deny egress" '[{"Name":"deny-out","Selector":{"Service":"x"},"Types":["Egress"],"Egress":[]}]'
set_policies "deny all egress, ingress from y only" '[{"Name":"x-quiet","Selector":{"Service":"x"},"Types":["Ingress","Egress"],"Ingress":[{"From":[{"Service":"y"}]}],"Egress":[]}]'
set_policies "allow by service" '[{"Name":"y-from-x","Selector":{"Service":"y"},"Ingress":[{"From":[{"Service":"x"}],"Ports":[{"Port":80,"Protocol":"tcp"}]}]}]'
set_policies "allow by label" '[{"Name":"db-from-api","Selector":{"Labels":{"role":"db"}},"Ingress":[{"From":[{"Labels":{"role":"api"}}]}]}]'
set_policies "CIDR with except" '[{"Name":"y-cidr","Selector":{"Service":"y"},"Ingress":[{"From":[{"CIDR":"10.250.0.0/24","Except":["10.250.0.2/32"]},{"Service":"z"}]}]}]'
set_policies "port range" '[{"Name":"only-81-90","Selector":{},"Ingress":[{"Ports":[{"Port":81,"EndPort":90,"Protocol":"tcp"}]}]}]'
set_policies "deny beats allow at one order" '[
 {"Name":"z-allow-x","Tier":"cluster","Order":10,"Selector":{"Service":"z"},"Ingress":[{"From":[{"Service":"x"}],"Action":"allow"}]},
 {"Name":"z-deny-web-80","Tier":"cluster","Order":10,"Selector":{"Service":"z"},"Ingress":[{"From":[{"Labels":{"role":"web"}}],"Ports":[{"Port":80,"Protocol":"tcp"}],"Action":"deny"}]}]'

log "flow log: an allowed and a dropped flow name their policy and rule"
flows() { curl -s --unix-socket "$SOCK" "http://shoal/policies/log?$1"; }
has_flow() { # QUERY POLICY RULE DIRECTION
	flows "$1" | python3 -c '
import json, sys
pol, rule, d = sys.argv[1], int(sys.argv[2]), sys.argv[3]
sys.exit(0 if any(e.get("Policy") == pol and e.get("Rule") == rule and e["Direction"] == d
                  for e in map(json.loads, sys.stdin)) else 1)' "$2" "$3" "$4"
}
must "a flow x -> z:81" shoal exec "$X1" sh -c "printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 1 $(task_ip "$Z1") 81 | grep -q ok"
shoal exec "$X1" sh -c "printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 1 $(task_ip "$Z1") 80" >/dev/null 2>&1 &&
	fail "x -> z:80 passed under z-deny-web-80"
wait_until 5 has_flow "verdict=allowed&from=$X1&to=$Z1" z-allow-x 0 Ingress &&
	ok "allowed x -> z:81 logged with z-allow-x rule 0" ||
	fail "allowed flow in the log: $(flows "verdict=allowed&to=$Z1" | tail -3)"
wait_until 5 has_flow "verdict=dropped&from=$X1&to=$Z1" z-deny-web-80 0 Ingress &&
	ok "dropped x -> z:80 logged with z-deny-web-80 rule 0" ||
	fail "dropped flow in the log: $(flows "verdict=dropped&to=$Z1" | tail -3)"
expect_contains "the CLI's log names the dropped flow's policy" "z-deny-web-80[0]" \
	"$(shoal policy log --verdict dropped --from "$X1" --to "$Z1")"
expect_contains "explain gives the same verdict" "dropped" \
	"$(shoal policy explain "$X1" "$Z1" 80/tcp)"
expect_contains "explain names the deciding rule" "z-deny-web-80 (order 10), Ingress[0]: deny" \
	"$(shoal policy explain "$X1" z 80/tcp)"
expect_contains "explain takes addresses" "dropped" \
	"$(shoal policy explain "$(task_ip "$X1")" "$(task_ip "$Z1")" 80/tcp)"
shoal policy log -f --verdict dropped --to "$Z1" >"$T/follow.out" 2>&1 &
FOLLOW_PID=$!
shoal exec "$X1" sh -c "printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 1 $(task_ip "$Z1") 80" >/dev/null 2>&1
follow_saw() { [ "$(grep -c 'z-deny-web-80\[0\]' "$T/follow.out")" -ge 2 ]; }
wait_until 5 follow_saw && ok "policy log -f streams new drops" ||
	fail "policy log -f: $(tail -3 "$T/follow.out")"
kill "$FOLLOW_PID" 2>/dev/null
wait "$FOLLOW_PID" 2>/dev/null
expect_contains "counters per policy and rule in /metrics" \
	'shoal_policy_flows_total{policy="z-deny-web-80",rule="0",verdict="dropped",direction="ingress"}' \
	"$(curl -s --unix-socket "$SOCK" http://shoal/metrics)"

set_policies "pass to the service policies" '[
 {"Name":"y-gate","Tier":"cluster","Order":1,"Selector":{"Service":"y"},"Ingress":[{"From":[{"Service":"z"}],"Action":"pass"},{"Action":"deny"}]},
 {"Name":"y-from-z-80","Selector":{"Service":"y"},"Ingress":[{"From":[{"Service":"z"}],"Ports":[{"Port":80,"Protocol":"tcp"}]}]}]'
set_policies "baseline" '[
 {"Name":"no-world","Tier":"baseline","Order":1,"Selector":{},"Ingress":[{"From":[{"Entity":"world"}],"Action":"deny"}]},
 {"Name":"z-world","Selector":{"Service":"z"},"Ingress":[{"From":[{"Entity":"world"}]}]}]'
set_policies "audit mode" '[{"Name":"x-audit","Selector":{"Service":"x"},"Types":["Ingress","Egress"],"Ingress":[],"Egress":[],"Audit":true}]'
audited() { flows "verdict=audit&from=$X1" | grep -q '"Verdict":"audit".*"Policy":"x-audit"'; }
wait_until 5 audited && ok "audited flows logged with x-audit" ||
	fail "audited flow in the log: $(flows "verdict=audit" | tail -3)"

log "more cases: protocols, directions, policies adding up, entities, tiers"
set_policies "udp port only" '[{"Name":"y-udp-80","Selector":{"Service":"y"},"Ingress":[{"From":[{"Service":"x"}],"Ports":[{"Port":80,"Protocol":"udp"}]}]}]'
set_policies "udp port range" '[{"Name":"all-udp-80-81","Selector":{},"Ingress":[{"Ports":[{"Port":80,"EndPort":81,"Protocol":"udp"}]}]}]'
set_policies "tcp port and udp range" '[{"Name":"z-mixed","Selector":{"Service":"z"},"Ingress":[{"Ports":[{"Port":80,"Protocol":"tcp"},{"Port":81,"EndPort":85,"Protocol":"udp"}]}]}]'
set_policies "tcp 81 and udp 80 only" '[{"Name":"x-cross","Selector":{"Service":"x"},"Ingress":[{"Ports":[{"Port":81,"Protocol":"tcp"},{"Port":80,"Protocol":"udp"}]}]}]'
set_policies "egress by service" '[{"Name":"x-to-y","Selector":{"Service":"x"},"Egress":[{"To":[{"Service":"y"}]}]}]'
set_policies "egress and ingress both needed, disagreeing" '[
 {"Name":"x-to-y-80","Selector":{"Service":"x"},"Egress":[{"To":[{"Service":"y"}],"Ports":[{"Port":80,"Protocol":"tcp"}]}]},
 {"Name":"y-from-x-81","Selector":{"Service":"y"},"Ingress":[{"From":[{"Service":"x"},{"Service":"z"}],"Ports":[{"Port":81,"Protocol":"tcp"}]}]}]'
set_policies "egress and ingress both needed, agreeing" '[
 {"Name":"x-to-y-80","Selector":{"Service":"x"},"Egress":[{"To":[{"Service":"y"}],"Ports":[{"Port":80,"Protocol":"tcp"},{"Port":80,"Protocol":"udp"}]}]},
 {"Name":"y-from-x-80","Selector":{"Service":"y"},"Ingress":[{"From":[{"Service":"x"}],"Ports":[{"Port":80,"Protocol":"tcp"},{"Port":80,"Protocol":"udp"}]}]}]'
set_policies "several policies add up" '[
 {"Name":"y-from-x-80","Selector":{"Service":"y"},"Ingress":[{"From":[{"Service":"x"}],"Ports":[{"Port":80,"Protocol":"tcp"}]}]},
 {"Name":"y-from-z-81","Selector":{"Service":"y"},"Ingress":[{"From":[{"Service":"z"}],"Ports":[{"Port":81,"Protocol":"udp"}]}]}]'
set_policies "an empty rule list and an allow add up" '[
 {"Name":"deny-in","Selector":{"Service":"y"},"Types":["Ingress"],"Ingress":[]},
 {"Name":"y-from-x","Selector":{"Service":"y"},"Ingress":[{"From":[{"Service":"x"}]}]}]'
set_policies "a rule without peers" '[{"Name":"y-any-81-udp","Selector":{"Service":"y"},"Ingress":[{"Ports":[{"Port":81,"Protocol":"udp"}]}]}]'
set_policies "a rule without ports" '[{"Name":"y-from-z","Selector":{"Service":"y"},"Ingress":[{"From":[{"Service":"z"}]}]}]'
set_policies "entity world" '[{"Name":"z-world","Selector":{"Service":"z"},"Ingress":[{"From":[{"Entity":"world"}]}]}]'
set_policies "entity cluster" '[{"Name":"z-cluster","Selector":{"Service":"z"},"Ingress":[{"From":[{"Entity":"cluster"}]}]}]'
set_policies "entity node" '[{"Name":"y-node","Selector":{"Service":"y"},"Ingress":[{"From":[{"Entity":"node"}]}]}]'
set_policies "CIDR alone" '[{"Name":"x-from-one","Selector":{"Service":"x"},"Ingress":[{"From":[{"CIDR":"10.250.0.2/32"}]}]}]'
set_policies "CIDR whose except covers both clients" '[{"Name":"x-cidr-none","Selector":{"Service":"x"},"Ingress":[{"From":[{"CIDR":"10.250.0.0/24","Except":["10.250.0.0/25"]}]}]}]'
set_policies "labels on egress" '[{"Name":"api-to-db","Selector":{"Labels":{"role":"api"}},"Egress":[{"To":[{"Labels":{"role":"db"}}],"Ports":[{"Port":81,"Protocol":"tcp"},{"Port":81,"Protocol":"udp"}]}]}]'
set_policies "selector by network" '[{"Name":"bridge-from-x","Selector":{"Network":"bridge"},"Ingress":[{"From":[{"Service":"x"}]}]}]'
set_policies "default deny both ways for all" '[{"Name":"lockdown","Selector":{},"Types":["Ingress","Egress"],"Ingress":[],"Egress":[]}]'
set_policies "a cluster allow before service isolation" '[
 {"Name":"z-world-first","Tier":"cluster","Order":1,"Selector":{"Service":"z"},"Ingress":[{"From":[{"Entity":"world"}],"Action":"allow"}]},
 {"Name":"deny-z","Selector":{"Service":"z"},"Types":["Ingress"],"Ingress":[]}]'
set_policies "cluster orders: allow first" '[
 {"Name":"y-allow-x","Tier":"cluster","Order":1,"Selector":{"Service":"y"},"Ingress":[{"From":[{"Service":"x"}],"Action":"allow"}]},
 {"Name":"y-deny-all","Tier":"cluster","Order":2,"Selector":{"Service":"y"},"Ingress":[{"Action":"deny"}]}]'
set_policies "cluster orders: deny first" '[
 {"Name":"y-deny-x","Tier":"cluster","Order":1,"Selector":{"Service":"y"},"Ingress":[{"From":[{"Service":"x"}],"Action":"deny"}]},
 {"Name":"y-allow-all","Tier":"cluster","Order":2,"Selector":{"Service":"y"},"Ingress":[{"Action":"allow"}]}]'
set_policies "pass with no service policy reaches the baseline" '[
 {"Name":"y-pass-z","Tier":"cluster","Order":1,"Selector":{"Service":"y"},"Ingress":[{"From":[{"Service":"z"}],"Action":"pass"}]},
 {"Name":"no-cluster-in","Tier":"baseline","Order":1,"Selector":{"Service":"y"},"Ingress":[{"From":[{"Entity":"cluster"}],"Action":"deny"}]}]'
set_policies "baseline orders" '[
 {"Name":"base-allow-x","Tier":"baseline","Order":1,"Selector":{},"Ingress":[{"From":[{"Service":"x"}],"Action":"allow"}]},
 {"Name":"base-deny-all","Tier":"baseline","Order":2,"Selector":{},"Ingress":[{"Action":"deny"}]}]'
set_policies "an audited cluster deny" '[{"Name":"z-deny-x-audit","Tier":"cluster","Order":1,"Selector":{"Service":"z"},"Ingress":[{"From":[{"Service":"x"}],"Action":"deny"}],"Audit":true}]'
set_policies "audit beside an enforcing policy" '[
 {"Name":"x-audit","Selector":{"Service":"x"},"Types":["Ingress"],"Ingress":[],"Audit":true},
 {"Name":"x-from-y","Selector":{"Service":"x"},"Ingress":[{"From":[{"Service":"y"}],"Ports":[{"Port":80,"Protocol":"udp"}]}]}]'
set_policies "egress to world only" '[{"Name":"x-out-world","Selector":{"Service":"x"},"Egress":[{"To":[{"Entity":"world"}]}]}]'

log "the policy map's fill: shown, and a compile past an endpoint's capacity refused whole"
set_policies "before the overflow" '[{"Name":"y-from-x","Selector":{"Service":"y"},"Ingress":[{"From":[{"Service":"x"}],"Ports":[{"Port":80,"Protocol":"tcp"}]}]}]'
fill=$(curl -s --unix-socket "$SOCK" http://shoal/info | python3 -c '
import json, sys
m = json.load(sys.stdin)["ShoalPolicyMap"]
f = m["Fullest"]
print(m["NodeEntries"], m["NodeCapacity"], m["EndpointCapacity"], m["Endpoints"], len(f),
      f[0]["Name"] if f else "-", f[0]["Ingress"] if f else 0, m.get("Error") or "-")')
read -r used cap epcap neps nfull first first_in ferr <<<"$fill"
[ "$used" -gt 0 ] && [ "$cap" -ge "$used" ] && [ "$epcap" -eq 65536 ] && [ "$neps" -ge 2 ] &&
	[ "$nfull" -ge 2 ] && [ "$first_in" -gt 0 ] && [ "$ferr" = "-" ] &&
	case "$first" in y.*) true ;; *) false ;; esac &&
	ok "/info's ShoalPolicyMap: $used of $cap entries, fullest $first ($first_in ingress)" ||
	fail "/info's ShoalPolicyMap: $fill"
expect_contains "shoal info shows the fill" "Policy Map: $used of $cap entries" "$(shoal info 2>/dev/null)"
expect_contains "policy ls shows the fill" "$first" "$(shoal policy ls 2>/dev/null | sed -n '/Policy Map/,$p')"
# one endpoint's ingress past 65,536 entries: 17 rules of 64 addresses x 64 ports
python3 - >"$T/big.json" <<'PY'
import json
rules = [{"From": [{"CIDR": "10.240.%d.%d/32" % (r, i)} for i in range(64)],
          "Ports": [{"Port": 1000 + 2 * i, "Protocol": "tcp"} for i in range(64)]} for r in range(17)]
print(json.dumps({"Name": "too-big", "Selector": {"Service": "z"}, "Ingress": rules}))
PY
before=$(metric shoal_policy_applies_total)
out=$(api POST /policies/create "$(cat "$T/big.json")")
expect_eq "a policy too big for z's map is refused at create: 400" 400 "${out%% *}"
echo "$out" | grep -qE "endpoint z\.[^ ]*: its ingress needs [0-9]+ policy map entries, 65536 fit" &&
	ok "the refusal names z's endpoint, the count and the limit" ||
	fail "the refusal: $out"
shoal policy ls -q | grep -qx too-big && fail "too-big was stored" || ok "nothing stored"
[ "$(metric shoal_policy_applies_total)" = "$before" ] && ok "nothing applied" ||
	fail "a compile was applied: $before -> $(metric shoal_policy_applies_total)"
check_case "the state before the refusal still enforced" '[{"Name":"y-from-x","Selector":{"Service":"y"},"Ingress":[{"From":[{"Service":"x"}],"Ports":[{"Port":80,"Protocol":"tcp"}]}]}]'

log "an update applies to new connections"
set_policies "before the update" '[{"Name":"y-from-x","Selector":{"Service":"y"},"Ingress":[{"From":[{"Service":"x"}],"Ports":[{"Port":80,"Protocol":"tcp"}]}]}]'
UPD='{"Name":"y-from-x","Selector":{"Service":"y"},"Ingress":[{"From":[{"Service":"x"}],"Ports":[{"Port":81,"Protocol":"tcp"}]}]}'
echo "$UPD" >"$T/upd.json"
before=$(metric shoal_policy_applies_total)
must "updating y-from-x" shoal policy update -f "$T/upd.json" y-from-x
wait_until 20 applied 1 "$before" || fail "the update applied"
check_case "policy updated" "[$UPD]"
out=$(api POST "/policies/y-from-x/update?version=1" "$UPD")
expect_eq "an update from a stale version is refused" 409 "${out%% *}"

log "bad policies are refused, naming the field, and nothing is stored"
out=$(api POST /policies/create '{"Name":"bad","Selector":{"Servic":"y"}}')
expect_eq "unknown selector key: 400" 400 "${out%% *}"
expect_contains "it names the field" "Selector.Servic" "$out"
out=$(api POST /policies/create '{"Name":"bad","Selector":{},"Ingress":[{"From":[{"CIDR":"10.0.0.1/8"}]}]}')
expect_eq "CIDR with host bits: 400" 400 "${out%% *}"
expect_contains "it names the field" "Ingress[0].From[0].CIDR" "$out"
out=$(api POST /policies/create '{"Name":"bad","Selector":{},"Ingress":[{"Ports":[{"Port":80,"EndPort":90,"Protocol":"tcp"},{"Port":85,"Protocol":"tcp"}]}]}')
expect_eq "overlapping port ranges: 400" 400 "${out%% *}"
expect_contains "it names the field" "Ingress[0].Ports[1]" "$out"
expect_eq "nothing half-stored" "y-from-x" "$(shoal policy ls -q | tr '\n' ' ' | sed 's/ $//')"
printf 'Name: yaml-pol\nSelector:\n  Service: z\nIngress:\n  - From:\n      - Service: y\n' >"$T/pol.yaml"
must "a YAML policy" shoal policy create -f "$T/pol.yaml"
expect_contains "the YAML policy is stored in the API's form" '"Service": "y"' "$(shoal policy inspect yaml-pol)"
must "the flags' common case" shoal policy create flags-pol --selector service=x --ingress-from service=y --port 80/tcp --audit
expect_contains "the flags' policy" '"Audit": true' "$(shoal policy inspect flags-pol)"
must "removing the YAML policy" shoal policy rm yaml-pol flags-pol

log "an agent killed with -9 keeps enforcing, then and after its restart"
set_policies "before the kill" '[{"Name":"deny-in","Selector":{"Service":"y"},"Types":["Ingress"],"Ingress":[]}]'
X1NS=$(echo "$TASKS" | awk -v n="$X1" '$1 == n {print $5}')
Y1IP=$(task_ip "$Y1") Z1IP=$(task_ip "$Z1")
agent_kill9
in_ns_get() { nsenter --net="$X1NS" busybox sh -c "printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 1 $1 $2" 2>/dev/null | grep -q '^ok'; }
in_ns_get "$Y1IP" 80 && fail "x -> y:80 passed while the agent was down" || ok "x -> y denied while the agent is down"
in_ns_get "$Z1IP" 80 && ok "x -> z allowed while the agent is down" || fail "x -> z:80 refused while the agent was down"
agent_start
shoal exec "$X1" sh -c "printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 1 $Y1IP 80" 2>/dev/null | grep -q '^ok' &&
	fail "x -> y:80 passed right after the restart" || ok "x -> y denied right after the restart"
wait_until 20 applied 1 0 || fail "the restarted agent applied the policies"
check_case "after the restart" '[{"Name":"deny-in","Selector":{"Service":"y"},"Types":["Ingress"],"Ingress":[]}]'
expect_contains "the flow log survived the restart" '"Policy":"deny-in"' "$(flows "verdict=dropped")"

set_policies "policy removed" '[]'

log "a published port filtered by the client's real address"
must "a service publishing 8080" shoal service create -d --name pub --publish 8080:80 \
	busybox sh -c "$SERVE"
# pub_get SRC: one request from the client address SRC to the node's 8080
pub_get() {
	in_client python3 -c '
import socket, sys
s = socket.create_connection(("'"$NODE_ADDR"'", 8080), timeout=2, source_address=(sys.argv[1], 0))
s.sendall(b"GET / HTTP/1.0\r\n\r\n")
d = b""
while True:
    b = s.recv(4096)
    if not b: break
    d += b
sys.exit(0 if b"\nok" in d else 1)' "$1" 2>/dev/null
}
wait_until 30 pub_get 10.250.0.3 || fatal "the published port answers"
echo '{"Name":"pub-from-one","Selector":{"Service":"pub"},"Ingress":[{"From":[{"CIDR":"10.250.0.2/32"}],"Ports":[{"Port":80,"Protocol":"tcp"}]}]}' >"$T/pol.json"
before=$(metric shoal_policy_applies_total)
must "a policy on the published service" shoal policy create -f "$T/pol.json"
wait_until 20 applied 1 "$before" || fatal "policies in force: $(metric shoal_policy_policies)"
pub_get 10.250.0.2 && ok "10.250.0.2 reaches the published port" || fail "10.250.0.2 refused on 8080"
pub_get 10.250.0.3 && fail "10.250.0.3 reached the published port" || ok "10.250.0.3 refused on 8080"
pub_drop() { flows "verdict=dropped&from=10.250.0.3" | grep '"Policy":"pub-from-one"' | grep -q '"Published":true'; }
wait_until 5 pub_drop && ok "the drop names the policy and the client's address, as published-port traffic" ||
	fail "no dropped flow from 10.250.0.3: $(flows "verdict=dropped&from=10.250.0.3" | tail -n 2)"
must "removing it" shoal policy rm pub-from-one
wait_until 20 pub_get 10.250.0.3 && ok "10.250.0.3 reaches it again without the policy" ||
	fail "10.250.0.3 still refused after the policy went"
must "removing the service" shoal service rm pub
finish
