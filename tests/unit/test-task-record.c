// SPDX-License-Identifier: Apache-2.0
/* A node's report applied to a stored task record: forward moves only,
 * errors ending the task in the state its progress calls for, the Docker
 * fields kept in step with the orchestrator's record. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "sched/task-record.h"

#define NOW 1700000000000000000LL

static json_t *rec_in(enum task_state st)
{
	struct orch_task t = {0};
	snprintf(t.id, sizeof(t.id), "t1");
	snprintf(t.service_id, sizeof(t.service_id), "s1");
	snprintf(t.node_id, sizeof(t.node_id), "n1");
	t.slot = 1;
	t.spec_version = 1;
	t.desired_state = TASK_RUNNING;
	t.state = st;
	t.created_ns = NOW - 1000;
	t.state_ns[st] = NOW - 1000;
	json_t *r = json_pack("{s:o}", "Orch", orch_task_to_json(&t));
	assert_non_null(r);
	task_record_fill(r, &t);
	return r;
}

static const char *status(json_t *rec, const char *field)
{
	return json_string_value(json_object_get(json_object_get(rec, "Status"), field));
}

static enum task_state orch_state(json_t *rec)
{
	struct orch_task t = {0};
	assert_int_equal(orch_task_from_json(json_object_get(rec, "Orch"), &t, NULL), 0);
	enum task_state s = t.state;
	orch_task_clear(&t);
	return s;
}

static void test_forward_moves_written(void **state)
{
	json_t *r = rec_in(TASK_ASSIGNED);
	assert_string_equal(status(r, "State"), "assigned");
	assert_string_equal(json_string_value(json_object_get(r, "DesiredState")), "running");
	struct task_report rep = {.state = TASK_ACCEPTED, .message = "accepted", .health = -1};
	assert_int_equal(task_record_observe(r, &rep, NOW), 1);
	assert_int_equal(orch_state(r), TASK_ACCEPTED);
	assert_string_equal(status(r, "State"), "accepted");
	assert_string_equal(status(r, "Message"), "accepted");
	/* the same report again, and a late one going back: nothing to write */
	assert_int_equal(task_record_observe(r, &rep, NOW + 1), 0);
	rep.state = TASK_ASSIGNED;
	assert_int_equal(task_record_observe(r, &rep, NOW + 2), 0);
	assert_string_equal(status(r, "State"), "accepted");
	json_decref(r);
}

static void test_error_and_container(void **state)
{
	/* an error before starting rejects the task */
	json_t *r = rec_in(TASK_PREPARING);
	struct task_report rep = {.state = TASK_FAILED, .error = "pull: denied", .health = -1};
	assert_int_equal(task_record_observe(r, &rep, NOW), 1);
	assert_int_equal(orch_state(r), TASK_REJECTED);
	assert_string_equal(status(r, "State"), "rejected");
	assert_non_null(strstr(status(r, "Err"), "pull: denied"));
	json_decref(r);
	/* a container that exited before its task said it started passes
	 * through starting; its id and exit code are recorded */
	r = rec_in(TASK_PREPARING);
	rep = (struct task_report){
		.state = TASK_COMPLETE, .container_id = "c0ffee", .exit_code = 3, .health = -1};
	assert_int_equal(task_record_observe(r, &rep, NOW), 1);
	assert_int_equal(orch_state(r), TASK_COMPLETE);
	json_t *cs = json_object_get(json_object_get(r, "Status"), "ContainerStatus");
	assert_string_equal(json_string_value(json_object_get(cs, "ContainerID")), "c0ffee");
	assert_int_equal(json_integer_value(json_object_get(cs, "ExitCode")), 3);
	json_decref(r);
}

static void test_health_alone_and_bad_record(void **state)
{
	json_t *r = rec_in(TASK_RUNNING);
	struct task_report rep = {.state = TASK_RUNNING, .health = TASK_HEALTH_UNHEALTHY};
	assert_int_equal(task_record_observe(r, &rep, NOW), 1);
	assert_string_equal(status(r, "Health"), task_health_name(TASK_HEALTH_UNHEALTHY));
	assert_int_equal(task_record_observe(r, &rep, NOW), 0);
	json_decref(r);
	json_t *bad = json_pack("{s:s}", "Orch", "nope");
	assert_int_equal(task_record_observe(bad, &rep, NOW), -EBADMSG);
	json_decref(bad);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_forward_moves_written),
		cmocka_unit_test(test_error_and_container),
		cmocka_unit_test(test_health_alone_and_bad_record),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
