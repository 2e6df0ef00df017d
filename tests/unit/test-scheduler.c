// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sched/scheduler.h"

/* a constraint as the parser makes it, without its text */
#define CONSTRAINT(k, o, v)                         \
	{                                           \
		.key = (k), .op = (o), .value = (v) \
	}

#define GIB (1024ll * 1024 * 1024)
#define CPU 1000000000ll

struct tnode {
	const char *id;
	const char *labels[4];
	enum node_availability avail;
	bool not_ready;
	int64_t cpus, mem;
	enum node_role role;
};

static int add(struct sched_cluster *c, const struct tnode *t)
{
	struct sched_node_desc d = {
		.id = t->id,
		.hostname = t->id,
		.role = t->role,
		.os = "linux",
		.arch = "x86_64",
		.labels = t->labels,
		.availability = t->avail,
		.ready = !t->not_ready,
		.total = {.nano_cpus = t->cpus ? t->cpus : 4 * CPU,
			  .memory_bytes = t->mem ? t->mem : 8 * GIB},
	};
	struct shoal_err err = {0};
	int r = sched_cluster_add_node(c, &d, &err);
	assert_true(r >= 0);
	return r;
}

static struct sched_cluster *cluster(const struct tnode *nodes, size_t n)
{
	struct sched_cluster *c = sched_cluster_new();
	assert_non_null(c);
	for (size_t i = 0; i < n; i++)
		add(c, &nodes[i]);
	return c;
}

static uint32_t svc_tasks(struct sched_cluster *c, const char *node, const char *svc)
{
	struct sched_node_usage u;
	int idx = sched_cluster_find_node(c, node);
	assert_true(idx >= 0);
	assert_int_equal(sched_cluster_node_usage(c, (uint32_t)idx, svc, &u), 0);
	return u.service_tasks;
}

static void place(struct sched_cluster *c, const struct sched_request *req,
		  struct sched_result *res)
{
	struct shoal_err err = {0};
	int r = sched_place(c, req, res, &err);
	if (r < 0)
		fail_msg("sched_place: %s", err.msg);
}

/* ---- filters, one at a time ---- */

static void test_filter_ready(void **state)
{
	const struct tnode nodes[] = {{.id = "a", .not_ready = true}, {.id = "b"}};
	struct sched_cluster *c = cluster(nodes, 2);
	struct sched_request req = {.service_id = "s", .count = 3};
	struct sched_result res;
	place(c, &req, &res);
	assert_int_equal(res.placed, 3);
	assert_int_equal(svc_tasks(c, "a", "s"), 0);
	assert_int_equal(svc_tasks(c, "b", "s"), 3);
	assert_int_equal(res.rejected[SCHED_FILTER_NOT_READY], 1);
	assert_null(res.explanation);
	sched_result_done(&res);

	/* the only ready node gone: nothing fits, and the explanation says why */
	struct sched_node_desc d = {.id = "b", .ready = false};
	assert_int_equal(sched_cluster_update_node(c, 1, &d, NULL), 0);
	place(c, &req, &res);
	assert_int_equal(res.placed, 0);
	assert_int_equal(res.nodes[0], -1);
	assert_string_equal(res.explanation, "no suitable node (2 nodes not ready)");
	sched_result_done(&res);
	sched_cluster_free(c);
}

static void test_filter_availability(void **state)
{
	const struct tnode nodes[] = {
		{.id = "a", .avail = NODE_PAUSE},
		{.id = "b", .avail = NODE_DRAIN},
		{.id = "c", .avail = NODE_DRAIN},
		{.id = "d"},
	};
	struct sched_cluster *c = cluster(nodes, 4);
	struct sched_request req = {.service_id = "s", .count = 4};
	struct sched_result res;
	place(c, &req, &res);
	assert_int_equal(res.placed, 4);
	assert_int_equal(svc_tasks(c, "d", "s"), 4);
	assert_int_equal(res.rejected[SCHED_FILTER_PAUSED], 1);
	assert_int_equal(res.rejected[SCHED_FILTER_DRAINING], 2);
	sched_result_done(&res);

	req.max_replicas = 4;
	req.count = 1;
	place(c, &req, &res);
	assert_int_equal(res.placed, 0);
	assert_string_equal(res.explanation, "no suitable node (2 nodes draining; max replicas per "
					     "node (4) reached on 1 node; 1 node paused)");
	sched_result_done(&res);
	sched_cluster_free(c);
}

static void test_filter_resources(void **state)
{
	const struct tnode nodes[] = {
		{.id = "small", .cpus = 1 * CPU, .mem = 1 * GIB},
		{.id = "lowmem", .cpus = 8 * CPU, .mem = 1 * GIB},
		{.id = "lowcpu", .cpus = 1 * CPU, .mem = 16 * GIB},
		{.id = "big", .cpus = 8 * CPU, .mem = 16 * GIB},
	};
	struct sched_cluster *c = cluster(nodes, 4);
	struct sched_request req = {
		.service_id = "s",
		.count = 5,
		.reservations = {.nano_cpus = 2 * CPU, .memory_bytes = 2 * GIB}};
	struct sched_result res;
	place(c, &req, &res);
	/* only "big" fits 2 CPU + 2 GiB, and only 4 times */
	assert_int_equal(res.eligible_nodes, 1);
	assert_int_equal(res.placed, 4);
	assert_int_equal(svc_tasks(c, "big", "s"), 4);
	for (int i = 0; i < 4; i++)
		assert_int_equal(res.nodes[i], sched_cluster_find_node(c, "big"));
	assert_int_equal(res.nodes[4], -1);
	/* small and lowcpu fail on CPU; big is full on CPU (4 x 2 of 8); lowmem on memory */
	assert_int_equal(res.rejected[SCHED_FILTER_CPU], 3);
	assert_int_equal(res.rejected[SCHED_FILTER_MEMORY], 1);
	assert_string_equal(res.explanation,
			    "no suitable node (insufficient CPU on 3 nodes; insufficient memory on "
			    "1 node)");
	sched_result_done(&res);

	struct sched_node_usage u;
	assert_int_equal(sched_cluster_node_usage(c, 3, "s", &u), 0);
	assert_int_equal(u.reserved.nano_cpus, 8 * CPU);
	assert_int_equal(u.reserved.memory_bytes, 8 * GIB);
	assert_int_equal(u.tasks, 4);

	/* no reservation: no resource check at all */
	struct sched_request free_req = {.service_id = "t", .count = 8};
	place(c, &free_req, &res);
	assert_int_equal(res.placed, 8);
	for (int i = 0; i < 4; i++)
		assert_int_equal(svc_tasks(c, nodes[i].id, "t"), 2);
	sched_result_done(&res);
	sched_cluster_free(c);
}

static int count_on(struct sched_cluster *c, const struct sched_request *req, const char *node)
{
	(void)req;
	return (int)svc_tasks(c, node, req->service_id);
}

static void test_filter_constraints(void **state)
{
	const struct tnode nodes[] = {
		{.id = "n1", .labels = {"zone=A", "Disk=ssd"}},
		{.id = "n2", .labels = {"zone=b"}, .role = NODE_MANAGER},
		{.id = "n3"},
	};
	struct sched_cluster *c = cluster(nodes, 3);
	struct sched_result res;
	struct {
		struct constraint k;
		const char *expect; /* nodes that match, as "n1n2" */
	} cases[] = {
		/* values compare case-insensitively, as SwarmKit's strings.EqualFold */
		{CONSTRAINT("node.labels.zone", CONSTRAINT_EQ, "a"), "n1"},
		{CONSTRAINT("NODE.LABELS.zone", CONSTRAINT_EQ, "B"), "n2"},
		/* a missing label is "": != matches it */
		{CONSTRAINT("node.labels.zone", CONSTRAINT_NE, "a"), "n2n3"},
		/* label names are case-sensitive */
		{CONSTRAINT("node.labels.disk", CONSTRAINT_EQ, "ssd"), ""},
		{CONSTRAINT("node.labels.Disk", CONSTRAINT_EQ, "SSD"), "n1"},
		{CONSTRAINT("node.role", CONSTRAINT_EQ, "manager"), "n2"},
		{CONSTRAINT("node.role", CONSTRAINT_NE, "Manager"), "n1n3"},
		{CONSTRAINT("node.hostname", CONSTRAINT_EQ, "N3"), "n3"},
		{CONSTRAINT("node.id", CONSTRAINT_NE, "n1"), "n2n3"},
		{CONSTRAINT("node.platform.os", CONSTRAINT_EQ, "Linux"), "n1n2n3"},
		{CONSTRAINT("node.platform.arch", CONSTRAINT_EQ, "aarch64"), ""},
		{CONSTRAINT("engine.labels.x", CONSTRAINT_NE, "y"), "n1n2n3"},
		{CONSTRAINT("node.labels.zone", CONSTRAINT_EQ, "never-seen"), ""},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char svc[16];
		snprintf(svc, sizeof(svc), "s%zu", i);
		struct sched_request req = {
			.service_id = svc,
			.count = 6,
			.constraints = &cases[i].k,
			.n_constraints = 1,
		};
		place(c, &req, &res);
		char got[16] = "";
		for (int n = 0; n < 3; n++)
			if (count_on(c, &req, nodes[n].id))
				strcat(got, nodes[n].id);
		if (strcmp(got, cases[i].expect) != 0)
			fail_msg("%s: got \"%s\", want \"%s\"", cases[i].k.key, got,
				 cases[i].expect);
		int matched = (int)strlen(cases[i].expect) / 2;
		assert_int_equal(res.placed, matched ? 6 : 0);
		assert_int_equal(res.rejected[SCHED_FILTER_CONSTRAINT], 3 - matched);
		sched_result_done(&res);
	}

	/* several constraints: all must hold; the first failing one is counted */
	struct constraint two[] = {CONSTRAINT("node.labels.zone", CONSTRAINT_NE, ""),
				   CONSTRAINT("node.role", CONSTRAINT_EQ, "manager")};
	struct sched_request req = {
		.service_id = "two", .count = 1, .constraints = two, .n_constraints = 2};
	place(c, &req, &res);
	assert_int_equal(res.nodes[0], sched_cluster_find_node(c, "n2"));
	sched_result_done(&res);
	two[1].value = "nobody";
	req.count = 1;
	place(c, &req, &res);
	assert_string_equal(res.explanation,
			    "no suitable node (constraint node.role==nobody not met on 2 nodes; "
			    "constraint node.labels.zone!= not met on 1 node)");
	sched_result_done(&res);

	/* an unknown key is the caller's error, not "no node" */
	struct constraint bad = CONSTRAINT("node.ip", CONSTRAINT_EQ, "10.0.0.1");
	struct sched_request breq = {
		.service_id = "bad", .count = 1, .constraints = &bad, .n_constraints = 1};
	struct shoal_err err = {0};
	assert_int_equal(sched_place(c, &breq, &res, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "node.ip"));
	sched_cluster_free(c);
}

static void test_explanation(void **state)
{
	const struct tnode nodes[] = {
		{.id = "m1", .labels = {"zone=a"}, .mem = 1 * GIB},
		{.id = "m2", .labels = {"zone=a"}, .mem = 1 * GIB},
		{.id = "z", .labels = {"zone=b"}},
		{.id = "d", .labels = {"zone=a"}, .avail = NODE_DRAIN},
	};
	struct sched_cluster *c = cluster(nodes, 4);
	struct constraint k = CONSTRAINT("node.labels.zone", CONSTRAINT_EQ, "a");
	struct sched_request req = {.service_id = "s",
				    .count = 2,
				    .reservations = {.memory_bytes = 2 * GIB},
				    .constraints = &k,
				    .n_constraints = 1};
	struct sched_result res;
	place(c, &req, &res);
	assert_int_equal(res.placed, 0);
	assert_int_equal(res.nodes[0], -1);
	assert_int_equal(res.nodes[1], -1);
	assert_string_equal(res.explanation,
			    "no suitable node (insufficient memory on 2 nodes; constraint "
			    "node.labels.zone==a not met on 1 node; 1 node draining)");
	sched_result_done(&res);

	struct sched_cluster *empty = sched_cluster_new();
	place(empty, &req, &res);
	assert_string_equal(res.explanation, "no suitable node (no nodes in the cluster)");
	sched_result_done(&res);
	sched_cluster_free(empty);
	sched_cluster_free(c);
}

static void test_max_replicas(void **state)
{
	const struct tnode nodes[] = {{.id = "a"}, {.id = "b"}, {.id = "c"}};
	struct sched_cluster *c = cluster(nodes, 3);
	struct sched_request req = {.service_id = "s", .count = 8, .max_replicas = 2};
	struct sched_result res;
	place(c, &req, &res);
	assert_int_equal(res.placed, 6);
	for (int i = 0; i < 3; i++)
		assert_int_equal(svc_tasks(c, nodes[i].id, "s"), 2);
	assert_int_equal(res.rejected[SCHED_FILTER_MAX_REPLICAS], 3);
	assert_string_equal(res.explanation,
			    "no suitable node (max replicas per node (2) reached on 3 nodes)");
	sched_result_done(&res);
	/* other services are not limited by it */
	struct sched_request other = {.service_id = "t", .count = 9, .max_replicas = 3};
	place(c, &other, &res);
	assert_int_equal(res.placed, 9);
	sched_result_done(&res);
	sched_cluster_free(c);
}

/* A node's own task limit (its containers, its network's addresses) bounds
 * every service's tasks there together; what does not fit stays unplaced with
 * the limit named, and a single placement says the same. */
static void test_node_task_limit(void **state)
{
	struct sched_cluster *c = sched_cluster_new();
	assert_non_null(c);
	const char *none[] = {NULL};
	struct sched_node_desc d = {.id = "a",
				    .hostname = "a",
				    .os = "linux",
				    .arch = "x86_64",
				    .labels = none,
				    .availability = NODE_ACTIVE,
				    .ready = true,
				    .total = {4 * CPU, 8 * GIB},
				    .max_tasks = 10};
	assert_int_equal(sched_cluster_add_node(c, &d, NULL), 0);
	struct sched_task held = {.service_id = "other"};
	for (int i = 0; i < 3; i++)
		assert_int_equal(sched_cluster_add_task(c, 0, &held, NULL), 0);
	struct sched_request req = {.service_id = "s", .count = 100};
	struct sched_result res;
	place(c, &req, &res);
	assert_int_equal(res.placed, 7);
	assert_int_equal(svc_tasks(c, "a", "s"), 7);
	assert_int_equal(res.rejected[SCHED_FILTER_NODE_TASKS], 1);
	assert_string_equal(res.explanation,
			    "no suitable node (the node's task limit (10 tasks at once: its "
			    "containers and network addresses) reached on 1 node)");
	sched_result_done(&res);
	struct shoal_err err = {0};
	struct sched_request one = {.service_id = "t", .count = 1};
	assert_int_equal(sched_place_on_node(c, &one, 0, &err), -ENOSPC);
	assert_string_equal(err.msg, "node a: its task limit (10 tasks at once: its containers "
				     "and network addresses) reached");
	/* a task that ends frees its place */
	assert_int_equal(sched_cluster_remove_task(c, 0, &held, NULL), 0);
	assert_int_equal(sched_place_on_node(c, &one, 0, &err), 0);
	/* 0: no limit of the node's own */
	d.max_tasks = 0;
	assert_int_equal(sched_cluster_update_node(c, 0, &d, NULL), 0);
	place(c, &req, &res);
	assert_int_equal(res.placed, 100);
	sched_result_done(&res);
	sched_cluster_free(c);
}

static void test_host_ports(void **state)
{
	const struct tnode nodes[] = {{.id = "a"}, {.id = "b"}, {.id = "c"}};
	struct sched_cluster *c = cluster(nodes, 3);
	struct port_config web[] = {
		{PORT_TCP, 80, 8080, PUBLISH_HOST},
		{PORT_TCP, 443, 0, PUBLISH_HOST},    /* no published port: occupies nothing */
		{PORT_UDP, 53, 53, PUBLISH_INGRESS}, /* ingress: not a node port */
	};
	struct sched_request req = {.service_id = "web", .count = 4, .ports = web, .n_ports = 3};
	struct sched_result res;
	place(c, &req, &res);
	assert_int_equal(res.placed, 3);
	for (int i = 0; i < 3; i++)
		assert_int_equal(svc_tasks(c, nodes[i].id, "web"), 1);
	assert_string_equal(res.explanation, "no suitable node (host port 8080/tcp in use on 3 "
					     "nodes)");
	sched_result_done(&res);

	/* another service wanting 8080/tcp conflicts; 8080/udp does not */
	struct port_config tcp = {PORT_TCP, 80, 8080, PUBLISH_HOST};
	struct port_config udp = {PORT_UDP, 80, 8080, PUBLISH_HOST};
	struct sched_request r2 = {.service_id = "other", .count = 1, .ports = &tcp, .n_ports = 1};
	place(c, &r2, &res);
	assert_int_equal(res.placed, 0);
	sched_result_done(&res);
	r2.ports = &udp;
	place(c, &r2, &res);
	assert_int_equal(res.placed, 1);
	sched_result_done(&res);

	/* the task on "b" ends: its port is free again */
	struct sched_task t = {.service_id = "web", .ports = web, .n_ports = 3};
	assert_int_equal(sched_cluster_remove_task(c, 1, &t, NULL), 0);
	r2.ports = &tcp;
	place(c, &r2, &res);
	assert_int_equal(res.placed, 1);
	assert_int_equal(res.nodes[0], 1);
	sched_result_done(&res);
	sched_cluster_free(c);
}

/* ---- spread ---- */

static void test_spread_one_pref(void **state)
{
	/* zones of 1, 2 and 4 nodes, and 2 nodes without the label */
	const struct tnode nodes[] = {
		{.id = "a1", .labels = {"zone=a"}},
		{.id = "b1", .labels = {"zone=b"}},
		{.id = "b2", .labels = {"zone=b"}},
		{.id = "c1", .labels = {"zone=c"}},
		{.id = "c2", .labels = {"zone=c"}},
		{.id = "c3", .labels = {"zone=c"}},
		{.id = "c4", .labels = {"zone=c"}},
		{.id = "x1"},
		{.id = "x2"},
	};
	struct sched_cluster *c = cluster(nodes, 9);
	struct placement_pref pref = {"node.labels.zone"};
	struct sched_request req = {.service_id = "s", .count = 12, .prefs = &pref, .n_prefs = 1};
	struct sched_result res;
	place(c, &req, &res);
	assert_int_equal(res.placed, 12);
	sched_result_done(&res);
	/* four branches (a, b, c, no label): 3 each */
	assert_int_equal(svc_tasks(c, "a1", "s"), 3);
	assert_int_equal(svc_tasks(c, "b1", "s") + svc_tasks(c, "b2", "s"), 3);
	assert_int_equal(svc_tasks(c, "x1", "s") + svc_tasks(c, "x2", "s"), 3);
	int cz = 0;
	for (int i = 3; i < 7; i++) {
		uint32_t n = svc_tasks(c, nodes[i].id, "s");
		assert_true(n <= 1);
		cz += (int)n;
	}
	assert_int_equal(cz, 3);
	/* within a branch: fewest of the service, then smallest id */
	assert_int_equal(svc_tasks(c, "b1", "s"), 2);
	assert_int_equal(svc_tasks(c, "c4", "s"), 0);

	/* 2 more: the remainder goes to the first branches in value order ("" < a < b) */
	req.count = 2;
	place(c, &req, &res);
	sched_result_done(&res);
	assert_int_equal(svc_tasks(c, "x1", "s") + svc_tasks(c, "x2", "s"), 4);
	assert_int_equal(svc_tasks(c, "a1", "s"), 4);

	/* existing tasks count: zone a already has 4, so new ones avoid it */
	req.count = 3;
	place(c, &req, &res);
	sched_result_done(&res);
	assert_int_equal(svc_tasks(c, "a1", "s"), 4);
	assert_int_equal(svc_tasks(c, "b1", "s") + svc_tasks(c, "b2", "s"), 4);
	sched_cluster_free(c);
}

static void test_spread_two_prefs(void **state)
{
	/* dc1: racks r1 (2 nodes), r2 (1 node); dc2: r1 (1 node), one node without a rack */
	const struct tnode nodes[] = {
		{.id = "n1", .labels = {"dc=dc1", "rack=r1"}},
		{.id = "n2", .labels = {"dc=dc1", "rack=r1"}},
		{.id = "n3", .labels = {"dc=dc1", "rack=r2"}},
		{.id = "n4", .labels = {"dc=dc2", "rack=r1"}},
		{.id = "n5", .labels = {"dc=dc2"}},
	};
	struct sched_cluster *c = cluster(nodes, 5);
	struct placement_pref prefs[] = {{"node.labels.dc"}, {"node.labels.rack"}};
	struct sched_request req = {.service_id = "s", .count = 8, .prefs = prefs, .n_prefs = 2};
	struct sched_result res;
	place(c, &req, &res);
	assert_int_equal(res.placed, 8);
	sched_result_done(&res);
	/* 4 per dc; in dc1 2 per rack; in dc2 2 per rack ("" and r1) */
	assert_int_equal(svc_tasks(c, "n1", "s"), 1);
	assert_int_equal(svc_tasks(c, "n2", "s"), 1);
	assert_int_equal(svc_tasks(c, "n3", "s"), 2);
	assert_int_equal(svc_tasks(c, "n4", "s"), 2);
	assert_int_equal(svc_tasks(c, "n5", "s"), 2);
	sched_cluster_free(c);
}

static void test_spread_full_branch(void **state)
{
	/* zone a can hold 2 tasks in all; the rest overflow to b evenly */
	const struct tnode nodes[] = {
		{.id = "a1", .labels = {"zone=a"}, .mem = 1 * GIB},
		{.id = "a2", .labels = {"zone=a"}, .mem = 1 * GIB},
		{.id = "b1", .labels = {"zone=b"}},
		{.id = "b2", .labels = {"zone=b"}},
	};
	struct sched_cluster *c = cluster(nodes, 4);
	struct placement_pref pref = {"node.labels.zone"};
	struct sched_request req = {.service_id = "s",
				    .count = 10,
				    .reservations = {.memory_bytes = GIB},
				    .prefs = &pref,
				    .n_prefs = 1};
	struct sched_result res;
	place(c, &req, &res);
	assert_int_equal(res.placed, 10);
	sched_result_done(&res);
	assert_int_equal(svc_tasks(c, "a1", "s"), 1);
	assert_int_equal(svc_tasks(c, "a2", "s"), 1);
	assert_int_equal(svc_tasks(c, "b1", "s"), 4);
	assert_int_equal(svc_tasks(c, "b2", "s"), 4);
	sched_cluster_free(c);
}

/* Builds the same mixed cluster: zones, racks, capacities, a drained node. */
static struct sched_cluster *mixed_cluster(int n, bool reverse)
{
	struct sched_cluster *c = sched_cluster_new();
	assert_non_null(c);
	for (int k = 0; k < n; k++) {
		int i = reverse ? n - 1 - k : k;
		char id[32], zone[32], rack[32];
		snprintf(id, sizeof(id), "node-%04d", i);
		snprintf(zone, sizeof(zone), "zone=z%d", i % 3);
		snprintf(rack, sizeof(rack), "rack=r%d", i % 7 % 2);
		struct tnode t = {.id = id,
				  .labels = {zone, i % 5 == 4 ? NULL : rack},
				  .avail = i % 11 == 10 ? NODE_DRAIN : NODE_ACTIVE,
				  .mem = (int64_t)(1 + i % 4) * GIB};
		add(c, &t);
	}
	return c;
}

static void batch_vs_single(const struct placement_pref *prefs, size_t n_prefs, uint32_t count)
{
	struct sched_request req = {.service_id = "s",
				    .count = count,
				    .reservations = {.memory_bytes = GIB / 2},
				    .prefs = prefs,
				    .n_prefs = n_prefs};
	struct sched_cluster *batch = mixed_cluster(40, false), *single = mixed_cluster(40, false);
	/* some existing load so that totals and counts differ from node to node */
	struct sched_request pre = {.service_id = "pre", .count = 13};
	struct sched_result res;
	place(batch, &pre, &res);
	sched_result_done(&res);
	place(single, &pre, &res);
	sched_result_done(&res);
	struct sched_request earlier = req;
	earlier.count = 11;
	place(batch, &earlier, &res);
	sched_result_done(&res);
	place(single, &earlier, &res);
	sched_result_done(&res);

	place(batch, &req, &res);
	uint32_t batch_placed = res.placed;
	sched_result_done(&res);
	uint32_t single_placed = 0;
	for (uint32_t i = 0; i < req.count; i++) {
		struct sched_request one = req;
		one.count = 1;
		place(single, &one, &res);
		single_placed += res.placed;
		sched_result_done(&res);
	}
	assert_int_equal(batch_placed, single_placed);
	for (int i = 0; i < 40; i++) {
		char id[32];
		snprintf(id, sizeof(id), "node-%04d", i);
		if (svc_tasks(batch, id, "s") != svc_tasks(single, id, "s"))
			fail_msg("%s: batch %u, one by one %u", id, svc_tasks(batch, id, "s"),
				 svc_tasks(single, id, "s"));
	}
	sched_cluster_free(batch);
	sched_cluster_free(single);
}

static void test_batch_equals_one_by_one(void **state)
{
	struct placement_pref prefs[] = {{"node.labels.zone"}, {"node.labels.rack"}};
	struct placement_pref hosts[] = {{"node.labels.zone"}, {"node.hostname"}};
	/* below and above the cluster's capacity (about 90 tasks of 512 MiB) */
	batch_vs_single(NULL, 0, 37);
	batch_vs_single(prefs, 1, 50);
	batch_vs_single(prefs, 2, 61);
	batch_vs_single(prefs, 2, 97);
	batch_vs_single(hosts, 2, 70);
	batch_vs_single(hosts + 1, 1, 200);
}

static void test_determinism(void **state)
{
	/* the same cluster built in the opposite order places on the same node ids */
	struct sched_cluster *a = mixed_cluster(30, false), *b = mixed_cluster(30, true);
	struct placement_pref pref = {"node.labels.zone"};
	struct sched_request req = {.service_id = "s", .count = 41, .prefs = &pref, .n_prefs = 1};
	struct sched_result ra, rb;
	place(a, &req, &ra);
	place(b, &req, &rb);
	assert_int_equal(ra.placed, rb.placed);
	for (uint32_t i = 0; i < ra.placed; i++)
		assert_string_equal(sched_cluster_node_id(a, (uint32_t)ra.nodes[i]),
				    sched_cluster_node_id(b, (uint32_t)rb.nodes[i]));
	sched_result_done(&ra);
	sched_result_done(&rb);
	sched_cluster_free(a);
	sched_cluster_free(b);
}

/* ---- accounting ---- */

static void test_accounting(void **state)
{
	const struct tnode nodes[] = {{.id = "a", .cpus = 2 * CPU}, {.id = "b", .cpus = 2 * CPU}};
	struct sched_cluster *c = cluster(nodes, 2);
	struct sched_task t = {.service_id = "old", .reservations = {.nano_cpus = CPU}};
	struct shoal_err err = {0};
	/* rebuilt state: two tasks of "old" on a */
	assert_int_equal(sched_cluster_add_task(c, 0, &t, &err), 0);
	assert_int_equal(sched_cluster_add_task(c, 0, &t, &err), 0);
	struct sched_node_usage u;
	sched_cluster_node_usage(c, 0, "old", &u);
	assert_int_equal(u.reserved.nano_cpus, 2 * CPU);
	assert_int_equal(u.tasks, 2);
	assert_int_equal(u.service_tasks, 2);

	struct sched_request req = {
		.service_id = "new", .count = 3, .reservations = {.nano_cpus = CPU}};
	struct sched_result res;
	place(c, &req, &res);
	assert_int_equal(res.placed, 2);
	assert_int_equal(svc_tasks(c, "b", "new"), 2);
	sched_result_done(&res);

	/* one "old" task ends: a has room for one */
	assert_int_equal(sched_cluster_remove_task(c, 0, &t, &err), 0);
	req.count = 1;
	place(c, &req, &res);
	assert_int_equal(res.placed, 1);
	assert_int_equal(res.nodes[0], 0);
	sched_result_done(&res);
	sched_cluster_node_usage(c, 0, "new", &u);
	assert_int_equal(u.reserved.nano_cpus, 2 * CPU);
	assert_int_equal(u.tasks, 2);
	assert_int_equal(u.service_tasks, 1);

	/* removing what is not there is an error */
	struct sched_task none = {.service_id = "nothing"};
	assert_int_equal(sched_cluster_remove_task(c, 1, &none, &err), -ENOENT);

	/* a dry run plans without recording */
	req.count = 5;
	req.service_id = "dry";
	req.reservations.nano_cpus = 0;
	req.dry_run = true;
	place(c, &req, &res);
	assert_int_equal(res.placed, 5);
	sched_result_done(&res);
	assert_int_equal(svc_tasks(c, "a", "dry") + svc_tasks(c, "b", "dry"), 0);

	/* a removed node takes its tasks with it */
	assert_int_equal(sched_cluster_remove_node(c, 1), 0);
	assert_int_equal(sched_cluster_find_node(c, "b"), -ENOENT);
	assert_null(sched_cluster_node_id(c, 1));
	req.dry_run = false;
	req.service_id = "after";
	place(c, &req, &res);
	for (uint32_t i = 0; i < res.placed; i++)
		assert_int_equal(res.nodes[i], 0);
	sched_result_done(&res);
	/* and its id can come back as a new node */
	int idx = add(c, &nodes[1]);
	assert_int_equal(idx, 2);
	assert_int_equal(svc_tasks(c, "b", "new"), 0);
	sched_cluster_free(c);
}

/* ---- global mode ---- */

static void test_global(void **state)
{
	const struct tnode nodes[] = {
		{.id = "a", .labels = {"gpu=yes"}},
		{.id = "b", .labels = {"gpu=yes"}, .mem = GIB},
		{.id = "c", .labels = {"gpu=yes"}, .avail = NODE_DRAIN},
		{.id = "d"},
		{.id = "e", .labels = {"gpu=yes"}},
	};
	struct sched_cluster *c = cluster(nodes, 5);
	struct constraint k = CONSTRAINT("node.labels.gpu", CONSTRAINT_EQ, "yes");
	struct sched_request req = {.service_id = "g",
				    .reservations = {.memory_bytes = 2 * GIB},
				    .constraints = &k,
				    .n_constraints = 1};
	struct shoal_err err = {0};
	assert_int_equal(sched_place_on_node(c, &req, 4, &err), 0);
	uint32_t *missing = NULL;
	size_t n = 0;
	assert_int_equal(sched_global_missing(c, &req, &missing, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_int_equal(missing[0], 0);
	assert_int_equal(missing[1], 1);
	assert_int_equal(sched_place_on_node(c, &req, missing[0], &err), 0);
	assert_int_equal(sched_place_on_node(c, &req, missing[1], &err), -ENOSPC);
	assert_string_equal(err.msg, "node b: insufficient memory");
	assert_int_equal(sched_place_on_node(c, &req, 3, &err), -ENOSPC);
	assert_string_equal(err.msg, "node d: constraint node.labels.gpu==yes not met");
	assert_int_equal(sched_place_on_node(c, &req, 2, &err), -ENOSPC);
	assert_string_equal(err.msg, "node c: draining");
	free(missing);
	assert_int_equal(sched_global_missing(c, &req, &missing, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(missing[0], 1);
	free(missing);
	sched_cluster_free(c);
}

/* ---- scale ---- */

static void test_10k_spread_exact(void **state)
{
	struct sched_cluster *c = sched_cluster_new();
	const int nn = 10000;
	for (int i = 0; i < nn; i++) {
		char id[32], zone[32];
		snprintf(id, sizeof(id), "n%05d", i);
		snprintf(zone, sizeof(zone), "zone=z%d", i % 10);
		struct tnode t = {.id = id,
				  .labels = {zone},
				  .avail = i % 50 == 7 ? NODE_DRAIN : NODE_ACTIVE,
				  .cpus = 64 * CPU,
				  .mem = 256 * GIB};
		add(c, &t);
	}
	struct constraint k = CONSTRAINT("node.labels.zone", CONSTRAINT_NE, "z3");
	struct placement_pref pref = {"node.labels.zone"};
	const uint32_t sizes[] = {1, 7, 250, 9001, 33333};
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		char svc[16];
		snprintf(svc, sizeof(svc), "svc%zu", s);
		struct sched_request req = {
			.service_id = svc,
			.count = sizes[s],
			.reservations = {.nano_cpus = CPU / 10, .memory_bytes = GIB / 4},
			.constraints = &k,
			.n_constraints = 1,
			.prefs = &pref,
			.n_prefs = 1};
		struct sched_result res;
		place(c, &req, &res);
		assert_int_equal(res.placed, sizes[s]);
		sched_result_done(&res);
		/* per zone and per node: max - min <= 1 over the eligible nodes */
		uint32_t zmin = UINT32_MAX, zmax = 0, nmin = UINT32_MAX, nmax = 0, ztot[10] = {0};
		for (int i = 0; i < nn; i++) {
			if (i % 10 == 3 || i % 50 == 7)
				continue;
			struct sched_node_usage u;
			sched_cluster_node_usage(c, (uint32_t)i, svc, &u);
			ztot[i % 10] += u.service_tasks;
			nmin = u.service_tasks < nmin ? u.service_tasks : nmin;
			nmax = u.service_tasks > nmax ? u.service_tasks : nmax;
		}
		for (int z = 0; z < 10; z++) {
			if (z == 3)
				continue;
			zmin = ztot[z] < zmin ? ztot[z] : zmin;
			zmax = ztot[z] > zmax ? ztot[z] : zmax;
		}
		assert_true(zmax - zmin <= 1);
		/* zones have different eligible node counts (drained ones), so per node
		 * exactness holds within a zone: check over the whole set loosely and
		 * within zone 0 strictly */
		uint32_t z0min = UINT32_MAX, z0max = 0;
		for (int i = 0; i < nn; i += 10) {
			if (i % 50 == 7)
				continue;
			struct sched_node_usage u;
			sched_cluster_node_usage(c, (uint32_t)i, svc, &u);
			z0min = u.service_tasks < z0min ? u.service_tasks : z0min;
			z0max = u.service_tasks > z0max ? u.service_tasks : z0max;
		}
		assert_true(z0max - z0min <= 1);
		assert_true(nmax - nmin <= 2);
		struct sched_node_usage u;
		sched_cluster_node_usage(c, 3, svc, &u);
		assert_int_equal(u.service_tasks, 0);
	}
	sched_cluster_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_filter_ready),
		cmocka_unit_test(test_filter_availability),
		cmocka_unit_test(test_filter_resources),
		cmocka_unit_test(test_filter_constraints),
		cmocka_unit_test(test_explanation),
		cmocka_unit_test(test_max_replicas),
		cmocka_unit_test(test_node_task_limit),
		cmocka_unit_test(test_host_ports),
		cmocka_unit_test(test_spread_one_pref),
		cmocka_unit_test(test_spread_two_prefs),
		cmocka_unit_test(test_spread_full_branch),
		cmocka_unit_test(test_batch_equals_one_by_one),
		cmocka_unit_test(test_determinism),
		cmocka_unit_test(test_accounting),
		cmocka_unit_test(test_global),
		cmocka_unit_test(test_10k_spread_exact),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
