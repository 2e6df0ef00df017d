// SPDX-License-Identifier: Apache-2.0
/* `shoal bench report`'s scaling curves: a fixed chart drawn with its points
 * where the axes put them (linear and log), the curves found across results
 * that differ in --connections and inside a result that holds a series. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bench/bench-results.h"

static size_t count(const char *s, const char *needle)
{
	size_t n = 0;
	for (const char *p = strstr(s, needle); p; p = strstr(p + 1, needle))
		n++;
	return n;
}

static char *draw(json_t *chart)
{
	char *svg = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&svg, &len);
	assert_non_null(f);
	assert_int_equal(bench_curve_svg(chart, f), 0);
	fclose(f);
	return svg;
}

static void test_axis(void **state)
{
	struct bench_curve_axis a;
	/* 1 to 1000: three decades, logarithmic, whole decades */
	bench_curve_axis(1, 1000, &a);
	assert_true(a.log);
	assert_true(a.lo == 1 && a.hi == 1000);
	assert_true(bench_curve_pos(&a, 10, 0, 300) == 100);
	/* 3 to 700: log from 1 to 1000 */
	bench_curve_axis(3, 700, &a);
	assert_true(a.log && a.lo == 1 && a.hi == 1000);
	/* 10 to 80: linear from 0 to a round 100 */
	bench_curve_axis(10, 80, &a);
	assert_false(a.log);
	assert_true(a.lo == 0 && a.hi == 100);
	assert_true(bench_curve_pos(&a, 50, 0, 200) == 100);
	/* 900 to 1000 linear, from 900, not flattened from zero */
	bench_curve_axis(900, 1000, &a);
	assert_false(a.log);
	assert_true(a.lo == 900 && a.hi == 1000);
	/* a single value still has a range */
	bench_curve_axis(5, 5, &a);
	assert_true(a.hi > a.lo);
	/* zero in the data: no log axis */
	bench_curve_axis(0, 1e6, &a);
	assert_false(a.log);
}

static void test_svg_points(void **state)
{
	/* connections 1, 10, 100 (log x: 80 + {0, 0.5, 1} * 520 px), per_sec
	 * 0 to 40000 (linear y: 0..50000 over 310..20) */
	json_t *chart = json_pack(
		"{s:s, s:s, s:s, s:[{s:s, s:[[i, i], [i, i], [i, i]]}, {s:s, s:[[i, i], [i, i]]}]}",
		"title", "tcp: requests per second by connections <c>", "x", "connections", "y",
		"requests/s", "series", "name", "tcp", "points", 1, 10000, 10, 30000, 100, 40000,
		"name", "udp & co", "points", 1, 0, 100, 25000);
	assert_non_null(chart);
	char *svg = draw(chart);
	assert_int_equal(count(svg, "<svg class=\"chart curve\""), 1);
	assert_non_null(strstr(svg, "data-x-scale=\"log\" data-y-scale=\"linear\""));
	assert_int_equal(count(svg, "<polyline"), 2);
	assert_int_equal(count(svg, "<circle class=\"point\""), 5);
	/* each point at its place, with its values */
	assert_non_null(strstr(svg, "points=\"80.0,252.0 340.0,136.0 600.0,78.0\""));
	assert_non_null(strstr(svg, "cx=\"340.0\" cy=\"136.0\" r=\"3\" fill=\"#1f77b4\" "
				    "data-x=\"10\" data-y=\"30000\""));
	assert_non_null(strstr(svg, "points=\"80.0,310.0 600.0,165.0\""));
	assert_non_null(strstr(svg, "data-x=\"100\" data-y=\"25000\""));
	/* decade ticks on the log axis, round ones on the linear */
	assert_non_null(strstr(svg, ">10</text>"));
	assert_non_null(strstr(svg, ">50k</text>"));
	/* names escaped */
	assert_non_null(strstr(svg, "udp &amp; co"));
	assert_non_null(strstr(svg, "&lt;c&gt;"));
	assert_null(strstr(svg, "<c>"));
	free(svg);
	/* no points: nothing to draw */
	json_t *empty = json_pack("{s:s, s:[]}", "title", "x", "series");
	assert_int_equal(bench_curve_svg(empty, stdout), -EINVAL);
	json_decref(empty);
	json_decref(chart);
}

/* A `bench tcp`-shaped result at c connections. */
static json_t *tcp_result(int c, double per_sec, int p99)
{
	return json_pack("{s:i, s:s, s:{s:i, s:f, s:i}, s:[{s:s, s:f, s:{s:i}, s:[]}]}",
			 "schema_version", 1, "suite", "tcp", "config", "connections", c, "rate",
			 0.0, "size", 64, "variants", "name", "tcp", "per_sec", per_sec,
			 "latency_us", "p99", p99, "rounds");
}

static void test_across_results(void **state)
{
	json_t *results = json_pack("[{s:s, s:o}, {s:s, s:o}, {s:s, s:o}, {s:s, s:o}]", "label",
				    "c100", "result", tcp_result(100, 50000, 4000), "label", "c1",
				    "result", tcp_result(1, 9000, 150), "label", "c10", "result",
				    tcp_result(10, 40000, 600), "label", "sched", "result",
				    json_pack("{s:s, s:i}", "suite", "sched", "nodes", 10));
	json_t *curves = bench_results_curves(results);
	assert_non_null(curves);
	/* throughput and p99 by connections; the lone sched result makes none */
	assert_int_equal(json_array_size(curves), 2);
	json_t *tput = json_array_get(curves, 0), *p99 = json_array_get(curves, 1);
	assert_string_equal(json_string_value(json_object_get(tput, "x")), "connections");
	assert_non_null(strstr(json_string_value(json_object_get(tput, "title")), "requests"));
	json_t *pts = json_object_get(json_array_get(json_object_get(tput, "series"), 0), "points");
	/* sorted by connections */
	assert_int_equal(json_array_size(pts), 3);
	assert_true(json_number_value(json_array_get(json_array_get(pts, 0), 0)) == 1);
	assert_true(json_number_value(json_array_get(json_array_get(pts, 0), 1)) == 9000);
	assert_true(json_number_value(json_array_get(json_array_get(pts, 2), 0)) == 100);
	pts = json_object_get(json_array_get(json_object_get(p99, "series"), 0), "points");
	assert_true(json_number_value(json_array_get(json_array_get(pts, 1), 1)) == 600);
	/* the page carries them, log x (1 to 100) */
	char *html = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&html, &len);
	assert_int_equal(bench_report_html(results, f), 0);
	fclose(f);
	assert_non_null(strstr(html, "<h2>Scaling</h2>"));
	assert_int_equal(count(html, "<svg class=\"chart curve\""), 2);
	assert_int_equal(count(html, "data-x-scale=\"log\""), 2);
	assert_int_equal(count(html, "<circle class=\"point\""), 6);
	free(html);
	json_decref(curves);
	json_decref(results);
}

static void test_series_in_result(void **state)
{
	/* a result that holds a series over services loaded */
	json_t *r =
		json_pack("{s:s, s:[{s:i, s:f, s:f}, {s:i, s:f, s:f}, {s:i, s:f, s:f}]}", "suite",
			  "lb", "series", "services", 1000, "per_sec", 900.0, "update_p99_us", 30.0,
			  "services", 1, "per_sec", 1000.0, "update_p99_us", 20.0, "services", 100,
			  "per_sec", 950.0, "update_p99_us", 25.0);
	json_t *results = json_pack("[{s:s, s:o}]", "label", "lb-run", "result", r);
	json_t *curves = bench_results_curves(results);
	assert_int_equal(json_array_size(curves), 2);
	size_t i;
	json_t *ch;
	bool seen_tput = false;
	json_array_foreach(curves, i, ch)
	{
		assert_string_equal(json_string_value(json_object_get(ch, "x")), "services");
		json_t *s = json_array_get(json_object_get(ch, "series"), 0);
		assert_string_equal(json_string_value(json_object_get(s, "name")), "lb-run");
		json_t *pts = json_object_get(s, "points");
		assert_int_equal(json_array_size(pts), 3);
		if (strcmp(json_string_value(json_object_get(ch, "y")), "per_sec") == 0) {
			seen_tput = true;
			assert_true(json_number_value(json_array_get(json_array_get(pts, 0), 1)) ==
				    1000);
			assert_true(json_number_value(json_array_get(json_array_get(pts, 2), 0)) ==
				    1000);
		}
	}
	assert_true(seen_tput);
	json_decref(curves);
	json_decref(results);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_axis),
		cmocka_unit_test(test_svg_points),
		cmocka_unit_test(test_across_results),
		cmocka_unit_test(test_series_in_result),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
