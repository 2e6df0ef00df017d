#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Network policy across nodes (three nodes, etcd, one agent each:
# tests/integration/cluster-lib.sh), on an overlay network:
# - services x, y and z (labels role=web, api, db), one task per node each
#   (a, b, c), each serving TCP and UDP on 80 and 81 (policy-lib.sh's
#   udptool);
# - the truth table: for each of more than 40 policy cases, every task probes
#   every other task on every node on TCP and UDP 80 and 81 (from inside its
#   container: its cgroup and veth; one probe round per task, all targets at
#   once, a denied probe waiting 300 ms), and the matrix must equal the one
#   policy_oracle.py computes from the policies (written from the model's
#   rules, not from shoal's code): default deny in and out, allow by service,
#   label, network, entity, CIDR with except on the overlay subnet, ports,
#   ranges and protocols, egress allows, deny beating allow at one order,
#   pass to the service tier, the baseline tier, audit, a policy updated and
#   every policy removed;
# - identities agree across nodes: each service's tasks have the same
#   identity on all three nodes, held once in the store;
# - the flow log on the receiving node names the policy and the sender's
#   service (a task on another node) of a cross-node drop and of an audited
#   flow;
# - the time from `policy create` on node 1 to the first dropped connection
#   at x's task on node 3 (a new connection every few ms from node 3), over
#   some rounds: logged as p50/p99 (measured, not asserted);
# - a task leaving (service scale): its address leaves every node's ipcache;
#   one coming gets its service's identity there, and the table holds.
. "$(dirname "$0")/cluster-lib.sh"
. "$(dirname "$0")/policy-lib.sh"

for c in ip nsenter python3 curl cc; do
	command -v $c >/dev/null 2>&1 || { echo "SKIP: needs $c"; exit $SKIP; }
done

cluster_etcd_start
for i in 1 2 3; do
	cluster_node_start "$i"
done
in_ns() { local i=$1; shift; nsenter --net="/run/netns/$(node_ns "$i")" "$@"; }
api_get() { curl -s --max-time 10 --unix-socket "$(node_sock "$1")" "http://shoal$2"; }

policy_image_make
for i in 1 2 3; do
	must "importing busybox-udp:it on node $i" node_shoal "$i" image import "$T/img/udp.tar" busybox-udp:it
done

must "an overlay network" node_shoal 1 network create -d overlay --subnet 10.78.0.0/24 ovl
for s in x:web y:api z:db; do
	must "service ${s%%:*}" node_shoal 1 service create -d --name "${s%%:*}" --replicas 3 \
		--replicas-max-per-node 1 --network ovl --container-label "role=${s#*:}" \
		busybox-udp:it /udptool serve -t 80 81
done

# name node ip service role, one line per running task, from each node's own
# containers
tasks_table() {
	local i c
	for i in 1 2 3; do
		for c in $(node_shoal "$i" ps -q); do
			printf '%s ' "$i"
			api_get "$i" "/containers/$c/json"
			echo
		done
	done | python3 -c '
import json, sys
for line in sys.stdin:
    node, _, j = line.partition(" ")
    if not j.strip():
        continue
    c = json.loads(j)
    lab = c["Config"].get("Labels") or {}
    svc = lab.get("com.docker.swarm.service.name", "")
    ip = next(iter((c["NetworkSettings"].get("Networks") or {}).values()), {}).get("IPAddress", "")
    if svc and ip and c["State"]["Running"]:
        print(c["Id"][:12], node, ip, svc, lab.get("role", ""))'
}
nine_up() { [ "$(tasks_table | wc -l)" -eq 9 ]; }
wait_until 90 nine_up || fatal "9 running tasks with an overlay address: $(tasks_table)"
tasks_table | sort -k4,4 -k2,2 >"$T/tasks"
log "tasks:"
cat "$T/tasks"
for s in x y z; do
	expect_eq "$s: one task on each node" "1 2 3" \
		"$(awk -v s=$s '$4 == s {print $2}' "$T/tasks" | sort | xargs)"
done
task_of() { awk -v s="$1" -v n="$2" '$4 == s && $2 == n {print $1}' "$T/tasks"; } # SERVICE NODE
ip_of() { awk -v s="$1" -v n="$2" '$4 == s && $2 == n {print $3}' "$T/tasks"; }

# One line per probe: "SRC DST PORT/PROTO 1|0", every task to every other
# on TCP and UDP 80 and 81, each source from inside its container (one
# udptool for all its targets), all sources at once.
PROBE_WAIT_MS=300
probe_all() {
	local id node ip targets pids=""
	while read -r id node ip _; do
		targets=$(awk -v a="$ip" '$3 != a {for (p = 80; p <= 81; p++)
			printf "tcp:%s:%d udp:%s:%d ", $3, p, $3, p}' "$T/tasks")
		# shellcheck disable=SC2086
		node_shoal "$node" exec "$id" /udptool probe -w "$PROBE_WAIT_MS" $targets \
			>"$T/probe.$id" 2>/dev/null &
		pids="$pids $!"
	done <"$T/tasks"
	# shellcheck disable=SC2086
	wait $pids
	for id in $(awk '{print $1}' "$T/tasks"); do
		awk -v s="$id" 'NR == FNR {name[$3] = $1; next}
			{print s, ($1 in name ? name[$1] : "?" $1), $2, $3}' "$T/tasks" "$T/probe.$id"
	done | sort
	rm -f "$T"/probe.*
}

# The oracle's view of the tasks: "NAME ADDR SERVICE ROLE NETWORK"
oracle() {
	awk '{print $1, $3, $4, $5, "ovl"}' "$T/tasks" >"$T/parties"
	policy_oracle "$T/pols.json" "$T/parties"
}

metric() { api_get "$1" /metrics | awk -v m="$2" '$1 == m {print $2}'; }
# applied_all N: every node has N policies in force
applied_all() {
	local i
	for i in 1 2 3; do
		[ "$(metric "$i" shoal_policy_policies)" = "$1" ] || return 1
	done
}
# compiled_since A1 A2 A3: every node has compiled since its count was Ai
compiled_since() {
	local i
	for i in 1 2 3; do
		[ "$(metric "$i" shoal_policy_applies_total)" -gt "${!i}" ] || return 1
	done
}

# check_matrix NAME: the probed matrix against the oracle's for the policies
# in $T/pols.json, probed again (up to 4 times) while it differs: a node's
# compile can trail the others' by its debounce
CASES=0
check_matrix() {
	local name=$1 tries=0
	oracle >"$T/want" || { fail "$name: the oracle failed"; return; }
	while :; do
		probe_all >"$T/got"
		cmp -s "$T/want" "$T/got" && break
		tries=$((tries + 1))
		[ $tries -ge 4 ] && break
		sleep 0.3
	done
	CASES=$((CASES + 1))
	if cmp -s "$T/want" "$T/got"; then
		local again=""
		[ $tries -eq 0 ] || again=" (probed $((tries + 1)) times)"
		ok "$name: $(grep -c ' 1$' "$T/got") allowed, $(grep -c ' 0$' "$T/got") denied of $(wc -l <"$T/got") probes, as the oracle says$again"
	else
		fail "$name: the probed matrix differs from the oracle's (< want, > got):"
		diff "$T/want" "$T/got" | grep '^[<>]' | head -20
	fi
}

# run_case NAME POLICIES-JSON: removes every policy (through node 1) and waits
# until no node has one in force, creates these (through node 1, 2 and 3 in
# turn) and waits until every node has them all, then checks the matrix
run_case() {
	local name=$1 p i n
	echo "$2" >"$T/pols.json"
	n=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$T/pols.json") ||
		fatal "$name: the case's JSON"
	p=$(node_shoal 1 policy ls -q 2>/dev/null)
	if [ -n "$p" ]; then
		# shellcheck disable=SC2086
		must "$name: removing the policies" node_shoal 1 policy rm $p
		wait_until 20 applied_all 0 || fail "$name: a node still enforces a removed policy"
	fi
	for ((i = 0; i < n; i++)); do
		python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))[int(sys.argv[2])]))' \
			"$T/pols.json" "$i" >"$T/pol.json"
		must "$name: creating policy $i" node_shoal $((i % 3 + 1)) policy create -f "$T/pol.json"
	done
	wait_until 20 applied_all "$n" || fail "$name: not every node has $n policies in force"
	check_matrix "$name"
}

ISO_X='{"Name":"x-iso","Selector":{"Service":"x"},"Ingress":[]}'
X_FROM_Y='{"Name":"x-from-y","Selector":{"Service":"x"},"Ingress":[{"From":[{"Service":"y"}]}]}'
Z_FROM_WEB='{"Name":"z-from-web","Selector":{"Service":"z"},"Ingress":[{"From":[{"Labels":{"role":"web"}}]}]}'
DENY_Y_X='{"Name":"deny-y-x","Tier":"cluster","Order":10,"Selector":{"Service":"x"},"Ingress":[{"From":[{"Service":"y"}],"Action":"deny"}]}'

# every task answers every other on TCP and UDP 80 and 81 before the table
all_serve() { ! probe_all | grep -q ' 0$'; }
wait_until 30 all_serve || fatal "the tasks serve each other: $(probe_all | grep ' 0$' | head -5)"
XA=$(ip_of x 1) XB=$(ip_of x 2)

log "the truth table, on three nodes"
run_case "no policy" '[]'
run_case "x isolated (default deny ingress)" "[$ISO_X]"
run_case "x from y (by service)" "[$X_FROM_Y]"
run_case "x from y, z from role=web (by label)" "[$X_FROM_Y, $Z_FROM_WEB]"
run_case "a cluster-tier deny y -> x beats the allow" "[$X_FROM_Y, $Z_FROM_WEB, $DENY_Y_X]"
run_case "default deny egress" '[{"Name":"deny-out","Selector":{"Service":"x"},"Types":["Egress"],"Egress":[]}]'
run_case "deny all egress, ingress from y only" '[{"Name":"x-quiet","Selector":{"Service":"x"},"Types":["Ingress","Egress"],"Ingress":[{"From":[{"Service":"y"}]}],"Egress":[]}]'
run_case "allow by service and port" '[{"Name":"y-from-x","Selector":{"Service":"y"},"Ingress":[{"From":[{"Service":"x"}],"Ports":[{"Port":80,"Protocol":"tcp"}]}]}]'
run_case "allow by label" '[{"Name":"db-from-api","Selector":{"Labels":{"role":"db"}},"Ingress":[{"From":[{"Labels":{"role":"api"}}]}]}]'
run_case "CIDR with except on the overlay subnet: tasks are judged by what they are" '[{"Name":"y-cidr","Selector":{"Service":"y"},"Ingress":[{"From":[{"CIDR":"10.78.0.0/24","Except":["'"$XA"'/32"]},{"Service":"z"}]}]}]'
run_case "egress to the overlay subnet's CIDR opens no task" '[{"Name":"x-to-cidr","Selector":{"Service":"x"},"Egress":[{"To":[{"CIDR":"10.78.0.0/24","Except":["'"$XB"'/32"]}]}]}]'
run_case "port range" '[{"Name":"only-81-90","Selector":{},"Ingress":[{"Ports":[{"Port":81,"EndPort":90,"Protocol":"tcp"}]}]}]'
run_case "deny beats allow at one order" '[
 {"Name":"z-allow-x","Tier":"cluster","Order":10,"Selector":{"Service":"z"},"Ingress":[{"From":[{"Service":"x"}],"Action":"allow"}]},
 {"Name":"z-deny-web-80","Tier":"cluster","Order":10,"Selector":{"Service":"z"},"Ingress":[{"From":[{"Labels":{"role":"web"}}],"Ports":[{"Port":80,"Protocol":"tcp"}],"Action":"deny"}]}]'
run_case "pass to the service policies" '[
 {"Name":"y-gate","Tier":"cluster","Order":1,"Selector":{"Service":"y"},"Ingress":[{"From":[{"Service":"z"}],"Action":"pass"},{"Action":"deny"}]},
 {"Name":"y-from-z-80","Selector":{"Service":"y"},"Ingress":[{"From":[{"Service":"z"}],"Ports":[{"Port":80,"Protocol":"tcp"}]}]}]'
run_case "baseline deny, a service policy above it" '[
 {"Name":"no-cluster","Tier":"baseline","Order":1,"Selector":{},"Ingress":[{"From":[{"Entity":"cluster"}],"Action":"deny"}]},
 {"Name":"z-from-x","Selector":{"Service":"z"},"Ingress":[{"From":[{"Service":"x"}]}]}]'
run_case "audit mode: allowed, and logged" '[{"Name":"x-audit","Selector":{"Service":"x"},"Types":["Ingress","Egress"],"Ingress":[],"Egress":[],"Audit":true}]'
# the probes just made: y's task on node 2 -> x's on node 1 audited there
audited() {
	api_get 1 "/policies/log?verdict=audit" | python3 -c '
import json, sys
src, dst = sys.argv[1], sys.argv[2]
sys.exit(0 if any(e.get("Policy") == "x-audit" and e.get("Source", {}).get("Address") == src
                  and e.get("Source", {}).get("Service") == "y"
                  and e.get("Destination", {}).get("Address") == dst
                  for e in map(json.loads, filter(str.strip, sys.stdin))) else 1)' "$(ip_of y 2)" "$XA"
}
wait_until 5 audited && ok "node 1's flow log has y (node 2) -> x audited by x-audit" ||
	fail "no audited flow y (node 2) -> x (node 1): $(api_get 1 '/policies/log?verdict=audit' | tail -n 2)"
run_case "udp port only" '[{"Name":"y-udp-80","Selector":{"Service":"y"},"Ingress":[{"From":[{"Service":"x"}],"Ports":[{"Port":80,"Protocol":"udp"}]}]}]'
run_case "udp port range" '[{"Name":"all-udp-80-81","Selector":{},"Ingress":[{"Ports":[{"Port":80,"EndPort":81,"Protocol":"udp"}]}]}]'
run_case "tcp port and udp range" '[{"Name":"z-mixed","Selector":{"Service":"z"},"Ingress":[{"Ports":[{"Port":80,"Protocol":"tcp"},{"Port":81,"EndPort":85,"Protocol":"udp"}]}]}]'
run_case "tcp 81 and udp 80 only" '[{"Name":"x-cross","Selector":{"Service":"x"},"Ingress":[{"Ports":[{"Port":81,"Protocol":"tcp"},{"Port":80,"Protocol":"udp"}]}]}]'
run_case "egress by service" '[{"Name":"x-to-y","Selector":{"Service":"x"},"Egress":[{"To":[{"Service":"y"}]}]}]'
run_case "egress by service, udp only" '[{"Name":"x-to-z-udp","Selector":{"Service":"x"},"Egress":[{"To":[{"Service":"z"}],"Ports":[{"Protocol":"udp"}]}]}]'
run_case "egress and ingress both needed, disagreeing" '[
 {"Name":"x-to-y-80","Selector":{"Service":"x"},"Egress":[{"To":[{"Service":"y"}],"Ports":[{"Port":80,"Protocol":"tcp"}]}]},
 {"Name":"y-from-x-81","Selector":{"Service":"y"},"Ingress":[{"From":[{"Service":"x"},{"Service":"z"}],"Ports":[{"Port":81,"Protocol":"tcp"}]}]}]'
run_case "egress and ingress both needed, agreeing" '[
 {"Name":"x-to-y-80","Selector":{"Service":"x"},"Egress":[{"To":[{"Service":"y"}],"Ports":[{"Port":80,"Protocol":"tcp"},{"Port":80,"Protocol":"udp"}]}]},
 {"Name":"y-from-x-80","Selector":{"Service":"y"},"Ingress":[{"From":[{"Service":"x"}],"Ports":[{"Port":80,"Protocol":"tcp"},{"Port":80,"Protocol":"udp"}]}]}]'
run_case "several policies add up" '[
 {"Name":"y-from-x-80","Selector":{"Service":"y"},"Ingress":[{"From":[{"Service":"x"}],"Ports":[{"Port":80,"Protocol":"tcp"}]}]},
 {"Name":"y-from-z-81","Selector":{"Service":"y"},"Ingress":[{"From":[{"Service":"z"}],"Ports":[{"Port":81,"Protocol":"udp"}]}]}]'
run_case "an empty rule list and an allow add up" '[
 {"Name":"deny-in","Selector":{"Service":"y"},"Types":["Ingress"],"Ingress":[]},
 {"Name":"y-from-x","Selector":{"Service":"y"},"Ingress":[{"From":[{"Service":"x"}]}]}]'
run_case "a rule without peers" '[{"Name":"y-any-81-udp","Selector":{"Service":"y"},"Ingress":[{"Ports":[{"Port":81,"Protocol":"udp"}]}]}]'
run_case "a rule without ports" '[{"Name":"y-from-z","Selector":{"Service":"y"},"Ingress":[{"From":[{"Service":"z"}]}]}]'
run_case "entity cluster" '[{"Name":"z-cluster","Selector":{"Service":"z"},"Ingress":[{"From":[{"Entity":"cluster"}]}]}]'
run_case "entity world admits no task" '[{"Name":"z-world","Selector":{"Service":"z"},"Ingress":[{"From":[{"Entity":"world"}]}]}]'
run_case "entity node admits no task" '[{"Name":"y-node","Selector":{"Service":"y"},"Ingress":[{"From":[{"Entity":"node"}]}]}]'
run_case "egress to world only" '[{"Name":"x-out-world","Selector":{"Service":"x"},"Egress":[{"To":[{"Entity":"world"}]}]}]'
run_case "labels on egress" '[{"Name":"api-to-db","Selector":{"Labels":{"role":"api"}},"Egress":[{"To":[{"Labels":{"role":"db"}}],"Ports":[{"Port":81,"Protocol":"tcp"},{"Port":81,"Protocol":"udp"}]}]}]'
run_case "every endpoint as a label peer" '[{"Name":"x-from-all-80","Selector":{"Service":"x"},"Ingress":[{"From":[{"Labels":{}}],"Ports":[{"Port":80,"Protocol":"udp"}]}]}]'
run_case "selector by network" '[{"Name":"ovl-from-x","Selector":{"Network":"ovl"},"Ingress":[{"From":[{"Service":"x"}]}]}]'
run_case "peer by network" '[{"Name":"y-from-ovl-81","Selector":{"Service":"y"},"Ingress":[{"From":[{"Network":"ovl"}],"Ports":[{"Port":81,"Protocol":"tcp"}]}]}]'
run_case "peer on another network admits no task" '[{"Name":"y-from-other","Selector":{"Service":"y"},"Ingress":[{"From":[{"Network":"elsewhere"}]}]}]'
run_case "default deny both ways for all" '[{"Name":"lockdown","Selector":{},"Types":["Ingress","Egress"],"Ingress":[],"Egress":[]}]'
run_case "a cluster allow before service isolation" '[
 {"Name":"z-x-first","Tier":"cluster","Order":1,"Selector":{"Service":"z"},"Ingress":[{"From":[{"Service":"x"}],"Action":"allow"}]},
 {"Name":"deny-z","Selector":{"Service":"z"},"Types":["Ingress"],"Ingress":[]}]'
run_case "cluster orders: allow first" '[
 {"Name":"y-allow-x","Tier":"cluster","Order":1,"Selector":{"Service":"y"},"Ingress":[{"From":[{"Service":"x"}],"Action":"allow"}]},
 {"Name":"y-deny-all","Tier":"cluster","Order":2,"Selector":{"Service":"y"},"Ingress":[{"Action":"deny"}]}]'
run_case "cluster orders: deny first" '[
 {"Name":"y-deny-x","Tier":"cluster","Order":1,"Selector":{"Service":"y"},"Ingress":[{"From":[{"Service":"x"}],"Action":"deny"}]},
 {"Name":"y-allow-all","Tier":"cluster","Order":2,"Selector":{"Service":"y"},"Ingress":[{"Action":"allow"}]}]'
run_case "a cluster deny on egress" '[{"Name":"x-not-z","Tier":"cluster","Order":5,"Selector":{"Service":"x"},"Egress":[{"To":[{"Service":"z"}],"Ports":[{"Port":81,"Protocol":"tcp"},{"Port":81,"Protocol":"udp"}],"Action":"deny"}]}]'
run_case "pass with no service policy reaches the baseline" '[
 {"Name":"y-pass-z","Tier":"cluster","Order":1,"Selector":{"Service":"y"},"Ingress":[{"From":[{"Service":"z"}],"Action":"pass"}]},
 {"Name":"no-cluster-in","Tier":"baseline","Order":1,"Selector":{"Service":"y"},"Ingress":[{"From":[{"Entity":"cluster"}],"Action":"deny"}]}]'
run_case "baseline orders" '[
 {"Name":"base-allow-x","Tier":"baseline","Order":1,"Selector":{},"Ingress":[{"From":[{"Service":"x"}],"Action":"allow"}]},
 {"Name":"base-deny-all","Tier":"baseline","Order":2,"Selector":{},"Ingress":[{"Action":"deny"}]}]'
run_case "an audited cluster deny" '[{"Name":"z-deny-x-audit","Tier":"cluster","Order":1,"Selector":{"Service":"z"},"Ingress":[{"From":[{"Service":"x"}],"Action":"deny"}],"Audit":true}]'
run_case "audit beside an enforcing policy" '[
 {"Name":"x-audit","Selector":{"Service":"x"},"Types":["Ingress"],"Ingress":[],"Audit":true},
 {"Name":"x-from-y","Selector":{"Service":"x"},"Ingress":[{"From":[{"Service":"y"}],"Ports":[{"Port":80,"Protocol":"udp"}]}]}]'

log "a policy updated applies on every node"
run_case "before the update" '[{"Name":"y-from-x","Selector":{"Service":"y"},"Ingress":[{"From":[{"Service":"x"}],"Ports":[{"Port":80,"Protocol":"tcp"}]}]}]'
UPD='{"Name":"y-from-x","Selector":{"Service":"y"},"Ingress":[{"From":[{"Service":"x"},{"Labels":{"role":"db"}}],"Ports":[{"Port":81,"Protocol":"tcp"},{"Port":80,"Protocol":"udp"}]}]}'
echo "$UPD" >"$T/upd.json"
echo "[$UPD]" >"$T/pols.json"
A1=$(metric 1 shoal_policy_applies_total) A2=$(metric 2 shoal_policy_applies_total) A3=$(metric 3 shoal_policy_applies_total)
must "updating y-from-x through node 2" node_shoal 2 policy update -f "$T/upd.json" y-from-x
wait_until 20 compiled_since "$A1" "$A2" "$A3" || fail "not every node compiled the update"
check_matrix "policy updated"

log "identities: one per service, the same on every node, held in the store"
ids_json() { etcdctl_get /shoal/identities/; }
etcdctl_get() {
	nsenter --net="/run/netns/$ETCD_NS" curl -s --max-time 5 "$ETCD_EP/v3/kv/range" \
		-d "{\"key\":\"$(printf '%s' "$1" | base64 -w0)\",\"range_end\":\"$(printf '%s' "${1%/}0" | base64 -w0)\"}"
}
ids_json | python3 -c '
import json, sys, base64
kvs = json.load(sys.stdin).get("kvs", [])
seen = {}
for kv in kvs:
    v = json.loads(base64.b64decode(kv["value"]))
    svc = v.get("Service")
    if svc in ("x", "y", "z"):
        seen.setdefault(svc, set()).add(v["ID"])
for s in ("x", "y", "z"):
    print(s, " ".join(str(i) for i in sorted(seen.get(s, []))))' >"$T/ids"
cat "$T/ids"
for s in x y z; do
	n=$(awk -v s=$s '$1 == s {print NF - 1}' "$T/ids")
	expect_eq "$s's tasks on three nodes have one identity in the store" 1 "${n:-0}"
done
# each node's ipcache maps every task address to its service's identity
ipcache_ids() { # NODE: "ADDR ID" lines from node NODE's pinned ipcache
	bpftool -j map dump pinned "/sys/fs/bpf/shoal-it-$TAG-n$1/policy/policy_ipcache" 2>/dev/null |
		python3 -c '
import json, sys
def raw(x):
    return bytes(int(b, 16) for b in x) if isinstance(x, list) else None
for e in json.load(sys.stdin):
    e = e.get("formatted", e)
    k, v = e.get("key"), e.get("value")
    if isinstance(k, list):
        kb, vb = raw(k), raw(v)
        plen, addr, ident = int.from_bytes(kb[:4], "little"), kb[4:8], int.from_bytes(vb[:4], "little")
    else:
        plen, a, ident = k["prefixlen"], k["addr"], v["identity"]
        addr = a.to_bytes(4, "little")
    if plen == 32:
        print("%d.%d.%d.%d %d" % (addr[0], addr[1], addr[2], addr[3], ident))'
}
if command -v bpftool >/dev/null 2>&1 && [ -e "/sys/fs/bpf/shoal-it-$TAG-n1/policy/policy_ipcache" ]; then
	for i in 1 2 3; do ipcache_ids "$i" >"$T/ipc.$i"; done
	for s in x y z; do
		want=$(awk -v s=$s '$1 == s {print $2}' "$T/ids")
		for n in 1 2 3; do
			ip=$(ip_of "$s" "$n")
			for i in 1 2 3; do
				got=$(awk -v a="$ip" '$1 == a {print $2}' "$T/ipc.$i")
				[ "$got" = "$want" ] || fail "node $i: $s's task on node $n ($ip) is identity [$got], the store's is $want"
			done
		done
	done
	ok "every node's ipcache gives each task its service's identity from the store"
else
	log "ipcache not read (no bpftool or pinned map): the identities are checked in the store only"
fi

log "a task leaving and one coming: every node's ipcache follows"
ipcache_has() { # ADDR ID|"": on every node, ADDR is ID ("": absent)
	local i
	for i in 1 2 3; do
		[ "$(ipcache_ids "$i" | awk -v a="$1" '$1 == a {print $2}')" = "$2" ] || return 1
	done
}
if command -v bpftool >/dev/null 2>&1; then
	y_id=$(awk '$1 == "y" {print $2}' "$T/ids")
	old_y=$(awk '$4 == "y" {print $3}' "$T/tasks" | sort)
	must "scaling y to 2" node_shoal 1 service scale y=2
	eight_up() { [ "$(tasks_table | wc -l)" -eq 8 ]; }
	wait_until 30 eight_up || fatal "y's third task did not go: $(tasks_table)"
	gone=$(comm -23 <(echo "$old_y") <(tasks_table | awk '$4 == "y" {print $3}' | sort))
	[ -n "$gone" ] || fatal "no y address went"
	wait_until 10 ipcache_has "$gone" "" && ok "y's task gone ($gone): out of every node's ipcache" ||
		fail "y's gone task $gone still in an ipcache"
	must "scaling y to 3" node_shoal 1 service scale y=3
	wait_until 60 nine_up || fatal "y back to 3 tasks: $(tasks_table)"
	tasks_table | sort -k4,4 -k2,2 >"$T/tasks"
	new=$(comm -13 <(echo "$old_y") <(awk '$4 == "y" {print $3}' "$T/tasks" | sort))
	[ -n "$new" ] || new=$gone
	wait_until 10 ipcache_has "$new" "$y_id" &&
		ok "y's new task ($new): identity $y_id in every node's ipcache" ||
		fail "y's new task $new: not $y_id in every ipcache"
	run_case "x from y, z from role=web, deny y -> x, after y's task moved" \
		"[$X_FROM_Y, $Z_FROM_WEB, $DENY_Y_X]"
fi

log "flow log: a cross-node drop named on the receiving node"
# y on node 2 -> x on node 1: denied by deny-y-x, logged on node 1
out=$(node_shoal 2 exec "$(task_of y 2)" /udptool probe -w 300 "tcp:$(ip_of x 1):80" 2>&1)
expect_eq "y (node 2) -> x (node 1) refused under deny-y-x" "$(ip_of x 1) 80/tcp 0" "$out"
dropped_logged() {
	api_get 1 "/policies/log?verdict=dropped&from=$(ip_of y 2)&to=$(ip_of x 1)" >"$T/flows" || return 1
	python3 -c '
import json, sys
src, dst = sys.argv[1], sys.argv[2]
for line in sys.stdin:
    e = json.loads(line)
    f, t = e.get("Source", {}), e.get("Destination", {})
    if f.get("Address") == src and t.get("Address") == dst and e.get("Policy") == "deny-y-x" and f.get("Service") == "y":
        sys.exit(0)
sys.exit(1)' "$(ip_of y 2)" "$(ip_of x 1)" <"$T/flows" 2>"$T/flows.err"
}
wait_until 10 dropped_logged && ok "node 1's flow log names deny-y-x and the sender's service y (node 2)" ||
	fail "node 1's flow log, from $(ip_of y 2) to $(ip_of x 1): $(api_get 1 '/policies/log' |
		grep -F "\"$(ip_of y 2)\"" | grep -F "\"$(ip_of x 1)\"" | tail -n 3); $(metric 1 shoal_policy_flowlog_lost_total) lost; the query gave $(wc -l <"$T/flows") records; $(tail -n 3 "$T/flows.err")"
expect_contains "explain on node 1 from y's task on node 2" "deny-y-x" \
	"$(node_shoal 1 policy explain "$(ip_of y 2)" "$(ip_of x 1)" 80/tcp 2>&1)"

run_case "every policy removed: all allowed again" '[]'

log "policy create on node 1 -> enforced on node 3"
# a new connection to x's task on node 3 from y's on node 3 (in its network
# namespace) every few ms; prints the
# time the first one failed (its start), then keeps on until one passes again
cat >"$T/prober.py" <<'PY'
import socket, sys, time
ip, want = sys.argv[1], sys.argv[2] == "drop"
end = time.time() + 20
seen = not want  # a drop counts only after a connection passed
while time.time() < end:
    t = time.time()
    s = socket.socket()
    s.settimeout(0.2)
    try:
        s.connect((ip, 80))
        passed = True
    except OSError:
        passed = False
    s.close()
    if passed and not seen and len(sys.argv) > 3:
        open(sys.argv[3], "w").write("ready\n")
    if passed:
        seen = True
    elif want and not seen:
        time.sleep(0.05)
        continue
    if passed != want:
        print("%.6f" % t)
        sys.exit(0)
    time.sleep(0.002)
sys.exit(1)
PY
X3=$(ip_of x 3)
Y3NS=$(node_shoal 3 inspect -f '{{.NetworkSettings.SandboxKey}}' "$(task_of y 3)")
[ -n "$Y3NS" ] || fatal "no sandbox for y's task on node 3"
echo "$ISO_X" >"$T/iso.json"
: >"$T/lat"
for r in $(seq 1 20); do
	rm -f "$T/ready"
	nsenter --net="$Y3NS" python3 "$T/prober.py" "$X3" drop "$T/ready" >"$T/t.drop" &
	pp=$!
	wait_until 10 test -s "$T/ready" || fail "round $r: the prober never got through before the create"
	t0=$(date +%s.%N)
	must "round $r: policy create on node 1" node_shoal 1 policy create -f "$T/iso.json"
	wait "$pp" && python3 -c 'import sys; print("%.1f" % ((float(sys.argv[1]) - float(sys.argv[2])) * 1000))' \
		"$(cat "$T/t.drop")" "$t0" >>"$T/lat" || fail "round $r: x's task on node 3 still answers"
	nsenter --net="$Y3NS" python3 "$T/prober.py" "$X3" pass >/dev/null &
	pp=$!
	must "round $r: policy rm" node_shoal 1 policy rm x-iso
	wait "$pp" || fail "round $r: x's task on node 3 still refused after the policy went"
done
python3 - "$T/lat" <<'PY'
import sys
v = sorted(float(l) for l in open(sys.argv[1]) if l.strip())
if v:
    q = lambda p: v[min(len(v) - 1, int(round(p * (len(v) - 1))))]
    print("policy create on node 1 -> enforced on node 3 (%d rounds): p50 %.1f ms, p99 %.1f ms, max %.1f ms"
          % (len(v), q(0.5), q(0.99), v[-1]))
PY

[ "$CASES" -ge 40 ] || fail "only $CASES policy cases ran"
[ "$FAILURES" -eq 0 ] && echo "all checks passed"
exit 0
