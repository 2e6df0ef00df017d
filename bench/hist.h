/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdint.h>

#include <jansson.h>

/* A latency recorder in the manner of HdrHistogram: log-linear buckets of
 * microseconds, exact below 2048 us, then 1024 sub-buckets per power of two,
 * so every recorded value is kept within 1/1024 (< 0.1%) of itself. Fixed
 * size, no allocation per value, mergeable by adding counts. */

/* The largest value kept, in microseconds: 2^36 us, about 19 hours. A larger
 * value is counted at this value (and in `clamped`); max still says the truth. */
#define BENCH_HIST_MAX_US (UINT64_C(1) << 36)
/* 2048 exact slots, then 1024 per power of two from 2^11 to 2^36. */
#define BENCH_HIST_SUB	   1024
#define BENCH_HIST_BUCKETS (36 - 11 + 1)
#define BENCH_HIST_SLOTS   (2 * BENCH_HIST_SUB + BENCH_HIST_BUCKETS * BENCH_HIST_SUB)

struct bench_hist {
	uint64_t total;
	uint64_t clamped;
	uint64_t min_us, max_us;
	double sum_us, sum_sq_us;
	uint64_t counts[BENCH_HIST_SLOTS];
};

/* The histogram is big (about 230 KiB): allocate it. NULL with errno set. */
struct bench_hist *bench_hist_new(void);
struct bench_hist *bench_hist_free(struct bench_hist *h);
void bench_hist_reset(struct bench_hist *h);
void bench_hist_record_us(struct bench_hist *h, uint64_t us);
/* Nanoseconds rounded to the nearest microsecond. */
void bench_hist_record_ns(struct bench_hist *h, int64_t ns);
/* Adds every count of from into into. */
void bench_hist_merge(struct bench_hist *into, const struct bench_hist *from);
/* The value at percentile p (0..100): the highest value equivalent to the
 * slot in which the p-th percentile falls (never above max), as
 * HdrHistogram reports it. 0 when empty. */
uint64_t bench_hist_percentile(const struct bench_hist *h, double p);
double bench_hist_mean(const struct bench_hist *h);
double bench_hist_stddev(const struct bench_hist *h);
/* {"count","min","mean","stddev","p50","p75","p90","p99","p99_9","p99_99","p99_999","max"},
 * microseconds. NULL on ENOMEM. */
json_t *bench_hist_summary(const struct bench_hist *h);
/* [[percentile, us], ...] at HdrHistogram's plotting ticks (halving the
 * distance to 100% five steps per halving) up to 99.999 and then 100: what a
 * percentile chart on a log axis draws. NULL on ENOMEM. */
json_t *bench_hist_curve(const struct bench_hist *h);
