/* SPDX-License-Identifier: Apache-2.0 */
/* The policy file format: a table of bad inputs with the exact error, the
 * canonical form of good ones (round trip identical), YAML of the same shape,
 * and the CLI's CIDR and port forms. */
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

/* Test JSON is written with ' for " to stay readable. */
static char *dq(const char *s)
{
	char *d = strdup(s);
	assert_non_null(d);
	for (char *p = d; *p; p++)
		if (*p == '\'')
			*p = '"';
	return d;
}

static int parse(const char *text, struct policy **ret, struct shoal_err *err)
{
	char *t = dq(text);
	int r = policy_from_text(t, strlen(t), ret, err);
	free(t);
	return r;
}

struct bad_case {
	const char *json;
	const char *error;
};

#define ING(rule) "{'Name':'p','Selector':{},'Ingress':[" rule "]}"

static const struct bad_case bad[] = {
	{ING("{'Ports':[{'Port':80},{'Port':8000,'EndPort':7000}]}"),
	 "Ingress[0].Ports[1].EndPort: 7000 is below Port 8000"},
	{"{'Name':'p','Selector':{},'Foo':1}",
	 "Foo: unknown field (a policy has Name, Selector, Types, Ingress, Egress, Audit, Tier, "
	 "Order)"},
	{"{'Name':'p','Selector':{'Servce':'web'}}",
	 "Selector.Servce: unknown field (a selector has Service, Labels, Network)"},
	{ING("{'From':[{'Servic':'web'}]}"),
	 "Ingress[0].From[0].Servic: unknown field (a peer has Service, Labels, Network, CIDR, "
	 "Except, Entity)"},
	{"{'Name':'p','Selector':{},'Types':['Egress'],'Egress':[{'From':[{'Service':'a'}]}]}",
	 "Egress[0].From: unknown field (an egress rule has To, Ports, Action)"},
	{ING("{'To':[{'Service':'a'}]}"),
	 "Ingress[0].To: unknown field (an ingress rule has From, Ports, Action)"},
	{ING("{'Ports':[{'Port':80,'Proto':'tcp'}]}"),
	 "Ingress[0].Ports[0].Proto: unknown field (a port has Port, EndPort, Protocol)"},
	{ING("{'From':[{'CIDR':'10.0.0.0/33'}]}"),
	 "Ingress[0].From[0].CIDR: \"10.0.0.0/33\" is not an IPv4 CIDR such as 10.0.0.0/8"},
	{ING("{'From':[{'CIDR':'10.0.0'}]}"),
	 "Ingress[0].From[0].CIDR: \"10.0.0\" is not an IPv4 CIDR such as 10.0.0.0/8"},
	{ING("{'From':[{'CIDR':'10.0.0.256/32'}]}"),
	 "Ingress[0].From[0].CIDR: \"10.0.0.256/32\" is not an IPv4 CIDR such as 10.0.0.0/8"},
	{ING("{'From':[{'CIDR':'10.0.0.0/ 8'}]}"),
	 "Ingress[0].From[0].CIDR: \"10.0.0.0/ 8\" is not an IPv4 CIDR such as 10.0.0.0/8"},
	{ING("{'From':[{'CIDR':'10.0.0.1/8'}]}"),
	 "Ingress[0].From[0].CIDR: 10.0.0.1/8 has host bits set: the network is 10.0.0.0/8"},
	{ING("{'From':[{'CIDR':'fd00::/8'}]}"),
	 "Ingress[0].From[0].CIDR: fd00::/8: IPv6 is not supported (the data plane is IPv4)"},
	{ING("{'From':[{'CIDR':8}]}"),
	 "Ingress[0].From[0].CIDR: expected a string such as \"10.0.0.0/8\", got a number"},
	{ING("{'From':[{'CIDR':'10.0.0.0/8','Except':['192.168.0.0/16']}]}"),
	 "Ingress[0].From[0].Except[0]: 192.168.0.0/16 is not inside CIDR 10.0.0.0/8"},
	{ING("{'From':[{'CIDR':'10.0.0.0/8','Except':['10.0.0.0/8']}]}"),
	 "Ingress[0].From[0].Except[0]: 10.0.0.0/8 is not inside CIDR 10.0.0.0/8"},
	{ING("{'From':[{'CIDR':'10.0.0.0/8','Except':['10.1.0.0/16','10.1.2.0/24']}]}"),
	 "Ingress[0].From[0].Except[1]: 10.1.2.0/24 overlaps Except[0]"},
	{ING("{'From':[{'CIDR':'10.0.0.0/8','Except':[]}]}"),
	 "Ingress[0].From[0].Except: empty: leave Except out to except nothing"},
	{ING("{'From':[{'Service':'web','Except':['10.0.0.0/8']}]}"),
	 "Ingress[0].From[0].Except: only with CIDR"},
	{ING("{'Ports':[{'Port':8000,'EndPort':8100},{'Port':8050,'EndPort':8200}]}"),
	 "Ingress[0].Ports[1]: 8050-8200/tcp overlaps Ports[0] 8000-8100/tcp"},
	{ING("{'Ports':[{'Protocol':'udp'},{'Port':53,'Protocol':'udp'}]}"),
	 "Ingress[0].Ports[1]: 53/udp overlaps Ports[0] all/udp"},
	{ING("{'Ports':[{'Port':80},{'Port':80,'Protocol':'tcp'}]}"),
	 "Ingress[0].Ports[1]: 80/tcp overlaps Ports[0] 80/tcp"},
	{ING("{'Ports':[{'Port':80,'Protocol':'sctp'}]}"),
	 "Ingress[0].Ports[0].Protocol: sctp is not supported: the data plane judges tcp and udp"},
	{ING("{'Ports':[{'Port':80,'Protocol':'icmp'}]}"),
	 "Ingress[0].Ports[0].Protocol: \"icmp\" is not a protocol: tcp or udp"},
	{ING("{'Ports':[{'Port':70000}]}"),
	 "Ingress[0].Ports[0].Port: 70000 is not a port: 1 to 65535"},
	{ING("{'Ports':[{'Port':0}]}"), "Ingress[0].Ports[0].Port: 0 is not a port: 1 to 65535"},
	{ING("{'Ports':[{'Port':'80'}]}"),
	 "Ingress[0].Ports[0].Port: expected a port number, got a string"},
	{ING("{'Ports':[{'EndPort':80}]}"),
	 "Ingress[0].Ports[0].EndPort: needs Port (the start of the range)"},
	{ING("{'Ports':[]}"), "Ingress[0].Ports: empty: leave Ports out to match every port"},
	{ING("{'From':[]}"), "Ingress[0].From: empty: leave From out to match every peer"},
	{"{'Name':'p','Selector':{},'Order':3}",
	 "Order: only for a cluster or baseline policy (set Tier)"},
	{ING("{'Action':'allow'}"),
	 "Ingress[0].Action: only for a cluster or baseline policy (set Tier); a service policy's "
	 "rules allow"},
	{"{'Name':'p','Tier':'cluster','Selector':{}}",
	 "Order: required in a cluster policy (lower "
	 "first)"},
	{"{'Name':'p','Tier':'cluster','Order':-1,'Selector':{}}",
	 "Order: -1 is out of range: 0 to 1000000"},
	{"{'Name':'p','Tier':'cluster','Order':1,'Selector':{},'Ingress':[{}]}",
	 "Ingress[0].Action: required in a cluster policy: allow, deny or pass"},
	{"{'Name':'p','Tier':'baseline','Order':1,'Selector':{},'Ingress':[{}]}",
	 "Ingress[0].Action: required in a baseline policy: allow, deny"},
	{"{'Name':'p','Tier':'baseline','Order':1,'Selector':{},'Ingress':[{'Action':'pass'}]}",
	 "Ingress[0].Action: pass is for cluster policies: a baseline rule allows or denies"},
	{"{'Name':'p','Tier':'cluster','Order':1,'Selector':{},'Ingress':[{'Action':'drop'}]}",
	 "Ingress[0].Action: expected allow, deny or pass"},
	{"{'Name':'p','Tier':'admin','Order':1,'Selector':{}}",
	 "Tier: expected \"cluster\" or \"baseline\" (leave Tier out for a service policy)"},
	{"{'Name':'p','Selector':{},'Types':['Ingress'],'Egress':[{}]}",
	 "Egress: 1 rule given but Types does not list Egress"},
	{"{'Name':'p','Selector':{},'Types':['Egress'],'Ingress':[{},{}]}",
	 "Ingress: 2 rules given but Types does not list Ingress"},
	{"{'Name':'p','Selector':{},'Types':['Ingress','Ingress']}",
	 "Types[1]: Ingress is listed twice"},
	{"{'Name':'p','Selector':{},'Types':['ingress']}",
	 "Types[0]: expected \"Ingress\" or \"Egress\""},
	{"{'Name':'p','Selector':{},'Types':[]}",
	 "Types: empty: list Ingress, Egress or both (or leave Types out)"},
	{"{'Name':'web_','Selector':{}}",
	 "Name: \"web_\" is invalid: a name is letters, digits, '-' and '_', starting and ending "
	 "with a letter or digit"},
	{"{'Name':'-web','Selector':{}}",
	 "Name: \"-web\" is invalid: a name is letters, digits, '-' and '_', starting and ending "
	 "with a letter or digit"},
	{"{'Name':'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa','Selector':{}}",
	 "Name: \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...\" is invalid: "
	 "longer than 63 characters"},
	{"{'Selector':{}}", "Name: required"},
	{"{'Name':'p'}", "Selector: required ({} selects every endpoint)"},
	{"{'Name':'p','Selector':{'Service':'web','Network':'front'}}",
	 "Selector: give one of Service, Labels or Network"},
	{"{'Name':'p','Selector':{'Service':'web.1'}}",
	 "Selector.Service: \"web.1\" is invalid: a name is letters, digits, '-' and '_', "
	 "starting and ending with a letter or digit"},
	{"{'Name':'p','Selector':{'Labels':{'tier':3}}}",
	 "Selector.Labels.tier: expected a string, got a number"},
	{"{'Name':'p','Selector':{'Labels':{}}}",
	 "Selector.Labels: empty: use {} as the selector to select every endpoint"},
	{"{'Name':'p','Selector':{'Network':'bad net'}}",
	 "Selector.Network: \"bad net\" is not a network name: letters, digits, '_', '.' and '-', "
	 "starting with a letter or digit"},
	{ING("{'From':[{'Service':'web','Labels':{'a':'b'}}]}"),
	 "Ingress[0].From[0]: give exactly one of Service, Labels, Network, CIDR or Entity"},
	{ING("{'From':[{}]}"),
	 "Ingress[0].From[0]: give exactly one of Service, Labels, Network, CIDR or Entity"},
	{ING("{'From':[{'Entity':'everyone'}]}"),
	 "Ingress[0].From[0].Entity: \"everyone\" is not an entity: world, node, published or "
	 "cluster"},
	{"{'Name':'p','Selector':{},'Egress':[{'To':[{'Entity':'published'}]}]}",
	 "Egress[0].To[0].Entity: published is for ingress: traffic arriving on a published port"},
	{"{'Name':'p','Selector':{},'Audit':'yes'}", "Audit: expected true or false, got a string"},
	{"['p']", "a policy is a JSON object, got an array"},
	{"{'Name':'p','Selector':[]}",
	 "Selector: expected an object ({} selects every endpoint), got an array"},
	{"{'Name':'p','Selector':{},'Ingress':{}}",
	 "Ingress: expected an array of rules, got an object"},
	{"{'Name':'p','Selector':{}", "not valid JSON: line 1 column 25: '}' expected near end of "
				      "file"},
};

static void test_bad(void **state)
{
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct policy *p = NULL;
		struct shoal_err err = {0};
		int r = parse(bad[i].json, &p, &err);
		if (r != -EINVAL || strcmp(err.msg, bad[i].error) != 0)
			fail_msg("case %zu %s:\n  got  %d %s\n  want %s", i, bad[i].json, r,
				 err.msg, bad[i].error);
		assert_null(p);
		assert_int_equal(shoal_err_http_status(&err), 400);
	}
}

static char *canonical(const char *text)
{
	struct policy *p = NULL;
	struct shoal_err err = {0};
	if (parse(text, &p, &err) < 0)
		fail_msg("rejected: %s: %s", err.msg, text);
	json_t *j = policy_to_json(p);
	assert_non_null(j);
	char *s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	policy_free(p);
	return s;
}

/* Canonical documents serialise to themselves. */
static const char *const canonical_docs[] = {
	/* the file format's example */
	"{'Name':'web-from-frontend','Selector':{'Service':'web'},'Types':['Ingress'],"
	"'Ingress':[{'From':[{'Service':'frontend'},{'Labels':{'tier':'edge'}},"
	"{'CIDR':'10.0.0.0/8','Except':['10.9.0.0/16']},{'Entity':'published'}],"
	"'Ports':[{'Port':80,'Protocol':'tcp'},{'Port':8000,'EndPort':8100,'Protocol':'udp'}]}],"
	"'Egress':[],'Audit':false}",
	"{'Name':'admin','Tier':'cluster','Order':10,'Selector':{'Labels':{'env':'prod','tier':"
	"'web'}},'Types':['Ingress','Egress'],'Ingress':[{'Action':'deny','From':[{'Entity':"
	"'world'}]},{'Action':'pass'}],'Egress':[{'Action':'allow','To':[{'Network':'back_1'}],"
	"'Ports':[{'Protocol':'udp'}]}],'Audit':true}",
	"{'Name':'base','Tier':'baseline','Order':0,'Selector':{},'Types':['Ingress'],"
	"'Ingress':[{'Action':'deny'}],'Egress':[],'Audit':false}",
	"{'Name':'lockdown','Selector':{'Network':'front'},'Types':['Ingress','Egress'],"
	"'Ingress':[],'Egress':[],'Audit':false}",
	"{'Name':'node-in','Selector':{},'Types':['Ingress'],'Ingress':[{'From':[{'Entity':"
	"'node'},{'Entity':'cluster'},{'Labels':{}}],'Ports':[{'Port':1,'EndPort':65535,"
	"'Protocol':'tcp'},{'Port':53,'Protocol':'udp'}]}],'Egress':[],'Audit':false}",
};

static void test_round_trip(void **state)
{
	for (size_t i = 0; i < sizeof(canonical_docs) / sizeof(canonical_docs[0]); i++) {
		char *want = dq(canonical_docs[i]);
		char *got = canonical(canonical_docs[i]);
		if (strcmp(got, want) != 0)
			fail_msg("case %zu:\n  got  %s\n  want %s", i, got, want);
		/* and once more: the output is itself canonical */
		char *again = canonical(got);
		assert_string_equal(again, got);
		free(again);
		free(got);
		free(want);
	}
}

/* Defaults are filled in, the order of keys and of Types is the canonical one. */
static void test_defaults(void **state)
{
	static const char *const cases[][2] = {
		{"{'Name':'x','Selector':{}}",
		 "{'Name':'x','Selector':{},'Types':['Ingress'],'Ingress':[],'Egress':[],'Audit':"
		 "false}"},
		{"{'Audit':true,'Egress':[{'To':[{'Entity':'world'}]}],'Selector':{},'Name':'x'}",
		 "{'Name':'x','Selector':{},'Types':['Ingress','Egress'],'Ingress':[],'Egress':[{"
		 "'To':[{'Entity':'world'}]}],'Audit':true}"},
		{"{'Name':'x','Selector':{},'Types':['Egress','Ingress'],'Ingress':null}",
		 "{'Name':'x','Selector':{},'Types':['Ingress','Egress'],'Ingress':[],'Egress':[],"
		 "'Audit':false}"},
		{"{'Name':'x','Selector':{},'Ingress':[{'Ports':[{'Port':80}]}]}",
		 "{'Name':'x','Selector':{},'Types':['Ingress'],'Ingress':[{'Ports':[{'Port':80,"
		 "'Protocol':'tcp'}]}],'Egress':[],'Audit':false}"},
		{"{'Name':'x','Selector':{},'Types':['Egress']}",
		 "{'Name':'x','Selector':{},'Types':['Egress'],'Ingress':[],'Egress':[],'Audit':"
		 "false}"},
		{"{'Name':'x','Selector':{'Labels':{'b':'2','a':'1'}}}",
		 "{'Name':'x','Selector':{'Labels':{'a':'1','b':'2'}},'Types':['Ingress'],"
		 "'Ingress':[],'Egress':[],'Audit':false}"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *want = dq(cases[i][1]);
		char *got = canonical(cases[i][0]);
		if (strcmp(got, want) != 0)
			fail_msg("case %zu:\n  got  %s\n  want %s", i, got, want);
		free(got);
		free(want);
	}
}

static void test_model(void **state)
{
	struct policy *p = NULL;
	assert_int_equal(parse(canonical_docs[0], &p, NULL), 0);
	assert_string_equal(p->name, "web-from-frontend");
	assert_int_equal(p->selector.kind, POLICY_SEL_SERVICE);
	assert_true(p->types[POLICY_INGRESS]);
	assert_false(p->types[POLICY_EGRESS]);
	assert_int_equal(p->n_rules[POLICY_INGRESS], 1);
	const struct policy_rule *r = &p->rules[POLICY_INGRESS][0];
	assert_int_equal(r->n_peers, 4);
	assert_int_equal(r->peers[2].kind, POLICY_PEER_CIDR);
	assert_int_equal(r->peers[2].cidr.addr, 0x0a000000);
	assert_int_equal(r->peers[2].cidr.len, 8);
	assert_int_equal(r->peers[2].n_except, 1);
	assert_int_equal(r->peers[2].except[0].addr, 0x0a090000);
	assert_int_equal(r->peers[3].entity, POLICY_ENTITY_PUBLISHED);
	assert_int_equal(r->ports[1].proto, IPPROTO_UDP);
	assert_int_equal(r->ports[1].port, 8000);
	assert_int_equal(r->ports[1].end_port, 8100);
	assert_int_equal(p->tier, POLICY_TIER_SERVICE);
	policy_free(p);
}

static const char yaml_doc[] = "Name: web-from-frontend\n"
			       "Selector:\n"
			       "  Service: web\n"
			       "Types: [Ingress]\n"
			       "Ingress:\n"
			       "  - From:\n"
			       "      - Service: frontend\n"
			       "      - Labels: {tier: edge}\n"
			       "      - CIDR: 10.0.0.0/8\n"
			       "        Except: [10.9.0.0/16]\n"
			       "      - Entity: published\n"
			       "    Ports:\n"
			       "      - {Port: 80, Protocol: tcp}\n"
			       "      - {Port: 8000, EndPort: 8100, Protocol: udp}\n"
			       "Egress: []\n"
			       "Audit: false\n";

static void test_yaml(void **state)
{
	struct policy *p = NULL;
	struct shoal_err err = {0};
	int r = policy_from_text(yaml_doc, strlen(yaml_doc), &p, &err);
	if (!policy_yaml_supported()) {
		/* Built without libyaml: refused, saying what to install. */
		assert_int_equal(r, -ENOTSUP);
		assert_non_null(strstr(err.msg, "libyaml-dev"));
		return;
	}
	if (r < 0)
		fail_msg("YAML rejected: %s", err.msg);
	json_t *j = policy_to_json(p);
	char *got = json_dumps(j, JSON_COMPACT);
	char *want = dq(canonical_docs[0]);
	assert_string_equal(got, want);
	free(got);
	free(want);
	json_decref(j);
	policy_free(p);

	static const struct bad_case ybad[] = {
		{"Name: p\nSelector: {}\nIngress:\n  - Ports:\n      - {Port: 8000, EndPort: 7000}\n",
		 "Ingress[0].Ports[0].EndPort: 7000 is below Port 8000"},
		{"Name: p\nSelector: {}\nIngress:\n  - Ports:\n      - {Port: '80'}\n",
		 "Ingress[0].Ports[0].Port: expected a port number, got a string"},
		{"Name: p\nSelector: {Servce: web}\n",
		 "Selector.Servce: unknown field (a selector has Service, Labels, Network)"},
		{"Name: p\nName: q\nSelector: {}\n", "YAML line 2: Name is given twice"},
		{"Name: p\nSelector: {}\n---\nName: q\nSelector: {}\n",
		 "one policy per file: the YAML has a second document"},
		{"Name: [p\n", "not valid YAML: line 2 column 1: did not find expected ',' or ']'"},
		{"", "the YAML document is empty"},
		{"Name: p\nSelector: {}\nAudit: yes\n",
		 "Audit: expected true or false, got a string"},
	};
	for (size_t i = 0; i < sizeof(ybad) / sizeof(ybad[0]); i++) {
		p = NULL;
		shoal_err_clear(&err);
		r = policy_from_text(ybad[i].json, strlen(ybad[i].json), &p, &err);
		if (r != -EINVAL || strcmp(err.msg, ybad[i].error) != 0)
			fail_msg("YAML case %zu:\n  got  %d %s\n  want %s", i, r, err.msg,
				 ybad[i].error);
		assert_null(p);
	}
}

static void test_cli_forms(void **state)
{
	struct policy_port pp;
	struct shoal_err err = {0};
	assert_int_equal(policy_parse_port("80/tcp", &pp, &err), 0);
	assert_int_equal(pp.port, 80);
	assert_int_equal(pp.end_port, 0);
	assert_int_equal(pp.proto, IPPROTO_TCP);
	assert_int_equal(policy_parse_port("8000-8100/udp", &pp, &err), 0);
	assert_int_equal(pp.port, 8000);
	assert_int_equal(pp.end_port, 8100);
	assert_int_equal(pp.proto, IPPROTO_UDP);
	assert_int_equal(policy_parse_port("53", &pp, &err), 0);
	assert_int_equal(pp.proto, IPPROTO_TCP);
	assert_int_equal(policy_parse_port("8100-8000/tcp", &pp, &err), -EINVAL);
	assert_string_equal(err.msg, "\"8100-8000/tcp\": the range ends at 8000, below its start "
				     "8100");
	assert_int_equal(policy_parse_port("80/sctp", &pp, &err), -EINVAL);
	assert_string_equal(err.msg, "\"80/sctp\": the protocol is tcp or udp");
	assert_int_equal(policy_parse_port("0", &pp, &err), -EINVAL);
	assert_int_equal(policy_parse_port("80-", &pp, &err), -EINVAL);
	assert_int_equal(policy_parse_port("http", &pp, &err), -EINVAL);
	assert_string_equal(err.msg, "\"http\" is not a port: PORT[-END][/tcp|/udp], e.g. "
				     "8000-8100/udp");

	struct policy_cidr c;
	assert_int_equal(policy_parse_cidr("0.0.0.0/0", &c, &err), 0);
	assert_int_equal(c.len, 0);
	assert_int_equal(policy_parse_cidr("192.168.1.7/32", &c, &err), 0);
	assert_int_equal(c.addr, 0xc0a80107);
	assert_int_equal(policy_parse_cidr("192.168.1.7", &c, &err), -EINVAL);
	assert_int_equal(policy_parse_cidr("+1.2.3.4/32", &c, &err), -EINVAL);

	assert_int_equal(policy_validate_name("web-1", &err), 0);
	assert_int_equal(policy_validate_name("web-", &err), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad),	 cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_defaults), cmocka_unit_test(test_model),
		cmocka_unit_test(test_yaml),	 cmocka_unit_test(test_cli_forms),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
