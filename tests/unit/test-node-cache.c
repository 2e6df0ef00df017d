// SPDX-License-Identifier: Apache-2.0
/* The node list an agent keeps from the store's watches: records parsed once
 * per version, liveness and leadership shown on them, a full read dropping
 * what it no longer holds, and a generation that moves with what is shown. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "agent/node-cache.h"

static void put_rec(struct node_cache *nc, const char *id, const char *avail, int64_t rev)
{
	char v[512];
	snprintf(v, sizeof(v),
		 "{\"ID\":\"%s\",\"Spec\":{\"Availability\":\"%s\"},\"Status\":{\"State\":"
		 "\"ready\",\"Addr\":\"10.0.0.1\"},\"ManagerStatus\":{\"Addr\":\"10.0.0.1:2377\"}}",
		 id, avail);
	assert_int_equal(node_cache_record_put(nc, id, v, strlen(v), rev), 0);
}

static json_t *find(json_t *list, const char *id)
{
	size_t i;
	json_t *n;
	json_array_foreach(list, i, n) if (strcmp(json_string_value(json_object_get(n, "ID")),
						  id) == 0) return n;
	return NULL;
}

static const char *state_of(json_t *n)
{
	return json_string_value(json_object_get(json_object_get(n, "Status"), "State"));
}

static void test_records_in_id_order_with_versions(void **state)
{
	struct node_cache *nc = node_cache_new();
	assert_non_null(nc);
	put_rec(nc, "n3", "active", 7);
	put_rec(nc, "n1", "active", 5);
	put_rec(nc, "n2", "drain", 6);
	json_t *l = node_cache_list(nc);
	assert_int_equal(json_array_size(l), 3);
	assert_string_equal(json_string_value(json_object_get(json_array_get(l, 0), "ID")), "n1");
	assert_string_equal(json_string_value(json_object_get(json_array_get(l, 2), "ID")), "n3");
	assert_int_equal(json_integer_value(json_object_get(
				 json_object_get(json_array_get(l, 1), "Version"), "Index")),
			 6);
	/* nothing changed: the same list, no rebuild */
	assert_ptr_equal(node_cache_list(nc), l);
	assert_int_equal(node_cache_size(nc), 3);
	node_cache_free(nc);
}

static void test_newer_replaces_older_ignored(void **state)
{
	struct node_cache *nc = node_cache_new();
	put_rec(nc, "n1", "active", 10);
	uint64_t g = node_cache_generation(nc);
	/* an event older than what is held (a reload read past it) */
	put_rec(nc, "n1", "drain", 9);
	assert_int_equal(node_cache_generation(nc), g);
	/* the same version again changes nothing either */
	put_rec(nc, "n1", "active", 10);
	assert_int_equal(node_cache_generation(nc), g);
	put_rec(nc, "n1", "drain", 11);
	assert_int_not_equal(node_cache_generation(nc), g);
	json_t *n = find(node_cache_list(nc), "n1");
	assert_string_equal(
		json_string_value(json_object_get(json_object_get(n, "Spec"), "Availability")),
		"drain");
	/* not JSON: refused, the record kept */
	assert_int_equal(node_cache_record_put(nc, "n1", "{nope", 5, 12), -EBADMSG);
	assert_int_equal(node_cache_record_put(nc, "n1", "[1]", 3, 12), -EBADMSG);
	assert_non_null(find(node_cache_list(nc), "n1"));
	node_cache_record_del(nc, "n1");
	assert_int_equal(json_array_size(node_cache_list(nc)), 0);
	assert_int_equal(node_cache_size(nc), 0);
	node_cache_free(nc);
}

static void test_liveness_and_leader_shown(void **state)
{
	struct node_cache *nc = node_cache_new();
	put_rec(nc, "n1", "active", 1);
	put_rec(nc, "n2", "active", 2);
	json_t *l = node_cache_list(nc);
	/* no liveness key: down, with swarm's message */
	assert_string_equal(state_of(find(l, "n1")), "down");
	assert_int_equal(node_cache_down_since(nc, "n1"), 0); /* never seen go */
	assert_int_equal(node_cache_alive_put(nc, "n1"), 1);
	assert_int_equal(node_cache_alive_put(nc, "n1"), 0);
	assert_true(node_cache_alive(nc, "n1"));
	node_cache_set_leader(nc, "n1");
	l = node_cache_list(nc);
	json_t *n1 = find(l, "n1");
	assert_string_equal(state_of(n1), "ready");
	assert_null(json_object_get(json_object_get(n1, "Status"), "Message"));
	json_t *mst = json_object_get(n1, "ManagerStatus");
	assert_true(json_is_true(json_object_get(mst, "Leader")));
	assert_string_equal(json_string_value(json_object_get(mst, "Reachability")), "reachable");
	assert_null(json_object_get(json_object_get(find(l, "n2"), "ManagerStatus"), "Leader"));
	/* it goes: down since then, unreachable, leader mark moved */
	uint64_t g = node_cache_generation(nc);
	assert_int_equal(node_cache_alive_del(nc, "n1", 1234), 1);
	assert_int_equal(node_cache_alive_del(nc, "n1", 5678), 0);
	assert_int_not_equal(node_cache_generation(nc), g);
	assert_int_equal(node_cache_down_since(nc, "n1"), 1234);
	node_cache_set_leader(nc, "n2");
	l = node_cache_list(nc);
	n1 = find(l, "n1");
	assert_string_equal(state_of(n1), "down");
	assert_string_equal(
		json_string_value(json_object_get(json_object_get(n1, "Status"), "Message")),
		"heartbeat failure");
	mst = json_object_get(n1, "ManagerStatus");
	assert_null(json_object_get(mst, "Leader"));
	assert_string_equal(json_string_value(json_object_get(mst, "Reachability")), "unreachable");
	/* back up: down time forgotten */
	assert_int_equal(node_cache_alive_put(nc, "n1"), 1);
	assert_int_equal(node_cache_down_since(nc, "n1"), 0);
	assert_string_equal(state_of(find(node_cache_list(nc), "n1")), "ready");
	node_cache_free(nc);
}

static void test_list_held_across_changes(void **state)
{
	struct node_cache *nc = node_cache_new();
	put_rec(nc, "n1", "active", 1);
	json_t *old = json_incref(node_cache_list(nc));
	put_rec(nc, "n2", "active", 2);
	node_cache_record_del(nc, "n1");
	/* the pass that holds the old list still reads it whole */
	assert_int_equal(json_array_size(old), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(old, 0), "ID")), "n1");
	json_t *now = node_cache_list(nc);
	assert_int_equal(json_array_size(now), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(now, 0), "ID")), "n2");
	json_decref(old);
	node_cache_free(nc);
}

static void test_reload_drops_what_is_gone(void **state)
{
	struct node_cache *nc = node_cache_new();
	put_rec(nc, "n1", "active", 1);
	put_rec(nc, "n2", "active", 2);
	put_rec(nc, "n3", "active", 3);
	node_cache_alive_put(nc, "n1");
	node_cache_alive_put(nc, "n2");
	/* a watch restarted after a compaction: n2's record and n1's liveness
	 * went while it was away; n3 came up */
	node_cache_reload_begin(nc, NODE_CACHE_RECORDS);
	put_rec(nc, "n1", "active", 1);
	put_rec(nc, "n3", "pause", 9);
	node_cache_reload_end(nc, NODE_CACHE_RECORDS, 100);
	node_cache_reload_begin(nc, NODE_CACHE_ALIVE);
	assert_int_equal(node_cache_alive_put(nc, "n2"), 0);
	assert_int_equal(node_cache_alive_put(nc, "n3"), 1);
	node_cache_reload_end(nc, NODE_CACHE_ALIVE, 100);
	json_t *l = node_cache_list(nc);
	assert_int_equal(json_array_size(l), 2);
	assert_null(find(l, "n2"));
	assert_string_equal(state_of(find(l, "n1")), "down");
	assert_int_equal(node_cache_down_since(nc, "n1"), 100);
	assert_string_equal(state_of(find(l, "n3")), "ready");
	assert_true(node_cache_alive(nc, "n2")); /* alive without a record yet */
	node_cache_free(nc);
}

static void test_many_nodes(void **state)
{
	struct node_cache *nc = node_cache_new();
	char id[32];
	for (int i = 0; i < 5000; i++) {
		snprintf(id, sizeof(id), "node-%05d", i);
		put_rec(nc, id, "active", i + 1);
		node_cache_alive_put(nc, id);
	}
	json_t *l = node_cache_list(nc);
	assert_int_equal(json_array_size(l), 5000);
	for (size_t i = 1; i < json_array_size(l); i++)
		assert_true(
			strcmp(json_string_value(json_object_get(json_array_get(l, i - 1), "ID")),
			       json_string_value(json_object_get(json_array_get(l, i), "ID"))) < 0);
	assert_true(node_cache_alive(nc, "node-04999"));
	assert_false(node_cache_alive(nc, "node-05000"));
	node_cache_free(nc);
	node_cache_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_records_in_id_order_with_versions),
		cmocka_unit_test(test_newer_replaces_older_ignored),
		cmocka_unit_test(test_liveness_and_leader_shown),
		cmocka_unit_test(test_list_held_across_changes),
		cmocka_unit_test(test_reload_drops_what_is_gone),
		cmocka_unit_test(test_many_nodes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
