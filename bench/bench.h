/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

struct cli_ctx;

/* `shoal bench ...`: benchmarks that compare side by side in one run
 * (shoal-bench's cli_bench_main). */
int bench_main(struct cli_ctx *ctx, int argc, char **argv);
int bench_start(struct cli_ctx *ctx, int argc, char **argv);
int bench_converge(struct cli_ctx *ctx, int argc, char **argv);
int bench_cluster(struct cli_ctx *ctx, int argc, char **argv);
int bench_overlay(struct cli_ctx *ctx, int argc, char **argv);
int bench_lb(struct cli_ctx *ctx, int argc, char **argv);
int bench_policy(struct cli_ctx *ctx, int argc, char **argv);
int bench_http(struct cli_ctx *ctx, int argc, char **argv);
int bench_tcp(struct cli_ctx *ctx, int argc, char **argv);
int bench_udp(struct cli_ctx *ctx, int argc, char **argv);
int bench_compare(struct cli_ctx *ctx, int argc, char **argv);
int bench_report(struct cli_ctx *ctx, int argc, char **argv);

/* Every suite's JSON carries "schema_version", "suite" and "env"; a reader
 * (`shoal bench compare`, `shoal bench report`) refuses a newer version. */
#define BENCH_SCHEMA_VERSION 1
/* Kernel, CPU model and count, memory, shoal version and commit, the exact
 * command, the time and, when ctx's agent answers GET /info, its data-plane
 * features. NULL on ENOMEM. */
json_t *bench_env(struct cli_ctx *ctx);
/* Sets out's "schema_version", "suite" and "env". 0 or -errno. */
int bench_result_stamp(json_t *out, const char *suite, struct cli_ctx *ctx);

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
