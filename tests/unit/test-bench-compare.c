// SPDX-License-Identifier: Apache-2.0
/* `shoal bench compare` on a recorded `shoal bench http` result (a real run
 * against shoal-bench-httpd on loopback) and on results of the other suites'
 * shapes: a 20% regression is flagged, a 1% change is not. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include <cmocka.h>

#include "bench/bench-results.h"
#include "bench/bench.h"

static json_t *recorded(void)
{
	char err[512];
	json_t *j =
		bench_results_load(BENCH_DATA_DIR "/bench-http-recorded.json", err, sizeof(err));
	if (!j)
		fail_msg("%s", err);
	return j;
}

/* Scales throughput by 1/f and every latency by f, in the totals and in the
 * rounds alike (so the noise stays what the recording measured). */
static void scale(json_t *v, double f)
{
	json_object_set_new(v, "per_sec",
			    json_real(json_real_value(json_object_get(v, "per_sec")) / f));
	const char *k;
	json_t *x;
	json_object_foreach(json_object_get(v, "latency_us"), k, x)
	{
		if (strcmp(k, "count") != 0)
			json_object_set_new(json_object_get(v, "latency_us"), k,
					    json_real(json_number_value(x) * f));
	}
	size_t i;
	json_t *r;
	json_array_foreach(json_object_get(v, "rounds"), i, r)
	{
		json_object_set_new(r, "per_sec",
				    json_real(json_real_value(json_object_get(r, "per_sec")) / f));
		const char *keys[] = {"p50_us", "p99_us", "max_us"};
		for (size_t j = 0; j < 3; j++)
			json_object_set_new(
				r, keys[j],
				json_real(json_number_value(json_object_get(r, keys[j])) * f));
	}
}

static json_t *row(json_t *rows, const char *figure)
{
	size_t i;
	json_t *r;
	json_array_foreach(rows, i, r)
	{
		if (strcmp(json_string_value(json_object_get(r, "figure")), figure) == 0)
			return r;
	}
	fail_msg("no row %s", figure);
	return NULL;
}

static const char *verdict(json_t *rows, const char *figure)
{
	return json_string_value(json_object_get(row(rows, figure), "verdict"));
}

static void test_http_20pct_flagged(void **state)
{
	json_t *a = recorded(), *b = json_deep_copy(a);
	scale(json_array_get(json_object_get(b, "variants"), 0), 1.2);
	int reg = -1;
	char err[256];
	json_t *rows = bench_compare_results(a, b, 10, &reg, err, sizeof(err));
	assert_non_null(rows);
	/* the recording's per_sec rounds spread by less than 20%: beyond the noise */
	json_t *tp = row(rows, "variants.http.per_sec");
	assert_true(json_real_value(json_object_get(tp, "noise_pct")) < 16.6);
	assert_string_equal(verdict(rows, "variants.http.per_sec"), "regression");
	assert_true(fabs(json_real_value(json_object_get(tp, "change_pct")) + 16.67) < 0.1);
	/* figures without rounds are judged by the threshold alone: +20% > 10% */
	assert_string_equal(verdict(rows, "variants.http.latency_us.p99_9"), "regression");
	assert_string_equal(verdict(rows, "variants.http.latency_us.mean"), "regression");
	assert_true(reg >= 3);
	json_decref(rows);
	/* the other way round it is an improvement, not a regression */
	rows = bench_compare_results(b, a, 10, &reg, err, sizeof(err));
	assert_int_equal(reg, 0);
	assert_string_equal(verdict(rows, "variants.http.per_sec"), "better");
	json_decref(rows);
	json_decref(a);
	json_decref(b);
}

static void test_http_1pct_not_flagged(void **state)
{
	json_t *a = recorded(), *b = json_deep_copy(a);
	scale(json_array_get(json_object_get(b, "variants"), 0), 1.01);
	int reg = -1;
	char err[256];
	json_t *rows = bench_compare_results(a, b, 10, &reg, err, sizeof(err));
	assert_non_null(rows);
	assert_int_equal(reg, 0);
	size_t i;
	json_t *r;
	json_array_foreach(rows, i, r)
	{
		assert_string_equal(json_string_value(json_object_get(r, "verdict")), "same");
	}
	/* a 0.5% threshold still does not flag what the rounds' noise covers */
	json_decref(rows);
	rows = bench_compare_results(a, b, 0.5, &reg, err, sizeof(err));
	assert_string_equal(verdict(rows, "variants.http.per_sec"), "same");
	json_decref(rows);
	json_decref(a);
	json_decref(b);
}

/* `bench lb` and `bench start` shapes: no rounds, the threshold judges. */
static void test_other_suites(void **state)
{
	const char *fmt = "{s:i, s:s, s:{s:{s:f, s:f, s:f}}, s:{s:{s:f}}, s:{s:{s:f}}}";
	json_t *a =
		json_pack(fmt, "schema_version", 1, "suite", "lb", "shoal", "keepalive", "per_sec",
			  50000.0, "p50_us", 100.0, "p99_us", 300.0, "ratio_to_direct", "shoal",
			  "keepalive", 0.95, "config", "x", "runs", 9.0);
	json_t *b20 =
		json_pack(fmt, "schema_version", 1, "suite", "lb", "shoal", "keepalive", "per_sec",
			  40000.0, "p50_us", 100.0, "p99_us", 300.0, "ratio_to_direct", "shoal",
			  "keepalive", 0.95, "config", "x", "runs", 1.0);
	json_t *b1 =
		json_pack(fmt, "schema_version", 1, "suite", "lb", "shoal", "keepalive", "per_sec",
			  49500.0, "p50_us", 101.0, "p99_us", 303.0, "ratio_to_direct", "shoal",
			  "keepalive", 0.9405, "config", "x", "runs", 1.0);
	int reg = -1;
	char err[256];
	json_t *rows = bench_compare_results(a, b20, 10, &reg, err, sizeof(err));
	assert_int_equal(reg, 1);
	assert_string_equal(verdict(rows, "shoal.keepalive.per_sec"), "regression");
	assert_string_equal(verdict(rows, "shoal.keepalive.p99_us"), "same");
	/* settings are not figures */
	assert_int_equal(json_array_size(rows), 4);
	json_decref(rows);
	rows = bench_compare_results(a, b1, 10, &reg, err, sizeof(err));
	assert_int_equal(reg, 0);
	json_decref(rows);
	/* a different suite is an error that says so */
	json_object_set_new(b1, "suite", json_string("start"));
	assert_null(bench_compare_results(a, b1, 10, &reg, err, sizeof(err)));
	assert_non_null(strstr(err, "different suites (lb and start)"));
	json_decref(a);
	json_decref(b20);
	json_decref(b1);
}

static void test_load_errors(void **state)
{
	char err[512], path[] = "/tmp/test-bench-compare-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	dprintf(fd, "{\"schema_version\": 99, \"suite\": \"http\"}");
	close(fd);
	assert_null(bench_results_load(path, err, sizeof(err)));
	assert_non_null(strstr(err, "schema version 99 is newer"));
	fd = open(path, O_WRONLY | O_TRUNC);
	dprintf(fd, "[1, 2]");
	close(fd);
	assert_null(bench_results_load(path, err, sizeof(err)));
	assert_non_null(strstr(err, "not a result"));
	unlink(path);
	assert_null(bench_results_load("/nonexistent/x.json", err, sizeof(err)));
	assert_non_null(strstr(err, "No such file"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_http_20pct_flagged),
		cmocka_unit_test(test_http_1pct_not_flagged),
		cmocka_unit_test(test_other_suites),
		cmocka_unit_test(test_load_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
