// SPDX-License-Identifier: Apache-2.0
/* Scaling curves for `shoal bench report`: a figure against the parameter it
 * was measured at (connections, rate, services loaded, nodes, ...), found in
 * two places:
 *  - inside one result, an array of objects that each carry the parameter
 *    and figures ("series": [{"services": 1, "per_sec": ...}, ...]);
 *  - across results of one suite that differ in one parameter (three `bench
 *    tcp` runs at -c 1, 10, 100; `bench sched` at 1,000 and 10,000 nodes).
 * Charts are JSON first ({"title", "x", "y", "series": [{"name", "points":
 * [[x, y], ...]}]}), drawn as SVG line charts after; an axis whose values
 * span two decades or more is logarithmic. Pure: JSON in, text out. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench-results.h"
#include "cli/cli.h"
#include "lib/cleanup.h"

#define CURVE_MAX_CHARTS 64   /* per report: past this the page is no longer read */
#define CURVE_MAX_POINTS 1000 /* per series */
#define CURVE_MAX_DEPTH	 6

/* The parameters a figure scales with, as results name them: a top-level
 * or config key, or a key of each element of a series. */
static const char *const parameters[] = {"connections", "rate",	 "size",     "services", "nodes",
					 "tasks",	"rules", "backends", "replicas", NULL};

static bool is_parameter(const char *k)
{
	for (size_t i = 0; parameters[i]; i++)
		if (strcmp(k, parameters[i]) == 0)
			return true;
	return false;
}

static const char *label_of(json_t *item)
{
	return json_string_value(json_object_get(item, "label"));
}

static bool load_suite(const char *s)
{
	return s && (strcmp(s, "http") == 0 || strcmp(s, "tcp") == 0 || strcmp(s, "udp") == 0);
}

/* ---- charts from JSON ---- */

static json_t *chart_new(const char *title, const char *x, const char *y)
{
	return json_pack("{s:s, s:s, s:s, s:[]}", "title", title, "x", x, "y", y, "series");
}

/* The series of chart named name, made when missing. */
static json_t *chart_series(json_t *chart, const char *name)
{
	size_t i;
	json_t *s;
	json_array_foreach(json_object_get(chart, "series"), i, s)
	{
		if (strcmp(json_string_value(json_object_get(s, "name")), name) == 0)
			return s;
	}
	s = json_pack("{s:s, s:[]}", "name", name, "points");
	json_array_append_new(json_object_get(chart, "series"), s);
	return s;
}

static void series_add(json_t *series, double x, double y)
{
	json_t *pts = json_object_get(series, "points");
	if (json_array_size(pts) < CURVE_MAX_POINTS && isfinite(x) && isfinite(y))
		json_array_append_new(pts, json_pack("[f, f]", x, y));
}

/* Drops series of fewer than two points and charts left without series. */
static void charts_prune(json_t *charts)
{
	for (size_t i = json_array_size(charts); i-- > 0;) {
		json_t *ss = json_object_get(json_array_get(charts, i), "series");
		for (size_t k = json_array_size(ss); k-- > 0;)
			if (json_array_size(json_object_get(json_array_get(ss, k), "points")) < 2)
				json_array_remove(ss, k);
		if (!json_array_size(ss))
			json_array_remove(charts, i);
	}
}

/* ---- series inside one result ---- */

/* The parameter an array of objects is a series over: a key every element
 * has as a number, with at least two distinct values. */
static const char *series_parameter(json_t *arr)
{
	for (size_t p = 0; parameters[p]; p++) {
		double first = NAN;
		bool all = true, varies = false;
		size_t i;
		json_t *e;
		json_array_foreach(arr, i, e)
		{
			json_t *v = json_object_get(e, parameters[p]);
			if (!json_is_number(v)) {
				all = false;
				break;
			}
			if (i == 0)
				first = json_number_value(v);
			else if (json_number_value(v) != first)
				varies = true;
		}
		if (all && varies)
			return parameters[p];
	}
	return NULL;
}

static void inner_walk(json_t *node, const char *path, const char *label, int depth, json_t *charts)
{
	if (depth > CURVE_MAX_DEPTH || json_array_size(charts) >= CURVE_MAX_CHARTS)
		return;
	if (json_is_object(node)) {
		const char *k;
		json_t *v;
		json_object_foreach(node, k, v)
		{
			if (strcmp(k, "env") == 0 || strcmp(k, "curve") == 0 ||
			    strcmp(k, "config") == 0)
				continue;
			char p[512];
			snprintf(p, sizeof(p), "%s%s%s", path, *path ? "." : "", k);
			inner_walk(v, p, label, depth + 1, charts);
		}
		return;
	}
	if (!json_is_array(node) || json_array_size(node) < 2 ||
	    !json_is_object(json_array_get(node, 0)))
		return;
	const char *param = series_parameter(node);
	if (!param)
		return;
	/* one chart per figure the elements carry, a line per result */
	_cleanup_json_ json_t *figs = bench_results_figures(json_array_get(node, 0));
	const char *f;
	json_t *fv;
	json_object_foreach(figs, f, fv)
	{
		if (is_parameter(f) || json_array_size(charts) >= CURVE_MAX_CHARTS)
			continue;
		char title[700];
		snprintf(title, sizeof(title), "%s: %s by %s", path, f, param);
		json_t *chart = NULL;
		size_t c;
		json_t *ch;
		json_array_foreach(charts, c, ch)
		{
			if (strcmp(json_string_value(json_object_get(ch, "title")), title) == 0)
				chart = ch;
		}
		if (!chart) {
			chart = chart_new(title, param, f);
			json_array_append_new(charts, chart);
		}
		json_t *s = chart_series(chart, label);
		size_t i;
		json_t *e;
		json_array_foreach(node, i, e)
		{
			_cleanup_json_ json_t *ef = bench_results_figures(e);
			json_t *y = json_object_get(json_object_get(ef, f), "value");
			if (json_is_number(y))
				series_add(s, json_number_value(json_object_get(e, param)),
					   json_number_value(y));
		}
	}
}

/* ---- across results ---- */

/* The value of parameter p in a result: config.p, then p at the top, then
 * loaded.p (`bench lb`'s load). */
static bool result_parameter(json_t *r, const char *p, double *ret)
{
	json_t *v = json_object_get(json_object_get(r, "config"), p);
	if (!json_is_number(v))
		v = json_object_get(r, p);
	if (!json_is_number(v))
		v = json_object_get(json_object_get(r, "loaded"), p);
	if (!json_is_number(v))
		return false;
	*ret = json_number_value(v);
	return true;
}

/* The parameters that every result of the group carries and that differ
 * between them. */
static json_t *varying(json_t *results, json_t *idx)
{
	json_t *out = json_array();
	for (size_t p = 0; parameters[p]; p++) {
		double first = NAN;
		bool all = true, varies = false;
		size_t i;
		json_t *ix;
		json_array_foreach(idx, i, ix)
		{
			double v;
			json_t *r = json_object_get(
				json_array_get(results, (size_t)json_integer_value(ix)), "result");
			if (!result_parameter(r, parameters[p], &v)) {
				all = false;
				break;
			}
			if (i == 0)
				first = v;
			else if (v != first)
				varies = true;
		}
		if (all && varies)
			json_array_append_new(out, json_string(parameters[p]));
	}
	return out;
}

/* Result ix of a group, and its value of param in *ret_x. */
static json_t *group_result(json_t *results, json_t *ix, const char *param, double *ret_x)
{
	json_t *r =
		json_object_get(json_array_get(results, (size_t)json_integer_value(ix)), "result");
	*ret_x = 0;
	result_parameter(r, param, ret_x);
	return r;
}

static void across_group(json_t *results, const char *suite, json_t *idx, json_t *charts)
{
	_cleanup_json_ json_t *params = varying(results, idx);
	size_t pi;
	json_t *pj;
	json_array_foreach(params, pi, pj)
	{
		const char *param = json_string_value(pj);
		char note[128] = "";
		if (json_array_size(params) > 1)
			snprintf(note, sizeof(note), " (%zu parameters vary between these results)",
				 json_array_size(params));
		char t1[256], t2[256];
		if (load_suite(suite)) {
			/* throughput and p99, a line per variant */
			snprintf(t1, sizeof(t1), "%s: requests per second by %s%s", suite, param,
				 note);
			snprintf(t2, sizeof(t2), "%s: p99 latency (us) by %s%s", suite, param,
				 note);
			json_t *tput = chart_new(t1, param, "requests/s");
			json_t *p99 = chart_new(t2, param, "p99 (us)");
			size_t i;
			json_t *ix;
			json_array_foreach(idx, i, ix)
			{
				double x;
				json_t *r = group_result(results, ix, param, &x);
				size_t k;
				json_t *v;
				json_array_foreach(json_object_get(r, "variants"), k, v)
				{
					const char *name =
						json_string_value(json_object_get(v, "name"));
					if (!name)
						continue;
					json_t *ps = json_object_get(v, "per_sec");
					json_t *l = json_object_get(
						json_object_get(v, "latency_us"), "p99");
					if (json_is_number(ps))
						series_add(chart_series(tput, name), x,
							   json_number_value(ps));
					if (json_is_number(l))
						series_add(chart_series(p99, name), x,
							   json_number_value(l));
				}
			}
			json_array_append_new(charts, tput);
			json_array_append_new(charts, p99);
			continue;
		}
		/* every figure the results have in common, a chart each */
		_cleanup_json_ json_t *first = bench_results_figures(json_object_get(
			json_array_get(results, (size_t)json_integer_value(json_array_get(idx, 0))),
			"result"));
		const char *f;
		json_t *fv;
		json_object_foreach(first, f, fv)
		{
			if (json_array_size(charts) >= CURVE_MAX_CHARTS)
				break;
			char t[700];
			snprintf(t, sizeof(t), "%s: %s by %s%s", suite, f, param, note);
			json_t *chart = chart_new(t, param, f);
			json_t *s = chart_series(chart, suite);
			size_t i;
			json_t *ix;
			json_array_foreach(idx, i, ix)
			{
				double x;
				json_t *r = group_result(results, ix, param, &x);
				_cleanup_json_ json_t *rf = bench_results_figures(r);
				json_t *y = json_object_get(json_object_get(rf, f), "value");
				if (json_is_number(y))
					series_add(s, x, json_number_value(y));
			}
			json_array_append_new(charts, chart);
		}
	}
}

/* Sorts every series' points by x. */
static int cmp_point(const void *a, const void *b)
{
	double x = json_number_value(json_array_get(*(json_t *const *)a, 0));
	double y = json_number_value(json_array_get(*(json_t *const *)b, 0));
	return (x > y) - (x < y);
}

static void charts_sort(json_t *charts)
{
	size_t i;
	json_t *ch;
	json_array_foreach(charts, i, ch)
	{
		size_t k;
		json_t *s;
		json_array_foreach(json_object_get(ch, "series"), k, s)
		{
			json_t *pts = json_object_get(s, "points");
			size_t n = json_array_size(pts);
			json_t **v = calloc(n ? n : 1, sizeof(*v));
			if (!v)
				continue;
			for (size_t j = 0; j < n; j++)
				v[j] = json_incref(json_array_get(pts, j));
			qsort(v, n, sizeof(*v), cmp_point);
			json_array_clear(pts);
			for (size_t j = 0; j < n; j++)
				json_array_append_new(pts, v[j]);
			free(v);
		}
	}
}

json_t *bench_results_curves(json_t *results)
{
	json_t *charts = json_array();
	_cleanup_json_ json_t *groups = json_object(); /* suite -> [index] */
	if (!charts || !groups) {
		json_decref(charts);
		return NULL;
	}
	size_t i;
	json_t *it;
	json_array_foreach(results, i, it)
	{
		json_t *r = json_object_get(it, "result");
		inner_walk(r, "", label_of(it) ?: "?", 0, charts);
		const char *suite = json_string_value(json_object_get(r, "suite"));
		if (!suite)
			continue;
		json_t *g = json_object_get(groups, suite);
		if (!g) {
			g = json_array();
			json_object_set_new(groups, suite, g);
		}
		json_array_append_new(g, json_integer((json_int_t)i));
	}
	const char *suite;
	json_t *g;
	json_object_foreach(groups, suite, g)
	{
		if (json_array_size(g) >= 2 && json_array_size(charts) < CURVE_MAX_CHARTS)
			across_group(results, suite, g, charts);
	}
	charts_prune(charts);
	charts_sort(charts);
	while (json_array_size(charts) > CURVE_MAX_CHARTS)
		json_array_remove(charts, json_array_size(charts) - 1);
	return charts;
}

/* ---- drawing ---- */

#define W  760
#define H  360
#define ML 80 /* margins: left, right, top, bottom */
#define MR 160
#define MT 20
#define MB 50

void bench_curve_axis(double lo, double hi, struct bench_curve_axis *ret)
{
	struct bench_curve_axis a = {0};
	if (lo > 0 && hi / lo >= 100) {
		a.log = true;
		a.lo = pow(10, floor(log10(lo)));
		a.hi = pow(10, ceil(log10(hi)));
	} else {
		/* from zero unless that flattens the curve into a line at the top */
		a.lo = lo >= 0 && lo < hi / 2 ? 0 : lo;
		a.hi = hi;
		if (a.hi <= a.lo)
			a.hi = a.lo + (a.lo != 0 ? fabs(a.lo) : 1);
		/* a round top: 1, 2, 2.5 or 5 times a power of ten */
		double span = a.hi - a.lo, p = pow(10, floor(log10(span)));
		const double m[] = {1, 2, 2.5, 5, 10};
		for (size_t i = 0; i < 5; i++)
			if (m[i] * p >= span) {
				a.hi = a.lo + m[i] * p;
				break;
			}
	}
	*ret = a;
}

double bench_curve_pos(const struct bench_curve_axis *a, double v, double from, double to)
{
	double t;
	if (a->log)
		t = v > 0 ? (log10(v) - log10(a->lo)) / (log10(a->hi) - log10(a->lo)) : 0;
	else
		t = (v - a->lo) / (a->hi - a->lo);
	return from + t * (to - from);
}

static void fmt_num(char *buf, size_t size, double v)
{
	double a = fabs(v);
	if (a >= 1e9)
		snprintf(buf, size, "%.3gG", v / 1e9);
	else if (a >= 1e6)
		snprintf(buf, size, "%.3gM", v / 1e6);
	else if (a >= 1e4)
		snprintf(buf, size, "%.3gk", v / 1e3);
	else
		snprintf(buf, size, "%.4g", v);
}

static void ticks(FILE *f, const struct bench_curve_axis *a, bool x)
{
	double vals[16];
	int n = 0;
	if (a->log) {
		for (double v = a->lo; v <= a->hi * 1.0001 && n < 16; v *= 10)
			vals[n++] = v;
	} else {
		for (int i = 0; i <= 4; i++)
			vals[n++] = a->lo + (a->hi - a->lo) * i / 4;
	}
	for (int i = 0; i < n; i++) {
		char lab[32];
		fmt_num(lab, sizeof(lab), vals[i]);
		if (x) {
			double px = bench_curve_pos(a, vals[i], ML, W - MR);
			fprintf(f,
				"<line class=\"grid\" x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\"/>"
				"<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>\n",
				px, MT, px, H - MB, px, H - MB + 16, lab);
		} else {
			double py = bench_curve_pos(a, vals[i], H - MB, MT);
			fprintf(f,
				"<line class=\"grid\" x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\"/>"
				"<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n",
				ML, py, W - MR, py, ML - 6, py + 4, lab);
		}
	}
}

int bench_curve_svg(json_t *chart, FILE *f)
{
	json_t *series = json_object_get(chart, "series");
	double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
	size_t i;
	json_t *s;
	json_array_foreach(series, i, s)
	{
		size_t k;
		json_t *pt;
		json_array_foreach(json_object_get(s, "points"), k, pt)
		{
			double x = json_number_value(json_array_get(pt, 0));
			double y = json_number_value(json_array_get(pt, 1));
			xlo = fmin(xlo, x), xhi = fmax(xhi, x);
			ylo = fmin(ylo, y), yhi = fmax(yhi, y);
		}
	}
	if (!isfinite(xlo) || !isfinite(ylo))
		return -EINVAL;
	struct bench_curve_axis ax, ay;
	bench_curve_axis(xlo, xhi, &ax);
	bench_curve_axis(ylo, yhi, &ay);
	const char *xl = json_string_value(json_object_get(chart, "x")) ?: "";
	const char *yl = json_string_value(json_object_get(chart, "y")) ?: "";
	fprintf(f, "<figure><figcaption>");
	bench_html_esc(f, json_string_value(json_object_get(chart, "title")));
	fprintf(f, "</figcaption>\n<svg class=\"chart curve\" data-x=\"");
	bench_html_esc(f, xl);
	fprintf(f,
		"\" data-x-scale=\"%s\" data-y-scale=\"%s\" xmlns=\"http://www.w3.org/2000/svg\" "
		"width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\">\n",
		ax.log ? "log" : "linear", ay.log ? "log" : "linear", W, H, W, H);
	ticks(f, &ax, true);
	ticks(f, &ay, false);
	fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">", (ML + W - MR) / 2, H - 12);
	bench_html_esc(f, xl);
	fprintf(f,
		"%s</text>\n<text x=\"14\" y=\"%d\" text-anchor=\"middle\" "
		"transform=\"rotate(-90 14 %d)\">",
		ax.log ? " (log)" : "", (MT + H - MB) / 2, (MT + H - MB) / 2);
	bench_html_esc(f, yl);
	fprintf(f, "%s</text>\n", ay.log ? " (log)" : "");
	json_array_foreach(series, i, s)
	{
		const char *color = bench_color(i);
		json_t *pts = json_object_get(s, "points");
		fprintf(f, "<polyline class=\"series\" fill=\"none\" stroke=\"%s\" points=\"",
			color);
		size_t k;
		json_t *pt;
		json_array_foreach(pts, k, pt)
		{
			fprintf(f, "%s%.1f,%.1f", k ? " " : "",
				bench_curve_pos(&ax, json_number_value(json_array_get(pt, 0)), ML,
						W - MR),
				bench_curve_pos(&ay, json_number_value(json_array_get(pt, 1)),
						H - MB, MT));
		}
		fprintf(f, "\"><title>");
		bench_html_esc(f, json_string_value(json_object_get(s, "name")));
		fprintf(f, "</title></polyline>\n");
		json_array_foreach(pts, k, pt)
		{
			double x = json_number_value(json_array_get(pt, 0));
			double y = json_number_value(json_array_get(pt, 1));
			fprintf(f,
				"<circle class=\"point\" cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\" "
				"data-x=\"%.6g\" data-y=\"%.6g\"><title>%.6g, %.6g</title></circle>\n",
				bench_curve_pos(&ax, x, ML, W - MR),
				bench_curve_pos(&ay, y, H - MB, MT), color, x, y, x, y);
		}
		double ly = MT + 10 + 18.0 * (double)i;
		fprintf(f,
			"<rect x=\"%d\" y=\"%.1f\" width=\"12\" height=\"4\" fill=\"%s\"/>"
			"<text x=\"%d\" y=\"%.1f\">",
			W - MR + 10, ly - 4, color, W - MR + 26, ly);
		bench_html_esc(f, json_string_value(json_object_get(s, "name")));
		fprintf(f, "</text>\n");
	}
	fprintf(f, "</svg></figure>\n");
	return ferror(f) ? -EIO : 0;
}
