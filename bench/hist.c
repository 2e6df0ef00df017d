// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench/hist.h"

struct bench_hist *bench_hist_new(void)
{
	struct bench_hist *h = malloc(sizeof(*h));
	if (!h)
		return NULL;
	bench_hist_reset(h);
	return h;
}

struct bench_hist *bench_hist_free(struct bench_hist *h)
{
	free(h);
	return NULL;
}

void bench_hist_reset(struct bench_hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min_us = UINT64_MAX;
}

static unsigned slot_of(uint64_t v)
{
	if (v < 2 * BENCH_HIST_SUB)
		return (unsigned)v;
	unsigned msb = 63u - (unsigned)__builtin_clzll(v);
	unsigned b = msb - 10; /* v >> b in [1024, 2048) */
	return 2 * BENCH_HIST_SUB + (b - 1) * BENCH_HIST_SUB +
	       (unsigned)((v >> b) - BENCH_HIST_SUB);
}

/* The highest value that lands in slot i. */
static uint64_t slot_high(unsigned i)
{
	if (i < 2 * BENCH_HIST_SUB)
		return i;
	unsigned b = (i - 2 * BENCH_HIST_SUB) / BENCH_HIST_SUB + 1;
	uint64_t sub = (i - 2 * BENCH_HIST_SUB) % BENCH_HIST_SUB + BENCH_HIST_SUB;
	return (sub << b) + ((UINT64_C(1) << b) - 1);
}

void bench_hist_record_us(struct bench_hist *h, uint64_t us)
{
	if (us < h->min_us)
		h->min_us = us;
	if (us > h->max_us)
		h->max_us = us;
	h->total++;
	h->sum_us += (double)us;
	h->sum_sq_us += (double)us * (double)us;
	if (us > BENCH_HIST_MAX_US) {
		h->clamped++;
		us = BENCH_HIST_MAX_US;
	}
	h->counts[slot_of(us)]++;
}

void bench_hist_record_ns(struct bench_hist *h, int64_t ns)
{
	bench_hist_record_us(h, ns <= 0 ? 0 : (uint64_t)(ns + 500) / 1000);
}

void bench_hist_merge(struct bench_hist *into, const struct bench_hist *from)
{
	if (!from->total)
		return;
	for (unsigned i = 0; i < BENCH_HIST_SLOTS; i++)
		into->counts[i] += from->counts[i];
	into->total += from->total;
	into->clamped += from->clamped;
	into->sum_us += from->sum_us;
	into->sum_sq_us += from->sum_sq_us;
	if (from->min_us < into->min_us)
		into->min_us = from->min_us;
	if (from->max_us > into->max_us)
		into->max_us = from->max_us;
}

uint64_t bench_hist_percentile(const struct bench_hist *h, double p)
{
	if (!h->total)
		return 0;
	if (p >= 100.0)
		return h->max_us;
	if (p < 0)
		p = 0;
	/* the rank of the p-th percentile, rounded as HdrHistogram does (a
	 * ceil() would turn 99.9% of 1000 into 1000.0000001 and rank 1000) */
	uint64_t rank = (uint64_t)(p / 100.0 * (double)h->total + 0.5);
	if (rank < 1)
		rank = 1;
	uint64_t seen = 0;
	for (unsigned i = 0; i < BENCH_HIST_SLOTS; i++) {
		seen += h->counts[i];
		if (seen >= rank) {
			uint64_t v = slot_high(i);
			if (v > h->max_us)
				v = h->max_us;
			return v < h->min_us ? h->min_us : v;
		}
	}
	return h->max_us;
}

double bench_hist_mean(const struct bench_hist *h)
{
	return h->total ? h->sum_us / (double)h->total : 0;
}

double bench_hist_stddev(const struct bench_hist *h)
{
	if (h->total < 2)
		return 0;
	double m = bench_hist_mean(h);
	double var = h->sum_sq_us / (double)h->total - m * m;
	return var > 0 ? sqrt(var) : 0;
}

json_t *bench_hist_summary(const struct bench_hist *h)
{
	return json_pack("{s:I, s:I, s:f, s:f, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "count",
			 (json_int_t)h->total, "min", (json_int_t)(h->total ? h->min_us : 0),
			 "mean", bench_hist_mean(h), "stddev", bench_hist_stddev(h), "p50",
			 (json_int_t)bench_hist_percentile(h, 50), "p75",
			 (json_int_t)bench_hist_percentile(h, 75), "p90",
			 (json_int_t)bench_hist_percentile(h, 90), "p99",
			 (json_int_t)bench_hist_percentile(h, 99), "p99_9",
			 (json_int_t)bench_hist_percentile(h, 99.9), "p99_99",
			 (json_int_t)bench_hist_percentile(h, 99.99), "p99_999",
			 (json_int_t)bench_hist_percentile(h, 99.999), "max",
			 (json_int_t)h->max_us);
}

static int curve_add(json_t *c, double p, uint64_t v)
{
	return json_array_append_new(c, json_pack("[f, I]", p, (json_int_t)v));
}

json_t *bench_hist_curve(const struct bench_hist *h)
{
	json_t *c = json_array();
	if (!c)
		return NULL;
	/* five ticks between 100 - d and 100 - d/2, d halving from 100 */
	for (double d = 100.0; 100.0 - d < 99.999; d /= 2)
		for (int j = 0; j < 5; j++) {
			double p = 100.0 - d + d / 2 * j / 5;
			if (p >= 99.999)
				break;
			if (curve_add(c, p, bench_hist_percentile(h, p)) < 0)
				goto fail;
		}
	if (curve_add(c, 99.999, bench_hist_percentile(h, 99.999)) < 0 ||
	    curve_add(c, 100.0, h->max_us) < 0)
		goto fail;
	return c;
fail:
	json_decref(c);
	return NULL;
}
