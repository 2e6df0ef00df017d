/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cli/cli.h"
#include "lib/err.h"

/* What the benches that build a cluster of their own (`shoal bench cluster`,
 * `shoal bench overlay`) and the others share: flag values, progress lines,
 * calls to an agent's API, waiting on their event loop, and the results'
 * way out. */

struct event_base;

struct cli_opts;

/* A whole number in [lo, hi]: 0, or -EINVAL. */
int bench_parse_long(const char *s, long lo, long hi, long *ret);

/* A flag whose value is a whole number: its id, its range, what is said of a
 * value outside it, and where it goes (to_size or to_int). */
struct bench_num_opt {
	int id;
	long lo, hi;
	const char *bad;
	size_t *to_size;
	int *to_int;
};
/* Takes flag o when the n of t have it (true): its value stored, or *bad
 * set. */
bool bench_num_opt(const struct bench_num_opt *t, size_t n, int o, const char *value,
		   const char **bad);

/* "  <fmt>\n" on stderr, unless quiet. */
void bench_progress(bool quiet, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* `image load -q -i TAR` into the agent ctx talks to, its "Loaded image" line
 * kept off stdout (where a --json result goes). 0, or the command's status. */
int bench_image_load(struct cli_ctx *ctx, const char *tar);

/* method path (body) on the agent at ctx, which must answer status want; its
 * answer in *ret (may be NULL). -ESRCH without ctx (no agent is up), -EIO
 * naming the answer and its message, or the call's -errno. */
int bench_api(struct cli_ctx *ctx, const char *method, const char *path, json_t *body, int want,
	      json_t **ret, struct shoal_err *err);

/* Runs base's loop, a turn at least every tick_us, until pred(self, arg)
 * holds (0; pred NULL: never), timeout_ns has passed (-ETIMEDOUT) or *stop
 * is set (-EINTR). -ENOMEM without a timer. */
int bench_loop_until(struct event_base *base, bool (*pred)(void *self, void *arg), void *self,
		     void *arg, int64_t timeout_ns, long tick_us, volatile sig_atomic_t *stop);

/* The end of a bench that ran to completion: out stamped for suite, written
 * to out_path (when given), printed as JSON (json) or by print(self, out).
 * The exit status: 1 when the file could not be written. */
int bench_results_out(json_t *out, const char *suite, const char *out_path, bool json,
		      void (*print)(void *self, json_t *out), void *self);

/* After a command's flag loop (o: cli_opts_next()'s last answer): -1 when the
 * command goes on (p still open), else its exit status, p freed: bad (a flag
 * value refused, said so), the usage with desc (--help or a flag error), or
 * an argument, which takes none. */
int bench_opts_end(struct cli_ctx *ctx, struct cli_opts *p, int o, const char *bad,
		   const char *desc);

/* The exit status of a run that returned r: its error printed (err; when
 * *stop is set, as an interrupt), or its results out (bench_results_out()). */
int bench_run_status(int r, struct shoal_err *err, volatile sig_atomic_t *stop, json_t *out,
		     const char *suite, const char *out_path, bool json,
		     void (*print)(void *self, json_t *out), void *self);

/* The flags of a bench that runs agents of its own and writes JSON results,
 * ids above any command's own: --shoald, --json, -o. */
enum { BENCH_R_SHOALD = 2000, BENCH_R_JSON, BENCH_R_OUT };
/* clang-format off */
#define BENCH_OPTS_RESULTS \
	{BENCH_R_SHOALD, "shoald", 0, CLI_OPT_VALUE, "path", "The agent (default: beside shoal)"}, \
	{BENCH_R_JSON, "json", 0, CLI_OPT_BOOL, NULL, "Print the results as JSON"}, \
	{BENCH_R_OUT, "output", 'o', CLI_OPT_VALUE, "file", "Also write the JSON results here"}
/* clang-format on */
/* Takes flag o when it is one of those (true): the agent's path into shoald
 * (len bytes), --json into *json, -o's file into *out_path. */
bool bench_results_opt(struct cli_opts *p, int o, char *shoald, size_t len, bool *json,
		       const char **out_path);

/* fmt expanded into line (len bytes) and split at spaces, no quoting, into
 * argv (at most max - 1 words, then NULL). The word count. */
int bench_argv_vformat(char *line, size_t len, char **argv, int max, const char *fmt, va_list ap);

/* In a child about to exec: stdin from /dev/null, stdout and stderr to log
 * (appended; NULL: /dev/null), no signal blocked, in the network namespace
 * at netns (NULL or "": where it is). The child exits (126: a file, 125: the
 * namespace) when one of those fails. */
void bench_child_prepare(const char *log, const char *netns);
