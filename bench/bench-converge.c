// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/bench.h"
#include "cli/cli-internal.h"
#include "cli/cli.h"
#include "lib/cleanup.h"
#include "lib/util.h"

/* `shoal bench converge`: a replicated service of the test image on this node,
 * from `service create` to every task running, through the API. */

static int running_tasks(struct cli_ctx *ctx, const char *id, int *ret)
{
	char path[256];
	_cleanup_free_ char *q = NULL;
	if (asprintf(&q, "{\"service\":{\"%s\":true},\"desired-state\":{\"running\":true}}", id) <
	    0)
		return -ENOMEM;
	_cleanup_free_ char *eq = cli_escape(q);
	snprintf(path, sizeof(path), "/tasks?filters=%s", eq);
	json_t *tasks = NULL;
	int status = 0;
	struct shoal_err err = {0};
	if (cli_call_json(ctx, "GET", path, NULL, &status, &tasks, &err) < 0 || status != 200) {
		json_decref(tasks);
		return -EIO;
	}
	int n = 0;
	size_t i;
	json_t *t;
	json_array_foreach(tasks, i, t)
	{
		const char *st =
			json_string_value(json_object_get(json_object_get(t, "Status"), "State"));
		if (st && strcmp(st, "running") == 0)
			n++;
	}
	json_decref(tasks);
	*ret = n;
	return 0;
}

static int containers(struct cli_ctx *ctx, int *ret)
{
	json_t *list = NULL;
	int status = 0;
	if (cli_call_json(ctx, "GET", "/containers/json?all=1", NULL, &status, &list, NULL) < 0)
		return -EIO;
	*ret = (int)json_array_size(list);
	json_decref(list);
	return 0;
}

int bench_converge(struct cli_ctx *ctx, int argc, char **argv)
{
	enum { O_REPLICAS = 1, O_JSON, O_IMAGE };
	static const struct cli_opt opts[] = {
		{O_REPLICAS, "replicas", 0, CLI_OPT_VALUE, "int", "Replicas (default 100)"},
		{O_IMAGE, "image", 0, CLI_OPT_VALUE, "string", "Image (default busybox)"},
		{O_JSON, "json", 0, CLI_OPT_BOOL, NULL, "Print the results as JSON"},
		{0},
	};
	long replicas = 100;
	const char *image = "busybox";
	bool json = false;
	struct cli_opts p;
	cli_opts_init(&p, opts, argc, argv, false);
	int o;
	while ((o = cli_opts_next(&p)) > 0) {
		if (o == O_REPLICAS) {
			char *end;
			replicas = strtol(p.value, &end, 10);
			if (*end || replicas < 1 || replicas > 10000) {
				cli_opts_done(&p);
				return cli_usage_error(ctx, "--replicas: expected 1 to 10000");
			}
		} else if (o == O_IMAGE) {
			image = p.value;
		} else if (o == O_JSON) {
			json = cli_opts_bool(&p);
		}
	}
	if (o == CLI_OPT_HELP || o == CLI_OPT_ERROR)
		return cli_opts_fail(ctx, &p, o, "[OPTIONS]",
				     "Time a replicated service from create to every task running");
	if (p.npos > 0) {
		cli_opts_done(&p);
		return cli_usage_error(ctx, "unexpected argument");
	}
	int before = 0;
	containers(ctx, &before);
	char name[64];
	snprintf(name, sizeof(name), "bench-converge-%d", (int)getpid());
	json_t *spec = json_pack("{s:s, s:{s:{s:s, s:[s,s]}, s:{s:I}}, s:{s:{s:I}}}", "Name", name,
				 "TaskTemplate", "ContainerSpec", "Image", image, "Command",
				 "sleep", "3600", "RestartPolicy", "Delay", (json_int_t)100000000,
				 "Mode", "Replicated", "Replicas", (json_int_t)replicas);
	json_t *resp = NULL;
	int status = 0;
	struct shoal_err err = {0};
	int64_t t0 = mono_ns();
	int r = cli_call_json(ctx, "POST", "/services/create", spec, &status, &resp, &err);
	json_decref(spec);
	if (r < 0 || status != 201) {
		if (!err.msg[0] && resp)
			snprintf(err.msg, sizeof(err.msg), "creating the service: %s",
				 json_string_value(json_object_get(resp, "message")) ?: "failed");
		cli_print_err(&err);
		json_decref(resp);
		cli_opts_done(&p);
		return 1;
	}
	char id[64];
	snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(resp, "ID")) ?: "");
	json_decref(resp);
	int n = 0, rc = 0;
	int64_t first = 0, deadline = t0 + 120LL * 1000000000;
	while (mono_ns() < deadline) {
		if (running_tasks(ctx, id, &n) < 0)
			break;
		if (n > 0 && !first)
			first = mono_ns();
		if (n >= replicas)
			break;
		struct timespec ts = {0, 10 * 1000000};
		nanosleep(&ts, NULL);
	}
	int64_t t1 = mono_ns();
	/* removal, timed too: until every task container is gone */
	char path[128];
	snprintf(path, sizeof(path), "/services/%s", id);
	cli_call_json(ctx, "DELETE", path, NULL, NULL, NULL, NULL);
	int left = 0;
	while (mono_ns() < t1 + 120LL * 1000000000) {
		if (containers(ctx, &left) < 0 || left <= before)
			break;
		struct timespec ts = {0, 20 * 1000000};
		nanosleep(&ts, NULL);
	}
	int64_t t2 = mono_ns();
	if (n < replicas) {
		fprintf(stderr, "shoal bench converge: only %d of %ld tasks running after 120 s\n",
			n, replicas);
		rc = 1;
	}
	if (json) {
		json_t *out = json_pack(
			"{s:I, s:i, s:f, s:f, s:f}", "replicas", (json_int_t)replicas, "running", n,
			"first_running_s", first ? (double)(first - t0) / 1e9 : -1.0, "converged_s",
			(double)(t1 - t0) / 1e9, "removed_s", (double)(t2 - t1) / 1e9);
		bench_result_stamp(out, "converge", ctx);
		char *s = json_dumps(out, JSON_INDENT(2));
		printf("%s\n", s ? s : "{}");
		free(s);
		json_decref(out);
	} else {
		printf("shoal bench converge: %ld replicas of %s on this node\n", replicas, image);
		printf("  first task running      %8.3f s\n",
		       first ? (double)(first - t0) / 1e9 : -1.0);
		printf("  all %4d running         %8.3f s   (%.0f tasks/s)\n", n,
		       (double)(t1 - t0) / 1e9, n / ((double)(t1 - t0) / 1e9));
		printf("  service removed         %8.3f s   (all task containers gone)\n",
		       (double)(t2 - t1) / 1e9);
	}
	cli_opts_done(&p);
	return rc;
}
