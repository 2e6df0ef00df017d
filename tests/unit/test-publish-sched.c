// SPDX-License-Identifier: Apache-2.0
/* The scheduler's host-mode published port rule as the agent uses it: the
 * tasks already on a node are mirrored without their ports, and a second
 * task of a service publishing a host-mode port must still not land there. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "sched/scheduler.h"

static struct sched_cluster *one_node(void)
{
	struct sched_cluster *c = sched_cluster_new();
	assert_non_null(c);
	struct sched_node_desc d = {.id = "n1", .hostname = "n1", .os = "linux", .ready = true};
	assert_int_equal(sched_cluster_add_node(c, &d, NULL), 0);
	return c;
}

static void test_second_task_pending(void **state)
{
	struct sched_cluster *c = one_node();
	struct port_config host = {PORT_TCP, 80, 8080, PUBLISH_HOST};
	struct sched_task running = {.service_id = "web"};
	assert_int_equal(sched_cluster_add_task(c, 0, &running, NULL), 0);

	struct sched_request req = {.service_id = "web", .count = 1, .ports = &host, .n_ports = 1};
	struct sched_result res;
	assert_int_equal(sched_place(c, &req, &res, NULL), 0);
	assert_int_equal(res.placed, 0);
	assert_non_null(res.explanation);
	assert_non_null(strstr(res.explanation, "host port 8080/tcp in use on 1 node"));
	sched_result_done(&res);

	/* global mode asks node by node: the same reason */
	struct shoal_err err = {0};
	assert_int_equal(sched_place_on_node(c, &req, 0, &err), -ENOSPC);
	assert_non_null(strstr(err.msg, "host port 8080/tcp in use"));

	/* ingress ports, and host ports assigned per task, hold nothing */
	struct port_config ingress = {PORT_TCP, 80, 8080, PUBLISH_INGRESS};
	struct port_config any = {PORT_TCP, 80, 0, PUBLISH_HOST};
	req.ports = &ingress;
	assert_int_equal(sched_place(c, &req, &res, NULL), 0);
	assert_int_equal(res.placed, 1);
	sched_result_done(&res);
	req.ports = &any;
	assert_int_equal(sched_place(c, &req, &res, NULL), 0);
	assert_int_equal(res.placed, 1);
	sched_result_done(&res);
	sched_cluster_free(c);
}

static void test_one_per_node_in_a_batch(void **state)
{
	struct sched_cluster *c = one_node();
	struct port_config host = {PORT_UDP, 53, 5353, PUBLISH_HOST};
	struct sched_request req = {.service_id = "dns", .count = 2, .ports = &host, .n_ports = 1};
	struct sched_result res;
	assert_int_equal(sched_place(c, &req, &res, NULL), 0);
	assert_int_equal(res.placed, 1);
	assert_non_null(strstr(res.explanation, "host port 5353/udp in use on 1 node"));
	sched_result_done(&res);
	/* the task ends: its port is free again */
	struct sched_task t = {.service_id = "dns", .ports = &host, .n_ports = 1};
	assert_int_equal(sched_cluster_remove_task(c, 0, &t, NULL), 0);
	req.count = 1;
	assert_int_equal(sched_place(c, &req, &res, NULL), 0);
	assert_int_equal(res.placed, 1);
	sched_result_done(&res);
	sched_cluster_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_second_task_pending),
		cmocka_unit_test(test_one_per_node_in_a_batch),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
