/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <jansson.h>

#include "lib/err.h"

/* Between `shoal bench http`'s run (bench-http.c) and its output
 * (bench-http-out.c). */

struct bench_http_wrk_opts {
	int conns;
	double duration, warmup; /* seconds */
	int cpu;		 /* -1: not pinned */
};

/* Runs wrk against url as opts say and adds its figures to out["wrk"]. */
int bench_http_wrk(const struct bench_http_wrk_opts *opts, const char *url, json_t *out,
		   struct shoal_err *err);
