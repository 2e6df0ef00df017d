/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

/* Reading results back: what `shoal bench compare` and `shoal bench report`
 * share. Pure: JSON in, JSON or text out, no printing. */

/* Loads a result file; refuses what is not a JSON object and a schema newer
 * than BENCH_SCHEMA_VERSION. NULL with err set. */
json_t *bench_results_load(const char *path, char *err, size_t errsize);

/* Every figure of a result whose better direction is known, as
 * {"path": {"value": v, "better": "higher"|"lower", "noise_pct": n?}}: paths
 * are dotted ("variants.http.latency_us.p99", "shoal.keepalive.per_sec");
 * noise_pct is the spread of the rounds ((max - min) / median) where the
 * result has them. NULL on ENOMEM. */
json_t *bench_results_figures(json_t *result);

/* Each figure of a beside b: [{"figure","a","b","change_pct","noise_pct",
 * "better","verdict"}], verdict one of "regression" (worse by more than
 * threshold_pct and the noise), "worse" or "better" (beyond the noise),
 * "same" (within it). *ret_regressions counts the regressions. NULL with err
 * set (results of different suites). */
json_t *bench_compare_results(json_t *a, json_t *b, double threshold_pct, int *ret_regressions,
			      char *err, size_t errsize);

/* The self-contained HTML page of results, each {"label": "...", "result":
 * {...}}: per variant a latency percentile chart (one line per result, log
 * percentile axis), throughput bars, the peers of `bench lb`, the figures of
 * the other suites, and every result's environment. 0 or -errno. */
int bench_report_html(json_t *results, FILE *out);

/* Scaling curves: series a result holds over a parameter (an array of
 * objects each with "connections", "services", "nodes", ... and figures),
 * and results of one suite that differ in such a parameter (config or top
 * level); for http, tcp and udp the throughput and p99 of each variant. As
 * [{"title", "x", "y", "series": [{"name", "points": [[x, y], ...]}]}],
 * points sorted by x, series of one point left out. NULL on ENOMEM. */
json_t *bench_results_curves(json_t *results);

/* An axis of a line chart: logarithmic (decades lo..hi) when the values
 * span two decades or more, else linear from 0 (or lo) to a round top. */
struct bench_curve_axis {
	bool log;
	double lo, hi;
};
void bench_curve_axis(double lo, double hi, struct bench_curve_axis *ret);
/* Where v falls between pixel from (at lo) and to (at hi). */
double bench_curve_pos(const struct bench_curve_axis *a, double v, double from, double to);
/* A chart of bench_results_curves() as an SVG line chart in a <figure>, a
 * <circle class="point" data-x data-y> per point. -EINVAL without points. */
int bench_curve_svg(json_t *chart, FILE *f);

/* HTML-escaped text; the color of series i. */
void bench_html_esc(FILE *f, const char *s);
const char *bench_color(size_t i);
