/* SPDX-License-Identifier: Apache-2.0 */
/* The compiler and the map diff. The compiled entries must give, through the
 * data plane's lookup order, the evaluator's verdict for every flow: checked
 * over generated policy sets, every endpoint, direction, peer, protocol and
 * boundary port. The diff's operations, applied one by one to a simulated
 * map, must leave every endpoint on its whole old or whole new entries. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "policy/policy.h"

#define ARRAY_LEN(a)   (sizeof(a) / sizeof((a)[0]))
#define IP(a, b, c, d) ((uint32_t)(a) << 24 | (b) << 16 | (c) << 8 | (d))

static const char *const web_nets[] = {"front", "back"};
static const char *const front_nets[] = {"front"};
static const char *const back_nets[] = {"back"};
static struct policy_label web_labels[] = {{"app", "web"}, {"tier", "backend"}};
static struct policy_label fe_labels[] = {{"tier", "edge"}};
static struct policy_label db_labels[] = {{"tier", "data"}};
static struct policy_label ctr_labels[] = {{"role", "ctr"}};

/* web.1 and web.2 share a label set (one identity), on two nodes; ctr has no
 * service; slots are not in model order. */
static const struct policy_endpoint endpoints[] = {
	{7, "web.1", "web", {web_labels, 2}, web_nets, 2, IP(10, 1, 0, 2), "n1"},
	{2, "web.2", "web", {web_labels, 2}, web_nets, 2, IP(10, 1, 0, 3), "n2"},
	{3, "frontend.1", "frontend", {fe_labels, 1}, front_nets, 1, IP(10, 1, 0, 10), "n1"},
	{4, "db.1", "db", {db_labels, 1}, back_nets, 1, IP(10, 1, 0, 20), "n2"},
	{5, "ctr", NULL, {ctr_labels, 1}, front_nets, 1, IP(10, 1, 0, 30), "n1"},
	{9, "plain", NULL, {NULL, 0}, NULL, 0, IP(10, 1, 0, 40), "n2"},
};
#define N_EPS (sizeof(endpoints) / sizeof(endpoints[0]))
static const struct policy_node nodes[] = {{"n1", IP(192, 168, 1, 1)}, {"n2", IP(192, 168, 1, 2)}};
static const struct policy_model model = {
	.endpoints = endpoints, .n_endpoints = N_EPS, .nodes = nodes, .n_nodes = 2};

static const uint32_t world_addrs[] = {
	IP(8, 8, 8, 8),	   IP(10, 2, 3, 4),	  IP(10, 9, 3, 4),    IP(10, 9, 0, 0),
	IP(10, 9, 3, 255), IP(10, 255, 255, 255), IP(192, 168, 5, 5), IP(192, 168, 7, 1),
	IP(172, 16, 0, 1), IP(172, 16, 0, 2),	  IP(0, 0, 0, 1),     IP(255, 255, 255, 255),
	IP(10, 1, 0, 99),
};

static const uint16_t ports[] = {0,    1,    52,   53,	 54,   79,   80,   81,	 442,
				 443,  444,  1023, 1024, 1025, 5432, 7999, 8000, 8049,
				 8050, 8063, 8064, 8100, 8101, 8200, 8201, 9000, 65535};
static const uint8_t protos[] = {IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP};

static struct policy *parse(const char *text)
{
	char *t = strdup(text);
	for (char *p = t; *p; p++)
		if (*p == '\'')
			*p = '"';
	struct policy *p = NULL;
	struct shoal_err err = {0};
	if (policy_from_text(t, strlen(t), &p, &err) < 0)
		fail_msg("policy rejected: %s: %s", err.msg, t);
	free(t);
	return p;
}

static const struct policy_ep_program *program(const struct policy_compiled *c, uint16_t ep)
{
	for (size_t i = 0; i < c->n_eps; i++)
		if (c->eps[i].ep == ep)
			return &c->eps[i];
	return NULL;
}

static struct policy_value eval_value(const struct policy_decision *d)
{
	struct policy_value v = {.verdict = (uint8_t)d->verdict, .rule = POLICY_RULE_NONE};
	if (d->n) {
		v.policy = d->chain[d->n - 1].policy_id;
		v.rule = d->chain[d->n - 1].rule < 0 ? POLICY_RULE_NONE
						     : (uint16_t)d->chain[d->n - 1].rule;
	}
	return v;
}

/* Every peer the enumeration tries, as the evaluator and the data plane see it. */
struct probe_peer {
	struct policy_party party;
	uint32_t identity; /* through the compiled ipcache */
};

static size_t peers(const struct policy_compiled *c, struct probe_peer *out)
{
	size_t n = 0;
	for (size_t i = 0; i < N_EPS; i++)
		out[n++] = (struct probe_peer){
			{POLICY_PARTY_ENDPOINT, &endpoints[i], endpoints[i].addr},
			policy_compiled_identity(c, endpoints[i].addr)};
	for (size_t i = 0; i < 2; i++)
		out[n++] = (struct probe_peer){{POLICY_PARTY_NODE, NULL, nodes[i].addr},
					       policy_compiled_identity(c, nodes[i].addr)};
	out[n++] = (struct probe_peer){{POLICY_PARTY_UNKNOWN, NULL, 0}, POLICY_ID_CLUSTER_UNKNOWN};
	for (size_t i = 0; i < sizeof(world_addrs) / sizeof(world_addrs[0]); i++)
		out[n++] = (struct probe_peer){{POLICY_PARTY_WORLD, NULL, world_addrs[i]},
					       policy_compiled_identity(c, world_addrs[i])};
	return n;
}

typedef struct policy_value (*lookup_fn)(void *ctx, uint16_t ep, enum policy_dir dir,
					 uint32_t identity, uint8_t proto, uint16_t port);

static struct policy_value compiled_lookup(void *ctx, uint16_t ep, enum policy_dir dir,
					   uint32_t identity, uint8_t proto, uint16_t port)
{
	return policy_lookup(program(ctx, ep), dir, identity, proto, port);
}

/* Evaluator == lookup over every flow; returns the number of flows checked. */
static size_t enumerate(const struct policy_set *set, const struct policy_compiled *c, lookup_fn fn,
			void *ctx, const char *what)
{
	struct probe_peer pp[64];
	size_t np = peers(c, pp), checked = 0;
	for (size_t e = 0; e < N_EPS; e++)
		for (int dir = 0; dir < 2; dir++)
			for (size_t k = 0; k < np; k++)
				for (int pub = 0; pub < 2; pub++) {
					bool external = pp[k].party.kind == POLICY_PARTY_WORLD ||
							pp[k].party.kind == POLICY_PARTY_NODE;
					if (pub && (dir != POLICY_INGRESS || !external))
						continue;
					uint32_t id =
						pp[k].identity | (pub ? POLICY_ID_F_PUBLISHED : 0);
					for (size_t q = 0; q < sizeof(protos); q++)
						for (size_t pi = 0; pi < ARRAY_LEN(ports); pi++) {
							struct policy_decision d;
							policy_eval_side(set, &endpoints[e], dir,
									 &pp[k].party, pub,
									 protos[q], ports[pi], &d);
							struct policy_value want = eval_value(&d);
							struct policy_value got =
								fn(ctx, endpoints[e].id, dir, id,
								   protos[q], ports[pi]);
							checked++;
							if (got.verdict == want.verdict &&
							    got.policy == want.policy &&
							    got.rule == want.rule)
								continue;
							fail_msg("%s: %s %s peer %zu (identity "
								 "%#x)%s %u/%s: evaluator %s "
								 "policy %u rule %u, lookup %s "
								 "policy %u rule %u",
								 what, endpoints[e].name,
								 policy_dir_str(dir), k, id,
								 pub ? " published" : "", ports[pi],
								 policy_proto_str(protos[q]),
								 policy_verdict_str(want.verdict),
								 want.policy, want.rule,
								 policy_verdict_str(got.verdict),
								 got.policy, got.rule);
						}
				}
	return checked;
}

/* --- generated policy sets --- */

static uint64_t rng_state;

static uint32_t rnd(uint32_t n)
{
	rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
	return (uint32_t)(rng_state >> 33) % n;
}

static const char *const peer_pool[] = {
	"{'Service':'web'}",
	"{'Service':'frontend'}",
	"{'Service':'db'}",
	"{'Labels':{'tier':'edge'}}",
	"{'Labels':{'app':'web','tier':'backend'}}",
	"{'Labels':{}}",
	"{'Network':'back'}",
	"{'Network':'front'}",
	"{'CIDR':'10.0.0.0/8','Except':['10.9.0.0/16']}",
	"{'CIDR':'10.9.3.0/24'}",
	"{'CIDR':'192.168.0.0/16','Except':['192.168.5.0/24','192.168.1.0/24']}",
	"{'CIDR':'0.0.0.0/0','Except':['10.0.0.0/8']}",
	"{'CIDR':'172.16.0.1/32'}",
	"{'CIDR':'10.1.0.2/32'}",
	"{'Entity':'world'}",
	"{'Entity':'node'}",
	"{'Entity':'cluster'}",
	"{'Entity':'published'}",
};

static const char *const port_pool[] = {
	"{'Port':80}",
	"{'Port':8000,'EndPort':8100,'Protocol':'udp'}",
	"{'Port':8050,'EndPort':8200,'Protocol':'tcp'}",
	"{'Protocol':'udp'}",
	"{'Port':443}",
	"{'Port':1,'EndPort':1024,'Protocol':'tcp'}",
	"{'Port':53,'Protocol':'udp'}",
	"{'Port':8064,'EndPort':8064,'Protocol':'udp'}",
};

static const char *const selector_pool[] = {
	"{}",
	"{'Service':'web'}",
	"{'Service':'db'}",
	"{'Labels':{'tier':'edge'}}",
	"{'Network':'front'}",
	"{'Labels':{'role':'ctr'}}",
};

static void cat(char *buf, size_t len, const char *s)
{
	size_t n = strlen(buf);
	snprintf(buf + n, len - n, "%s", s);
}

/* A random policy; NULL when it came out invalid (overlapping ports, an
 * Entity published in an egress rule), which the caller counts. */
static struct policy *gen_policy(int idx)
{
	char buf[4096], tmp[128];
	int tier = (int)rnd(10); /* 0-4 service, 5-7 cluster, 8-9 baseline */
	snprintf(buf, sizeof(buf), "{'Name':'p%d','Selector':%s", idx,
		 selector_pool[rnd(ARRAY_LEN(selector_pool))]);
	if (tier >= 5) {
		snprintf(tmp, sizeof(tmp), ",'Tier':'%s','Order':%u",
			 tier < 8 ? "cluster" : "baseline", rnd(4) * 10);
		cat(buf, sizeof(buf), tmp);
	}
	if (rnd(5) == 0)
		cat(buf, sizeof(buf), ",'Audit':true");
	bool dirs[2] = {rnd(3) != 0, rnd(2) == 0};
	if (!dirs[0] && !dirs[1])
		dirs[0] = true;
	cat(buf, sizeof(buf),
	    dirs[0] && dirs[1] ? ",'Types':['Ingress','Egress']"
	    : dirs[0]	       ? ",'Types':['Ingress']"
			       : ",'Types':['Egress']");
	for (int d = 0; d < 2; d++) {
		if (!dirs[d])
			continue;
		cat(buf, sizeof(buf), d == 0 ? ",'Ingress':[" : ",'Egress':[");
		uint32_t nr = rnd(tier >= 5 ? 4 : 3);
		for (uint32_t r = 0; r < nr; r++) {
			cat(buf, sizeof(buf), r ? ",{" : "{");
			bool first = true;
			if (tier >= 5) {
				static const char *const acts[] = {"allow", "deny", "pass"};
				snprintf(tmp, sizeof(tmp), "'Action':'%s'",
					 acts[rnd(tier < 8 ? 3 : 2)]);
				cat(buf, sizeof(buf), tmp);
				first = false;
			}
			uint32_t np = rnd(3);
			if (np) {
				cat(buf, sizeof(buf), first ? "" : ",");
				cat(buf, sizeof(buf), d == 0 ? "'From':[" : "'To':[");
				for (uint32_t i = 0; i < np; i++) {
					cat(buf, sizeof(buf), i ? "," : "");
					cat(buf, sizeof(buf), peer_pool[rnd(ARRAY_LEN(peer_pool))]);
				}
				cat(buf, sizeof(buf), "]");
				first = false;
			}
			uint32_t nports = rnd(3);
			if (nports) {
				cat(buf, sizeof(buf), first ? "'Ports':[" : ",'Ports':[");
				for (uint32_t i = 0; i < nports; i++) {
					cat(buf, sizeof(buf), i ? "," : "");
					cat(buf, sizeof(buf), port_pool[rnd(ARRAY_LEN(port_pool))]);
				}
				cat(buf, sizeof(buf), "]");
			}
			cat(buf, sizeof(buf), "}");
		}
		cat(buf, sizeof(buf), "]");
	}
	cat(buf, sizeof(buf), "}");
	for (char *p = buf; *p; p++)
		if (*p == '\'')
			*p = '"';
	struct policy *p = NULL;
	if (policy_from_text(buf, strlen(buf), &p, NULL) < 0)
		return NULL;
	if (rnd(3) == 0)
		p->id = 1000 + (uint32_t)idx;
	return p;
}

struct gen_set {
	struct policy *v[16];
	size_t n;
};

static void gen_set(struct gen_set *s, size_t want, size_t *rejected)
{
	s->n = 0;
	int idx = 0;
	while (s->n < want) {
		struct policy *p = gen_policy(idx++);
		if (p)
			s->v[s->n++] = p;
		else
			(*rejected)++;
	}
}

static void gen_set_free(struct gen_set *s)
{
	for (size_t i = 0; i < s->n; i++)
		policy_free(s->v[i]);
	s->n = 0;
}

static void test_compiler_equals_evaluator(void **state)
{
	size_t flows = 0, rejected = 0, entries = 0, deny_entries = 0;
	for (uint64_t seed = 1; seed <= 60; seed++) {
		rng_state = seed;
		struct gen_set g;
		gen_set(&g, 1 + seed % 9, &rejected);
		struct policy_set set = {.v = g.v, .n = g.n};
		struct policy_compiled *c = NULL;
		struct shoal_err err = {0};
		if (policy_compile(&set, &model, &c, &err) < 0)
			fail_msg("seed %" PRIu64 ": %s", seed, err.msg);
		char what[32];
		snprintf(what, sizeof(what), "seed %" PRIu64, seed);
		flows += enumerate(&set, c, compiled_lookup, c, what);
		for (size_t i = 0; i < c->n_eps; i++)
			for (int d = 0; d < 2; d++) {
				entries += c->eps[i].n_entries[d];
				for (size_t k = 0; k < c->eps[i].n_entries[d]; k++)
					deny_entries += c->eps[i].entries[d][k].value.verdict ==
							POLICY_VERDICT_DENY;
			}
		policy_compiled_free(c);
		gen_set_free(&g);
	}
	/* The generator must reach real work: flows, entries, denials. */
	print_message("compiler == evaluator: %zu flows, %zu entries (%zu deny), %zu generated "
		      "policies refused\n",
		      flows, entries, deny_entries, rejected);
	assert_true(flows > 1000000);
	assert_true(deny_entries > 100);
}

/* --- directed compiler cases --- */

static void test_identities(void **state)
{
	struct policy *v[] = {
		parse("{'Name':'a','Selector':{},'Ingress':[{'From':[{'CIDR':'10.0.0.0/8','Except':"
		      "['10.9.0.0/16']},{'CIDR':'10.1.0.2/32'}]}]}"),
	};
	struct policy_set set = {.v = v, .n = 1};
	struct policy_compiled *c = NULL;
	assert_int_equal(policy_compile(&set, &model, &c, NULL), 0);
	/* reserved, five label sets (web.1 and web.2 share one), three prefixes */
	assert_int_equal(c->n_ids, 3 + 5 + 3);
	assert_int_equal(c->ids[0].id, POLICY_ID_WORLD);
	assert_int_equal(c->ids[1].id, POLICY_ID_NODE);
	assert_int_equal(c->ids[2].id, POLICY_ID_CLUSTER_UNKNOWN);
	uint32_t web1 = policy_compiled_identity(c, endpoints[0].addr);
	uint32_t web2 = policy_compiled_identity(c, endpoints[1].addr);
	assert_int_equal(web1, web2);
	assert_true(web1 >= POLICY_ID_FIRST_ENDPOINT && web1 < POLICY_ID_CIDR_BASE);
	for (size_t i = 2; i < N_EPS; i++)
		assert_int_not_equal(policy_compiled_identity(c, endpoints[i].addr), web1);
	/* an endpoint's /32 stays the endpoint's even when a policy names it */
	assert_int_equal(policy_compiled_identity(c, IP(10, 1, 0, 2)), web1);
	assert_int_equal(policy_compiled_identity(c, nodes[0].addr), POLICY_ID_NODE);
	uint32_t ten = policy_compiled_identity(c, IP(10, 2, 0, 1));
	uint32_t nine = policy_compiled_identity(c, IP(10, 9, 0, 1));
	assert_true(ten >= POLICY_ID_CIDR_BASE && nine >= POLICY_ID_CIDR_BASE);
	assert_int_not_equal(ten, nine);
	assert_int_equal(policy_compiled_identity(c, IP(11, 0, 0, 1)), POLICY_ID_WORLD);
	policy_compiled_free(c);
	policy_free(v[0]);
}

/* An isolated endpoint with no allowing rule needs only the default deny: one
 * POLICY_ID_ANY entry per protocol slot. An unselected endpoint gets none. */
static void test_default_deny(void **state)
{
	struct policy *v[] = {parse("{'Name':'iso','Selector':{'Service':'db'}}")};
	v[0]->id = 42;
	struct policy_set set = {.v = v, .n = 1};
	struct policy_compiled *c = NULL;
	assert_int_equal(policy_compile(&set, &model, &c, NULL), 0);
	assert_int_equal(c->n_eps, 1);
	const struct policy_ep_program *p = &c->eps[0];
	assert_int_equal(p->ep, 4);
	assert_int_equal(p->n_entries[POLICY_INGRESS], 3);
	assert_int_equal(p->n_entries[POLICY_EGRESS], 0);
	static const uint8_t want[] = {POLICY_PROTO_OTHER, IPPROTO_TCP, IPPROTO_UDP};
	for (size_t i = 0; i < 3; i++) {
		const struct policy_entry *e = &p->entries[POLICY_INGRESS][i];
		assert_int_equal(e->identity, POLICY_ID_ANY);
		assert_int_equal(e->proto, want[i]);
		assert_int_equal(e->port_bits, want[i] == POLICY_PROTO_OTHER ? 0 : 16);
		assert_int_equal(e->value.verdict, POLICY_VERDICT_DENY);
		assert_int_equal(e->value.policy, 42);
		assert_int_equal(e->value.rule, POLICY_RULE_NONE);
	}
	assert_null(program(c, 7));
	policy_compiled_free(c);
	policy_free(v[0]);
}

/* 8000-8100/udp from anyone: the range as four prefix-aligned blocks. */
static void test_port_blocks(void **state)
{
	struct policy *v[] = {parse("{'Name':'r','Selector':{'Service':'db'},'Ingress':[{'Ports':"
				    "[{'Port':8000,'EndPort':8100,'Protocol':'udp'}]}]}")};
	struct policy_set set = {.v = v, .n = 1};
	struct policy_compiled *c = NULL;
	assert_int_equal(policy_compile(&set, &model, &c, NULL), 0);
	const struct policy_ep_program *p = program(c, 4);
	assert_non_null(p);
	static const struct {
		uint16_t port;
		uint8_t bits;
	} want[] = {{8000, 6}, {8064, 5}, {8096, 2}, {8100, 0}};
	size_t found = 0;
	for (size_t i = 0; i < p->n_entries[POLICY_INGRESS]; i++) {
		const struct policy_entry *e = &p->entries[POLICY_INGRESS][i];
		assert_int_equal(e->identity, POLICY_ID_ANY);
		if (e->value.verdict != POLICY_VERDICT_ALLOW)
			continue;
		assert_int_equal(e->proto, IPPROTO_UDP);
		assert_true(found < 4);
		assert_int_equal(e->port, want[found].port);
		assert_int_equal(e->port_bits, want[found].bits);
		found++;
	}
	assert_int_equal(found, 4);
	assert_int_equal(
		policy_lookup(p, POLICY_INGRESS, POLICY_ID_WORLD, IPPROTO_UDP, 8100).verdict,
		POLICY_VERDICT_ALLOW);
	assert_int_equal(
		policy_lookup(p, POLICY_INGRESS, POLICY_ID_WORLD, IPPROTO_UDP, 8101).verdict,
		POLICY_VERDICT_DENY);
	assert_int_equal(policy_lookup(p, POLICY_INGRESS, 12345, IPPROTO_UDP, 7999).verdict,
			 POLICY_VERDICT_DENY);
	policy_compiled_free(c);
	policy_free(v[0]);
}

/* A node builds programs for its own endpoints only, judging every peer. */
static void test_local_node(void **state)
{
	struct policy *v[] = {parse("{'Name':'w','Selector':{'Service':'web'},'Ingress':[{'From':"
				    "[{'Service':'db'}]}]}")};
	struct policy_set set = {.v = v, .n = 1};
	struct policy_model m = model;
	m.local_node = "n2";
	struct policy_compiled *all = NULL, *local = NULL;
	assert_int_equal(policy_compile(&set, &model, &all, NULL), 0);
	assert_int_equal(policy_compile(&set, &m, &local, NULL), 0);
	assert_int_equal(all->n_eps, 2);   /* web.2 (slot 2), web.1 (slot 7) */
	assert_int_equal(local->n_eps, 1); /* web.2 */
	assert_int_equal(local->eps[0].ep, 2);
	assert_int_equal(local->eps[0].n_entries[POLICY_INGRESS],
			 all->eps[0].n_entries[POLICY_INGRESS]);
	assert_int_equal(local->n_ipcache, all->n_ipcache);
	uint32_t db = policy_compiled_identity(local, IP(10, 1, 0, 20));
	assert_int_equal(policy_lookup(&local->eps[0], POLICY_INGRESS, db, IPPROTO_TCP, 1).verdict,
			 POLICY_VERDICT_ALLOW);
	assert_int_equal(
		policy_lookup(&local->eps[0], POLICY_INGRESS, POLICY_ID_WORLD, IPPROTO_TCP, 1)
			.verdict,
		POLICY_VERDICT_DENY);
	policy_compiled_free(all);
	policy_compiled_free(local);
	policy_free(v[0]);
}

/* Cluster-wide numbers given with the model are what the entries and the
 * ipcache say, on both nodes alike; the sets without one are numbered past
 * them; a number given twice for two sets, or two for one set, is refused. */
static void test_given_identities(void **state)
{
	struct policy *v[] = {parse("{'Name':'w','Selector':{'Service':'web'},'Ingress':[{'From':"
				    "[{'Service':'db'}]}]}")};
	struct policy_set set = {.v = v, .n = 1};
	/* web.1, web.2, frontend, db, ctr given; plain left to the compiler */
	uint32_t ids[N_EPS] = {70000, 70000, 5000, 900000, 300, 0};
	struct policy_model m1 = model, m2 = model;
	m1.identities = m2.identities = ids;
	m1.local_node = "n1";
	m2.local_node = "n2";
	struct policy_compiled *c1 = NULL, *c2 = NULL;
	struct shoal_err err = {0};
	assert_int_equal(policy_compile(&set, &m1, &c1, &err), 0);
	assert_int_equal(policy_compile(&set, &m2, &c2, &err), 0);
	for (size_t i = 0; i + 1 < N_EPS; i++) {
		assert_int_equal(policy_compiled_identity(c1, endpoints[i].addr), ids[i]);
		assert_int_equal(policy_compiled_identity(c2, endpoints[i].addr), ids[i]);
	}
	assert_int_equal(policy_compiled_identity(c1, endpoints[5].addr), 900001);
	/* web.1 on n1 and web.2 on n2 admit db by its given number */
	assert_int_equal(c1->n_eps, 1);
	assert_int_equal(c2->n_eps, 1);
	assert_int_equal(
		policy_lookup(&c1->eps[0], POLICY_INGRESS, 900000, IPPROTO_TCP, 80).verdict,
		POLICY_VERDICT_ALLOW);
	assert_int_equal(
		policy_lookup(&c2->eps[0], POLICY_INGRESS, 900000, IPPROTO_TCP, 80).verdict,
		POLICY_VERDICT_ALLOW);
	assert_int_equal(policy_lookup(&c2->eps[0], POLICY_INGRESS, 5000, IPPROTO_TCP, 80).verdict,
			 POLICY_VERDICT_DENY);
	policy_compiled_free(c1);
	policy_compiled_free(c2);
	c1 = NULL;

	uint32_t same_twice[N_EPS] = {70000, 70000, 70000, 0, 0, 0};
	m1.identities = same_twice;
	assert_int_equal(policy_compile(&set, &m1, &c1, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "different labels and the same identity 70000"));
	uint32_t split[N_EPS] = {70000, 70001, 0, 0, 0, 0};
	m1.identities = split;
	assert_int_equal(policy_compile(&set, &m1, &c1, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "the same labels and identities"));
	uint32_t reserved[N_EPS] = {3, 3, 0, 0, 0, 0};
	m1.identities = reserved;
	assert_int_equal(policy_compile(&set, &m1, &c1, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "outside the endpoint identities"));
	assert_null(c1);
	policy_free(v[0]);
}

static void test_compile_errors(void **state)
{
	struct policy_endpoint dup[2] = {endpoints[0], endpoints[1]};
	dup[1].id = dup[0].id;
	struct policy_model m = {.endpoints = dup, .n_endpoints = 2};
	struct policy_set set = {.v = NULL, .n = 0};
	struct policy_compiled *c = NULL;
	struct shoal_err err = {0};
	assert_int_equal(policy_compile(&set, &m, &c, &err), -EINVAL);
	assert_string_equal(err.msg, "endpoints web.1 and web.2 share slot 7");
	assert_null(c);

	/* 512 addresses, each allowed on 64 two-port ranges that are not
	 * aligned (two entries each): past the entries one endpoint may have. */
	json_t *rules = json_array();
	for (int r = 0; r < 8; r++) {
		json_t *from = json_array(), *pl = json_array();
		for (int i = 0; i < 64; i++) {
			char cidr[32];
			snprintf(cidr, sizeof(cidr), "1.0.%d.%d/32", r, i);
			json_array_append_new(from, json_pack("{ss}", "CIDR", cidr));
			json_array_append_new(
				pl, json_pack("{sisi}", "Port", 4 * i + 1, "EndPort", 4 * i + 2));
		}
		json_array_append_new(rules, json_pack("{soso}", "From", from, "Ports", pl));
	}
	json_t *j = json_pack("{sss{ss}so}", "Name", "big", "Selector", "Service", "db", "Ingress",
			      rules);
	struct policy *big = NULL;
	assert_int_equal(policy_from_json(j, &big, &err), 0);
	json_decref(j);
	struct policy *v[] = {big};
	set = (struct policy_set){.v = v, .n = 1};
	assert_int_equal(policy_compile(&set, &model, &c, &err), -E2BIG);
	/* the count past the limit, so the user knows by how much */
	assert_string_equal(err.msg, "endpoint db.1: its ingress needs 131075 policy map entries, "
				     "65536 fit per endpoint and direction");
	assert_null(c);
	policy_free(big);
}

/* Many CIDR rules, as the compiler indexes them (a rule whose peers are
 * all CIDRs reaches only the identities inside one of them): nested and
 * repeated prefixes, a rule with two CIDRs that both hold an address, an
 * except, a mixed rule and rules without peers, in several policies. Every
 * address the identities stand for gets the evaluator's verdict, policy
 * and rule index. */
static void test_many_cidr_rules(void **state)
{
	(void)state;
	struct policy *v[8];
	size_t n = 0;
	char *buf = malloc(64 * 1024);
	assert_non_null(buf);
	for (int p = 0; p < 8; p++) {
		int len = sprintf(buf,
				  "{\"Name\":\"many-%d\",\"Selector\":{\"Service\":\"db\"},"
				  "\"Types\":[\"Ingress\"],\"Ingress\":[",
				  p);
		for (int r = 0; r < 200; r++) {
			int k = p * 200 + r;
			const char *sep = r ? "," : "";
			if (k % 97 == 5)
				len += sprintf(buf + len,
					       "%s{\"From\":[{\"CIDR\":\"10.0.0.0/8\",\"Except\":"
					       "[\"10.%d.0.0/16\"]},{\"CIDR\":\"10.%d.0.0/16\"}],"
					       "\"Ports\":[{\"Port\":%d,\"Protocol\":\"udp\"}]}",
					       sep, k % 7, k % 7, 50 + k % 5);
			else if (k % 131 == 7)
				len += sprintf(buf + len,
					       "%s{\"From\":[{\"CIDR\":\"10.%d.%d.0/24\"},"
					       "{\"Service\":\"web\"}],\"Ports\":[{\"Port\":80}]}",
					       sep, k / 256, k % 256);
			else if (k % 251 == 11)
				len += sprintf(buf + len, "%s{\"Ports\":[{\"Port\":%d}]}", sep,
					       1000 + k);
			else
				len += sprintf(buf + len,
					       "%s{\"From\":[{\"CIDR\":\"10.%d.%d.0/24\"}],"
					       "\"Ports\":[{\"Port\":%d,\"Protocol\":\"%s\"}]}",
					       sep, (k % 400) / 256, (k % 400) % 256, 53 + k % 3,
					       k % 2 ? "udp" : "tcp");
		}
		strcpy(buf + len, "]}");
		struct shoal_err err = {0};
		if (policy_from_text(buf, strlen(buf), &v[n], &err) < 0)
			fail_msg("%s", err.msg);
		n++;
	}
	free(buf);
	struct policy_set set = {.v = v, .n = n};
	struct policy_compiled *c = NULL;
	struct shoal_err err = {0};
	assert_int_equal(policy_compile(&set, &model, &c, &err), 0);
	const struct policy_endpoint *db = &endpoints[3];
	static const uint16_t probe_ports[] = {50, 52, 53, 54, 55, 80, 1000, 1011, 1513};
	size_t checked = 0;
	for (size_t i = 0; i < c->n_ids; i++) {
		if (c->ids[i].id < POLICY_ID_CIDR_BASE)
			continue;
		uint32_t addr = c->ids[i].cidr.addr | 1;
		struct policy_party party = {POLICY_PARTY_WORLD, NULL, addr};
		uint32_t id = policy_compiled_identity(c, addr);
		for (int q = 0; q < 2; q++)
			for (size_t pi = 0; pi < ARRAY_LEN(probe_ports); pi++) {
				uint8_t proto = q ? IPPROTO_UDP : IPPROTO_TCP;
				struct policy_decision d;
				policy_eval_side(&set, db, POLICY_INGRESS, &party, false, proto,
						 probe_ports[pi], &d);
				struct policy_value want = eval_value(&d);
				struct policy_value got =
					policy_lookup(program(c, db->id), POLICY_INGRESS, id, proto,
						      probe_ports[pi]);
				if (got.verdict != want.verdict || got.policy != want.policy ||
				    got.rule != want.rule)
					fail_msg("%#x %u/%s: evaluator %s policy %u rule %u, "
						 "compiled %s policy %u rule %u",
						 addr, probe_ports[pi], policy_proto_str(proto),
						 policy_verdict_str(want.verdict), want.policy,
						 want.rule, policy_verdict_str(got.verdict),
						 got.policy, got.rule);
				checked++;
			}
	}
	assert_true(checked > 5000);
	policy_compiled_free(c);
	for (size_t i = 0; i < n; i++)
		policy_free(v[i]);
}

/* --- the diff, on a simulated map --- */

struct sim_entry {
	struct policy_key k;
	struct policy_value v;
};

struct sim {
	struct sim_entry e[8192];
	size_t n;
	struct policy_ep_state eps[16];
};

static long sim_find(const struct sim *s, const struct policy_key *k)
{
	for (size_t i = 0; i < s->n; i++)
		if (memcmp(&s->e[i].k, k, sizeof(*k)) == 0)
			return (long)i;
	return -1;
}

/* Applies one op, checking it never touches what lookups read right now. */
static void sim_apply(struct sim *s, const struct policy_op *op)
{
	struct policy_ep_state *st = &s->eps[op->key.ep];
	bool live = (st->flags & POLICY_EP_F_ACTIVE) && st->gen == op->key.gen;
	long i;
	switch (op->kind) {
	case POLICY_OP_UPDATE:
		if (live)
			fail_msg("an update writes the live generation of endpoint %u", op->key.ep);
		i = sim_find(s, &op->key);
		if (i < 0) {
			assert_true(s->n < ARRAY_LEN(s->e));
			i = (long)s->n++;
		}
		s->e[i] = (struct sim_entry){op->key, op->value};
		break;
	case POLICY_OP_DELETE:
		if (live)
			fail_msg("a delete removes the live generation of endpoint %u", op->key.ep);
		i = sim_find(s, &op->key);
		if (i < 0)
			fail_msg("delete of a key that is not there");
		s->e[i] = s->e[--s->n];
		break;
	case POLICY_OP_EP_SET:
		*st = op->ep_state;
		break;
	case POLICY_OP_EP_CLEAR:
		memset(st, 0, sizeof(*st));
		break;
	}
}

/* What the data plane reads of the simulated maps: each endpoint's live
 * generation, by direction (an index, so that the enumeration stays fast). */
struct sim_view {
	const struct sim_entry *e[16][2][4096];
	size_t n[16][2];
	struct policy_ep_state eps[16];
};

static void sim_view_build(const struct sim *s, struct sim_view *v)
{
	memset(v->n, 0, sizeof(v->n));
	memcpy(v->eps, s->eps, sizeof(v->eps));
	for (size_t i = 0; i < s->n; i++) {
		const struct policy_key *k = &s->e[i].k;
		if (k->ep < 16 && k->dir < 2 && (s->eps[k->ep].flags & POLICY_EP_F_ACTIVE) &&
		    s->eps[k->ep].gen == k->gen) {
			assert_true(v->n[k->ep][k->dir] < 4096);
			v->e[k->ep][k->dir][v->n[k->ep][k->dir]++] = &s->e[i];
		}
	}
}

/* The BPF lookup order over the simulated maps. */
static struct policy_value sim_lookup(void *ctx, uint16_t ep, enum policy_dir dir,
				      uint32_t identity, uint8_t proto, uint16_t port)
{
	const struct sim_view *v = ctx;
	struct policy_value miss = {.verdict = POLICY_VERDICT_ALLOW, .rule = POLICY_RULE_NONE};
	if (!(v->eps[ep].flags & POLICY_EP_F_ACTIVE))
		return miss;
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP) {
		proto = POLICY_PROTO_OTHER;
		port = 0;
	}
	uint32_t ids[2] = {identity, POLICY_ID_ANY};
	for (int t = 0; t < 2; t++) {
		const struct sim_entry *best = NULL;
		for (size_t i = 0; i < v->n[ep][dir]; i++) {
			const struct policy_key *k = &v->e[ep][dir][i]->k;
			if (k->identity != ids[t] || k->proto != proto || k->pad != 0)
				continue;
			uint32_t bits = k->prefixlen - POLICY_KEY_FIXED_BITS;
			assert_true(bits <= 16);
			uint32_t mask = bits ? 0xffffU << (16 - bits) & 0xffff : 0;
			if ((port & mask) != (ntohs(k->port) & mask))
				continue;
			if (!best || k->prefixlen > best->k.prefixlen)
				best = v->e[ep][dir][i];
		}
		if (best)
			return best->v;
	}
	return miss;
}

/* The keys a program has under gen, sorted, for set comparison. */
static int key_cmp(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct sim_entry));
}

static size_t program_entries(const struct policy_ep_program *p, uint8_t gen, struct sim_entry *out)
{
	size_t n = 0;
	for (int d = 0; p && d < 2; d++)
		for (size_t i = 0; i < p->n_entries[d]; i++) {
			memset(&out[n], 0, sizeof(out[n]));
			out[n].k = policy_entry_key(p->ep, gen, d, &p->entries[d][i]);
			out[n].v = p->entries[d][i].value;
			n++;
		}
	qsort(out, n, sizeof(*out), key_cmp);
	return n;
}

/* Endpoint ep reads exactly the old program's entries or the new one's. */
static void check_whole(const struct sim *s, uint16_t ep, const struct policy_compiled *old,
			const struct policy_compiled *new, size_t step)
{
	static struct sim_entry live[8192], want[8192];
	const struct policy_ep_state *st = &s->eps[ep];
	size_t n = 0;
	if (st->flags & POLICY_EP_F_ACTIVE)
		for (size_t i = 0; i < s->n; i++)
			if (s->e[i].k.ep == ep && s->e[i].k.gen == st->gen) {
				memset(&live[n], 0, sizeof(live[n]));
				live[n++] = s->e[i];
			}
	qsort(live, n, sizeof(*live), key_cmp);
	const struct policy_compiled *both[2] = {old, new};
	for (int w = 0; w < 2; w++) {
		const struct policy_ep_program *p = both[w] ? program(both[w], ep) : NULL;
		if (!(st->flags & POLICY_EP_F_ACTIVE)) {
			if (!p)
				return;
			continue;
		}
		if (!p || p->gen != st->gen)
			continue;
		size_t m = program_entries(p, st->gen, want);
		if (m == n && memcmp(live, want, n * sizeof(*live)) == 0)
			return;
	}
	fail_msg("step %zu: endpoint %u sees neither its old nor its new entries whole", step, ep);
}

static void apply_checked(struct sim *s, const struct policy_ops *ops,
			  const struct policy_compiled *old, const struct policy_compiled *new)
{
	/* writes, then flips, then deletes */
	int phase = 0;
	for (size_t i = 0; i < ops->n; i++) {
		const struct policy_op *op = &ops->v[i];
		int ph = op->kind == POLICY_OP_UPDATE ? 0 : op->kind == POLICY_OP_DELETE ? 2 : 1;
		assert_true(ph >= phase);
		phase = ph;
		sim_apply(s, op);
		for (size_t e = 0; e < N_EPS; e++)
			check_whole(s, endpoints[e].id, old, new, i);
	}
}

static size_t total_entries(const struct policy_compiled *c)
{
	size_t n = 0;
	for (size_t i = 0; i < c->n_eps; i++)
		n += c->eps[i].n_entries[0] + c->eps[i].n_entries[1];
	return n;
}

static struct sim sim;
static struct sim_view view;

static void test_diff_generated(void **state)
{
	memset(&sim, 0, sizeof(sim));
	struct policy_compiled *cur = NULL;
	struct gen_set g[2] = {0};
	size_t rejected = 0, ops_total = 0;
	for (uint64_t round = 0; round < 12; round++) {
		struct gen_set *ng = &g[round % 2];
		gen_set_free(ng);
		rng_state = 1000 + round;
		/* every fourth round: no policy at all, so that endpoints leave */
		gen_set(ng, round % 4 == 3 ? 0 : 1 + round % 6, &rejected);
		struct policy_set set = {.v = ng->v, .n = ng->n};
		struct policy_compiled *next = NULL;
		assert_int_equal(policy_compile(&set, &model, &next, NULL), 0);
		struct policy_ops ops = {0};
		assert_int_equal(policy_diff(cur, next, &ops), 0);
		apply_checked(&sim, &ops, cur, next);
		ops_total += ops.n;
		policy_ops_done(&ops);
		/* nothing of the old generation is left behind */
		assert_int_equal(sim.n, total_entries(next));
		/* and the maps answer as the evaluator does */
		char what[32];
		snprintf(what, sizeof(what), "diff round %" PRIu64, round);
		sim_view_build(&sim, &view);
		enumerate(&set, next, sim_lookup, &view, what);
		/* the same state again: no operation at all */
		struct policy_compiled *again = NULL;
		assert_int_equal(policy_compile(&set, &model, &again, NULL), 0);
		assert_int_equal(policy_diff(next, again, &ops), 0);
		assert_int_equal(ops.n, 0);
		for (size_t i = 0; i < again->n_eps; i++)
			assert_int_equal(again->eps[i].gen, next->eps[i].gen);
		policy_compiled_free(again);
		policy_compiled_free(cur);
		cur = next;
	}
	assert_true(ops_total > 100);
	policy_compiled_free(cur);
	gen_set_free(&g[0]);
	gen_set_free(&g[1]);
}

/* One policy added to another: only the endpoints it changes are rewritten,
 * under the other generation; the rest see no operation. */
static void test_diff_directed(void **state)
{
	struct policy *a = parse("{'Name':'db-iso','Selector':{'Service':'db'}}");
	struct policy *b = parse("{'Name':'web-fe','Selector':{'Service':'web'},'Ingress':[{"
				 "'From':[{'Service':'frontend'}],'Ports':[{'Port':80}]}]}");
	struct policy *v[] = {a, b};
	struct policy_set one = {.v = v, .n = 1}, two = {.v = v, .n = 2};
	struct policy_compiled *c1 = NULL, *c2 = NULL;
	assert_int_equal(policy_compile(&one, &model, &c1, NULL), 0);
	assert_int_equal(policy_compile(&two, &model, &c2, NULL), 0);
	struct policy_ops ops = {0};
	assert_int_equal(policy_diff(NULL, c1, &ops), 0);
	/* db.1 (slot 4): three entries, then its generation */
	assert_int_equal(ops.n, 4);
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(ops.v[i].kind, POLICY_OP_UPDATE);
		assert_int_equal(ops.v[i].key.ep, 4);
		assert_int_equal(ops.v[i].key.gen, 0);
	}
	assert_int_equal(ops.v[3].kind, POLICY_OP_EP_SET);
	assert_int_equal(ops.v[3].ep_state.gen, 0);
	assert_int_equal(ops.v[3].ep_state.flags, POLICY_EP_F_ACTIVE);
	policy_ops_done(&ops);

	assert_int_equal(policy_diff(c1, c2, &ops), 0);
	/* db.1 (policy ids shift: db-iso keeps 1, so its entries stay) is left
	 * alone; web.1 (slot 7) and web.2 (slot 2) are new: writes, then flips */
	size_t writes = 0, flips = 0;
	for (size_t i = 0; i < ops.n; i++) {
		assert_int_not_equal(ops.v[i].key.ep, 4);
		writes += ops.v[i].kind == POLICY_OP_UPDATE;
		flips += ops.v[i].kind == POLICY_OP_EP_SET;
		assert_int_not_equal(ops.v[i].kind, POLICY_OP_DELETE);
	}
	assert_int_equal(flips, 2);
	assert_int_equal(writes + flips, ops.n);
	assert_int_equal(ops.v[ops.n - 2].kind, POLICY_OP_EP_SET);
	policy_ops_done(&ops);

	/* back to one policy: web's endpoints are cleared, then their entries deleted */
	struct policy_compiled *c3 = NULL;
	assert_int_equal(policy_compile(&one, &model, &c3, NULL), 0);
	assert_int_equal(policy_diff(c2, c3, &ops), 0);
	assert_int_equal(ops.v[0].kind, POLICY_OP_EP_CLEAR);
	assert_int_equal(ops.v[1].kind, POLICY_OP_EP_CLEAR);
	for (size_t i = 2; i < ops.n; i++)
		assert_int_equal(ops.v[i].kind, POLICY_OP_DELETE);
	policy_ops_done(&ops);

	/* a changed endpoint flips to the other generation */
	b->id = 0;
	a->id = 9;
	struct policy_compiled *c4 = NULL;
	assert_int_equal(policy_compile(&one, &model, &c4, NULL), 0);
	assert_int_equal(policy_diff(c3, c4, &ops), 0);
	assert_int_equal(ops.n, 3 + 1 + 3);
	assert_int_equal(ops.v[0].key.gen, 1);
	assert_int_equal(ops.v[0].value.policy, 9);
	assert_int_equal(ops.v[3].kind, POLICY_OP_EP_SET);
	assert_int_equal(ops.v[3].ep_state.gen, 1);
	assert_int_equal(ops.v[4].kind, POLICY_OP_DELETE);
	assert_int_equal(ops.v[4].key.gen, 0);
	/* the key as the BPF side reads it */
	assert_int_equal(ops.v[0].key.prefixlen, POLICY_KEY_FULL_BITS);
	assert_int_equal(ops.v[1].key.prefixlen, POLICY_KEY_FIXED_BITS);
	assert_int_equal(ops.v[1].key.proto, IPPROTO_TCP);
	policy_ops_done(&ops);

	policy_compiled_free(c1);
	policy_compiled_free(c2);
	policy_compiled_free(c3);
	policy_compiled_free(c4);
	policy_free(a);
	policy_free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_identities),
		cmocka_unit_test(test_default_deny),
		cmocka_unit_test(test_port_blocks),
		cmocka_unit_test(test_local_node),
		cmocka_unit_test(test_given_identities),
		cmocka_unit_test(test_compile_errors),
		cmocka_unit_test(test_many_cidr_rules),
		cmocka_unit_test(test_compiler_equals_evaluator),
		cmocka_unit_test(test_diff_directed),
		cmocka_unit_test(test_diff_generated),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
