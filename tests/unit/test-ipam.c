// SPDX-License-Identifier: Apache-2.0
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "overlay/bridge.h"

static struct in_addr A(const char *s) {
	struct in_addr a;
	assert_int_equal(inet_pton(AF_INET, s, &a), 1);
	return a;
}

static const char *
S(struct in_addr a)
{
	static char buf[4][INET_ADDRSTRLEN];
	static int i;
	i = (i + 1) % 4;
	return inet_ntop(AF_INET, &a, buf[i], INET_ADDRSTRLEN);
}

static void test_bad_cidrs(void **state)
{
	static const char *bad[] = {
		"",
		"10.0.0.0",
		"10.0.0.0/",
		"10.0.0.0/7",
		"0.0.0.0/0",
		"10.0.0.0/31",
		"10.0.0.0/32",
		"10.0.0.0/33",
		"10.0.0/24",
		"10.0.0.256/24",
		"x/24",
		"10.0.0.0/2a",
		"10.0.0.0/-1",
		"10.0.0.1/24",
		"10.213.0.0/8",
		"/16",
		"10.0.0.0/016",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct ipam *ip = NULL;
		struct shoal_err err = {0};
		int r = ipam_new(bad[i], &ip, &err);
		if (r != -EINVAL)
			fail_msg("\"%s\" gave %d, expected -EINVAL", bad[i], r);
		assert_null(ip);
		assert_int_equal(err.code, EINVAL);
		assert_true(strlen(err.msg) > 0);
	}

	struct ipam *ip = NULL;
	struct shoal_err err = {0};
	assert_int_equal(ipam_new("10.0.0.7/24", &ip, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "10.0.0.0/24"));
	assert_int_equal(ipam_new("10.0.0.0/31", &ip, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "/8 to /30"));
}

static void test_limits(void **state)
{
	struct ipam *ip = NULL;
	assert_int_equal(ipam_new("10.0.0.0/8", &ip, NULL), 0);
	assert_int_equal(ipam_free_count(ip), (1u << 24) - 3);
	assert_int_equal(ipam_prefixlen(ip), 8);
	ipam_free(ip);

	assert_int_equal(ipam_new("192.168.7.4/30", &ip, NULL), 0);
	assert_int_equal(ipam_free_count(ip), 1);
	struct in_addr a;
	assert_int_equal(ipam_alloc(ip, &a), 0);
	assert_string_equal(S(a), "192.168.7.6");
	assert_int_equal(ipam_alloc(ip, &a), -ENOSPC);
	assert_string_equal(S(ipam_gateway(ip)), "192.168.7.5");
	assert_string_equal(S(ipam_network(ip)), "192.168.7.4");
	assert_string_equal(S(ipam_broadcast(ip)), "192.168.7.7");
	ipam_free(ip);
}

/* Every address of the subnet but network, gateway and broadcast, once each. */
static void test_exhaust(void **state)
{
	struct ipam *ip = NULL;
	assert_int_equal(ipam_new("172.20.4.0/22", &ip, NULL), 0);
	assert_int_equal(ipam_free_count(ip), 1021);
	assert_string_equal(S(ipam_gateway(ip)), "172.20.4.1");
	assert_int_equal(ipam_prefixlen(ip), 22);

	uint8_t seen[1024] = {0};
	struct in_addr a;
	for (int i = 0; i < 1021; i++) {
		assert_int_equal(ipam_alloc(ip, &a), 0);
		uint32_t h = ntohl(a.s_addr) - ntohl(A("172.20.4.0").s_addr);
		assert_true(h < 1024);
		assert_int_not_equal(h, 0);
		assert_int_not_equal(h, 1);
		assert_int_not_equal(h, 1023);
		assert_int_equal(seen[h], 0);
		seen[h] = 1;
	}
	assert_int_equal(ipam_free_count(ip), 0);
	assert_int_equal(ipam_alloc(ip, &a), -ENOSPC);

	/* A released address is handed out again when it is the only one. */
	assert_int_equal(ipam_release(ip, A("172.20.5.77")), 0);
	assert_int_equal(ipam_free_count(ip), 1);
	assert_int_equal(ipam_alloc(ip, &a), 0);
	assert_string_equal(S(a), "172.20.5.77");
	ipam_free(ip);
}

/* Next fit: a just-released address is not the next one out, and the search
 * wraps past broadcast back to the start. */
static void test_next_fit_wrap(void **state)
{
	struct ipam *ip = NULL;
	assert_int_equal(ipam_new("10.1.2.0/29", &ip, NULL), 0);
	struct in_addr a;
	assert_int_equal(ipam_alloc(ip, &a), 0);
	assert_string_equal(S(a), "10.1.2.2");
	assert_int_equal(ipam_alloc(ip, &a), 0);
	assert_string_equal(S(a), "10.1.2.3");
	assert_int_equal(ipam_release(ip, A("10.1.2.2")), 0);
	assert_int_equal(ipam_alloc(ip, &a), 0);
	assert_string_equal(S(a), "10.1.2.4");
	assert_int_equal(ipam_alloc(ip, &a), 0);
	assert_string_equal(S(a), "10.1.2.5");
	assert_int_equal(ipam_alloc(ip, &a), 0);
	assert_string_equal(S(a), "10.1.2.6");
	/* .7 is broadcast: wrap, skip .0 and .1, take the released .2 */
	assert_int_equal(ipam_alloc(ip, &a), 0);
	assert_string_equal(S(a), "10.1.2.2");
	assert_int_equal(ipam_alloc(ip, &a), -ENOSPC);
	assert_int_equal(ipam_release(ip, A("10.1.2.5")), 0);
	assert_int_equal(ipam_release(ip, A("10.1.2.3")), 0);
	/* search continues after .2: .3 before .5 */
	assert_int_equal(ipam_alloc(ip, &a), 0);
	assert_string_equal(S(a), "10.1.2.3");
	assert_int_equal(ipam_alloc(ip, &a), 0);
	assert_string_equal(S(a), "10.1.2.5");
	ipam_free(ip);
}

/* Next fit across a word boundary of the bitmap with full words in between. */
static void test_wrap_large(void **state)
{
	struct ipam *ip = NULL;
	assert_int_equal(ipam_new("10.8.0.0/16", &ip, NULL), 0);
	struct in_addr a;
	for (int i = 0; i < 65533; i++)
		assert_int_equal(ipam_alloc(ip, &a), 0);
	assert_string_equal(S(a), "10.8.255.254");
	assert_int_equal(ipam_release(ip, A("10.8.0.9")), 0);
	assert_int_equal(ipam_release(ip, A("10.8.200.1")), 0);
	assert_int_equal(ipam_alloc(ip, &a), 0);
	assert_string_equal(S(a), "10.8.0.9");
	assert_int_equal(ipam_alloc(ip, &a), 0);
	assert_string_equal(S(a), "10.8.200.1");
	assert_int_equal(ipam_alloc(ip, &a), -ENOSPC);
	ipam_free(ip);
}

static void test_reserve_release(void **state)
{
	struct ipam *ip = NULL;
	assert_int_equal(ipam_new("10.213.0.0/16", &ip, NULL), 0);
	uint32_t total = ipam_free_count(ip);
	assert_int_equal(total, 65533);

	assert_int_equal(ipam_reserve(ip, A("10.213.0.2")), 0);
	assert_int_equal(ipam_reserve(ip, A("10.213.0.2")), -EEXIST);
	assert_int_equal(ipam_reserve(ip, A("10.213.0.1")), -EEXIST);	  /* gateway */
	assert_int_equal(ipam_reserve(ip, A("10.213.0.0")), -EEXIST);	  /* network */
	assert_int_equal(ipam_reserve(ip, A("10.213.255.255")), -EEXIST); /* broadcast */
	assert_int_equal(ipam_reserve(ip, A("10.214.0.2")), -ERANGE);
	assert_int_equal(ipam_reserve(ip, A("10.212.255.255")), -ERANGE);
	assert_int_equal(ipam_reserve(ip, A("10.213.9.9")), 0);
	assert_int_equal(ipam_free_count(ip), total - 2);

	/* allocation skips reserved addresses */
	struct in_addr a;
	assert_int_equal(ipam_alloc(ip, &a), 0);
	assert_string_equal(S(a), "10.213.0.3");

	assert_int_equal(ipam_release(ip, A("10.213.9.9")), 0);
	assert_int_equal(ipam_release(ip, A("10.213.9.9")), -ENOENT);
	assert_int_equal(ipam_release(ip, A("10.213.0.1")), -EINVAL);
	assert_int_equal(ipam_release(ip, A("10.213.0.0")), -EINVAL);
	assert_int_equal(ipam_release(ip, A("10.213.255.255")), -EINVAL);
	assert_int_equal(ipam_release(ip, A("11.0.0.1")), -ERANGE);
	assert_int_equal(ipam_free_count(ip), total - 2);

	assert_true(ipam_contains(ip, A("10.213.4.4")));
	assert_false(ipam_contains(ip, A("10.214.4.4")));
	ipam_free(ip);
	ipam_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_cidrs),  cmocka_unit_test(test_limits),
		cmocka_unit_test(test_exhaust),	   cmocka_unit_test(test_next_fit_wrap),
		cmocka_unit_test(test_wrap_large), cmocka_unit_test(test_reserve_release),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
