// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "bench/bench-util.h"
#include "bench/bench.h"
#include "cli/cli-internal.h"
#include "lib/util.h"

int bench_parse_long(const char *s, long lo, long hi, long *ret)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return -EINVAL;
	*ret = v;
	return 0;
}

bool bench_num_opt(const struct bench_num_opt *t, size_t n, int o, const char *value,
		   const char **bad)
{
	for (size_t i = 0; i < n; i++) {
		if (t[i].id != o)
			continue;
		long v;
		if (bench_parse_long(value, t[i].lo, t[i].hi, &v) < 0)
			*bad = t[i].bad;
		else if (t[i].to_size)
			*t[i].to_size = (size_t)v;
		else
			*t[i].to_int = (int)v;
		return true;
	}
	return false;
}

void bench_progress(bool quiet, const char *fmt, ...)
{
	if (quiet)
		return;
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "  ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

int bench_api(struct cli_ctx *ctx, const char *method, const char *path, json_t *body, int want,
	      json_t **ret, struct shoal_err *err)
{
	int status = 0;
	json_t *j = NULL;
	if (!ctx)
		return shoal_err_set(err, ESRCH, "no agent is up");
	int r = cli_call_json(ctx, method, path, body, &status, &j, err);
	if (r < 0)
		return r;
	if (status != want) {
		shoal_err_set(err, EIO, "%s %s: the agent answered %d: %s", method, path, status,
			      json_string_value(json_object_get(j, "message")) ?: "");
		json_decref(j);
		return -EIO;
	}
	if (ret)
		*ret = j;
	else
		json_decref(j);
	return 0;
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
}

int bench_loop_until(struct event_base *base, bool (*pred)(void *self, void *arg), void *self,
		     void *arg, int64_t timeout_ns, long tick_us, volatile sig_atomic_t *stop)
{
	int64_t end = mono_ns() + timeout_ns;
	struct event *tick = evtimer_new(base, tick_cb, NULL);
	if (!tick)
		return -ENOMEM;
	int r = -ETIMEDOUT;
	while (mono_ns() < end) {
		if (pred && pred(self, arg)) {
			r = 0;
			break;
		}
		if (*stop) {
			r = -EINTR;
			break;
		}
		struct timeval tv = {tick_us / 1000000, tick_us % 1000000};
		evtimer_add(tick, &tv);
		event_base_loop(base, EVLOOP_ONCE);
	}
	event_free(tick);
	return r;
}

int bench_results_out(json_t *out, const char *suite, const char *out_path, bool json,
		      void (*print)(void *self, json_t *out), void *self)
{
	int rc = 0;
	bench_result_stamp(out, suite, NULL);
	if (out_path && json_dump_file(out, out_path, JSON_INDENT(2)) < 0) {
		fprintf(stderr, "shoal bench %s: writing %s failed\n", suite, out_path);
		rc = 1;
	}
	if (json) {
		json_dumpf(out, stdout, JSON_INDENT(2));
		putchar('\n');
	} else {
		print(self, out);
	}
	return rc;
}

int bench_opts_end(struct cli_ctx *ctx, struct cli_opts *p, int o, const char *bad,
		   const char *desc)
{
	if (bad) {
		cli_opts_done(p);
		return cli_usage_error(ctx, bad);
	}
	if (o == CLI_OPT_HELP || o == CLI_OPT_ERROR)
		return cli_opts_fail(ctx, p, o, "[OPTIONS]", desc);
	if (p->npos > 0) {
		cli_opts_done(p);
		return cli_usage_error(ctx, "unexpected argument");
	}
	return -1;
}

int bench_run_status(int r, struct shoal_err *err, volatile sig_atomic_t *stop, json_t *out,
		     const char *suite, const char *out_path, bool json,
		     void (*print)(void *self, json_t *out), void *self)
{
	if (r >= 0)
		return bench_results_out(out, suite, out_path, json, print, self);
	if (*stop)
		shoal_err_set(err, EINTR, "interrupted; everything it started is gone");
	cli_print_err(err);
	return 1;
}

bool bench_results_opt(struct cli_opts *p, int o, char *shoald, size_t len, bool *json,
		       const char **out_path)
{
	switch (o) {
	case BENCH_R_SHOALD:
		snprintf(shoald, len, "%s", p->value);
		return true;
	case BENCH_R_JSON:
		*json = cli_opts_bool(p);
		return true;
	case BENCH_R_OUT:
		*out_path = p->value;
		return true;
	}
	return false;
}

int bench_argv_vformat(char *line, size_t len, char **argv, int max, const char *fmt, va_list ap)
{
	vsnprintf(line, len, fmt, ap);
	int n = 0;
	for (char *save = NULL, *t = strtok_r(line, " ", &save); t && n < max - 1;
	     t = strtok_r(NULL, " ", &save))
		argv[n++] = t;
	argv[n] = NULL;
	return n;
}

void bench_child_prepare(const char *log, const char *netns)
{
	int in = open("/dev/null", O_RDWR | O_CLOEXEC);
	int out = log ? open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600) : in;
	if (in < 0 || out < 0)
		_exit(126);
	if (netns && *netns) {
		int ns = open(netns, O_RDONLY | O_CLOEXEC);
		if (ns < 0 || setns(ns, CLONE_NEWNET) < 0)
			_exit(125);
		close(ns);
	}
	dup2(in, 0);
	dup2(out, 1);
	dup2(out, 2);
	sigset_t all;
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
}

int bench_image_load(struct cli_ctx *ctx, const char *tar)
{
	fflush(stdout);
	int saved = dup(1), nul = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (saved >= 0 && nul >= 0)
		dup2(nul, 1);
	char *argv[] = {(char *)"load", (char *)"-q", (char *)"-i", (char *)tar, NULL};
	int rc = cli_cmd_image_load(ctx, 4, argv);
	fflush(stdout);
	if (saved >= 0) {
		dup2(saved, 1);
		close(saved);
	}
	if (nul >= 0)
		close(nul);
	return rc;
}
