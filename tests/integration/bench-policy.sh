#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `shoal bench policy`, a small case, from a network namespace this script
# makes (unshare), so nothing leaves it:
#  - every figure is present and sane: a rate and latencies for no policy,
#    shoal's eBPF, iptables and nftables at each rule count, their ratios to
#    no policy, the compiled map entries (at least one per rule), the veth
#    program's per-packet cost (an established flow cheaper than a new one:
#    its conntrack entry decides), create-to-enforcement p50 <= p99;
#  - the bench enforces what it measures: it refuses to report when a
#    backend lets an unallowed source through (checked inside the bench);
#  - nothing is left behind: its namespaces, veths and rules are gone, this
#    namespace's iptables and nftables rulesets are unchanged; also after
#    Ctrl-C in the middle of a run;
#  - bad flags are refused with the flag named; compare reads the result.
set -uo pipefail
SKIP=77
: "${SHOAL_BUILD:?SHOAL_BUILD must point at the build directory}"
SHOAL_BIN="$SHOAL_BUILD/bin/shoal"
ECHO_BIN="$SHOAL_BUILD/bin/shoal-bench-echo"
for f in "$SHOAL_BIN" "$ECHO_BIN"; do
	[ -x "$f" ] || { echo "FAIL: $f is missing (build first)"; exit 1; }
done
command -v python3 >/dev/null || { echo "SKIP: needs python3 (JSON checks)"; exit $SKIP; }
for c in ip iptables-restore iptables-save nft; do
	command -v "$c" >/dev/null || { echo "SKIP: needs $c"; exit $SKIP; }
done

if [ -z "${BENCH_POLICY_IN_NS:-}" ]; then
	[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root (namespaces, eBPF, iptables)"; exit $SKIP; }
	if ! unshare --net true 2>/dev/null; then
		echo "SKIP: cannot make a network namespace"
		exit $SKIP
	fi
	BENCH_POLICY_IN_NS=1 exec unshare --net bash "$0" "$@"
fi
ip link set lo up || { echo "FAIL: lo up in the test namespace"; exit 1; }

T=$(mktemp -d /tmp/shoal-bench-policy-test.XXXXXX)
export SHOAL_HOST="unix://$T/no-agent.sock"
FAILURES=0
BG=
log() { printf '%s %s\n' "$(date +%T.%3N)" "$*"; }
fail() { log "FAIL: $*"; FAILURES=$((FAILURES + 1)); }
ok() { log "ok: $*"; }
leftovers() { # the namespaces of bench pid $1 (all when empty)
	ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^shoal-pb${1:-[0-9]+}-[cs]$"
}
cleanup() {
	if [ -n "$BG" ]; then
		kill "$BG" 2>/dev/null && wait "$BG" 2>/dev/null
	fi
	# a bench that died without cleaning: remove what it made
	for ns in $(leftovers "${BENCH_PID:-}"); do
		ip netns delete "$ns" 2>/dev/null
	done
	rm -rf "$T"
}
trap cleanup EXIT

iptables-save 2>/dev/null | grep -v '^#' >"$T/ipt.before"
nft list ruleset >"$T/nft.before" 2>&1

# ---- a small run: every figure ----
START=$(date +%s)
"$SHOAL_BIN" bench policy --rules 10,300 --duration 1 --warmup 0.3 --rounds 2 \
	--connections 2 --enforce-rounds 10 --json -o "$T/r.json" >"$T/out.json" 2>"$T/err"
rc=$?
log "bench policy took $(($(date +%s) - START)) s"
if [ $rc -ne 0 ]; then
	fail "shoal bench policy exited $rc: $(cat "$T/err")"
else
	ok "shoal bench policy ran"
fi
python3 - "$T/r.json" "$T/out.json" <<'EOF' && ok "every figure present and sane" || fail "figures (above)"
import json, sys
r = json.load(open(sys.argv[1]))
assert json.load(open(sys.argv[2])) == r, "the -o file and --json output differ"
bad = []
def check(cond, what):
    if not cond:
        bad.append(what)
check(r.get("suite") == "policy", "suite")
check(r.get("schema_version") == 1, "schema_version")
check(isinstance(r.get("env"), dict), "env")
v = {x["name"]: x for x in r.get("variants", [])}
for n in (10, 300):
    for e in ("none", "shoal", "iptables", "nftables"):
        name = "%s-%d" % (e, n)
        x = v.get(name)
        if x is None:
            bad.append("variant %s missing" % name)
            continue
        check(x.get("per_sec", 0) > 0, name + " per_sec")
        lat = x.get("latency_us", {})
        check(0 < lat.get("p50", 0) <= lat.get("p99", 0), name + " p50 <= p99")
        check(x.get("enforcer") == e, name + " enforcer")
        check(x.get("rules") == (0 if e == "none" else n), name + " rules")
        if e != "none":
            ratio = x.get("ratio_to_none", 0)
            check(0.05 < ratio < 20, "%s ratio_to_none %s" % (name, ratio))
            rs = x.get("rounds", [])
            check(len(rs) == 2, name + " has a round per pair")
            for k in rs:
                check(abs(k["ratio"] - k["per_sec"] / k["none_per_sec"]) < 1e-6 * k["ratio"],
                      name + " a pair's ratio is its rate / the slice without rules")
            med = sorted(k["ratio"] for k in rs)
            med = (med[0] + med[-1]) / 2 if len(med) == 2 else 0
            check(abs(ratio - med) < 1e-6 * med, name + " ratio_to_none is the pairs' median")
            check(x.get("install_ms", -1) >= 0, name + " install_ms")
    ent = r.get("map_entries", {}).get(str(n), 0)
    check(ent >= n, "map_entries[%d] = %s, fewer than the rules" % (n, ent))
    p = r.get("packet_ns", {})
    new, sec, est = p.get("new_%d" % n, 0), p.get("second_%d" % n, 0), p.get("established_%d" % n, 0)
    check(0 < new < 1e6 and 0 < sec < 1e6 and 0 < est < 1e6, "packet_ns at %d: %s %s %s" % (n, new, sec, est))
    check(est < new, "established (%s ns) not cheaper than a new flow (%s ns) at %d" % (est, new, n))
en = r.get("enforce_ms", {})
check(en.get("rounds") == 10, "enforce_ms rounds")
check(0 <= en.get("p50", -1) <= en.get("p99", 0) <= en.get("max", 0), "enforce_ms p50 <= p99 <= max")
check(en.get("p99", 1e9) < 2000, "enforce_ms p99 under the prober's give-up")
t = r.get("config", {}).get("targets", {})
check(t.get("ratio_to_none_at_10000") == 0.98 and t.get("enforce_p99_ms") == 100, "targets")
if bad:
    print("\n".join(bad))
    sys.exit(1)
print("rates:", {k: round(x["per_sec"]) for k, x in v.items()})
print("packet_ns:", r["packet_ns"], "enforce_ms:", en)
EOF

left=$(leftovers)
[ -z "$left" ] && ok "no namespace left" || fail "namespaces left: $left"
ip -br link | grep -qE '^pb[cs][0-9]+' && fail "a veth left" || ok "no veth left"
iptables-save 2>/dev/null | grep -v '^#' >"$T/ipt.after"
nft list ruleset >"$T/nft.after" 2>&1
cmp -s "$T/ipt.before" "$T/ipt.after" && ok "this namespace's iptables unchanged" ||
	fail "iptables changed: $(diff "$T/ipt.before" "$T/ipt.after")"
cmp -s "$T/nft.before" "$T/nft.after" && ok "this namespace's nftables unchanged" ||
	fail "nftables changed: $(diff "$T/nft.before" "$T/nft.after")"

# the table as people read it: the targets beside the figures
"$SHOAL_BIN" bench compare "$T/r.json" "$T/r.json" >"$T/cmp" 2>&1 &&
	grep -q 'shoal-300' "$T/cmp" && ok "bench compare reads the result" ||
	fail "bench compare: $(cat "$T/cmp")"

# ---- Ctrl-C in the middle: everything removed ----
"$SHOAL_BIN" bench policy --rules 10,1000 --duration 5 --warmup 0 --rounds 1 -q \
	-o "$T/int.json" >"$T/int.out" 2>&1 &
BG=$!
BENCH_PID=$BG
for _ in $(seq 100); do
	[ -n "$(leftovers "$BG")" ] && pgrep -f -- "--target 10.99.0.1" >/dev/null && break
	sleep 0.1
done
[ -n "$(leftovers "$BG")" ] || fail "the bench's namespaces never appeared"
sleep 1
kill -INT "$BG"
wait "$BG"
rc=$?
BG=
[ $rc -ne 0 ] && ok "interrupted bench exits $rc" || fail "interrupted bench exited 0"
grep -q interrupted "$T/int.out" && ok "it says it was interrupted" || fail "no message: $(cat "$T/int.out")"
[ ! -e "$T/int.json" ] && ok "no result written" || fail "a result written after Ctrl-C"
left=$(leftovers "$BENCH_PID")
[ -z "$left" ] && ok "no namespace left after Ctrl-C" || fail "left after Ctrl-C: $left"
pgrep -f "shoal-bench-echo -a 10.99.0.1" >/dev/null && fail "echo server left" || ok "echo server gone"
ls -d /tmp/shoal-bench-policy.* 2>/dev/null | while read -r d; do
	[ -d "$d" ] && fail "temporary directory left: $d"
done

# ---- bad flags ----
for args in "--rules 0" "--rules 10,x" "--connections 0" "--duration nope" "extra"; do
	# shellcheck disable=SC2086
	if "$SHOAL_BIN" bench policy $args >"$T/bad" 2>&1; then
		fail "bench policy $args accepted"
	else
		flag=${args%% *}
		grep -q -- "${flag#--}" "$T/bad" || grep -q "no arguments" "$T/bad" &&
			ok "bench policy $args refused: $(head -1 "$T/bad")" ||
			fail "bench policy $args: unclear error: $(cat "$T/bad")"
	fi
done

if [ "$FAILURES" -ne 0 ]; then
	log "$FAILURES failure(s)"
	exit 1
fi
log "all passed"
