// SPDX-License-Identifier: Apache-2.0
/* `shoal service` and `shoal node`: flag -> ServiceSpec mapping, update edits, scale
 * arguments, progress and ps formatting, and whole flows against a fake agent. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "cli/cli.h"

static struct cli_ctx test_ctx(void)
{
	struct cli_ctx ctx = {.host = "unix:///nonexistent.sock", .sock_path = "/nonexistent.sock"};
	snprintf(ctx.cmdpath, sizeof(ctx.cmdpath), "shoal service create");
	return ctx;
}

static json_t *at(json_t *o, const char *path)
{
	char key[128];
	while (o && *path) {
		const char *dot = strchr(path, '.');
		size_t n = dot ? (size_t)(dot - path) : strlen(path);
		memcpy(key, path, n);
		key[n] = '\0';
		o = json_is_array(o) ? json_array_get(o, strtoul(key, NULL, 10))
				     : json_object_get(o, key);
		path += n + (dot ? 1 : 0);
	}
	return o;
}

static json_int_t at_int(json_t *o, const char *path)
{
	json_t *v = at(o, path);
	assert_non_null(v);
	return json_integer_value(v);
}

static const char *at_str(json_t *o, const char *path)
{
	json_t *v = at(o, path);
	assert_non_null(v);
	return json_string_value(v);
}

/* Parses argv (NULL-terminated) as `service create|update` and applies it to spec.
 * Returns apply's result; parse failures fail the test. */
static int apply_argv(bool update, json_t *spec, char *err, size_t errsize, ...)
{
	char *argv[192] = {update ? "update" : "create"};
	int argc = 1;
	va_list ap;
	va_start(ap, errsize);
	for (const char *a; (a = va_arg(ap, const char *));)
		argv[argc++] = (char *)a;
	va_end(ap);
	struct cli_ctx ctx = test_ctx();
	struct cli_service_args a;
	assert_int_equal(cli_service_args_parse(&ctx, argc, argv, update, &a), 0);
	int r = cli_service_spec_apply(&a, spec, err, errsize);
	cli_service_args_done(&a);
	return r;
}

/* --network's long form as the docker CLI reads it; --mount-add replaces by
 * target, --mount-rm removes by target. */
static void test_network_and_mount_forms(void **state)
{
	(void)state;
	json_t *spec = json_object();
	char err[512];
	int r = apply_argv(false, spec, err, sizeof(err), "--network",
			   "name=front,alias=web,alias=w", "--mount",
			   "type=volume,source=data,target=/d", "busybox", NULL);
	assert_int_equal(r, 0);
	assert_string_equal(at_str(spec, "TaskTemplate.Networks.0.Target"), "front");
	assert_string_equal(at_str(spec, "TaskTemplate.Networks.0.Aliases.1"), "w");
	assert_string_equal(at_str(spec, "TaskTemplate.ContainerSpec.Mounts.0.Source"), "data");
	json_t *other = json_object();
	r = apply_argv(false, other, err, sizeof(err), "--network", "name=front,driver-opt=x=y",
		       "busybox", NULL);
	json_decref(other);
	assert_int_equal(r, -EINVAL);
	assert_non_null(strstr(err, "only name and alias are supported"));
	r = apply_argv(true, spec, err, sizeof(err), "--mount-add",
		       "type=volume,source=other,target=/d", "--mount-add", "type=tmpfs,target=/t",
		       "web", NULL);
	assert_int_equal(r, 0);
	assert_int_equal(json_array_size(at(spec, "TaskTemplate.ContainerSpec.Mounts")), 2);
	assert_string_equal(at_str(spec, "TaskTemplate.ContainerSpec.Mounts.0.Source"), "other");
	r = apply_argv(true, spec, err, sizeof(err), "--mount-rm", "/d", "web", NULL);
	assert_int_equal(r, 0);
	assert_int_equal(json_array_size(at(spec, "TaskTemplate.ContainerSpec.Mounts")), 1);
	assert_string_equal(at_str(spec, "TaskTemplate.ContainerSpec.Mounts.0.Target"), "/t");
	json_decref(spec);
}

static void test_create_flags(void **state)
{
	json_t *spec = json_object();
	char err[512];
	int r = apply_argv(
		false, spec, err, sizeof(err), "--name", "web", "--replicas", "3", "-e", "A=1",
		"--env=B=two", "--label", "tier=front", "--container-label", "c=1", "-w", "/srv",
		"-u", "1000:1000", "--hostname", "h1", "--limit-cpu", "0.5", "--limit-memory",
		"64m", "--limit-pids", "100", "--reserve-cpu", "0.25", "--reserve-memory", "32m",
		"--constraint", "node.labels.zone == a", "--constraint", "node.role!=manager",
		"--placement-pref", "spread=node.labels.zone", "--replicas-max-per-node", "2",
		"--restart-condition", "on-failure", "--restart-delay", "1m30s",
		"--restart-max-attempts", "4", "--restart-window", "0s", "--update-parallelism",
		"2", "--update-delay", "10s", "--update-failure-action", "rollback",
		"--update-monitor", "500ms", "--update-max-failure-ratio", "0.25", "--update-order",
		"start-first", "--rollback-parallelism", "0", "--rollback-delay", "1s",
		"--rollback-failure-action", "continue", "--rollback-monitor", "2s",
		"--rollback-max-failure-ratio", "0.5", "--rollback-order", "stop-first",
		"--health-cmd", "wget -q localhost", "--health-interval", "5s", "--health-timeout",
		"2s", "--health-retries", "3", "--health-start-period", "1s", "--stop-grace-period",
		"20s", "--stop-signal", "SIGUSR1", "--read-only", "--cap-add", "net_admin",
		"--cap-drop", "ALL", "-p", "8080:80", "--publish",
		"published=5353,target=53,protocol=udp,mode=host", "--network", "front",
		"--endpoint-mode", "dnsrr", "-d", "busybox", "httpd", "-f", "-p", "80", NULL);
	assert_int_equal(r, 0);
	assert_string_equal(at_str(spec, "Name"), "web");
	assert_int_equal(at_int(spec, "Mode.Replicated.Replicas"), 3);
	assert_null(at(spec, "Mode.Global"));
	assert_string_equal(at_str(spec, "Labels.tier"), "front");
	json_t *cs = at(spec, "TaskTemplate.ContainerSpec");
	assert_string_equal(at_str(cs, "Image"), "busybox");
	assert_null(at(cs, "Command"));
	assert_int_equal(json_array_size(at(cs, "Args")), 4);
	assert_string_equal(at_str(cs, "Args.0"), "httpd");
	assert_string_equal(at_str(cs, "Args.1"), "-f");
	assert_string_equal(at_str(cs, "Env.0"), "A=1");
	assert_string_equal(at_str(cs, "Env.1"), "B=two");
	assert_string_equal(at_str(cs, "Labels.c"), "1");
	assert_string_equal(at_str(cs, "Dir"), "/srv");
	assert_string_equal(at_str(cs, "User"), "1000:1000");
	assert_string_equal(at_str(cs, "Hostname"), "h1");
	assert_string_equal(at_str(cs, "Healthcheck.Test.0"), "CMD-SHELL");
	assert_string_equal(at_str(cs, "Healthcheck.Test.1"), "wget -q localhost");
	assert_int_equal(at_int(cs, "Healthcheck.Interval"), 5000000000LL);
	assert_int_equal(at_int(cs, "Healthcheck.Timeout"), 2000000000LL);
	assert_int_equal(at_int(cs, "Healthcheck.Retries"), 3);
	assert_int_equal(at_int(cs, "Healthcheck.StartPeriod"), 1000000000LL);
	assert_int_equal(at_int(cs, "StopGracePeriod"), 20000000000LL);
	assert_string_equal(at_str(cs, "StopSignal"), "SIGUSR1");
	assert_true(json_is_true(at(cs, "ReadOnly")));
	assert_string_equal(at_str(cs, "CapabilityAdd.0"), "CAP_NET_ADMIN");
	assert_string_equal(at_str(cs, "CapabilityDrop.0"), "ALL");
	json_t *tt = at(spec, "TaskTemplate");
	assert_int_equal(at_int(tt, "Resources.Limits.NanoCPUs"), 500000000);
	assert_int_equal(at_int(tt, "Resources.Limits.MemoryBytes"), 64 << 20);
	assert_int_equal(at_int(tt, "Resources.Limits.Pids"), 100);
	assert_int_equal(at_int(tt, "Resources.Reservations.NanoCPUs"), 250000000);
	assert_int_equal(at_int(tt, "Resources.Reservations.MemoryBytes"), 32 << 20);
	assert_string_equal(at_str(tt, "Placement.Constraints.0"), "node.labels.zone==a");
	assert_string_equal(at_str(tt, "Placement.Constraints.1"), "node.role!=manager");
	assert_string_equal(at_str(tt, "Placement.Preferences.0.Spread.SpreadDescriptor"),
			    "node.labels.zone");
	assert_int_equal(at_int(tt, "Placement.MaxReplicas"), 2);
	assert_string_equal(at_str(tt, "RestartPolicy.Condition"), "on-failure");
	assert_int_equal(at_int(tt, "RestartPolicy.Delay"), 90000000000LL);
	assert_int_equal(at_int(tt, "RestartPolicy.MaxAttempts"), 4);
	assert_int_equal(at_int(tt, "RestartPolicy.Window"), 0);
	assert_string_equal(at_str(tt, "Networks.0.Target"), "front");
	json_t *uc = at(spec, "UpdateConfig"), *rc = at(spec, "RollbackConfig");
	assert_int_equal(at_int(uc, "Parallelism"), 2);
	assert_int_equal(at_int(uc, "Delay"), 10000000000LL);
	assert_string_equal(at_str(uc, "FailureAction"), "rollback");
	assert_int_equal(at_int(uc, "Monitor"), 500000000);
	assert_true(json_real_value(at(uc, "MaxFailureRatio")) == 0.25);
	assert_string_equal(at_str(uc, "Order"), "start-first");
	assert_int_equal(at_int(rc, "Parallelism"), 0);
	assert_int_equal(at_int(rc, "Delay"), 1000000000);
	assert_string_equal(at_str(rc, "FailureAction"), "continue");
	assert_int_equal(at_int(rc, "Monitor"), 2000000000);
	assert_true(json_real_value(at(rc, "MaxFailureRatio")) == 0.5);
	assert_string_equal(at_str(rc, "Order"), "stop-first");
	json_t *ep = at(spec, "EndpointSpec");
	assert_string_equal(at_str(ep, "Mode"), "dnsrr");
	assert_int_equal(json_array_size(at(ep, "Ports")), 2);
	assert_int_equal(at_int(ep, "Ports.0.PublishedPort"), 8080);
	assert_int_equal(at_int(ep, "Ports.0.TargetPort"), 80);
	assert_string_equal(at_str(ep, "Ports.0.Protocol"), "tcp");
	assert_string_equal(at_str(ep, "Ports.0.PublishMode"), "ingress");
	assert_int_equal(at_int(ep, "Ports.1.PublishedPort"), 5353);
	assert_string_equal(at_str(ep, "Ports.1.Protocol"), "udp");
	assert_string_equal(at_str(ep, "Ports.1.PublishMode"), "host");
	json_decref(spec);

	/* Defaults: one replica, nothing else invented. */
	spec = json_object();
	assert_int_equal(apply_argv(false, spec, err, sizeof(err), "busybox", NULL), 0);
	assert_int_equal(at_int(spec, "Mode.Replicated.Replicas"), 1);
	assert_null(at(spec, "TaskTemplate.ContainerSpec.Args"));
	assert_null(at(spec, "Name"));
	json_decref(spec);

	/* Global mode, and the no-healthcheck form. */
	spec = json_object();
	assert_int_equal(apply_argv(false, spec, err, sizeof(err), "--mode", "global",
				    "--no-healthcheck", "busybox", NULL),
			 0);
	assert_non_null(at(spec, "Mode.Global"));
	assert_null(at(spec, "Mode.Replicated"));
	assert_string_equal(at_str(spec, "TaskTemplate.ContainerSpec.Healthcheck.Test.0"), "NONE");
	json_decref(spec);
}

static void test_create_flag_errors(void **state)
{
	char err[512];
	static const struct {
		const char *flag, *value, *expect;
	} cases[] = {
		{"--replicas", "x",
		 "invalid argument \"x\" for \"--replicas\" flag: "
		 "strconv.ParseUint: parsing \"x\": invalid syntax"},
		{"--restart-delay", "5 parsecs", "for \"--restart-delay\" flag"},
		{"--restart-condition", "sometimes", "for \"--restart-condition\" flag"},
		{"--update-failure-action", "explode", "for \"--update-failure-action\" flag"},
		{"--rollback-failure-action", "rollback", "expected \"pause\" or \"continue\""},
		{"--update-order", "random", "for \"--update-order\" flag"},
		{"--update-max-failure-ratio", "2", "expected a ratio between 0 and 1"},
		{"--constraint", "node.labels.zone", "for \"--constraint\" flag"},
		{"--placement-pref", "pack=node.labels.zone", "for \"--placement-pref\" flag"},
		{"--publish", "http", "for \"--publish\" flag"},
		{"--limit-memory", "lots", "for \"--limit-memory\" flag"},
		{"--limit-cpu", "-1", "for \"--limit-cpu\" flag"},
		{"--endpoint-mode", "ipvs", "for \"--endpoint-mode\" flag"},
		{"--name", "trailing_", "for \"--name\" flag"},
		{"--health-interval", "10us", "must be at least 1ms"},
		{"--mode", "sometimes", "expected \"replicated\" or \"global\""},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *spec = json_object();
		int r = apply_argv(false, spec, err, sizeof(err), cases[i].flag, cases[i].value,
				   "busybox", NULL);
		if (r != -EINVAL || !strstr(err, cases[i].expect))
			fail_msg("%s %s: r=%d err=%s", cases[i].flag, cases[i].value, r, err);
		json_decref(spec);
	}
	json_t *spec = json_object();
	assert_int_equal(apply_argv(false, spec, err, sizeof(err), "--mode", "global", "--replicas",
				    "2", "busybox", NULL),
			 -EINVAL);
	assert_string_equal(err,
			    "replicas can only be used with replicated or replicated-job mode");
	json_decref(spec);
	spec = json_object();
	assert_int_equal(apply_argv(false, spec, err, sizeof(err), "--no-healthcheck",
				    "--health-cmd", "true", "busybox", NULL),
			 -EINVAL);
	assert_string_equal(err, "--no-healthcheck conflicts with --health-* options");
	json_decref(spec);
}

static const char current_spec[] =
	"{\"Name\":\"web\",\"Labels\":{\"a\":\"1\",\"b\":\"2\"},"
	"\"TaskTemplate\":{\"ContainerSpec\":{\"Image\":\"busybox\",\"Args\":[\"httpd\"],"
	"\"Env\":[\"A=1\",\"B=2\",\"C=3\"]},"
	"\"Placement\":{\"Constraints\":[\"node.labels.zone==a\",\"node.role==worker\"]},"
	"\"ForceUpdate\":4},"
	"\"Mode\":{\"Replicated\":{\"Replicas\":2}},"
	"\"EndpointSpec\":{\"Mode\":\"vip\",\"Ports\":[{\"Protocol\":\"tcp\",\"TargetPort\":80,"
	"\"PublishedPort\":8080,\"PublishMode\":\"ingress\"},{\"Protocol\":\"udp\","
	"\"TargetPort\":53,\"PublishedPort\":53,\"PublishMode\":\"ingress\"}]}}";

static void test_update_edits(void **state)
{
	json_t *spec = json_loads(current_spec, 0, NULL);
	assert_non_null(spec);
	char err[512];
	int r = apply_argv(true, spec, err, sizeof(err), "--env-add", "B=20", "--env-add", "D=4",
			   "--env-rm", "A", "--label-add", "c=3", "--label-rm", "a",
			   "--constraint-rm", "node.labels.zone == a", "--constraint-add",
			   "node.labels.disk==ssd", "--publish-rm", "53/udp", "--publish-add",
			   "9090:90", "--publish-add", "published=8080,target=81", "--replicas",
			   "5", "--image", "busybox:2", "--args", "sh -c 'echo hi; sleep 1'",
			   "--force", "web", NULL);
	assert_int_equal(r, 0);
	json_t *cs = at(spec, "TaskTemplate.ContainerSpec");
	json_t *env = at(cs, "Env");
	assert_int_equal(json_array_size(env), 3);
	assert_string_equal(at_str(env, "0"), "C=3");
	assert_string_equal(at_str(env, "1"), "B=20");
	assert_string_equal(at_str(env, "2"), "D=4");
	assert_string_equal(at_str(cs, "Image"), "busybox:2");
	assert_int_equal(json_array_size(at(cs, "Args")), 3);
	assert_string_equal(at_str(cs, "Args.2"), "echo hi; sleep 1");
	assert_null(at(spec, "Labels.a"));
	assert_string_equal(at_str(spec, "Labels.b"), "2");
	assert_string_equal(at_str(spec, "Labels.c"), "3");
	json_t *cons = at(spec, "TaskTemplate.Placement.Constraints");
	assert_int_equal(json_array_size(cons), 2);
	assert_string_equal(at_str(cons, "0"), "node.role==worker");
	assert_string_equal(at_str(cons, "1"), "node.labels.disk==ssd");
	json_t *ports = at(spec, "EndpointSpec.Ports");
	/* 53/udp gone; 8080 now targets 81 (one entry per published port); 9090 added. */
	assert_int_equal(json_array_size(ports), 2);
	assert_int_equal(at_int(ports, "0.PublishedPort"), 9090);
	assert_int_equal(at_int(ports, "0.TargetPort"), 90);
	assert_int_equal(at_int(ports, "1.PublishedPort"), 8080);
	assert_int_equal(at_int(ports, "1.TargetPort"), 81);
	assert_int_equal(at_int(spec, "Mode.Replicated.Replicas"), 5);
	assert_int_equal(at_int(spec, "TaskTemplate.ForceUpdate"), 5);
	/* Untouched parts stay. */
	assert_string_equal(at_str(spec, "EndpointSpec.Mode"), "vip");
	assert_string_equal(at_str(spec, "Name"), "web");
	json_decref(spec);

	/* No flags: the spec posts back unchanged (docker's no-op update). */
	spec = json_loads(current_spec, 0, NULL);
	json_t *orig = json_loads(current_spec, 0, NULL);
	assert_int_equal(apply_argv(true, spec, err, sizeof(err), "web", NULL), 0);
	assert_true(json_equal(spec, orig));
	json_decref(orig);
	json_decref(spec);

	/* A global service refuses --replicas. */
	spec = json_loads("{\"Mode\":{\"Global\":{}},\"TaskTemplate\":{}}", 0, NULL);
	assert_int_equal(apply_argv(true, spec, err, sizeof(err), "--replicas", "2", "g", NULL),
			 -EINVAL);
	assert_string_equal(err,
			    "replicas can only be used with replicated or replicated-job mode");
	json_decref(spec);

	/* update takes exactly one SERVICE; --rollback takes no spec flags. */
	struct cli_ctx ctx = test_ctx();
	struct cli_service_args a;
	char *two[] = {"update", "a", "b", NULL};
	fflush(stdout);
	fflush(stderr);
	int saved = dup(1), saved_err = dup(2);
	int devnull = open("/dev/null", O_WRONLY);
	dup2(devnull, 1);
	dup2(devnull, 2);
	int r1 = cli_service_args_parse(&ctx, 3, two, true, &a);
	char *rb[] = {"update", "--rollback", "--env-add", "A=1", "web", NULL};
	int r2 = cli_service_args_parse(&ctx, 5, rb, true, &a);
	fflush(stdout);
	fflush(stderr);
	dup2(saved, 1);
	dup2(saved_err, 2);
	close(saved);
	close(saved_err);
	close(devnull);
	assert_int_equal(r1, 1);
	assert_int_equal(r2, 125);
}

static void test_scale_parse(void **state)
{
	char *name = NULL, err[256];
	uint64_t n = 0;
	assert_int_equal(cli_service_scale_parse("web=3", &name, &n, err, sizeof(err)), 0);
	assert_string_equal(name, "web");
	assert_int_equal(n, 3);
	free(name);
	assert_int_equal(cli_service_scale_parse("web=0", &name, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 0);
	free(name);
	assert_int_equal(cli_service_scale_parse("web", &name, &n, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "invalid scale specifier 'web'"));
	assert_int_equal(cli_service_scale_parse("=3", &name, &n, err, sizeof(err)), -EINVAL);
	assert_int_equal(cli_service_scale_parse("web=-1", &name, &n, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "invalid replicas value -1: strconv.ParseUint: parsing \"-1\": "
				 "invalid syntax");
	assert_int_equal(cli_service_scale_parse("web=three", &name, &n, err, sizeof(err)),
			 -EINVAL);
	assert_int_equal(
		cli_service_scale_parse("web=99999999999999999999", &name, &n, err, sizeof(err)),
		-EINVAL);
	assert_non_null(strstr(err, "value out of range"));
}

#define TASK(id, slot, desired, state, created, extra)                            \
	"{\"ID\":\"" id "\",\"ServiceID\":\"s1\",\"Slot\":" #slot                 \
	",\"NodeID\":\"node1abcdefghijk\","                                       \
	"\"DesiredState\":\"" desired "\",\"CreatedAt\":\"" created "\","         \
	"\"Spec\":{\"ContainerSpec\":{\"Image\":\"busybox:latest@sha256:abc\"}}," \
	"\"Status\":{\"State\":\"" state "\",\"Timestamp\":\"2024-01-01T00:00:00.5Z\"" extra "}}"

static void test_progress_text(void **state)
{
	json_t *svc =
		json_loads("{\"ID\":\"s1\",\"Spec\":{\"Name\":\"web\",\"Mode\":{\"Replicated\":"
			   "{\"Replicas\":3}}}}",
			   0, NULL);
	/* Slot 1 has an old failed task and its running replacement; slot 3 waits. */
	json_t *tasks = json_loads(
		"[" TASK("t1old", 1, "shutdown", "failed", "2024-01-01T00:00:00Z", ",\"Err\":\"task: non-zero exit (1)\"") "," TASK(
			"t1", 1, "running", "running", "2024-01-01T00:00:01Z",
			"") "," TASK("t2", 2, "running", "preparing", "2024-01-01T00:00:01Z",
				     "") "," TASK("t3", 3, "running", "pending",
						  "2024-01-01T00:00:01Z",
						  ",\"Err\":\"no suitable node (insufficient resources on 1 node)\"") "]",
		0, NULL);
	assert_non_null(tasks);
	bool converged = true;
	char *text = cli_service_progress_text(svc, tasks, &converged);
	assert_non_null(text);
	assert_false(converged);
	assert_string_equal(text,
			    "overall progress: 1 out of 3 tasks\n"
			    "1/3: running\n"
			    "2/3: preparing\n"
			    "3/3: pending: no suitable node (insufficient resources on 1 node)\n");
	free(text);
	json_decref(tasks);

	tasks = json_loads(
		"[" TASK("t1", 1, "running", "running", "2024-01-01T00:00:01Z", "") "," TASK(
			"t2", 2, "running", "running", "2024-01-01T00:00:01Z",
			"") "," TASK("t3", 3, "running", "running", "2024-01-01T00:00:01Z", "") "]",
		0, NULL);
	text = cli_service_progress_text(svc, tasks, &converged);
	assert_true(converged);
	assert_string_equal(text, "overall progress: 3 out of 3 tasks\n1/3: running\n"
				  "2/3: running\n3/3: running\n");
	free(text);
	json_decref(tasks);
	json_decref(svc);

	/* A global service without tasks yet waits for them. */
	svc = json_loads("{\"ID\":\"g\",\"Spec\":{\"Mode\":{\"Global\":{}}}}", 0, NULL);
	tasks = json_array();
	text = cli_service_progress_text(svc, tasks, &converged);
	assert_false(converged);
	assert_string_equal(text, "overall progress: waiting for new tasks\n");
	free(text);
	json_decref(tasks);
	tasks = json_loads("[{\"ID\":\"t\",\"NodeID\":\"node1abcdefghijk\",\"DesiredState\":"
			   "\"running\",\"Status\":{\"State\":\"running\"}}]",
			   0, NULL);
	text = cli_service_progress_text(svc, tasks, &converged);
	assert_true(converged);
	assert_string_equal(text, "overall progress: 1 out of 1 tasks\nnode1abcdefg: running\n");
	free(text);
	json_decref(tasks);
	json_decref(svc);

	/* During an update only tasks of the new TaskTemplate count. */
	svc = json_loads("{\"ID\":\"s1\",\"Spec\":{\"Name\":\"web\",\"Mode\":{\"Replicated\":"
			 "{\"Replicas\":2}},\"TaskTemplate\":{\"ContainerSpec\":{\"Image\":"
			 "\"busybox:latest@sha256:abc\"},\"ForceUpdate\":1}}}",
			 0, NULL);
	tasks = json_loads(
		"[" TASK("old1", 1, "running", "running", "2024-01-01T00:00:01Z", "") "," TASK(
			"old2", 2, "running", "running", "2024-01-01T00:00:01Z",
			"") ","
			    "{\"ID\":\"new1\",\"ServiceID\":\"s1\",\"Slot\":1,\"DesiredState\":"
			    "\"running\",\"Spec\":{\"ContainerSpec\":{\"Image\":\"busybox:latest@"
			    "sha256:abc\"},\"ForceUpdate\":1},\"Status\":{\"State\":\"starting\"}}]",
		0, NULL);
	assert_non_null(tasks);
	text = cli_service_progress_text(svc, tasks, &converged);
	assert_false(converged);
	assert_string_equal(text, "overall progress: 0 out of 2 tasks\n1/2: starting\n");
	free(text);
	json_decref(tasks);
	json_decref(svc);
}

static void test_ps_render(void **state)
{
	json_t *tasks = json_loads(
		"[" TASK("t2aaaaaaaaaaaaaaaa", 2, "running", "running", "2024-01-01T00:00:01Z", "") "," TASK(
			"t1oldaaaaaaaaaaaaa", 1, "shutdown", "failed", "2024-01-01T00:00:00Z",
			",\"Err\":\"task: non-zero exit (1) after a long while\"") "," TASK("t1aaaaaaaaaaaaaaaa",
											    1,
											    "running",
											    "running",
											    "2024-01-01T00:00:01Z",
											    "") "]",
		0, NULL);
	json_t *services = json_loads("[{\"ID\":\"s1\",\"Spec\":{\"Name\":\"web\"}}]", 0, NULL);
	json_t *nodes = json_loads(
		"[{\"ID\":\"node1abcdefghijk\",\"Description\":{\"Hostname\":\"n1\"}}]", 0, NULL);
	/* 2024-01-01T00:00:00Z + 5 s. */
	char *out = cli_service_ps_render(tasks, services, nodes, true, 1704067205);
	assert_non_null(out);
	const char *expect =
		"ID             NAME        IMAGE            NODE      DESIRED STATE   CURRENT STATE           ERROR                              PORTS\n"
		"t1aaaaaaaaaa   web.1       busybox:latest   n1        Running         Running 5 seconds ago                                      \n"
		"t1oldaaaaaaa    \\_ web.1   busybox:latest   n1        Shutdown        Failed 5 seconds ago    \"task: non-zero exit (1) after…\"   \n"
		"t2aaaaaaaaaa   web.2       busybox:latest   n1        Running         Running 5 seconds ago                                      \n";
	if (strcmp(out, expect) != 0)
		fail_msg("got:\n%s", out);
	free(out);
	/* --no-trunc: full ids, task ids in names, digests kept. */
	out = cli_service_ps_render(tasks, services, NULL, false, 1704067205);
	assert_non_null(strstr(out, "web.1.t1aaaaaaaaaaaaaaaa"));
	assert_non_null(strstr(out, "busybox:latest@sha256:abc"));
	assert_non_null(strstr(out, "node1abcdefghijk"));
	free(out);
	json_decref(tasks);
	json_decref(services);
	json_decref(nodes);
}

static void test_node_spec_edit(void **state)
{
	json_t *node =
		json_loads("{\"ID\":\"n1\",\"Version\":{\"Index\":9},\"Spec\":{\"Name\":\"\","
			   "\"Role\":\"manager\",\"Availability\":\"active\","
			   "\"Labels\":{\"zone\":\"a\",\"old\":\"x\"}}}",
			   0, NULL);
	char *add[] = {"zone=b", "ssd", NULL}, *rm[] = {"old", NULL}, err[256];
	json_t *spec = cli_node_spec_edit(node, "drain", NULL, add, rm, err, sizeof(err));
	assert_non_null(spec);
	assert_string_equal(at_str(spec, "Availability"), "drain");
	assert_string_equal(at_str(spec, "Role"), "manager");
	assert_string_equal(at_str(spec, "Labels.zone"), "b");
	assert_string_equal(at_str(spec, "Labels.ssd"), "");
	assert_null(at(spec, "Labels.old"));
	assert_string_equal(at_str(spec, "Name"), "");
	/* The node's own object is not modified. */
	assert_string_equal(at_str(node, "Spec.Labels.old"), "x");
	json_decref(spec);
	char *rm_missing[] = {"nope", NULL};
	assert_null(cli_node_spec_edit(node, NULL, NULL, NULL, rm_missing, err, sizeof(err)));
	assert_string_equal(err, "key nope doesn't exist in node's labels");
	assert_null(cli_node_spec_edit(node, "sleepy", NULL, NULL, NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "--availability"));
	assert_null(cli_node_spec_edit(node, NULL, "king", NULL, NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "--role"));
	json_decref(node);
}

/* A fake agent: one thread per connection, canned answers, a log of requests. */

#define SVC_ID "svc1aaaaaaaaaaaaaaaaaaaaa"

struct fake {
	char path[108];
	int lfd;
	pthread_t acceptor;
	pthread_mutex_t mu;
	pthread_t threads[256];
	int nthreads;
	char log[256][512];
	int nlog;
	char *create_body, *update_body, *node_body;
	int task_polls;
	bool updated;
};

static struct fake *fk;

static int read_line(int fd, char *buf, size_t size)
{
	size_t n = 0;
	while (n + 1 < size) {
		char c;
		if (read(fd, &c, 1) != 1)
			return -1;
		if (c == '\n')
			break;
		buf[n++] = c;
	}
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	buf[n] = '\0';
	return (int)n;
}

static void reply(int fd, int status, const char *body)
{
	char head[256];
	snprintf(head, sizeof(head),
		 "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
		 status, body ? strlen(body) : 0);
	send(fd, head, strlen(head), MSG_NOSIGNAL);
	if (body)
		send(fd, body, strlen(body), MSG_NOSIGNAL);
}

static const char svc_json[] =
	"{\"ID\":\"" SVC_ID "\",\"Version\":{\"Index\":%d},"
	"\"Spec\":{\"Name\":\"web\",\"TaskTemplate\":{\"ContainerSpec\":{\"Image\":\"busybox\","
	"\"Env\":[\"A=1\"]}},\"Mode\":{\"Replicated\":{\"Replicas\":%d}},"
	"\"UpdateConfig\":{\"Monitor\":1}}%s}";

#define FTASK(id, slot, state, extra)                                                           \
	"{\"ID\":\"" id "\",\"ServiceID\":\"" SVC_ID "\",\"Slot\":" #slot ",\"NodeID\":\"n1\"," \
	"\"DesiredState\":\"running\",\"Status\":{\"State\":\"" state "\"" extra "}}"

static void serve(int fd)
{
	char line[2048], method[16], path[1024];
	if (read_line(fd, line, sizeof(line)) <= 0 ||
	    sscanf(line, "%15s %1023s", method, path) != 2)
		return;
	long clen = 0;
	while (read_line(fd, line, sizeof(line)) > 0)
		if (strncasecmp(line, "Content-Length:", 15) == 0)
			clen = atol(line + 15);
	char *body = calloc(1, (size_t)clen + 1);
	for (long got = 0; got < clen;) {
		ssize_t n = read(fd, body + got, (size_t)(clen - got));
		if (n <= 0)
			break;
		got += n;
	}
	pthread_mutex_lock(&fk->mu);
	if (fk->nlog < 256)
		snprintf(fk->log[fk->nlog++], sizeof(fk->log[0]), "%s %s", method, path);
	pthread_mutex_unlock(&fk->mu);
	char out[4096];
	const char *p = path;
	if (!strcmp(method, "POST") && !strcmp(p, "/services/create?dryRun=1")) {
		reply(fd, 200,
		      "{\"Plan\":[{\"Slot\":1,\"NodeID\":\"n1aaaaaaaaaaaaaaa\",\"NodeHostname\":\"alpha\"},"
		      "{\"Slot\":2,\"Unplaced\":\"no suitable node (insufficient memory on 1 node)\"}]}");
	} else if (!strcmp(method, "POST") && !strcmp(p, "/services/create") &&
		   strstr(body, "\"Name\":\"stuck\"")) {
		reply(fd, 201, "{\"ID\":\"stuck1\",\"Warnings\":[]}");
	} else if (!strcmp(method, "POST") && !strcmp(p, "/services/create")) {
		pthread_mutex_lock(&fk->mu);
		free(fk->create_body);
		fk->create_body = strdup(body);
		pthread_mutex_unlock(&fk->mu);
		reply(fd, 201, "{\"ID\":\"" SVC_ID "\",\"Warnings\":[]}");
	} else if (!strcmp(method, "GET") &&
		   (!strcmp(p, "/services/" SVC_ID) || !strcmp(p, "/services/web"))) {
		pthread_mutex_lock(&fk->mu);
		bool updated = fk->updated;
		pthread_mutex_unlock(&fk->mu);
		snprintf(out, sizeof(out), svc_json, updated ? 8 : 7, 3,
			 updated ? ",\"UpdateStatus\":{\"State\":\"paused\",\"Message\":\"update "
				   "paused due to failure or early termination of task t9\"}"
				 : "");
		reply(fd, 200, out);
	} else if (!strcmp(method, "GET") && !strcmp(p, "/services/stuck1")) {
		reply(fd, 200,
		      "{\"ID\":\"stuck1\",\"Version\":{\"Index\":3},\"Spec\":{\"Name\":\"stuck\","
		      "\"Mode\":{\"Replicated\":{\"Replicas\":1}}}}");
	} else if (!strcmp(method, "GET") && !strcmp(p, "/services/old")) {
		reply(fd, 200,
		      "{\"ID\":\"old1\",\"Version\":{\"Index\":4},\"Spec\":{\"Name\":\"old\","
		      "\"Mode\":{\"Replicated\":{\"Replicas\":1}},\"UpdateConfig\":{\"Monitor\":1}},"
		      "\"UpdateStatus\":{\"State\":\"paused\",\"StartedAt\":\"2024-01-01T00:00:00Z\","
		      "\"Message\":\"an earlier update\"}}");
	} else if (!strcmp(method, "GET") && !strcmp(p, "/services/old1")) {
		reply(fd, 200,
		      "{\"ID\":\"old1\",\"Version\":{\"Index\":5},\"Spec\":{\"Name\":\"old\","
		      "\"Mode\":{\"Replicated\":{\"Replicas\":2}},\"UpdateConfig\":{\"Monitor\":1}},"
		      "\"UpdateStatus\":{\"State\":\"paused\",\"StartedAt\":\"2024-01-01T00:00:00Z\","
		      "\"Message\":\"an earlier update\"}}");
	} else if (!strcmp(method, "POST") && !strcmp(p, "/services/old1/update?version=4")) {
		reply(fd, 200, "{\"Warnings\":[]}");
	} else if (!strcmp(method, "GET") && !strncmp(p, "/tasks?filters=", 15) &&
		   strstr(p, "old1")) {
		reply(fd, 200,
		      "[{\"ID\":\"o1\",\"ServiceID\":\"old1\",\"Slot\":1,\"DesiredState\":\"running\","
		      "\"Status\":{\"State\":\"running\"}},{\"ID\":\"o2\",\"ServiceID\":\"old1\","
		      "\"Slot\":2,\"DesiredState\":\"running\",\"Status\":{\"State\":\"running\"}}]");
	} else if (!strcmp(method, "GET") && !strcmp(p, "/services/glob")) {
		reply(fd, 200,
		      "{\"ID\":\"glob1\",\"Version\":{\"Index\":3},\"Spec\":{\"Name\":\"glob\","
		      "\"Mode\":{\"Global\":{}}}}");
	} else if (!strcmp(method, "GET") && !strncmp(p, "/tasks?filters=", 15) &&
		   strstr(p, "stuck1")) {
		reply(fd, 200,
		      "[{\"ID\":\"tk\",\"ServiceID\":\"stuck1\",\"Slot\":1,\"DesiredState\":\"running\","
		      "\"Status\":{\"State\":\"pending\",\"Err\":\"no suitable node (1 node not "
		      "available for new tasks)\"}}]");
	} else if (!strcmp(method, "GET") && !strncmp(p, "/tasks?filters=", 15) &&
		   !strstr(p, "_up-to-date")) {
		/* The whole history: what explains a paused update. */
		reply(fd, 200,
		      "[" FTASK(
			      "ta", 1, "running",
			      "") ",{\"ID\":\"t9\",\"Slot\":2,\"ServiceID\":\"" SVC_ID
				  "\",\"DesiredState\":\"shutdown\",\"Status\":{\"State\":\"rejected\","
				  "\"Err\":\"No such image: nope\"}}]");
	} else if (!strcmp(method, "GET") && !strncmp(p, "/tasks?filters=", 15)) {
		pthread_mutex_lock(&fk->mu);
		int n = fk->task_polls++;
		pthread_mutex_unlock(&fk->mu);
		if (n == 0)
			reply(fd, 200,
			      "[" FTASK("ta", 1, "running", "") "," FTASK("tb", 2, "preparing", "") "," FTASK(
				      "tc", 3, "pending",
				      ",\"Err\":\"no suitable node (insufficient memory on 1 node)\"") "]");
		else
			reply(fd, 200,
			      "[" FTASK("ta", 1, "running",
					"") "," FTASK("tb", 2, "running",
						      "") "," FTASK("tc", 3, "running", "") "]");
	} else if (!strcmp(method, "POST") && !strcmp(p, "/services/" SVC_ID "/update?version=7")) {
		pthread_mutex_lock(&fk->mu);
		free(fk->update_body);
		fk->update_body = strdup(body);
		fk->updated = true;
		pthread_mutex_unlock(&fk->mu);
		reply(fd, 200, "{\"Warnings\":[]}");
	} else if (!strcmp(method, "POST") && !strncmp(p, "/services/" SVC_ID "/update?", 31)) {
		reply(fd, 409,
		      "{\"message\":\"update out of sequence: the service changed since version "
		      "was read (now 8); read it again\"}");
	} else if (!strcmp(method, "GET") && !strcmp(p, "/services?status=true")) {
		reply(fd, 200,
		      "[{\"ID\":\"" SVC_ID "\",\"Spec\":{\"Name\":\"web\",\"TaskTemplate\":{"
		      "\"ContainerSpec\":{\"Image\":\"busybox:latest@sha256:abc\"},\"Placement\":{"
		      "\"MaxReplicas\":2}},\"Mode\":{\"Replicated\":{\"Replicas\":3}}},"
		      "\"Endpoint\":{\"Ports\":[{\"Protocol\":\"tcp\",\"TargetPort\":80,"
		      "\"PublishedPort\":8080,\"PublishMode\":\"ingress\"},{\"Protocol\":\"udp\","
		      "\"TargetPort\":53,\"PublishedPort\":53,\"PublishMode\":\"host\"}]},"
		      "\"ServiceStatus\":{\"RunningTasks\":2,\"DesiredTasks\":3}},"
		      "{\"ID\":\"glob1aaaaaaaaaaaaaaaaaaaa\",\"Spec\":{\"Name\":\"agent\",\"TaskTemplate\":{"
		      "\"ContainerSpec\":{\"Image\":\"busybox\"}},\"Mode\":{\"Global\":{}}},"
		      "\"ServiceStatus\":{\"RunningTasks\":1,\"DesiredTasks\":1}}]");
	} else if (!strcmp(method, "GET") &&
		   !strcmp(p,
			   "/services/web/logs?stdout=1&stderr=1&follow=1&tail=5&timestamps=1")) {
		const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: "
				    "application/vnd.docker.multiplexed-stream\r\n\r\n";
		send(fd, head, strlen(head), MSG_NOSIGNAL);
		const char *msgs[] = {"web.1.ta@n1    | hello\n", "web.2.tb@n1    | oops\n"};
		for (int k = 0; k < 2; k++) {
			char fr[128];
			size_t n = strlen(msgs[k]);
			fr[0] = (char)(k + 1);
			fr[1] = fr[2] = fr[3] = 0;
			fr[4] = fr[5] = fr[6] = 0;
			fr[7] = (char)n;
			memcpy(fr + 8, msgs[k], n);
			send(fd, fr, n + 8, MSG_NOSIGNAL);
		}
	} else if (!strcmp(method, "GET") && !strcmp(p, "/info")) {
		reply(fd, 200,
		      "{\"ID\":\"n1aaaaaaaaaaaaaaa\",\"Swarm\":{\"NodeID\":\"n1aaaaaaaaaaaaaaa\"}}");
	} else if (!strcmp(method, "GET") && !strcmp(p, "/nodes")) {
		reply(fd, 200,
		      "[{\"ID\":\"n2bbbbbbbbbbbbbbb\",\"Spec\":{\"Availability\":\"drain\",\"Role\":\"worker\"},"
		      "\"Description\":{\"Hostname\":\"beta\",\"Engine\":{\"EngineVersion\":\"0.1\"}},"
		      "\"Status\":{\"State\":\"down\"}},"
		      "{\"ID\":\"n1aaaaaaaaaaaaaaa\",\"Spec\":{\"Availability\":\"active\",\"Role\":\"manager\"},"
		      "\"Description\":{\"Hostname\":\"alpha\",\"Engine\":{\"EngineVersion\":\"0.1\"}},"
		      "\"Status\":{\"State\":\"ready\"},\"ManagerStatus\":{\"Leader\":true,"
		      "\"Reachability\":\"reachable\"}}]");
	} else if (!strcmp(method, "GET") && !strcmp(p, "/nodes/n1aaaaaaaaaaaaaaa")) {
		reply(fd, 200,
		      "{\"ID\":\"n1aaaaaaaaaaaaaaa\",\"Version\":{\"Index\":9},\"Spec\":{\"Availability\":"
		      "\"active\",\"Role\":\"manager\",\"Labels\":{\"zone\":\"a\"}}}");
	} else if (!strcmp(method, "POST") &&
		   !strcmp(p, "/nodes/n1aaaaaaaaaaaaaaa/update?version=9")) {
		pthread_mutex_lock(&fk->mu);
		free(fk->node_body);
		fk->node_body = strdup(body);
		pthread_mutex_unlock(&fk->mu);
		reply(fd, 200, NULL);
	} else {
		reply(fd, 404, "{\"message\":\"not found\"}");
	}
	free(body);
}

static void *conn_thread(void *arg)
{
	int fd = (int)(intptr_t)arg;
	serve(fd);
	close(fd);
	return NULL;
}

static void *acceptor(void *arg)
{
	for (;;) {
		int fd = accept4(fk->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			return NULL;
		pthread_mutex_lock(&fk->mu);
		int i = fk->nthreads < 256 ? fk->nthreads++ : -1;
		pthread_mutex_unlock(&fk->mu);
		if (i < 0 ||
		    pthread_create(&fk->threads[i], NULL, conn_thread, (void *)(intptr_t)fd) != 0)
			close(fd);
	}
}

static int setup(void **state)
{
	fk = calloc(1, sizeof(*fk));
	pthread_mutex_init(&fk->mu, NULL);
	snprintf(fk->path, sizeof(fk->path), "/tmp/test-cli-svc-%d-%ld.sock", getpid(), random());
	unlink(fk->path);
	fk->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	strcpy(sa.sun_path, fk->path);
	if (bind(fk->lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fk->lfd, 64) < 0)
		return -1;
	pthread_create(&fk->acceptor, NULL, acceptor, NULL);
	cli_service_set_wait_limit(0);
	return 0;
}

static int teardown(void **state)
{
	shutdown(fk->lfd, SHUT_RDWR);
	pthread_join(fk->acceptor, NULL);
	for (int i = 0; i < fk->nthreads; i++)
		pthread_join(fk->threads[i], NULL);
	close(fk->lfd);
	unlink(fk->path);
	free(fk->create_body);
	free(fk->update_body);
	free(fk->node_body);
	pthread_mutex_destroy(&fk->mu);
	free(fk);
	fk = NULL;
	return 0;
}

static char *slurp(int fd)
{
	lseek(fd, 0, SEEK_SET);
	char *buf = calloc(1, 65536);
	ssize_t n = read(fd, buf, 65535);
	buf[n > 0 ? n : 0] = '\0';
	close(fd);
	return buf;
}

/* Runs `shoal -H unix://<fake> args...`, capturing stdout and stderr. */
static int run_cli(char **ret_out, char **ret_err, ...)
{
	char host[200];
	snprintf(host, sizeof(host), "unix://%s", fk->path);
	char *argv[64] = {"shoal", "-H", host};
	int argc = 3;
	va_list ap;
	va_start(ap, ret_err);
	for (const char *a; (a = va_arg(ap, const char *));)
		argv[argc++] = (char *)a;
	va_end(ap);
	char outp[] = "/tmp/test-cli-svc-outXXXXXX", errp[] = "/tmp/test-cli-svc-errXXXXXX";
	int ofd = mkstemp(outp), efd = mkstemp(errp);
	unlink(outp);
	unlink(errp);
	fflush(stdout);
	fflush(stderr);
	int s1 = dup(1), s2 = dup(2);
	dup2(ofd, 1);
	dup2(efd, 2);
	int rc = cli_main(argc, argv);
	fflush(stdout);
	fflush(stderr);
	dup2(s1, 1);
	dup2(s2, 2);
	close(s1);
	close(s2);
	*ret_out = slurp(ofd);
	*ret_err = slurp(efd);
	return rc;
}

static int log_count(const char *prefix)
{
	int n = 0;
	pthread_mutex_lock(&fk->mu);
	for (int i = 0; i < fk->nlog; i++)
		n += !strncmp(fk->log[i], prefix, strlen(prefix));
	pthread_mutex_unlock(&fk->mu);
	return n;
}

/* Requests whose line contains every one of the given strings. */
static int log_count_all(const char *a, const char *b, const char *c)
{
	int n = 0;
	pthread_mutex_lock(&fk->mu);
	for (int i = 0; i < fk->nlog; i++)
		n += strstr(fk->log[i], a) && strstr(fk->log[i], b) && strstr(fk->log[i], c);
	pthread_mutex_unlock(&fk->mu);
	return n;
}

static bool log_has_exact(const char *line)
{
	bool found = false;
	pthread_mutex_lock(&fk->mu);
	for (int i = 0; i < fk->nlog; i++)
		found |= strcmp(fk->log[i], line) == 0;
	pthread_mutex_unlock(&fk->mu);
	return found;
}

static void test_create_progress_converges(void **state)
{
	char *out, *err;
	int rc = run_cli(&out, &err, "service", "create", "--name", "web", "--replicas", "3", "-p",
			 "8080:80", "busybox", "httpd", "-f", NULL);
	if (rc != 0)
		fail_msg("rc=%d out=%s err=%s", rc, out, err);
	json_t *body = json_loads(fk->create_body, 0, NULL);
	assert_non_null(body);
	assert_string_equal(at_str(body, "Name"), "web");
	assert_int_equal(at_int(body, "Mode.Replicated.Replicas"), 3);
	assert_int_equal(at_int(body, "EndpointSpec.Ports.0.PublishedPort"), 8080);
	assert_string_equal(at_str(body, "TaskTemplate.ContainerSpec.Args.1"), "-f");
	json_decref(body);
	/* The id first, then the progress, the pending task's reason, and convergence. */
	assert_true(!strncmp(out, SVC_ID "\n", strlen(SVC_ID) + 1));
	assert_non_null(strstr(out, "overall progress: 1 out of 3 tasks\n"));
	assert_non_null(strstr(out, "2/3: preparing\n"));
	assert_non_null(
		strstr(out, "3/3: pending: no suitable node (insufficient memory on 1 node)\n"));
	assert_non_null(strstr(out, "overall progress: 3 out of 3 tasks\n"));
	assert_non_null(strstr(out, "3/3: running\n"));
	assert_non_null(strstr(out, "verify: Service converged\n"));
	assert_true(strstr(out, "3/3: pending") < strstr(out, "3/3: running"));
	/* Changed lines only: slot 1 ran from the start and is printed once. */
	const char *first = strstr(out, "1/3: running\n");
	assert_non_null(first);
	assert_null(strstr(first + 1, "1/3: running\n"));
	/* Polled with docker's filters. */
	assert_true(log_count_all("GET /tasks?filters=", "%22_up-to-date%22",
				  "%22service%22:%7B%22" SVC_ID "%22:true%7D") >= 2);
	free(out);
	free(err);

	/* -d: the id and nothing else. */
	rc = run_cli(&out, &err, "service", "create", "-d", "busybox", NULL);
	assert_int_equal(rc, 0);
	assert_string_equal(out, SVC_ID "\n");
	free(out);
	free(err);
}

static void test_create_dry_run(void **state)
{
	char *out, *err;
	int rc = run_cli(&out, &err, "service", "create", "--dry-run", "--replicas", "2", "busybox",
			 NULL);
	assert_int_equal(rc, 0);
	assert_int_equal(log_count("POST /services/create?dryRun=1"), 1);
	assert_false(log_has_exact("POST /services/create"));
	const char *expect = "SLOT      NODE ID        NODE      UNPLACED\n"
			     "1         n1aaaaaaaaaa   alpha     \n"
			     "2                                  no suitable node (insufficient "
			     "memory on 1 node)\n";
	if (strncmp(out, expect, strlen(expect)) != 0)
		fail_msg("got:\n%s", out);
	assert_non_null(strstr(out, "1 of 2 tasks cannot be placed\n"));
	free(out);
	free(err);
}

static void test_create_stuck_times_out(void **state)
{
	cli_service_set_wait_limit(500000000);
	char *out, *err;
	int rc = run_cli(&out, &err, "service", "create", "--name", "stuck", "busybox", NULL);
	cli_service_set_wait_limit(0);
	assert_int_equal(rc, 1);
	assert_true(!strncmp(out, "stuck1\n", 7));
	assert_non_null(strstr(out, "1/1: pending: no suitable node (1 node not available for "
				    "new tasks)\n"));
	assert_non_null(strstr(err, "service stuck did not converge within 0 seconds: 0 out of 1 "
				    "tasks running\n"));
	assert_non_null(strstr(err, "  1/1: pending: no suitable node (1 node not available for "
				    "new tasks)\n"));
	assert_null(strstr(out, "verify:"));
	free(out);
	free(err);
}

static void test_update_flow_and_stale_version(void **state)
{
	char *out, *err;
	/* The fake answers the update with a paused UpdateStatus: reported, exit 1. */
	int rc = run_cli(&out, &err, "service", "update", "--env-add", "B=2", "--force", "web",
			 NULL);
	assert_int_equal(rc, 1);
	json_t *body = json_loads(fk->update_body, 0, NULL);
	assert_non_null(body);
	assert_string_equal(at_str(body, "TaskTemplate.ContainerSpec.Env.0"), "A=1");
	assert_string_equal(at_str(body, "TaskTemplate.ContainerSpec.Env.1"), "B=2");
	assert_int_equal(at_int(body, "TaskTemplate.ForceUpdate"), 1);
	json_decref(body);
	assert_string_equal(out, "web\n");
	assert_string_equal(err, "service update paused: update paused due to failure or early "
				 "termination of task t9\n"
				 "  task t9 (slot 2): rejected: No such image: nope\n");
	free(out);
	free(err);

	/* Now the service is at version 8 while the fake accepts only 7: the daemon's 409. */
	rc = run_cli(&out, &err, "service", "scale", "-d", "web=5", NULL);
	assert_int_equal(rc, 1);
	assert_string_equal(err, "Error response from daemon: update out of sequence: the service "
				 "changed since version was read (now 8); read it again\n");
	assert_string_equal(out, "");
	free(out);
	free(err);

	/* Rollback asks the daemon for the previous spec. */
	rc = run_cli(&out, &err, "service", "rollback", "-d", "web", NULL);
	assert_int_equal(rc, 1);
	assert_int_equal(log_count("POST /services/" SVC_ID "/update?version=8&rollback=previous"),
			 1);
	free(out);
	free(err);
}

static void test_scale_errors_and_wait(void **state)
{
	/* A pause left by an earlier update is not this scale's outcome. */
	char *o, *e;
	int r = run_cli(&o, &e, "service", "scale", "old=2", NULL);
	if (r != 0)
		fail_msg("rc=%d out=%s err=%s", r, o, e);
	assert_non_null(strstr(o, "old scaled to 2\n"));
	assert_non_null(strstr(o, "overall progress: 2 out of 2 tasks\n"));
	assert_non_null(strstr(o, "verify: Service converged\n"));
	assert_string_equal(e, "");
	free(o);
	free(e);

	char *out, *err;
	int rc = run_cli(&out, &err, "service", "scale", "glob=2", NULL);
	assert_int_equal(rc, 1);
	assert_string_equal(err, "glob: scale can only be used with replicated or replicated-job "
				 "mode\n");
	free(out);
	free(err);
	/* Bad arguments stop everything before any request. */
	int before = log_count("GET /services/");
	rc = run_cli(&out, &err, "service", "scale", "web=2", "web", NULL);
	assert_int_equal(rc, 125);
	assert_non_null(strstr(err, "invalid scale specifier 'web'"));
	assert_int_equal(log_count("GET /services/"), before);
	free(out);
	free(err);
}

static void test_node_ls_and_update(void **state)
{
	char *out, *err;
	int rc = run_cli(&out, &err, "node", "ls", NULL);
	assert_int_equal(rc, 0);
	assert_string_equal(
		out,
		"ID                    HOSTNAME   STATUS    AVAILABILITY   MANAGER STATUS   ENGINE VERSION\n"
		"n1aaaaaaaaaaaaaaa *   alpha      Ready     Active         Leader           0.1\n"
		"n2bbbbbbbbbbbbbbb     beta       Down      Drain                           0.1\n");
	free(out);
	free(err);
	rc = run_cli(&out, &err, "node", "update", "--availability", "drain", "--label-add",
		     "disk=ssd", "--label-rm", "zone", "self", NULL);
	if (rc != 0)
		fail_msg("rc=%d err=%s", rc, err);
	json_t *body = json_loads(fk->node_body, 0, NULL);
	assert_non_null(body);
	assert_string_equal(at_str(body, "Availability"), "drain");
	assert_string_equal(at_str(body, "Role"), "manager");
	assert_string_equal(at_str(body, "Labels.disk"), "ssd");
	assert_null(at(body, "Labels.zone"));
	json_decref(body);
	free(out);
	free(err);
}

static void test_ls_and_logs(void **state)
{
	char *out, *err;
	int rc = run_cli(&out, &err, "service", "ls", NULL);
	assert_int_equal(rc, 0);
	assert_string_equal(
		out,
		"ID             NAME      MODE         REPLICAS               IMAGE            PORTS\n"
		"svc1aaaaaaaa   web       replicated   2/3 (max 2 per node)   busybox:latest   *:8080->80/tcp\n"
		"glob1aaaaaaa   agent     global       1/1                    busybox          \n");
	free(out);
	free(err);
	rc = run_cli(&out, &err, "service", "ls", "-q", NULL);
	assert_string_equal(out, SVC_ID "\nglob1aaaaaaaaaaaaaaaaaaaa\n");
	free(out);
	free(err);
	rc = run_cli(&out, &err, "service", "logs", "-f", "--tail", "5", "-t", "web", NULL);
	assert_int_equal(rc, 0);
	assert_string_equal(out, "web.1.ta@n1    | hello\n");
	assert_string_equal(err, "web.2.tb@n1    | oops\n");
	free(out);
	free(err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_network_and_mount_forms),
		cmocka_unit_test(test_create_flags),
		cmocka_unit_test(test_create_flag_errors),
		cmocka_unit_test(test_update_edits),
		cmocka_unit_test(test_scale_parse),
		cmocka_unit_test(test_progress_text),
		cmocka_unit_test(test_ps_render),
		cmocka_unit_test(test_node_spec_edit),
		cmocka_unit_test_setup_teardown(test_create_progress_converges, setup, teardown),
		cmocka_unit_test_setup_teardown(test_create_dry_run, setup, teardown),
		cmocka_unit_test_setup_teardown(test_create_stuck_times_out, setup, teardown),
		cmocka_unit_test_setup_teardown(test_update_flow_and_stale_version, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_scale_errors_and_wait, setup, teardown),
		cmocka_unit_test_setup_teardown(test_node_ls_and_update, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ls_and_logs, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
