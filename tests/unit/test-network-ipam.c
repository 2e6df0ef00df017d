// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "agent/network-ipam.h"

/* Allocates for id into *rec (replaced on success); returns the result. */
static int alloc(json_t **rec, const char *id, const char *subnet, const char *gw, uint32_t vni,
		 struct net_alloc *out, struct shoal_err *err)
{
	static const char *const avoid[] = {"10.213.0.0/16", NULL};
	struct net_alloc_req req = {
		.network_id = id, .subnet = subnet, .gateway = gw, .vni = vni, .avoid = avoid};
	json_t *next = NULL;
	memset(err, 0, sizeof(*err));
	int r = net_ipam_alloc(*rec, &req, &next, out, err);
	if (r == 0) {
		json_decref(*rec);
		*rec = next;
	}
	return r;
}

static void test_cidr(void **state)
{
	(void)state;
	struct net_cidr a, b;
	struct shoal_err err = {0};
	assert_int_equal(net_cidr_parse("s", "10.1.0.0/16", &a, &err), 0);
	assert_int_equal(net_cidr_parse("s", "10.1.2.0/24", &b, &err), 0);
	assert_true(net_cidr_overlap(&a, &b));
	assert_int_equal(net_cidr_parse("s", "10.2.0.0/16", &b, &err), 0);
	assert_false(net_cidr_overlap(&a, &b));
	assert_int_equal(net_cidr_parse("s", "10.1.0.1/16", &a, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "host bits"));
	assert_int_equal(net_cidr_parse("s", "10.1.0.0", &a, &err), -EINVAL);
	assert_int_equal(net_cidr_parse("s", "10.1.0.0/33", &a, &err), -EINVAL);
	assert_int_equal(net_cidr_parse("s", "300.1.0.0/16", &a, &err), -EINVAL);
}

static void test_pool(void **state)
{
	(void)state;
	json_t *rec = json_object();
	struct net_alloc al;
	struct shoal_err err;
	assert_int_equal(alloc(&rec, "n1", NULL, NULL, 0, &al, &err), 0);
	assert_string_equal(al.subnet, "10.0.0.0/24");
	assert_string_equal(al.gateway, "10.0.0.1");
	assert_int_equal(al.vni, NET_VNI_FIRST);
	assert_int_equal(alloc(&rec, "n2", NULL, NULL, 0, &al, &err), 0);
	assert_string_equal(al.subnet, "10.0.1.0/24");
	assert_int_equal(al.vni, NET_VNI_FIRST + 1);
	/* a given subnet inside the pool's next block: the pool skips it */
	assert_int_equal(alloc(&rec, "n3", "10.0.2.0/23", "10.0.3.254", 0, &al, &err), 0);
	assert_string_equal(al.gateway, "10.0.3.254");
	assert_int_equal(alloc(&rec, "n4", NULL, NULL, 0, &al, &err), 0);
	assert_string_equal(al.subnet, "10.0.4.0/24");
	/* released: its subnet and VNI come back first */
	json_t *rel = net_ipam_release(rec, "n1");
	json_decref(rec);
	rec = rel;
	assert_int_equal(alloc(&rec, "n5", NULL, NULL, 0, &al, &err), 0);
	assert_string_equal(al.subnet, "10.0.0.0/24");
	assert_int_equal(al.vni, NET_VNI_FIRST);
	json_decref(rec);
}

static void test_conflicts(void **state)
{
	(void)state;
	json_t *rec = json_object();
	struct net_alloc al;
	struct shoal_err err;
	assert_int_equal(alloc(&rec, "a", "10.50.0.0/24", NULL, 5000, &al, &err), 0);
	assert_int_equal(alloc(&rec, "b", "10.50.0.0/16", NULL, 0, &al, &err), -EEXIST);
	assert_int_equal(err.status, 409);
	assert_non_null(strstr(err.msg, "overlaps 10.50.0.0/24 of network a"));
	assert_int_equal(alloc(&rec, "b", "10.60.0.0/24", NULL, 5000, &al, &err), -EEXIST);
	assert_non_null(strstr(err.msg, "vni: 5000 is used by network a"));
	assert_int_equal(alloc(&rec, "b", "10.213.5.0/24", NULL, 0, &al, &err), -EEXIST);
	assert_non_null(strstr(err.msg, "bridge network"));
	assert_int_equal(alloc(&rec, "b", "10.60.0.0/24", "10.61.0.1", 0, &al, &err), -EINVAL);
	assert_int_equal(err.status, 400);
	assert_int_equal(alloc(&rec, "b", "10.60.0.0/24", "10.60.0.255", 0, &al, &err), -EINVAL);
	assert_int_equal(alloc(&rec, "b", "10.60.0.0/24", "10.60.0.0", 0, &al, &err), -EINVAL);
	assert_int_equal(alloc(&rec, "b", "10.60.0.0/30", NULL, 0, &al, &err), -EINVAL);
	assert_int_equal(alloc(&rec, "b", "10.60.0.0/24", NULL, NET_VNI_LAST + 1, &al, &err),
			 -EINVAL);
	/* nothing of the refused ones was recorded */
	assert_int_equal(json_object_size(json_object_get(rec, "Subnets")), 1);
	assert_int_equal(json_object_size(json_object_get(rec, "VNIs")), 1);
	json_decref(rec);
}

static void test_exhausted(void **state)
{
	(void)state;
	/* the whole pool taken by one /8 elsewhere: nothing left */
	json_t *rec = json_pack("{s:{s:s}, s:{}}", "Subnets", "10.0.0.0/8", "big", "VNIs");
	struct net_alloc al;
	struct shoal_err err;
	assert_int_equal(alloc(&rec, "x", NULL, NULL, 0, &al, &err), -ENOSPC);
	assert_non_null(strstr(err.msg, "no free /24 left"));
	json_decref(rec);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cidr),
		cmocka_unit_test(test_pool),
		cmocka_unit_test(test_conflicts),
		cmocka_unit_test(test_exhausted),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
