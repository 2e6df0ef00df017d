/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

struct cli_ctx;

/* `shoal bench ...`: benchmarks that compare side by side in one run. */
int cli_cmd_bench(struct cli_ctx *ctx, int argc, char **argv);
int bench_start(struct cli_ctx *ctx, int argc, char **argv);
int bench_converge(struct cli_ctx *ctx, int argc, char **argv);
int bench_lb(struct cli_ctx *ctx, int argc, char **argv);

/* Latency samples in nanoseconds. */
struct bench_samples {
	int64_t *v;
	size_t n, cap;
};
int bench_samples_add(struct bench_samples *s, int64_t ns);
void bench_samples_free(struct bench_samples *s);
/* Sorts in place; q in [0, 1]. */
int64_t bench_quantile(struct bench_samples *s, double q);
/* {"runs","median_ms","p90_ms","p99_ms","min_ms","max_ms"} */
json_t *bench_summary(struct bench_samples *s);

/* The pid of the shoald serving ctx's socket (SO_PEERCRED), or -1. */
pid_t bench_agent_pid(struct cli_ctx *ctx);

/* Resident set size of a process in KiB (VmRSS), or -errno. */
int64_t bench_rss_kib(pid_t pid);
