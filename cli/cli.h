/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cli/http.h"
#include "lib/cleanup.h"
#include "lib/err.h"

#define CLI_API_VERSION "1.43"

DEFINE_TRIVIAL_CLEANUP_FUNC(struct cli_http *, cli_http_free)
#define _cleanup_http_	 _cleanup_(cli_http_freep)
#define _cleanup_json_	 _cleanup_(json_decrefp)
#define CLI_DEFAULT_HOST "unix:///run/shoal/shoal.sock"

/* Exit statuses, as docker uses them. */
#define CLI_EXIT_USAGE 125 /* bad flags; `run` failing before the container starts */

/* State every command sees: the agent address and the command path for messages. */
struct cli_ctx {
	const char *host; /* "unix:///run/shoal/shoal.sock" */
	char sock_path[108];
	char cmdpath[128]; /* "shoal image load", for usage and errors */
	char **argv;	   /* the process's own, for a command run by another binary */
};

/* One row of a command table: `shoal <name> ...` runs fn with argv[0] = name.
 * fn returns the process exit status. Adding a command = a row + a file. */
struct cli_command {
	const char *name;
	int (*fn)(struct cli_ctx *ctx, int argc, char **argv);
	const char *help; /* one line for `shoal --help`; NULL hides the row */
};

extern const struct cli_command cli_commands[];		  /* top level, NULL-terminated */
extern const struct cli_command cli_image_commands[];	  /* `shoal image ...` */
extern const struct cli_command cli_container_commands[]; /* `shoal container ...` */

/* Runs the whole CLI (main() calls this; tests too). */
int cli_main(int argc, char **argv);

/*
 * `shoal bench ...` runs in shoal-bench, a binary of its own beside shoal:
 * the benchmarks link libbpf, libevent, libcurl and SQLite, whose loading
 * cost every other command some 5 ms. cli_cmd_bench() runs cli_bench_main
 * when it is set (shoal-bench sets it before cli_main()), else it executes
 * shoal-bench from shoal's directory with the same arguments.
 */
extern int (*cli_bench_main)(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_bench(struct cli_ctx *ctx, int argc, char **argv);
/* Runs a subcommand from table, argv[0] being the group's name. */
int cli_dispatch(struct cli_ctx *ctx, const char *group, const struct cli_command *table, int argc,
		 char **argv);

/* Commands (cmd-container.c, cmd-image.c, cmd-system.c). */
int cli_cmd_run(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_create(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_ps(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_logs(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_exec(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_start(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_stop(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_restart(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_update(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_kill(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_rm(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_wait(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_inspect(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_container_inspect(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_image(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_container(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_image_load(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_image_pull(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_image_import(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_image_ls(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_image_rm(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_image_inspect(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_version(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_info(struct cli_ctx *ctx, int argc, char **argv);
/* Swarm-mode services and nodes (cmd-service.c, cmd-node.c). */
extern const struct cli_command cli_service_commands[]; /* `shoal service ...` */
extern const struct cli_command cli_node_commands[];	/* `shoal node ...` */
int cli_cmd_service(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_node(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_lb(struct cli_ctx *ctx, int argc, char **argv);
/* Network policies (cmd-policy.c). */
extern const struct cli_command cli_policy_commands[]; /* `shoal policy ...` */
int cli_cmd_policy(struct cli_ctx *ctx, int argc, char **argv);
/* Volumes (cmd-volume.c). */
extern const struct cli_command cli_volume_commands[]; /* `shoal volume ...` */
int cli_cmd_volume(struct cli_ctx *ctx, int argc, char **argv);
/* cli/cmd-secret.c */
int cli_cmd_secret(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_config(struct cli_ctx *ctx, int argc, char **argv);
/* Networks (cmd-network.c). */
extern const struct cli_command cli_network_commands[]; /* `shoal network ...` */
int cli_cmd_network(struct cli_ctx *ctx, int argc, char **argv);

/* Flag parsing with docker's (pflag) rules: --name v, --name=v, -n v, -nv,
 * clustered booleans -dit, --bool=false, "--" ends flags. */
enum cli_opt_kind { CLI_OPT_BOOL, CLI_OPT_VALUE };
struct cli_opt {
	int id;		  /* returned by cli_opts_next; use the short letter when there is one */
	const char *name; /* long name, without "--" */
	char shortname;	  /* 0: none */
	enum cli_opt_kind kind;
	const char *argname; /* placeholder in help: "string", "list", "int" */
	const char *help;
};
#define CLI_OPT_HELP  (-2) /* --help / -h was given */
#define CLI_OPT_ERROR (-1)

struct cli_opts {
	const struct cli_opt *opts; /* terminated by an entry with id 0 */
	int argc;
	char **argv;		 /* argv[0] is the command name */
	bool stop_at_positional; /* run/exec: the first non-flag ends the flags */
	int i;			 /* next argv index */
	const char *cluster;	 /* rest of a short-flag cluster */
	char **pos;		 /* positional arguments, in order */
	int npos;
	const char *value; /* value of the last option (bools: "true"/"false") */
	char error[256];
};

void cli_opts_init(struct cli_opts *p, const struct cli_opt *opts, int argc, char **argv,
		   bool stop_at_positional);
/* Returns the next option's id, 0 when done, CLI_OPT_HELP or CLI_OPT_ERROR
 * (p->error says why). For bools, p->value is "true" or "false". */
int cli_opts_next(struct cli_opts *p);
void cli_opts_done(struct cli_opts *p);
bool cli_opts_bool(const struct cli_opts *p);
/* Prints "Usage:  <cmdpath> <usage>\n\n<desc>\n\nOptions:\n..." to stdout. */
void cli_usage(const struct cli_ctx *ctx, const char *usage, const char *desc,
	       const struct cli_opt *opts);
/* Flag error: "<msg>\nSee '<cmdpath> --help'." on stderr; returns 125. */
int cli_usage_error(const struct cli_ctx *ctx, const char *msg);
/* Argument count error as docker prints it; returns 1. */
int cli_args_error(const struct cli_ctx *ctx, const char *usage, const char *desc,
		   const char *requirement);

/* API calls. Errors carry what the user should see in err->msg and the HTTP
 * status in err->status (0 when the daemon was not reached). */
struct cli_call {
	const char *method;
	const char *path;
	json_t *body;		  /* sent as application/json; borrowed */
	int body_fd;		  /* or a streamed body (< 0: none) */
	int64_t body_fd_len;	  /* Content-Length for body_fd, < 0 chunked */
	const char *content_type; /* for body_fd */
	bool upgrade;		  /* hijack: the stream follows the 101 (or 200) head */
	const char *headers;	  /* more header lines, "Name: value\r\n" each; may be NULL */
};
/* Connects to the agent; err says "Cannot connect to the shoal daemon at ...". */
int cli_connect(const struct cli_ctx *ctx, struct cli_http **ret, struct shoal_err *err);
/* Sends the call and reads the head; non-2xx statuses become errors carrying the
 * daemon's message. On success the body is left to read from *ret_conn. */
int cli_request(const struct cli_ctx *ctx, const struct cli_call *call, struct cli_http **ret_conn,
		struct cli_http_resp *ret_resp, struct shoal_err *err);
/* A whole request/response; *ret_json is NULL for empty bodies. */
int cli_call_json(const struct cli_ctx *ctx, const char *method, const char *path, json_t *body,
		  int *ret_status, json_t **ret_json, struct shoal_err *err);
/* "<prefix>/<escaped id><suffix>", e.g. "/containers/abc/start"; NULL on ENOMEM. */
char *cli_obj_path(const char *prefix, const char *id, const char *suffix);
/* Prints "Error: out of memory" and returns exit status 1. */
int cli_oom(void);
/* Percent-escapes a path segment or query value. */
char *cli_escape(const char *s);
/* Prints err->msg to stderr. */
void cli_print_err(const struct shoal_err *err);

/* Attached stream pumping for run, start -a, exec. */
struct cli_stream_opts {
	bool tty;	  /* raw stream, terminal in raw mode, resize on SIGWINCH */
	bool multiplexed; /* stdcopy frames (from the response Content-Type) */
	bool attach_stdin;
	bool sig_proxy;		  /* forward SIGINT/SIGTERM/... to the container */
	const char *container_id; /* for kill */
	const char *resize_path;  /* "/containers/<id>/resize" or "/exec/<id>/resize" */
	int in_fd, out_fd, err_fd;
};
/* Pumps until the server closes its side. Returns 0 or -errno with err set. */
int cli_stream_pump(const struct cli_ctx *ctx, struct cli_http *conn,
		    const struct cli_stream_opts *opts, struct shoal_err *err);
/* Installs signal handlers that feed cli_stream_pump (before start, so that
 * no signal between start and pumping is lost); restored by the pump. */
int cli_signals_install(bool sig_proxy, bool tty);
void cli_signals_restore(void);
/* Sends the terminal size (when out_fd is a terminal) to resize_path. */
void cli_resize(const struct cli_ctx *ctx, const char *resize_path, int tty_fd);
/* Puts the terminal in raw mode, restored by cli_tty_restore (also at exit). */
int cli_tty_raw(int fd);
void cli_tty_restore(void);

/* Building the `run`/`create` request, exposed for tests. */
struct cli_run_config {
	json_t *body; /* the /containers/create body */
	char *name;
	char *image;
	bool detach, interactive, tty, rm, sig_proxy;
};
/* Parses `run` flags (argv[0] is the command name) into cfg. Returns 0,
 * CLI_OPT_HELP (after printing usage), or a nonzero exit status with the error
 * printed. */
int cli_run_parse(struct cli_ctx *ctx, int argc, char **argv, bool create_only,
		  struct cli_run_config *cfg);
void cli_run_config_done(struct cli_run_config *cfg);
/* A `logs --since/--until` value as the API's unix time: unix seconds pass
 * through; "42m", "1h30m" are relative to now; RFC 3339 times are converted. */
int cli_parse_timestamp(const char *s, int64_t now, char *buf, size_t size);
/* "0.5" -> 500000000; -EINVAL on a bad or too precise value. */
int cli_parse_cpus(const char *s, int64_t *ret);
/* --restart POLICY[:N] as docker parses it: {"Name", "MaximumRetryCount"}
 * (the agent checks the name and the count); "" asks for nothing (*ret NULL).
 * A message in err on failure. */
int cli_parse_restart(const char *s, json_t **ret, char *err, size_t errsize);
/* --mount's CSV, as the docker CLI reads it, appended to mounts as a Docker
 * Mount object (HostConfig.Mounts, a service's ContainerSpec.Mounts). */
int cli_parse_mount(const char *v, json_t *mounts, char *err, size_t errlen);
/* "[ip:][hostport:]containerport[/proto]" (ranges "8000-8001:80-81") into
 * ExposedPorts and PortBindings objects. */
int cli_parse_publish(const char *spec, json_t *exposed, json_t *bindings, char *err,
		      size_t errsize);

/* `service create` / `service update` flags, kept in the order given so that update can
 * apply them to the service's current Spec after fetching it. */
struct cli_service_flag {
	int id;
	const char *name; /* long flag name, for messages */
	char *value;	  /* bools: "true" / "false" */
};
struct cli_service_args {
	struct cli_service_flag *flags;
	size_t nflags;
	char **pos; /* positional arguments, NULL-terminated */
	int npos;
	bool update, detach, quiet, dry_run, rollback;
};
/* Parses `service create` (update false) or `service update` flags, argv[0] being the
 * command name. Returns 0, CLI_OPT_HELP (after printing usage), or a nonzero exit status
 * with the error printed. */
int cli_service_args_parse(struct cli_ctx *ctx, int argc, char **argv, bool update,
			   struct cli_service_args *ret);
void cli_service_args_done(struct cli_service_args *a);
/* Applies the flags to a ServiceSpec: create fills an empty object (IMAGE and ARGs from
 * the positionals), update edits the service's current Spec. Returns 0, or -EINVAL /
 * -ENOMEM with a message (docker's wording) in err. */
int cli_service_spec_apply(const struct cli_service_args *a, json_t *spec, char *err,
			   size_t errsize);
/* "web=3" -> "web", 3. Returns 0 or -EINVAL with err set. */
int cli_service_scale_parse(const char *arg, char **ret_name, uint64_t *ret_replicas, char *err,
			    size_t errsize);
/* The progress block `service create/update` shows for a Service and its tasks:
 * "overall progress: 2 out of 3 tasks\n1/3: running\n...". *ret_converged tells whether
 * every desired task runs. NULL on ENOMEM. */
char *cli_service_progress_text(json_t *service, json_t *tasks, bool *ret_converged);
/* `service ps` table for tasks (GET /tasks), services (to name them) and nodes (to show
 * hostnames; may be NULL), relative to the unix time now. NULL on ENOMEM. */
char *cli_service_ps_render(json_t *tasks, json_t *services, json_t *nodes, bool trunc,
			    int64_t now);
/* Bounds how long create/update/scale wait for convergence (default 120 s). */
void cli_service_set_wait_limit(int64_t ns);
/* The NodeSpec `node update` posts: node's Spec with the changes applied. label_add
 * entries are "K=V" or "K"; removing a missing label is an error, as in docker.
 * NULL with err set. */
json_t *cli_node_spec_edit(json_t *node, const char *availability, const char *role,
			   char *const *label_add, char *const *label_rm, char *err,
			   size_t errsize);
