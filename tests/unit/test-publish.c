// SPDX-License-Identifier: Apache-2.0
/* The pure part of publish_sync(): desired data plane state from services,
 * tasks and containers, and the writes that reach it from what is
 * programmed. agent/publish.c is linked whole; the agent functions it calls
 * outside that part are stubbed here. */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agent/agent.h"
#include "agent/cluster.h"
#include "agent/container.h"
#include "agent/overlay-agent.h"
#include "agent/publish.h"
#include "lb/lb.h"

struct container *container_find(struct agent *a, const char *ref, struct shoal_err *err)
{
	return NULL;
}

struct container *container_get(struct agent *a, const char *id)
{
	return NULL;
}

int cluster_list(struct agent *a, const char *prefix, json_t **ret, struct shoal_err *err)
{
	*ret = json_array();
	return 0;
}

int cluster_get(struct agent *a, const char *key, json_t **ret, int64_t *ret_rev,
		struct shoal_err *err)
{
	return -ENOENT;
}

struct in_addr overlay_ep_addr(struct agent *a, const char *net_id, const char *ep_id)
{
	return (struct in_addr){0};
}

bool overlay_mesh_on(struct agent *a)
{
	return false;
}

const char *overlay_ingress_network(struct agent *a)
{
	return NULL;
}

int publish_alloc_reconcile(struct agent *a, struct shoal_err *err)
{
	return 0;
}

void publish_fwd_sync(struct agent *a, struct lb *lb, bool full)
{
}

void publish_fwd_free(struct agent *a)
{
}

int cluster_put(struct agent *a, const char *key, json_t *obj, int64_t expect_rev, int64_t *ret_rev,
		struct shoal_err *err)
{
	return -EIO;
}

/* A task's container address comes from its "Addr" in these tests; none:
 * the task runs on another node. Its address on an overlay network: "Ovl"
 * {net: addr}; none there: no endpoint record, or its node is not live. */
static struct in_addr addr_of(void *ctx, json_t *t, const char *net)
{
	struct in_addr in = {0};
	const char *s = net ? json_string_value(json_object_get(json_object_get(t, "Ovl"), net))
			    : json_string_value(json_object_get(t, "Addr"));
	if (s)
		assert_int_equal(inet_pton(AF_INET, s, &in), 1);
	return in;
}

static json_t *J(const char *text)
{
	json_error_t e;
	json_t *j = json_loads(text, 0, &e);
	if (!j)
		fail_msg("bad test JSON: %s: %s", e.text, text);
	return j;
}

static json_t *task(const char *sid, const char *addr, const char *state, const char *desired)
{
	json_t *t = json_pack("{s:s, s:s, s:{s:s, s:s}}", "ServiceID", sid, "DesiredState", desired,
			      "Status", "State", state, "Health", "none");
	if (addr)
		json_object_set_new(t, "Addr", json_string(addr));
	return t;
}

static json_t *service(const char *id, const char *vip, const char *ports)
{
	char buf[1024];
	snprintf(buf, sizeof(buf), "{\"ID\":\"%s\",\"Spec\":{\"EndpointSpec\":{\"Ports\":%s}}}", id,
		 ports);
	json_t *s = J(buf);
	if (vip)
		json_object_set_new(s, "VirtualIP", json_string(vip));
	return s;
}

static const char *want(json_t *desired, const char *key)
{
	return json_string_value(json_object_get(desired, key));
}

static json_t *desired_of(json_t *services, json_t *tasks, json_t *containers)
{
	json_t *d = publish_desired(services, tasks, containers, addr_of, NULL, true, NULL);
	assert_non_null(d);
	return d;
}

static void test_ingress_backends(void **state)
{
	json_t *svcs = json_pack("[o]", service("s1", NULL,
						"[{\"Protocol\":\"tcp\","
						"\"TargetPort\":80,"
						"\"PublishedPort\":8080}]"));
	json_t *tasks = json_pack("[o,o,o,o,o]", task("s1", "10.213.0.3", "running", "running"),
				  task("s1", "10.213.0.2", "running", "running"),
				  task("s1", "10.213.0.4", "running", "shutdown"),
				  task("s1", "10.213.0.5", "starting", "running"),
				  task("s2", "10.213.0.6", "running", "running"));
	json_t *d = desired_of(svcs, tasks, NULL);
	/* sorted; a stopping task drains (2); one not running yet and another
	 * service's are not backends */
	assert_string_equal(want(d, "tcp/8080"),
			    "10.213.0.2:80:1,10.213.0.3:80:1,10.213.0.4:80:2,");
	assert_int_equal(json_object_size(d), 1);
	json_decref(d);

	/* the order of tasks does not matter */
	json_t *rev = json_pack("[O,O,O]", json_array_get(tasks, 2), json_array_get(tasks, 1),
				json_array_get(tasks, 0));
	d = desired_of(svcs, rev, NULL);
	assert_string_equal(want(d, "tcp/8080"),
			    "10.213.0.2:80:1,10.213.0.3:80:1,10.213.0.4:80:2,");
	json_decref(d);

	/* an unhealthy task is no backend; with none the port stays, empty */
	json_t *sick = task("s1", "10.213.0.2", "running", "running");
	json_object_set_new(json_object_get(sick, "Status"), "Health", json_string("unhealthy"));
	json_t *one = json_pack("[o]", sick);
	d = desired_of(svcs, one, NULL);
	assert_string_equal(want(d, "tcp/8080"), "");
	json_decref(d);
	json_decref(one);
	json_decref(rev);
	json_decref(tasks);
	json_decref(svcs);
}

static void test_vip_and_udp(void **state)
{
	json_t *svcs = json_pack("[o]", service("s1", "10.214.0.7",
						"[{\"Protocol\":\"udp\",\"TargetPort\":53,"
						"\"PublishedPort\":5353}]"));
	json_t *tasks = json_pack("[o]", task("s1", "10.213.0.9", "running", "running"));
	json_t *d = desired_of(svcs, tasks, NULL);
	assert_string_equal(want(d, "udp/5353"), "10.213.0.9:53:1,");
	/* the VIP: both protocols, every port (backend port 0: the one asked) */
	assert_string_equal(want(d, "tcp/10.214.0.7/0"), "10.213.0.9:0:1,");
	assert_string_equal(want(d, "udp/10.214.0.7/0"), "10.213.0.9:0:1,");
	assert_int_equal(json_object_size(d), 3);
	struct lb_service_key k;
	assert_int_equal(publish_parse_key("udp/10.214.0.7/0", &k), 0);
	assert_int_equal(k.proto, IPPROTO_UDP);
	assert_int_equal(k.port, 0);
	assert_int_equal(k.addr, inet_addr("10.214.0.7"));
	assert_int_equal(publish_parse_key("tcp/8080", &k), 0);
	assert_int_equal(k.addr, 0);
	assert_int_equal(k.port, 8080);
	assert_int_equal(publish_parse_key("sctp/80", &k), -EINVAL);
	json_decref(d);
	json_decref(tasks);
	json_decref(svcs);
}

/* A service on an overlay network: its VIP's backends are its tasks'
 * addresses there wherever they run, by the same rules as local ones; a
 * bridge service's stay this node's tasks. */
static void test_vip_overlay(void **state)
{
	json_t *ovl = service("s1", "10.214.0.8", "[]");
	json_object_set_new(json_object_get(ovl, "Spec"), "TaskTemplate",
			    J("{\"Networks\":[{\"Target\":\"n1\",\"Aliases\":[\"w\"]}]}"));
	json_t *br = service("s2", "10.214.0.9", "[]");
	assert_string_equal(publish_service_network(ovl, NULL), "n1");
	assert_null(publish_service_network(br, "ing"));
	json_t *local = task("s1", "10.77.0.5", "running", "running");
	json_object_set_new(local, "Ovl", J("{\"n1\":\"10.77.0.5\"}"));
	json_t *remote = task("s1", NULL, "running", "running");
	json_object_set_new(remote, "Ovl", J("{\"n1\":\"10.77.0.6\"}"));
	json_t *stopping = task("s1", NULL, "running", "shutdown");
	json_object_set_new(stopping, "Ovl", J("{\"n1\":\"10.77.0.7\"}"));
	json_t *sick = task("s1", NULL, "running", "running");
	json_object_set_new(sick, "Ovl", J("{\"n1\":\"10.77.0.8\"}"));
	json_object_set_new(json_object_get(sick, "Status"), "Health", json_string("unhealthy"));
	json_t *dead = task("s1", NULL, "running", "running"); /* on a node not live */
	json_t *other = task("s1", NULL, "running", "running");
	json_object_set_new(other, "Ovl", J("{\"n2\":\"10.76.0.3\"}"));
	json_t *br_local = task("s2", "10.213.0.10", "running", "running");
	json_t *br_remote = task("s2", NULL, "running", "running");
	json_object_set_new(br_remote, "Ovl", J("{\"n1\":\"10.77.0.9\"}"));
	assert_true(publish_task_active(remote));
	assert_false(publish_task_active(stopping));
	assert_false(publish_task_active(sick));
	json_t *svcs = json_pack("[o,o]", ovl, br);
	json_t *tasks = json_pack("[o,o,o,o,o,o,o,o]", br_remote, sick, local, dead, other,
				  stopping, br_local, remote);
	json_t *d = desired_of(svcs, tasks, NULL);
	/* the stopping one drains (2); the unhealthy one, the one without an
	 * address on n1 and the one whose node is gone are not backends */
	assert_string_equal(want(d, "tcp/10.214.0.8/0"),
			    "10.77.0.5:0:1,10.77.0.6:0:1,10.77.0.7:0:2,");
	assert_string_equal(want(d, "udp/10.214.0.8/0"),
			    "10.77.0.5:0:1,10.77.0.6:0:1,10.77.0.7:0:2,");
	assert_string_equal(want(d, "tcp/10.214.0.9/0"), "10.213.0.10:0:1,");
	assert_int_equal(json_object_size(d), 4);
	json_decref(d);
	json_decref(tasks);
	json_decref(svcs);
}

/* The routing mesh: an ingress port of a service on an overlay network goes
 * to its tasks' addresses there on every node; without the mesh's return
 * path, to this node's tasks only; a host-mode port always to this node's. */
static void test_mesh_ports(void **state)
{
	json_t *ovl =
		service("s1", NULL,
			"[{\"TargetPort\":80,\"PublishedPort\":8090},"
			"{\"TargetPort\":81,\"PublishedPort\":9091,\"PublishMode\":\"host\"}]");
	json_object_set_new(json_object_get(ovl, "Spec"), "TaskTemplate",
			    J("{\"Networks\":[{\"Target\":\"n1\"}]}"));
	assert_true(publish_service_meshed(ovl));
	json_t *hostonly =
		service("s2", NULL,
			"[{\"TargetPort\":80,\"PublishedPort\":9092,\"PublishMode\":\"host\"}]");
	assert_false(publish_service_meshed(hostonly));
	json_decref(hostonly);
	json_t *local = task("s1", "10.77.0.5", "running", "running");
	json_object_set_new(local, "Ovl", J("{\"n1\":\"10.77.0.5\"}"));
	json_t *remote = task("s1", NULL, "running", "running");
	json_object_set_new(remote, "Ovl", J("{\"n1\":\"10.77.0.6\"}"));
	json_t *svcs = json_pack("[o]", ovl);
	json_t *tasks = json_pack("[o,o]", local, remote);
	json_t *d = publish_desired(svcs, tasks, NULL, addr_of, NULL, true, NULL);
	assert_string_equal(want(d, "tcp/8090"), "10.77.0.5:80:1,10.77.0.6:80:1,");
	assert_string_equal(want(d, "tcp/9091"), "10.77.0.5:81:1,");
	json_decref(d);
	d = publish_desired(svcs, tasks, NULL, addr_of, NULL, false, NULL);
	assert_string_equal(want(d, "tcp/8090"), "10.77.0.5:80:1,");
	json_decref(d);
	json_decref(tasks);
	json_decref(svcs);
}

/* The ingress network: a service without a network of its own that
 * publishes a port in ingress mode is on it (its port and its VIP go to its
 * tasks' addresses there on every node); one with a network stays on that,
 * one publishing in host mode only and any service when there is no ingress
 * network stay on the bridge. */
static void test_ingress_network(void **state)
{
	json_t *plain = service("s1", "10.214.0.4", "[{\"TargetPort\":80,\"PublishedPort\":8095}]");
	json_t *own = service("s2", NULL, "[{\"TargetPort\":80,\"PublishedPort\":8096}]");
	json_object_set_new(json_object_get(own, "Spec"), "TaskTemplate",
			    J("{\"Networks\":[{\"Target\":\"n1\"}]}"));
	json_t *hostonly =
		service("s3", NULL,
			"[{\"TargetPort\":80,\"PublishedPort\":9093,\"PublishMode\":\"host\"}]");
	assert_string_equal(publish_service_network(plain, "ing"), "ing");
	assert_null(publish_service_network(plain, NULL));
	assert_string_equal(publish_service_network(own, "ing"), "n1");
	assert_null(publish_service_network(hostonly, "ing"));
	json_decref(own);
	json_decref(hostonly);

	json_t *local = task("s1", "10.0.0.5", "running", "running");
	json_object_set_new(local, "Ovl", J("{\"ing\":\"10.0.0.5\"}"));
	json_t *remote = task("s1", NULL, "running", "running");
	json_object_set_new(remote, "Ovl", J("{\"ing\":\"10.0.0.6\"}"));
	json_t *svcs = json_pack("[o]", plain);
	json_t *tasks = json_pack("[o,o]", local, remote);
	json_t *d = publish_desired(svcs, tasks, NULL, addr_of, NULL, true, "ing");
	assert_string_equal(want(d, "tcp/8095"), "10.0.0.5:80:1,10.0.0.6:80:1,");
	assert_string_equal(want(d, "tcp/10.214.0.4/0"), "10.0.0.5:0:1,10.0.0.6:0:1,");
	json_decref(d);
	/* no ingress network: this node's tasks */
	d = publish_desired(svcs, tasks, NULL, addr_of, NULL, true, NULL);
	assert_string_equal(want(d, "tcp/8095"), "10.0.0.5:80:1,");
	json_decref(d);
	json_decref(tasks);
	json_decref(svcs);
}

static void test_host_mode(void **state)
{
	json_t *svcs = json_pack(
		"[o,o]",
		service("h1", NULL,
			"[{\"TargetPort\":80,\"PublishedPort\":9090,\"PublishMode\":\"host\"}]"),
		service("h2", NULL, "[{\"TargetPort\":80,\"PublishMode\":\"host\"}]"));
	/* no task running here: nothing at all, unlike ingress */
	json_t *none = json_pack("[o,o]", task("h1", NULL, "running", "running"),
				 task("h1", "10.213.0.2", "preparing", "running"));
	json_t *d = desired_of(svcs, none, NULL);
	assert_int_equal(json_object_size(d), 0);
	json_decref(d);
	json_decref(none);

	/* a local task: the port goes to it alone (the remote one is not here) */
	json_t *tasks = json_pack("[o,o]", task("h1", "10.213.0.2", "running", "running"),
				  task("h1", NULL, "running", "running"));
	d = desired_of(svcs, tasks, NULL);
	assert_string_equal(want(d, "tcp/9090"), "10.213.0.2:80:1,");
	assert_int_equal(json_object_size(d), 1);
	json_decref(d);

	/* no PublishedPort: each task on the port in its PortStatus */
	json_t *a = task("h2", "10.213.0.3", "running", "running");
	json_t *b = task("h2", "10.213.0.4", "running", "running");
	json_t *c = task("h2", "10.213.0.5", "running", "running"); /* not assigned yet */
	json_object_set_new(json_object_get(a, "Status"), "PortStatus",
			    J("{\"Ports\":[{\"Protocol\":\"tcp\",\"TargetPort\":80,"
			      "\"PublishedPort\":30001,\"PublishMode\":\"host\"}]}"));
	json_object_set_new(json_object_get(b, "Status"), "PortStatus",
			    J("{\"Ports\":[{\"Protocol\":\"tcp\",\"TargetPort\":80,"
			      "\"PublishedPort\":30002,\"PublishMode\":\"host\"}]}"));
	assert_int_equal(publish_task_host_port(a, IPPROTO_TCP, 80), 30001);
	assert_int_equal(publish_task_host_port(a, IPPROTO_UDP, 80), 0);
	json_t *per = json_pack("[o,o,o]", a, b, c);
	d = desired_of(svcs, per, NULL);
	assert_string_equal(want(d, "tcp/30001"), "10.213.0.3:80:1,");
	assert_string_equal(want(d, "tcp/30002"), "10.213.0.4:80:1,");
	assert_int_equal(json_object_size(d), 2);
	json_decref(d);
	json_decref(per);
	json_decref(tasks);
	json_decref(svcs);
}

static void test_containers(void **state)
{
	json_t *cs = J("[{\"Addr\":\"10.213.0.8\",\"PortBindings\":{\"80/tcp\":[{\"HostPort\":"
		       "\"8081\"}],\"53/udp\":[{\"HostPort\":\"5300\"}]}},"
		       "{\"Addr\":\"\",\"PortBindings\":{\"80/tcp\":[{\"HostPort\":\"8082\"}]}}]");
	json_t *d = desired_of(NULL, NULL, cs);
	assert_string_equal(want(d, "tcp/8081"), "10.213.0.8:80:1,");
	assert_string_equal(want(d, "udp/5300"), "10.213.0.8:53:1,");
	/* a stopped container keeps its port, without backends */
	assert_string_equal(want(d, "tcp/8082"), "");
	json_decref(d);
	json_decref(cs);
}

static void test_plan(void **state)
{
	json_t *prog = json_object();
	json_t *svcs = json_pack("[o]", service("s1", NULL,
						"[{\"TargetPort\":80,"
						"\"PublishedPort\":8080}]"));
	json_t *tasks = json_pack("[o]", task("s1", "10.213.0.2", "running", "running"));
	json_t *d = desired_of(svcs, tasks, NULL);

	/* a new key: one upsert */
	json_t *plan = publish_plan(d, prog);
	json_t *up = json_object_get(plan, "Upsert");
	assert_int_equal(json_object_size(up), 1);
	assert_string_equal(want(up, "tcp/8080"), "10.213.0.2:80:1,");
	assert_int_equal(json_array_size(json_object_get(plan, "Delete")), 0);
	json_object_update(prog, up);
	json_decref(plan);

	/* unchanged: nothing */
	json_decref(d);
	d = desired_of(svcs, tasks, NULL);
	plan = publish_plan(d, prog);
	assert_int_equal(json_object_size(json_object_get(plan, "Upsert")), 0);
	assert_int_equal(json_array_size(json_object_get(plan, "Delete")), 0);
	json_decref(plan);

	/* a backend added, and the first one draining: one upsert of the key */
	json_array_append_new(tasks, task("s1", "10.213.0.3", "running", "running"));
	json_object_set_new(json_array_get(tasks, 0), "DesiredState", json_string("shutdown"));
	json_decref(d);
	d = desired_of(svcs, tasks, NULL);
	plan = publish_plan(d, prog);
	up = json_object_get(plan, "Upsert");
	assert_int_equal(json_object_size(up), 1);
	assert_string_equal(want(up, "tcp/8080"), "10.213.0.2:80:2,10.213.0.3:80:1,");
	assert_int_equal(json_array_size(json_object_get(plan, "Delete")), 0);
	struct lb_backend_spec *bs = NULL;
	size_t n = 0;
	assert_int_equal(publish_parse_backends(want(up, "tcp/8080"), &bs, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(bs[0].addr, inet_addr("10.213.0.2"));
	assert_int_equal(bs[0].port, 80);
	assert_int_equal(bs[0].state, LB_BACKEND_DRAINING);
	assert_int_equal(bs[1].state, LB_BACKEND_ACTIVE);
	free(bs);
	json_object_update(prog, up);
	json_decref(plan);

	/* a second service appears: only its key is written */
	json_array_append_new(svcs, service("s2", "10.214.0.3", "[]"));
	json_decref(d);
	d = desired_of(svcs, tasks, NULL);
	plan = publish_plan(d, prog);
	up = json_object_get(plan, "Upsert");
	assert_int_equal(json_object_size(up), 2);
	assert_non_null(json_object_get(up, "tcp/10.214.0.3/0"));
	assert_non_null(json_object_get(up, "udp/10.214.0.3/0"));
	json_object_update(prog, up);
	json_decref(plan);

	/* the service goes: its key is deleted, nothing written */
	json_object_set_new(json_array_get(svcs, 0), "Removed", json_true());
	json_decref(d);
	d = desired_of(svcs, tasks, NULL);
	plan = publish_plan(d, prog);
	assert_int_equal(json_object_size(json_object_get(plan, "Upsert")), 0);
	json_t *del = json_object_get(plan, "Delete");
	assert_int_equal(json_array_size(del), 1);
	assert_string_equal(json_string_value(json_array_get(del, 0)), "tcp/8080");
	json_decref(plan);

	json_decref(d);
	json_decref(tasks);
	json_decref(svcs);
	json_decref(prog);
}

static void test_host_mode_plan(void **state)
{
	/* host mode: a port comes with the first local task and goes with the last */
	json_t *prog = json_object();
	json_t *svcs = json_pack("[o]", service("h", NULL,
						"[{\"TargetPort\":80,\"PublishedPort\":"
						"9091,\"PublishMode\":\"host\"}]"));
	json_t *tasks = json_pack("[o]", task("h", "10.213.0.2", "running", "running"));
	json_t *d = desired_of(svcs, tasks, NULL);
	json_t *plan = publish_plan(d, prog);
	assert_string_equal(want(json_object_get(plan, "Upsert"), "tcp/9091"), "10.213.0.2:80:1,");
	json_object_update(prog, json_object_get(plan, "Upsert"));
	json_decref(plan);
	json_decref(d);
	/* scaled to 0: the task stopped, the port is deleted */
	json_object_set_new(json_object_get(json_array_get(tasks, 0), "Status"), "State",
			    json_string("shutdown"));
	d = desired_of(svcs, tasks, NULL);
	plan = publish_plan(d, prog);
	assert_int_equal(json_object_size(json_object_get(plan, "Upsert")), 0);
	assert_int_equal(json_array_size(json_object_get(plan, "Delete")), 1);
	json_decref(plan);
	json_decref(d);
	json_decref(tasks);
	json_decref(svcs);
	json_decref(prog);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ingress_backends), cmocka_unit_test(test_vip_and_udp),
		cmocka_unit_test(test_vip_overlay),	 cmocka_unit_test(test_mesh_ports),
		cmocka_unit_test(test_ingress_network),	 cmocka_unit_test(test_host_mode),
		cmocka_unit_test(test_containers),	 cmocka_unit_test(test_plan),
		cmocka_unit_test(test_host_mode_plan),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
