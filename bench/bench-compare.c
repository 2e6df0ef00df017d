// SPDX-License-Identifier: Apache-2.0
/* `shoal bench compare A.json B.json`: each figure side by side, the change,
 * and whether it is beyond the run-to-run noise the rounds measured; exit
 * status 1 on a regression beyond --threshold (for CI). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench-results.h"
#include "bench/bench.h"
#include "cli/cli-internal.h"
#include "cli/cli.h"
#include "lib/cleanup.h"
#include "lib/util.h"

/* A result file is a few hundred KiB at most (curves, not raw samples). */
#define RESULTS_MAX_BYTES (64 * 1024 * 1024)
/* Paths deeper than this are not figures anybody compares. */
#define RESULTS_MAX_DEPTH 8
#define DEFAULT_THRESHOLD 10.0

json_t *bench_results_load(const char *path, char *err, size_t errsize)
{
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	int r = read_file(path, RESULTS_MAX_BYTES, &buf, &len);
	if (r < 0) {
		snprintf(err, errsize, "%s: %s", path,
			 r == -EFBIG ? "larger than 64 MiB, not a result file" : strerror(-r));
		errno = -r;
		return NULL;
	}
	json_error_t je;
	json_t *j = json_loadb(buf, len, 0, &je);
	if (!j) {
		snprintf(err, errsize, "%s: not JSON (line %d: %s)", path, je.line, je.text);
		errno = EINVAL;
		return NULL;
	}
	if (!json_is_object(j)) {
		snprintf(err, errsize, "%s: not a result (a JSON object is expected)", path);
		json_decref(j);
		errno = EINVAL;
		return NULL;
	}
	json_t *v = json_object_get(j, "schema_version");
	if (v && (!json_is_integer(v) || json_integer_value(v) > BENCH_SCHEMA_VERSION)) {
		snprintf(err, errsize,
			 "%s: schema version %lld is newer than this shoal reads (%d); use a "
			 "newer shoal",
			 path, (long long)json_integer_value(v), BENCH_SCHEMA_VERSION);
		json_decref(j);
		errno = EPROTO;
		return NULL;
	}
	return j;
}

static bool has_suffix(const char *s, const char *suf)
{
	size_t n = strlen(s), k = strlen(suf);
	return n >= k && strcmp(s + n - k, suf) == 0;
}

/* "higher", "lower" or NULL (a count, a setting: not compared). */
static const char *direction(const char *path, const char *key, const char *parent)
{
	/* ratios to a baseline ("ratio_to_direct.shoal.keepalive") are throughputs */
	if (strcmp(key, "per_sec") == 0 || has_suffix(key, "_per_sec") ||
	    has_suffix(key, "_per_second") || strncmp(path, "ratio", 5) == 0 ||
	    strstr(path, ".ratio"))
		return "higher";
	if (has_suffix(key, "_ms") || has_suffix(key, "_us") || has_suffix(key, "_ns") ||
	    has_suffix(key, "_s") || has_suffix(key, "_seconds") || has_suffix(key, "_kib"))
		return "lower";
	/* the percentiles of a latency object ("latency_us": {"p99": ...}) */
	if (parent &&
	    (has_suffix(parent, "_us") || has_suffix(parent, "_ms") || has_suffix(parent, "_ns")) &&
	    (key[0] == 'p' || strcmp(key, "max") == 0 || strcmp(key, "mean") == 0))
		return "lower";
	/* packet_ns: {"hit": ...} */
	if (parent && has_suffix(parent, "_ns"))
		return "lower";
	return NULL;
}

/* Subtrees that describe a run rather than measure it. */
static bool skipped_key(const char *k)
{
	static const char *const skip[] = {
		"env",	    "config", "command", "curve",  "rounds",	  "warnings",	   "errors",
		"schedule", "cpus",   "skipped", "output", "waited_note", "generator_cpu", "wrk"};
	for (size_t i = 0; i < sizeof(skip) / sizeof(skip[0]); i++)
		if (strcmp(k, skip[i]) == 0)
			return true;
	return false;
}

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* (max - min) / median of the rounds' values of key, in percent; < 0 when
 * there are fewer than two. */
static double rounds_spread(json_t *rounds, const char *key)
{
	size_t n = json_array_size(rounds);
	if (n < 2 || n > 1000)
		return -1;
	double v[1000];
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		json_t *x = json_object_get(json_array_get(rounds, i), key);
		if (json_is_number(x))
			v[k++] = json_number_value(x);
	}
	if (k < 2)
		return -1;
	qsort(v, k, sizeof(v[0]), cmp_dbl);
	double med = v[k / 2];
	return med > 0 ? (v[k - 1] - v[0]) / med * 100 : -1;
}

/* The rounds' key for a figure of a variant: "per_sec", "latency_us.p50" ->
 * "p50_us", ... */
static const char *round_key(const char *rel)
{
	if (strcmp(rel, "per_sec") == 0)
		return "per_sec";
	if (strcmp(rel, "latency_us.p50") == 0)
		return "p50_us";
	if (strcmp(rel, "latency_us.p99") == 0)
		return "p99_us";
	if (strcmp(rel, "latency_us.max") == 0)
		return "max_us";
	return NULL;
}

static int walk(json_t *node, const char *path, const char *key, const char *parent,
		json_t *variant, const char *vpath, int depth, json_t *out)
{
	if (depth > RESULTS_MAX_DEPTH)
		return 0;
	if (json_is_number(node)) {
		const char *dir = key ? direction(path, key, parent) : NULL;
		if (!dir)
			return 0;
		json_t *f =
			json_pack("{s:f, s:s}", "value", json_number_value(node), "better", dir);
		if (!f)
			return -ENOMEM;
		if (variant) {
			const char *rk = round_key(path + strlen(vpath) + 1);
			double s = rk ? rounds_spread(json_object_get(variant, "rounds"), rk) : -1;
			if (s >= 0)
				json_object_set_new(f, "noise_pct", json_real(s));
		}
		return json_object_set_new(out, path, f);
	}
	if (json_is_object(node)) {
		const char *k;
		json_t *v;
		json_object_foreach(node, k, v)
		{
			if (skipped_key(k))
				continue;
			_cleanup_free_ char *p = NULL;
			if (asprintf(&p, "%s%s%s", path, *path ? "." : "", k) < 0)
				return -ENOMEM;
			int r = walk(v, p, k, key, variant, vpath, depth + 1, out);
			if (r < 0)
				return r;
		}
		return 0;
	}
	if (json_is_array(node)) {
		size_t i;
		json_t *v;
		json_array_foreach(node, i, v)
		{
			/* variants by name, so that a reordering compares right */
			const char *name = json_string_value(json_object_get(v, "name"));
			_cleanup_free_ char *p = NULL;
			if ((name ? asprintf(&p, "%s.%s", path, name)
				  : asprintf(&p, "%s.%zu", path, i)) < 0)
				return -ENOMEM;
			bool is_variant = name && json_object_get(v, "rounds");
			int r = walk(v, p, key, parent, is_variant ? v : variant,
				     is_variant ? p : vpath, depth + 1, out);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

json_t *bench_results_figures(json_t *result)
{
	json_t *out = json_object();
	if (!out || walk(result, "", NULL, NULL, NULL, NULL, 0, out) < 0) {
		json_decref(out);
		return NULL;
	}
	return out;
}

json_t *bench_compare_results(json_t *a, json_t *b, double threshold_pct, int *ret_regressions,
			      char *err, size_t errsize)
{
	const char *sa = json_string_value(json_object_get(a, "suite"));
	const char *sb = json_string_value(json_object_get(b, "suite"));
	if (sa && sb && strcmp(sa, sb) != 0) {
		snprintf(err, errsize,
			 "the results are of different suites (%s and %s): compare runs of one "
			 "suite",
			 sa, sb);
		return NULL;
	}
	_cleanup_json_ json_t *fa = bench_results_figures(a);
	_cleanup_json_ json_t *fb = bench_results_figures(b);
	json_t *rows = json_array();
	if (!fa || !fb || !rows) {
		json_decref(rows);
		snprintf(err, errsize, "out of memory");
		return NULL;
	}
	int regressions = 0;
	const char *path;
	json_t *x;
	json_object_foreach(fa, path, x)
	{
		json_t *y = json_object_get(fb, path);
		if (!y)
			continue;
		double va = json_real_value(json_object_get(x, "value"));
		double vb = json_real_value(json_object_get(y, "value"));
		bool higher =
			strcmp(json_string_value(json_object_get(x, "better")), "higher") == 0;
		json_t *na = json_object_get(x, "noise_pct"), *nb = json_object_get(y, "noise_pct");
		double noise = -1;
		if (na || nb)
			noise = fmax(na ? json_real_value(na) : 0, nb ? json_real_value(nb) : 0);
		double change;
		if (va == 0)
			change = vb == 0 ? 0 : (vb > 0 ? INFINITY : -INFINITY);
		else
			change = (vb - va) / fabs(va) * 100;
		bool worse = higher ? change < 0 : change > 0;
		double mag = fabs(change);
		/* without rounds there is no measured noise: only the threshold judges */
		bool beyond = mag > 0 && mag > (noise > 0 ? noise : 0) &&
			      (noise >= 0 || mag > threshold_pct);
		bool regression = beyond && worse && mag > threshold_pct;
		const char *verdict = !beyond	   ? "same"
				      : regression ? "regression"
				      : worse	   ? "worse"
						   : "better";
		if (regression)
			regressions++;
		json_t *row = json_pack("{s:s, s:f, s:f, s:o, s:o, s:s, s:s}", "figure", path, "a",
					va, "b", vb, "change_pct",
					isfinite(change) ? json_real(change) : json_null(),
					"noise_pct", noise >= 0 ? json_real(noise) : json_null(),
					"better", higher ? "higher" : "lower", "verdict", verdict);
		if (!row || json_array_append_new(rows, row) < 0) {
			json_decref(rows);
			snprintf(err, errsize, "out of memory");
			return NULL;
		}
	}
	*ret_regressions = regressions;
	return rows;
}

static void print_rows(const char *pa, const char *pb, double threshold, json_t *rows,
		       int regressions)
{
	printf("shoal bench compare: A %s, B %s; a regression is worse by more than %.1f%% "
	       "and more than the rounds' noise\n\n",
	       pa, pb, threshold);
	size_t w = 6;
	size_t i;
	json_t *r;
	json_array_foreach(rows, i, r)
	{
		size_t l = strlen(json_string_value(json_object_get(r, "figure")));
		if (l > w)
			w = l;
	}
	printf("  %-*s %14s %14s %9s %8s  %s\n", (int)w, "figure", "A", "B", "change", "noise", "");
	json_array_foreach(rows, i, r)
	{
		json_t *c = json_object_get(r, "change_pct"), *n = json_object_get(r, "noise_pct");
		char cs[16], ns[16];
		if (json_is_number(c))
			snprintf(cs, sizeof(cs), "%+.1f%%", json_real_value(c));
		else
			snprintf(cs, sizeof(cs), "n/a");
		if (json_is_number(n))
			snprintf(ns, sizeof(ns), "%.1f%%", json_real_value(n));
		else
			snprintf(ns, sizeof(ns), "-");
		const char *v = json_string_value(json_object_get(r, "verdict"));
		printf("  %-*s %14.6g %14.6g %9s %8s  %s\n", (int)w,
		       json_string_value(json_object_get(r, "figure")),
		       json_real_value(json_object_get(r, "a")),
		       json_real_value(json_object_get(r, "b")), cs, ns,
		       strcmp(v, "regression") == 0 ? "REGRESSION"
		       : strcmp(v, "same") == 0	    ? ""
						    : v);
	}
	printf("\n%d regression%s\n", regressions, regressions == 1 ? "" : "s");
}

int bench_compare(struct cli_ctx *ctx, int argc, char **argv)
{
	enum { O_THRESHOLD = 1, O_JSON };
	static const struct cli_opt opts[] = {
		{O_THRESHOLD, "threshold", 0, CLI_OPT_VALUE, "pct",
		 "A worse figure beyond this change (and the noise) is a regression (default 10)"},
		{O_JSON, "json", 0, CLI_OPT_BOOL, NULL, "Print the rows as JSON"},
		{0},
	};
	static const char usage[] = "[OPTIONS] A.json B.json";
	static const char desc[] =
		"Compare two results of one suite; exit status 1 on a regression";
	snprintf(ctx->cmdpath, sizeof(ctx->cmdpath), "shoal bench compare");
	double threshold = DEFAULT_THRESHOLD;
	bool json = false;
	struct cli_opts p;
	cli_opts_init(&p, opts, argc, argv, false);
	int o;
	while ((o = cli_opts_next(&p)) > 0) {
		if (o == O_THRESHOLD) {
			char *end;
			threshold = strtod(p.value, &end);
			if (end == p.value || (*end && strcmp(end, "%") != 0) ||
			    !(threshold >= 0) || threshold > 1000) {
				char msg[128];
				snprintf(msg, sizeof(msg),
					 "--threshold %s: expected a percentage from 0 to 1000",
					 p.value);
				cli_opts_done(&p);
				return cli_usage_error(ctx, msg);
			}
		} else if (o == O_JSON) {
			json = cli_opts_bool(&p);
		}
	}
	if (o == CLI_OPT_HELP || o == CLI_OPT_ERROR)
		return cli_opts_fail(ctx, &p, o, usage, desc);
	if (p.npos != 2)
		return cli_opts_args_fail(ctx, &p, usage, desc, "requires exactly 2 arguments");
	char err[512];
	_cleanup_json_ json_t *a = bench_results_load(p.pos[0], err, sizeof(err));
	_cleanup_json_ json_t *b = a ? bench_results_load(p.pos[1], err, sizeof(err)) : NULL;
	if (!a || !b) {
		fprintf(stderr, "Error: %s\n", err);
		cli_opts_done(&p);
		return 2;
	}
	int regressions = 0;
	_cleanup_json_ json_t *rows =
		bench_compare_results(a, b, threshold, &regressions, err, sizeof(err));
	if (!rows) {
		fprintf(stderr, "Error: %s\n", err);
		cli_opts_done(&p);
		return 2;
	}
	if (json_array_size(rows) == 0) {
		fprintf(stderr, "Error: %s and %s have no figure in common\n", p.pos[0], p.pos[1]);
		cli_opts_done(&p);
		return 2;
	}
	if (json) {
		_cleanup_free_ char *s =
			json_dumps(json_pack("{s:O, s:f, s:i}", "rows", rows, "threshold_pct",
					     threshold, "regressions", regressions),
				   JSON_INDENT(2) | JSON_REAL_PRECISION(10));
		printf("%s\n", s ? s : "{}");
	} else {
		print_rows(p.pos[0], p.pos[1], threshold, rows, regressions);
	}
	cli_opts_done(&p);
	return regressions ? 1 : 0;
}
