/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cli/cli.h"

/* Shared between the command files: option ids (short options use their letter), the
 * run/attach helpers that start, exec and logs reuse, and the helpers of cmd-common.c. */
enum {
	OPT_RM = 1000,
	OPT_NAME,
	OPT_ENV_FILE,
	OPT_ENTRYPOINT,
	OPT_MEMORY_SWAP,
	OPT_CPUS,
	OPT_PIDS_LIMIT,
	OPT_READ_ONLY,
	OPT_CAP_ADD,
	OPT_CAP_DROP,
	OPT_PRIVILEGED,
	OPT_SECURITY_OPT,
	OPT_NETWORK,
	OPT_NET,
	OPT_LOG_OPT,
	OPT_LOG_DRIVER,
	OPT_SIG_PROXY,
	OPT_EXPOSE,
	OPT_MOUNT,
	OPT_TMPFS,
	OPT_TIME,
	OPT_NO_TRUNC,
	OPT_FORMAT,
	OPT_TAIL,
	OPT_SINCE,
	OPT_UNTIL,
	OPT_TYPE,
	OPT_PRETTY,
	OPT_NO_PRUNE,
	OPT_RESTART,
};

int cli_attach_start(struct cli_ctx *ctx, const char *id, bool tty, bool interactive,
		     bool sig_proxy, bool do_start);
int cli_env_add(json_t *env, const char *kv);
int cli_env_file_add(json_t *env, const char *path, char *err, size_t errsize);
int cli_start_failure_status(const char *msg);
bool cli_stream_multiplexed(const struct cli_http_resp *resp, bool tty);
int cli_strv_json_push(json_t *obj, const char *key, const char *v);
/* `logs` flags that services and containers share. */
/* clang-format off */
#define CLI_LOGS_OPTS \
	{'f', "follow", 'f', CLI_OPT_BOOL, NULL, "Follow log output"}, \
	{'n', "tail", 'n', CLI_OPT_VALUE, "string", \
	 "Number of lines to show from the end of the logs (default \"all\")"}, \
	{'t', "timestamps", 't', CLI_OPT_BOOL, NULL, "Show timestamps"}
/* Flags of the service commands that wait for convergence. */
#define CLI_SERVICE_WAIT_OPTS \
	{'d', "detach", 'd', CLI_OPT_BOOL, NULL, \
	 "Exit immediately instead of waiting for the service to converge"}, \
	{'q', "quiet", 'q', CLI_OPT_BOOL, NULL, "Suppress progress output"}
/* clang-format on */

int cli_attach_pump(struct cli_ctx *ctx, struct cli_http *stream, const struct cli_http_resp *resp,
		    bool tty, bool interactive, bool sig_proxy, const char *container_id,
		    const char *resize_path, struct shoal_err *err);

/* The policy map's fill of /info's "ShoalPolicyMap" (cmd-policy.c). */
void cli_policy_map_print(json_t *pm, const char *indent);

/* JSON (cmd-common.c) */

/* The value at a dotted path ("Spec.Mode.Replicated.Replicas"); NULL when absent or null. */
json_t *cli_json_get(json_t *o, const char *path);
const char *cli_json_str(json_t *o, const char *path);
/* The number at path, 0 when absent. */
json_int_t cli_json_int(json_t *o, const char *path);
/* The object under key (or at a dotted path), created when missing; NULL on ENOMEM. */
json_t *cli_json_obj(json_t *o, const char *key);
json_t *cli_json_obj_path(json_t *o, const char *path);
/* The array under key, created when missing; NULL on ENOMEM. */
json_t *cli_json_arr(json_t *o, const char *key);
/* Sets labels["K"] from "K=V" (or "K": ""). 0 or -ENOMEM (labels NULL too). */
int cli_json_label_set(json_t *labels, const char *kv);
/* "running" -> "Running" */
void cli_title(const char *s, char *buf, size_t size);
/* RFC 3339 (with optional fraction and offset) to unix seconds; 0 when unparsable. */
int64_t cli_time_parse(const char *s);
/* A swarm object id cut to 12 characters when trunc. */
void cli_id_trunc(const char *id, bool trunc, char *buf, size_t size);

/* Commands (cmd-common.c) */

/* GET <prefix>/<ref><suffix>. With noun, the answer must be an object with an "ID"
 * ("Error: malformed <noun> from daemon" otherwise). NULL with err set. */
json_t *cli_object_get(struct cli_ctx *ctx, const char *prefix, const char *ref, const char *suffix,
		       const char *noun, struct shoal_err *err);
/* GET path, which must answer a JSON array; NULL after printing why not. */
json_t *cli_list_get(struct cli_ctx *ctx, const char *path, const char *noun);
/* The flags of an `ls` that has -q and --format (ids 'q' and OPT_FORMAT in opts) and takes
 * no argument. Returns 0 (*ret_format malloc'd or NULL), CLI_OPT_HELP after printing the
 * usage, or an exit status after printing the error. */
int cli_ls_parse(struct cli_ctx *ctx, int argc, char **argv, const struct cli_opt *opts,
		 const char *usage, const char *desc, bool *ret_quiet, char **ret_format);
/* The same with -f/--filter (id 'f': name=value, repeatable) and --no-trunc
 * (OPT_NO_TRUNC) too; release with cli_ls_done(). */
struct cli_ls {
	bool quiet, no_trunc;
	char *format;
	json_t *filters; /* {"name": ["value", ...]} */
};
int cli_ls_parse_ext(struct cli_ctx *ctx, int argc, char **argv, const struct cli_opt *opts,
		     const char *usage, const char *desc, struct cli_ls *ret);
void cli_ls_done(struct cli_ls *ls);
/* -f name=value into {"name": [values]}; -EINVAL without '='. */
int cli_filter_add(json_t *filters, const char *v);
/* "filters=<escaped JSON>", "" without filters; NULL on ENOMEM. */
char *cli_filters_query(json_t *filters);
/* `inspect` of every positional argument of p: GET <prefix>/<arg>, printed with
 * cli_inspect_print(). Returns the exit status. */
int cli_inspect_each(struct cli_ctx *ctx, struct cli_opts *p, const char *prefix,
		     const char *format);
/* A whole `X inspect [-f FORMAT] NAME...` command over cli_inspect_each(). */
int cli_inspect_cmd(struct cli_ctx *ctx, int argc, char **argv, const char *usage, const char *desc,
		    const char *prefix);
/* The flags of a command that takes none and at least one argument: -1 when
 * it goes on (p open), else its exit status (the usage or the error printed,
 * p freed). */
int cli_args_only(const struct cli_ctx *ctx, struct cli_opts *p, int argc, char **argv,
		  const char *usage, const char *desc);
/* A whole `X rm NAME...` command (no flags): DELETE <prefix>/<arg> for each. */
int cli_rm_cmd(struct cli_ctx *ctx, int argc, char **argv, const char *usage, const char *desc,
	       const char *prefix);
/* GET <prefix>?filters=... for an ls; with noun, the answer must be an array (as
 * cli_list_get()). NULL after printing why not. */
json_t *cli_ls_get(struct cli_ctx *ctx, const char *prefix, const struct cli_ls *ls,
		   const char *noun);
/* One row of an ls: what -q prints, and the table's cells (pointing into the
 * item or into buf). */
#define CLI_LS_COLS_MAX 8
struct cli_ls_row {
	const char *id;
	const char *cells[CLI_LS_COLS_MAX];
	char buf[4][80];
};
/* Prints items as ls does: their ids (-q), the template (--format) or a table
 * under head (ncols columns, at most CLI_LS_COLS_MAX), each row from row().
 * Returns the exit status. */
int cli_ls_print(const struct cli_ls *ls, json_t *items, const char *const *head, size_t ncols,
		 void (*row)(json_t *v, const struct cli_ls *ls, struct cli_ls_row *ret));
/* Ends a flag loop on an id the command does not handle: CLI_OPT_HELP prints the usage
 * (exit status 0), anything else prints p->error (125). Frees p either way. */
int cli_opts_fail(const struct cli_ctx *ctx, struct cli_opts *p, int id, const char *usage,
		  const char *desc);
/* Frees p and prints a wrong argument count (exit status 1). */
int cli_opts_args_fail(const struct cli_ctx *ctx, struct cli_opts *p, const char *usage,
		       const char *desc, const char *requirement);
/* Prints fmt expanded for v and a newline; v NULL counts as out of memory. Returns 0, or 1
 * after printing the template error. */
int cli_template_println(const char *fmt, json_t *v);
/* `inspect` output for the objects in all: pretty (when given) prints each object, else
 * format expands for each, else all is printed as indented JSON. Returns 0 or an exit
 * status. */
int cli_inspect_print(json_t *all, const char *format, void (*pretty)(json_t *obj, size_t index));
/* `service inspect` and `node inspect`: -f/--format, --pretty, one GET per argument. */
struct cli_inspect_kind {
	const char *usage, *desc;
	const char *noun; /* "node": "Error: no such node: NAME" on a 404 */
	json_t *(*get)(struct cli_ctx *ctx, const char *ref, struct shoal_err *err);
	void (*pretty)(json_t *obj, size_t index);
};
int cli_inspect_swarm(struct cli_ctx *ctx, int argc, char **argv,
		      const struct cli_inspect_kind *kind);
/* Sends method to <prefix>/<argument><suffix> for every positional argument of p; prints
 * the argument (with print_status: a wait's StatusCode) per success and the daemon's
 * error per failure. Returns the exit status. */
int cli_each_request(struct cli_ctx *ctx, const struct cli_opts *p, const char *prefix,
		     const char *method, const char *suffix, bool print_status);
/* GETs path, a log stream (multiplexed unless the daemon says raw or tty), and copies it
 * to stdout and stderr. Returns the exit status. */
int cli_logs_stream(struct cli_ctx *ctx, const char *path, bool tty);

/* Services (cmd-service-progress.c) */

enum cli_service_wait_kind { CLI_WAIT_CREATE, CLI_WAIT_UPDATE, CLI_WAIT_ROLLBACK };
/* GET /services/<name>; NULL with err set. */
json_t *cli_service_get(struct cli_ctx *ctx, const char *name, struct shoal_err *err);
/* GET /tasks for one service (NULL: all), up_to_date adding docker's "_up-to-date" filter,
 * extra_filters ({"key": {"value": true}}) merged in. NULL with err set. */
json_t *cli_service_tasks_get(struct cli_ctx *ctx, const char *service_id, bool up_to_date,
			      json_t *extra_filters, struct shoal_err *err);
/* Polls the service until its tasks converge, showing progress unless quiet. before:
 * UpdateStatus.StartedAt read before the update was posted (NULL for create). Returns the
 * exit status. */
int cli_service_wait(struct cli_ctx *ctx, const char *id, enum cli_service_wait_kind kind,
		     bool quiet, const char *before);
/* Whether a task's desired state is running (or on its way to it). */
bool cli_task_desired_running(json_t *task);
/* Newer of two tasks for one slot (b may be NULL): later CreatedAt, then higher Version. */
bool cli_task_newer(json_t *a, json_t *b);
