/* SPDX-License-Identifier: Apache-2.0 */
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

#include "sched/spec.h"

#define MIN_TASK "\"TaskTemplate\":{\"ContainerSpec\":{\"Image\":\"busybox\"}}"

static json_t *load(const char *text)
{
	json_error_t je;
	json_t *j = json_loads(text, JSON_DECODE_ANY, &je);
	if (!j)
		fail_msg("test JSON does not parse: %s: %s", je.text, text);
	return j;
}

static int parse(const char *text, struct service_spec **ret, struct spec_errors *errs)
{
	json_t *j = load(text);
	int r = service_spec_from_json(j, ret, errs);
	json_decref(j);
	return r;
}

static struct service_spec *parse_ok(const char *text)
{
	struct spec_errors e;
	struct service_spec *s = NULL;
	int r = parse(text, &s, &e);
	if (r < 0)
		fail_msg("spec rejected (%d): %s: %s", r, e.n ? e.msg[0] : "", text);
	return s;
}

static void print_errors(const struct spec_errors *e)
{
	for (size_t i = 0; i < e->n; i++)
		fprintf(stderr, "  error: %s\n", e->msg[i]);
}

static bool has_error(const struct spec_errors *e, const char *prefix)
{
	for (size_t i = 0; i < e->n; i++) {
		if (strncmp(e->msg[i], prefix, strlen(prefix)) == 0)
			return true;
	}
	return false;
}

/* The spec is rejected with exactly one problem, starting with want. */
static void expect_error(const char *text, const char *want)
{
	struct spec_errors e;
	struct service_spec *s = NULL;
	int r = parse(text, &s, &e);
	if (r != -EINVAL || e.total != 1 || !has_error(&e, want)) {
		print_errors(&e);
		fail_msg("want one error \"%s\" (r=%d, %zu errors) for %s", want, r, e.total, text);
	}
	assert_null(s);
}

static void test_defaults(void **state)
{
	struct service_spec *s = parse_ok("{\"Name\":\"web\"," MIN_TASK
					  ",\"EndpointSpec\":{\"Ports\":[{\"TargetPort\":80}]}}");
	assert_string_equal(s->name, "web");
	assert_string_equal(s->task.container.image, "busybox");
	assert_int_equal(s->mode, SERVICE_REPLICATED);
	assert_int_equal(s->replicas, 1);
	assert_int_equal(s->task.restart.condition, RESTART_ANY);
	assert_int_equal(s->task.restart.delay_ns, 5000000000LL);
	assert_int_equal(s->task.restart.max_attempts, 0);
	assert_int_equal(s->task.restart.window_ns, 0);
	const struct update_config *cfgs[] = {&s->update, &s->rollback};
	for (size_t i = 0; i < 2; i++) {
		assert_int_equal(cfgs[i]->parallelism, 1);
		assert_int_equal(cfgs[i]->delay_ns, 0);
		assert_int_equal(cfgs[i]->failure_action, FAILURE_PAUSE);
		assert_int_equal(cfgs[i]->monitor_ns, 5000000000LL);
		assert_true(cfgs[i]->max_failure_ratio == 0);
		assert_int_equal(cfgs[i]->order, ORDER_STOP_FIRST);
	}
	assert_int_equal(s->task.container.stop_grace_period_ns, 10000000000LL);
	assert_null(s->task.container.healthcheck);
	assert_false(s->task.container.has_init);
	assert_int_equal(s->endpoint_mode, ENDPOINT_VIP);
	assert_int_equal(s->n_ports, 1);
	assert_int_equal(s->ports[0].protocol, PORT_TCP);
	assert_int_equal(s->ports[0].mode, PUBLISH_INGRESS);
	assert_int_equal(s->ports[0].target_port, 80);
	assert_int_equal(s->ports[0].published_port, 0);
	assert_null(s->port_names[0]);

	/* The defaults show in the JSON, as `service inspect` does. */
	json_t *j = service_spec_to_json(s);
	assert_non_null(j);
	json_t *rp = json_object_get(json_object_get(j, "TaskTemplate"), "RestartPolicy");
	assert_string_equal(json_string_value(json_object_get(rp, "Condition")), "any");
	assert_int_equal(json_integer_value(json_object_get(rp, "Delay")), 5000000000LL);
	json_t *u = json_object_get(j, "UpdateConfig");
	assert_int_equal(json_integer_value(json_object_get(u, "Parallelism")), 1);
	assert_string_equal(json_string_value(json_object_get(u, "FailureAction")), "pause");
	assert_string_equal(json_string_value(json_object_get(u, "Order")), "stop-first");
	assert_int_equal(json_integer_value(json_object_get(u, "Monitor")), 5000000000LL);
	json_t *rb = json_object_get(j, "RollbackConfig");
	assert_true(json_equal(u, rb));
	assert_int_equal(
		json_integer_value(json_object_get(
			json_object_get(json_object_get(j, "Mode"), "Replicated"), "Replicas")),
		1);
	json_t *ep = json_object_get(j, "EndpointSpec");
	assert_string_equal(json_string_value(json_object_get(ep, "Mode")), "vip");
	json_t *p0 = json_array_get(json_object_get(ep, "Ports"), 0);
	assert_string_equal(json_string_value(json_object_get(p0, "Protocol")), "tcp");
	assert_string_equal(json_string_value(json_object_get(p0, "PublishMode")), "ingress");
	json_t *cs = json_object_get(json_object_get(j, "TaskTemplate"), "ContainerSpec");
	assert_int_equal(json_integer_value(json_object_get(cs, "StopGracePeriod")), 10000000000LL);
	assert_null(json_object_get(cs, "Healthcheck"));
	json_decref(j);
	service_spec_free(s);

	/* Global mode, and an explicit Replicated without Replicas. */
	s = parse_ok("{\"Name\":\"g\",\"Mode\":{\"Global\":{}}," MIN_TASK "}");
	assert_int_equal(s->mode, SERVICE_GLOBAL);
	service_spec_free(s);
	s = parse_ok("{\"Name\":\"r\",\"Mode\":{\"Replicated\":{}}," MIN_TASK "}");
	assert_int_equal(s->mode, SERVICE_REPLICATED);
	assert_int_equal(s->replicas, 1);
	service_spec_free(s);
	s = parse_ok("{\"Name\":\"r0\",\"Mode\":{\"Replicated\":{\"Replicas\":0}}," MIN_TASK "}");
	assert_int_equal(s->replicas, 0);
	service_spec_free(s);
	/* An explicit healthcheck is kept, an empty one too (it inherits the image's). */
	s = parse_ok("{\"Name\":\"h\",\"TaskTemplate\":{\"ContainerSpec\":{\"Image\":\"b\","
		     "\"Healthcheck\":{}}}}");
	assert_non_null(s->task.container.healthcheck);
	assert_null(s->task.container.healthcheck->test);
	service_spec_free(s);
}

static void test_unknown_fields_ignored(void **state)
{
	struct service_spec *s = parse_ok(
		"{\"Name\":\"web\",\"Foo\":1,\"Networks\":[],\"TaskTemplate\":{"
		"\"ContainerSpec\":{\"Image\":\"busybox\",\"Privileges\":{},"
		"\"TTY\":true},\"Runtime\":\"container\",\"LogDriver\":null},"
		"\"UpdateConfig\":null,\"Mode\":{\"Replicated\":{\"Replicas\":3,\"X\":1}}}");
	assert_int_equal(s->replicas, 3);
	service_spec_free(s);
}

#define T(inner) \
	"{\"Name\":\"web\",\"TaskTemplate\":{\"ContainerSpec\":{\"Image\":\"b\"}," inner "}}"
#define C(inner) \
	"{\"Name\":\"web\",\"TaskTemplate\":{\"ContainerSpec\":{\"Image\":\"b\"," inner "}}}"
#define S(inner) "{\"Name\":\"web\"," MIN_TASK "," inner "}"

/* Mounts are kept as given (the agent checks what a node can mount), shown
 * by inspect, passed to each task's container and part of the task's identity. */
static void test_mounts(void **state)
{
	(void)state;
	struct service_spec *s = parse_ok(C("\"Mounts\":[{\"Type\":\"volume\",\"Source\":\"data\","
					    "\"Target\":\"/data\",\"ReadOnly\":true}]"));
	assert_non_null(s->task.container.mounts);
	json_t *out = service_spec_to_json(s);
	json_t *m = json_object_get(
		json_object_get(json_object_get(out, "TaskTemplate"), "ContainerSpec"), "Mounts");
	assert_string_equal(json_string_value(json_object_get(json_array_get(m, 0), "Source")),
			    "data");
	json_t *c = service_task_container_config(s, "web.1.x");
	m = json_object_get(json_object_get(c, "HostConfig"), "Mounts");
	assert_int_equal(json_array_size(m), 1);
	assert_true(json_is_true(json_object_get(json_array_get(m, 0), "ReadOnly")));
	json_decref(c);
	struct service_spec *d = service_spec_dup(s);
	assert_true(service_spec_task_equal(s, d));
	json_object_set_new(json_array_get(d->task.container.mounts, 0), "ReadOnly", json_false());
	assert_false(service_spec_task_equal(s, d));
	json_decref(d->task.container.mounts);
	d->task.container.mounts = NULL;
	assert_false(service_spec_task_equal(s, d));
	service_spec_free(d);
	json_decref(out);
	service_spec_free(s);
}

static void test_each_error(void **state)
{
	static const struct {
		const char *json;
		const char *want;
	} cases[] = {
		{T("\"Resources\":{\"Limits\":{\"MemoryBytes\":\"lots\"}}"),
		 "TaskTemplate.Resources.Limits.MemoryBytes: expected a non-negative integer, got \"lots\""},
		{T("\"Resources\":{\"Limits\":{\"NanoCPUs\":-1}}"),
		 "TaskTemplate.Resources.Limits.NanoCPUs: expected a non-negative integer, got -1"},
		{T("\"Resources\":{\"Limits\":{\"MemoryBytes\":1024}}"),
		 "TaskTemplate.Resources.Limits.MemoryBytes: 1024 is below the minimum"},
		{T("\"Resources\":{\"Limits\":{\"MemoryBytes\":1073741824},"
		   "\"Reservations\":{\"MemoryBytes\":2147483648}}"),
		 "TaskTemplate.Resources.Reservations.MemoryBytes: 2147483648 exceeds "
		 "Limits.MemoryBytes (1073741824)"},
		{T("\"Resources\":{\"Limits\":{\"NanoCPUs\":500000000},"
		   "\"Reservations\":{\"NanoCPUs\":1000000000}}"),
		 "TaskTemplate.Resources.Reservations.NanoCPUs: 1000000000 exceeds Limits.NanoCPUs"},
		{T("\"Resources\":[]"), "TaskTemplate.Resources: expected an object, got []"},
		{S("\"Mode\":{\"Replicated\":{\"Replicas\":2},\"Global\":{}}"),
		 "Mode: Replicated and Global are exclusive"},
		{S("\"Mode\":{\"ReplicatedJob\":{}}"),
		 "Mode.ReplicatedJob: jobs are not supported"},
		{S("\"Mode\":{\"Replicated\":{\"Replicas\":-1}}"),
		 "Mode.Replicated.Replicas: expected a non-negative integer, got -1"},
		{S("\"Mode\":{\"Replicated\":{\"Replicas\":10001}}"),
		 "Mode.Replicated.Replicas: 10001 exceeds the limit of 10000"},
		{S("\"Mode\":{\"Replicated\":{\"Replicas\":1.5}}"),
		 "Mode.Replicated.Replicas: expected a non-negative integer, got 1.5"},
		{T("\"Placement\":{\"Constraints\":[\"node.role==worker\",\"node.labels.zone=a\"]}"),
		 "TaskTemplate.Placement.Constraints[1]: \"node.labels.zone=a\" is not KEY==VALUE or "
		 "KEY!=VALUE"},
		{T("\"Placement\":{\"Constraints\":[\"node.lables.zone==a\"]}"),
		 "TaskTemplate.Placement.Constraints[0]: \"node.lables.zone==a\": unknown key"},
		{T("\"Placement\":{\"Constraints\":[\"node.role==\"]}"),
		 "TaskTemplate.Placement.Constraints[0]: \"node.role==\": invalid value \"\""},
		{T("\"Placement\":{\"Constraints\":[7]}"),
		 "TaskTemplate.Placement.Constraints[0]: expected a string"},
		{T("\"Placement\":{\"MaxReplicas\":-2}"),
		 "TaskTemplate.Placement.MaxReplicas: expected a non-negative integer, got -2"},
		{T("\"Placement\":{\"Preferences\":[{\"Spread\":{\"SpreadDescriptor\":\"zone\"}}]}"),
		 "TaskTemplate.Placement.Preferences[0].Spread.SpreadDescriptor: \"spread=zone\": "
		 "unknown spread key"},
		{T("\"Placement\":{\"Preferences\":[{\"Spread\":{}}]}"),
		 "TaskTemplate.Placement.Preferences[0].Spread.SpreadDescriptor: required"},
		{"{\"Name\":\"g\",\"Mode\":{\"Global\":{}},\"TaskTemplate\":{\"ContainerSpec\":"
		 "{\"Image\":\"b\"},\"Placement\":{\"MaxReplicas\":2}}}",
		 "TaskTemplate.Placement.MaxReplicas: only valid in Replicated mode"},
		{"{\"Name\":\"-x\"," MIN_TASK "}", "Name: \"-x\" is invalid: "},
		{"{\"Name\":\"a_\"," MIN_TASK "}", "Name: \"a_\" is invalid: "},
		{"{\"Name\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"," MIN_TASK
		 "}",
		 "Name: \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...\" is "
		 "invalid: longer than 63 characters"},
		{"{" MIN_TASK "}", "Name: required"},
		{"{\"Name\":5," MIN_TASK "}", "Name: expected a string, got 5"},
		{"{\"Name\":\"web\"}", "TaskTemplate.ContainerSpec.Image: required"},
		{"{\"Name\":\"web\",\"TaskTemplate\":{\"ContainerSpec\":{\"Image\":\"\"}}}",
		 "TaskTemplate.ContainerSpec.Image: required"},
		{"{\"Name\":\"web\",\"TaskTemplate\":{\"ContainerSpec\":{\"Image\":\"a b\"}}}",
		 "TaskTemplate.ContainerSpec.Image: \"a b\" is not a valid image reference"},
		{"[1]", "expected a ServiceSpec object, got [1]"},
		{"{\"Name\":\"web\",\"TaskTemplate\":\"x\"}",
		 "TaskTemplate: expected an object, got \"x\""},
		{S("\"EndpointSpec\":{\"Ports\":[{\"TargetPort\":80,\"PublishedPort\":70000}]}"),
		 "EndpointSpec.Ports[0].PublishedPort: 70000 is out of range"},
		{S("\"EndpointSpec\":{\"Ports\":[{\"TargetPort\":65536}]}"),
		 "EndpointSpec.Ports[0].TargetPort: 65536 is out of range"},
		{S("\"EndpointSpec\":{\"Ports\":[{\"PublishedPort\":8080}]}"),
		 "EndpointSpec.Ports[0].TargetPort: required"},
		{S("\"EndpointSpec\":{\"Ports\":[{\"TargetPort\":80,\"PublishedPort\":8080},"
		   "{\"TargetPort\":81,\"PublishedPort\":8080,\"Protocol\":\"udp\"},"
		   "{\"TargetPort\":82,\"PublishedPort\":8080}]}"),
		 "EndpointSpec.Ports[2].PublishedPort: 8080/tcp is already published by Ports[0]"},
		{S("\"EndpointSpec\":{\"Ports\":[{\"TargetPort\":80,\"Protocol\":\"icmp\"}]}"),
		 "EndpointSpec.Ports[0].Protocol: unknown protocol \"icmp\": expected tcp, udp or sctp"},
		{S("\"EndpointSpec\":{\"Ports\":[{\"TargetPort\":80,\"PublishMode\":\"everywhere\"}]}"),
		 "EndpointSpec.Ports[0].PublishMode: unknown publish mode \"everywhere\": expected "
		 "ingress or host"},
		{S("\"EndpointSpec\":{\"Mode\":\"rr\"}"),
		 "EndpointSpec.Mode: unknown endpoint mode \"rr\": expected vip or dnsrr"},
		{S("\"EndpointSpec\":{\"Mode\":\"dnsrr\",\"Ports\":[{\"TargetPort\":80,"
		   "\"PublishedPort\":80}]}"),
		 "EndpointSpec.Ports[0]: a port published in ingress mode cannot be used with"},
		{C("\"Mounts\":{}"),
		 "TaskTemplate.ContainerSpec.Mounts: expected an array, got {}"},
		{C("\"Mounts\":[{\"Type\":\"bind\"}]"),
		 "TaskTemplate.ContainerSpec.Mounts[0].Target: required"},
		{C("\"Mounts\":[{\"Type\":\"volume\",\"Target\":\"/a\"},7]"),
		 "TaskTemplate.ContainerSpec.Mounts[1]: expected an object, got 7"},
		{T("\"RestartPolicy\":{\"Condition\":\"sometimes\"}"),
		 "TaskTemplate.RestartPolicy.Condition: unknown restart condition \"sometimes\": "
		 "expected none, on-failure or any"},
		{T("\"RestartPolicy\":{\"Delay\":\"5s\"}"),
		 "TaskTemplate.RestartPolicy.Delay: expected a duration in nanoseconds"},
		{S("\"UpdateConfig\":{\"Order\":\"random\"}"),
		 "UpdateConfig.Order: unknown update order \"random\": expected stop-first or "
		 "start-first"},
		{S("\"UpdateConfig\":{\"FailureAction\":\"explode\"}"),
		 "UpdateConfig.FailureAction: unknown failure action \"explode\""},
		{S("\"RollbackConfig\":{\"FailureAction\":\"rollback\"}"),
		 "RollbackConfig.FailureAction: \"rollback\" is not valid for a rollback"},
		{S("\"UpdateConfig\":{\"MaxFailureRatio\":1.5}"),
		 "UpdateConfig.MaxFailureRatio: 1.5 is outside [0, 1]"},
		{S("\"RollbackConfig\":{\"MaxFailureRatio\":-0.25}"),
		 "RollbackConfig.MaxFailureRatio: -0.25 is outside [0, 1]"},
		{S("\"UpdateConfig\":{\"MaxFailureRatio\":\"half\"}"),
		 "UpdateConfig.MaxFailureRatio: expected a number between 0 and 1, got \"half\""},
		{S("\"UpdateConfig\":{\"Parallelism\":-1}"),
		 "UpdateConfig.Parallelism: expected a non-negative integer, got -1"},
		{C("\"Healthcheck\":{\"Interval\":500000}"),
		 "TaskTemplate.ContainerSpec.Healthcheck.Interval: 500\xc2\xb5s is below the minimum "
		 "of 1ms"},
		{C("\"Healthcheck\":{\"Timeout\":999999}"),
		 "TaskTemplate.ContainerSpec.Healthcheck.Timeout: 999.999\xc2\xb5s is below the "
		 "minimum of 1ms"},
		{C("\"Healthcheck\":{\"StartPeriod\":1}"),
		 "TaskTemplate.ContainerSpec.Healthcheck.StartPeriod: 1ns is below the minimum"},
		{C("\"Healthcheck\":{\"Retries\":-1}"),
		 "TaskTemplate.ContainerSpec.Healthcheck.Retries: expected a non-negative integer"},
		{C("\"Healthcheck\":{\"Test\":[\"RUN\",\"x\"]}"),
		 "TaskTemplate.ContainerSpec.Healthcheck.Test[0]: expected NONE, CMD or CMD-SHELL, "
		 "got \"RUN\""},
		{C("\"Healthcheck\":{\"Test\":[\"CMD\"]}"),
		 "TaskTemplate.ContainerSpec.Healthcheck.Test: CMD needs a command"},
		{C("\"Healthcheck\":{\"Test\":[\"CMD-SHELL\",\"a\",\"b\"]}"),
		 "TaskTemplate.ContainerSpec.Healthcheck.Test: CMD-SHELL takes exactly one"},
		{C("\"Healthcheck\":{\"Test\":[\"NONE\",\"x\"]}"),
		 "TaskTemplate.ContainerSpec.Healthcheck.Test: NONE takes no arguments"},
		{C("\"ReadOnly\":\"yes\""),
		 "TaskTemplate.ContainerSpec.ReadOnly: expected true or false, got \"yes\""},
		{C("\"Init\":1"), "TaskTemplate.ContainerSpec.Init: expected true or false, got 1"},
		{C("\"Env\":\"A=1\""),
		 "TaskTemplate.ContainerSpec.Env: expected an array, got \"A=1\""},
		{C("\"Env\":[\"A=1\",2]"),
		 "TaskTemplate.ContainerSpec.Env[1]: expected a string, got 2"},
		{C("\"Env\":[\"A=1\",\"=x\"]"),
		 "TaskTemplate.ContainerSpec.Env[1]: \"=x\" is not KEY=VALUE or KEY"},
		{C("\"Labels\":{\"a\":1}"),
		 "TaskTemplate.ContainerSpec.Labels.a: expected a string, got 1"},
		{"{\"Name\":\"web\",\"Labels\":[]," MIN_TASK "}",
		 "Labels: expected an object, got []"},
		{C("\"Dir\":\"srv\""),
		 "TaskTemplate.ContainerSpec.Dir: \"srv\" is not an absolute path"},
		{C("\"StopSignal\":\"SIGFOO\""),
		 "TaskTemplate.ContainerSpec.StopSignal: unknown signal \"SIGFOO\""},
		{C("\"StopGracePeriod\":-1"),
		 "TaskTemplate.ContainerSpec.StopGracePeriod: expected a duration in nanoseconds"},
		{C("\"CapabilityAdd\":[\"NET_ADMIN\",\"CAP_FLY\"]"),
		 "TaskTemplate.ContainerSpec.CapabilityAdd[1]: unknown capability \"CAP_FLY\""},
		{T("\"Networks\":[{\"Target\":\"front\"},{\"Target\":\"front\"}]"),
		 "TaskTemplate.Networks[1].Target: network \"front\" is already attached by "
		 "Networks[0]"},
		{T("\"Networks\":[{\"Aliases\":[\"a\"]}]"),
		 "TaskTemplate.Networks[0].Target: required"},
		{T("\"ForceUpdate\":-3"),
		 "TaskTemplate.ForceUpdate: expected a non-negative integer, got -3"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		expect_error(cases[i].json, cases[i].want);
}

static void test_many_errors(void **state)
{
	struct spec_errors e;
	struct service_spec *s = NULL;
	const char *text = "{\"Name\":\"-x\",\"TaskTemplate\":{\"ContainerSpec\":{},"
			   "\"Resources\":{\"Limits\":{\"MemoryBytes\":\"lots\"}}},"
			   "\"Mode\":{\"Replicated\":{},\"Global\":{}}}";
	assert_int_equal(parse(text, &s, &e), -EINVAL);
	assert_null(s);
	assert_int_equal(e.total, 4);
	assert_int_equal(e.n, 4);
	assert_true(has_error(&e, "Name: \"-x\" is invalid"));
	assert_true(has_error(&e, "TaskTemplate.ContainerSpec.Image: required"));
	assert_true(has_error(&e, "TaskTemplate.Resources.Limits.MemoryBytes: expected"));
	assert_true(has_error(&e, "Mode: Replicated and Global are exclusive"));

	struct shoal_err err = {0};
	assert_int_equal(spec_errors_format(&e, &err), -EINVAL);
	assert_int_equal(err.code, EINVAL);
	assert_int_equal(err.status, 400);
	assert_true(strncmp(err.msg, "invalid service spec: 4 problems: Name: \"-x\" is invalid",
			    strlen("invalid service spec: 4 problems: Name: \"-x\" is invalid")) ==
		    0);
	assert_non_null(strstr(err.msg, "; TaskTemplate.ContainerSpec.Image: required; "));
	assert_non_null(strstr(err.msg, "; Mode: Replicated and Global are exclusive"));

	/* One problem reads without a count. */
	assert_int_equal(parse("{\"Name\":\"web\"}", &s, &e), -EINVAL);
	spec_errors_format(&e, &err);
	assert_string_equal(err.msg,
			    "invalid service spec: TaskTemplate.ContainerSpec.Image: required");

	/* More problems than are kept: all counted, the message says how many are left out. */
	char buf[8192];
	size_t len = (size_t)snprintf(buf, sizeof(buf),
				      "{\"Name\":\"web\",\"TaskTemplate\":{\"ContainerSpec\":"
				      "{\"Image\":\"b\",\"Env\":[");
	for (int i = 0; i < 50; i++)
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s%d", i ? "," : "", i);
	snprintf(buf + len, sizeof(buf) - len, "]}}}");
	assert_int_equal(parse(buf, &s, &e), -EINVAL);
	assert_int_equal(e.total, 50);
	assert_int_equal(e.n, SPEC_MAX_ERRORS);
	spec_errors_format(&e, &err);
	assert_true(strncmp(err.msg, "invalid service spec: 50 problems: ", 35) == 0);
	assert_non_null(strstr(err.msg, " more"));
	assert_true(strlen(err.msg) < sizeof(err.msg) - 1);
}

static void test_limits(void **state)
{
	char *buf = malloc(1 << 20);
	assert_non_null(buf);
	/* Env past SPEC_MAX_ENV */
	size_t len = (size_t)sprintf(buf, "{\"Name\":\"web\",\"TaskTemplate\":{\"ContainerSpec\":"
					  "{\"Image\":\"b\",\"Env\":[");
	for (int i = 0; i <= SPEC_MAX_ENV; i++)
		len += (size_t)sprintf(buf + len, "%s\"V%d=1\"", i ? "," : "", i);
	sprintf(buf + len, "]}}}");
	expect_error(buf, "TaskTemplate.ContainerSpec.Env: 1025 entries exceed the limit of 1024");

	/* A string past SPEC_MAX_STRING_LEN */
	len = (size_t)sprintf(buf, "{\"Name\":\"web\",\"TaskTemplate\":{\"ContainerSpec\":"
				   "{\"Image\":\"b\",\"User\":\"");
	memset(buf + len, 'u', SPEC_MAX_STRING_LEN + 1);
	len += SPEC_MAX_STRING_LEN + 1;
	sprintf(buf + len, "\"}}}");
	expect_error(buf, "TaskTemplate.ContainerSpec.User: 4097 characters exceed the limit");

	/* Ports past SPEC_MAX_PORTS */
	len = (size_t)sprintf(buf, "{\"Name\":\"web\"," MIN_TASK ",\"EndpointSpec\":{\"Ports\":[");
	for (int i = 0; i <= SPEC_MAX_PORTS; i++)
		len += (size_t)sprintf(buf + len, "%s{\"TargetPort\":%d}", i ? "," : "", i + 1);
	sprintf(buf + len, "]}}");
	expect_error(buf, "EndpointSpec.Ports: 129 entries exceed the limit of 128");

	/* Constraints past SPEC_MAX_CONSTRAINTS */
	len = (size_t)sprintf(buf, "{\"Name\":\"web\",\"TaskTemplate\":{\"ContainerSpec\":"
				   "{\"Image\":\"b\"},\"Placement\":{\"Constraints\":[");
	for (int i = 0; i <= SPEC_MAX_CONSTRAINTS; i++)
		len += (size_t)sprintf(buf + len, "%s\"node.labels.l%d==x\"", i ? "," : "", i);
	sprintf(buf + len, "]}}}");
	expect_error(buf, "TaskTemplate.Placement.Constraints: 65 entries exceed the limit of 64");

	/* Labels past SPEC_MAX_LABELS */
	len = (size_t)sprintf(buf, "{\"Name\":\"web\"," MIN_TASK ",\"Labels\":{");
	for (int i = 0; i <= SPEC_MAX_LABELS; i++)
		len += (size_t)sprintf(buf + len, "%s\"k%d\":\"v\"", i ? "," : "", i);
	sprintf(buf + len, "}}");
	expect_error(buf, "Labels: 257 labels exceed the limit of 256");
	free(buf);
}

static const char *full_spec =
	"{\"Name\":\"web\",\"Labels\":{\"tier\":\"front\",\"app\":\"shop\"},"
	"\"TaskTemplate\":{"
	"\"ContainerSpec\":{\"Image\":\"nginx:1.25\",\"Command\":[\"/bin/sh\",\"-c\"],"
	"\"Args\":[\"exec nginx\"],\"Env\":[\"A=1\",\"B=2\"],\"Dir\":\"/srv\",\"User\":\"www\","
	"\"Hostname\":\"web-host\",\"Labels\":{\"c\":\"3\"},"
	"\"Healthcheck\":{\"Test\":[\"CMD-SHELL\",\"wget -q localhost\"],\"Interval\":30000000000,"
	"\"Timeout\":5000000000,\"Retries\":3,\"StartPeriod\":1000000000},"
	"\"StopGracePeriod\":20000000000,\"StopSignal\":\"SIGQUIT\",\"ReadOnly\":true,"
	"\"CapabilityAdd\":[\"net_admin\",\"CAP_SYS_TIME\"],\"CapabilityDrop\":[\"ALL\"],"
	"\"Init\":true},"
	"\"Resources\":{\"Limits\":{\"NanoCPUs\":2000000000,\"MemoryBytes\":536870912,\"Pids\":100},"
	"\"Reservations\":{\"NanoCPUs\":500000000,\"MemoryBytes\":268435456}},"
	"\"RestartPolicy\":{\"Condition\":\"on-failure\",\"Delay\":1000000000,\"MaxAttempts\":3,"
	"\"Window\":60000000000},"
	"\"Placement\":{\"Constraints\":[\" node.role == worker\",\"Node.Labels.zone!=b\"],"
	"\"Preferences\":[{\"Spread\":{\"SpreadDescriptor\":\"node.labels.zone\"}}],"
	"\"MaxReplicas\":2},"
	"\"Networks\":[{\"Target\":\"front\",\"Aliases\":[\"www\"]},{\"Target\":\"back\"}],"
	"\"ForceUpdate\":4},"
	"\"Mode\":{\"Replicated\":{\"Replicas\":5}},"
	"\"UpdateConfig\":{\"Parallelism\":2,\"Delay\":10000000000,\"FailureAction\":\"rollback\","
	"\"Monitor\":30000000000,\"MaxFailureRatio\":0.25,\"Order\":\"start-first\"},"
	"\"RollbackConfig\":{\"Parallelism\":0,\"FailureAction\":\"continue\",\"Monitor\":0},"
	"\"EndpointSpec\":{\"Mode\":\"vip\",\"Ports\":[{\"Name\":\"http\",\"Protocol\":\"tcp\","
	"\"TargetPort\":80,\"PublishedPort\":8080,\"PublishMode\":\"ingress\"},"
	"{\"Protocol\":\"udp\",\"TargetPort\":53,\"PublishedPort\":53,\"PublishMode\":\"host\"}]}}";

static void test_full_spec(void **state)
{
	struct service_spec *s = parse_ok(full_spec);
	const struct container_spec *c = &s->task.container;
	assert_string_equal(c->cap_add[0], "CAP_NET_ADMIN");
	assert_string_equal(c->cap_add[1], "CAP_SYS_TIME");
	assert_string_equal(c->cap_drop[0], "ALL");
	assert_true(c->has_init && c->init);
	assert_int_equal(c->healthcheck->retries, 3);
	assert_int_equal(s->task.n_constraints, 2);
	assert_string_equal(s->task.constraints[0].key, "node.role");
	assert_int_equal(s->task.constraints[0].op, CONSTRAINT_EQ);
	assert_string_equal(s->task.constraints[0].value, "worker");
	assert_string_equal(s->task.constraints[1].key, "node.labels.zone");
	assert_int_equal(s->task.constraints[1].op, CONSTRAINT_NE);
	assert_string_equal(s->task.prefs[0].spread_key, "node.labels.zone");
	assert_int_equal(s->labels.n, 2);
	assert_string_equal(s->labels.v[0].key, "app"); /* sorted */
	assert_int_equal(s->task.limits.pids, 100);
	assert_int_equal(s->task.restart.condition, RESTART_ON_FAILURE);
	assert_int_equal(s->update.failure_action, FAILURE_ROLLBACK);
	assert_true(s->update.max_failure_ratio == 0.25);
	assert_int_equal(s->update.order, ORDER_START_FIRST);
	assert_int_equal(s->rollback.parallelism, 0);
	assert_int_equal(s->rollback.monitor_ns, 0);
	assert_int_equal(s->rollback.failure_action, FAILURE_CONTINUE);
	assert_int_equal(s->replicas, 5);
	assert_int_equal(s->n_ports, 2);
	assert_string_equal(s->port_names[0], "http");
	assert_null(s->port_names[1]);
	assert_int_equal(s->ports[1].mode, PUBLISH_HOST);
	assert_int_equal(s->ports[1].protocol, PORT_UDP);
	assert_int_equal(s->task.n_networks, 2);
	assert_string_equal(s->task.networks[0].aliases[0], "www");
	assert_int_equal(s->task.force_update, 4);
	service_spec_free(s);
}

static void test_round_trip(void **state)
{
	const char *specs[] = {
		full_spec,
		"{\"Name\":\"a\"," MIN_TASK "}",
		"{\"Name\":\"g\",\"Mode\":{\"Global\":{}},\"TaskTemplate\":{\"ContainerSpec\":"
		"{\"Image\":\"b\",\"Healthcheck\":{\"Test\":[\"NONE\"]},\"Init\":false}},"
		"\"EndpointSpec\":{\"Mode\":\"dnsrr\"}}",
	};
	for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
		struct service_spec *s = parse_ok(specs[i]);
		json_t *j1 = service_spec_to_json(s);
		assert_non_null(j1);
		struct spec_errors e;
		struct service_spec *s2 = NULL;
		if (service_spec_from_json(j1, &s2, &e) < 0) {
			print_errors(&e);
			fail_msg("to_json output does not parse back");
		}
		json_t *j2 = service_spec_to_json(s2);
		if (!json_equal(j1, j2)) {
			char *a = json_dumps(j1, JSON_SORT_KEYS),
			     *b = json_dumps(j2, JSON_SORT_KEYS);
			fail_msg("round trip differs:\n%s\n%s", a, b);
		}
		assert_true(service_spec_task_equal(s, s2));

		/* dup gives the same spec, sharing nothing with the original. */
		struct service_spec *d = service_spec_dup(s);
		assert_non_null(d);
		service_spec_free(s);
		json_t *j3 = service_spec_to_json(d);
		assert_true(json_equal(j1, j3));
		assert_true(service_spec_task_equal(d, s2));
		json_decref(j1);
		json_decref(j2);
		json_decref(j3);
		service_spec_free(s2);
		service_spec_free(d);
	}
	/* Constraints show as given (the docker CLI removes one by its text);
	 * capabilities in their normalised form, with CAP_. */
	struct service_spec *s = parse_ok(full_spec);
	json_t *j = service_spec_to_json(s);
	json_t *tt = json_object_get(j, "TaskTemplate");
	json_t *cons = json_object_get(json_object_get(tt, "Placement"), "Constraints");
	assert_string_equal(json_string_value(json_array_get(cons, 0)), " node.role == worker");
	assert_string_equal(json_string_value(json_array_get(cons, 1)), "Node.Labels.zone!=b");
	json_t *caps = json_object_get(json_object_get(tt, "ContainerSpec"), "CapabilityAdd");
	assert_string_equal(json_string_value(json_array_get(caps, 0)), "CAP_NET_ADMIN");
	json_decref(j);
	service_spec_free(s);
}

/* Parses full_spec with one edit applied: the text old replaced by new. */
static struct service_spec *edited(const char *old, const char *new)
{
	const char *at = strstr(full_spec, old);
	if (!at)
		fail_msg("\"%s\" not in the full spec", old);
	char buf[8192];
	snprintf(buf, sizeof(buf), "%.*s%s%s", (int)(at - full_spec), full_spec, new,
		 at + strlen(old));
	return parse_ok(buf);
}

static void test_task_equal(void **state)
{
	struct service_spec *base = parse_ok(full_spec);
	/* Changes outside the TaskTemplate keep tasks as they are. */
	static const char *const same[][2] = {
		{"\"Replicas\":5", "\"Replicas\":9"},
		{"\"Name\":\"web\"", "\"Name\":\"web2\""},
		{"\"tier\":\"front\"", "\"tier\":\"back\""},
		{"\"Parallelism\":2", "\"Parallelism\":3"},
		{"\"PublishedPort\":8080", "\"PublishedPort\":8081"},
		/* Labels are a map: order does not matter. */
		{"\"Labels\":{\"c\":\"3\"}", "\"Labels\":{\"c\":\"3\"}"},
	};
	for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
		struct service_spec *s = edited(same[i][0], same[i][1]);
		if (!service_spec_task_equal(base, s))
			fail_msg("%s -> %s should keep the task", same[i][0], same[i][1]);
		service_spec_free(s);
	}
	/* Changes to what a task runs. */
	static const char *const differ[][2] = {
		{"\"ForceUpdate\":4", "\"ForceUpdate\":5"},
		{"nginx:1.25", "nginx:1.26"},
		{"\"B=2\"", "\"B=3\""},
		{"\"Args\":[\"exec nginx\"]", "\"Args\":[\"exec nginx\",\"-g\"]"},
		{"\"Command\":[\"/bin/sh\",\"-c\"],", ""},
		{"\"Retries\":3", "\"Retries\":4"},
		{"\"Healthcheck\":{\"Test\":[\"CMD-SHELL\",\"wget -q localhost\"],\"Interval\":"
		 "30000000000,\"Timeout\":5000000000,\"Retries\":3,\"StartPeriod\":1000000000},",
		 ""},
		{"\"Pids\":100", "\"Pids\":101"},
		{"\"MemoryBytes\":268435456", "\"MemoryBytes\":268435457"},
		{"\"Condition\":\"on-failure\"", "\"Condition\":\"any\""},
		{"node.role == worker", "node.role != worker"},
		{"\"MaxReplicas\":2", "\"MaxReplicas\":3"},
		{"\"Aliases\":[\"www\"]", "\"Aliases\":[\"w3\"]"},
		{"{\"Target\":\"front\",\"Aliases\":[\"www\"]},{\"Target\":\"back\"}",
		 "{\"Target\":\"front\",\"Aliases\":[\"www\"]}"},
		{"\"ReadOnly\":true", "\"ReadOnly\":false"},
		{"\"Init\":true", "\"Init\":false"},
		{"\"StopSignal\":\"SIGQUIT\"", "\"StopSignal\":\"SIGTERM\""},
		{"\"StopGracePeriod\":20000000000", "\"StopGracePeriod\":20000000001"},
		{"\"c\":\"3\"", "\"c\":\"4\""},
		{"\"CapabilityDrop\":[\"ALL\"]", "\"CapabilityDrop\":[]"},
		{"\"SpreadDescriptor\":\"node.labels.zone\"",
		 "\"SpreadDescriptor\":\"node.labels.rack\""},
	};
	for (size_t i = 0; i < sizeof(differ) / sizeof(differ[0]); i++) {
		struct service_spec *s = edited(differ[i][0], differ[i][1]);
		if (service_spec_task_equal(base, s))
			fail_msg("%s -> %s should change the task", differ[i][0], differ[i][1]);
		service_spec_free(s);
	}
	service_spec_free(base);

	/* An empty Env is the same as none. */
	struct service_spec *a = parse_ok("{\"Name\":\"a\"," MIN_TASK "}");
	struct service_spec *b = parse_ok(
		"{\"Name\":\"a\",\"TaskTemplate\":{\"ContainerSpec\":{\"Image\":\"busybox\","
		"\"Env\":[],\"Command\":[]}}}");
	assert_true(service_spec_task_equal(a, b));
	service_spec_free(a);
	service_spec_free(b);
}

static void test_durations(void **state)
{
	static const struct {
		const char *s;
		int64_t ns;
	} good[] = {
		{"0", 0},
		{"0s", 0},
		{"1ns", 1},
		{"1us", 1000},
		{"1\xc2\xb5s", 1000},
		{"1\xce\xbcs", 1000},
		{"300ms", 300000000},
		{"5s", 5000000000LL},
		{"1m30s", 90000000000LL},
		{"1.5h", 5400000000000LL},
		{"-1.5h", -5400000000000LL},
		{"+2m", 120000000000LL},
		{"1h2m3.5s", 3723500000000LL},
		{".5s", 500000000},
		{"1.s", 1000000000},
		{"2h45m", 9900000000000LL},
		{"1.000000001s", 1000000001},
		{"2562047h", 2562047LL * 3600 * 1000000000},
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		int64_t ns = -42;
		struct shoal_err err = {0};
		if (spec_parse_duration(good[i].s, &ns, &err) < 0)
			fail_msg("\"%s\": %s", good[i].s, err.msg);
		if (ns != good[i].ns)
			fail_msg("\"%s\" = %lld, want %lld", good[i].s, (long long)ns,
				 (long long)good[i].ns);
	}
	static const struct {
		const char *s;
		const char *msg;
	} bad[] = {
		{"", "invalid duration \"\""},
		{"-", "invalid duration \"-\""},
		{"s", "invalid duration \"s\""},
		{".s", "invalid duration \".s\""},
		{"abc", "invalid duration \"abc\""},
		{"10", "missing unit in duration \"10\""},
		{"1m30", "missing unit in duration \"1m30\""},
		{"1d", "unknown unit \"d\" in duration \"1d\""},
		{"3sec", "unknown unit \"sec\""},
		{"1e3s", "unknown unit \"e\""},
		{"9999999999h", "duration \"9999999999h\" is out of range"},
		{"2562048h", "is out of range"},
		{"99999999999999999999ns", "is out of range"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int64_t ns = -42;
		struct shoal_err err = {0};
		if (spec_parse_duration(bad[i].s, &ns, &err) != -EINVAL)
			fail_msg("\"%s\" accepted as %lld", bad[i].s, (long long)ns);
		assert_int_equal(ns, -42);
		if (!strstr(err.msg, bad[i].msg))
			fail_msg("\"%s\": message \"%s\" lacks \"%s\"", bad[i].s, err.msg,
				 bad[i].msg);
	}
	assert_int_equal(spec_parse_duration("x", &(int64_t){0}, NULL), -EINVAL);

	static const struct {
		int64_t ns;
		const char *s;
	} fmt[] = {
		{0, "0s"},
		{1, "1ns"},
		{1500, "1.5\xc2\xb5s"},
		{1500000, "1.5ms"},
		{5000000000LL, "5s"},
		{90000000000LL, "1m30s"},
		{3600000000000LL, "1h0m0s"},
		{3723500000000LL, "1h2m3.5s"},
		{-1500000000LL, "-1.5s"},
		{INT64_MAX, "2562047h47m16.854775807s"},
		{INT64_MIN, "-2562047h47m16.854775808s"},
	};
	for (size_t i = 0; i < sizeof(fmt) / sizeof(fmt[0]); i++) {
		char buf[40];
		spec_format_duration(fmt[i].ns, buf);
		assert_string_equal(buf, fmt[i].s);
		int64_t back = 0;
		assert_int_equal(spec_parse_duration(buf, &back, NULL), 0);
		assert_int_equal(back, fmt[i].ns);
	}
}

static void test_constraints(void **state)
{
	static const struct {
		const char *s;
		const char *key;
		enum constraint_op op;
		const char *value;
	} good[] = {
		{"node.labels.zone==a", "node.labels.zone", CONSTRAINT_EQ, "a"},
		{"node.role!=manager", "node.role", CONSTRAINT_NE, "manager"},
		{" node.hostname == host-1 ", "node.hostname", CONSTRAINT_EQ, "host-1"},
		{"NODE.ID==abc", "node.id", CONSTRAINT_EQ, "abc"},
		{"Node.Labels.Zone==eu-west/1", "node.labels.Zone", CONSTRAINT_EQ, "eu-west/1"},
		{"engine.labels.os==linux", "engine.labels.os", CONSTRAINT_EQ, "linux"},
		{"node.platform.os==linux", "node.platform.os", CONSTRAINT_EQ, "linux"},
		{"node.platform.arch!=x86_64", "node.platform.arch", CONSTRAINT_NE, "x86_64"},
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		struct constraint c = {0};
		struct shoal_err err = {0};
		if (spec_parse_constraint(good[i].s, &c, &err) < 0)
			fail_msg("\"%s\": %s", good[i].s, err.msg);
		assert_string_equal(c.key, good[i].key);
		assert_int_equal(c.op, good[i].op);
		assert_string_equal(c.value, good[i].value);
		char *f = spec_format_constraint(&c);
		struct constraint c2 = {0};
		assert_int_equal(spec_parse_constraint(f, &c2, NULL), 0);
		assert_string_equal(c2.key, c.key);
		assert_string_equal(c2.value, c.value);
		free(f);
		spec_constraint_done(&c);
		spec_constraint_done(&c2);
	}
	static const struct {
		const char *s;
		const char *msg;
	} bad[] = {
		{"node.labels.zone=a", "\"node.labels.zone=a\" is not KEY==VALUE or KEY!=VALUE"},
		{"node.role", "is not KEY==VALUE or KEY!=VALUE"},
		{"", "\"\" is not KEY==VALUE or KEY!=VALUE"},
		{"==a", "unknown key \"\""},
		{"zone==a", "unknown key \"zone\""},
		{"node.labels.==a", "unknown key \"node.labels.\""},
		{"node.labels.a b==c", "unknown key \"node.labels.a b\""},
		{"node.role==", "invalid value \"\""},
		{"node.role==a==b", "invalid value \"a==b\""},
		{"node.role==a;b", "invalid value \"a;b\""},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct constraint c = {0};
		struct shoal_err err = {0};
		if (spec_parse_constraint(bad[i].s, &c, &err) != -EINVAL)
			fail_msg("\"%s\" accepted", bad[i].s);
		assert_null(c.key);
		if (!strstr(err.msg, bad[i].msg))
			fail_msg("\"%s\": message \"%s\" lacks \"%s\"", bad[i].s, err.msg,
				 bad[i].msg);
	}

	/* the spec shows a constraint as given (the docker CLI removes one by
	 * its text), through a copy too */
	struct service_spec *s = parse_ok("{\"Name\":\"c\",\"TaskTemplate\":{\"ContainerSpec\":"
					  "{\"Image\":\"busybox\"},\"Placement\":{\"Constraints\":"
					  "[\"node.role == manager\",\"node.labels.zone!=a\"]}}}");
	struct service_spec *d = service_spec_dup(s);
	assert_non_null(d);
	json_t *j = service_spec_to_json(d);
	json_t *cons = json_object_get(
		json_object_get(json_object_get(j, "TaskTemplate"), "Placement"), "Constraints");
	assert_string_equal(json_string_value(json_array_get(cons, 0)), "node.role == manager");
	assert_string_equal(json_string_value(json_array_get(cons, 1)), "node.labels.zone!=a");
	json_decref(j);
	service_spec_free(d);
	service_spec_free(s);

	struct placement_pref p = {0};
	assert_int_equal(spec_parse_placement_pref("spread=node.labels.zone", &p, NULL), 0);
	assert_string_equal(p.spread_key, "node.labels.zone");
	free(p.spread_key);
	struct shoal_err err = {0};
	assert_int_equal(spec_parse_placement_pref("pack=node.labels.zone", &p, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "is not spread=KEY"));
	assert_int_equal(spec_parse_placement_pref("spread=rack", &p, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "unknown spread key \"rack\""));
}

static void test_publish(void **state)
{
	static const struct {
		const char *s;
		unsigned published, target;
		enum port_protocol proto;
		enum publish_mode mode;
	} good[] = {
		{"8080:80", 8080, 80, PORT_TCP, PUBLISH_INGRESS},
		{"53:53/udp", 53, 53, PORT_UDP, PUBLISH_INGRESS},
		{"9000:9000/sctp", 9000, 9000, PORT_SCTP, PUBLISH_INGRESS},
		{"80", 0, 80, PORT_TCP, PUBLISH_INGRESS},
		{"80/udp", 0, 80, PORT_UDP, PUBLISH_INGRESS},
		{"published=8080,target=80", 8080, 80, PORT_TCP, PUBLISH_INGRESS},
		{"published=8080,target=80,protocol=udp,mode=host", 8080, 80, PORT_UDP,
		 PUBLISH_HOST},
		{"target=80,mode=host", 0, 80, PORT_TCP, PUBLISH_HOST},
		{"mode=host, target=443 ,published=443", 443, 443, PORT_TCP, PUBLISH_HOST},
		{"65535:1", 65535, 1, PORT_TCP, PUBLISH_INGRESS},
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		struct port_config p;
		struct shoal_err err = {0};
		if (spec_parse_publish(good[i].s, &p, &err) < 0)
			fail_msg("\"%s\": %s", good[i].s, err.msg);
		assert_int_equal(p.published_port, good[i].published);
		assert_int_equal(p.target_port, good[i].target);
		assert_int_equal(p.protocol, good[i].proto);
		assert_int_equal(p.mode, good[i].mode);
	}
	static const struct {
		const char *s;
		const char *msg;
	} bad[] = {
		{"", "empty port"},
		{"8080:80/icmp", "unknown protocol \"icmp\""},
		{"70000:80", "published port 70000 is out of range (0-65535)"},
		{"8080:0", "target port 0 is out of range (1-65535)"},
		{"8080:http", "invalid target port \"http\""},
		{"127.0.0.1:8080:80", "a host address cannot be given"},
		{"8080-8081:80-81", "port ranges are not supported"},
		{"published=8080", "target is required"},
		{"published=8080,target=80,speed=fast", "unknown field \"speed\""},
		{"published=8080,target=80,mode=everywhere", "unknown publish mode \"everywhere\""},
		{"published=8080,target", "field \"target\" is not KEY=VALUE"},
		{":80", "invalid published port \"\""},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct port_config p = {.target_port = 7};
		struct shoal_err err = {0};
		if (spec_parse_publish(bad[i].s, &p, &err) != -EINVAL)
			fail_msg("\"%s\" accepted", bad[i].s);
		assert_int_equal(p.target_port, 7);
		if (!strstr(err.msg, bad[i].msg))
			fail_msg("\"%s\": message \"%s\" lacks \"%s\"", bad[i].s, err.msg,
				 bad[i].msg);
	}
}

static void test_enums_and_names(void **state)
{
	enum restart_condition rc;
	assert_int_equal(spec_parse_restart_condition("on-failure", &rc, NULL), 0);
	assert_int_equal(rc, RESTART_ON_FAILURE);
	assert_string_equal(spec_restart_condition_str(rc), "on-failure");
	struct shoal_err err = {0};
	assert_int_equal(spec_parse_restart_condition("always", &rc, &err), -EINVAL);
	assert_string_equal(
		err.msg, "unknown restart condition \"always\": expected none, on-failure or any");
	enum update_failure_action fa;
	assert_int_equal(spec_parse_failure_action("rollback", &fa, NULL), 0);
	assert_int_equal(fa, FAILURE_ROLLBACK);
	enum update_order o;
	assert_int_equal(spec_parse_update_order("start-first", &o, NULL), 0);
	assert_int_equal(o, ORDER_START_FIRST);
	assert_int_equal(spec_parse_update_order("Start-First", &o, NULL), -EINVAL);
	enum endpoint_mode em;
	assert_int_equal(spec_parse_endpoint_mode("dnsrr", &em, NULL), 0);
	assert_string_equal(spec_endpoint_mode_str(em), "dnsrr");
	assert_string_equal(spec_protocol_str(PORT_SCTP), "sctp");
	assert_string_equal(spec_publish_mode_str(PUBLISH_HOST), "host");

	assert_int_equal(spec_validate_name("web-1", NULL), 0);
	assert_int_equal(spec_validate_name("stack_web", NULL), 0);
	assert_int_equal(spec_validate_name("_web", &err), -EINVAL);
	assert_int_equal(spec_validate_name("web_", &err), -EINVAL);
	assert_int_equal(spec_validate_name("a", NULL), 0);
	assert_int_equal(spec_validate_name("", &err), -EINVAL);
	assert_int_equal(spec_validate_name("web-", &err), -EINVAL);
	assert_int_equal(spec_validate_name("we.b", &err), -EINVAL);
	assert_int_equal(spec_validate_name("w\xc3\xa9", &err), -EINVAL);
}

static void test_container_config(void **state)
{
	struct service_spec *s = parse_ok(full_spec);
	json_t *c = service_task_container_config(s, "web.3.abcdef");
	assert_non_null(c);
	assert_string_equal(json_string_value(json_object_get(c, "Image")), "nginx:1.25");
	json_t *ep = json_object_get(c, "Entrypoint");
	assert_int_equal(json_array_size(ep), 2);
	assert_string_equal(json_string_value(json_array_get(ep, 0)), "/bin/sh");
	assert_string_equal(json_string_value(json_array_get(ep, 1)), "-c");
	json_t *cmd = json_object_get(c, "Cmd");
	assert_int_equal(json_array_size(cmd), 1);
	assert_string_equal(json_string_value(json_array_get(cmd, 0)), "exec nginx");
	assert_string_equal(json_string_value(json_array_get(json_object_get(c, "Env"), 1)), "B=2");
	assert_string_equal(json_string_value(json_object_get(c, "WorkingDir")), "/srv");
	assert_string_equal(json_string_value(json_object_get(c, "User")), "www");
	assert_string_equal(json_string_value(json_object_get(c, "Hostname")), "web-host");
	assert_string_equal(json_string_value(json_object_get(c, "StopSignal")), "SIGQUIT");
	assert_int_equal(json_integer_value(json_object_get(c, "StopTimeout")), 20);
	json_t *labels = json_object_get(c, "Labels");
	assert_string_equal(json_string_value(json_object_get(labels, "c")), "3");
	assert_string_equal(
		json_string_value(json_object_get(labels, "com.docker.swarm.service.name")), "web");
	assert_string_equal(
		json_string_value(json_object_get(labels, "com.docker.swarm.task.name")),
		"web.3.abcdef");
	json_t *hc = json_object_get(c, "Healthcheck");
	assert_string_equal(json_string_value(json_array_get(json_object_get(hc, "Test"), 0)),
			    "CMD-SHELL");
	assert_int_equal(json_integer_value(json_object_get(hc, "Interval")), 30000000000LL);
	assert_int_equal(json_integer_value(json_object_get(hc, "Timeout")), 5000000000LL);
	assert_int_equal(json_integer_value(json_object_get(hc, "StartPeriod")), 1000000000LL);
	assert_int_equal(json_integer_value(json_object_get(hc, "Retries")), 3);
	json_t *h = json_object_get(c, "HostConfig");
	assert_int_equal(json_integer_value(json_object_get(h, "Memory")), 536870912);
	assert_int_equal(json_integer_value(json_object_get(h, "MemoryReservation")), 268435456);
	assert_int_equal(json_integer_value(json_object_get(h, "NanoCpus")), 2000000000);
	assert_int_equal(json_integer_value(json_object_get(h, "PidsLimit")), 100);
	assert_true(json_is_true(json_object_get(h, "ReadonlyRootfs")));
	assert_true(json_is_true(json_object_get(h, "Init")));
	assert_string_equal(json_string_value(json_array_get(json_object_get(h, "CapAdd"), 0)),
			    "CAP_NET_ADMIN");
	assert_string_equal(json_string_value(json_array_get(json_object_get(h, "CapDrop"), 0)),
			    "ALL");
	json_decref(c);
	service_spec_free(s);

	/* Args alone replace the image's cmd and keep its entrypoint. */
	s = parse_ok("{\"Name\":\"a\",\"TaskTemplate\":{\"ContainerSpec\":{\"Image\":\"b\","
		     "\"Args\":[\"-v\"]}}}");
	c = service_task_container_config(s, "a.1.x");
	assert_null(json_object_get(c, "Entrypoint"));
	assert_string_equal(json_string_value(json_array_get(json_object_get(c, "Cmd"), 0)), "-v");
	json_decref(c);
	service_spec_free(s);

	/* Command alone replaces the entrypoint and drops the image's cmd. */
	s = parse_ok("{\"Name\":\"a\",\"TaskTemplate\":{\"ContainerSpec\":{\"Image\":\"b\","
		     "\"Command\":[\"top\"]}}}");
	c = service_task_container_config(s, "a.1.x");
	assert_string_equal(json_string_value(json_array_get(json_object_get(c, "Entrypoint"), 0)),
			    "top");
	assert_true(json_is_array(json_object_get(c, "Cmd")));
	assert_int_equal(json_array_size(json_object_get(c, "Cmd")), 0);
	json_decref(c);
	service_spec_free(s);

	/* Neither: the image's entrypoint and cmd; no healthcheck (the image's); no limits. */
	s = parse_ok("{\"Name\":\"a\"," MIN_TASK "}");
	c = service_task_container_config(s, "a.1.x");
	assert_null(json_object_get(c, "Entrypoint"));
	assert_null(json_object_get(c, "Cmd"));
	assert_null(json_object_get(c, "Healthcheck"));
	assert_null(json_object_get(c, "WorkingDir"));
	assert_int_equal(json_integer_value(json_object_get(c, "StopTimeout")), 10);
	h = json_object_get(c, "HostConfig");
	assert_int_equal(json_integer_value(json_object_get(h, "Memory")), 0);
	assert_null(json_object_get(h, "PidsLimit"));
	assert_null(json_object_get(h, "Init"));
	assert_true(json_is_false(json_object_get(h, "ReadonlyRootfs")));
	json_decref(c);
	service_spec_free(s);
}

/* Every value in the full spec, replaced in turn by values of other types: the parser never
 * crashes or leaks, names a problem at the value's path whenever it rejects, and what it
 * accepts round-trips. */
static size_t mutated;

static void check_mutation(json_t *root, const char *path)
{
	struct spec_errors e;
	struct service_spec *s = NULL;
	int r = service_spec_from_json(root, &s, &e);
	mutated++;
	if (r == 0) {
		json_t *j1 = service_spec_to_json(s);
		struct service_spec *s2 = NULL;
		assert_int_equal(service_spec_from_json(j1, &s2, &e), 0);
		json_t *j2 = service_spec_to_json(s2);
		assert_true(json_equal(j1, j2));
		json_decref(j1);
		json_decref(j2);
		service_spec_free(s);
		service_spec_free(s2);
		return;
	}
	assert_int_equal(r, -EINVAL);
	assert_null(s);
	assert_true(e.total >= 1);
	for (size_t i = 0; i < e.n; i++)
		assert_true(strlen(e.msg[i]) > 0);
	/* At the path, or (for a check across fields) naming the field. */
	const char *leaf = strrchr(path, '.') ? strrchr(path, '.') + 1 : path;
	bool named = has_error(&e, path);
	for (size_t i = 0; i < e.n && !named; i++)
		named = strstr(e.msg[i], leaf) != NULL;
	if (!named) {
		print_errors(&e);
		fail_msg("rejected without naming %s", path);
	}
}

static void mutate_walk(json_t *root, json_t *v, char *path, size_t len)
{
	json_t *repl[] = {json_string("x"), json_integer(-1), json_real(1.5),	  json_array(),
			  json_object(),    json_true(),      json_integer(70000)};
	size_t nrepl = sizeof(repl) / sizeof(repl[0]);
	if (json_is_object(v)) {
		const char *k;
		json_t *child;
		void *tmp;
		json_object_foreach_safe(v, tmp, k, child)
		{
			int n = snprintf(path + len, 256 - len, "%s%s", len ? "." : "", k);
			json_incref(child);
			for (size_t i = 0; i < nrepl; i++) {
				json_object_set(v, k, repl[i]);
				check_mutation(root, path);
			}
			json_object_set(v, k, child);
			mutate_walk(root, child, path, len + (size_t)n);
			json_decref(child);
			path[len] = '\0';
		}
	} else if (json_is_array(v)) {
		for (size_t idx = 0; idx < json_array_size(v); idx++) {
			json_t *child = json_incref(json_array_get(v, idx));
			int n = snprintf(path + len, 256 - len, "[%zu]", idx);
			for (size_t i = 0; i < nrepl; i++) {
				json_array_set(v, idx, repl[i]);
				check_mutation(root, path);
			}
			json_array_set(v, idx, child);
			mutate_walk(root, child, path, len + (size_t)n);
			json_decref(child);
			path[len] = '\0';
		}
	}
	for (size_t i = 0; i < nrepl; i++)
		json_decref(repl[i]);
}

static void test_mutations(void **state)
{
	json_t *root = load(full_spec);
	char path[256] = "";
	mutated = 0;
	mutate_walk(root, root, path, 0);
	assert_true(mutated > 500);
	/* The walk restores every value it replaced. */
	json_t *orig = load(full_spec);
	assert_true(json_equal(root, orig));
	json_decref(orig);
	json_decref(root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_unknown_fields_ignored),
		cmocka_unit_test(test_mounts),
		cmocka_unit_test(test_each_error),
		cmocka_unit_test(test_many_errors),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_full_spec),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_task_equal),
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_constraints),
		cmocka_unit_test(test_publish),
		cmocka_unit_test(test_enums_and_names),
		cmocka_unit_test(test_container_config),
		cmocka_unit_test(test_mutations),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
