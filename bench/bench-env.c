// SPDX-License-Identifier: Apache-2.0
/* The environment a result was measured in, stamped into every suite's JSON:
 * a figure without its machine, kernel and data plane cannot be compared. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "bench/bench.h"
#include "cli/cli.h"
#include "lib/cleanup.h"
#include "lib/util.h"

extern const char bench_commit[];

/* /proc/self/cmdline is at most a page for any command a person types; past
 * that the command is cut (and says so). */
#define ENV_CMDLINE_MAX 65536

static json_t *cpu_model(void)
{
	FILE *f = fopen("/proc/cpuinfo", "re");
	if (!f)
		return json_null();
	char line[512];
	json_t *r = NULL;
	while (!r && fgets(line, sizeof(line), f)) {
		if (strncmp(line, "model name", 10) != 0)
			continue;
		char *v = strchr(line, ':');
		if (!v)
			continue;
		v++;
		while (*v == ' ' || *v == '\t')
			v++;
		v[strcspn(v, "\n")] = '\0';
		r = json_string(v);
	}
	fclose(f);
	return r ? r : json_null();
}

static json_int_t mem_total_bytes(void)
{
	FILE *f = fopen("/proc/meminfo", "re");
	if (!f)
		return 0;
	char line[256];
	json_int_t kib = 0;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "MemTotal:", 9) == 0) {
			kib = strtoll(line + 9, NULL, 10);
			break;
		}
	fclose(f);
	return kib * 1024;
}

static json_t *command_line(void)
{
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	json_t *a = json_array();
	if (!a || read_file("/proc/self/cmdline", ENV_CMDLINE_MAX, &buf, &len) < 0)
		return a;
	for (size_t off = 0; off < len; off += strlen(buf + off) + 1)
		json_array_append_new(a, json_string(buf + off));
	return a;
}

json_t *bench_env(struct cli_ctx *ctx)
{
	struct utsname u;
	uname(&u);
	json_t *env =
		json_pack("{s:s, s:s, s:s, s:o, s:i, s:I, s:s, s:s, s:o}", "kernel", u.release,
			  "kernel_version", u.version, "machine", u.machine, "cpu_model",
			  cpu_model(), "cpus", (int)sysconf(_SC_NPROCESSORS_ONLN), "memory_bytes",
			  mem_total_bytes(), "shoal_version", SHOAL_VERSION, "shoal_commit",
			  bench_commit, "command", command_line());
	if (!env)
		return NULL;
	char t[40];
	format_rfc3339(now_ns(), t);
	json_object_set_new(env, "time", json_string(t));
	/* the data plane of the agent this CLI talks to, as `shoal info` shows it */
	if (ctx) {
		json_t *info = NULL;
		int status = 0;
		struct shoal_err err = {0};
		if (cli_call_json(ctx, "GET", "/info", NULL, &status, &info, &err) < 0 ||
		    status != 200) {
			json_object_set_new(
				env, "agent",
				json_sprintf("not reached: %s",
					     err.msg[0] ? err.msg : "GET /info failed"));
		} else {
			json_object_set_new(env, "agent", json_string(ctx->host));
			json_t *dp = json_object_get(info, "ShoalDataPlane");
			json_object_set(env, "data_plane", dp ? dp : json_null());
			json_t *dpe = json_object_get(info, "ShoalDataPlaneError");
			if (dpe)
				json_object_set(env, "data_plane_error", dpe);
			json_t *k = json_object_get(info, "KernelVersion");
			if (k)
				json_object_set(env, "agent_kernel", k);
		}
		json_decref(info);
	}
	return env;
}

int bench_result_stamp(json_t *out, const char *suite, struct cli_ctx *ctx)
{
	if (!out)
		return -EINVAL;
	if (json_object_set_new(out, "schema_version", json_integer(BENCH_SCHEMA_VERSION)) < 0 ||
	    json_object_set_new(out, "suite", json_string(suite)) < 0)
		return -ENOMEM;
	json_t *env = bench_env(ctx);
	if (!env)
		return -ENOMEM;
	return json_object_set_new(out, "env", env) < 0 ? -ENOMEM : 0;
}
