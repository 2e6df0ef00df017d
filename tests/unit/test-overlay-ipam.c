// SPDX-License-Identifier: Apache-2.0
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "agent/overlay-ipam.h"

static uint32_t ip(const char *s)
{
	struct in_addr a;
	assert_int_equal(inet_pton(AF_INET, s, &a), 1);
	return ntohl(a.s_addr);
}

static struct ovl_subnet subnet(const char *net, uint8_t prefix, const char *gw)
{
	return (struct ovl_subnet){.net = ip(net), .prefix = prefix, .gateway = ip(gw)};
}

static void test_pick_skips_reserved(void **state)
{
	(void)state;
	struct ovl_subnet s = subnet("10.0.1.0", 29, "10.0.1.1");
	/* .0 network, .1 gateway, .7 broadcast: .2 .. .6 */
	assert_int_equal(ovl_subnet_capacity(&s), 5);
	uint32_t got;
	assert_int_equal(ovl_ipam_pick(&s, NULL, 0, s.net, &got), 0);
	assert_int_equal(got, ip("10.0.1.2"));
	uint32_t taken[] = {ip("10.0.1.2"), ip("10.0.1.3"), ip("10.0.1.2")};
	assert_int_equal(ovl_ipam_pick(&s, taken, 3, ip("10.0.1.2"), &got), 0);
	assert_int_equal(got, ip("10.0.1.4"));
	/* from a hint near the end it wraps, past broadcast, network and gateway */
	uint32_t taken2[] = {ip("10.0.1.6")};
	assert_int_equal(ovl_ipam_pick(&s, taken2, 1, ip("10.0.1.6"), &got), 0);
	assert_int_equal(got, ip("10.0.1.2"));
	/* a hint outside the subnet starts at its beginning */
	assert_int_equal(ovl_ipam_pick(&s, NULL, 0, ip("192.168.0.9"), &got), 0);
	assert_int_equal(got, ip("10.0.1.2"));
}

static void test_pick_full(void **state)
{
	(void)state;
	struct ovl_subnet s = subnet("10.0.1.0", 29, "10.0.1.1");
	uint32_t taken[] = {ip("10.0.1.6"), ip("10.0.1.5"), ip("10.0.1.4"), ip("10.0.1.3"),
			    ip("10.0.1.2")};
	uint32_t got = 0;
	assert_int_equal(ovl_ipam_pick(&s, taken, 5, s.net + 3, &got), -ENOSPC);
	assert_int_equal(got, 0);
	assert_int_equal(ovl_ipam_pick(&s, taken, 4, s.net + 3, &got), 0);
	assert_int_equal(got, ip("10.0.1.2"));
}

static void test_pick_distinct(void **state)
{
	(void)state;
	/* every address of a /24 handed out once, whatever the owners' hints */
	struct ovl_subnet s = subnet("10.0.9.0", 24, "10.0.9.1");
	uint32_t taken[256];
	size_t n = 0;
	for (int i = 0; i < 253; i++) {
		char owner[32];
		snprintf(owner, sizeof(owner), "c%d", i);
		uint32_t h = ovl_ipam_hint(&s, owner), got;
		assert_true(h > s.net && h < s.net + 255);
		assert_int_equal(ovl_ipam_pick(&s, taken, n, h, &got), 0);
		assert_true(ovl_subnet_contains(&s, got));
		assert_int_not_equal(got, s.gateway);
		for (size_t k = 0; k < n; k++)
			assert_int_not_equal(taken[k], got);
		taken[n++] = got;
	}
	uint32_t got;
	assert_int_equal(ovl_ipam_pick(&s, taken, n, s.net + 7, &got), -ENOSPC);
	/* the same owner, the same start */
	assert_int_equal(ovl_ipam_hint(&s, "abc"), ovl_ipam_hint(&s, "abc"));
}

static json_t *network(const char *subnet_s, const char *gw, const char *vni, const char *mtu)
{
	json_t *opts = json_pack("{s:s}", "com.docker.network.driver.overlay.vxlanid_list", vni);
	if (mtu)
		json_object_set_new(opts, "com.docker.network.driver.mtu", json_string(mtu));
	return json_pack("{s:s, s:s, s:b, s:{s:[{s:s, s:s}]}, s:o}", "Id", "abc123", "Name", "ovl",
			 "Attachable", 1, "IPAM", "Config", "Subnet", subnet_s, "Gateway", gw,
			 "Options", opts);
}

static void test_network_parse(void **state)
{
	(void)state;
	struct ovl_network n;
	struct shoal_err err = {0};
	json_t *j = network("10.0.3.0/24", "10.0.3.1", "4099", "1400");
	assert_int_equal(ovl_network_parse(j, &n, &err), 0);
	assert_string_equal(n.id, "abc123");
	assert_string_equal(n.name, "ovl");
	assert_int_equal(n.vni, 4099);
	assert_int_equal(n.mtu, 1400);
	assert_true(n.attachable);
	assert_false(n.internal);
	assert_int_equal(n.subnet.net, ip("10.0.3.0"));
	assert_int_equal(n.subnet.prefix, 24);
	assert_int_equal(n.subnet.gateway, ip("10.0.3.1"));
	json_decref(j);

	j = network("10.0.3.0/24", "10.0.4.1", "4099", NULL);
	assert_int_equal(ovl_network_parse(j, &n, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "not in its subnet"));
	json_decref(j);
	j = network("10.0.3.0/24", "10.0.3.1", "0", NULL);
	assert_int_equal(ovl_network_parse(j, &n, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "VXLAN id"));
	json_decref(j);
	j = network("10.0.3.1/24", "10.0.3.1", "5", NULL);
	assert_int_equal(ovl_network_parse(j, &n, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "host bits"));
	json_decref(j);
}

static void test_endpoint_roundtrip(void **state)
{
	(void)state;
	struct ovl_endpoint e = {.kind = OVL_EP_GATEWAY, .mac = {2, 0x42, 10, 0, 3, 7}};
	snprintf(e.id, sizeof(e.id), "node-n1");
	snprintf(e.net, sizeof(e.net), "abc123");
	snprintf(e.node, sizeof(e.node), "n1");
	snprintf(e.name, sizeof(e.name), "host1");
	e.ip.s_addr = htonl(ip("10.0.3.7"));
	e.vtep.s_addr = htonl(ip("10.250.0.11"));
	char *text = ovl_endpoint_format(&e);
	assert_non_null(text);
	struct ovl_endpoint back;
	struct shoal_err err = {0};
	assert_int_equal(ovl_endpoint_parse(text, strlen(text), &back, &err), 0);
	assert_memory_equal(&e, &back, sizeof(e));
	free(text);

	const char *bad[] = {
		"[]",
		"{\"ID\":\"a\",\"Network\":\"n\",\"Node\":\"x\",\"Kind\":\"container\","
		"\"IP\":\"10.0.0.300\",\"MAC\":\"02:42:0a:00:00:02\",\"VTEP\":\"1.2.3.4\"}",
		"{\"ID\":\"a\",\"Network\":\"n\",\"Node\":\"x\",\"Kind\":\"router\","
		"\"IP\":\"10.0.0.3\",\"MAC\":\"02:42:0a:00:00:02\",\"VTEP\":\"1.2.3.4\"}",
		"{\"ID\":\"a\",\"Network\":\"n\",\"Node\":\"x\",\"Kind\":\"container\","
		"\"IP\":\"10.0.0.3\",\"MAC\":\"02:42:0a:00:00\",\"VTEP\":\"1.2.3.4\"}",
		"{\"ID\":\"a/b\",\"Network\":\"n\",\"Node\":\"x\",\"Kind\":\"container\","
		"\"IP\":\"10.0.0.3\",\"MAC\":\"02:42:0a:00:00:03\",\"VTEP\":\"1.2.3.4\"}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_true(ovl_endpoint_parse(bad[i], strlen(bad[i]), &back, NULL) < 0);
	char *owner = ovl_addr_owner("n1", "c1");
	assert_string_equal(owner, "{\"Endpoint\":\"c1\",\"Node\":\"n1\"}");
	free(owner);
}

static void test_key_split(void **state)
{
	(void)state;
	char net[16], rest[16];
	assert_int_equal(ovl_key_split("/shoal/endpoints/abc/node-1", OVL_ENDPOINT_PREFIX, net,
				       sizeof(net), rest, sizeof(rest)),
			 0);
	assert_string_equal(net, "abc");
	assert_string_equal(rest, "node-1");
	assert_int_equal(ovl_key_split("/shoal/endpoints/abc", OVL_ENDPOINT_PREFIX, net,
				       sizeof(net), rest, sizeof(rest)),
			 -EINVAL);
	assert_int_equal(ovl_key_split("/shoal/endpoints/a/b/c", OVL_ENDPOINT_PREFIX, net,
				       sizeof(net), rest, sizeof(rest)),
			 -EINVAL);
	assert_int_equal(ovl_key_split("/shoal/ipam/addr/abc/10.0.0.2", OVL_ENDPOINT_PREFIX, net,
				       sizeof(net), rest, sizeof(rest)),
			 -EINVAL);
	assert_int_equal(ovl_key_split("/shoal/ipam/addr/abc/10.0.0.2", OVL_ADDR_PREFIX, net,
				       sizeof(net), rest, sizeof(rest)),
			 0);
	assert_string_equal(rest, "10.0.0.2");
}

/* A record of endpoint id, named name (or not), of the given kind. */
static char *record(const char *id, const char *name, enum ovl_ep_kind kind, const char *addr)
{
	struct ovl_endpoint e = {.kind = kind, .mac = {2, 0x42, 10, 0, 0, 2}};
	snprintf(e.id, sizeof(e.id), "%s", id);
	snprintf(e.net, sizeof(e.net), "n1");
	snprintf(e.node, sizeof(e.node), "node1");
	snprintf(e.name, sizeof(e.name), "%s", name);
	e.ip.s_addr = htonl(ip(addr));
	e.vtep.s_addr = htonl(ip("10.250.0.11"));
	char *t = ovl_endpoint_format(&e);
	assert_non_null(t);
	return t;
}

static void test_endpoint_names(void **state)
{
	(void)state;
	char *recs[] = {
		record("c1", "web.1.x", OVL_EP_CONTAINER, "10.0.0.2"),
		record("node-node1", "host1", OVL_EP_GATEWAY, "10.0.0.3"),
		"not json",
		record("c2abcdef", "", OVL_EP_CONTAINER, "10.0.0.4"),
		record("c3", "db", OVL_EP_CONTAINER, "10.0.0.5"),
	};
	const char *texts[5];
	size_t lens[5];
	for (size_t i = 0; i < 5; i++) {
		texts[i] = recs[i];
		lens[i] = strlen(recs[i]);
	}
	char buf[64];
	/* gateways and unreadable records are not users; unnamed by their id */
	assert_int_equal(ovl_endpoint_names(texts, lens, 5, buf, sizeof(buf)), 3);
	assert_string_equal(buf, "web.1.x, c2abcdef, db");
	/* cut short with "..." when they do not fit, still counted */
	char small[20];
	assert_int_equal(ovl_endpoint_names(texts, lens, 5, small, sizeof(small)), 3);
	assert_string_equal(small, "web.1.x, ...");
	/* only a gateway: nobody */
	assert_int_equal(ovl_endpoint_names(texts + 1, lens + 1, 2, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "");
	for (size_t i = 0; i < 5; i++)
		if (i != 2)
			free(recs[i]);
}

static void test_attachment(void **state)
{
	(void)state;
	struct ovl_network n = {.vni = 4097, .attachable = true};
	snprintf(n.id, sizeof(n.id), "abcdef0123456789abcdef012");
	snprintf(n.name, sizeof(n.name), "ovl");
	n.subnet = subnet("10.77.0.0", 24, "10.77.0.1");
	struct in_addr a = {htonl(ip("10.77.0.9"))};
	json_t *labels = json_pack("{s:s}", "team", "x");
	json_t *att = ovl_attachment(&n, labels, a);
	assert_non_null(att);
	json_t *net = json_object_get(att, "Network");
	assert_string_equal(json_string_value(json_object_get(net, "ID")), n.id);
	json_t *spec = json_object_get(net, "Spec");
	assert_string_equal(json_string_value(json_object_get(spec, "Name")), "ovl");
	assert_string_equal(json_string_value(json_object_get(spec, "Scope")), "swarm");
	assert_string_equal(
		json_string_value(json_object_get(json_object_get(spec, "Labels"), "team")), "x");
	assert_true(json_is_true(json_object_get(spec, "Attachable")));
	json_t *addrs = json_object_get(att, "Addresses");
	assert_int_equal(json_array_size(addrs), 1);
	assert_string_equal(json_string_value(json_array_get(addrs, 0)), "10.77.0.9/24");
	json_decref(att);
	/* the labels were borrowed */
	assert_int_equal(labels->refcount, 1);
	json_decref(labels);
	att = ovl_attachment(&n, NULL, a);
	assert_int_equal(
		json_object_size(json_object_get(
			json_object_get(json_object_get(att, "Network"), "Spec"), "Labels")),
		0);
	json_decref(att);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pick_skips_reserved), cmocka_unit_test(test_pick_full),
		cmocka_unit_test(test_pick_distinct),	    cmocka_unit_test(test_network_parse),
		cmocka_unit_test(test_endpoint_roundtrip),  cmocka_unit_test(test_key_split),
		cmocka_unit_test(test_endpoint_names),	    cmocka_unit_test(test_attachment),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
