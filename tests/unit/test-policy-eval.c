/* SPDX-License-Identifier: Apache-2.0 */
/* The evaluator, one case per semantic rule: which policies isolate, how
 * peers and ports match, tiers, orders, pass, deny over allow, audit, both
 * ends of a flow, published ports. Each case names the policies in force,
 * the flow, the verdict and the chain of (policy, rule, action). */
#include <errno.h>
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

/* Policies by name; test JSON uses ' for ". */
static const char *const library[] = {
	/* service policies */
	"{'Name':'web-fe','Selector':{'Service':'web'},'Ingress':[{'From':[{'Service':'frontend'}],"
	"'Ports':[{'Port':80}]}]}",
	"{'Name':'web-none','Selector':{'Service':'web'},'Types':['Ingress']}",
	"{'Name':'web-egress','Selector':{'Service':'web'},'Types':['Egress'],'Egress':[{'To':[{"
	"'Service':'db'}],'Ports':[{'Port':5432}]}]}",
	"{'Name':'db-back','Selector':{'Service':'db'},'Ingress':[{'From':[{'Network':'back'}]}]}",
	"{'Name':'app-edge','Selector':{'Labels':{'app':'web'}},'Ingress':[{'From':[{'Labels':{"
	"'tier':'edge'}}]}]}",
	"{'Name':'front-iso','Selector':{'Network':'front'},'Ingress':[{'From':[{'Entity':"
	"'cluster'}]}]}",
	"{'Name':'web-range','Selector':{'Service':'web'},'Ingress':[{'Ports':[{'Port':8000,"
	"'EndPort':8100,'Protocol':'udp'}]}]}",
	"{'Name':'web-cidr','Selector':{'Service':'web'},'Ingress':[{'From':[{'CIDR':'10.0.0.0/8',"
	"'Except':['10.9.0.0/16']}],'Ports':[{'Port':8080}]}]}",
	"{'Name':'web-pub','Selector':{'Service':'web'},'Ingress':[{'From':[{'Entity':"
	"'published'}]}]}",
	"{'Name':'web-node','Selector':{'Service':'web'},'Ingress':[{'From':[{'Entity':'node'}]}]}",
	"{'Name':'fe-world','Selector':{'Service':'frontend'},'Types':['Egress'],'Egress':[{'To':[{"
	"'Entity':'world'}],'Ports':[{'Port':443}]}]}",
	"{'Name':'web-audit','Selector':{'Service':'web'},'Ingress':[{'From':[{'Service':'db'}]}],"
	"'Audit':true}",
	"{'Name':'web-any','Selector':{'Service':'web'},'Ingress':[{}]}",
	"{'Name':'web-world','Selector':{'Service':'web'},'Ingress':[{'From':[{'Entity':'world'}]}]}",
	"{'Name':'web-two','Selector':{'Service':'web'},'Ingress':[{'From':[{'Service':'db'}]},{"
	"'From':[{'Service':'frontend'}],'Ports':[{'Port':443}]}]}",
	"{'Name':'all-lock','Selector':{},'Types':['Ingress','Egress']}",
	"{'Name':'ctr-labels-all','Selector':{'Labels':{'role':'ctr'}},'Ingress':[{'From':[{"
	"'Labels':{}}]}]}",
	"{'Name':'web-udp','Selector':{'Service':'web'},'Ingress':[{'Ports':[{'Protocol':'udp'}]}]}",
	/* cluster tier */
	"{'Name':'no-world','Tier':'cluster','Order':10,'Selector':{},'Ingress':[{'Action':'deny',"
	"'From':[{'Entity':'world'}]}]}",
	"{'Name':'allow-node','Tier':'cluster','Order':5,'Selector':{},'Ingress':[{'Action':'allow',"
	"'From':[{'Entity':'node'}]}]}",
	"{'Name':'pass-fe','Tier':'cluster','Order':20,'Selector':{'Service':'web'},'Ingress':[{"
	"'Action':'pass','From':[{'Service':'frontend'}]}]}",
	"{'Name':'allow-fe','Tier':'cluster','Order':20,'Selector':{'Service':'web'},'Ingress':[{"
	"'Action':'allow','From':[{'Service':'frontend'}]}]}",
	"{'Name':'deny-fe','Tier':'cluster','Order':20,'Selector':{'Service':'web'},'Ingress':[{"
	"'Action':'deny','From':[{'Service':'frontend'}]}]}",
	"{'Name':'allow-fe-early','Tier':'cluster','Order':15,'Selector':{'Service':'web'},"
	"'Ingress':[{'Action':'allow','From':[{'Service':'frontend'}]}]}",
	"{'Name':'ordered','Tier':'cluster','Order':30,'Selector':{'Service':'web'},'Ingress':[{"
	"'Action':'allow','From':[{'Service':'frontend'}],'Ports':[{'Port':80}]},{'Action':'deny',"
	"'From':[{'Service':'frontend'}]}]}",
	"{'Name':'audit-deny','Tier':'cluster','Order':1,'Selector':{},'Audit':true,'Ingress':[{"
	"'Action':'deny','From':[{'Service':'db'}]}]}",
	"{'Name':'no-egress-world','Tier':'cluster','Order':10,'Selector':{},'Egress':[{'Action':"
	"'deny','To':[{'Entity':'world'}]}]}",
	"{'Name':'pass-all','Tier':'cluster','Order':40,'Selector':{},'Ingress':[{'Action':'pass'}]}",
	"{'Name':'deny-db-pub','Tier':'cluster','Order':3,'Selector':{'Service':'web'},'Ingress':[{"
	"'Action':'deny','From':[{'Entity':'published'}],'Ports':[{'Port':9000}]}]}",
	/* baseline tier */
	"{'Name':'base-deny','Tier':'baseline','Order':100,'Selector':{},'Ingress':[{'Action':"
	"'deny'}]}",
	"{'Name':'base-fe','Tier':'baseline','Order':50,'Selector':{},'Ingress':[{'Action':'allow',"
	"'From':[{'Service':'frontend'}]}]}",
	"{'Name':'base-audit','Tier':'baseline','Order':60,'Selector':{},'Audit':true,'Ingress':[{"
	"'Action':'deny','From':[{'Entity':'world'}]}]}",
};

#define N_LIB (sizeof(library) / sizeof(library[0]))
static struct policy *lib[N_LIB];

static const char *const web_nets[] = {"front", "back"};
static const char *const front_nets[] = {"front"};
static const char *const back_nets[] = {"back"};
static struct policy_label web_labels[] = {{"app", "web"}, {"tier", "backend"}};
static struct policy_label fe_labels[] = {{"tier", "edge"}};
static struct policy_label db_labels[] = {{"tier", "data"}};
static struct policy_label ctr_labels[] = {{"role", "ctr"}};

#define IP(a, b, c, d) ((uint32_t)(a) << 24 | (b) << 16 | (c) << 8 | (d))

static const struct policy_endpoint endpoints[] = {
	{1, "web.1", "web", {web_labels, 2}, web_nets, 2, IP(10, 1, 0, 2), "n1"},
	{2, "web.2", "web", {web_labels, 2}, web_nets, 2, IP(10, 1, 0, 3), "n2"},
	{3, "frontend.1", "frontend", {fe_labels, 1}, front_nets, 1, IP(10, 1, 0, 10), "n1"},
	{4, "db.1", "db", {db_labels, 1}, back_nets, 1, IP(10, 1, 0, 20), "n2"},
	{5, "ctr", NULL, {ctr_labels, 1}, front_nets, 1, IP(10, 1, 0, 30), "n1"},
};
static const struct policy_node nodes[] = {{"n1", IP(192, 168, 1, 1)}, {"n2", IP(192, 168, 1, 2)}};
static const struct policy_model model = {
	.endpoints = endpoints, .n_endpoints = 5, .nodes = nodes, .n_nodes = 2};

static int setup(void **state)
{
	for (size_t i = 0; i < N_LIB; i++) {
		char *t = strdup(library[i]);
		for (char *p = t; *p; p++)
			if (*p == '\'')
				*p = '"';
		struct shoal_err err = {0};
		if (policy_from_text(t, strlen(t), &lib[i], &err) < 0)
			fail_msg("library policy %zu: %s", i, err.msg);
		free(t);
	}
	return 0;
}

static int teardown(void **state)
{
	for (size_t i = 0; i < N_LIB; i++)
		lib[i] = policy_free(lib[i]);
	return 0;
}

static struct policy *find_policy(const char *name)
{
	for (size_t i = 0; i < N_LIB; i++)
		if (strcmp(lib[i]->name, name) == 0)
			return lib[i];
	fail_msg("no policy %s", name);
	return NULL;
}

/* "web.1", "n1" (a node), "unknown", or an address (world unless it is one). */
static struct policy_party party(const char *s)
{
	if (strcmp(s, "unknown") == 0)
		return (struct policy_party){.kind = POLICY_PARTY_UNKNOWN};
	for (size_t i = 0; i < model.n_endpoints; i++)
		if (strcmp(endpoints[i].name, s) == 0)
			return (struct policy_party){POLICY_PARTY_ENDPOINT, &endpoints[i],
						     endpoints[i].addr};
	for (size_t i = 0; i < model.n_nodes; i++)
		if (strcmp(nodes[i].name, s) == 0)
			return (struct policy_party){POLICY_PARTY_NODE, NULL, nodes[i].addr};
	unsigned a, b, c, d;
	if (sscanf(s, "%u.%u.%u.%u", &a, &b, &c, &d) != 4)
		fail_msg("bad party %s", s);
	return policy_model_party(&model, IP(a, b, c, d));
}

struct eval_case {
	const char *policies; /* names, space-separated, in set order */
	const char *src, *dst;
	uint16_t port;
	uint8_t proto;
	bool published;
	enum policy_verdict verdict;
	/* "egress: ...; ingress: ..." steps as name/Dir[i]/action; a side decided
	 * by default (no step) is left out; "-": both were */
	const char *chain;
};

#define TCP   IPPROTO_TCP
#define UDP   IPPROTO_UDP
#define ICMP  IPPROTO_ICMP
#define ALLOW POLICY_VERDICT_ALLOW
#define DENY  POLICY_VERDICT_DENY
#define AUDIT POLICY_VERDICT_AUDIT

static const struct eval_case cases[] = {
	/* nothing selects: allowed, no chain */
	{"", "frontend.1", "web.1", 80, TCP, false, ALLOW, "-"},
	/* a policy selecting the endpoint isolates it: only its rules allow */
	{"web-fe", "frontend.1", "web.1", 80, TCP, false, ALLOW,
	 "ingress: web-fe/Ingress[0]/allow"},
	{"web-fe", "db.1", "web.1", 80, TCP, false, DENY, "ingress: web-fe/Ingress[-]/deny"},
	/* peers AND ports: the right peer on another port is denied */
	{"web-fe", "frontend.1", "web.1", 81, TCP, false, DENY, "ingress: web-fe/Ingress[-]/deny"},
	/* the protocol is part of the port: 80/udp is not 80/tcp */
	{"web-fe", "frontend.1", "web.1", 80, UDP, false, DENY, "ingress: web-fe/Ingress[-]/deny"},
	/* an unselected endpoint is not isolated by a policy on another */
	{"web-fe", "web.1", "db.1", 5432, TCP, false, ALLOW, "-"},
	/* ingress isolation leaves egress alone */
	{"web-fe", "web.1", "frontend.1", 80, TCP, false, ALLOW, "-"},
	/* an empty rule list in a listed direction denies everything */
	{"web-none", "frontend.1", "web.1", 80, TCP, false, DENY,
	 "ingress: web-none/Ingress[-]/deny"},
	/* allows add up across policies */
	{"web-none web-fe", "frontend.1", "web.1", 80, TCP, false, ALLOW,
	 "ingress: web-fe/Ingress[0]/allow"},
	{"web-fe web-two", "db.1", "web.1", 1234, TCP, false, ALLOW,
	 "ingress: web-two/Ingress[0]/allow"},
	/* rules of one policy add up too; the first matching one is named */
	{"web-two", "frontend.1", "web.1", 443, TCP, false, ALLOW,
	 "ingress: web-two/Ingress[1]/allow"},
	{"web-two", "frontend.1", "web.1", 80, TCP, false, DENY,
	 "ingress: web-two/Ingress[-]/deny"},
	/* both policies isolate: the deny names each */
	{"web-none web-fe", "db.1", "web.1", 80, TCP, false, DENY,
	 "ingress: web-none/Ingress[-]/deny web-fe/Ingress[-]/deny"},
	/* egress: the sender's egress must allow as well */
	{"web-egress", "web.1", "db.1", 5432, TCP, false, ALLOW,
	 "egress: web-egress/Egress[0]/allow"},
	{"web-egress", "web.1", "db.1", 5433, TCP, false, DENY,
	 "egress: web-egress/Egress[-]/deny"},
	{"web-egress db-back", "web.1", "db.1", 5432, TCP, false, ALLOW,
	 "egress: web-egress/Egress[0]/allow; ingress: db-back/Ingress[0]/allow"},
	/* both sides needed: egress allows, ingress refuses */
	{"web-egress db-back", "frontend.1", "db.1", 5432, TCP, false, DENY,
	 "ingress: db-back/Ingress[-]/deny"},
	{"web-egress web-fe", "web.1", "web.2", 80, TCP, false, DENY,
	 "egress: web-egress/Egress[-]/deny; ingress: web-fe/Ingress[-]/deny"},
	/* a Network peer: any endpoint on that network */
	{"db-back", "web.2", "db.1", 5432, TCP, false, ALLOW, "ingress: db-back/Ingress[0]/allow"},
	{"db-back", "frontend.1", "db.1", 5432, TCP, false, DENY,
	 "ingress: db-back/Ingress[-]/deny"},
	/* a Labels selector and peer: all labels must match */
	{"app-edge", "frontend.1", "web.2", 1, TCP, false, ALLOW,
	 "ingress: app-edge/Ingress[0]/allow"},
	{"app-edge", "db.1", "web.2", 1, TCP, false, DENY, "ingress: app-edge/Ingress[-]/deny"},
	/* a Network selector isolates every endpoint on it; Entity cluster is any endpoint */
	{"front-iso", "db.1", "ctr", 22, TCP, false, ALLOW, "ingress: front-iso/Ingress[0]/allow"},
	{"front-iso", "unknown", "ctr", 22, TCP, false, ALLOW,
	 "ingress: front-iso/Ingress[0]/allow"},
	{"front-iso", "8.8.8.8", "frontend.1", 22, TCP, false, DENY,
	 "ingress: front-iso/Ingress[-]/deny"},
	{"front-iso", "n1", "frontend.1", 22, TCP, false, DENY,
	 "ingress: front-iso/Ingress[-]/deny"},
	/* Labels {} is every endpoint, known or not, and nothing else */
	{"ctr-labels-all", "unknown", "ctr", 1, UDP, false, ALLOW,
	 "ingress: ctr-labels-all/Ingress[0]/allow"},
	{"ctr-labels-all", "8.8.8.8", "ctr", 1, UDP, false, DENY,
	 "ingress: ctr-labels-all/Ingress[-]/deny"},
	/* port ranges: both ends inside, one past the end outside */
	{"web-range", "db.1", "web.1", 8000, UDP, false, ALLOW,
	 "ingress: web-range/Ingress[0]/allow"},
	{"web-range", "db.1", "web.1", 8100, UDP, false, ALLOW,
	 "ingress: web-range/Ingress[0]/allow"},
	{"web-range", "db.1", "web.1", 8101, UDP, false, DENY,
	 "ingress: web-range/Ingress[-]/deny"},
	{"web-range", "db.1", "web.1", 7999, UDP, false, DENY,
	 "ingress: web-range/Ingress[-]/deny"},
	/* a port entry without Port: every port of its protocol */
	{"web-udp", "db.1", "web.1", 1, UDP, false, ALLOW, "ingress: web-udp/Ingress[0]/allow"},
	{"web-udp", "db.1", "web.1", 1, TCP, false, DENY, "ingress: web-udp/Ingress[-]/deny"},
	/* a rule without Ports matches every protocol, ICMP too; with Ports it does not */
	{"web-any", "8.8.8.8", "web.1", 0, ICMP, false, ALLOW, "ingress: web-any/Ingress[0]/allow"},
	{"web-udp", "db.1", "web.1", 0, ICMP, false, DENY, "ingress: web-udp/Ingress[-]/deny"},
	/* CIDR with Except, on the client's real address */
	{"web-cidr", "10.2.3.4", "web.1", 8080, TCP, false, ALLOW,
	 "ingress: web-cidr/Ingress[0]/allow"},
	{"web-cidr", "10.9.3.4", "web.1", 8080, TCP, false, DENY,
	 "ingress: web-cidr/Ingress[-]/deny"},
	{"web-cidr", "11.0.0.1", "web.1", 8080, TCP, false, DENY,
	 "ingress: web-cidr/Ingress[-]/deny"},
	/* a CIDR names addresses outside: an endpoint inside it is judged by what it is */
	{"web-cidr", "frontend.1", "web.1", 8080, TCP, false, DENY,
	 "ingress: web-cidr/Ingress[-]/deny"},
	/* a published port filtered by the client's address (only 10/8 may reach 8080) */
	{"web-cidr", "10.2.3.4", "web.1", 8080, TCP, true, ALLOW,
	 "ingress: web-cidr/Ingress[0]/allow"},
	{"web-cidr", "8.8.8.8", "web.1", 8080, TCP, true, DENY,
	 "ingress: web-cidr/Ingress[-]/deny"},
	/* Entity published: only traffic that arrived on a published port */
	{"web-pub", "8.8.8.8", "web.1", 8080, TCP, true, ALLOW,
	 "ingress: web-pub/Ingress[0]/allow"},
	{"web-pub", "8.8.8.8", "web.1", 8080, TCP, false, DENY, "ingress: web-pub/Ingress[-]/deny"},
	/* Entity node and world */
	{"web-node", "n2", "web.1", 9, TCP, false, ALLOW, "ingress: web-node/Ingress[0]/allow"},
	{"web-node", "8.8.8.8", "web.1", 9, TCP, false, DENY, "ingress: web-node/Ingress[-]/deny"},
	{"web-world", "8.8.8.8", "web.1", 9, TCP, true, ALLOW,
	 "ingress: web-world/Ingress[0]/allow"},
	{"web-world", "db.1", "web.1", 9, TCP, false, DENY, "ingress: web-world/Ingress[-]/deny"},
	{"fe-world", "frontend.1", "1.1.1.1", 443, TCP, false, ALLOW,
	 "egress: fe-world/Egress[0]/allow"},
	{"fe-world", "frontend.1", "web.1", 443, TCP, false, DENY,
	 "egress: fe-world/Egress[-]/deny"},
	/* the node's own traffic to an endpoint is judged at the endpoint only */
	{"all-lock", "n1", "ctr", 1, TCP, false, DENY, "ingress: all-lock/Ingress[-]/deny"},
	{"all-lock", "ctr", "n1", 1, TCP, false, DENY, "egress: all-lock/Egress[-]/deny"},
	/* audit: a would-be drop is passed and logged */
	{"web-audit", "db.1", "web.1", 1, TCP, false, ALLOW, "ingress: web-audit/Ingress[0]/allow"},
	{"web-audit", "frontend.1", "web.1", 1, TCP, false, AUDIT,
	 "ingress: web-audit/Ingress[-]/deny"},
	/* ... unless a non-audit policy isolates the endpoint too */
	{"web-audit web-fe", "ctr", "web.1", 1, TCP, false, DENY,
	 "ingress: web-audit/Ingress[-]/deny web-fe/Ingress[-]/deny"},
	/* cluster tier: allow decides before service policies */
	{"allow-fe web-none", "frontend.1", "web.1", 1, TCP, false, ALLOW,
	 "ingress: allow-fe/Ingress[0]/allow"},
	/* cluster deny beats a service allow */
	{"no-world web-any", "8.8.8.8", "web.1", 1, TCP, false, DENY,
	 "ingress: no-world/Ingress[0]/deny"},
	/* no cluster rule matches: on to the service policies */
	{"no-world web-fe", "frontend.1", "web.1", 80, TCP, false, ALLOW,
	 "ingress: web-fe/Ingress[0]/allow"},
	/* lower order first */
	{"no-world allow-node", "n1", "web.1", 1, TCP, false, ALLOW,
	 "ingress: allow-node/Ingress[0]/allow"},
	{"deny-fe allow-fe-early", "frontend.1", "web.1", 1, TCP, false, ALLOW,
	 "ingress: allow-fe-early/Ingress[0]/allow"},
	/* equal order: deny wins, whichever comes first in the set */
	{"allow-fe deny-fe", "frontend.1", "web.1", 1, TCP, false, DENY,
	 "ingress: deny-fe/Ingress[0]/deny"},
	{"deny-fe allow-fe", "frontend.1", "web.1", 1, TCP, false, DENY,
	 "ingress: deny-fe/Ingress[0]/deny"},
	/* equal order: pass beats allow */
	{"allow-fe pass-fe web-none", "frontend.1", "web.1", 1, TCP, false, DENY,
	 "ingress: pass-fe/Ingress[0]/pass web-none/Ingress[-]/deny"},
	/* pass skips the rest of the cluster tier */
	{"pass-fe ordered web-fe", "frontend.1", "web.1", 80, TCP, false, ALLOW,
	 "ingress: pass-fe/Ingress[0]/pass web-fe/Ingress[0]/allow"},
	/* pass with no service policy: the baseline decides */
	{"pass-fe base-deny", "frontend.1", "web.1", 80, TCP, false, DENY,
	 "ingress: pass-fe/Ingress[0]/pass base-deny/Ingress[0]/deny"},
	{"pass-all", "db.1", "web.1", 80, TCP, false, ALLOW, "ingress: pass-all/Ingress[0]/pass"},
	/* rules of a cluster policy in order: the first allow or deny decides */
	{"ordered", "frontend.1", "web.1", 80, TCP, false, ALLOW,
	 "ingress: ordered/Ingress[0]/allow"},
	{"ordered", "frontend.1", "web.1", 81, TCP, false, DENY,
	 "ingress: ordered/Ingress[1]/deny"},
	/* cluster audit deny: passed, logged */
	{"audit-deny", "db.1", "web.1", 80, TCP, false, AUDIT,
	 "ingress: audit-deny/Ingress[0]/deny"},
	/* cluster egress */
	{"no-egress-world", "ctr", "8.8.4.4", 53, UDP, false, DENY,
	 "egress: no-egress-world/Egress[0]/deny"},
	{"no-egress-world", "ctr", "db.1", 53, UDP, false, ALLOW, "-"},
	/* a published-port deny at the cluster tier */
	{"deny-db-pub web-any", "8.8.8.8", "web.1", 9000, TCP, true, DENY,
	 "ingress: deny-db-pub/Ingress[0]/deny"},
	{"deny-db-pub web-any", "8.8.8.8", "web.1", 9000, TCP, false, ALLOW,
	 "ingress: web-any/Ingress[0]/allow"},
	/* baseline: only when no service policy selects the endpoint */
	{"base-deny", "frontend.1", "web.1", 80, TCP, false, DENY,
	 "ingress: base-deny/Ingress[0]/deny"},
	{"base-deny web-fe", "frontend.1", "web.1", 80, TCP, false, ALLOW,
	 "ingress: web-fe/Ingress[0]/allow"},
	{"base-deny web-fe", "db.1", "web.1", 80, TCP, false, DENY,
	 "ingress: web-fe/Ingress[-]/deny"},
	/* baseline by order: the lower one first */
	{"base-deny base-fe", "frontend.1", "web.1", 80, TCP, false, ALLOW,
	 "ingress: base-fe/Ingress[0]/allow"},
	{"base-deny base-fe", "db.1", "web.1", 80, TCP, false, DENY,
	 "ingress: base-deny/Ingress[0]/deny"},
	{"base-audit base-deny", "8.8.8.8", "web.1", 80, TCP, false, AUDIT,
	 "ingress: base-audit/Ingress[0]/deny"},
	/* a cluster allow stops before the baseline */
	{"allow-fe base-deny", "frontend.1", "web.1", 80, TCP, false, ALLOW,
	 "ingress: allow-fe/Ingress[0]/allow"},
	/* audit on one side, allowed on the other: audit */
	{"audit-deny no-egress-world", "db.1", "web.1", 80, TCP, false, AUDIT,
	 "ingress: audit-deny/Ingress[0]/deny"},
	/* deny on one side, audit on the other: dropped */
	{"audit-deny all-lock", "db.1", "web.2", 1, TCP, false, DENY,
	 "egress: all-lock/Egress[-]/deny; ingress: audit-deny/Ingress[0]/deny"},
};

static void chain_str(const struct policy_decision *d, char *buf, size_t len)
{
	size_t n = 0;
	if (d->n == 0)
		n += (size_t)snprintf(buf + n, len - n, "-");
	for (size_t i = 0; i < d->n; i++) {
		const struct policy_step *s = &d->chain[i];
		char rule[16];
		if (s->rule < 0)
			snprintf(rule, sizeof(rule), "-");
		else
			snprintf(rule, sizeof(rule), "%d", s->rule);
		n += (size_t)snprintf(buf + n, len - n, "%s%s/%s[%s]/%s", i ? " " : "",
				      s->policy->name, policy_dir_str(s->dir), rule,
				      policy_action_str(s->action));
	}
}

static void test_cases(void **state)
{
	assert_true(sizeof(cases) / sizeof(cases[0]) >= 40);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct eval_case *c = &cases[i];
		struct policy *v[16];
		size_t n = 0;
		char names[256];
		snprintf(names, sizeof(names), "%s", c->policies);
		for (char *save = NULL, *t = strtok_r(names, " ", &save); t;
		     t = strtok_r(NULL, " ", &save))
			v[n++] = find_policy(t);
		struct policy_set set = {.v = v, .n = n};
		struct policy_flow flow = {
			.src = party(c->src),
			.dst = party(c->dst),
			.proto = c->proto,
			.port = c->port,
			.published = c->published,
		};
		struct policy_flow_result res;
		policy_eval_flow(&set, &flow, &res);
		char chain[1024] = "", part[512];
		size_t m = 0;
		if (res.has_egress && res.egress.n) {
			chain_str(&res.egress, part, sizeof(part));
			m += (size_t)snprintf(chain + m, sizeof(chain) - m, "egress: %s", part);
		}
		if (res.has_ingress && res.ingress.n) {
			chain_str(&res.ingress, part, sizeof(part));
			m += (size_t)snprintf(chain + m, sizeof(chain) - m, "%singress: %s",
					      m ? "; " : "", part);
		}
		if (m == 0)
			snprintf(chain, sizeof(chain), "-");
		if (res.verdict != c->verdict || strcmp(chain, c->chain) != 0)
			fail_msg("case %zu [%s] %s -> %s %u/%s%s:\n  got  %s, %s\n  want %s, %s", i,
				 c->policies, c->src, c->dst, c->port, policy_proto_str(c->proto),
				 c->published ? " published" : "", policy_verdict_str(res.verdict),
				 chain, policy_verdict_str(c->verdict), c->chain);
	}
}

/* Policy ids: the caller's, else the position in the set. */
static void test_ids_and_format(void **state)
{
	struct policy *v[] = {find_policy("pass-fe"), find_policy("web-fe")};
	v[1]->id = 77;
	struct policy_set set = {.v = v, .n = 2};
	struct policy_party src = party("frontend.1");
	struct policy_decision d;
	policy_eval_side(&set, &endpoints[0], POLICY_INGRESS, &src, false, TCP, 80, &d);
	v[1]->id = 0;
	assert_int_equal(d.verdict, ALLOW);
	assert_int_equal(d.n, 2);
	assert_int_equal(d.chain[0].policy_id, 1);
	assert_int_equal(d.chain[1].policy_id, 77);
	char *s = policy_decision_format(&d);
	assert_non_null(s);
	assert_string_equal(s, "cluster policy pass-fe (order 20), Ingress[0]: pass\n"
			       "service policy web-fe, Ingress[0]: allow\n"
			       "verdict: allowed\n");
	free(s);

	struct policy *w[] = {find_policy("web-audit"), find_policy("web-none")};
	set = (struct policy_set){.v = w, .n = 2};
	src = party("8.8.8.8");
	policy_eval_side(&set, &endpoints[0], POLICY_INGRESS, &src, false, TCP, 80, &d);
	s = policy_decision_format(&d);
	assert_string_equal(s, "service policy web-audit selects the endpoint for Ingress and none "
			       "of its rules matches: deny (audit)\n"
			       "service policy web-none selects the endpoint for Ingress and none "
			       "of its rules matches: deny\n"
			       "verdict: dropped\n");
	free(s);

	set = (struct policy_set){.v = w, .n = 0};
	policy_eval_side(&set, &endpoints[0], POLICY_INGRESS, &src, false, TCP, 80, &d);
	s = policy_decision_format(&d);
	assert_string_equal(s, "no policy decides: allowed by default\nverdict: allowed\n");
	free(s);
}

/* Addresses resolve through the model. */
static void test_party(void **state)
{
	struct policy_party p = policy_model_party(&model, IP(10, 1, 0, 20));
	assert_int_equal(p.kind, POLICY_PARTY_ENDPOINT);
	assert_string_equal(p.ep->name, "db.1");
	p = policy_model_party(&model, IP(192, 168, 1, 2));
	assert_int_equal(p.kind, POLICY_PARTY_NODE);
	p = policy_model_party(&model, IP(1, 2, 3, 4));
	assert_int_equal(p.kind, POLICY_PARTY_WORLD);
	assert_int_equal(p.addr, IP(1, 2, 3, 4));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases),
		cmocka_unit_test(test_ids_and_format),
		cmocka_unit_test(test_party),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
