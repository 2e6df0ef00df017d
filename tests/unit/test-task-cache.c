// SPDX-License-Identifier: Apache-2.0
/* The manager's task cache: each record parsed once, found by id, by service,
 * on this node, running, holding resources; a new version replaces the old
 * one in every list. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "agent/task-cache.h"

static json_t *rec(const char *id, const char *sid, const char *node, const char *state,
		   const char *desired)
{
	struct orch_task t = {0};
	snprintf(t.id, sizeof(t.id), "%s", id);
	snprintf(t.service_id, sizeof(t.service_id), "%s", sid);
	snprintf(t.node_id, sizeof(t.node_id), "%s", node);
	t.slot = 1;
	t.spec_version = 1;
	t.desired_state = TASK_RUNNING;
	task_state_from_name(state, &t.state);
	json_t *r = json_pack("{s:s, s:s, s:s, s:s, s:{s:s}, s:o, s:{s:{s:{s:I, s:I}}}}", "ID", id,
			      "ServiceID", sid, "NodeID", node, "DesiredState", desired, "Status",
			      "State", state, "Orch", orch_task_to_json(&t), "Spec", "Resources",
			      "Reservations", "NanoCPUs", (json_int_t)500000000, "MemoryBytes",
			      (json_int_t)1024);
	assert_non_null(r);
	return r;
}

static void put(struct task_cache *tc, const char *id, const char *sid, const char *node,
		const char *state, const char *desired, int64_t rev)
{
	json_t *r = rec(id, sid, node, state, desired);
	assert_int_equal(task_cache_put(tc, id, r, rev), 0);
	json_decref(r); /* the cache keeps its own reference */
}

static size_t count(struct task_entry *e, int list)
{
	size_t n = 0;
	for (; e; n++)
		e = list == 0 ? e->lnext : list == 1 ? e->rnext : list == 2 ? e->onext : e->snext;
	return n;
}

static void test_parsed_once_and_indexed(void **state)
{
	struct task_cache *tc = task_cache_new("me");
	assert_non_null(tc);
	put(tc, "t1", "s1", "me", "running", "running", 10);
	put(tc, "t2", "s1", "", "pending", "running", 11);
	put(tc, "t3", "s2", "other", "starting", "ready", 12);
	put(tc, "t4", "s1", "me", "complete", "shutdown", 13);
	assert_int_equal(task_cache_size(tc), 4);

	struct task_entry *e = task_cache_get(tc, "t1");
	assert_non_null(e);
	assert_true(e->orch_ok);
	assert_string_equal(e->orch.id, "t1");
	assert_int_equal(e->rev, 10);
	assert_true(e->local && e->running && e->holds);
	assert_int_equal(e->reservations.nano_cpus, 500000000);
	e = task_cache_get(tc, "t3");
	assert_int_equal(e->desired, TASK_PREPARING); /* "ready" */
	assert_false(e->local);
	assert_true(e->holds);
	e = task_cache_get(tc, "t2");
	assert_false(e->holds); /* not placed */
	e = task_cache_get(tc, "t4");
	assert_false(e->holds); /* ended */
	assert_int_equal(e->desired, TASK_SHUTDOWN);

	assert_int_equal(count(task_cache_local(tc), 0), 2);
	assert_int_equal(count(task_cache_running(tc), 1), 1);
	assert_int_equal(task_cache_running_count(tc), 1);
	assert_int_equal(count(task_cache_holding(tc), 2), 2);
	struct task_svc *s1 = task_cache_svc(tc, "s1", false);
	assert_non_null(s1);
	assert_int_equal(s1->n, 3);
	assert_int_equal(count(s1->tasks, 3), 3);
	/* oldest write first */
	assert_string_equal(s1->tasks->id, "t1");
	assert_string_equal(s1->tail->id, "t4");
	assert_null(task_cache_svc(tc, "s9", false));
	task_cache_free(tc);
}

static void test_new_version_replaces(void **state)
{
	struct task_cache *tc = task_cache_new("me");
	put(tc, "t1", "s1", "me", "running", "running", 10);
	put(tc, "t2", "s1", "me", "assigned", "running", 11);
	struct task_svc *s1 = task_cache_svc(tc, "s1", false);
	s1->dirty = false;

	/* t1 stops: out of the running and holding lists, to the service's tail */
	put(tc, "t1", "s1", "me", "shutdown", "shutdown", 20);
	assert_int_equal(task_cache_size(tc), 2);
	assert_true(s1->dirty);
	assert_int_equal(s1->n, 2);
	assert_string_equal(s1->tasks->id, "t2");
	assert_string_equal(s1->tail->id, "t1");
	assert_int_equal(task_cache_running_count(tc), 0);
	assert_null(task_cache_running(tc));
	assert_int_equal(count(task_cache_holding(tc), 2), 1);
	assert_int_equal(task_cache_get(tc, "t1")->rev, 20);
	assert_int_equal(task_cache_get(tc, "t1")->orch.state, TASK_SHUTDOWN);

	/* deleted: gone from every list; the service entry stays while named */
	task_cache_del(tc, "t1");
	task_cache_del(tc, "t2");
	assert_int_equal(task_cache_size(tc), 0);
	assert_null(task_cache_get(tc, "t1"));
	assert_null(task_cache_local(tc));
	assert_null(task_cache_holding(tc));
	assert_int_equal(s1->n, 0);
	assert_null(s1->tasks);
	assert_null(s1->tail);
	task_cache_svc_drop(tc, s1);
	assert_null(task_cache_svc(tc, "s1", false));
	task_cache_free(tc);
}

/* Past the first buckets: every task still found, every list whole. */
static void test_many(void **state)
{
	struct task_cache *tc = task_cache_new("me");
	char id[32];
	for (int i = 0; i < 5000; i++) {
		snprintf(id, sizeof(id), "task%05d", i);
		put(tc, id, i % 2 ? "odd" : "even", i % 3 ? "me" : "", "running", "running", i + 1);
	}
	assert_int_equal(task_cache_size(tc), 5000);
	for (int i = 0; i < 5000; i += 7) {
		snprintf(id, sizeof(id), "task%05d", i);
		assert_non_null(task_cache_get(tc, id));
	}
	assert_int_equal(task_cache_svc(tc, "odd", false)->n, 2500);
	assert_int_equal(task_cache_running_count(tc), 5000);
	size_t local = count(task_cache_local(tc), 0);
	assert_int_equal(local, 5000 - 1667);
	assert_int_equal(count(task_cache_holding(tc), 2), local);
	size_t n = 0, b = 0;
	for (struct task_entry *e = task_cache_next(tc, &b, NULL); e;
	     e = task_cache_next(tc, &b, e))
		n++;
	assert_int_equal(n, 5000);
	task_cache_clear(tc);
	assert_int_equal(task_cache_size(tc), 0);
	assert_int_equal(task_cache_svc(tc, "odd", false)->n, 0);
	task_cache_free(tc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parsed_once_and_indexed),
		cmocka_unit_test(test_new_version_replaces),
		cmocka_unit_test(test_many),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
