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

#include "overlay/vxlan-ep.h"

static struct vxlan_masq net(const char *bridge, const char *addr, uint8_t plen, bool internal)
{
	struct vxlan_masq m = {.prefixlen = plen, .internal = internal};
	snprintf(m.bridge, sizeof(m.bridge), "%s", bridge);
	assert_int_equal(inet_pton(AF_INET, addr, &m.net), 1);
	return m;
}

static void test_empty_removes_the_table(void **state)
{
	(void)state;
	char *t = vxlan_masq_ruleset("shoal", NULL, 0, NULL);
	assert_non_null(t);
	assert_string_equal(t, "add table ip shoal_ovl\ndelete table ip shoal_ovl\n");
	free(t);
}

static void test_rules(void **state)
{
	(void)state;
	struct vxlan_masq nets[] = {net("shoaln1a2b3c", "10.77.0.0", 24, false),
				    net("shoaln4d5e6f", "10.78.0.0", 24, true)};
	char *t = vxlan_masq_ruleset("shoal", nets, 2, NULL);
	assert_non_null(t);
	/* replaced in one transaction: the old table goes in the same batch */
	assert_ptr_equal(strstr(t, "add table ip shoal_ovl\ndelete table ip shoal_ovl\n"), t);
	assert_non_null(strstr(t, "type nat hook postrouting"));
	assert_non_null(
		strstr(t, "ip saddr 10.77.0.0/24 oifname != \"shoaln1a2b3c\" masquerade\n"));
	/* an internal network is not masqueraded: its way out is dropped */
	assert_null(strstr(t, "ip saddr 10.78.0.0/24"));
	assert_non_null(strstr(t, "type filter hook forward"));
	assert_non_null(strstr(t, "iifname \"shoaln4d5e6f\" oifname != \"shoaln4d5e6f\" drop\n"));
	/* and the networks are apart: the node routes none into another */
	assert_non_null(strstr(t, "elements = { 10.77.0.0/24, 10.78.0.0/24 }"));
	assert_non_null(strstr(
		t, "iifname \"shoaln1a2b3c\" ip daddr != 10.77.0.0/24 ip daddr @nets drop\n"));
	free(t);
}

static void test_bad_prefix(void **state)
{
	(void)state;
	struct shoal_err err = {0};
	assert_null(vxlan_masq_ruleset("", NULL, 0, &err));
	assert_int_equal(err.code, EINVAL);
	assert_null(vxlan_masq_ruleset("toolongprefix", NULL, 0, &err));
	assert_non_null(strstr(err.msg, "1 to 8 characters"));
	assert_int_equal(vxlan_masq_set("", NULL, 0, &err), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty_removes_the_table),
		cmocka_unit_test(test_rules),
		cmocka_unit_test(test_bad_prefix),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
