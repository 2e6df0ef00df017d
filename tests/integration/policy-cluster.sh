#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Network policy across nodes (three nodes, etcd, one agent each:
# tests/integration/cluster-lib.sh), on an overlay network:
# - services x, y and z (labels role=web, api, db), one task per node each,
#   an HTTP server on 80 in every task;
# - for each policy case, every task probes every other task on every node
#   (from inside its container: its cgroup and veth), and the matrix must
#   equal the one a small oracle below computes from the policies (written
#   from the model's rules, not from shoal's code): no policy; x isolated
#   (default deny ingress); x from y by service; z from role=web by label;
#   a cluster-tier deny of y -> x beating the allow; every policy removed;
# - identities agree across nodes: each service's tasks have the same
#   identity on all three nodes, held once in the store;
# - the flow log on the receiving node names the policy and the sender's
#   service (a task on another node) of a cross-node drop;
# - the time from `policy create` on node 1 to the first dropped connection
#   at x's task on node 3 (a new connection every few ms from node 3), over
#   some rounds: logged as p50/p99 (measured, not asserted);
# - a task leaving (service scale): its address leaves every node's ipcache;
#   one coming gets its service's identity there, and the table holds.
. "$(dirname "$0")/cluster-lib.sh"

for c in ip nsenter python3 curl; do
	command -v $c >/dev/null 2>&1 || { echo "SKIP: needs $c"; exit $SKIP; }
done

cluster_etcd_start
for i in 1 2 3; do
	cluster_node_start "$i"
	must "loading the test image on node $i" node_shoal "$i" image load -i "$TEST_IMAGE"
done
in_ns() { local i=$1; shift; nsenter --net="/run/netns/$(node_ns "$i")" "$@"; }
api_get() { curl -s --max-time 10 --unix-socket "$(node_sock "$1")" "http://shoal$2"; }

must "an overlay network" node_shoal 1 network create -d overlay --subnet 10.78.0.0/24 ovl
SERVE='mkdir -p /w && echo ok >/w/index.html && exec httpd -f -p 80 -h /w'
for s in x:web y:api z:db; do
	must "service ${s%%:*}" node_shoal 1 service create -d --name "${s%%:*}" --replicas 3 \
		--replicas-max-per-node 1 --network ovl --container-label "role=${s#*:}" \
		busybox sh -c "$SERVE"
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

# One line per probe: "SRC DST 1|0", every task to every other, each source
# from inside its container, all sources at once.
probe_all() {
	local id node targets="" pids=""
	while read -r id node ip _; do targets="$targets $id:$ip"; done <"$T/tasks"
	while read -r id node ip _; do
		(
			script='for t in '"$targets"'; do
				dn=${t%%:*}; dip=${t#*:}
				[ "$dip" = "'"$ip"'" ] && continue
				( if printf "GET / HTTP/1.0\r\n\r\n" | nc -w 1 $dip 80 2>/dev/null | grep -q "^ok"; then r=1; else r=0; fi
				  echo "'"$id"' $dn $r" ) &
			done; wait'
			node_shoal "$node" exec "$id" sh -c "$script" >"$T/probe.$id" 2>/dev/null
		) &
		pids="$pids $!"
	done <"$T/tasks"
	# shellcheck disable=SC2086
	wait $pids
	cat "$T"/probe.* | sort
	rm -f "$T"/probe.*
}

# The oracle: the verdict of every pair from the policies in $T/pols.json.
oracle() {
	python3 - "$T/tasks" "$T/pols.json" <<'PY'
import json, sys
tasks = [l.split() for l in open(sys.argv[1]) if l.strip()]
pols = json.load(open(sys.argv[2]))
eps = {t[0]: {"service": t[3], "labels": {"role": t[4]}, "network": "ovl"} for t in tasks}

def selects(sel, e):
    if "Service" in sel: return sel["Service"] == e["service"]
    if "Labels" in sel: return all(e["labels"].get(k) == v for k, v in sel["Labels"].items())
    if "Network" in sel: return sel["Network"] == e["network"]
    return True

def types(p):
    return p.get("Types") or (["Ingress"] + (["Egress"] if "Egress" in p else []))

def rule_ok(r, d, q):
    peers = r.get("From" if d == "Ingress" else "To")
    return not peers or any(selects(x, q) for x in peers)

def tier(name, e, d, q):
    sel = [p for p in pols if p.get("Tier") == name and selects(p["Selector"], e) and d in types(p)]
    for order in sorted({p.get("Order", 0) for p in sel}):
        answers = []
        for p in (p for p in sel if p.get("Order", 0) == order):
            for r in p.get(d, []):
                if rule_ok(r, d, q):
                    answers.append(r["Action"])
                    break
        for act in ("deny", "pass", "allow"):
            if act in answers: return act
    return None

def side(e, d, q):
    t = tier("cluster", e, d, q)
    if t in ("allow", "deny"): return t == "allow"
    svc = [p for p in pols if "Tier" not in p and selects(p["Selector"], e) and d in types(p)]
    if svc:
        return any(rule_ok(r, d, q) for p in svc for r in p.get(d, []))
    return tier("baseline", e, d, q) != "deny"

for s in sorted(eps):
    for d in sorted(eps):
        if s == d: continue
        ok = side(eps[s], "Egress", eps[d]) and side(eps[d], "Ingress", eps[s])
        print("%s %s %d" % (s, d, 1 if ok else 0))
PY
}

# applied_all N: every node has N policies in force and has compiled since
metric() { api_get "$1" /metrics | awk -v m="$2" '$1 == m {print $2}'; }
applied_all() {
	local i
	for i in 1 2 3; do
		[ "$(metric "$i" shoal_policy_policies)" = "$1" ] || return 1
	done
}

# case NAME POLICIES-JSON: replaces the policies (through node 1) and compares
# the probed matrix with the oracle's, a few times while the maps settle
CASES=0
run_case() {
	local name=$1 i p
	echo "$2" >"$T/pols.json"
	for p in $(node_shoal 1 policy ls -q 2>/dev/null); do
		must "$name: removing policy $p" node_shoal 1 policy rm "$p"
	done
	i=0
	python3 -c 'import json,sys; [print(json.dumps(p)) for p in json.load(open(sys.argv[1]))]' \
		"$T/pols.json" | while read -r p; do
		i=$((i + 1))
		echo "$p" >"$T/pol.$i.json"
		node_shoal 1 policy create -f "$T/pol.$i.json" >/dev/null || echo "refused: $p" >>"$T/refused"
	done
	[ -s "$T/refused" ] && { fail "$name: $(cat "$T/refused")"; rm -f "$T/refused"; }
	local n
	n=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$T/pols.json")
	wait_until 20 applied_all "$n" || fail "$name: not every node has $n policies in force"
	oracle >"$T/want"
	local tries=0
	while :; do
		probe_all >"$T/got"
		cmp -s "$T/want" "$T/got" && break
		tries=$((tries + 1))
		[ $tries -ge 4 ] && break
		sleep 0.5
	done
	CASES=$((CASES + 1))
	if cmp -s "$T/want" "$T/got"; then
		ok "$name: $(grep -c ' 1$' "$T/got") allowed, $(grep -c ' 0$' "$T/got") denied of $(wc -l <"$T/got") pairs, as the oracle says"
	else
		fail "$name: the probed matrix differs from the oracle's (want, got):"
		diff "$T/want" "$T/got" | head -20
	fi
}

ISO_X='{"Name":"x-iso","Selector":{"Service":"x"},"Ingress":[]}'
X_FROM_Y='{"Name":"x-from-y","Selector":{"Service":"x"},"Ingress":[{"From":[{"Service":"y"}]}]}'
Z_FROM_WEB='{"Name":"z-from-web","Selector":{"Service":"z"},"Ingress":[{"From":[{"Labels":{"role":"web"}}]}]}'
DENY_Y_X='{"Name":"deny-y-x","Tier":"cluster","Order":10,"Selector":{"Service":"x"},"Ingress":[{"From":[{"Service":"y"}],"Action":"deny"}]}'

log "the truth table, on three nodes"
run_case "no policy" '[]'
run_case "x isolated" "[$ISO_X]"
run_case "x from y (by service)" "[$X_FROM_Y]"
run_case "x from y, z from role=web (by label)" "[$X_FROM_Y, $Z_FROM_WEB]"
run_case "a cluster-tier deny y -> x beats the allow" "[$X_FROM_Y, $Z_FROM_WEB, $DENY_Y_X]"

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
node_shoal 2 exec "$(task_of y 2)" sh -c "printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 1 $(ip_of x 1) 80" >/dev/null 2>&1 &&
	fail "y (node 2) -> x (node 1) passed under deny-y-x"
dropped_logged() {
	api_get 1 "/policies/log?verdict=dropped" | python3 -c '
import json, sys
src, dst = sys.argv[1], sys.argv[2]
for line in sys.stdin:
    e = json.loads(line)
    f, t = e.get("Source", {}), e.get("Destination", {})
    if f.get("Address") == src and t.get("Address") == dst and e.get("Policy") == "deny-y-x" and f.get("Service") == "y":
        sys.exit(0)
sys.exit(1)' "$(ip_of y 2)" "$(ip_of x 1)"
}
wait_until 5 dropped_logged && ok "node 1's flow log names deny-y-x and the sender's service y (node 2)" ||
	fail "node 1's flow log: $(api_get 1 '/policies/log?verdict=dropped' | tail -n 3)"
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

[ "$CASES" -ge 7 ] || fail "only $CASES policy cases ran"
[ "$FAILURES" -eq 0 ] && echo "all checks passed"
exit 0
