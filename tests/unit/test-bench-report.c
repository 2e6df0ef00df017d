// SPDX-License-Identifier: Apache-2.0
/* `shoal bench report`'s page from a recorded `bench http` result and a
 * `bench lb`-shaped one: one latency chart per variant with a line per
 * result, the peers' bars, names escaped, nothing loaded from the network. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bench/bench-results.h"
#include "bench/bench.h"

static size_t count(const char *s, const char *needle)
{
	size_t n = 0;
	for (const char *p = strstr(s, needle); p; p = strstr(p + 1, needle))
		n++;
	return n;
}

/* The text between the n-th occurrence of open and the next close. */
static char *section(const char *s, const char *open, const char *close, size_t n)
{
	const char *p = strstr(s, open);
	for (size_t i = 0; p && i < n; i++)
		p = strstr(p + 1, open);
	assert_non_null(p);
	const char *e = strstr(p, close);
	assert_non_null(e);
	return strndup(p, (size_t)(e - p));
}

static char *render(json_t *results)
{
	char *html = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&html, &len);
	assert_non_null(f);
	assert_int_equal(bench_report_html(results, f), 0);
	fclose(f);
	return html;
}

static void test_charts_per_variant(void **state)
{
	char err[512];
	json_t *a =
		bench_results_load(BENCH_DATA_DIR "/bench-http-recorded.json", err, sizeof(err));
	assert_non_null(a);
	/* a second result with two variants: "http" and a name to escape */
	json_t *b = json_deep_copy(a);
	json_t *v2 = json_deep_copy(json_array_get(json_object_get(b, "variants"), 0));
	json_object_set_new(v2, "name", json_string("<script>x</script>"));
	json_array_append_new(json_object_get(b, "variants"), v2);
	json_t *lb = json_pack("{s:i, s:s, s:{s:{s:f}, s:{s:f}}, s:{s:{s:f}, s:{s:f}}}",
			       "schema_version", 1, "suite", "lb", "direct", "keepalive", "per_sec",
			       50000.0, "newconn", "per_sec", 9000.0, "shoal", "keepalive",
			       "per_sec", 48000.0, "newconn", "per_sec", 8800.0);
	json_t *results =
		json_pack("[{s:s, s:o}, {s:s, s:o}, {s:s, s:o}]", "label", "before", "result", a,
			  "label", "after", "result", b, "label", "lb", "result", lb);
	char *html = render(results);
	/* one latency chart per variant name, across the results */
	assert_int_equal(count(html, "<svg class=\"chart latency\""), 2);
	assert_int_equal(count(html, "data-variant=\"http\""), 1);
	assert_int_equal(count(html, "data-variant=\"&lt;script&gt;x&lt;/script&gt;\""), 1);
	assert_null(strstr(html, "<script"));
	/* the http chart draws both results, the other only the second */
	char *c1 = section(html, "<svg class=\"chart latency\"", "</svg>", 0);
	char *c2 = section(html, "<svg class=\"chart latency\"", "</svg>", 1);
	assert_int_equal(count(c1, "<polyline"), 2);
	assert_int_equal(count(c2, "<polyline"), 1);
	free(c1);
	free(c2);
	/* throughput: one bar per (result, variant); the peers of lb, both modes */
	char *t = section(html, "<svg class=\"chart throughput\"", "</svg>", 0);
	assert_int_equal(count(t, "<rect class=\"bar\""), 3);
	free(t);
	assert_int_equal(count(html, "<svg class=\"chart peers\""), 2);
	/* self-contained */
	assert_null(strstr(html, "src="));
	assert_null(strstr(html, "<link"));
	assert_non_null(strstr(html, "</html>"));
	free(html);
	json_decref(results);
}

static void test_limits(void **state)
{
	json_t *none = json_array();
	assert_int_equal(bench_report_html(none, stdout), -EINVAL);
	json_decref(none);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_charts_per_variant),
		cmocka_unit_test(test_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
