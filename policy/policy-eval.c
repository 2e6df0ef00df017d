/* SPDX-License-Identifier: Apache-2.0 */
/* The evaluator: one flow, one endpoint and direction at a time, with the
 * chain of policies and rules that decided. The compiler calls the same code
 * for every identity, so the maps and `policy explain` cannot disagree. */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy-internal.h"

bool policy_labels_match(const struct policy_labels *want, const struct policy_labels *have)
{
	/* Both sorted by key: one merge pass. */
	size_t j = 0;
	for (size_t i = 0; i < want->n; i++) {
		while (j < have->n && strcmp(have->v[j].key, want->v[i].key) < 0)
			j++;
		if (j == have->n || strcmp(have->v[j].key, want->v[i].key) != 0 ||
		    strcmp(have->v[j].value, want->v[i].value) != 0)
			return false;
	}
	return true;
}

static bool on_network(const struct policy_endpoint *ep, const char *net)
{
	for (size_t i = 0; i < ep->n_networks; i++)
		if (strcmp(ep->networks[i], net) == 0)
			return true;
	return false;
}

bool policy_selects(const struct policy *p, const struct policy_endpoint *ep)
{
	switch (p->selector.kind) {
	case POLICY_SEL_ALL:
		return true;
	case POLICY_SEL_SERVICE:
		return ep->service && strcmp(ep->service, p->selector.name) == 0;
	case POLICY_SEL_LABELS:
		return policy_labels_match(&p->selector.labels, &ep->labels);
	case POLICY_SEL_NETWORK:
		return on_network(ep, p->selector.name);
	}
	return false;
}

static bool peer_matches(const struct policy_peer *p, const struct policy_peer_desc *d,
			 bool published)
{
	bool ep = d->kind == POLICY_PARTY_ENDPOINT;
	switch (p->kind) {
	case POLICY_PEER_SERVICE:
		return ep && d->ep->service && strcmp(d->ep->service, p->name) == 0;
	case POLICY_PEER_LABELS:
		if (d->kind == POLICY_PARTY_UNKNOWN)
			return p->labels.n == 0;
		return ep && policy_labels_match(&p->labels, &d->ep->labels);
	case POLICY_PEER_NETWORK:
		return ep && on_network(d->ep, p->name);
	case POLICY_PEER_CIDR:
		if (d->kind != POLICY_PARTY_WORLD || !d->has_cidr ||
		    !policy_cidr_within(d->cidr, p->cidr))
			return false;
		for (size_t i = 0; i < p->n_except; i++)
			if (policy_cidr_within(d->cidr, p->except[i]))
				return false;
		return true;
	case POLICY_PEER_ENTITY:
		switch (p->entity) {
		case POLICY_ENTITY_WORLD:
			return d->kind == POLICY_PARTY_WORLD;
		case POLICY_ENTITY_NODE:
			return d->kind == POLICY_PARTY_NODE;
		case POLICY_ENTITY_PUBLISHED:
			return published;
		case POLICY_ENTITY_CLUSTER:
			return ep || d->kind == POLICY_PARTY_UNKNOWN;
		}
	}
	return false;
}

static bool rule_matches(const struct policy_rule *r, const struct policy_peer_desc *d,
			 bool published, uint8_t proto, uint16_t port)
{
	bool peer = r->n_peers == 0;
	for (size_t i = 0; !peer && i < r->n_peers; i++)
		peer = peer_matches(&r->peers[i], d, published);
	if (!peer)
		return false;
	if (r->n_ports == 0)
		return true;
	for (size_t i = 0; i < r->n_ports; i++) {
		const struct policy_port *p = &r->ports[i];
		if (p->proto != proto)
			continue;
		if (!p->port)
			return true;
		uint16_t hi = p->end_port ? p->end_port : p->port;
		if (port >= p->port && port <= hi)
			return true;
	}
	return false;
}

static void add_step(struct policy_decision *d, const struct policy_set *set, size_t i,
		     enum policy_dir dir, int rule, enum policy_action action)
{
	if (d->n == POLICY_MAX_CHAIN) {
		d->omitted++;
		return;
	}
	d->chain[d->n++] = (struct policy_step){
		.policy = set->v[i],
		.policy_id = policy_set_id(set, i),
		.dir = dir,
		.rule = rule,
		.action = action,
	};
}

static int strictness(enum policy_action a)
{
	return a == POLICY_ACTION_DENY ? 3 : a == POLICY_ACTION_PASS ? 2 : 1;
}

/* A cluster or baseline tier: the first order with an answer decides; within
 * it each policy's first matching rule, the strictest of them. Returns the
 * action (NONE: no answer) and adds its step. */
static enum policy_action tier_eval(const struct policy_set *set, enum policy_tier tier,
				    const struct policy_endpoint *ep, enum policy_dir dir,
				    const struct policy_peer_desc *peer, bool published,
				    uint8_t proto, uint16_t port, struct policy_decision *d)
{
	int64_t done = -1;
	for (;;) {
		int64_t next = -1;
		for (size_t i = 0; i < set->n; i++) {
			const struct policy *p = set->v[i];
			if (p->tier == tier && p->types[dir] && p->n_rules[dir] &&
			    (int64_t)p->order > done && (next < 0 || (int64_t)p->order < next) &&
			    (set->selected || policy_selects(p, ep)))
				next = p->order;
		}
		if (next < 0)
			return POLICY_ACTION_NONE;
		size_t best_i = 0;
		int best_rule = -1;
		enum policy_action best = POLICY_ACTION_NONE;
		for (size_t i = 0; i < set->n; i++) {
			const struct policy *p = set->v[i];
			if (p->tier != tier || !p->types[dir] || p->order != next ||
			    !(set->selected || policy_selects(p, ep)))
				continue;
			for (size_t k = 0; k < p->n_rules[dir]; k++) {
				const struct policy_rule *r = &p->rules[dir][k];
				if (!rule_matches(r, peer, published, proto, port))
					continue;
				if (best == POLICY_ACTION_NONE ||
				    strictness(r->action) > strictness(best)) {
					best = r->action;
					best_i = i;
					best_rule = (int)k;
				}
				break;
			}
		}
		if (best != POLICY_ACTION_NONE) {
			add_step(d, set, best_i, dir, best_rule, best);
			return best;
		}
		done = next;
	}
}

static enum policy_verdict deny_verdict(const struct policy *p)
{
	return p->audit ? POLICY_VERDICT_AUDIT : POLICY_VERDICT_DENY;
}

void policy_eval_desc(const struct policy_set *set, const struct policy_endpoint *ep,
		      enum policy_dir dir, const struct policy_peer_desc *peer, bool published,
		      uint8_t proto, uint16_t port, struct policy_decision *ret)
{
	memset(ret, 0, sizeof(*ret));
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP) {
		proto = POLICY_PROTO_OTHER;
		port = 0;
	}
	if (dir == POLICY_EGRESS)
		published = false;

	enum policy_action a =
		tier_eval(set, POLICY_TIER_CLUSTER, ep, dir, peer, published, proto, port, ret);
	if (a == POLICY_ACTION_ALLOW || a == POLICY_ACTION_DENY) {
		const struct policy *p = ret->chain[ret->n - 1].policy;
		ret->verdict = a == POLICY_ACTION_ALLOW ? POLICY_VERDICT_ALLOW : deny_verdict(p);
		return;
	}

	size_t isolating = 0, audits = 0;
	for (size_t i = 0; i < set->n; i++) {
		const struct policy *p = set->v[i];
		if (p->tier != POLICY_TIER_SERVICE || !p->types[dir] ||
		    !(set->selected || policy_selects(p, ep)))
			continue;
		isolating++;
		audits += p->audit;
		for (size_t k = 0; k < p->n_rules[dir]; k++)
			if (rule_matches(&p->rules[dir][k], peer, published, proto, port)) {
				add_step(ret, set, i, dir, (int)k, POLICY_ACTION_ALLOW);
				ret->verdict = POLICY_VERDICT_ALLOW;
				return;
			}
	}
	if (isolating) {
		for (size_t i = 0; i < set->n; i++) {
			const struct policy *p = set->v[i];
			if (p->tier == POLICY_TIER_SERVICE && p->types[dir] &&
			    (set->selected || policy_selects(p, ep)))
				add_step(ret, set, i, dir, -1, POLICY_ACTION_DENY);
		}
		ret->verdict = audits == isolating ? POLICY_VERDICT_AUDIT : POLICY_VERDICT_DENY;
		return;
	}

	a = tier_eval(set, POLICY_TIER_BASELINE, ep, dir, peer, published, proto, port, ret);
	if (a == POLICY_ACTION_DENY)
		ret->verdict = deny_verdict(ret->chain[ret->n - 1].policy);
	else
		ret->verdict = POLICY_VERDICT_ALLOW;
}

static struct policy_peer_desc party_desc(const struct policy_party *p)
{
	struct policy_peer_desc d = {.kind = p->kind, .ep = p->ep};
	if (p->kind == POLICY_PARTY_WORLD) {
		d.has_cidr = true;
		d.cidr = (struct policy_cidr){p->addr, 32};
	}
	return d;
}

void policy_eval_side(const struct policy_set *set, const struct policy_endpoint *ep,
		      enum policy_dir dir, const struct policy_party *peer, bool published,
		      uint8_t proto, uint16_t port, struct policy_decision *ret)
{
	struct policy_peer_desc d = party_desc(peer);
	policy_eval_desc(set, ep, dir, &d, published, proto, port, ret);
}

static int verdict_rank(enum policy_verdict v)
{
	return v == POLICY_VERDICT_DENY ? 2 : v == POLICY_VERDICT_AUDIT ? 1 : 0;
}

void policy_eval_flow(const struct policy_set *set, const struct policy_flow *flow,
		      struct policy_flow_result *ret)
{
	memset(ret, 0, sizeof(*ret));
	ret->verdict = POLICY_VERDICT_ALLOW;
	if (flow->src.kind == POLICY_PARTY_ENDPOINT) {
		ret->has_egress = true;
		policy_eval_side(set, flow->src.ep, POLICY_EGRESS, &flow->dst, false, flow->proto,
				 flow->port, &ret->egress);
		ret->verdict = ret->egress.verdict;
	}
	if (flow->dst.kind == POLICY_PARTY_ENDPOINT) {
		ret->has_ingress = true;
		policy_eval_side(set, flow->dst.ep, POLICY_INGRESS, &flow->src, flow->published,
				 flow->proto, flow->port, &ret->ingress);
		if (verdict_rank(ret->ingress.verdict) > verdict_rank(ret->verdict))
			ret->verdict = ret->ingress.verdict;
	}
}

struct policy_party policy_model_party(const struct policy_model *m, uint32_t addr)
{
	for (size_t i = 0; i < m->n_endpoints; i++)
		if (m->endpoints[i].addr == addr)
			return (struct policy_party){.kind = POLICY_PARTY_ENDPOINT,
						     .ep = &m->endpoints[i],
						     .addr = addr};
	for (size_t i = 0; i < m->n_nodes; i++)
		if (m->nodes[i].addr == addr)
			return (struct policy_party){.kind = POLICY_PARTY_NODE, .addr = addr};
	return (struct policy_party){.kind = POLICY_PARTY_WORLD, .addr = addr};
}

static const char *tier_str(enum policy_tier t)
{
	return t == POLICY_TIER_CLUSTER	   ? "cluster"
	       : t == POLICY_TIER_BASELINE ? "baseline"
					   : "service";
}

char *policy_decision_format(const struct policy_decision *d)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		return NULL;
	if (d->n == 0)
		fprintf(f, "no policy decides: allowed by default\n");
	for (size_t i = 0; i < d->n; i++) {
		const struct policy_step *s = &d->chain[i];
		const struct policy *p = s->policy;
		if (s->rule < 0)
			fprintf(f,
				"%s policy %s selects the endpoint for %s and none of its rules "
				"matches: deny%s\n",
				tier_str(p->tier), p->name, policy_dir_str(s->dir),
				p->audit ? " (audit)" : "");
		else if (p->tier == POLICY_TIER_SERVICE)
			fprintf(f, "service policy %s, %s[%d]: allow\n", p->name,
				policy_dir_str(s->dir), s->rule);
		else
			fprintf(f, "%s policy %s (order %u), %s[%d]: %s%s\n", tier_str(p->tier),
				p->name, p->order, policy_dir_str(s->dir), s->rule,
				policy_action_str(s->action),
				s->action == POLICY_ACTION_DENY && p->audit ? " (audit)" : "");
	}
	if (d->omitted)
		fprintf(f, "(%zu more policies)\n", d->omitted);
	fprintf(f, "verdict: %s\n", policy_verdict_str(d->verdict));
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}
