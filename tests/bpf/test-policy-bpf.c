// SPDX-License-Identifier: Apache-2.0
/* Network policy enforcement through BPF_PROG_TEST_RUN: the veth programs
 * fed from policy_compile() of generated policy sets must give, for every
 * probed flow (both sides, tcp/udp/other, boundary ports, CIDR excepts,
 * published clients, audit, deny over allow, pass, tiers), the verdict,
 * policy and rule of policy_eval_side(); read back from the flow log. The
 * conntrack (a flow's later packets and its replies skip the lookup), a
 * generation flip in the middle of a flow, the socket hooks agreeing with the
 * veth, and an agent restart on the pinned maps.
 *
 * `test-policy-bpf bench` prints the per-packet cost of the veth program. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/magic.h>
#include <linux/pkt_cls.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "lb/lb-internal.h"
#include "lb/lb-policy.h"
#include "policy/policy.h"
#include "tests/bpf/lb-pkt.h"

#define PIN_PREFIX     "shoal-policy-test"
#define CG_ROOT	       "/sys/fs/cgroup/unified"
#define CG_PREFIX      "shoal-policy-test-"
#define ARRAY_LEN(a)   (sizeof(a) / sizeof((a)[0]))
#define IP(a, b, c, d) ((uint32_t)(a) << 24 | (b) << 16 | (c) << 8 | (d))

#define TCP_FLAG_SYN_ 0x02
#define TCP_FLAG_ACK_ 0x10

#define SVC_PUBLISHED (LB_MAX_SERVICES - 1)
#define SVC_VIP	      (LB_MAX_SERVICES - 2)

#define RET_PASS ((uint32_t)TC_ACT_UNSPEC)
#define RET_DROP ((uint32_t)TC_ACT_SHOT)

static const char *const web_nets[] = {"front", "back"};
static const char *const front_nets[] = {"front"};
static const char *const back_nets[] = {"back"};
static struct policy_label web_labels[] = {{"app", "web"}, {"tier", "backend"}};
static struct policy_label fe_labels[] = {{"tier", "edge"}};
static struct policy_label db_labels[] = {{"tier", "data"}};
static struct policy_label ctr_labels[] = {{"role", "ctr"}};

/* Every endpoint is local to the programs under test; web.1 and web.2 share
 * a label set. */
static const struct policy_endpoint endpoints[] = {
	{7, "web.1", "web", {web_labels, 2}, web_nets, 2, IP(10, 1, 0, 2), "n1"},
	{2, "web.2", "web", {web_labels, 2}, web_nets, 2, IP(10, 1, 0, 3), "n1"},
	{3, "frontend.1", "frontend", {fe_labels, 1}, front_nets, 1, IP(10, 1, 0, 10), "n1"},
	{4, "db.1", "db", {db_labels, 1}, back_nets, 1, IP(10, 1, 0, 20), "n1"},
	{5, "ctr", NULL, {ctr_labels, 1}, front_nets, 1, IP(10, 1, 0, 30), "n1"},
	{9, "plain", NULL, {NULL, 0}, NULL, 0, IP(10, 1, 0, 40), "n1"},
};
#define N_EPS ARRAY_LEN(endpoints)
static const struct policy_node nodes[] = {{"n1", IP(192, 168, 1, 1)}, {"n2", IP(192, 168, 1, 2)}};
static const struct policy_model model = {
	.endpoints = endpoints, .n_endpoints = N_EPS, .nodes = nodes, .n_nodes = 2};

static const uint32_t world_addrs[] = {
	IP(8, 8, 8, 8),	   IP(10, 2, 3, 4),	  IP(10, 9, 3, 4),    IP(10, 9, 0, 0),
	IP(10, 9, 3, 255), IP(10, 255, 255, 255), IP(192, 168, 5, 5), IP(192, 168, 7, 1),
	IP(172, 16, 0, 1), IP(172, 16, 0, 2),	  IP(10, 1, 0, 99),
};

static const uint16_t ports[] = {1,    52,   53,   54,	 79,   80,   81,   442,
				 443,  444,  1023, 1024, 1025, 7999, 8000, 8049,
				 8050, 8063, 8064, 8100, 8101, 8200, 8201, 65535};
static const uint8_t protos[] = {IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP};

/* ---- state shared by the cases ---- */

static char pin_dir[128];
static char cg_path[256];
static struct lb *lb;
static struct lb_policy *pol;
static int fd_from, fd_to, fd_rnat, fd_svc_keys;
static uint16_t next_sport = 10000;

#define EV_MAX 64
static struct policy_flow_event evs[EV_MAX];
static size_t n_evs;

static void flow_cb(const struct policy_flow_event *ev, void *userdata)
{
	(void)userdata;
	if (n_evs < EV_MAX)
		evs[n_evs] = *ev;
	n_evs++;
}

static void drain(void)
{
	n_evs = 0;
	assert_true(lb_policy_flowlog_consume(pol) >= 0);
	n_evs = 0;
}

/* ---- packets ---- */

struct tuple {
	uint32_t saddr, daddr; /* host order */
	uint16_t sport, dport;
	uint8_t proto;
};

static uint32_t run_prog(int fd, const struct tuple *t)
{
	struct pkt_spec s = {
		.proto = t->proto,
		.saddr_n = htonl(t->saddr),
		.daddr_n = htonl(t->daddr),
		.sport = t->sport,
		.dport = t->dport,
		.tcp_flags = TCP_FLAG_ACK_,
	};
	struct pkt p;

	build(&s, &p);
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = p.b, .data_size_in = p.len, .repeat = 1);
	int r = bpf_prog_test_run_opts(fd, &o);

	if (r < 0)
		fail_msg("BPF_PROG_TEST_RUN: %s", strerror(-r));
	return o.retval;
}

static uint64_t stat_of(enum policy_stat s)
{
	uint64_t st[POLICY_STAT_MAX];

	assert_int_equal(lb_policy_stats(pol, st), 0);
	return st[s];
}

/* ---- policies ---- */

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

static struct policy *parse(const char *text)
{
	char *t = strdup(text);
	struct policy *p = NULL;
	struct shoal_err err = {0};

	for (char *c = t; *c; c++)
		if (*c == '\'')
			*c = '"';
	if (policy_from_text(t, strlen(t), &p, &err) < 0)
		fail_msg("policy rejected: %s: %s", err.msg, t);
	free(t);
	return p;
}

/* A random policy: tiers with allow/deny/pass, service policies, audit;
 * NULL when it came out invalid (the caller draws again). */
static struct policy *gen_policy(int idx)
{
	char buf[4096], tmp[128];
	int tier = (int)rnd(10); /* 0-4 service, 5-7 cluster, 8-9 baseline */
	bool dirs[2] = {rnd(3) != 0, rnd(2) == 0};
	struct policy *p = NULL;

	snprintf(buf, sizeof(buf), "{'Name':'p%d','Selector':%s", idx,
		 selector_pool[rnd(ARRAY_LEN(selector_pool))]);
	if (tier >= 5) {
		snprintf(tmp, sizeof(tmp), ",'Tier':'%s','Order':%u",
			 tier < 8 ? "cluster" : "baseline", rnd(4) * 10);
		cat(buf, sizeof(buf), tmp);
	}
	if (rnd(5) == 0)
		cat(buf, sizeof(buf), ",'Audit':true");
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
			bool first = true;
			uint32_t np = rnd(3), nports = rnd(3);

			cat(buf, sizeof(buf), r ? ",{" : "{");
			if (tier >= 5) {
				static const char *const acts[] = {"allow", "deny", "pass"};

				snprintf(tmp, sizeof(tmp), "'Action':'%s'",
					 acts[rnd(tier < 8 ? 3 : 2)]);
				cat(buf, sizeof(buf), tmp);
				first = false;
			}
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
	for (char *c = buf; *c; c++)
		if (*c == '\'')
			*c = '"';
	if (policy_from_text(buf, strlen(buf), &p, NULL) < 0)
		return NULL;
	if (rnd(3) == 0)
		p->id = 1000 + (uint32_t)idx;
	return p;
}

struct gen_set {
	struct policy *v[64];
	size_t n;
};

static void gen_set(struct gen_set *s, size_t want)
{
	int idx = 0;

	s->n = 0;
	while (s->n < want) {
		struct policy *p = gen_policy(idx++);

		if (p)
			s->v[s->n++] = p;
	}
}

static void gen_set_free(struct gen_set *s)
{
	for (size_t i = 0; i < s->n; i++)
		policy_free(s->v[i]);
	s->n = 0;
}

/* The compiled state the maps hold, for the next diff. */
static struct policy_compiled *live;

static struct policy_compiled *compile(const struct policy_set *set)
{
	struct policy_compiled *c = NULL;
	struct shoal_err err = {0};

	if (policy_compile(set, &model, &c, &err) < 0)
		fail_msg("compile: %s", err.msg);
	return c;
}

/* Compiles set, applies the diff from the live state, registers the
 * endpoints with their identities. */
static void install(const struct policy_set *set)
{
	struct policy_compiled *c = compile(set);
	struct policy_ops ops = {0};
	struct shoal_err err = {0};

	assert_int_equal(policy_diff(live, c, &ops), 0);
	if (lb_policy_apply(pol, c, &ops, &err) < 0)
		fail_msg("apply: %s", err.msg);
	policy_ops_done(&ops);
	for (size_t i = 0; i < N_EPS; i++) {
		struct lb_policy_endpoint e = {
			.addr = htonl(endpoints[i].addr),
			.ep = endpoints[i].id,
			.identity = policy_compiled_identity(c, endpoints[i].addr),
		};

		if (lb_policy_endpoint_set(pol, &e, &err) < 0)
			fail_msg("endpoint: %s", err.msg);
	}
	policy_compiled_free(live);
	live = c;
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

/* Empties the policy conntrack: each set's probes start as new flows. */
static void ct_flush(void)
{
	char path[256];
	_cleanup_close_ int fd = -EBADF;
	struct policy_ct_key k, next;

	snprintf(path, sizeof(path), "%s/policy_ct", pin_dir);
	fd = bpf_obj_get(path);
	assert_true(fd >= 0);
	while (bpf_map_get_next_key(fd, NULL, &next) == 0) {
		k = next;
		assert_int_equal(bpf_map_delete_elem(fd, &k), 0);
	}
}

/* Marks the flow t (client -> endpoint) as one the load balancer took in
 * on a published port, as its ingress program leaves it: a reverse NAT
 * entry naming a service with address 0. */
static void mark_published(const struct tuple *t, bool published)
{
	struct lb_flow_key rk = {
		.saddr = htonl(t->daddr),
		.daddr = htonl(t->saddr),
		.sport = htons(t->dport),
		.dport = htons(t->sport),
		.proto = t->proto,
	};
	struct lb_rnat_entry rn = {.addr = htonl(IP(192, 168, 1, 1)),
				   .port = htons(30080),
				   .svc_id = published ? SVC_PUBLISHED : SVC_VIP};

	assert_int_equal(bpf_map_update_elem(fd_rnat, &rk, &rn, BPF_ANY), 0);
}

/* ICMP has no ports: a probe's tuple may be the reply of an earlier one,
 * which the conntrack rightly passes on that flow's entry. */
static void ct_forget(const struct tuple *t, enum policy_dir dir, uint16_t ep)
{
	char path[256];
	_cleanup_close_ int fd = -EBADF;
	struct policy_ct_key k = {.saddr = htonl(t->saddr),
				  .daddr = htonl(t->daddr),
				  .sport = htons(t->sport),
				  .dport = htons(t->dport),
				  .proto = t->proto,
				  .dir = (uint8_t)dir,
				  .ep = ep};

	snprintf(path, sizeof(path), "%s/policy_ct", pin_dir);
	fd = bpf_obj_get(path);
	assert_true(fd >= 0);
	bpf_map_delete_elem(fd, &k);
}

static size_t probes_checked;

/* One new flow through one side's program: the tc verdict and the flow
 * event must be the evaluator's. */
static void probe(const struct policy_set *set, size_t e, enum policy_dir dir, uint32_t peer,
		  bool pub, uint8_t proto, uint16_t port)
{
	const struct policy_endpoint *ep = &endpoints[e];
	struct policy_party party = policy_model_party(&model, peer);
	struct policy_decision d;
	struct policy_value want;
	struct tuple t = {.proto = proto};
	uint32_t ret, peer_id = policy_compiled_identity(live, peer);

	if (proto == IPPROTO_TCP || proto == IPPROTO_UDP) {
		t.sport = next_sport++;
		t.dport = port;
	}
	t.saddr = dir == POLICY_EGRESS ? ep->addr : peer;
	t.daddr = dir == POLICY_EGRESS ? peer : ep->addr;
	if (pub)
		mark_published(&t, true);
	if (proto == IPPROTO_ICMP)
		ct_forget(&t, dir, ep->id);
	policy_eval_side(set, ep, dir, &party, pub, proto, t.dport, &d);
	want = eval_value(&d);
	n_evs = 0;
	ret = run_prog(dir == POLICY_EGRESS ? fd_from : fd_to, &t);
	assert_true(lb_policy_flowlog_consume(pol) >= 0);
	probes_checked++;
	if (ret != (want.verdict == POLICY_VERDICT_DENY ? RET_DROP : RET_PASS))
		fail_msg("%s %s peer %#x%s %u/%s: evaluator %s, program returned %d", ep->name,
			 policy_dir_str(dir), peer, pub ? " published" : "", port,
			 policy_proto_str(proto), policy_verdict_str(want.verdict), (int)ret);
	if (n_evs != 1)
		fail_msg("%s %s peer %#x %u/%s: %zu flow events, want 1", ep->name,
			 policy_dir_str(dir), peer, port, policy_proto_str(proto), n_evs);
	const struct policy_flow_event *ev = &evs[0];
	uint32_t want_peer = peer_id | (pub ? POLICY_ID_F_PUBLISHED : 0);

	if (ev->verdict != want.verdict || ev->policy != want.policy || ev->rule != want.rule)
		fail_msg("%s %s peer %#x%s %u/%s: evaluator %s policy %u rule %u, flow log %s "
			 "policy %u rule %u",
			 ep->name, policy_dir_str(dir), peer, pub ? " published" : "", port,
			 policy_proto_str(proto), policy_verdict_str(want.verdict), want.policy,
			 want.rule, policy_verdict_str(ev->verdict), ev->policy, ev->rule);
	assert_int_equal(ev->dir, dir);
	assert_int_equal(ev->ep, ep->id);
	assert_int_equal(ev->proto, proto);
	assert_int_equal(ev->saddr, htonl(t.saddr));
	assert_int_equal(ev->daddr, htonl(t.daddr));
	assert_int_equal(ntohs(ev->dport), t.dport);
	assert_int_equal(!!(ev->flags & POLICY_EV_F_PUBLISHED), pub);
	assert_int_equal(dir == POLICY_EGRESS ? ev->dst_identity : ev->src_identity, want_peer);
	assert_int_equal(dir == POLICY_EGRESS ? ev->src_identity : ev->dst_identity,
			 policy_compiled_identity(live, ep->addr));
}

static void probe_all(const struct policy_set *set)
{
	uint32_t peers[N_EPS + 2 + ARRAY_LEN(world_addrs)];
	size_t np = 0;

	for (size_t i = 0; i < N_EPS; i++)
		peers[np++] = endpoints[i].addr;
	for (size_t i = 0; i < 2; i++)
		peers[np++] = nodes[i].addr;
	for (size_t i = 0; i < ARRAY_LEN(world_addrs); i++)
		peers[np++] = world_addrs[i];
	ct_flush();
	next_sport = 10000;
	for (size_t e = 0; e < N_EPS; e++)
		for (int dir = 0; dir < 2; dir++)
			for (size_t k = 0; k < np; k++) {
				struct policy_party party = policy_model_party(&model, peers[k]);
				bool external = party.kind == POLICY_PARTY_WORLD ||
						party.kind == POLICY_PARTY_NODE;

				if (peers[k] == endpoints[e].addr)
					continue;
				for (int pub = 0; pub < 2; pub++) {
					if (pub && (dir != POLICY_INGRESS || !external))
						continue;
					for (size_t q = 0; q < ARRAY_LEN(protos); q++) {
						if (protos[q] == IPPROTO_ICMP) {
							/* one flow: no ports */
							if (!pub)
								probe(set, e, (enum policy_dir)dir,
								      peers[k], false, protos[q],
								      0);
							continue;
						}
						for (size_t pi = 0; pi < ARRAY_LEN(ports); pi++)
							probe(set, e, (enum policy_dir)dir,
							      peers[k], pub, protos[q], ports[pi]);
					}
				}
			}
}

/* ---- cases ---- */

static void test_generated_sets_equal_evaluator(void **state)
{
	(void)state;
	rng_state = 0x5eed0001;
	for (int round = 0; round < 6; round++) {
		struct gen_set g;

		gen_set(&g, 2 + (size_t)round);
		struct policy_set set = {.v = (struct policy *const *)g.v, .n = g.n};

		install(&set);
		probe_all(&set);
		gen_set_free(&g);
	}
	printf("%zu flows judged as the evaluator does\n", probes_checked);
	assert_true(probes_checked > 50000);
}

/* Hand-written cases each feature is sure to be in: a CIDR with an except,
 * a port range, deny over allow in one order, pass to the service tier,
 * baseline, published clients, audit. */
static struct gen_set fixed;

static struct policy_set fixed_set(void)
{
	if (!fixed.n) {
		fixed.v[fixed.n++] =
			parse("{'Name':'db-in','Selector':{'Service':'db'},'Types':['Ingress'],"
			      "'Ingress':[{'From':[{'Service':'web'}],'Ports':[{'Port':5432}]},"
			      "{'From':[{'CIDR':'10.0.0.0/8','Except':['10.9.0.0/16']}],"
			      "'Ports':[{'Port':8000,'EndPort':8100,'Protocol':'udp'}]},"
			      "{'From':[{'Entity':'published'}],'Ports':[{'Port':80}]}]}");
		fixed.v[fixed.n++] =
			parse("{'Name':'guard','Selector':{},'Tier':'cluster','Order':10,"
			      "'Types':['Ingress','Egress'],"
			      "'Ingress':[{'Action':'deny','From':[{'CIDR':'172.16.0.1/32'}]},"
			      "{'Action':'pass','From':[{'Service':'web'}]}],"
			      "'Egress':[{'Action':'deny','To':[{'CIDR':'8.8.8.8/32'}],"
			      "'Ports':[{'Port':53,'Protocol':'udp'}]}]}");
		fixed.v[fixed.n++] = parse(
			"{'Name':'guard-allow','Selector':{},'Tier':'cluster','Order':10,"
			"'Types':['Ingress'],'Ingress':[{'Action':'allow','From':[{'Labels':{}}]}]}");
		fixed.v[fixed.n++] = parse("{'Name':'watch','Selector':{'Service':'frontend'},"
					   "'Audit':true,'Types':['Egress'],"
					   "'Egress':[{'To':[{'Service':'db'}]}]}");
		fixed.v[fixed.n++] = parse(
			"{'Name':'floor','Selector':{'Labels':{'role':'ctr'}},'Tier':'baseline',"
			"'Order':5,"
			"'Types':['Ingress'],'Ingress':[{'Action':'deny','From':[{'Entity':'world'}]}]}");
		/* web may reach db's tcp/5432 and the world, nothing else */
		fixed.v[fixed.n++] =
			parse("{'Name':'web-out','Selector':{'Service':'web'},'Types':['Egress'],"
			      "'Egress':[{'To':[{'Service':'db'}],'Ports':[{'Port':5432}]},"
			      "{'To':[{'CIDR':'0.0.0.0/0'}]}]}");
	}
	return (struct policy_set){.v = (struct policy *const *)fixed.v, .n = fixed.n};
}

static void test_fixed_features(void **state)
{
	struct policy_set set = fixed_set();
	size_t before = probes_checked;

	(void)state;
	install(&set);
	probe_all(&set);
	assert_true(probes_checked > before);
}

static struct policy_counter counter_of(uint32_t policy, uint16_t rule, uint8_t verdict,
					uint8_t dir)
{
	struct lb_policy_counter *v = NULL;
	struct policy_counter c = {0};
	size_t n = 0;

	assert_int_equal(lb_policy_counters(pol, &v, &n), 0);
	for (size_t i = 0; i < n; i++)
		if (v[i].key.policy == policy && v[i].key.rule == rule &&
		    v[i].key.verdict == verdict && v[i].key.dir == dir)
			c = v[i].val;
	free(v);
	return c;
}

/* web.1 -> db.1:5432 is allowed by db-in's rule 0 at db's ingress. */
static void test_conntrack_skips_lookup(void **state)
{
	struct policy_set set = fixed_set();
	struct tuple t = {.saddr = IP(10, 1, 0, 2),
			  .daddr = IP(10, 1, 0, 20),
			  .sport = 50001,
			  .dport = 5432,
			  .proto = IPPROTO_TCP};
	struct tuple r = {.saddr = t.daddr,
			  .daddr = t.saddr,
			  .sport = t.dport,
			  .dport = t.sport,
			  .proto = t.proto};
	uint32_t db_in = 1; /* position + 1 */

	(void)state;
	install(&set);
	ct_flush();
	drain();
	uint64_t lookups = stat_of(POLICY_STAT_LOOKUP), hits = stat_of(POLICY_STAT_CT_HIT);
	struct policy_counter c0 = counter_of(db_in, 0, POLICY_VERDICT_ALLOW, POLICY_INGRESS);

	/* first packet: judged at both ends (web's egress, db's ingress) */
	assert_int_equal(run_prog(fd_from, &t), RET_PASS);
	assert_int_equal(run_prog(fd_to, &t), RET_PASS);
	assert_int_equal(stat_of(POLICY_STAT_LOOKUP), lookups + 2);
	struct policy_counter c1 = counter_of(db_in, 0, POLICY_VERDICT_ALLOW, POLICY_INGRESS);
	assert_int_equal(c1.flows, c0.flows + 1);
	assert_int_equal(c1.packets, c0.packets + 1);
	assert_int_equal(lb_policy_flowlog_consume(pol), 2);

	/* later packets and replies: the flow's entries, no lookup, no event */
	for (int i = 0; i < 5; i++) {
		assert_int_equal(run_prog(fd_from, &t), RET_PASS);
		assert_int_equal(run_prog(fd_to, &t), RET_PASS);
		assert_int_equal(run_prog(fd_from, &r), RET_PASS); /* db replies */
		assert_int_equal(run_prog(fd_to, &r), RET_PASS);   /* into web */
	}
	assert_int_equal(stat_of(POLICY_STAT_LOOKUP), lookups + 2);
	assert_int_equal(stat_of(POLICY_STAT_CT_HIT), hits + 20);
	struct policy_counter c2 = counter_of(db_in, 0, POLICY_VERDICT_ALLOW, POLICY_INGRESS);
	assert_int_equal(c2.flows, c1.flows);
	assert_int_equal(c2.packets, c1.packets + 10); /* 5 forward, 5 replies at db */
	assert_int_equal(lb_policy_flowlog_consume(pol), 0);

	/* A denied flow keeps its verdict too: 172.16.0.1 -> db. */
	struct tuple d = {.saddr = IP(172, 16, 0, 1),
			  .daddr = IP(10, 1, 0, 20),
			  .sport = 50002,
			  .dport = 5432,
			  .proto = IPPROTO_TCP};
	uint64_t drops = stat_of(POLICY_STAT_DROP);

	assert_int_equal(run_prog(fd_to, &d), RET_DROP);
	assert_int_equal(run_prog(fd_to, &d), RET_DROP);
	assert_int_equal(stat_of(POLICY_STAT_DROP), drops + 2);
	assert_int_equal(stat_of(POLICY_STAT_LOOKUP), lookups + 3);
	assert_int_equal(lb_policy_flowlog_consume(pol), 1);
	/* the denied flow's "replies" were never made passable */
	struct tuple dr = {.saddr = d.daddr,
			   .daddr = d.saddr,
			   .sport = d.dport,
			   .dport = d.sport,
			   .proto = d.proto};
	assert_int_equal(run_prog(fd_from, &dr), RET_PASS); /* judged anew as db's egress */
	assert_int_equal(stat_of(POLICY_STAT_LOOKUP), lookups + 4);
	drain();
}

/* An endpoint bound to its veth: what leaves that veth from another
 * address is dropped, before any policy; unbound, such a packet is not
 * judged as the endpoint's. */
static void test_veth_binding_drops_spoofed(void **state)
{
	struct policy_set set = fixed_set();
	struct shoal_err err = {0};
	struct tuple ok = {.saddr = IP(10, 1, 0, 2),
			   .daddr = IP(10, 1, 0, 20),
			   .sport = 50201,
			   .dport = 5432,
			   .proto = IPPROTO_TCP};
	struct tuple as_db = ok, as_world = ok;
	/* BPF_PROG_TEST_RUN runs tc programs on lo */
	struct lb_policy_endpoint e = {.addr = htonl(IP(10, 1, 0, 2)), .ep = 7, .ifindex = 1};

	(void)state;
	install(&set);
	ct_flush();
	e.identity = policy_compiled_identity(live, IP(10, 1, 0, 2));
	as_db.saddr = IP(10, 1, 0, 20);
	as_db.daddr = IP(10, 1, 0, 2);
	as_world.saddr = IP(8, 8, 8, 8);
	assert_int_equal(lb_policy_endpoint_set(pol, &e, &err), 0);
	uint64_t spoof = stat_of(POLICY_STAT_SPOOF);

	assert_int_equal(run_prog(fd_from, &ok), RET_PASS);
	assert_int_equal(run_prog(fd_from, &as_db), RET_DROP);
	assert_int_equal(run_prog(fd_from, &as_world), RET_DROP);
	assert_int_equal(stat_of(POLICY_STAT_SPOOF), spoof + 2);
	/* unbound again: by address, as install() registers them */
	e.ifindex = 0;
	assert_int_equal(lb_policy_endpoint_set(pol, &e, &err), 0);
	assert_int_equal(run_prog(fd_from, &as_world), RET_PASS);
	assert_int_equal(stat_of(POLICY_STAT_SPOOF), spoof + 2);
	drain();
}

/* A flow keeps its verdict until its endpoint's entries change; then its
 * next packet (either way) is judged under the new ones, and again after a
 * second change back to the first generation. */
static void test_generation_flip_mid_flow(void **state)
{
	struct policy_set allow = fixed_set();
	struct policy *deny_p[1] = {parse(
		"{'Name':'lockdown','Selector':{'Service':'db'},'Tier':'cluster','Order':1,"
		"'Types':['Ingress'],'Ingress':[{'Action':'deny','From':[{'Service':'web'}]}]}")};
	struct policy_set deny = {.v = deny_p, .n = 1};
	struct tuple t = {.saddr = IP(10, 1, 0, 2),
			  .daddr = IP(10, 1, 0, 20),
			  .sport = 50101,
			  .dport = 5432,
			  .proto = IPPROTO_TCP};
	struct tuple r = {.saddr = t.daddr,
			  .daddr = t.saddr,
			  .sport = t.dport,
			  .dport = t.sport,
			  .proto = t.proto};

	(void)state;
	install(&allow);
	ct_flush();
	drain();
	assert_int_equal(run_prog(fd_to, &t), RET_PASS);
	assert_int_equal(run_prog(fd_from, &r), RET_PASS);
	uint64_t stale = stat_of(POLICY_STAT_CT_STALE);

	install(&deny);
	drain();
	/* the reply side sees the change first: judged as db's ingress */
	assert_int_equal(run_prog(fd_from, &r), RET_DROP);
	assert_int_equal(stat_of(POLICY_STAT_CT_STALE), stale + 1);
	assert_int_equal(lb_policy_flowlog_consume(pol), 1);
	assert_int_equal(evs[0].verdict, POLICY_VERDICT_DENY);
	assert_int_equal(evs[0].policy, 1);
	assert_int_equal(evs[0].rule, 0);
	assert_int_equal(evs[0].dir, POLICY_INGRESS);
	assert_true(evs[0].flags & POLICY_EV_F_REJUDGED);
	assert_int_equal(evs[0].saddr, htonl(t.saddr)); /* the flow as first seen */
	assert_int_equal(run_prog(fd_to, &t), RET_DROP);
	drain();

	/* back to the first policies: the live generation is the first one
	 * again, and the flow is judged again all the same */
	install(&allow);
	drain();
	assert_int_equal(run_prog(fd_to, &t), RET_PASS);
	assert_int_equal(run_prog(fd_from, &r), RET_PASS);
	assert_int_equal(lb_policy_flowlog_consume(pol), 1);
	assert_int_equal(evs[0].policy, 1); /* db-in */
	assert_int_equal(evs[0].verdict, POLICY_VERDICT_ALLOW);
	policy_free(deny_p[0]);
}

/* Published: the real load balancer DNATs a client to a published port's
 * backend (db.1:80); the DNATed packet at db's veth is a published flow. */
static void test_published_through_lb(void **state)
{
	struct policy_set set = fixed_set();
	struct lb_service_key k = {.addr = 0, .port = 30080, .proto = IPPROTO_TCP};
	struct lb_backend_spec be = {
		.addr = htonl(IP(10, 1, 0, 20)), .port = 80, .state = LB_BACKEND_ACTIVE};
	struct shoal_err err = {0};
	struct pkt_spec s = {.proto = IPPROTO_TCP,
			     .saddr = "8.8.4.4",
			     .daddr = "192.168.1.1",
			     .sport = 40000,
			     .dport = 30080};
	struct pkt in, out;

	(void)state;
	install(&set);
	drain();
	if (lb_service_upsert(lb, &k, &be, 1, &err) < 0)
		fail_msg("service: %s", err.msg);
	build(&s, &in);
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = in.b, .data_size_in = in.len,
		    .data_out = out.b, .data_size_out = sizeof(out.b), .repeat = 1);
	assert_int_equal(bpf_prog_test_run_opts(lb_prog_fd(lb, LB_HOOK_INGRESS), &o), 0);
	out.len = o.data_size_out;
	assert_int_equal(ip_of(&out)->daddr, htonl(IP(10, 1, 0, 20)));
	LIBBPF_OPTS(bpf_test_run_opts, o2, .data_in = out.b, .data_size_in = out.len, .repeat = 1);
	assert_int_equal(bpf_prog_test_run_opts(fd_to, &o2), 0);
	assert_int_equal(o2.retval, RET_PASS);
	assert_int_equal(lb_policy_flowlog_consume(pol), 1);
	assert_true(evs[0].flags & POLICY_EV_F_PUBLISHED);
	assert_int_equal(evs[0].src_identity,
			 policy_compiled_identity(live, IP(8, 8, 4, 4)) | POLICY_ID_F_PUBLISHED);
	assert_int_equal(evs[0].policy, 1); /* db-in's published rule */
	assert_int_equal(evs[0].rule, 2);

	/* The same client straight to db.1:80, not through the published
	 * port: world, which nothing allows at db's isolated ingress. */
	struct tuple t = {.saddr = IP(8, 8, 4, 4),
			  .daddr = IP(10, 1, 0, 20),
			  .sport = 40001,
			  .dport = 80,
			  .proto = IPPROTO_TCP};
	assert_int_equal(run_prog(fd_to, &t), RET_DROP);
	assert_int_equal(lb_service_delete(lb, &k, &err), 0);
	drain();
}

/* ---- the socket hooks ---- */

struct sock_result {
	int err[64];
	int n;
};

static struct sock_result *shared_res;

struct sock_target {
	uint32_t addr;
	uint16_t port;
	uint8_t proto;
};

static const struct sock_target targets[] = {
	{IP(10, 1, 0, 20), 5432, IPPROTO_TCP},	 {IP(10, 1, 0, 20), 5433, IPPROTO_TCP},
	{IP(10, 1, 0, 20), 8050, IPPROTO_UDP},	 {IP(10, 1, 0, 10), 80, IPPROTO_TCP},
	{IP(8, 8, 8, 8), 53, IPPROTO_UDP},	 {IP(8, 8, 8, 8), 53, IPPROTO_TCP},
	{IP(10, 254, 0, 10), 5432, IPPROTO_TCP}, /* a VIP balanced to db.1 */
	{IP(10, 254, 0, 10), 5432, IPPROTO_UDP},
};

/* In the cgroup: connect() (TCP) and sendto() (UDP) to every target; the
 * errno of each, 0 for success. Nothing routes 10/8 or 8/8 in the test's
 * namespace: an allowed attempt fails later with ENETUNREACH. */
static void sock_client(void)
{
	for (size_t i = 0; i < ARRAY_LEN(targets); i++) {
		struct sockaddr_in sa = {.sin_family = AF_INET,
					 .sin_port = htons(targets[i].port),
					 .sin_addr.s_addr = htonl(targets[i].addr)};
		int fd = socket(AF_INET, targets[i].proto == IPPROTO_TCP ? SOCK_STREAM : SOCK_DGRAM,
				0);
		int r;

		if (fd < 0)
			_exit(4);
		if (targets[i].proto == IPPROTO_TCP)
			r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
		else
			r = (int)sendto(fd, "x", 1, 0, (struct sockaddr *)&sa, sizeof(sa));
		shared_res->err[i] = r < 0 ? errno : 0;
		close(fd);
	}
	shared_res->n = (int)ARRAY_LEN(targets);
}

static void test_socket_agrees_with_veth(void **state)
{
	struct policy_set set = fixed_set();
	struct shoal_err err = {0};
	struct stat st;
	struct statfs fs;
	pid_t pid;
	int status = 0;

	(void)state;
	if (statfs(CG_ROOT, &fs) < 0 || fs.f_type != CGROUP2_SUPER_MAGIC) {
		/* The socket half needs cgroup v2; the veth half ran. */
		print_message("SKIP part: no cgroup v2 hierarchy at %s\n", CG_ROOT);
		skip();
	}
	if (lb_feature(lb, LB_FEAT_SOCKET_LB)->state != LB_FEATURE_ON) {
		/* forced off (SHOAL_LB_DISABLE=socket-lb) or missing: refused
		 * with the reason */
		assert_true(lb_policy_sock_attach(pol, CG_ROOT, &err) < 0);
		assert_non_null(strstr(err.msg, "socket"));
		return;
	}
	install(&set);
	snprintf(cg_path, sizeof(cg_path), "%s/%s%d", CG_ROOT, CG_PREFIX, getpid());
	if (mkdir(cg_path, 0755) < 0)
		fail_msg("creating cgroup %s: %s", cg_path, strerror(errno));
	assert_int_equal(stat(cg_path, &st), 0);
	/* web.1's processes: the cgroup id is the directory's inode */
	struct lb_policy_endpoint e = {.addr = htonl(IP(10, 1, 0, 2)),
				       .ep = 7,
				       .identity = policy_compiled_identity(live, IP(10, 1, 0, 2)),
				       .cgroup_id = st.st_ino};
	assert_int_equal(lb_policy_endpoint_set(pol, &e, &err), 0);
	/* a VIP whose backend is db.1:5432 (tcp) and db.1:8050 (udp) */
	struct lb_service_key vt = {
		.addr = htonl(IP(10, 254, 0, 10)), .port = 5432, .proto = IPPROTO_TCP};
	struct lb_service_key vu = {
		.addr = htonl(IP(10, 254, 0, 10)), .port = 5432, .proto = IPPROTO_UDP};
	struct lb_backend_spec bt = {
		.addr = htonl(IP(10, 1, 0, 20)), .port = 5432, .state = LB_BACKEND_ACTIVE};
	struct lb_backend_spec bu = {
		.addr = htonl(IP(10, 1, 0, 20)), .port = 8050, .state = LB_BACKEND_ACTIVE};
	assert_int_equal(lb_service_upsert(lb, &vt, &bt, 1, &err), 0);
	assert_int_equal(lb_service_upsert(lb, &vu, &bu, 1, &err), 0);
	/* the balancer first, then policy after it */
	if (lb_sock_attach(lb, cg_path, &err) < 0)
		fail_msg("lb_sock_attach: %s", err.msg);
	if (lb_policy_sock_attach(pol, cg_path, &err) < 0)
		fail_msg("lb_policy_sock_attach: %s", err.msg);
	drain();
	memset(shared_res, 0, sizeof(*shared_res));
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char procs[300], me[32];
		int f;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		snprintf(procs, sizeof(procs), "%s/cgroup.procs", cg_path);
		snprintf(me, sizeof(me), "%d\n", getpid());
		f = open(procs, O_WRONLY | O_CLOEXEC);
		if (f < 0 || write(f, me, strlen(me)) < 0)
			_exit(3);
		close(f);
		sock_client();
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(shared_res->n, (int)ARRAY_LEN(targets));

	int denied = 0, allowed = 0;

	for (size_t i = 0; i < ARRAY_LEN(targets); i++) {
		struct tuple t = {.saddr = IP(10, 1, 0, 2),
				  .daddr = targets[i].addr,
				  .sport = (uint16_t)(51000 + i),
				  .dport = targets[i].port,
				  .proto = targets[i].proto};
		bool vip = targets[i].addr == IP(10, 254, 0, 10);

		if (vip) {
			/* the veth sees the backend the balancer chose */
			t.daddr = IP(10, 1, 0, 20);
			t.dport = targets[i].proto == IPPROTO_TCP ? 5432 : 8050;
		}
		uint32_t ret = run_prog(fd_from, &t);
		bool sock_denied = shared_res->err[i] == EPERM;

		printf("web.1 -> %s %#x:%u: socket %s (%s), veth %s\n",
		       targets[i].proto == IPPROTO_TCP ? "tcp" : "udp", targets[i].addr,
		       targets[i].port, sock_denied ? "refused" : "passed",
		       strerror(shared_res->err[i]), ret == RET_DROP ? "drop" : "pass");
		if (sock_denied != (ret == RET_DROP))
			fail_msg("socket and veth disagree on target %zu", i);
		if (!sock_denied && shared_res->err[i] != ENETUNREACH && shared_res->err[i] != 0)
			fail_msg("target %zu: unexpected %s", i, strerror(shared_res->err[i]));
		denied += sock_denied;
		allowed += !sock_denied;
	}
	/* guard's deny of 8.8.8.8:53/udp, web-out's isolation (db:5433,
	 * db:8050/udp, frontend:80) and the UDP VIP, whose backend is db:8050
	 * though the VIP's own address is world, which web-out allows */
	assert_int_equal(denied, 5);
	assert_int_equal(allowed, 3);
	assert_int_equal(shared_res->err[7], EPERM);
	assert_true(stat_of(POLICY_STAT_SOCK_DENY) >= (uint64_t)denied);
	/* the socket's events carry its flag */
	assert_true(lb_policy_flowlog_consume(pol) > 0);
	bool sock_ev = false;

	for (size_t i = 0; i < n_evs && i < EV_MAX; i++)
		sock_ev |= (evs[i].flags & POLICY_EV_F_SOCKET) != 0;
	assert_true(sock_ev);
	assert_int_equal(lb_policy_sock_detach(pol, cg_path, &err), 0);
	assert_int_equal(lb_sock_detach(lb, cg_path, &err), 0);
	assert_int_equal(lb_service_delete(lb, &vt, &err), 0);
	assert_int_equal(lb_service_delete(lb, &vu, &err), 0);
	drain();
}

/* An endpoint whose egress is isolated ("Egress": []) answers the UDP
 * datagrams its ingress allowed: its server socket's sendto() to the
 * client, and a connect() back to it, find the flow's reply entry as the
 * veth does, and are not refused as new egress. Its other egress is. */
#define ANSWER_PORT 7000

static void answer_client(void)
{
	struct sockaddr_in me = {.sin_family = AF_INET, .sin_port = htons(ANSWER_PORT)};
	struct sockaddr_in db = {.sin_family = AF_INET,
				 .sin_port = htons(8050),
				 .sin_addr.s_addr = htonl(IP(10, 1, 0, 20))};
	struct sockaddr_in other = db;
	int one = 1, s = socket(AF_INET, SOCK_DGRAM, 0), u = socket(AF_INET, SOCK_DGRAM, 0);
	int r;

	if (s < 0 || u < 0)
		_exit(4);
	other.sin_port = htons(8051);
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(s, (struct sockaddr *)&me, sizeof(me)) < 0)
		_exit(5);
	r = (int)sendto(s, "x", 1, 0, (struct sockaddr *)&db, sizeof(db));
	shared_res->err[0] = r < 0 ? errno : 0;
	r = (int)sendto(s, "x", 1, 0, (struct sockaddr *)&other, sizeof(other));
	shared_res->err[1] = r < 0 ? errno : 0;
	r = (int)sendto(u, "x", 1, 0, (struct sockaddr *)&db, sizeof(db));
	shared_res->err[2] = r < 0 ? errno : 0;
	r = connect(s, (struct sockaddr *)&db, sizeof(db));
	shared_res->err[3] = r < 0 ? errno : 0;
	close(s);
	close(u);
	shared_res->n = 4;
}

static void run_in_cgroup(void (*fn)(void))
{
	int status = 0;
	pid_t pid;

	memset(shared_res, 0, sizeof(*shared_res));
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char procs[300], me[32];
		int f;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		snprintf(procs, sizeof(procs), "%s/cgroup.procs", cg_path);
		snprintf(me, sizeof(me), "%d\n", getpid());
		f = open(procs, O_WRONLY | O_CLOEXEC);
		if (f < 0 || write(f, me, strlen(me)) < 0)
			_exit(3);
		close(f);
		fn();
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* Passed by the socket hook: no EPERM; nothing routes 10/8 here. */
static bool sock_passed(int e)
{
	return e == 0 || e == ENETUNREACH;
}

static void test_socket_answers_allowed_ingress(void **state)
{
	struct gen_set g = {0};
	struct shoal_err err = {0};
	struct stat st;
	struct statfs fs;
	struct tuple in = {.saddr = IP(10, 1, 0, 20),
			   .daddr = IP(10, 1, 0, 2),
			   .sport = 8050,
			   .dport = ANSWER_PORT,
			   .proto = IPPROTO_UDP};
	struct tuple reply = {.saddr = in.daddr,
			      .daddr = in.saddr,
			      .sport = in.dport,
			      .dport = in.sport,
			      .proto = in.proto};

	(void)state;
	if (statfs(CG_ROOT, &fs) < 0 || fs.f_type != CGROUP2_SUPER_MAGIC) {
		print_message("SKIP: no cgroup v2 hierarchy at %s\n", CG_ROOT);
		skip();
	}
	if (lb_feature(lb, LB_FEAT_SOCKET_LB)->state != LB_FEATURE_ON)
		return; /* refused with the reason: test_socket_agrees_with_veth */
	g.v[g.n++] = parse("{'Name':'web-quiet','Selector':{'Service':'web'},"
			   "'Types':['Ingress','Egress'],"
			   "'Ingress':[{'From':[{'Service':'db'}]}],'Egress':[]}");
	struct policy_set set = {.v = (struct policy *const *)g.v, .n = g.n};

	install(&set);
	ct_flush();
	snprintf(cg_path, sizeof(cg_path), "%s/%s%d", CG_ROOT, CG_PREFIX, getpid());
	if (mkdir(cg_path, 0755) < 0 && errno != EEXIST)
		fail_msg("creating cgroup %s: %s", cg_path, strerror(errno));
	assert_int_equal(stat(cg_path, &st), 0);
	struct lb_policy_endpoint e = {.addr = htonl(IP(10, 1, 0, 2)),
				       .ep = 7,
				       .identity = policy_compiled_identity(live, IP(10, 1, 0, 2)),
				       .cgroup_id = st.st_ino};
	assert_int_equal(lb_policy_endpoint_set(pol, &e, &err), 0);
	if (lb_policy_sock_attach(pol, cg_path, &err) < 0)
		fail_msg("lb_policy_sock_attach: %s", err.msg);
	drain();

	/* before db's datagram: web.1's egress is isolated, all refused */
	run_in_cgroup(answer_client);
	assert_int_equal(shared_res->n, 4);
	for (int i = 0; i < 4; i++)
		if (shared_res->err[i] != EPERM)
			fail_msg("web.1 step %d before any ingress: %s, want EPERM", i,
				 strerror(shared_res->err[i]));
	assert_int_equal(run_prog(fd_from, &reply), RET_DROP);
	ct_flush();

	/* db.1:8050 -> web.1:7000 allowed at web's ingress; then web.1
	 * answers from 7000, by sendto() and by connect() */
	assert_int_equal(run_prog(fd_to, &in), RET_PASS);
	uint64_t sock_deny = stat_of(POLICY_STAT_SOCK_DENY);
	run_in_cgroup(answer_client);
	assert_int_equal(shared_res->n, 4);
	if (!sock_passed(shared_res->err[0]))
		fail_msg("sendto() answering an allowed datagram: %s",
			 strerror(shared_res->err[0]));
	assert_int_equal(shared_res->err[1], EPERM); /* another port of db: new egress */
	assert_int_equal(shared_res->err[2], EPERM); /* another local port: new egress */
	if (!sock_passed(shared_res->err[3]))
		fail_msg("connect() back to an allowed client: %s", strerror(shared_res->err[3]));
	assert_int_equal(stat_of(POLICY_STAT_SOCK_DENY), sock_deny + 2);
	/* the veth passes the answer on the same flow */
	assert_int_equal(run_prog(fd_from, &reply), RET_PASS);

	/* db's ingress taken away: the flow is judged again at the veth as
	 * web's ingress and its answers dropped there */
	policy_free(g.v[0]);
	g.v[0] = parse("{'Name':'web-quiet','Selector':{'Service':'web'},"
		       "'Types':['Ingress','Egress'],'Ingress':[],'Egress':[]}");
	install(&set);
	assert_int_equal(lb_policy_endpoint_set(pol, &e, &err), 0);
	assert_int_equal(run_prog(fd_from, &reply), RET_DROP);

	assert_int_equal(lb_policy_sock_detach(pol, cg_path, &err), 0);
	gen_set_free(&g);
	ct_flush();
	drain();
}

/* ---- restart ---- */

/* A new handle on the same pins enforces what the old one left, before
 * anything is written, and reads back the state it needs for the next
 * diff; entries of a generation that is not live are cleared. */
static void test_restart_keeps_state(void **state)
{
	struct policy_set set = fixed_set();
	struct lb_policy_open_opts o = {.pin_dir = pin_dir, .lb = lb};
	struct shoal_err err = {0};
	struct policy_compiled *loaded = NULL, *again;
	struct policy_ops ops = {0};
	struct tuple d = {.saddr = IP(172, 16, 0, 1),
			  .daddr = IP(10, 1, 0, 20),
			  .sport = 50301,
			  .dport = 5432,
			  .proto = IPPROTO_TCP};

	(void)state;
	install(&set);
	lb_policy_close(pol);
	pol = NULL;
	if (lb_policy_open(&o, &pol, &err) < 0)
		fail_msg("reopen: %s", err.msg);
	fd_from = lb_policy_prog_fd(pol, LB_POLICY_FROM_EP);
	fd_to = lb_policy_prog_fd(pol, LB_POLICY_TO_EP);
	assert_int_equal(lb_policy_flowlog_open(pol, flow_cb, NULL, &err), 0);
	assert_int_equal(run_prog(fd_to, &d), RET_DROP);

	/* a leftover of an update that stopped half way */
	char path[256];
	_cleanup_close_ int fd_map = -EBADF;
	struct policy_key stray = {.prefixlen = POLICY_KEY_FULL_BITS,
				   .ep = 4,
				   .dir = 0,
				   .identity = 77,
				   .proto = IPPROTO_TCP,
				   .port = htons(9)};
	struct policy_value sv = {.verdict = POLICY_VERDICT_DENY};

	snprintf(path, sizeof(path), "%s/policy_map", pin_dir);
	fd_map = bpf_obj_get(path);
	assert_true(fd_map >= 0);
	for (size_t i = 0; i < live->n_eps; i++)
		if (live->eps[i].ep == 4)
			stray.gen = live->eps[i].gen ^ 1;
	assert_int_equal(bpf_map_update_elem(fd_map, &stray, &sv, BPF_ANY), 0);

	if (lb_policy_state_load(pol, &loaded, &err) < 0)
		fail_msg("state load: %s", err.msg);
	assert_true(bpf_map_lookup_elem(fd_map, &stray, &sv) < 0);
	assert_int_equal(loaded->n_eps, live->n_eps);
	assert_int_equal(loaded->n_ipcache, live->n_ipcache);
	again = compile(&set);
	assert_int_equal(policy_diff(loaded, again, &ops), 0);
	assert_int_equal(ops.n, 0); /* nothing to write: the maps hold it all */
	policy_ops_done(&ops);
	policy_compiled_free(again);
	policy_compiled_free(live);
	live = loaded;
}

/* ---- attached: real packets ---- */

static struct policy_label srv_labels[] = {{"role", "srv"}};
static struct policy_label cli_labels[] = {{"role", "cli"}};
static const struct policy_endpoint lo_eps[] = {
	{20, "srv", "srv", {srv_labels, 1}, NULL, 0, IP(127, 0, 0, 2), "n1"},
	{21, "cli", "cli", {cli_labels, 1}, NULL, 0, IP(127, 0, 0, 3), "n1"},
};

static int udp_bound(uint32_t addr, uint16_t port)
{
	struct sockaddr_in sa = {
		.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(addr)};
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

static void udp_send(int fd, uint32_t addr, uint16_t port, char c)
{
	struct sockaddr_in sa = {
		.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(addr)};

	assert_int_equal(sendto(fd, &c, 1, 0, (struct sockaddr *)&sa, sizeof(sa)), 1);
}

/* Both programs on lo's tc hooks, endpoints on loopback addresses: a
 * datagram the receiver's ingress denies never arrives, one it allows does
 * (lo delivers in order, so the allowed one sent after the denied one
 * shows the denied one is not merely late). Detach restores the path. */
static void test_veth_attached_lo(void **state)
{
	struct policy *pp[1] = {parse("{'Name':'srv-in','Selector':{'Service':'srv'},"
				      "'Types':['Ingress'],'Ingress':[{'From':[{'Service':'cli'}],"
				      "'Ports':[{'Port':7000,'Protocol':'udp'}]}]}")};
	struct policy_set set = {.v = pp, .n = 1};
	struct policy_model m = {
		.endpoints = lo_eps, .n_endpoints = 2, .nodes = nodes, .n_nodes = 2};
	struct policy_compiled *c = NULL;
	struct policy_ops ops = {0};
	struct shoal_err err = {0};
	_cleanup_close_ int cli = -EBADF, srv_ok = -EBADF, srv_no = -EBADF;
	char buf[4];

	(void)state;
	if (policy_compile(&set, &m, &c, &err) < 0)
		fail_msg("compile: %s", err.msg);
	assert_int_equal(policy_diff(live, c, &ops), 0);
	assert_int_equal(lb_policy_apply(pol, c, &ops, &err), 0);
	policy_ops_done(&ops);
	policy_compiled_free(live);
	live = c;
	for (size_t i = 0; i < 2; i++) {
		struct lb_policy_endpoint e = {.addr = htonl(lo_eps[i].addr),
					       .ep = lo_eps[i].id,
					       .identity =
						       policy_compiled_identity(c, lo_eps[i].addr)};

		assert_int_equal(lb_policy_endpoint_set(pol, &e, &err), 0);
	}
	if (lb_policy_veth_attach(pol, 1, &err) < 0)
		fail_msg("attach to lo: %s", err.msg);
	drain();
	uint64_t drops = stat_of(POLICY_STAT_DROP);

	cli = udp_bound(IP(127, 0, 0, 3), 0);
	srv_ok = udp_bound(IP(127, 0, 0, 2), 7000);
	srv_no = udp_bound(IP(127, 0, 0, 2), 7001);
	udp_send(cli, IP(127, 0, 0, 2), 7001, 'n');
	udp_send(cli, IP(127, 0, 0, 2), 7000, 'y');
	assert_int_equal(recv(srv_ok, buf, sizeof(buf), 0), 1);
	assert_int_equal(buf[0], 'y');
	assert_int_equal(recv(srv_no, buf, sizeof(buf), MSG_DONTWAIT), -1);
	assert_int_equal(errno, EAGAIN);
	assert_int_equal(stat_of(POLICY_STAT_DROP), drops + 1);
	assert_true(lb_policy_flowlog_consume(pol) >= 2);

	/* detached: the same datagram arrives */
	assert_int_equal(lb_policy_veth_detach(pol, 1, &err), 0);
	udp_send(cli, IP(127, 0, 0, 2), 7001, 'n');
	assert_int_equal(recv(srv_no, buf, sizeof(buf), 0), 1);
	assert_int_equal(stat_of(POLICY_STAT_DROP), drops + 1);
	/* detaching twice is fine */
	assert_int_equal(lb_policy_veth_detach(pol, 1, &err), 0);
	policy_free(pp[0]);
	drain();
}

/* ---- flow log transport ---- */

static void test_flowlog_transport(void **state)
{
	const char *env = getenv(LB_DISABLE_ENV);
	bool forced_off = env && strstr(env, "ringbuf");
	struct tuple t = {.saddr = IP(10, 1, 0, 2),
			  .daddr = IP(10, 1, 0, 20),
			  .sport = 50401,
			  .dport = 5432,
			  .proto = IPPROTO_TCP};
	struct pollfd pfd = {.fd = lb_policy_flowlog_fd(pol), .events = POLLIN};

	(void)state;
	printf("flow log: %s (%s)\n",
	       lb_policy_ringbuf(pol)->state == LB_FEATURE_ON ? "ring buffer" : "queue",
	       lb_policy_ringbuf(pol)->reason);
	if (forced_off)
		assert_int_equal(lb_policy_ringbuf(pol)->state, LB_FEATURE_UNAVAILABLE);
	else
		assert_int_equal(lb_policy_ringbuf(pol)->state, LB_FEATURE_ON);
	drain();
	assert_true(pfd.fd >= 0);
	if (!forced_off) /* the queue's timer ticks whether or not events wait */
		assert_int_equal(poll(&pfd, 1, 0), 0);
	assert_int_equal(run_prog(fd_to, &t), RET_PASS);
	/* readable once an event waits: what the agent's loop waits on */
	assert_int_equal(poll(&pfd, 1, 1000), 1);
	assert_int_equal(lb_policy_flowlog_consume(pol), 1);
	assert_int_equal(evs[0].policy, 1);
	assert_true(evs[0].ts_ns > 0);
	assert_int_equal(lb_policy_flowlog_lost(pol), 0);
}

/* ---- setup ---- */

static void cleanup(void)
{
	lb_policy_close(pol);
	pol = NULL;
	lb_close(lb);
	lb = NULL;
	if (pin_dir[0])
		rm_rf(pin_dir);
	if (cg_path[0])
		rmdir(cg_path);
	policy_compiled_free(live);
	live = NULL;
	gen_set_free(&fixed);
}

static int setup_all(void)
{
	struct lb_policy_open_opts o = {.pin_dir = pin_dir};
	struct shoal_err err = {0};

	if (lb_open(NULL, &lb, &err) < 0) {
		printf("FAIL: cannot load the load balancer programs: %s\n", err.msg);
		return 1;
	}
	o.lb = lb;
	if (lb_policy_open(&o, &pol, &err) < 0) {
		printf("FAIL: cannot load the policy programs: %s\n", err.msg);
		return 1;
	}
	if (lb_feature(lb, LB_FEAT_SOCKET_LB)->state == LB_FEATURE_ON &&
	    lb_policy_prog_fd(pol, LB_POLICY_CONNECT4) < 0) {
		printf("FAIL: the policy socket programs did not load\n");
		return 1;
	}
	fd_from = lb_policy_prog_fd(pol, LB_POLICY_FROM_EP);
	fd_to = lb_policy_prog_fd(pol, LB_POLICY_TO_EP);
	fd_rnat = lb_prog_map_fd(lb_prog_fd(lb, LB_HOOK_INGRESS), "lb_rnat");
	fd_svc_keys = lb_prog_map_fd(lb_prog_fd(lb, LB_HOOK_INGRESS), "lb_svc_keys");
	if (fd_rnat < 0 || fd_svc_keys < 0) {
		printf("FAIL: the load balancer's reverse NAT maps are not found\n");
		return 1;
	}
	/* the service ids the published marks use, clear of the ones
	 * lb_service_upsert() hands out in these cases */
	struct lb_svc_key pub = {.addr = 0, .port = htons(30080), .proto = IPPROTO_TCP};
	struct lb_svc_key vip = {
		.addr = htonl(IP(10, 96, 0, 1)), .port = htons(80), .proto = IPPROTO_TCP};
	uint32_t one = SVC_PUBLISHED, two = SVC_VIP;

	if (bpf_map_update_elem(fd_svc_keys, &one, &pub, BPF_ANY) < 0 ||
	    bpf_map_update_elem(fd_svc_keys, &two, &vip, BPF_ANY) < 0) {
		printf("FAIL: writing service keys: %m\n");
		return 1;
	}
	if (lb_policy_flowlog_open(pol, flow_cb, NULL, &err) < 0) {
		printf("FAIL: flow log: %s\n", err.msg);
		return 1;
	}
	shared_res = mmap(NULL, sizeof(*shared_res), PROT_READ | PROT_WRITE,
			  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shared_res == MAP_FAILED)
		return 1;
	return 0;
}

/* ---- benchmark ---- */

/* n rules at db.1's ingress, each from its own /24 (its own identity) to
 * tcp/5432, in policies of at most 250 rules; n 0: nothing selects db. */
static struct gen_set *bench_policies(size_t n, struct gen_set *g)
{
	size_t per = 250;
	char *buf = malloc(64 + per * 96);

	g->n = 0;
	for (size_t base = 0; base < n && buf; base += per) {
		size_t k = n - base < per ? n - base : per;
		int len = sprintf(buf,
				  "{\"Name\":\"bench%zu\",\"Selector\":{\"Service\":\"db\"},"
				  "\"Types\":[\"Ingress\"],\"Ingress\":[",
				  base / per);

		for (size_t i = 0; i < k; i++) {
			size_t r = base + i;

			len += sprintf(buf + len,
				       "%s{\"From\":[{\"CIDR\":\"10.%zu.%zu.0/24\"}],"
				       "\"Ports\":[{\"Port\":5432}]}",
				       i ? "," : "", 100 + r / 256, r % 256);
		}
		sprintf(buf + len, "]}");
		struct policy *p = NULL;
		struct shoal_err err = {0};

		if (policy_from_text(buf, strlen(buf), &p, &err) < 0) {
			fprintf(stderr, "bench policy: %s\n", err.msg);
			abort();
		}
		g->v[g->n++] = p;
	}
	free(buf);
	return g;
}

static int u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

static uint64_t run_once_ns(int fd, const struct tuple *t, uint8_t flags)
{
	struct pkt_spec s = {.proto = t->proto,
			     .saddr_n = htonl(t->saddr),
			     .daddr_n = htonl(t->daddr),
			     .sport = t->sport,
			     .dport = t->dport,
			     .tcp_flags = flags};
	struct pkt p;

	build(&s, &p);
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = p.b, .data_size_in = p.len, .repeat = 1);
	if (bpf_prog_test_run_opts(fd, &o) < 0)
		abort();
	return o.duration;
}

/* Medians over n flows of one run each (BPF_PROG_TEST_RUN's own timing of
 * the program, one packet): the flow's first packet, and its second, which
 * its conntrack entry decides. */
static void bench_new(int fd, const struct tuple *t0, int n, uint64_t *ret_new,
		      uint64_t *ret_second)
{
	uint64_t *a = calloc((size_t)n, sizeof(*a)), *b = calloc((size_t)n, sizeof(*b));
	struct tuple t = *t0;

	if (!a || !b)
		abort();
	for (int i = 0; i < n; i++) {
		a[i] = run_once_ns(fd, &t, TCP_FLAG_SYN_);
		b[i] = run_once_ns(fd, &t, TCP_FLAG_ACK_);
		t.sport++;
		if (t.sport < 1024)
			t.sport = 1024;
	}
	qsort(a, (size_t)n, sizeof(*a), u64_cmp);
	qsort(b, (size_t)n, sizeof(*b), u64_cmp);
	*ret_new = a[n / 2];
	*ret_second = b[n / 2];
	free(a);
	free(b);
}

static uint64_t bench_established(int fd, const struct tuple *t, int repeat)
{
	struct pkt_spec s = {.proto = t->proto,
			     .saddr_n = htonl(t->saddr),
			     .daddr_n = htonl(t->daddr),
			     .sport = t->sport,
			     .dport = t->dport,
			     .tcp_flags = TCP_FLAG_ACK_};
	struct pkt p;

	build(&s, &p);
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = p.b, .data_size_in = p.len,
		    .repeat = (uint32_t)repeat);
	if (bpf_prog_test_run_opts(fd, &o) < 0)
		abort();
	return o.duration;
}

static int bench(void)
{
	static const size_t sizes[] = {0, 10, 1000, 10000};
	struct tuple t = {.saddr = IP(10, 100, 0, 5),
			  .daddr = IP(10, 1, 0, 20),
			  .sport = 20000,
			  .dport = 5432,
			  .proto = IPPROTO_TCP};
	struct gen_set g;

	printf("veth program (tc egress: delivered to the endpoint), per packet, "
	       "BPF_PROG_TEST_RUN\n");
	printf("(new and 2nd: median of one-packet runs; established: mean of 10^6 "
	       "repeats)\n");
	printf("%8s %8s %8s %8s %12s %8s\n", "rules", "entries", "new-ns", "2nd-ns", "established",
	       "verdict");
	for (size_t i = 0; i < ARRAY_LEN(sizes); i++) {
		struct policy_set set;
		size_t entries = 0;

		bench_policies(sizes[i], &g);
		set = (struct policy_set){.v = (struct policy *const *)g.v, .n = g.n};
		install(&set);
		for (size_t k = 0; k < live->n_eps; k++)
			if (live->eps[k].ep == 4)
				entries = live->eps[k].n_entries[POLICY_INGRESS];
		drain();
		t.sport = 20000;
		uint64_t nf, second;

		bench_new(fd_to, &t, 20000, &nf, &second);

		drain();
		uint64_t est = bench_established(fd_to, &t, 1000000);
		uint32_t v = run_prog(fd_to, &t);

		drain();
		printf("%8zu %8zu %8" PRIu64 " %8" PRIu64 " %12" PRIu64 " %8s\n", sizes[i], entries,
		       nf, second, est, v == RET_DROP ? "drop" : "pass");
		gen_set_free(&g);
		ct_flush();
	}
	return 0;
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_generated_sets_equal_evaluator),
		cmocka_unit_test(test_fixed_features),
		cmocka_unit_test(test_conntrack_skips_lookup),
		cmocka_unit_test(test_veth_binding_drops_spoofed),
		cmocka_unit_test(test_generation_flip_mid_flow),
		cmocka_unit_test(test_published_through_lb),
		cmocka_unit_test(test_flowlog_transport),
		cmocka_unit_test(test_socket_agrees_with_veth),
		cmocka_unit_test(test_socket_answers_allowed_ingress),
		cmocka_unit_test(test_restart_keeps_state),
		cmocka_unit_test(test_veth_attached_lo),
	};
	int r;

	r = bpf_test_prepare(PIN_PREFIX, true);
	if (r != 0)
		return r;
	snprintf(pin_dir, sizeof(pin_dir), "/sys/fs/bpf/%s-%d", PIN_PREFIX, getpid());
	atexit(cleanup);
	if (setup_all() != 0)
		return 1;
	if (argc > 1 && strcmp(argv[1], "bench") == 0)
		return bench();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
