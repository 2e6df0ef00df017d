// SPDX-License-Identifier: Apache-2.0
/* The latency recorder of `shoal bench http` against distributions whose
 * percentiles are known exactly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "bench/hist.h"

/* |got - want| within the recorder's promise: 1/1024 of the value, or 1 us. */
static void assert_close(uint64_t got, uint64_t want)
{
	uint64_t tol = want / 1024 + 1;
	uint64_t d = got > want ? got - want : want - got;
	if (d > tol)
		fail_msg("got %llu, want %llu (+-%llu)", (unsigned long long)got,
			 (unsigned long long)want, (unsigned long long)tol);
}

/* 1..1000 us once each: the exact range, nearest-rank percentiles. */
static void test_exact_range(void **state)
{
	struct bench_hist *h = bench_hist_new();
	assert_non_null(h);
	for (uint64_t v = 1; v <= 1000; v++)
		bench_hist_record_us(h, v);
	assert_int_equal(bench_hist_percentile(h, 50), 500);
	assert_int_equal(bench_hist_percentile(h, 90), 900);
	assert_int_equal(bench_hist_percentile(h, 99), 990);
	assert_int_equal(bench_hist_percentile(h, 99.9), 999);
	assert_int_equal(bench_hist_percentile(h, 100), 1000);
	assert_int_equal(bench_hist_percentile(h, 0), 1);
	assert_true(bench_hist_mean(h) > 500.49 && bench_hist_mean(h) < 500.51);
	/* uniform on 1..n: sigma = sqrt((n^2 - 1) / 12) = 288.67 */
	assert_true(bench_hist_stddev(h) > 288.6 && bench_hist_stddev(h) < 288.8);
	bench_hist_free(h);
}

/* 1..1,000,000 us (to a second) once each: every percentile within 0.1%. */
static void test_uniform_wide(void **state)
{
	struct bench_hist *h = bench_hist_new();
	const uint64_t n = 1000000;
	for (uint64_t v = 1; v <= n; v++)
		bench_hist_record_us(h, v);
	const double ps[] = {25, 50, 75, 90, 99, 99.9, 99.99, 99.999};
	for (size_t i = 0; i < sizeof(ps) / sizeof(ps[0]); i++)
		assert_close(bench_hist_percentile(h, ps[i]), (uint64_t)(ps[i] / 100 * (double)n));
	assert_int_equal(bench_hist_percentile(h, 100), n);
	assert_int_equal(h->min_us, 1);
	bench_hist_free(h);
}

/* 99% at 100 us, 1% at 500 ms (a stall): p99 is the fast mode, p99.5 the stall,
 * and the value recorded in nanoseconds rounds to the microsecond. */
static void test_bimodal_ns(void **state)
{
	struct bench_hist *h = bench_hist_new();
	for (int i = 0; i < 9900; i++)
		bench_hist_record_ns(h, 100 * 1000 + 400); /* 100.4 us -> 100 */
	for (int i = 0; i < 100; i++)
		bench_hist_record_ns(h, 500 * 1000 * 1000);
	assert_int_equal(bench_hist_percentile(h, 50), 100);
	assert_int_equal(bench_hist_percentile(h, 99), 100);
	assert_close(bench_hist_percentile(h, 99.5), 500000);
	assert_close(bench_hist_percentile(h, 99.999), 500000);
	assert_int_equal(bench_hist_percentile(h, 100), 500000);
	bench_hist_free(h);
}

/* 60 s and beyond the range: the max stays exact, the clamp is counted. */
static void test_range(void **state)
{
	struct bench_hist *h = bench_hist_new();
	bench_hist_record_us(h, 60ull * 1000 * 1000);
	assert_int_equal(bench_hist_percentile(h, 50), 60ull * 1000 * 1000);
	bench_hist_record_us(h, BENCH_HIST_MAX_US * 4);
	assert_int_equal(h->clamped, 1);
	assert_int_equal(bench_hist_percentile(h, 100), BENCH_HIST_MAX_US * 4);
	assert_close(bench_hist_percentile(h, 10), 60ull * 1000 * 1000);
	bench_hist_free(h);
}

/* Two halves merged give the histogram of the whole. */
static void test_merge(void **state)
{
	struct bench_hist *a = bench_hist_new(), *b = bench_hist_new(), *all = bench_hist_new();
	srand(7);
	for (int i = 0; i < 200000; i++) {
		uint64_t v = (uint64_t)rand() % 5000000;
		bench_hist_record_us(i % 2 ? a : b, v);
		bench_hist_record_us(all, v);
	}
	bench_hist_merge(a, b);
	assert_int_equal(a->total, all->total);
	assert_int_equal(a->min_us, all->min_us);
	assert_int_equal(a->max_us, all->max_us);
	const double ps[] = {1, 50, 90, 99, 99.9, 99.99};
	for (size_t i = 0; i < sizeof(ps) / sizeof(ps[0]); i++)
		assert_int_equal(bench_hist_percentile(a, ps[i]),
				 bench_hist_percentile(all, ps[i]));
	bench_hist_free(a);
	bench_hist_free(b);
	bench_hist_free(all);
}

/* The summary and the plotting curve: monotonic, ending at 99.999 and the max. */
static void test_json(void **state)
{
	struct bench_hist *h = bench_hist_new();
	for (uint64_t v = 1; v <= 100000; v++)
		bench_hist_record_us(h, v);
	json_t *s = bench_hist_summary(h);
	assert_non_null(s);
	assert_int_equal(json_integer_value(json_object_get(s, "count")), 100000);
	assert_close((uint64_t)json_integer_value(json_object_get(s, "p99_9")), 99900);
	assert_int_equal(json_integer_value(json_object_get(s, "max")), 100000);
	json_decref(s);
	json_t *c = bench_hist_curve(h);
	assert_non_null(c);
	assert_true(json_array_size(c) > 40);
	double lastp = -1;
	json_int_t lastv = -1;
	size_t i;
	json_t *pt;
	json_array_foreach(c, i, pt)
	{
		double p = json_real_value(json_array_get(pt, 0));
		json_int_t v = json_integer_value(json_array_get(pt, 1));
		assert_true(p > lastp);
		assert_true(v >= lastv);
		lastp = p;
		lastv = v;
	}
	assert_true(lastp == 100.0);
	assert_int_equal(lastv, 100000);
	json_decref(c);
	bench_hist_reset(h);
	assert_int_equal(bench_hist_percentile(h, 99), 0);
	bench_hist_free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exact_range), cmocka_unit_test(test_uniform_wide),
		cmocka_unit_test(test_bimodal_ns),  cmocka_unit_test(test_range),
		cmocka_unit_test(test_merge),	    cmocka_unit_test(test_json),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
