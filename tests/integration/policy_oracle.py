# SPDX-License-Identifier: Apache-2.0
"""The policy tests' oracle: the expected verdict of every probed pair.

    policy_oracle.py POLICIES.json PARTIES [--outside ADDR]...

POLICIES.json is a JSON array of policies in the API's form; PARTIES has one
endpoint a line, "NAME ADDR SERVICE ROLE NETWORK" (the endpoint's labels are
{"role": ROLE}); each --outside ADDR is a source outside the cluster. Prints
"SRC DST PORT/PROTO 1|0" for every source (endpoint or outside address) and
every other endpoint on TCP and UDP 80 and 81, sorted.

Written from the model's rules as policy/policy.h and README describe them,
not from shoal's code, so that the two can be compared: cluster tier by
order (deny, then pass, then allow among one order; the first order with an
answer decides), then the service policies (isolating once any selects the
endpoint in that direction), then the baseline tier, else allowed; an
audited deny passes; CIDR peers name addresses outside the cluster only; a
flow needs the sender's egress (when it is an endpoint) and the receiver's
ingress.
"""
import ipaddress
import json
import sys

PORTS = ((80, "tcp"), (81, "tcp"), (80, "udp"), (81, "udp"))


def load(argv):
    pols = json.load(open(argv[1]))
    eps = {}
    for line in open(argv[2]):
        f = line.split()
        if not f:
            continue
        name, addr, svc, role, net = f[:5]
        eps[name] = {"ep": True, "addr": addr, "svc": svc, "labels": {"role": role}, "net": net}
    outside = []
    rest = argv[3:]
    while rest:
        if rest[0] != "--outside" or len(rest) < 2:
            sys.exit("usage: policy_oracle.py POLICIES.json PARTIES [--outside ADDR]...")
        outside.append(rest[1])
        rest = rest[2:]
    return pols, eps, outside


def labels_match(want, have):
    return all(have.get(k) == v for k, v in want.items())


def selects(p, e):
    s = p.get("Selector", {})
    if "Service" in s:
        return e["svc"] == s["Service"]
    if "Labels" in s:
        return labels_match(s["Labels"], e["labels"])
    if "Network" in s:
        return e["net"] == s["Network"]
    return True


def types(p):
    return p.get("Types") or (["Ingress"] + (["Egress"] if p.get("Egress") else []))


def in_cidr(addr, c):
    return ipaddress.ip_address(addr) in ipaddress.ip_network(c)


def peer_ok(peer, q):
    if "Service" in peer:
        return q["ep"] and q["svc"] == peer["Service"]
    if "Labels" in peer:
        return q["ep"] and labels_match(peer["Labels"], q["labels"])
    if "Network" in peer:
        return q["ep"] and q["net"] == peer["Network"]
    if "CIDR" in peer:
        return (not q["ep"] and in_cidr(q["addr"], peer["CIDR"])
                and not any(in_cidr(q["addr"], x) for x in peer.get("Except", [])))
    ent = peer.get("Entity")
    return (ent == "world" and not q["ep"]) or (ent == "cluster" and q["ep"])


def port_ok(rule, port, proto):
    ps = rule.get("Ports")
    if not ps:
        return True
    for p in ps:
        if p.get("Protocol", "tcp") != proto:
            continue
        lo = p.get("Port", 0)
        hi = p.get("EndPort", lo)
        if lo == 0 or lo <= port <= hi:
            return True
    return False


def rule_ok(rule, d, q, port):
    peers = rule.get("From" if d == "Ingress" else "To")
    return (not peers or any(peer_ok(x, q) for x in peers)) and port_ok(rule, port[0], port[1])


def tier(pols, name, e, d, q, port):
    """allow, deny, pass or None, as the tier decides"""
    sel = [p for p in pols if p.get("Tier") == name and selects(p, e) and d in types(p)]
    for order in sorted({p.get("Order", 0) for p in sel}):
        answers = []
        for p in (p for p in sel if p.get("Order", 0) == order):
            for r in p.get(d, []):
                if rule_ok(r, d, q, port):
                    answers.append((r["Action"], p.get("Audit", False)))
                    break
        for act in ("deny", "pass", "allow"):
            hits = [a for a in answers if a[0] == act]
            if hits:
                if act == "deny" and all(a[1] for a in hits):
                    return "allow"  # audit: passed
                return act
    return None


def side(pols, e, d, q, port):
    t = tier(pols, "cluster", e, d, q, port)
    if t in ("allow", "deny"):
        return t == "allow"
    svc = [p for p in pols if "Tier" not in p and selects(p, e) and d in types(p)]
    if svc:
        if any(rule_ok(r, d, q, port) for p in svc for r in p.get(d, [])):
            return True
        return all(p.get("Audit", False) for p in svc)
    return tier(pols, "baseline", e, d, q, port) != "deny"


def main(argv):
    pols, eps, outside = load(argv)
    parties = dict(eps)
    for a in outside:
        parties[a] = {"ep": False, "addr": a}
    out = []
    for sn, s in parties.items():
        for dn, dst in eps.items():
            if sn == dn:
                continue
            for port in PORTS:
                ok = ((not s["ep"] or side(pols, s, "Egress", dst, port))
                      and side(pols, dst, "Ingress", s, port))
                out.append("%s %s %d/%s %d" % (sn, dn, port[0], port[1], 1 if ok else 0))
    print("\n".join(sorted(out)))


if __name__ == "__main__":
    main(sys.argv)
