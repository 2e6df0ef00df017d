// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/socket.h>

#include "bench/bench.h"
#include "cli/cli.h"

int bench_samples_add(struct bench_samples *s, int64_t ns)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		int64_t *v = realloc(s->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = ns;
	return 0;
}

void bench_samples_free(struct bench_samples *s)
{
	free(s->v);
	memset(s, 0, sizeof(*s));
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

int64_t bench_quantile(struct bench_samples *s, double q)
{
	if (s->n == 0)
		return 0;
	qsort(s->v, s->n, sizeof(*s->v), cmp_i64);
	/* nearest rank */
	size_t idx = (size_t)(q * (double)(s->n - 1) + 0.5);
	if (idx >= s->n)
		idx = s->n - 1;
	return s->v[idx];
}

json_t *bench_summary(struct bench_samples *s)
{
	return json_pack("{s:I, s:f, s:f, s:f, s:f, s:f}", "runs", (json_int_t)s->n, "median_ms",
			 (double)bench_quantile(s, 0.5) / 1e6, "p90_ms",
			 (double)bench_quantile(s, 0.9) / 1e6, "p99_ms",
			 (double)bench_quantile(s, 0.99) / 1e6, "min_ms",
			 (double)bench_quantile(s, 0.0) / 1e6, "max_ms",
			 (double)bench_quantile(s, 1.0) / 1e6);
}

int64_t bench_rss_kib(pid_t pid)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -errno;
	int64_t kib = -ENOENT;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "VmRSS:", 6) == 0) {
			kib = strtoll(line + 6, NULL, 10);
			break;
		}
	fclose(f);
	return kib;
}

pid_t bench_agent_pid(struct cli_ctx *ctx)
{
	struct cli_http *c = NULL;
	struct shoal_err err = {0};
	if (cli_connect(ctx, &c, &err) < 0)
		return -1;
	struct ucred cr;
	socklen_t len = sizeof(cr);
	pid_t pid =
		getsockopt(cli_http_fd(c), SOL_SOCKET, SO_PEERCRED, &cr, &len) == 0 ? cr.pid : -1;
	cli_http_free(c);
	return pid;
}
