/* SPDX-License-Identifier: Apache-2.0 */
/* The compiler: policies + endpoints -> identities, the address-to-identity
 * cache and, per endpoint and direction, the policy map entries.
 *
 * Every verdict is the evaluator's: for each endpoint and direction the
 * compiler asks policy_eval_desc(), over the policies selecting it, once per
 * identity and elementary port interval (the ports between two consecutive
 * range boundaries those policies name, over which no answer can change), so
 * tiers, orders, pass and deny-over-allow are resolved here and a map hit is
 * final. The POLICY_ID_ANY row holds what an endpoint not known at compile
 * time gets (an unknown endpoint's verdicts), and an identity keeps only the
 * intervals where it differs from that row:
 * an isolated endpoint's default deny is its ANY row. */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/cleanup.h"
#include "policy/policy-internal.h"

struct policy_compiled *policy_compiled_free(struct policy_compiled *c)
{
	if (!c)
		return NULL;
	for (size_t i = 0; i < c->n_eps; i++)
		for (int d = 0; d < 2; d++)
			free(c->eps[i].entries[d]);
	free(c->eps);
	free(c->ids);
	free(c->ipcache);
	free(c);
	return NULL;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(struct policy_compiled *, policy_compiled_free);

/* --- identities --- */

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* An unambiguous key for what selectors see of an endpoint: its service,
 * labels and networks, each length-prefixed. Endpoints with the same key
 * share an identity. */
char *policy_label_set_key(const struct policy_endpoint *ep)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		return NULL;
	const char *svc = ep->service ? ep->service : "";
	fprintf(f, "%c%zu:%s|", ep->service ? 's' : '-', strlen(svc), svc);
	for (size_t i = 0; i < ep->labels.n; i++)
		fprintf(f, "%zu:%s=%zu:%s|", strlen(ep->labels.v[i].key), ep->labels.v[i].key,
			strlen(ep->labels.v[i].value), ep->labels.v[i].value);
	const char **nets = ep->n_networks ? calloc(ep->n_networks, sizeof(*nets)) : NULL;
	if (ep->n_networks && !nets) {
		fclose(f);
		free(buf);
		return NULL;
	}
	for (size_t i = 0; i < ep->n_networks; i++)
		nets[i] = ep->networks[i];
	if (nets)
		qsort(nets, ep->n_networks, sizeof(*nets), str_cmp);
	fputc('#', f);
	for (size_t i = 0; i < ep->n_networks; i++)
		if (i == 0 || strcmp(nets[i], nets[i - 1]) != 0)
			fprintf(f, "%zu:%s|", strlen(nets[i]), nets[i]);
	free(nets);
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

struct ep_key {
	char *key;
	size_t ep; /* index in the model */
};

static int ep_key_cmp(const void *a, const void *b)
{
	const struct ep_key *x = a, *y = b;
	int c = strcmp(x->key, y->key);
	return c ? c : (x->ep > y->ep) - (x->ep < y->ep);
}

static int cidr_cmp(const void *a, const void *b)
{
	const struct policy_cidr *x = a, *y = b;
	if (x->addr != y->addr)
		return x->addr < y->addr ? -1 : 1;
	return (int)x->len - (int)y->len;
}

static size_t count_cidrs(const struct policy_set *set)
{
	size_t n = 0;
	for (size_t i = 0; i < set->n; i++)
		for (int d = 0; d < 2; d++)
			for (size_t k = 0; k < set->v[i]->n_rules[d]; k++) {
				const struct policy_rule *r = &set->v[i]->rules[d][k];
				for (size_t q = 0; q < r->n_peers; q++)
					if (r->peers[q].kind == POLICY_PEER_CIDR)
						n += 1 + r->peers[q].n_except;
			}
	return n;
}

/* --- rows: one identity's verdicts over every protocol and port interval --- */

/* A selecting policy as the evaluator sees it for one identity: only the
 * rules of the direction being compiled that can match that identity. A
 * rule whose peers are all CIDRs matches only an identity whose CIDR lies
 * within one of them; every other rule is kept (the evaluator still
 * checks each rule it is given, so keeping more than needed is harmless).
 * Without this each identity would walk every rule once per port interval:
 * 10,000 CIDR rules are 10,000 identities times 10,000 rules. */
struct shadow {
	struct policy p;      /* first: the evaluator's steps point here */
	const uint16_t *orig; /* a rule's index in p -> its index in the policy */
};

/* One CIDR peer of a rule whose peers are all CIDRs. */
struct cidr_ref {
	uint32_t addr;
	uint32_t rule; /* flat rule number: base[policy] + index */
	uint8_t len;
};

struct ctx {
	const struct policy_set *set; /* all policies */
	/* the policies selecting the endpoint being compiled, for its direction,
	 * with their ids in set: only they can decide its verdicts */
	struct policy **sub;
	uint32_t *sub_ids;
	struct policy_set sub_set;
	uint32_t *ep_ids; /* each endpoint's identity, in model order */
	size_t *ep_grp;	  /* each endpoint's label set, numbered densely from 0 */
	const struct policy_model *m;
	struct policy_compiled *c;
	uint32_t *bounds; /* interval starts, ascending, bounds[0] = 0 */
	size_t n_bounds;
	/* row[slot]: slots 0..n_bounds-1 tcp, then udp, then one for other protocols */
	struct policy_value *any_row, *row;
	/* the shadows (see struct shadow) of the side being compiled */
	struct shadow *gen, *tmp; /* kept for every identity / for the current one */
	struct policy **cur;	  /* what the evaluator is given */
	struct policy_rule *gen_rules, *tmp_rules;
	uint16_t *gen_orig, *tmp_orig;
	size_t *base; /* flat rule number of each selecting policy's first rule */
	struct cidr_ref *cidrs;
	size_t n_cidrs;
	uint32_t *hits;
	bool has_len[33];
	struct policy_entry *out; /* one endpoint and direction */
	size_t n_out, cap_out;
	size_t n_over; /* entries past POLICY_MAX_ENTRIES: counted, not kept */
	struct shoal_err *err;
};

static const struct policy_value miss_value = {
	.verdict = POLICY_VERDICT_ALLOW,
	.rule = POLICY_RULE_NONE,
	.policy = 0,
};

static bool value_eq(const struct policy_value *a, const struct policy_value *b)
{
	return a->verdict == b->verdict && a->rule == b->rule && a->policy == b->policy;
}

/* The value of a decision taken over shadows: rule indices are the
 * policies' own again. */
static struct policy_value decision_value(const struct policy_decision *d)
{
	struct policy_value v = miss_value;
	v.verdict = (uint8_t)d->verdict;
	if (d->n) {
		const struct policy_step *s = &d->chain[d->n - 1];
		const struct shadow *sh = (const struct shadow *)s->policy;
		v.policy = s->policy_id;
		v.rule = s->rule < 0 ? POLICY_RULE_NONE : sh->orig[s->rule];
	}
	return v;
}

static size_t n_slots(const struct ctx *x)
{
	return 2 * x->n_bounds + 1;
}

static int cidr_ref_cmp(const void *a, const void *b)
{
	const struct cidr_ref *x = a, *y = b;
	if (x->len != y->len)
		return (int)x->len - (int)y->len;
	if (x->addr != y->addr)
		return x->addr < y->addr ? -1 : 1;
	return (x->rule > y->rule) - (x->rule < y->rule);
}

static void side_free(struct ctx *x)
{
	free(x->gen);
	free(x->tmp);
	free(x->cur);
	free(x->gen_rules);
	free(x->tmp_rules);
	free(x->gen_orig);
	free(x->tmp_orig);
	free(x->base);
	free(x->cidrs);
	free(x->hits);
	x->gen = x->tmp = NULL;
	x->cur = NULL;
	x->gen_rules = x->tmp_rules = NULL;
	x->gen_orig = x->tmp_orig = NULL;
	x->base = NULL;
	x->cidrs = NULL;
	x->hits = NULL;
	x->n_cidrs = 0;
}

/* The shadows every identity starts from, and the index of the CIDR-only
 * rules, for the policies select_side() chose. */
static int side_prepare(struct ctx *x, enum policy_dir dir)
{
	size_t n = x->sub_set.n, n_rules = 0, n_cidrs = 0;
	for (size_t j = 0; j < n; j++) {
		const struct policy *p = x->sub[j];
		n_rules += p->n_rules[dir];
		for (size_t k = 0; k < p->n_rules[dir]; k++)
			n_cidrs += p->rules[dir][k].n_peers;
	}
	x->gen = calloc(n + 1, sizeof(*x->gen));
	x->tmp = calloc(n + 1, sizeof(*x->tmp));
	x->cur = calloc(n + 1, sizeof(*x->cur));
	x->gen_rules = calloc(n_rules + 1, sizeof(*x->gen_rules));
	x->tmp_rules = calloc(n_rules + 1, sizeof(*x->tmp_rules));
	x->gen_orig = calloc(n_rules + 1, sizeof(*x->gen_orig));
	x->tmp_orig = calloc(n_rules + 1, sizeof(*x->tmp_orig));
	x->base = calloc(n + 1, sizeof(*x->base));
	x->cidrs = calloc(n_cidrs + 1, sizeof(*x->cidrs));
	x->hits = calloc(n_cidrs + 1, sizeof(*x->hits));
	if (!x->gen || !x->tmp || !x->cur || !x->gen_rules || !x->tmp_rules || !x->gen_orig ||
	    !x->tmp_orig || !x->base || !x->cidrs || !x->hits)
		return shoal_err_set(x->err, ENOMEM, "out of memory compiling");
	memset(x->has_len, 0, sizeof(x->has_len));
	size_t gn = 0, flat = 0;
	for (size_t j = 0; j < n; j++) {
		const struct policy *p = x->sub[j];
		size_t start = gn;
		x->base[j] = flat;
		for (size_t k = 0; k < p->n_rules[dir]; k++) {
			const struct policy_rule *r = &p->rules[dir][k];
			bool generic = r->n_peers == 0;
			for (size_t q = 0; q < r->n_peers && !generic; q++)
				generic = r->peers[q].kind != POLICY_PEER_CIDR;
			if (generic) {
				x->gen_rules[gn] = *r;
				x->gen_orig[gn++] = (uint16_t)k;
				continue;
			}
			for (size_t q = 0; q < r->n_peers; q++) {
				x->cidrs[x->n_cidrs++] = (struct cidr_ref){
					.addr = r->peers[q].cidr.addr,
					.rule = (uint32_t)(flat + k),
					.len = r->peers[q].cidr.len,
				};
				x->has_len[r->peers[q].cidr.len] = true;
			}
		}
		flat += p->n_rules[dir];
		x->gen[j].p = *p;
		x->gen[j].p.rules[dir] = x->gen_rules + start;
		x->gen[j].p.n_rules[dir] = gn - start;
		x->gen[j].orig = x->gen_orig + start;
	}
	qsort(x->cidrs, x->n_cidrs, sizeof(*x->cidrs), cidr_ref_cmp);
	return 0;
}

static int u32_cmp(const void *a, const void *b);

/* x->cur for one identity: each selecting policy's shadow with the
 * CIDR-only rules that can match peer merged in, in their order. */
static void side_for_peer(struct ctx *x, enum policy_dir dir, const struct policy_peer_desc *peer)
{
	size_t n = x->sub_set.n, n_hits = 0;
	for (size_t j = 0; j < n; j++)
		x->cur[j] = &x->gen[j].p;
	if (!peer->has_cidr || !x->n_cidrs)
		return;
	for (uint32_t len = 0; len <= peer->cidr.len && len <= 32; len++) {
		if (!x->has_len[len])
			continue;
		uint32_t addr = len ? peer->cidr.addr & (~0U << (32 - len)) : 0;
		size_t lo = 0, hi = x->n_cidrs;
		while (lo < hi) {
			size_t mid = (lo + hi) / 2;
			const struct cidr_ref *c = &x->cidrs[mid];
			if (c->len < len || (c->len == len && c->addr < addr))
				lo = mid + 1;
			else
				hi = mid;
		}
		for (; lo < x->n_cidrs && x->cidrs[lo].len == len && x->cidrs[lo].addr == addr;
		     lo++)
			x->hits[n_hits++] = x->cidrs[lo].rule;
	}
	if (!n_hits)
		return;
	qsort(x->hits, n_hits, sizeof(*x->hits), u32_cmp);
	size_t tn = 0, i = 0, j = 0;
	while (i < n_hits) {
		while (j + 1 < n && x->base[j + 1] <= x->hits[i])
			j++;
		const struct policy *p = x->sub[j];
		const struct shadow *g = &x->gen[j];
		size_t a = 0, start = tn, end = x->base[j] + p->n_rules[dir];
		for (;;) {
			bool more_hits = i < n_hits && x->hits[i] < end;
			if (!more_hits && a == g->p.n_rules[dir])
				break;
			size_t k;
			if (more_hits &&
			    (a == g->p.n_rules[dir] || x->hits[i] - x->base[j] < g->orig[a])) {
				k = x->hits[i] - x->base[j];
				/* one rule, several of its CIDRs containing peer */
				while (i < n_hits && x->hits[i] == x->base[j] + k)
					i++;
			} else {
				k = g->orig[a++];
			}
			x->tmp_rules[tn] = p->rules[dir][k];
			x->tmp_orig[tn++] = (uint16_t)k;
		}
		x->tmp[j].p = *p;
		x->tmp[j].p.rules[dir] = x->tmp_rules + start;
		x->tmp[j].p.n_rules[dir] = tn - start;
		x->tmp[j].orig = x->tmp_orig + start;
		x->cur[j] = &x->tmp[j].p;
	}
}

static void fill_row(struct ctx *x, const struct policy_endpoint *ep, enum policy_dir dir,
		     const struct policy_peer_desc *peer, bool published, struct policy_value *row)
{
	struct policy_decision d;
	struct policy_set set = {.v = (struct policy *const *)x->cur,
				 .n = x->sub_set.n,
				 .ids = x->sub_ids,
				 .selected = true};
	side_for_peer(x, dir, peer);
	for (size_t s = 0; s < n_slots(x); s++) {
		uint8_t proto = s < x->n_bounds	      ? IPPROTO_TCP
				: s < 2 * x->n_bounds ? IPPROTO_UDP
						      : POLICY_PROTO_OTHER;
		uint16_t port =
			proto == POLICY_PROTO_OTHER ? 0 : (uint16_t)x->bounds[s % x->n_bounds];
		policy_eval_desc(&set, ep, dir, peer, published, proto, port, &d);
		row[s] = decision_value(&d);
	}
}

static int emit(struct ctx *x, uint32_t identity, uint8_t proto, uint32_t lo, uint32_t hi,
		const struct policy_value *v)
{
	/* The range as prefix-aligned blocks: at each step the largest that
	 * starts at lo and ends within the range. */
	while (lo <= hi) {
		uint8_t bits = 0;
		while (bits < 16 && (lo & ((2U << bits) - 1)) == 0 && lo + (2U << bits) - 1 <= hi)
			bits++;
		if (x->n_out == POLICY_MAX_ENTRIES) {
			/* counted on, for the error to say how many */
			x->n_over++;
			lo += 1U << bits;
			continue;
		}
		if (x->n_out == x->cap_out) {
			size_t cap = x->cap_out ? 2 * x->cap_out : 64;
			struct policy_entry *e = realloc(x->out, cap * sizeof(*e));
			if (!e)
				return shoal_err_set(x->err, ENOMEM, "out of memory compiling");
			x->out = e;
			x->cap_out = cap;
		}
		x->out[x->n_out++] = (struct policy_entry){
			.identity = identity,
			.proto = proto,
			.port_bits = bits,
			.port = (uint16_t)lo,
			.value = *v,
		};
		lo += 1U << bits;
	}
	return 0;
}

/* Emits the runs of row that differ from base (NULL: the miss value). */
static int emit_row(struct ctx *x, uint32_t identity, const struct policy_value *row,
		    const struct policy_value *base)
{
	for (int p = 0; p < 2; p++) {
		uint8_t proto = p == 0 ? IPPROTO_TCP : IPPROTO_UDP;
		const struct policy_value *r = row + (size_t)p * x->n_bounds;
		const struct policy_value *b = base ? base + (size_t)p * x->n_bounds : NULL;
		size_t i = 0;
		while (i < x->n_bounds) {
			if (value_eq(&r[i], b ? &b[i] : &miss_value)) {
				i++;
				continue;
			}
			size_t j = i + 1;
			while (j < x->n_bounds && value_eq(&r[j], &r[i]) &&
			       !value_eq(&r[j], b ? &b[j] : &miss_value))
				j++;
			uint32_t hi = j < x->n_bounds ? x->bounds[j] - 1 : 65535;
			int e = emit(x, identity, proto, x->bounds[i], hi, &r[i]);
			if (e < 0)
				return e;
			i = j;
		}
	}
	size_t o = 2 * x->n_bounds;
	if (!value_eq(&row[o], base ? &base[o] : &miss_value))
		return emit(x, identity, POLICY_PROTO_OTHER, 0, 0, &row[o]);
	return 0;
}

static struct policy_peer_desc identity_desc(const struct policy_identity *id)
{
	struct policy_peer_desc d = {0};
	if (id->id == POLICY_ID_WORLD) {
		d.kind = POLICY_PARTY_WORLD;
	} else if (id->id == POLICY_ID_NODE) {
		d.kind = POLICY_PARTY_NODE;
	} else if (id->id == POLICY_ID_CLUSTER_UNKNOWN) {
		d.kind = POLICY_PARTY_UNKNOWN;
	} else if (id->id >= POLICY_ID_CIDR_BASE) {
		d.kind = POLICY_PARTY_WORLD;
		d.has_cidr = true;
		d.cidr = id->cidr;
	} else {
		d.kind = POLICY_PARTY_ENDPOINT;
		d.ep = id->ep;
	}
	return d;
}

static int entry_cmp(const void *a, const void *b)
{
	const struct policy_entry *x = a, *y = b;
	if (x->identity != y->identity)
		return x->identity < y->identity ? -1 : 1;
	if (x->proto != y->proto)
		return (int)x->proto - (int)y->proto;
	return (int)x->port - (int)y->port;
}

static int u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return (x > y) - (x < y);
}

/* The policies that select ep for dir (the only ones that can decide its
 * verdicts, so the evaluator is asked about them alone), and the port
 * interval starts of their rules in that direction. */
static void select_side(struct ctx *x, const struct policy_endpoint *ep, enum policy_dir dir)
{
	x->sub_set = (struct policy_set){.v = x->sub, .n = 0, .ids = x->sub_ids};
	size_t m = 0;
	x->bounds[m++] = 0;
	for (size_t i = 0; i < x->set->n; i++) {
		struct policy *p = x->set->v[i];
		if (!p->types[dir] || !policy_selects(p, ep))
			continue;
		x->sub[x->sub_set.n] = p;
		x->sub_ids[x->sub_set.n++] = policy_set_id(x->set, i);
		for (size_t k = 0; k < p->n_rules[dir]; k++) {
			const struct policy_rule *r = &p->rules[dir][k];
			for (size_t q = 0; q < r->n_ports; q++) {
				const struct policy_port *pp = &r->ports[q];
				if (!pp->port)
					continue;
				uint32_t hi = pp->end_port ? pp->end_port : pp->port;
				x->bounds[m++] = pp->port;
				if (hi < 65535)
					x->bounds[m++] = hi + 1;
			}
		}
	}
	qsort(x->bounds, m, sizeof(*x->bounds), u32_cmp);
	size_t u = 0;
	for (size_t i = 0; i < m; i++)
		if (u == 0 || x->bounds[i] != x->bounds[u - 1])
			x->bounds[u++] = x->bounds[i];
	x->n_bounds = u;
}

static int compile_side(struct ctx *x, const struct policy_endpoint *ep, enum policy_dir dir,
			struct policy_ep_program *prog)
{
	x->n_out = 0;
	x->n_over = 0;
	select_side(x, ep, dir);
	side_free(x);
	if (x->sub_set.n && side_prepare(x, dir) < 0)
		return -ENOMEM;
	if (x->sub_set.n) {
		struct policy_peer_desc unknown = {.kind = POLICY_PARTY_UNKNOWN};
		fill_row(x, ep, dir, &unknown, false, x->any_row);
		int r = emit_row(x, POLICY_ID_ANY, x->any_row, NULL);
		for (int pub = 0; r >= 0 && pub <= (dir == POLICY_INGRESS); pub++)
			for (size_t i = 0; r >= 0 && i < x->c->n_ids; i++) {
				const struct policy_identity *id = &x->c->ids[i];
				bool external = id->id == POLICY_ID_WORLD ||
						id->id == POLICY_ID_NODE ||
						id->id >= POLICY_ID_CIDR_BASE;
				/* A published port's clients come from outside. */
				if (pub && !external)
					continue;
				struct policy_peer_desc d = identity_desc(id);
				fill_row(x, ep, dir, &d, pub, x->row);
				r = emit_row(x, id->id | (pub ? POLICY_ID_F_PUBLISHED : 0), x->row,
					     x->any_row);
			}
		if (r < 0)
			return r;
	}
	if (x->n_over)
		return shoal_err_set(x->err, E2BIG,
				     "its %s needs %zu policy map entries, %d fit per endpoint and "
				     "direction",
				     dir == POLICY_INGRESS ? "ingress" : "egress",
				     x->n_out + x->n_over, POLICY_MAX_ENTRIES);
	if (x->n_out) {
		prog->entries[dir] = malloc(x->n_out * sizeof(*x->out));
		if (!prog->entries[dir])
			return shoal_err_set(x->err, ENOMEM, "out of memory compiling");
		memcpy(prog->entries[dir], x->out, x->n_out * sizeof(*x->out));
		qsort(prog->entries[dir], x->n_out, sizeof(*x->out), entry_cmp);
	}
	prog->n_entries[dir] = x->n_out;
	return 0;
}

/* Room for the largest side: every port boundary of every policy. */
static int alloc_work(struct ctx *x)
{
	size_t n = 1;
	for (size_t i = 0; i < x->set->n; i++)
		for (int d = 0; d < 2; d++)
			for (size_t k = 0; k < x->set->v[i]->n_rules[d]; k++)
				n += 2 * x->set->v[i]->rules[d][k].n_ports;
	x->bounds = calloc(n, sizeof(*x->bounds));
	x->any_row = calloc(2 * n + 1, sizeof(*x->any_row));
	x->row = calloc(2 * n + 1, sizeof(*x->row));
	x->sub = calloc(x->set->n + 1, sizeof(*x->sub));
	x->sub_ids = calloc(x->set->n + 1, sizeof(*x->sub_ids));
	if (!x->bounds || !x->any_row || !x->row || !x->sub || !x->sub_ids)
		return -ENOMEM;
	return 0;
}

static int ipcache_cmp(const void *a, const void *b)
{
	const struct policy_ipcache_entry *x = a, *y = b;
	int c = cidr_cmp(&x->prefix, &y->prefix);
	return c ? c : (x->identity > y->identity) - (x->identity < y->identity);
}

static int identity_cmp(const void *a, const void *b)
{
	const struct policy_identity *x = a, *y = b;
	return (x->id > y->id) - (x->id < y->id);
}

static int build_identities(struct ctx *x)
{
	const struct policy_model *m = x->m;
	struct policy_compiled *c = x->c;
	size_t n_cidr_max = count_cidrs(x->set);
	_cleanup_free_ struct policy_cidr *cidrs = calloc(n_cidr_max + 1, sizeof(*cidrs));
	struct ep_key *keys = calloc(m->n_endpoints + 1, sizeof(*keys));
	c->ids = calloc(3 + m->n_endpoints + n_cidr_max, sizeof(*c->ids));
	c->ipcache = calloc(m->n_endpoints + m->n_nodes + n_cidr_max + 1, sizeof(*c->ipcache));
	int r = 0;
	if (!cidrs || !keys || !c->ids || !c->ipcache) {
		r = shoal_err_set(x->err, ENOMEM, "out of memory compiling");
		goto out;
	}
	c->ids[c->n_ids++] = (struct policy_identity){.id = POLICY_ID_WORLD};
	c->ids[c->n_ids++] = (struct policy_identity){.id = POLICY_ID_NODE};
	c->ids[c->n_ids++] = (struct policy_identity){.id = POLICY_ID_CLUSTER_UNKNOWN};

	for (size_t i = 0; i < m->n_endpoints; i++) {
		keys[i].ep = i;
		if (!(keys[i].key = policy_label_set_key(&m->endpoints[i]))) {
			r = shoal_err_set(x->err, ENOMEM, "out of memory compiling");
			goto out;
		}
	}
	qsort(keys, m->n_endpoints, sizeof(*keys), ep_key_cmp);
	/* Numbers given with the model (cluster-wide ones) are kept; the
	 * label sets without one are numbered past the largest given. */
	uint32_t next = POLICY_ID_FIRST_ENDPOINT;
	for (size_t i = 0; i < m->n_endpoints; i++) {
		uint32_t g = m->identities ? m->identities[i] : 0;
		if (g && (g < POLICY_ID_FIRST_ENDPOINT || g >= POLICY_ID_CIDR_BASE)) {
			r = shoal_err_set(x->err, EINVAL,
					  "endpoint %s: identity %u is outside the endpoint "
					  "identities (%u-%u)",
					  m->endpoints[i].name ? m->endpoints[i].name : "?", g,
					  POLICY_ID_FIRST_ENDPOINT, POLICY_ID_CIDR_BASE - 1);
			goto out;
		}
		if (g >= next)
			next = g + 1;
	}
	size_t grp_start = 0;
	uint32_t grp_id = 0;
	for (size_t i = 0; i < m->n_endpoints; i++) {
		const struct policy_endpoint *ep = &m->endpoints[keys[i].ep];
		if (i == 0 || strcmp(keys[i].key, keys[i - 1].key) != 0) {
			/* a new label set: its number is the first given one */
			grp_start = i;
			grp_id = 0;
			for (size_t k = i; k < m->n_endpoints && !grp_id &&
					   (k == i || strcmp(keys[k].key, keys[i].key) == 0);
			     k++)
				grp_id = m->identities ? m->identities[keys[k].ep] : 0;
			if (!grp_id)
				grp_id = next++;
			x->ep_grp[keys[i].ep] = c->n_ids - 3;
			c->ids[c->n_ids++] = (struct policy_identity){.id = grp_id, .ep = ep};
		} else {
			x->ep_grp[keys[i].ep] = x->ep_grp[keys[grp_start].ep];
		}
		uint32_t given = m->identities ? m->identities[keys[i].ep] : 0;
		if (given && given != grp_id) {
			r = shoal_err_set(x->err, EINVAL,
					  "endpoints %s and %s have the same labels and "
					  "identities %u and %u",
					  m->endpoints[keys[grp_start].ep].name ?: "?",
					  ep->name ? ep->name : "?", grp_id, given);
			goto out;
		}
		x->ep_ids[keys[i].ep] = grp_id;
		c->ipcache[c->n_ipcache++] =
			(struct policy_ipcache_entry){.prefix = {ep->addr, 32}, .identity = grp_id};
	}
	/* two label sets given one number: refused (the data plane could not
	 * tell them apart) */
	if (m->identities && c->n_ids > 4) {
		struct policy_identity *sorted = calloc(c->n_ids - 3, sizeof(*sorted));
		if (!sorted) {
			r = shoal_err_set(x->err, ENOMEM, "out of memory compiling");
			goto out;
		}
		memcpy(sorted, c->ids + 3, (c->n_ids - 3) * sizeof(*sorted));
		qsort(sorted, c->n_ids - 3, sizeof(*sorted), identity_cmp);
		for (size_t k = 1; k < c->n_ids - 3 && r == 0; k++)
			if (sorted[k].id == sorted[k - 1].id)
				r = shoal_err_set(x->err, EINVAL,
						  "endpoints %s and %s have different labels and "
						  "the same identity %u",
						  sorted[k - 1].ep->name ?: "?",
						  sorted[k].ep->name ?: "?", sorted[k].id);
		free(sorted);
		if (r < 0)
			goto out;
	}
	for (size_t i = 0; i < m->n_nodes; i++)
		c->ipcache[c->n_ipcache++] = (struct policy_ipcache_entry){
			.prefix = {m->nodes[i].addr, 32}, .identity = POLICY_ID_NODE};

	size_t nc = 0;
	for (size_t i = 0; i < x->set->n; i++)
		for (int d = 0; d < 2; d++)
			for (size_t k = 0; k < x->set->v[i]->n_rules[d]; k++) {
				const struct policy_rule *rl = &x->set->v[i]->rules[d][k];
				for (size_t q = 0; q < rl->n_peers; q++) {
					const struct policy_peer *p = &rl->peers[q];
					if (p->kind != POLICY_PEER_CIDR)
						continue;
					cidrs[nc++] = p->cidr;
					for (size_t e = 0; e < p->n_except; e++)
						cidrs[nc++] = p->except[e];
				}
			}
	qsort(cidrs, nc, sizeof(*cidrs), cidr_cmp);
	uint32_t cid = POLICY_ID_CIDR_BASE;
	for (size_t i = 0; i < nc; i++) {
		if (i && cidr_cmp(&cidrs[i], &cidrs[i - 1]) == 0)
			continue;
		c->ids[c->n_ids++] = (struct policy_identity){.id = cid, .cidr = cidrs[i]};
		/* A /32 that is an endpoint's or a node's address stays theirs. */
		bool taken = false;
		for (size_t k = 0; cidrs[i].len == 32 && k < c->n_ipcache && !taken; k++)
			taken = c->ipcache[k].identity < POLICY_ID_CIDR_BASE &&
				c->ipcache[k].prefix.addr == cidrs[i].addr;
		if (!taken)
			c->ipcache[c->n_ipcache++] =
				(struct policy_ipcache_entry){.prefix = cidrs[i], .identity = cid};
		cid++;
	}
	qsort(c->ipcache, c->n_ipcache, sizeof(*c->ipcache), ipcache_cmp);
out:
	for (size_t i = 0; keys && i < m->n_endpoints; i++)
		free(keys[i].key);
	free(keys);
	return r;
}

uint32_t policy_compiled_identity(const struct policy_compiled *c, uint32_t addr)
{
	int best = -1;
	uint32_t id = POLICY_ID_WORLD;
	for (size_t i = 0; i < c->n_ipcache; i++) {
		const struct policy_ipcache_entry *e = &c->ipcache[i];
		if ((int)e->prefix.len > best &&
		    policy_cidr_within((struct policy_cidr){addr, 32}, e->prefix)) {
			best = e->prefix.len;
			id = e->identity;
		}
	}
	return id;
}

struct slot_order {
	uint16_t id;
	size_t idx;
};

static int slot_cmp(const void *a, const void *b)
{
	const struct slot_order *x = a, *y = b;
	return (int)x->id - (int)y->id;
}

int policy_compile(const struct policy_set *set, const struct policy_model *m,
		   struct policy_compiled **ret, struct shoal_err *err)
{
	for (size_t i = 0; i < m->n_endpoints; i++)
		for (size_t j = 0; j < i; j++) {
			if (m->endpoints[i].id == m->endpoints[j].id)
				return shoal_err_set(err, EINVAL,
						     "endpoints %s and %s share slot %u",
						     m->endpoints[j].name, m->endpoints[i].name,
						     m->endpoints[i].id);
			if (m->endpoints[i].addr == m->endpoints[j].addr)
				return shoal_err_set(err, EINVAL,
						     "endpoints %s and %s share an address",
						     m->endpoints[j].name, m->endpoints[i].name);
		}
	_cleanup_(policy_compiled_freep) struct policy_compiled *c = calloc(1, sizeof(*c));
	if (!c)
		return shoal_err_set(err, ENOMEM, "out of memory compiling");
	struct ctx x = {.set = set, .m = m, .c = c, .err = err};
	struct slot_order *order = NULL;
	size_t *first = NULL;
	int r = -ENOMEM;
	x.ep_grp = calloc(m->n_endpoints + 1, sizeof(*x.ep_grp));
	if (!(x.ep_ids = calloc(m->n_endpoints + 1, sizeof(*x.ep_ids))) || !x.ep_grp) {
		free(x.ep_ids);
		free(x.ep_grp);
		return shoal_err_set(err, ENOMEM, "out of memory compiling");
	}
	if ((r = build_identities(&x)) < 0)
		goto out;
	c->eps = calloc(m->n_endpoints + 1, sizeof(*c->eps));
	if (alloc_work(&x) < 0 || !c->eps) {
		r = shoal_err_set(err, ENOMEM, "out of memory compiling");
		goto out;
	}

	/* Endpoints in slot order; one with the label set of an earlier one gets
	 * a copy of its entries, since selection sees only the label set. */
	order = calloc(m->n_endpoints + 1, sizeof(*order));
	size_t n_ep_ids = c->n_ids; /* at least one more than the label sets */
	first = calloc(n_ep_ids + 1, sizeof(*first));
	if (!order || !first) {
		r = shoal_err_set(err, ENOMEM, "out of memory compiling");
		goto out;
	}
	for (size_t i = 0; i < m->n_endpoints; i++) {
		order[i] = (struct slot_order){m->endpoints[i].id, i};
	}
	qsort(order, m->n_endpoints, sizeof(*order), slot_cmp);
	for (size_t oi = 0; oi < m->n_endpoints; oi++) {
		const struct policy_endpoint *ep = &m->endpoints[order[oi].idx];
		struct policy_ep_program prog = {.ep = ep->id};
		if (m->local_node && (!ep->node || strcmp(ep->node, m->local_node) != 0))
			continue;
		/* first[k]: 0 unseen, 1 seen without entries, 2 + index in c->eps */
		size_t *seen = &first[x.ep_grp[order[oi].idx]];
		const struct policy_ep_program *same = NULL;
		if (*seen == 1)
			continue;
		if (*seen >= 2)
			same = &c->eps[*seen - 2];
		for (int d = 0; d < 2 && r >= 0; d++) {
			if (same) {
				prog.n_entries[d] = same->n_entries[d];
				if (same->n_entries[d] &&
				    !(prog.entries[d] = malloc(same->n_entries[d] *
							       sizeof(struct policy_entry))))
					r = shoal_err_set(err, ENOMEM, "out of memory compiling");
				else if (same->n_entries[d])
					memcpy(prog.entries[d], same->entries[d],
					       same->n_entries[d] * sizeof(struct policy_entry));
			} else {
				r = compile_side(&x, ep, (enum policy_dir)d, &prog);
			}
		}
		if (r < 0) {
			free(prog.entries[0]);
			free(prog.entries[1]);
			r = shoal_err_wrap(err, "endpoint %s", ep->name ? ep->name : "?");
			goto out;
		}
		if (!same)
			*seen = prog.n_entries[0] || prog.n_entries[1] ? 2 + c->n_eps : 1;
		if (prog.n_entries[0] || prog.n_entries[1])
			c->eps[c->n_eps++] = prog;
	}
	*ret = TAKE_PTR(c);
	r = 0;
out:
	free(order);
	free(first);
	free(x.ep_ids);
	free(x.ep_grp);
	free(x.sub);
	free(x.sub_ids);
	side_free(&x);
	free(x.bounds);
	free(x.any_row);
	free(x.row);
	free(x.out);
	return r;
}

/* --- the data plane's lookup, for tests and explain --- */

static const struct policy_entry *lpm(const struct policy_entry *v, size_t n, uint32_t identity,
				      uint8_t proto, uint16_t port)
{
	const struct policy_entry *best = NULL;
	for (size_t i = 0; i < n; i++) {
		const struct policy_entry *e = &v[i];
		if (e->identity != identity || e->proto != proto)
			continue;
		uint32_t mask = ~((1U << e->port_bits) - 1);
		if ((port & mask) == e->port && (!best || e->port_bits < best->port_bits))
			best = e;
	}
	return best;
}

struct policy_value policy_lookup(const struct policy_ep_program *p, enum policy_dir dir,
				  uint32_t identity, uint8_t proto, uint16_t port)
{
	if (!p)
		return miss_value;
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP) {
		proto = POLICY_PROTO_OTHER;
		port = 0;
	}
	const struct policy_entry *e =
		lpm(p->entries[dir], p->n_entries[dir], identity, proto, port);
	if (!e)
		e = lpm(p->entries[dir], p->n_entries[dir], POLICY_ID_ANY, proto, port);
	return e ? e->value : miss_value;
}
