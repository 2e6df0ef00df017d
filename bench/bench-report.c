// SPDX-License-Identifier: Apache-2.0
/* `shoal bench report RESULTS.json... -o DIR`: DIR/index.html, one page with
 * inline SVG and CSS, no script and no link, so it opens offline: a latency
 * percentile chart per variant (log percentile axis, one line per result),
 * throughput bars, scaling curves (bench-curve.c), `bench lb`'s peers, the
 * other suites' figures, and each result's environment. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bench/bench-results.h"
#include "bench/bench.h"
#include "cli/cli-internal.h"
#include "cli/cli.h"
#include "lib/cleanup.h"
#include "lib/util.h"

/* Results on one page; a chart with more lines is unreadable anyway. */
#define REPORT_MAX_RESULTS 32

#define W  760
#define H  360
#define ML 70 /* margins: left, right, top, bottom */
#define MR 150
#define MT 20
#define MB 50

static const char *const colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
				     "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
#define NCOLORS (sizeof(colors) / sizeof(colors[0]))

const char *bench_color(size_t i)
{
	return colors[i % NCOLORS];
}

void bench_html_esc(FILE *f, const char *s)
{
	for (; s && *s; s++) {
		switch (*s) {
		case '<':
			fputs("&lt;", f);
			break;
		case '>':
			fputs("&gt;", f);
			break;
		case '&':
			fputs("&amp;", f);
			break;
		case '"':
			fputs("&quot;", f);
			break;
		case '\'':
			fputs("&#39;", f);
			break;
		default:
			fputc(*s, f);
		}
	}
}

/* A round upper bound for an axis: 1, 2 or 5 times a power of ten. */
static double nice_max(double v)
{
	if (v <= 0)
		return 1;
	double p = pow(10, floor(log10(v)));
	for (int m = 1; m <= 10; m++)
		if ((m == 1 || m == 2 || m == 5 || m == 10) && m * p >= v)
			return m * p;
	return 10 * p;
}

/* "120 us", "4.5 ms", "1.20 s" */
static void fmt_us(char *buf, size_t size, double us)
{
	if (us >= 1e6)
		snprintf(buf, size, "%.2f s", us / 1e6);
	else if (us >= 1e3)
		snprintf(buf, size, "%.1f ms", us / 1e3);
	else
		snprintf(buf, size, "%.0f us", us);
}

/* The percentile axis: x = log10(1 / (1 - p)), p = 100 drawn past 99.999. */
static double pct_x(double p)
{
	double q = 1 - p / 100;
	double v = q <= 1e-5 ? 5.4 : log10(1 / q);
	return ML + v / 5.4 * (W - ML - MR);
}

static const char *label_of(json_t *item)
{
	return json_string_value(json_object_get(item, "label"));
}

static json_t *variant_in(json_t *result, const char *name)
{
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(result, "variants"), i, v)
	{
		const char *n = json_string_value(json_object_get(v, "name"));
		if (n && strcmp(n, name) == 0)
			return v;
	}
	return NULL;
}

static void latency_chart(FILE *f, json_t *results, const char *name)
{
	double ymax = 0;
	size_t i;
	json_t *it;
	json_array_foreach(results, i, it)
	{
		json_t *v = variant_in(json_object_get(it, "result"), name);
		size_t k;
		json_t *pt;
		json_array_foreach(json_object_get(v, "curve"), k, pt)
		{
			double y = json_number_value(json_array_get(pt, 1));
			if (y > ymax)
				ymax = y;
		}
	}
	ymax = nice_max(ymax);
	fprintf(f, "<figure><figcaption>Latency by percentile: ");
	bench_html_esc(f, name);
	fprintf(f, "</figcaption>\n<svg class=\"chart latency\" data-variant=\"");
	bench_html_esc(f, name);
	fprintf(f,
		"\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
		"viewBox=\"0 0 %d %d\" role=\"img\">\n",
		W, H, W, H);
	/* axes and grid */
	const double ticks[] = {0, 90, 99, 99.9, 99.99, 99.999, 100};
	const char *tl[] = {"0%", "90%", "99%", "99.9%", "99.99%", "99.999%", "max"};
	for (size_t t = 0; t < sizeof(ticks) / sizeof(ticks[0]); t++) {
		double x = pct_x(ticks[t]);
		fprintf(f,
			"<line class=\"grid\" x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\"/>"
			"<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>\n",
			x, MT, x, H - MB, x, H - MB + 16, tl[t]);
	}
	for (int t = 0; t <= 4; t++) {
		double yv = ymax * t / 4, y = H - MB - (double)(H - MB - MT) * t / 4;
		char lab[32];
		fmt_us(lab, sizeof(lab), yv);
		fprintf(f,
			"<line class=\"grid\" x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\"/>"
			"<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n",
			ML, y, W - MR, y, ML - 6, y + 4, lab);
	}
	fprintf(f,
		"<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">percentile (log scale of "
		"1/(1-p))</text>\n",
		(ML + W - MR) / 2, H - 12);
	json_array_foreach(results, i, it)
	{
		json_t *v = variant_in(json_object_get(it, "result"), name);
		if (!v)
			continue;
		const char *color = colors[i % NCOLORS];
		fprintf(f, "<polyline class=\"series\" fill=\"none\" stroke=\"%s\" points=\"",
			color);
		size_t k;
		json_t *pt;
		json_array_foreach(json_object_get(v, "curve"), k, pt)
		{
			double p = json_number_value(json_array_get(pt, 0));
			double y = json_number_value(json_array_get(pt, 1));
			fprintf(f, "%.1f,%.1f ", pct_x(p),
				H - MB - y / ymax * (double)(H - MB - MT));
		}
		fprintf(f, "\"><title>");
		bench_html_esc(f, label_of(it));
		fprintf(f, "</title></polyline>\n");
		double ly = MT + 10 + 18.0 * (double)i;
		fprintf(f,
			"<rect x=\"%d\" y=\"%.1f\" width=\"12\" height=\"4\" fill=\"%s\"/>"
			"<text x=\"%d\" y=\"%.1f\">",
			W - MR + 10, ly - 4, color, W - MR + 26, ly);
		bench_html_esc(f, label_of(it));
		fprintf(f, "</text>\n");
	}
	fprintf(f, "</svg></figure>\n");
}

struct bar {
	const char *label, *group;
	double value;
};

/* Horizontal bars, one per entry, the value at the end of each. */
static void bar_chart(FILE *f, const char *cls, const char *title, const char *unit,
		      const struct bar *bars, size_t n)
{
	if (!n)
		return;
	double vmax = 0;
	for (size_t i = 0; i < n; i++)
		if (bars[i].value > vmax)
			vmax = bars[i].value;
	vmax = nice_max(vmax);
	const int lw = 260, bh = 18, gap = 6;
	int h = MT + (int)n * (bh + gap) + 30;
	fprintf(f, "<figure><figcaption>");
	bench_html_esc(f, title);
	fprintf(f,
		"</figcaption>\n<svg class=\"chart %s\" xmlns=\"http://www.w3.org/2000/svg\" "
		"width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\">\n",
		cls, W, h, W, h);
	for (size_t i = 0; i < n; i++) {
		int y = MT + (int)i * (bh + gap);
		double w = bars[i].value / vmax * (W - lw - 90);
		fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">", lw - 8, y + bh - 5);
		bench_html_esc(f, bars[i].group);
		if (bars[i].group && *bars[i].group)
			fputs(": ", f);
		bench_html_esc(f, bars[i].label);
		fprintf(f,
			"</text><rect class=\"bar\" x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"%d\" "
			"fill=\"%s\"/><text x=\"%.1f\" y=\"%d\">%.4g %s</text>\n",
			lw, y, w, bh, colors[i % NCOLORS], lw + w + 6, y + bh - 5, bars[i].value,
			unit);
	}
	fprintf(f, "</svg></figure>\n");
}

static void env_table(FILE *f, json_t *results)
{
	fprintf(f, "<h2>Environment</h2>\n<table><tr><th>result</th><th>suite</th><th>kernel</th>"
		   "<th>CPU</th><th>memory</th><th>shoal</th><th>data plane</th><th>command</th>"
		   "</tr>\n");
	size_t i;
	json_t *it;
	json_array_foreach(results, i, it)
	{
		json_t *r = json_object_get(it, "result"), *e = json_object_get(r, "env");
		fprintf(f, "<tr><td>");
		bench_html_esc(f, label_of(it));
		fprintf(f, "</td><td>");
		bench_html_esc(f, json_string_value(json_object_get(r, "suite")) ?: "?");
		fprintf(f, "</td><td>");
		bench_html_esc(f, json_string_value(json_object_get(e, "kernel")) ?: "?");
		fprintf(f, "</td><td>%lld x ",
			(long long)json_integer_value(json_object_get(e, "cpus")));
		bench_html_esc(f, json_string_value(json_object_get(e, "cpu_model")) ?: "?");
		fprintf(f, "</td><td>%.1f GiB</td><td>",
			(double)json_integer_value(json_object_get(e, "memory_bytes")) / (1 << 30));
		bench_html_esc(f, json_string_value(json_object_get(e, "shoal_version")) ?: "?");
		fputc(' ', f);
		bench_html_esc(f, json_string_value(json_object_get(e, "shoal_commit")) ?: "");
		fprintf(f, "</td><td>");
		size_t k;
		json_t *dp;
		json_array_foreach(json_object_get(e, "data_plane"), k, dp)
		{
			bench_html_esc(f, json_string_value(json_object_get(dp, "Name")) ?: "?");
			fputs(": ", f);
			bench_html_esc(f, json_string_value(json_object_get(dp, "State")) ?: "?");
			fputs("<br>", f);
		}
		if (!json_object_get(e, "data_plane")) {
			fputs("no agent: ", f);
			bench_html_esc(f, json_string_value(json_object_get(e, "agent"))
						  ?: "not asked");
		}
		fprintf(f, "</td><td><code>");
		json_t *a;
		json_array_foreach(json_object_get(e, "command"), k, a)
		{
			bench_html_esc(f, json_string_value(a));
			fputc(' ', f);
		}
		fprintf(f, "</code></td></tr>\n");
	}
	fprintf(f, "</table>\n");
}

static const char *const lb_peers[] = {"direct",   "shoal",   "shoal_xdp",   "iptables",
				       "nftables", "haproxy", "shoal_loaded"};
#define NPEERS (sizeof(lb_peers) / sizeof(lb_peers[0]))

int bench_report_html(json_t *results, FILE *f)
{
	size_t n = json_array_size(results);
	if (n == 0 || n > REPORT_MAX_RESULTS)
		return -EINVAL;
	fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
		   "<title>shoal bench report</title>\n<style>\n"
		   "body{font-family:sans-serif;margin:2em;color:#222}"
		   "svg{background:#fff;border:1px solid #ddd}"
		   "svg text{font-size:12px;fill:#333}"
		   ".grid{stroke:#e5e5e5;stroke-width:1}"
		   ".series{stroke-width:2}"
		   "figure{margin:1em 0}figcaption{font-weight:bold;margin-bottom:.3em}"
		   "table{border-collapse:collapse;font-size:13px}"
		   "td,th{border:1px solid #ccc;padding:3px 6px;vertical-align:top;text-align:left}"
		   ".warn{color:#a00}\n</style></head><body>\n<h1>shoal bench report</h1>\n");
	fprintf(f, "<p>%zu result%s: ", n, n == 1 ? "" : "s");
	size_t i;
	json_t *it;
	json_array_foreach(results, i, it)
	{
		fprintf(f, "%s<b>", i ? ", " : "");
		bench_html_esc(f, label_of(it));
		fprintf(f, "</b> (");
		bench_html_esc(f, json_string_value(
					  json_object_get(json_object_get(it, "result"), "suite"))
					  ?: "unknown suite");
		fprintf(f, ")");
	}
	fprintf(f, "</p>\n");

	/* the variants, in the order they first appear */
	_cleanup_json_ json_t *names = json_array();
	struct bar *bars = calloc(n * 64 + NPEERS * n * 2 + 8, sizeof(*bars));
	if (!names || !bars) {
		free(bars);
		return -ENOMEM;
	}
	size_t nb = 0;
	json_array_foreach(results, i, it)
	{
		size_t k;
		json_t *v;
		json_array_foreach(json_object_get(json_object_get(it, "result"), "variants"), k, v)
		{
			const char *nm = json_string_value(json_object_get(v, "name"));
			if (!nm || k >= 64)
				continue;
			bool seen = false;
			size_t j;
			json_t *s;
			json_array_foreach(names, j, s) seen =
				seen || strcmp(json_string_value(s), nm) == 0;
			if (!seen)
				json_array_append_new(names, json_string(nm));
			bars[nb++] = (struct bar){
				.group = label_of(it),
				.label = nm,
				.value = json_number_value(json_object_get(v, "per_sec"))};
		}
	}
	if (json_array_size(names)) {
		fprintf(f, "<h2>Latency</h2>\n<p>Each curve is one result; latency counts from "
			   "when a request was due in the open loop (--rate).</p>\n");
		json_t *s;
		json_array_foreach(names, i, s) latency_chart(f, results, json_string_value(s));
		fprintf(f, "<h2>Throughput</h2>\n");
		bar_chart(f, "throughput", "Requests per second", "/s", bars, nb);
	}
	/* scaling: figures against the parameter they were measured at */
	_cleanup_json_ json_t *curves = bench_results_curves(results);
	if (json_array_size(curves)) {
		fprintf(f, "<h2>Scaling</h2>\n<p>Each figure against the parameter its results "
			   "differ in; an axis spanning two decades or more is logarithmic.</p>\n");
		json_t *ch;
		json_array_foreach(curves, i, ch) bench_curve_svg(ch, f);
	}
	/* `bench lb`: the peers, keep-alive and new connections */
	const char *modes[] = {"keepalive", "newconn"};
	for (size_t m = 0; m < 2; m++) {
		nb = 0;
		json_array_foreach(results, i, it)
		{
			json_t *r = json_object_get(it, "result");
			for (size_t p = 0; p < NPEERS; p++) {
				json_t *x =
					json_object_get(json_object_get(r, lb_peers[p]), modes[m]);
				if (json_is_number(json_object_get(x, "per_sec")))
					bars[nb++] = (struct bar){
						.group = n > 1 ? label_of(it) : "",
						.label = lb_peers[p],
						.value = json_number_value(
							json_object_get(x, "per_sec"))};
			}
		}
		if (nb) {
			if (m == 0)
				fprintf(f, "<h2>Load balancing against its peers</h2>\n");
			bar_chart(f, "peers",
				  m == 0 ? "Keep-alive requests per second"
					 : "New connections per second",
				  "/s", bars, nb);
		}
	}
	/* `bench start`: the medians */
	nb = 0;
	json_array_foreach(results, i, it)
	{
		json_t *r = json_object_get(it, "result");
		const char *keys[] = {"network_none", "network_bridge", "runc"};
		for (size_t k = 0; k < 3; k++) {
			json_t *x = json_object_get(json_object_get(r, keys[k]), "median_ms");
			if (json_is_number(x))
				bars[nb++] = (struct bar){.group = n > 1 ? label_of(it) : "",
							  .label = keys[k],
							  .value = json_number_value(x)};
		}
	}
	if (nb) {
		fprintf(f, "<h2>Container start</h2>\n");
		bar_chart(f, "start", "Create + start + wait, median", "ms", bars, nb);
	}
	/* `bench overlay`: TCP across the nodes beside its baselines */
	nb = 0;
	json_array_foreach(results, i, it)
	{
		json_t *t = json_object_get(json_object_get(it, "result"), "throughput");
		const char *keys[] = {"overlay", "bare_vxlan", "underlay"};
		for (size_t k = 0; k < 3; k++) {
			json_t *x = json_object_get(json_object_get(t, keys[k]), "gbit_per_sec");
			if (json_is_number(x))
				bars[nb++] = (struct bar){.group = n > 1 ? label_of(it) : "",
							  .label = keys[k],
							  .value = json_number_value(x)};
		}
	}
	if (nb) {
		fprintf(f, "<h2>Overlay throughput</h2>\n");
		bar_chart(f, "overlay", "TCP between two nodes, median", "Gbit/s", bars, nb);
	}
	free(bars);
	/* every figure of every result, as compare reads them */
	fprintf(f, "<h2>Figures</h2>\n");
	json_array_foreach(results, i, it)
	{
		_cleanup_json_ json_t *fig = bench_results_figures(json_object_get(it, "result"));
		fprintf(f, "<h3>");
		bench_html_esc(f, label_of(it));
		fprintf(f, "</h3>\n<table><tr><th>figure</th><th>value</th><th>better</th>"
			   "<th>rounds' noise</th></tr>\n");
		const char *k;
		json_t *x;
		json_object_foreach(fig, k, x)
		{
			fprintf(f, "<tr><td>");
			bench_html_esc(f, k);
			fprintf(f, "</td><td>%.6g</td><td>%s</td><td>",
				json_real_value(json_object_get(x, "value")),
				json_string_value(json_object_get(x, "better")));
			json_t *ns = json_object_get(x, "noise_pct");
			if (ns)
				fprintf(f, "%.1f%%", json_real_value(ns));
			fprintf(f, "</td></tr>\n");
		}
		fprintf(f, "</table>\n");
		size_t w;
		json_t *wv;
		json_array_foreach(json_object_get(json_object_get(it, "result"), "warnings"), w,
				   wv)
		{
			fprintf(f, "<p class=\"warn\">");
			bench_html_esc(f, json_string_value(wv));
			fprintf(f, "</p>\n");
		}
	}
	env_table(f, results);
	fprintf(f, "</body></html>\n");
	return ferror(f) ? -EIO : 0;
}

int bench_report(struct cli_ctx *ctx, int argc, char **argv)
{
	enum { O_OUT = 1 };
	static const struct cli_opt opts[] = {
		{O_OUT, "output", 'o', CLI_OPT_VALUE, "dir", "Directory for index.html (required)"},
		{0},
	};
	static const char usage[] = "-o DIR RESULTS.json...";
	static const char desc[] =
		"Write DIR/index.html: charts of results (latency, throughput, scaling curves), "
		"viewable offline (no script, no link)";
	snprintf(ctx->cmdpath, sizeof(ctx->cmdpath), "shoal bench report");
	const char *dir = NULL;
	struct cli_opts p;
	cli_opts_init(&p, opts, argc, argv, false);
	int o;
	while ((o = cli_opts_next(&p)) > 0)
		if (o == O_OUT)
			dir = p.value;
	if (o == CLI_OPT_HELP || o == CLI_OPT_ERROR)
		return cli_opts_fail(ctx, &p, o, usage, desc);
	if (p.npos < 1)
		return cli_opts_args_fail(ctx, &p, usage, desc, "requires at least 1 argument");
	if (p.npos > REPORT_MAX_RESULTS) {
		cli_opts_done(&p);
		return cli_usage_error(ctx, "at most 32 results on one page");
	}
	if (!dir) {
		cli_opts_done(&p);
		return cli_usage_error(ctx, "-o DIR is required: where to write index.html");
	}
	_cleanup_json_ json_t *results = json_array();
	int rc = 1;
	char err[512];
	for (int i = 0; i < p.npos; i++) {
		json_t *r = bench_results_load(p.pos[i], err, sizeof(err));
		if (!r) {
			fprintf(stderr, "Error: %s\n", err);
			goto out;
		}
		/* the label: the file name without its directory and .json */
		const char *base = strrchr(p.pos[i], '/');
		base = base ? base + 1 : p.pos[i];
		size_t bl = strlen(base);
		if (bl > 5 && strcmp(base + bl - 5, ".json") == 0)
			bl -= 5;
		json_array_append_new(results,
				      json_pack("{s:s%, s:o}", "label", base, bl, "result", r));
	}
	int r = mkdir_p(dir, 0755);
	if (r < 0) {
		fprintf(stderr, "Error: creating %s: %s\n", dir, strerror(-r));
		goto out;
	}
	char *html = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&html, &len);
	if (!f) {
		rc = cli_oom();
		goto out;
	}
	r = bench_report_html(results, f);
	fclose(f);
	_cleanup_free_ char *path = NULL;
	if (r < 0 || asprintf(&path, "%s/index.html", dir) < 0) {
		free(html);
		rc = cli_oom();
		goto out;
	}
	r = write_file_atomic(path, html, len, 0644);
	free(html);
	if (r < 0) {
		fprintf(stderr, "Error: writing %s: %s\n", path, strerror(-r));
		goto out;
	}
	printf("%s\n", path);
	rc = 0;
out:
	cli_opts_done(&p);
	return rc;
}
