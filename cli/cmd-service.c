// SPDX-License-Identifier: Apache-2.0
/* `shoal service ...`: swarm-mode services through the Engine API's /services and /tasks. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli-internal.h"
#include "cli/cli.h"
#include "cli/format.h"
#include "lib/cleanup.h"
#include "lib/util.h"
#include "sched/spec.h"

#define DEFAULT_WAIT_NS	   (120 * 1000000000LL)
#define DEFAULT_MONITOR_NS 5000000000LL
#define POLL_NS		   200000000LL
#define MAX_FLAGS	   512

static int64_t wait_limit_ns = DEFAULT_WAIT_NS;

void cli_service_set_wait_limit(int64_t ns)
{
	wait_limit_ns = ns > 0 ? ns : DEFAULT_WAIT_NS;
}

/* JSON helpers */

/* The value at a dotted path ("Spec.Mode.Replicated.Replicas"); NULL when absent. */
static json_t *jget(json_t *o, const char *path)
{
	char key[128];
	while (o && *path) {
		const char *dot = strchr(path, '.');
		size_t n = dot ? (size_t)(dot - path) : strlen(path);
		if (n >= sizeof(key))
			return NULL;
		memcpy(key, path, n);
		key[n] = '\0';
		o = json_object_get(o, key);
		path += n + (dot ? 1 : 0);
	}
	return json_is_null(o) ? NULL : o;
}

static const char *jstr(json_t *o, const char *path)
{
	return json_string_value(jget(o, path));
}

static json_int_t jint(json_t *o, const char *path)
{
	json_t *v = jget(o, path);
	return json_is_number(v) ? (json_int_t)json_number_value(v) : 0;
}

/* The object under key, created when missing. */
static json_t *jobj(json_t *o, const char *key)
{
	json_t *c = json_object_get(o, key);
	if (json_is_object(c))
		return c;
	c = json_object();
	if (!c || json_object_set_new(o, key, c) < 0)
		return NULL;
	return c;
}

/* The object at a dotted path, created along the way. */
static json_t *jobj_path(json_t *o, const char *path)
{
	char key[128];
	while (o && *path) {
		const char *dot = strchr(path, '.');
		size_t n = dot ? (size_t)(dot - path) : strlen(path);
		if (n >= sizeof(key))
			return NULL;
		memcpy(key, path, n);
		key[n] = '\0';
		o = jobj(o, key);
		path += n + (dot ? 1 : 0);
	}
	return o;
}

static json_t *jarr(json_t *o, const char *key)
{
	json_t *c = json_object_get(o, key);
	if (json_is_array(c))
		return c;
	c = json_array();
	if (!c || json_object_set_new(o, key, c) < 0)
		return NULL;
	return c;
}

/* "running" -> "Running" */
static void title(const char *s, char *buf, size_t size)
{
	snprintf(buf, size, "%s", s ? s : "");
	if (buf[0])
		buf[0] = (char)toupper((unsigned char)buf[0]);
}

/* RFC 3339 (with optional fraction and offset) to unix seconds; 0 when unparsable. */
static int64_t parse_time(const char *s)
{
	if (!s)
		return 0;
	struct tm tm = {0};
	const char *end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!end)
		return 0;
	while (*end == '.' || isdigit((unsigned char)*end))
		end++;
	int64_t off = 0;
	if (*end == '+' || *end == '-') {
		int hh = 0, mm = 0;
		if (sscanf(end + 1, "%2d:%2d", &hh, &mm) == 2)
			off = (hh * 3600 + mm * 60) * (*end == '-' ? -1 : 1);
	}
	return (int64_t)timegm(&tm) - off;
}

static void short_id(const char *id, bool trunc, char *buf, size_t size)
{
	snprintf(buf, size, "%.*s", trunc ? 12 : (int)(size - 1), id ? id : "");
}

/* Image without its "@sha256:..." digest, as docker's tables show it. */
static void image_name(const char *image, bool trunc, char *buf, size_t size)
{
	snprintf(buf, size, "%s", image ? image : "");
	char *at = strchr(buf, '@');
	if (trunc && at)
		*at = '\0';
}

/* Flags */

enum {
	SOPT_NAME = 2000,
	SOPT_REPLICAS,
	SOPT_MODE,
	SOPT_ENV_ADD,
	SOPT_ENV_RM,
	SOPT_LABEL_ADD,
	SOPT_LABEL_RM,
	SOPT_CLABEL,
	SOPT_CLABEL_ADD,
	SOPT_CLABEL_RM,
	SOPT_HOSTNAME,
	SOPT_ENTRYPOINT,
	SOPT_LIMIT_CPU,
	SOPT_LIMIT_MEMORY,
	SOPT_LIMIT_PIDS,
	SOPT_RESERVE_CPU,
	SOPT_RESERVE_MEMORY,
	SOPT_CONSTRAINT,
	SOPT_CONSTRAINT_ADD,
	SOPT_CONSTRAINT_RM,
	SOPT_PREF,
	SOPT_PREF_ADD,
	SOPT_PREF_RM,
	SOPT_MAX_PER_NODE,
	SOPT_RESTART_CONDITION,
	SOPT_RESTART_DELAY,
	SOPT_RESTART_MAX_ATTEMPTS,
	SOPT_RESTART_WINDOW,
	SOPT_UPDATE_PARALLELISM,
	SOPT_UPDATE_DELAY,
	SOPT_UPDATE_FAILURE_ACTION,
	SOPT_UPDATE_MONITOR,
	SOPT_UPDATE_MAX_FAILURE_RATIO,
	SOPT_UPDATE_ORDER,
	SOPT_ROLLBACK_PARALLELISM,
	SOPT_ROLLBACK_DELAY,
	SOPT_ROLLBACK_FAILURE_ACTION,
	SOPT_ROLLBACK_MONITOR,
	SOPT_ROLLBACK_MAX_FAILURE_RATIO,
	SOPT_ROLLBACK_ORDER,
	SOPT_HEALTH_CMD,
	SOPT_HEALTH_INTERVAL,
	SOPT_HEALTH_TIMEOUT,
	SOPT_HEALTH_RETRIES,
	SOPT_HEALTH_START_PERIOD,
	SOPT_NO_HEALTHCHECK,
	SOPT_STOP_GRACE_PERIOD,
	SOPT_STOP_SIGNAL,
	SOPT_READ_ONLY,
	SOPT_CAP_ADD,
	SOPT_CAP_DROP,
	SOPT_PUBLISH_ADD,
	SOPT_PUBLISH_RM,
	SOPT_NETWORK,
	SOPT_NETWORK_ADD,
	SOPT_NETWORK_RM,
	SOPT_ENDPOINT_MODE,
	SOPT_DRY_RUN,
	SOPT_IMAGE,
	SOPT_ARGS,
	SOPT_FORCE,
	SOPT_ROLLBACK,
	SOPT_PRETTY,
};

/* Flags create and update share. */
/* clang-format off */
#define SERVICE_COMMON_OPTS \
	{'d', "detach", 'd', CLI_OPT_BOOL, NULL, \
	 "Exit immediately instead of waiting for the service to converge"}, \
	{'q', "quiet", 'q', CLI_OPT_BOOL, NULL, \
	 "Suppress progress output"}, \
	{'w', "workdir", 'w', CLI_OPT_VALUE, "string", \
	 "Working directory inside the container"}, \
	{'u', "user", 'u', CLI_OPT_VALUE, "string", \
	 "Username or UID (format: <name|uid>[:<group|gid>])"}, \
	{SOPT_HOSTNAME, "hostname", 0, CLI_OPT_VALUE, "string", \
	 "Container hostname"}, \
	{SOPT_ENTRYPOINT, "entrypoint", 0, CLI_OPT_VALUE, "command", \
	 "Overwrite the default ENTRYPOINT of the image"}, \
	{SOPT_REPLICAS, "replicas", 0, CLI_OPT_VALUE, "uint", \
	 "Number of tasks"}, \
	{SOPT_MAX_PER_NODE, "replicas-max-per-node", 0, CLI_OPT_VALUE, "uint", \
	 "Maximum number of tasks per node (default 0 = unlimited)"}, \
	{SOPT_LIMIT_CPU, "limit-cpu", 0, CLI_OPT_VALUE, "decimal", \
	 "Limit CPUs"}, \
	{SOPT_LIMIT_MEMORY, "limit-memory", 0, CLI_OPT_VALUE, "bytes", \
	 "Limit Memory"}, \
	{SOPT_LIMIT_PIDS, "limit-pids", 0, CLI_OPT_VALUE, "int", \
	 "Limit maximum number of processes (default 0 = unlimited)"}, \
	{SOPT_RESERVE_CPU, "reserve-cpu", 0, CLI_OPT_VALUE, "decimal", \
	 "Reserve CPUs"}, \
	{SOPT_RESERVE_MEMORY, "reserve-memory", 0, CLI_OPT_VALUE, "bytes", \
	 "Reserve Memory"}, \
	{SOPT_RESTART_CONDITION, "restart-condition", 0, CLI_OPT_VALUE, "string", \
	 "Restart when condition is met (\"none\", \"on-failure\", \"any\")"}, \
	{SOPT_RESTART_DELAY, "restart-delay", 0, CLI_OPT_VALUE, "duration", \
	 "Delay between restart attempts (ns|us|ms|s|m|h)"}, \
	{SOPT_RESTART_MAX_ATTEMPTS, "restart-max-attempts", 0, CLI_OPT_VALUE, "uint", \
	 "Maximum number of restarts before giving up"}, \
	{SOPT_RESTART_WINDOW, "restart-window", 0, CLI_OPT_VALUE, "duration", \
	 "Window used to evaluate the restart policy (ns|us|ms|s|m|h)"}, \
	{SOPT_UPDATE_PARALLELISM, "update-parallelism", 0, CLI_OPT_VALUE, "uint", \
	 "Maximum number of tasks updated simultaneously (0 to update all at once)"}, \
	{SOPT_UPDATE_DELAY, "update-delay", 0, CLI_OPT_VALUE, "duration", \
	 "Delay between updates (ns|us|ms|s|m|h)"}, \
	{SOPT_UPDATE_FAILURE_ACTION, "update-failure-action", 0, CLI_OPT_VALUE, "string", \
	 "Action on update failure (\"pause\", \"continue\", \"rollback\")"}, \
	{SOPT_UPDATE_MONITOR, "update-monitor", 0, CLI_OPT_VALUE, "duration", \
	 "Duration after each task update to monitor for failure (ns|us|ms|s|m|h)"}, \
	{SOPT_UPDATE_MAX_FAILURE_RATIO, "update-max-failure-ratio", 0, CLI_OPT_VALUE, "float", \
	 "Failure rate to tolerate during an update"}, \
	{SOPT_UPDATE_ORDER, "update-order", 0, CLI_OPT_VALUE, "string", \
	 "Update order (\"start-first\", \"stop-first\")"}, \
	{SOPT_ROLLBACK_PARALLELISM, "rollback-parallelism", 0, CLI_OPT_VALUE, "uint", \
	 "Maximum number of tasks rolled back simultaneously (0 to roll back all at once)"}, \
	{SOPT_ROLLBACK_DELAY, "rollback-delay", 0, CLI_OPT_VALUE, "duration", \
	 "Delay between task rollbacks (ns|us|ms|s|m|h)"}, \
	{SOPT_ROLLBACK_FAILURE_ACTION, "rollback-failure-action", 0, CLI_OPT_VALUE, "string", \
	 "Action on rollback failure (\"pause\", \"continue\")"}, \
	{SOPT_ROLLBACK_MONITOR, "rollback-monitor", 0, CLI_OPT_VALUE, "duration", \
	 "Duration after each task rollback to monitor for failure (ns|us|ms|s|m|h)"}, \
	{SOPT_ROLLBACK_MAX_FAILURE_RATIO, "rollback-max-failure-ratio", 0, CLI_OPT_VALUE, "float", \
	 "Failure rate to tolerate during a rollback"}, \
	{SOPT_ROLLBACK_ORDER, "rollback-order", 0, CLI_OPT_VALUE, "string", \
	 "Rollback order (\"start-first\", \"stop-first\")"}, \
	{SOPT_HEALTH_CMD, "health-cmd", 0, CLI_OPT_VALUE, "string", \
	 "Command to run to check health"}, \
	{SOPT_HEALTH_INTERVAL, "health-interval", 0, CLI_OPT_VALUE, "duration", \
	 "Time between running the check (ms|s|m|h)"}, \
	{SOPT_HEALTH_TIMEOUT, "health-timeout", 0, CLI_OPT_VALUE, "duration", \
	 "Maximum time to allow one check to run (ms|s|m|h)"}, \
	{SOPT_HEALTH_RETRIES, "health-retries", 0, CLI_OPT_VALUE, "int", \
	 "Consecutive failures needed to report unhealthy"}, \
	{SOPT_HEALTH_START_PERIOD, "health-start-period", 0, CLI_OPT_VALUE, "duration", \
	 "Start period for the container to initialize before counting retries towards unstable (ms|s|m|h)"}, \
	{SOPT_NO_HEALTHCHECK, "no-healthcheck", 0, CLI_OPT_BOOL, NULL, \
	 "Disable any container-specified HEALTHCHECK"}, \
	{SOPT_STOP_GRACE_PERIOD, "stop-grace-period", 0, CLI_OPT_VALUE, "duration", \
	 "Time to wait before force killing a container (ns|us|ms|s|m|h) (default 10s)"}, \
	{SOPT_STOP_SIGNAL, "stop-signal", 0, CLI_OPT_VALUE, "string", \
	 "Signal to stop the container"}, \
	{SOPT_READ_ONLY, "read-only", 0, CLI_OPT_BOOL, NULL, \
	 "Mount the container's root filesystem as read only"}, \
	{SOPT_CAP_ADD, "cap-add", 0, CLI_OPT_VALUE, "list", \
	 "Add Linux capabilities"}, \
	{SOPT_CAP_DROP, "cap-drop", 0, CLI_OPT_VALUE, "list", \
	 "Drop Linux capabilities"}, \
	{SOPT_ENDPOINT_MODE, "endpoint-mode", 0, CLI_OPT_VALUE, "string", \
	 "Endpoint mode (vip or dnsrr) (default \"vip\")"}
/* clang-format on */

static const struct cli_opt create_opts[] = {
	SERVICE_COMMON_OPTS,
	{SOPT_NAME, "name", 0, CLI_OPT_VALUE, "string", "Service name"},
	{SOPT_MODE, "mode", 0, CLI_OPT_VALUE, "string",
	 "Service mode (\"replicated\", \"global\") (default \"replicated\")"},
	{'e', "env", 'e', CLI_OPT_VALUE, "list", "Set environment variables"},
	{'l', "label", 'l', CLI_OPT_VALUE, "list", "Service labels"},
	{SOPT_CLABEL, "container-label", 0, CLI_OPT_VALUE, "list", "Container labels"},
	{SOPT_CONSTRAINT, "constraint", 0, CLI_OPT_VALUE, "list", "Placement constraints"},
	{SOPT_PREF, "placement-pref", 0, CLI_OPT_VALUE, "pref",
	 "Add a placement preference (spread=node.labels.<key>)"},
	{'p', "publish", 'p', CLI_OPT_VALUE, "port",
	 "Publish a port as a node port (published=8080,target=80[,protocol=udp][,mode=host] or 8080:80[/udp])"},
	{SOPT_NETWORK, "network", 0, CLI_OPT_VALUE, "network", "Network attachments"},
	{SOPT_DRY_RUN, "dry-run", 0, CLI_OPT_BOOL, NULL,
	 "Show where the tasks would be placed, create nothing"},
	{0},
};

static const struct cli_opt update_opts[] = {
	SERVICE_COMMON_OPTS,
	{SOPT_IMAGE, "image", 0, CLI_OPT_VALUE, "string", "Service image tag"},
	{SOPT_ARGS, "args", 0, CLI_OPT_VALUE, "command", "Service command args"},
	{SOPT_ENV_ADD, "env-add", 0, CLI_OPT_VALUE, "list",
	 "Add or update an environment variable"},
	{SOPT_ENV_RM, "env-rm", 0, CLI_OPT_VALUE, "list", "Remove an environment variable"},
	{SOPT_LABEL_ADD, "label-add", 0, CLI_OPT_VALUE, "list", "Add or update a service label"},
	{SOPT_LABEL_RM, "label-rm", 0, CLI_OPT_VALUE, "list", "Remove a label by its key"},
	{SOPT_CLABEL_ADD, "container-label-add", 0, CLI_OPT_VALUE, "list",
	 "Add or update a container label"},
	{SOPT_CLABEL_RM, "container-label-rm", 0, CLI_OPT_VALUE, "list",
	 "Remove a container label by its key"},
	{SOPT_CONSTRAINT_ADD, "constraint-add", 0, CLI_OPT_VALUE, "list",
	 "Add or update a placement constraint"},
	{SOPT_CONSTRAINT_RM, "constraint-rm", 0, CLI_OPT_VALUE, "list", "Remove a constraint"},
	{SOPT_PREF_ADD, "placement-pref-add", 0, CLI_OPT_VALUE, "pref",
	 "Add a placement preference"},
	{SOPT_PREF_RM, "placement-pref-rm", 0, CLI_OPT_VALUE, "pref",
	 "Remove a placement preference"},
	{SOPT_PUBLISH_ADD, "publish-add", 0, CLI_OPT_VALUE, "port",
	 "Add or update a published port"},
	{SOPT_PUBLISH_RM, "publish-rm", 0, CLI_OPT_VALUE, "port",
	 "Remove a published port by its target port"},
	{SOPT_NETWORK_ADD, "network-add", 0, CLI_OPT_VALUE, "network", "Add a network"},
	{SOPT_NETWORK_RM, "network-rm", 0, CLI_OPT_VALUE, "list", "Remove a network"},
	{SOPT_FORCE, "force", 0, CLI_OPT_BOOL, NULL, "Force update even if no changes require it"},
	{SOPT_ROLLBACK, "rollback", 0, CLI_OPT_BOOL, NULL, "Rollback to previous specification"},
	{0},
};

#define CREATE_USAGE "[OPTIONS] IMAGE [COMMAND] [ARG...]"
#define CREATE_DESC  "Create a new service"
#define UPDATE_USAGE "[OPTIONS] SERVICE"
#define UPDATE_DESC  "Update a service"

void cli_service_args_done(struct cli_service_args *a)
{
	for (size_t i = 0; i < a->nflags; i++)
		free(a->flags[i].value);
	free(a->flags);
	strv_free(a->pos);
	*a = (struct cli_service_args){0};
}

static const char *opt_name(const struct cli_opt *opts, int id)
{
	for (const struct cli_opt *o = opts; o->id; o++)
		if (o->id == id)
			return o->name;
	return "?";
}

int cli_service_args_parse(struct cli_ctx *ctx, int argc, char **argv, bool update,
			   struct cli_service_args *ret)
{
	const struct cli_opt *opts = update ? update_opts : create_opts;
	struct cli_service_args a = {.update = update};
	struct cli_opts p;
	/* create: everything from IMAGE on belongs to the command. */
	cli_opts_init(&p, opts, argc, argv, !update);
	int id;
	while ((id = cli_opts_next(&p)) != 0) {
		if (id == CLI_OPT_HELP) {
			cli_opts_done(&p);
			cli_service_args_done(&a);
			cli_usage(ctx, update ? UPDATE_USAGE : CREATE_USAGE,
				  update ? UPDATE_DESC : CREATE_DESC, opts);
			return CLI_OPT_HELP;
		}
		if (id < 0) {
			int r = cli_usage_error(ctx, p.error);
			cli_opts_done(&p);
			cli_service_args_done(&a);
			return r;
		}
		switch (id) {
		case 'd':
			a.detach = cli_opts_bool(&p);
			continue;
		case 'q':
			a.quiet = cli_opts_bool(&p);
			continue;
		case SOPT_DRY_RUN:
			a.dry_run = cli_opts_bool(&p);
			continue;
		case SOPT_ROLLBACK:
			a.rollback = cli_opts_bool(&p);
			continue;
		default:
			break;
		}
		if (a.nflags >= MAX_FLAGS) {
			cli_opts_done(&p);
			cli_service_args_done(&a);
			return cli_usage_error(ctx, "too many flags");
		}
		struct cli_service_flag *nf = realloc(a.flags, (a.nflags + 1) * sizeof(*nf));
		if (!nf)
			goto oom;
		a.flags = nf;
		nf[a.nflags] = (struct cli_service_flag){
			.id = id, .name = opt_name(opts, id), .value = strdup(p.value)};
		if (!nf[a.nflags++].value)
			goto oom;
	}
	for (int i = 0; i < p.npos; i++)
		if (strv_push(&a.pos, p.pos[i]) < 0)
			goto oom;
	a.npos = p.npos;
	cli_opts_done(&p);
	if (update && a.npos != 1) {
		cli_service_args_done(&a);
		return cli_args_error(ctx, UPDATE_USAGE, UPDATE_DESC,
				      "requires exactly 1 argument");
	}
	if (!update && a.npos < 1) {
		cli_service_args_done(&a);
		return cli_args_error(ctx, CREATE_USAGE, CREATE_DESC,
				      "requires at least 1 argument");
	}
	if (a.rollback && a.nflags > 0) {
		cli_service_args_done(&a);
		return cli_usage_error(
			ctx,
			"--rollback cannot be combined with other flags than --detach and --quiet");
	}
	*ret = a;
	return 0;
oom:
	cli_opts_done(&p);
	cli_service_args_done(&a);
	return cli_oom();
}

/* Applying flags to a spec */

struct apply {
	const struct cli_service_flag *f;
	char *err;
	size_t errsize;
};

static int bad_value(struct apply *ap, const char *why)
{
	snprintf(ap->err, ap->errsize, "invalid argument \"%s\" for \"--%s\" flag: %s",
		 ap->f->value, ap->f->name, why);
	return -EINVAL;
}

static int parse_uint(struct apply *ap, uint64_t *ret)
{
	const char *s = ap->f->value;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (!*s || *s == '-' || *end || errno) {
		char why[160];
		snprintf(why, sizeof(why), "strconv.ParseUint: parsing \"%.64s\": %s", s,
			 errno == ERANGE ? "value out of range" : "invalid syntax");
		return bad_value(ap, why);
	}
	*ret = v;
	return 0;
}

static int parse_int(struct apply *ap, int64_t *ret)
{
	const char *s = ap->f->value;
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (!*s || *end || errno) {
		char why[160];
		snprintf(why, sizeof(why), "strconv.ParseInt: parsing \"%.64s\": invalid syntax",
			 s);
		return bad_value(ap, why);
	}
	*ret = v;
	return 0;
}

static int parse_duration(struct apply *ap, int64_t *ret)
{
	struct shoal_err e = {0};
	if (spec_parse_duration(ap->f->value, ret, &e) < 0)
		return bad_value(ap, e.msg);
	return 0;
}

static int set_int(json_t *o, const char *key, json_int_t v)
{
	return o && json_object_set_new(o, key, json_integer(v)) == 0 ? 0 : -ENOMEM;
}

static int set_str(json_t *o, const char *key, const char *v)
{
	return o && json_object_set_new(o, key, json_string(v)) == 0 ? 0 : -ENOMEM;
}

/* "K=V" or "K" (value ""). */
static int label_set(json_t *labels, const char *kv)
{
	if (!labels)
		return -ENOMEM;
	const char *eq = strchr(kv, '=');
	_cleanup_free_ char *k = eq ? strndup(kv, (size_t)(eq - kv)) : strdup(kv);
	if (!k)
		return -ENOMEM;
	return json_object_set_new(labels, k, json_string(eq ? eq + 1 : "")) == 0 ? 0 : -ENOMEM;
}

/* Removes "KEY=..." (and a bare "KEY") entries from a string array. */
static void strarr_remove_key(json_t *arr, const char *key)
{
	size_t klen = strcspn(key, "=");
	for (size_t i = 0; i < json_array_size(arr);) {
		const char *s = json_string_value(json_array_get(arr, i));
		if (s && strncmp(s, key, klen) == 0 && (s[klen] == '=' || s[klen] == '\0'))
			json_array_remove(arr, i);
		else
			i++;
	}
}

static void strarr_remove(json_t *arr, const char *v)
{
	for (size_t i = 0; i < json_array_size(arr);) {
		const char *s = json_string_value(json_array_get(arr, i));
		if (s && strcmp(s, v) == 0)
			json_array_remove(arr, i);
		else
			i++;
	}
}

static int strarr_add_unique(json_t *arr, const char *v)
{
	if (!arr)
		return -ENOMEM;
	strarr_remove(arr, v);
	return json_array_append_new(arr, json_string(v)) == 0 ? 0 : -ENOMEM;
}

/* Docker's capability names: "net_admin" -> "CAP_NET_ADMIN", "all" -> "ALL". */
static char *cap_normalize(const char *s)
{
	_cleanup_free_ char *up = strdup(s);
	if (!up)
		return NULL;
	for (char *c = up; *c; c++)
		*c = (char)toupper((unsigned char)*c);
	char *r = NULL;
	if (strcmp(up, "ALL") == 0 || strncmp(up, "CAP_", 4) == 0)
		return TAKE_PTR(up);
	if (asprintf(&r, "CAP_%s", up) < 0)
		return NULL;
	return r;
}

/* Splits a command line on blanks, honouring single and double quotes. */
static json_t *split_words(const char *s)
{
	json_t *arr = json_array();
	_cleanup_free_ char *buf = malloc(strlen(s) + 1);
	if (!arr || !buf) {
		json_decref(arr);
		return NULL;
	}
	const char *p = s;
	for (;;) {
		while (*p == ' ' || *p == '\t' || *p == '\n')
			p++;
		if (!*p)
			break;
		size_t n = 0;
		char quote = 0;
		for (; *p && (quote || (*p != ' ' && *p != '\t' && *p != '\n')); p++) {
			if (quote && *p == quote)
				quote = 0;
			else if (!quote && (*p == '\'' || *p == '"'))
				quote = *p;
			else if (*p == '\\' && quote != '\'' && p[1])
				buf[n++] = *++p;
			else
				buf[n++] = *p;
		}
		buf[n] = '\0';
		json_array_append_new(arr, json_string(buf));
	}
	return arr;
}

static json_t *port_json(const struct port_config *pc)
{
	json_t *o = json_pack("{s:s,s:i,s:s}", "Protocol", spec_protocol_str(pc->protocol),
			      "TargetPort", (int)pc->target_port, "PublishMode",
			      spec_publish_mode_str(pc->mode));
	if (o && pc->published_port)
		json_object_set_new(o, "PublishedPort", json_integer(pc->published_port));
	return o;
}

static bool port_matches(json_t *port, const struct port_config *pc, bool match_published)
{
	const char *proto = json_string_value(json_object_get(port, "Protocol"));
	if (!proto)
		proto = "tcp";
	if (jint(port, "TargetPort") != pc->target_port ||
	    strcmp(proto, spec_protocol_str(pc->protocol)) != 0)
		return false;
	return !match_published || jint(port, "PublishedPort") == pc->published_port;
}

static int apply_publish(struct apply *ap, json_t *spec, bool add)
{
	struct port_config pc;
	struct shoal_err e = {0};
	if (spec_parse_publish(ap->f->value, &pc, &e) < 0)
		return bad_value(ap, e.msg);
	json_t *ports = jarr(jobj(spec, "EndpointSpec"), "Ports");
	if (!ports)
		return -ENOMEM;
	/* A published port is unique per protocol: add replaces, rm removes by target. */
	for (size_t i = 0; i < json_array_size(ports);) {
		json_t *pt = json_array_get(ports, i);
		const char *proto = json_string_value(json_object_get(pt, "Protocol"));
		bool same_pub = pc.published_port &&
				jint(pt, "PublishedPort") == pc.published_port &&
				strcmp(proto ? proto : "tcp", spec_protocol_str(pc.protocol)) == 0;
		bool remove = add ? same_pub || port_matches(pt, &pc, true)
				  : port_matches(pt, &pc, pc.published_port != 0);
		if (remove)
			json_array_remove(ports, i);
		else
			i++;
	}
	if (!add)
		return 0;
	return json_array_append_new(ports, port_json(&pc)) == 0 ? 0 : -ENOMEM;
}

static int apply_constraint(struct apply *ap, json_t *spec, bool add)
{
	struct constraint c = {0};
	struct shoal_err e = {0};
	if (spec_parse_constraint(ap->f->value, &c, &e) < 0)
		return bad_value(ap, e.msg);
	_cleanup_free_ char *norm = spec_format_constraint(&c);
	spec_constraint_done(&c);
	json_t *arr = jarr(jobj_path(spec, "TaskTemplate.Placement"), "Constraints");
	if (!norm || !arr)
		return -ENOMEM;
	/* Existing entries compare in normal form: "a == b" and "a==b" are one constraint. */
	for (size_t i = 0; i < json_array_size(arr);) {
		const char *s = json_string_value(json_array_get(arr, i));
		struct constraint o = {0};
		_cleanup_free_ char *onorm = NULL;
		if (s && spec_parse_constraint(s, &o, NULL) == 0) {
			onorm = spec_format_constraint(&o);
			spec_constraint_done(&o);
		}
		if (s && (strcmp(s, norm) == 0 || (onorm && strcmp(onorm, norm) == 0)))
			json_array_remove(arr, i);
		else
			i++;
	}
	if (!add)
		return 0;
	return json_array_append_new(arr, json_string(norm)) == 0 ? 0 : -ENOMEM;
}

static int apply_pref(struct apply *ap, json_t *spec, bool add)
{
	struct placement_pref pp = {0};
	struct shoal_err e = {0};
	if (spec_parse_placement_pref(ap->f->value, &pp, &e) < 0)
		return bad_value(ap, e.msg);
	_cleanup_free_ char *key = pp.spread_key;
	json_t *arr = jarr(jobj_path(spec, "TaskTemplate.Placement"), "Preferences");
	if (!arr)
		return -ENOMEM;
	for (size_t i = 0; i < json_array_size(arr);) {
		const char *k = jstr(json_array_get(arr, i), "Spread.SpreadDescriptor");
		if (k && strcmp(k, key) == 0)
			json_array_remove(arr, i);
		else
			i++;
	}
	if (!add)
		return 0;
	return json_array_append_new(arr,
				     json_pack("{s:{s:s}}", "Spread", "SpreadDescriptor", key)) == 0
		       ? 0
		       : -ENOMEM;
}

static int apply_network(json_t *spec, const char *name, bool add)
{
	json_t *arr = jarr(jobj(spec, "TaskTemplate"), "Networks");
	if (!arr)
		return -ENOMEM;
	for (size_t i = 0; i < json_array_size(arr);) {
		const char *t = jstr(json_array_get(arr, i), "Target");
		if (t && strcmp(t, name) == 0)
			json_array_remove(arr, i);
		else
			i++;
	}
	if (!add)
		return 0;
	return json_array_append_new(arr, json_pack("{s:s}", "Target", name)) == 0 ? 0 : -ENOMEM;
}

static int apply_cpu(struct apply *ap, json_t *o, const char *key)
{
	int64_t v;
	if (cli_parse_cpus(ap->f->value, &v) < 0)
		return bad_value(ap, "expected a number of CPUs such as 0.5 or 2");
	return set_int(o, key, v);
}

static int apply_memory(struct apply *ap, json_t *o, const char *key)
{
	int64_t v;
	if (parse_size(ap->f->value, &v) < 0)
		return bad_value(ap, "expected a size such as 64m or 1g");
	return set_int(o, key, v);
}

static int apply_update_config(struct apply *ap, json_t *spec, int field, bool rollback)
{
	json_t *uc = jobj(spec, rollback ? "RollbackConfig" : "UpdateConfig");
	struct shoal_err e = {0};
	int64_t d;
	uint64_t u;
	int r;
	switch (field) {
	case 0:
		if ((r = parse_uint(ap, &u)) < 0)
			return r;
		return set_int(uc, "Parallelism", (json_int_t)u);
	case 1:
		if ((r = parse_duration(ap, &d)) < 0)
			return r;
		return set_int(uc, "Delay", d);
	case 2: {
		enum update_failure_action fa;
		if (spec_parse_failure_action(ap->f->value, &fa, &e) < 0 ||
		    (rollback && fa == FAILURE_ROLLBACK))
			return bad_value(ap, rollback ? "expected \"pause\" or \"continue\""
						      : "expected \"pause\", \"continue\" or "
							"\"rollback\"");
		return set_str(uc, "FailureAction", spec_failure_action_str(fa));
	}
	case 3:
		if ((r = parse_duration(ap, &d)) < 0)
			return r;
		return set_int(uc, "Monitor", d);
	case 4: {
		char *end;
		double v = strtod(ap->f->value, &end);
		if (!*ap->f->value || *end || !isfinite(v) || v < 0 || v > 1)
			return bad_value(ap, "expected a ratio between 0 and 1");
		return uc && json_object_set_new(uc, "MaxFailureRatio", json_real(v)) == 0
			       ? 0
			       : -ENOMEM;
	}
	default: {
		enum update_order o;
		if (spec_parse_update_order(ap->f->value, &o, &e) < 0)
			return bad_value(ap, "expected \"start-first\" or \"stop-first\"");
		return set_str(uc, "Order", spec_update_order_str(o));
	}
	}
}

static bool is_global(json_t *spec)
{
	return jget(spec, "Mode.Global") != NULL;
}

static int apply_one(struct apply *ap, json_t *spec, bool *health_set, bool *no_health)
{
	const struct cli_service_flag *f = ap->f;
	json_t *tt = jobj(spec, "TaskTemplate");
	json_t *cs = jobj(tt, "ContainerSpec");
	if (!tt || !cs)
		return -ENOMEM;
	struct shoal_err e = {0};
	int64_t d, i;
	uint64_t u;
	int r;
	switch (f->id) {
	case SOPT_NAME:
		if (spec_validate_name(f->value, &e) < 0)
			return bad_value(ap, e.msg);
		return set_str(spec, "Name", f->value);
	case SOPT_MODE:
		if (strcmp(f->value, "global") == 0) {
			json_object_del(spec, "Mode");
			return json_object_set_new(spec, "Mode", json_pack("{s:{}}", "Global"));
		}
		if (strcmp(f->value, "replicated") != 0)
			return bad_value(ap, "expected \"replicated\" or \"global\"");
		json_object_del(jobj(spec, "Mode"), "Global");
		return jobj_path(spec, "Mode.Replicated") ? 0 : -ENOMEM;
	case SOPT_REPLICAS:
		if ((r = parse_uint(ap, &u)) < 0)
			return r;
		if (u > SPEC_MAX_REPLICAS)
			return bad_value(ap, "too many replicas");
		return set_int(jobj_path(spec, "Mode.Replicated"), "Replicas", (json_int_t)u);
	case SOPT_MAX_PER_NODE:
		if ((r = parse_uint(ap, &u)) < 0)
			return r;
		return set_int(jobj(tt, "Placement"), "MaxReplicas", (json_int_t)u);
	case 'e':
	case SOPT_ENV_ADD: {
		json_t *env = jarr(cs, "Env");
		if (!env)
			return -ENOMEM;
		if (f->id == SOPT_ENV_ADD)
			strarr_remove_key(env, f->value);
		return cli_env_add(env, f->value) < 0 ? -ENOMEM : 0;
	}
	case SOPT_ENV_RM:
		strarr_remove_key(json_object_get(cs, "Env"), f->value);
		return 0;
	case 'l':
	case SOPT_LABEL_ADD:
		return label_set(jobj(spec, "Labels"), f->value);
	case SOPT_LABEL_RM:
		json_object_del(json_object_get(spec, "Labels"), f->value);
		return 0;
	case SOPT_CLABEL:
	case SOPT_CLABEL_ADD:
		return label_set(jobj(cs, "Labels"), f->value);
	case SOPT_CLABEL_RM:
		json_object_del(json_object_get(cs, "Labels"), f->value);
		return 0;
	case 'w':
		return set_str(cs, "Dir", f->value);
	case 'u':
		return set_str(cs, "User", f->value);
	case SOPT_HOSTNAME:
		return set_str(cs, "Hostname", f->value);
	case SOPT_ENTRYPOINT: {
		json_t *words = split_words(f->value);
		return words && json_object_set_new(cs, "Command", words) == 0 ? 0 : -ENOMEM;
	}
	case SOPT_IMAGE:
		return set_str(cs, "Image", f->value);
	case SOPT_ARGS: {
		json_t *words = split_words(f->value);
		return words && json_object_set_new(cs, "Args", words) == 0 ? 0 : -ENOMEM;
	}
	case SOPT_LIMIT_CPU:
		return apply_cpu(ap, jobj_path(tt, "Resources.Limits"), "NanoCPUs");
	case SOPT_LIMIT_MEMORY:
		return apply_memory(ap, jobj_path(tt, "Resources.Limits"), "MemoryBytes");
	case SOPT_LIMIT_PIDS:
		if ((r = parse_int(ap, &i)) < 0)
			return r;
		if (i < 0)
			return bad_value(ap, "must not be negative");
		return set_int(jobj_path(tt, "Resources.Limits"), "Pids", i);
	case SOPT_RESERVE_CPU:
		return apply_cpu(ap, jobj_path(tt, "Resources.Reservations"), "NanoCPUs");
	case SOPT_RESERVE_MEMORY:
		return apply_memory(ap, jobj_path(tt, "Resources.Reservations"), "MemoryBytes");
	case SOPT_CONSTRAINT:
	case SOPT_CONSTRAINT_ADD:
		return apply_constraint(ap, spec, true);
	case SOPT_CONSTRAINT_RM:
		return apply_constraint(ap, spec, false);
	case SOPT_PREF:
	case SOPT_PREF_ADD:
		return apply_pref(ap, spec, true);
	case SOPT_PREF_RM:
		return apply_pref(ap, spec, false);
	case SOPT_RESTART_CONDITION: {
		enum restart_condition c;
		if (spec_parse_restart_condition(f->value, &c, &e) < 0)
			return bad_value(ap, e.msg);
		return set_str(jobj(tt, "RestartPolicy"), "Condition",
			       spec_restart_condition_str(c));
	}
	case SOPT_RESTART_DELAY:
		if ((r = parse_duration(ap, &d)) < 0)
			return r;
		return set_int(jobj(tt, "RestartPolicy"), "Delay", d);
	case SOPT_RESTART_MAX_ATTEMPTS:
		if ((r = parse_uint(ap, &u)) < 0)
			return r;
		return set_int(jobj(tt, "RestartPolicy"), "MaxAttempts", (json_int_t)u);
	case SOPT_RESTART_WINDOW:
		if ((r = parse_duration(ap, &d)) < 0)
			return r;
		return set_int(jobj(tt, "RestartPolicy"), "Window", d);
	case SOPT_UPDATE_PARALLELISM:
	case SOPT_UPDATE_DELAY:
	case SOPT_UPDATE_FAILURE_ACTION:
	case SOPT_UPDATE_MONITOR:
	case SOPT_UPDATE_MAX_FAILURE_RATIO:
	case SOPT_UPDATE_ORDER:
		return apply_update_config(ap, spec, f->id - SOPT_UPDATE_PARALLELISM, false);
	case SOPT_ROLLBACK_PARALLELISM:
	case SOPT_ROLLBACK_DELAY:
	case SOPT_ROLLBACK_FAILURE_ACTION:
	case SOPT_ROLLBACK_MONITOR:
	case SOPT_ROLLBACK_MAX_FAILURE_RATIO:
	case SOPT_ROLLBACK_ORDER:
		return apply_update_config(ap, spec, f->id - SOPT_ROLLBACK_PARALLELISM, true);
	case SOPT_HEALTH_CMD: {
		*health_set = true;
		json_t *test = json_pack("[s,s]", "CMD-SHELL", f->value);
		return test && json_object_set_new(jobj(cs, "Healthcheck"), "Test", test) == 0
			       ? 0
			       : -ENOMEM;
	}
	case SOPT_HEALTH_INTERVAL:
	case SOPT_HEALTH_TIMEOUT:
	case SOPT_HEALTH_START_PERIOD: {
		*health_set = true;
		if ((r = parse_duration(ap, &d)) < 0)
			return r;
		if (d != 0 && d < SPEC_MIN_HEALTH_DURATION)
			return bad_value(ap, "must be at least 1ms");
		const char *key = f->id == SOPT_HEALTH_INTERVAL	 ? "Interval"
				  : f->id == SOPT_HEALTH_TIMEOUT ? "Timeout"
								 : "StartPeriod";
		return set_int(jobj(cs, "Healthcheck"), key, d);
	}
	case SOPT_HEALTH_RETRIES:
		*health_set = true;
		if ((r = parse_int(ap, &i)) < 0)
			return r;
		if (i < 0)
			return bad_value(ap, "must not be negative");
		return set_int(jobj(cs, "Healthcheck"), "Retries", i);
	case SOPT_NO_HEALTHCHECK:
		*no_health = strcmp(f->value, "true") == 0;
		if (*no_health)
			return json_object_set_new(cs, "Healthcheck",
						   json_pack("{s:[s]}", "Test", "NONE"));
		return 0;
	case SOPT_STOP_GRACE_PERIOD:
		if ((r = parse_duration(ap, &d)) < 0)
			return r;
		return set_int(cs, "StopGracePeriod", d);
	case SOPT_STOP_SIGNAL:
		return set_str(cs, "StopSignal", f->value);
	case SOPT_READ_ONLY:
		return json_object_set_new(cs, "ReadOnly",
					   json_boolean(strcmp(f->value, "true") == 0));
	case SOPT_CAP_ADD:
	case SOPT_CAP_DROP: {
		_cleanup_free_ char *cap = cap_normalize(f->value);
		if (!cap)
			return -ENOMEM;
		bool add = f->id == SOPT_CAP_ADD;
		/* Adding what was dropped (or the reverse) undoes the earlier choice. */
		strarr_remove(json_object_get(cs, add ? "CapabilityDrop" : "CapabilityAdd"), cap);
		return strarr_add_unique(jarr(cs, add ? "CapabilityAdd" : "CapabilityDrop"), cap);
	}
	case 'p':
	case SOPT_PUBLISH_ADD:
		return apply_publish(ap, spec, true);
	case SOPT_PUBLISH_RM:
		return apply_publish(ap, spec, false);
	case SOPT_NETWORK:
	case SOPT_NETWORK_ADD:
		return apply_network(spec, f->value, true);
	case SOPT_NETWORK_RM:
		return apply_network(spec, f->value, false);
	case SOPT_ENDPOINT_MODE: {
		enum endpoint_mode m;
		if (spec_parse_endpoint_mode(f->value, &m, &e) < 0)
			return bad_value(ap, e.msg);
		return set_str(jobj(spec, "EndpointSpec"), "Mode", spec_endpoint_mode_str(m));
	}
	case SOPT_FORCE:
		if (strcmp(f->value, "true") != 0)
			return 0;
		return set_int(tt, "ForceUpdate", jint(tt, "ForceUpdate") + 1);
	default:
		return 0;
	}
}

int cli_service_spec_apply(const struct cli_service_args *a, json_t *spec, char *err,
			   size_t errsize)
{
	err[0] = '\0';
	if (!a->update) {
		json_t *cs = jobj_path(spec, "TaskTemplate.ContainerSpec");
		if (!cs || set_str(cs, "Image", a->pos[0]) < 0)
			return -ENOMEM;
		if (a->npos > 1) {
			json_t *args = json_array();
			for (int i = 1; args && i < a->npos; i++)
				json_array_append_new(args, json_string(a->pos[i]));
			if (!args || json_object_set_new(cs, "Args", args) < 0)
				return -ENOMEM;
		}
		if (!jget(spec, "Mode") &&
		    json_object_set_new(spec, "Mode",
					json_pack("{s:{s:i}}", "Replicated", "Replicas", 1)) < 0)
			return -ENOMEM;
	}
	bool health_set = false, no_health = false, replicas_given = false, max_given = false;
	for (size_t i = 0; i < a->nflags; i++) {
		struct apply ap = {.f = &a->flags[i], .err = err, .errsize = errsize};
		replicas_given |= a->flags[i].id == SOPT_REPLICAS;
		max_given |= a->flags[i].id == SOPT_MAX_PER_NODE;
		if (!a->update && a->flags[i].id == SOPT_MODE &&
		    strcmp(a->flags[i].value, "global") == 0) {
			/* The default replicated mode gives way to global. */
			json_object_del(spec, "Mode");
		}
		int r = apply_one(&ap, spec, &health_set, &no_health);
		if (r < 0) {
			if (!err[0])
				snprintf(err, errsize, "%s", strerror(-r));
			return r;
		}
	}
	if (no_health && health_set) {
		snprintf(err, errsize, "--no-healthcheck conflicts with --health-* options");
		return -EINVAL;
	}
	if (is_global(spec)) {
		json_object_del(jobj(spec, "Mode"), "Replicated");
		if (replicas_given || max_given) {
			snprintf(err, errsize,
				 "%s can only be used with replicated or replicated-job mode",
				 replicas_given ? "replicas" : "replicas-max-per-node");
			return -EINVAL;
		}
	}
	return 0;
}

int cli_service_scale_parse(const char *arg, char **ret_name, uint64_t *ret_replicas, char *err,
			    size_t errsize)
{
	const char *eq = strchr(arg, '=');
	if (!eq || eq == arg) {
		snprintf(err, errsize, "invalid scale specifier '%s': expected SERVICE=REPLICAS",
			 arg);
		return -EINVAL;
	}
	const char *v = eq + 1;
	char *end;
	errno = 0;
	unsigned long long n = strtoull(v, &end, 10);
	bool syntax = !*v || *v == '-' || *end;
	if (syntax || errno || n > SPEC_MAX_REPLICAS) {
		snprintf(err, errsize,
			 "invalid replicas value %s: strconv.ParseUint: parsing \"%s\": %s", v, v,
			 syntax ? "invalid syntax" : "value out of range");
		return -EINVAL;
	}
	char *name = strndup(arg, (size_t)(eq - arg));
	if (!name)
		return -ENOMEM;
	*ret_name = name;
	*ret_replicas = n;
	return 0;
}

/* API helpers */

static json_t *get_service(struct cli_ctx *ctx, const char *name, struct shoal_err *err)
{
	_cleanup_free_ char *path = cli_obj_path("/services", name, NULL);
	if (!path) {
		shoal_err_set(err, ENOMEM, "out of memory");
		return NULL;
	}
	json_t *j = NULL;
	if (cli_call_json(ctx, "GET", path, NULL, NULL, &j, err) < 0)
		return NULL;
	if (!json_is_object(j) || !jstr(j, "ID")) {
		json_decref(j);
		shoal_err_set(err, EIO, "Error: malformed service from daemon");
		return NULL;
	}
	return j;
}

/* "/tasks?filters=..." for one service (NULL: all); NULL on ENOMEM. */
static char *tasks_path(const char *service_id, bool up_to_date, json_t *extra_filters)
{
	_cleanup_json_ json_t *filters =
		extra_filters ? json_deep_copy(extra_filters) : json_object();
	if (!filters)
		return NULL;
	if (service_id &&
	    json_object_set_new(jobj(filters, "service"), service_id, json_true()) < 0)
		return NULL;
	if (up_to_date && json_object_set_new(jobj(filters, "_up-to-date"), "true", json_true()))
		return NULL;
	if (json_object_size(filters) == 0)
		return strdup("/tasks");
	_cleanup_free_ char *fs = json_dumps(filters, JSON_COMPACT | JSON_SORT_KEYS);
	_cleanup_free_ char *fe = fs ? cli_escape(fs) : NULL;
	char *path = NULL;
	if (!fe || asprintf(&path, "/tasks?filters=%s", fe) < 0)
		return NULL;
	return path;
}

/* GET /tasks, filtered to one service (NULL: all). */
static json_t *get_tasks(struct cli_ctx *ctx, const char *service_id, bool up_to_date,
			 json_t *extra_filters, struct shoal_err *err)
{
	_cleanup_free_ char *path = tasks_path(service_id, up_to_date, extra_filters);
	if (!path) {
		shoal_err_set(err, ENOMEM, "Error: out of memory");
		return NULL;
	}
	json_t *j = NULL;
	if (cli_call_json(ctx, "GET", path, NULL, NULL, &j, err) < 0)
		return NULL;
	if (!json_is_array(j)) {
		json_decref(j);
		shoal_err_set(err, EIO, "Error: malformed task list from daemon");
		return NULL;
	}
	return j;
}

static void print_warnings(json_t *resp)
{
	size_t i;
	json_t *w;
	json_array_foreach(json_object_get(resp, "Warnings"), i, w)
	{
		if (json_string_value(w))
			fprintf(stderr, "%s\n", json_string_value(w));
	}
}

/* Progress */

/* Swarm's task states in order, for the progress bar. */
static const char *const task_states[] = {"new",       "pending",  "assigned", "accepted",
					  "preparing", "starting", "running"};

static int state_rank(const char *s)
{
	for (size_t i = 0; s && i < ARRAY_SIZE(task_states); i++)
		if (strcmp(s, task_states[i]) == 0)
			return (int)i + 1;
	return 0;
}

static bool desired_running(json_t *task)
{
	const char *d = jstr(task, "DesiredState");
	return !d || strcmp(d, "running") == 0 || strcmp(d, "ready") == 0 ||
	       strcmp(d, "accepted") == 0;
}

/* Newer of two tasks for one slot: higher Version.Index, then later CreatedAt. */
static bool task_newer(json_t *a, json_t *b)
{
	if (!b)
		return true;
	json_int_t va = jint(a, "Version.Index"), vb = jint(b, "Version.Index");
	const char *ca = jstr(a, "CreatedAt"), *cb = jstr(b, "CreatedAt");
	if (ca && cb && strcmp(ca, cb) != 0)
		return strcmp(ca, cb) > 0;
	return va > vb;
}

struct progress_row {
	char key[80]; /* "1/3" or a short node id */
	json_t *task; /* borrowed */
};

struct progress {
	struct progress_row *rows;
	size_t nrows;
	uint64_t desired, running;
	bool global;
};

static bool progress_converged(const struct progress *p)
{
	return p->running == p->desired && !(p->global && p->nrows == 0);
}

static void progress_done(struct progress *p)
{
	free(p->rows);
	*p = (struct progress){0};
}

/* A task made from the service's current TaskTemplate (docker's "_up-to-date"): tasks
 * carry the template they were made from as their Spec. */
static bool task_current(json_t *svc, json_t *task)
{
	json_t *want = jget(svc, "Spec.TaskTemplate"), *have = jget(task, "Spec");
	return !want || !have || json_equal(want, have);
}

/* The task that stands for each slot (replicated) or node (global): the newest whose
 * desired state is running, else the newest at all. Only tasks of the current spec
 * count, so that an update is followed by its new tasks. */
static int progress_compute(json_t *svc, json_t *tasks, struct progress *ret)
{
	struct progress p = {.global = jget(svc, "Spec.Mode.Global") != NULL};
	size_t i;
	json_t *t;
	if (!p.global) {
		p.desired = (uint64_t)jint(svc, "Spec.Mode.Replicated.Replicas");
		if (p.desired > SPEC_MAX_REPLICAS)
			p.desired = SPEC_MAX_REPLICAS;
		p.rows = calloc(p.desired ? p.desired : 1, sizeof(*p.rows));
		if (!p.rows)
			return -ENOMEM;
		p.nrows = p.desired;
		for (size_t s = 0; s < p.nrows; s++)
			snprintf(p.rows[s].key, sizeof(p.rows[s].key), "%zu/%" PRIu64, s + 1,
				 p.desired);
		json_array_foreach(tasks, i, t)
		{
			json_int_t slot = jint(t, "Slot");
			if (slot < 1 || (uint64_t)slot > p.desired || !task_current(svc, t))
				continue;
			struct progress_row *r = &p.rows[slot - 1];
			bool cur = r->task && desired_running(r->task);
			if (desired_running(t) ? !cur || task_newer(t, r->task)
					       : !cur && task_newer(t, r->task))
				r->task = t;
		}
	} else {
		p.rows = calloc(json_array_size(tasks) + 1, sizeof(*p.rows));
		if (!p.rows)
			return -ENOMEM;
		json_array_foreach(tasks, i, t)
		{
			const char *node = jstr(t, "NodeID");
			char key[80];
			short_id(node, true, key, sizeof(key));
			if (!node || !desired_running(t) || !task_current(svc, t))
				continue;
			struct progress_row *r = NULL;
			for (size_t k = 0; k < p.nrows && !r; k++)
				if (strcmp(p.rows[k].key, key) == 0)
					r = &p.rows[k];
			if (!r) {
				r = &p.rows[p.nrows++];
				snprintf(r->key, sizeof(r->key), "%s", key);
			}
			if (task_newer(t, r->task))
				r->task = t;
		}
		json_int_t dt = jint(svc, "ServiceStatus.DesiredTasks");
		p.desired = dt > 0 ? (uint64_t)dt : p.nrows;
	}
	for (size_t k = 0; k < p.nrows; k++) {
		json_t *task = p.rows[k].task;
		if (task && desired_running(task) &&
		    strcmp(jstr(task, "Status.State") ?: "", "running") == 0)
			p.running++;
	}
	*ret = p;
	return 0;
}

/* "running", "pending: no suitable node (...)", "failed: task: non-zero exit (1)". */
static void row_status(json_t *task, char *buf, size_t size)
{
	const char *state = jstr(task, "Status.State") ?: "new";
	const char *emsg = jstr(task, "Status.Err");
	const char *msg = jstr(task, "Status.Message");
	if (emsg && *emsg)
		snprintf(buf, size, "%s: %s", state, emsg);
	else if (strcmp(state, "pending") == 0 && msg && *msg)
		snprintf(buf, size, "%s: %s", state, msg);
	else
		snprintf(buf, size, "%s", state);
}

/* docker's progress bar: "[=====>      ]", 50 steps, full at running. */
static void bar(int rank, char *buf, size_t size)
{
	int max = (int)ARRAY_SIZE(task_states), width = 50;
	int fill = rank * width / max;
	char b[64];
	int n = 0;
	for (int k = 0; k < fill; k++)
		b[n++] = '=';
	b[n++] = '>';
	for (int k = fill; k < width; k++)
		b[n++] = ' ';
	b[n] = '\0';
	snprintf(buf, size, "[%s]", b);
}

/* The progress block as lines (a JSON array of strings); with_bars for terminals. */
static json_t *progress_lines(const struct progress *p, bool with_bars)
{
	json_t *lines = json_array();
	char line[1024];
	if (!lines)
		return NULL;
	if (p->global && p->nrows == 0)
		/* The orchestrator has not made the tasks yet, or no node is eligible. */
		snprintf(line, sizeof(line), "overall progress: waiting for new tasks");
	else
		snprintf(line, sizeof(line),
			 "overall progress: %" PRIu64 " out of %" PRIu64 " tasks", p->running,
			 p->desired);
	json_array_append_new(lines, json_string(line));
	for (size_t k = 0; k < p->nrows; k++) {
		json_t *task = p->rows[k].task;
		if (!task)
			continue;
		char st[768];
		row_status(task, st, sizeof(st));
		int rank = state_rank(jstr(task, "Status.State"));
		if (with_bars && rank > 0 && !jstr(task, "Status.Err")) {
			char b[64];
			bar(rank, b, sizeof(b));
			snprintf(line, sizeof(line), "%s: %-9s %s", p->rows[k].key, st, b);
		} else {
			snprintf(line, sizeof(line), "%s: %s", p->rows[k].key, st);
		}
		json_array_append_new(lines, json_string(line));
	}
	return lines;
}

char *cli_service_progress_text(json_t *service, json_t *tasks, bool *ret_converged)
{
	struct progress p;
	if (progress_compute(service, tasks, &p) < 0)
		return NULL;
	_cleanup_json_ json_t *lines = progress_lines(&p, false);
	if (ret_converged)
		*ret_converged = progress_converged(&p);
	progress_done(&p);
	if (!lines)
		return NULL;
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	if (!f)
		return NULL;
	size_t i;
	json_t *l;
	json_array_foreach(lines, i, l) fprintf(f, "%s\n", json_string_value(l));
	fclose(f);
	return out;
}

/* Prints progress: redrawn in place on a terminal, changed lines only otherwise. */
struct display {
	bool tty, quiet;
	size_t drawn;  /* lines of the block on screen (tty) */
	json_t *shown; /* key -> last text printed (non-tty) */
};

static void display_lines(struct display *d, json_t *lines)
{
	if (d->quiet)
		return;
	size_t i;
	json_t *l;
	if (d->tty) {
		if (d->drawn)
			printf("\033[%zuA", d->drawn);
		json_array_foreach(lines, i, l) printf("\033[2K%s\n", json_string_value(l));
		/* A shorter block clears what the longer one left below it. */
		size_t n = json_array_size(lines);
		for (size_t k = n; k < d->drawn; k++)
			printf("\033[2K\n");
		if (d->drawn > n)
			printf("\033[%zuA", d->drawn - n);
		d->drawn = n;
		fflush(stdout);
		return;
	}
	json_array_foreach(lines, i, l)
	{
		const char *s = json_string_value(l);
		const char *colon = strchr(s, ':');
		char key[128];
		snprintf(key, sizeof(key), "%.*s", colon ? (int)(colon - s) : 0, s);
		const char *prev = json_string_value(json_object_get(d->shown, key));
		if (prev && strcmp(prev, s) == 0)
			continue;
		json_object_set_new(d->shown, key, json_string(s));
		printf("%s\n", s);
	}
	fflush(stdout);
}

enum wait_kind { WAIT_CREATE, WAIT_UPDATE, WAIT_ROLLBACK };

static void explain_not_converged(const char *name, const struct progress *p, int64_t waited_s)
{
	fprintf(stderr,
		"service %s did not converge within %" PRId64 " seconds: %" PRIu64
		" out of %" PRIu64 " tasks running\n",
		name, waited_s, p->running, p->desired);
	for (size_t k = 0; k < p->nrows; k++) {
		json_t *t = p->rows[k].task;
		if (!t) {
			fprintf(stderr, "  %s: no task yet\n", p->rows[k].key);
			continue;
		}
		if (desired_running(t) && strcmp(jstr(t, "Status.State") ?: "", "running") == 0)
			continue;
		char st[768];
		row_status(t, st, sizeof(st));
		fprintf(stderr, "  %s: %s\n", p->rows[k].key, st);
	}
}

/* After a paused or rolled back update: the task failures since the update started,
 * which say why. */
static void explain_update_failure(struct cli_ctx *ctx, json_t *svc)
{
	struct shoal_err err = {0};
	_cleanup_json_ json_t *tasks = get_tasks(ctx, jstr(svc, "ID"), false, NULL, &err);
	int64_t started = parse_time(jstr(svc, "UpdateStatus.StartedAt"));
	size_t i, shown = 0;
	json_t *t;
	json_array_foreach(tasks, i, t)
	{
		const char *state = jstr(t, "Status.State") ?: "";
		const char *e = jstr(t, "Status.Err");
		if (!e || !*e || (strcmp(state, "failed") && strcmp(state, "rejected")))
			continue;
		if (started && parse_time(jstr(t, "CreatedAt")) + 1 < started)
			continue;
		if (shown++ == 5)
			break;
		char idb[16];
		short_id(jstr(t, "ID"), true, idb, sizeof(idb));
		fprintf(stderr, "  task %s (slot %" JSON_INTEGER_FORMAT "): %s: %s\n", idb,
			jint(t, "Slot"), state, e);
	}
}

/* Polls the service and its tasks until they converge, as docker's progress does.
 * before: UpdateStatus.StartedAt read before the update was posted; an outcome from that
 * earlier update (paused, rolled back) is not this one's, until the orchestrator starts
 * this one. */
static int service_wait(struct cli_ctx *ctx, const char *id, enum wait_kind kind, bool quiet,
			const char *before)
{
	struct display d = {.tty = isatty(STDOUT_FILENO), .quiet = quiet, .shown = json_object()};
	_cleanup_json_ json_t *shown = d.shown;
	if (!shown)
		return cli_oom();
	int64_t start = mono_ns(), converged_at = 0;
	bool rollback_seen = false;
	struct shoal_err err = {0};
	for (;;) {
		_cleanup_json_ json_t *svc = get_service(ctx, id, &err);
		if (!svc) {
			cli_print_err(&err);
			return 1;
		}
		const char *name = jstr(svc, "Spec.Name") ?: id;
		const char *ustate = jstr(svc, "UpdateStatus.State") ?: "";
		const char *umsg = jstr(svc, "UpdateStatus.Message") ?: "";
		const char *started = jstr(svc, "UpdateStatus.StartedAt");
		bool stale = before && started && strcmp(before, started) == 0;
		bool in_progress = false;
		_cleanup_json_ json_t *extra = json_array();
		if (!extra)
			return cli_oom();
		if (kind != WAIT_CREATE) {
			const char *failed = NULL;
			if (stale)
				failed = NULL; /* the earlier update's outcome */
			else if (strcmp(ustate, "paused") == 0)
				failed = "service update paused";
			else if (strcmp(ustate, "rollback_paused") == 0)
				failed = "service rollback paused";
			else if (strcmp(ustate, "rollback_completed") == 0 && kind == WAIT_UPDATE)
				failed = "service rolled back";
			if (failed) {
				fprintf(stderr, "%s: %s\n", failed, umsg);
				explain_update_failure(ctx, svc);
				return 1;
			}
			if (strcmp(ustate, "rollback_started") == 0) {
				if (*umsg || rollback_seen) {
					char l[1100];
					snprintf(l, sizeof(l), "rollback: %s", umsg);
					json_array_append_new(extra, json_string(l));
				}
				rollback_seen = true;
				in_progress = true;
			}
			if (strcmp(ustate, "updating") == 0)
				in_progress = true;
		}
		/* As docker: only tasks of the current spec count ("_up-to-date"). */
		_cleanup_json_ json_t *tasks = get_tasks(ctx, jstr(svc, "ID"), true, NULL, &err);
		if (!tasks) {
			cli_print_err(&err);
			return 1;
		}
		struct progress p;
		if (progress_compute(svc, tasks, &p) < 0)
			return cli_oom();
		bool converged = progress_converged(&p) && !in_progress;
		int64_t now = mono_ns();
		int64_t monitor = jint(svc, kind == WAIT_ROLLBACK ? "Spec.RollbackConfig.Monitor"
								  : "Spec.UpdateConfig.Monitor");
		if (monitor <= 0)
			monitor = DEFAULT_MONITOR_NS;
		bool done = false;
		if (converged) {
			if (!converged_at)
				converged_at = now;
			int64_t left = monitor - (now - converged_at);
			char l[128];
			if (left <= 0) {
				snprintf(l, sizeof(l), "verify: Service converged");
				done = true;
			} else {
				snprintf(l, sizeof(l),
					 "verify: Waiting %" PRId64
					 " seconds to verify that tasks are stable...",
					 (left + 999999999) / 1000000000);
			}
			json_array_append_new(extra, json_string(l));
		} else if (converged_at) {
			json_array_append_new(extra, json_string("verify: Detected task failure"));
			converged_at = 0;
		}
		_cleanup_json_ json_t *lines = progress_lines(&p, d.tty);
		if (!lines || json_array_extend(lines, extra) < 0) {
			progress_done(&p);
			return cli_oom();
		}
		display_lines(&d, lines);
		if (done) {
			progress_done(&p);
			return 0;
		}
		if (now - start >= wait_limit_ns) {
			explain_not_converged(name, &p, (now - start) / 1000000000);
			progress_done(&p);
			return 1;
		}
		progress_done(&p);
		struct timespec ts = {0, POLL_NS};
		nanosleep(&ts, NULL);
	}
}

/* create */

static int print_plan(json_t *resp)
{
	json_t *plan = json_object_get(resp, "Plan");
	if (!json_is_array(plan)) {
		fprintf(stderr, "Error: the daemon's dry-run answer has no Plan\n");
		return 1;
	}
	struct cli_table *t = cli_table_new(4);
	if (!t)
		return cli_oom();
	static const char *const head[] = {"SLOT", "NODE ID", "NODE", "UNPLACED"};
	cli_table_add(t, head);
	size_t i, unplaced = 0;
	json_t *e;
	json_array_foreach(plan, i, e)
	{
		char slot[32] = "", node[80];
		if (jint(e, "Slot") > 0)
			snprintf(slot, sizeof(slot), "%" JSON_INTEGER_FORMAT, jint(e, "Slot"));
		short_id(jstr(e, "NodeID"), true, node, sizeof(node));
		const char *why = jstr(e, "Unplaced");
		unplaced += why != NULL;
		const char *cells[] = {slot, node, jstr(e, "NodeHostname") ?: "", why ?: ""};
		cli_table_add(t, cells);
	}
	cli_table_print(t, stdout);
	cli_table_free(t);
	if (unplaced)
		printf("%zu of %zu tasks cannot be placed\n", unplaced, json_array_size(plan));
	return 0;
}

static int service_create(struct cli_ctx *ctx, int argc, char **argv)
{
	struct cli_service_args a;
	int r = cli_service_args_parse(ctx, argc, argv, false, &a);
	if (r)
		return r == CLI_OPT_HELP ? 0 : r;
	_cleanup_json_ json_t *spec = json_object();
	char err[512];
	if (!spec) {
		cli_service_args_done(&a);
		return cli_oom();
	}
	r = cli_service_spec_apply(&a, spec, err, sizeof(err));
	bool detach = a.detach, quiet = a.quiet, dry_run = a.dry_run;
	cli_service_args_done(&a);
	if (r == -ENOMEM)
		return cli_oom();
	if (r < 0)
		return cli_usage_error(ctx, err);

	struct shoal_err e = {0};
	_cleanup_json_ json_t *resp = NULL;
	if (cli_call_json(ctx, "POST", dry_run ? "/services/create?dryRun=1" : "/services/create",
			  spec, NULL, &resp, &e) < 0) {
		cli_print_err(&e);
		return 1;
	}
	print_warnings(resp);
	if (dry_run)
		return print_plan(resp);
	const char *id = jstr(resp, "ID");
	if (!id) {
		fprintf(stderr, "Error: the daemon's create answer has no ID\n");
		return 1;
	}
	printf("%s\n", id);
	fflush(stdout);
	if (detach)
		return 0;
	return service_wait(ctx, id, WAIT_CREATE, quiet, NULL);
}

/* update, rollback, scale */

static int post_update(struct cli_ctx *ctx, json_t *svc, json_t *spec, bool rollback)
{
	const char *id = jstr(svc, "ID");
	char suffix[96];
	snprintf(suffix, sizeof(suffix), "/update?version=%" JSON_INTEGER_FORMAT "%s",
		 jint(svc, "Version.Index"), rollback ? "&rollback=previous" : "");
	_cleanup_free_ char *path = cli_obj_path("/services", id, suffix);
	if (!path)
		return cli_oom();
	struct shoal_err e = {0};
	_cleanup_json_ json_t *resp = NULL;
	if (cli_call_json(ctx, "POST", path, spec, NULL, &resp, &e) < 0) {
		cli_print_err(&e);
		return 1;
	}
	print_warnings(resp);
	return 0;
}

static int service_update_args(struct cli_ctx *ctx, struct cli_service_args *a)
{
	const char *name = a->pos[0];
	struct shoal_err e = {0};
	_cleanup_json_ json_t *svc = get_service(ctx, name, &e);
	if (!svc) {
		cli_print_err(&e);
		return 1;
	}
	json_t *cur = json_object_get(svc, "Spec");
	_cleanup_json_ json_t *spec = json_is_object(cur) ? json_deep_copy(cur) : json_object();
	if (!spec)
		return cli_oom();
	char err[512];
	int r = cli_service_spec_apply(a, spec, err, sizeof(err));
	if (r == -ENOMEM)
		return cli_oom();
	if (r < 0)
		return cli_usage_error(ctx, err);
	r = post_update(ctx, svc, spec, a->rollback);
	if (r)
		return r;
	printf("%s\n", name);
	fflush(stdout);
	if (a->detach)
		return 0;
	return service_wait(ctx, jstr(svc, "ID"), a->rollback ? WAIT_ROLLBACK : WAIT_UPDATE,
			    a->quiet, jstr(svc, "UpdateStatus.StartedAt"));
}

static int service_update(struct cli_ctx *ctx, int argc, char **argv)
{
	struct cli_service_args a;
	int r = cli_service_args_parse(ctx, argc, argv, true, &a);
	if (r)
		return r == CLI_OPT_HELP ? 0 : r;
	r = service_update_args(ctx, &a);
	cli_service_args_done(&a);
	return r;
}

static const struct cli_opt rollback_opts[] = {
	{'d', "detach", 'd', CLI_OPT_BOOL, NULL,
	 "Exit immediately instead of waiting for the service to converge"},
	{'q', "quiet", 'q', CLI_OPT_BOOL, NULL, "Suppress progress output"},
	{0},
};

static int service_rollback(struct cli_ctx *ctx, int argc, char **argv)
{
	static const char usage[] = "[OPTIONS] SERVICE",
			  desc[] = "Revert changes to a service's configuration";
	struct cli_service_args a = {.update = true, .rollback = true};
	struct cli_opts p;
	cli_opts_init(&p, rollback_opts, argc, argv, false);
	int id;
	while ((id = cli_opts_next(&p)) != 0) {
		if (id == 'd') {
			a.detach = cli_opts_bool(&p);
		} else if (id == 'q') {
			a.quiet = cli_opts_bool(&p);
		} else if (id == CLI_OPT_HELP) {
			cli_opts_done(&p);
			cli_usage(ctx, usage, desc, rollback_opts);
			return 0;
		} else {
			int r = cli_usage_error(ctx, p.error);
			cli_opts_done(&p);
			return r;
		}
	}
	if (p.npos != 1) {
		cli_opts_done(&p);
		return cli_args_error(ctx, usage, desc, "requires exactly 1 argument");
	}
	int r = strv_push(&a.pos, p.pos[0]);
	a.npos = 1;
	cli_opts_done(&p);
	if (r < 0)
		return cli_oom();
	r = service_update_args(ctx, &a);
	cli_service_args_done(&a);
	return r;
}

static const struct cli_opt scale_opts[] = {
	{'d', "detach", 'd', CLI_OPT_BOOL, NULL,
	 "Exit immediately instead of waiting for the service to converge"},
	{0},
};

static int service_scale(struct cli_ctx *ctx, int argc, char **argv)
{
	static const char usage[] = "SERVICE=REPLICAS [SERVICE=REPLICAS...]",
			  desc[] = "Scale one or multiple replicated services";
	bool detach = false;
	struct cli_opts p;
	cli_opts_init(&p, scale_opts, argc, argv, false);
	int id;
	while ((id = cli_opts_next(&p)) != 0) {
		if (id == 'd') {
			detach = cli_opts_bool(&p);
		} else if (id == CLI_OPT_HELP) {
			cli_opts_done(&p);
			cli_usage(ctx, usage, desc, scale_opts);
			return 0;
		} else {
			int r = cli_usage_error(ctx, p.error);
			cli_opts_done(&p);
			return r;
		}
	}
	if (p.npos < 1) {
		cli_opts_done(&p);
		return cli_args_error(ctx, usage, desc, "requires at least 1 argument");
	}
	/* Every argument is checked before anything is scaled. */
	char err[512];
	for (int i = 0; i < p.npos; i++) {
		char *n = NULL;
		uint64_t v;
		if (cli_service_scale_parse(p.pos[i], &n, &v, err, sizeof(err)) < 0) {
			cli_opts_done(&p);
			return cli_usage_error(ctx, err);
		}
		free(n);
	}
	int status = 0;
	_cleanup_json_ json_t *scaled = json_array();
	for (int i = 0; scaled && i < p.npos; i++) {
		_cleanup_free_ char *name = NULL;
		uint64_t replicas = 0;
		cli_service_scale_parse(p.pos[i], &name, &replicas, err, sizeof(err));
		struct shoal_err e = {0};
		_cleanup_json_ json_t *svc = name ? get_service(ctx, name, &e) : NULL;
		if (!svc) {
			cli_print_err(&e);
			status = 1;
			continue;
		}
		json_t *spec = json_object_get(svc, "Spec");
		if (!jget(spec, "Mode.Replicated")) {
			fprintf(stderr,
				"%s: scale can only be used with replicated or "
				"replicated-job mode\n",
				name);
			status = 1;
			continue;
		}
		_cleanup_json_ json_t *nspec = json_deep_copy(spec);
		if (!nspec || set_int(jobj_path(nspec, "Mode.Replicated"), "Replicas",
				      (json_int_t)replicas) < 0) {
			status = cli_oom();
			continue;
		}
		if (post_update(ctx, svc, nspec, false) != 0) {
			status = 1;
			continue;
		}
		printf("%s scaled to %" PRIu64 "\n", name, replicas);
		fflush(stdout);
		json_array_append_new(scaled,
				      json_pack("{s:s,s:s?}", "ID", jstr(svc, "ID"), "StartedAt",
						jstr(svc, "UpdateStatus.StartedAt")));
	}
	cli_opts_done(&p);
	if (!scaled)
		return cli_oom();
	if (!detach) {
		size_t i;
		json_t *sc;
		json_array_foreach(scaled, i, sc)
		{
			if (service_wait(ctx, jstr(sc, "ID"), WAIT_UPDATE, false,
					 jstr(sc, "StartedAt")) != 0)
				status = 1;
		}
	}
	return status;
}

/* ls */

static const struct cli_opt ls_opts[] = {
	{'q', "quiet", 'q', CLI_OPT_BOOL, NULL, "Only display IDs"},
	{OPT_FORMAT, "format", 0, CLI_OPT_VALUE, "string",
	 "Format output using a template (fields: .ID .Name .Mode .Replicas .Image .Ports)"},
	{0},
};

/* "*:8080->80/tcp" for every ingress port. */
static char *service_ports(json_t *svc)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	if (!f)
		return NULL;
	json_t *ports = jget(svc, "Endpoint.Ports");
	if (!ports)
		ports = jget(svc, "Spec.EndpointSpec.Ports");
	size_t i;
	json_t *pt;
	bool first = true;
	json_array_foreach(ports, i, pt)
	{
		const char *mode = jstr(pt, "PublishMode");
		if (mode && strcmp(mode, "ingress") != 0)
			continue;
		if (!jint(pt, "PublishedPort"))
			continue;
		fprintf(f, "%s*:%" JSON_INTEGER_FORMAT "->%" JSON_INTEGER_FORMAT "/%s",
			first ? "" : ", ", jint(pt, "PublishedPort"), jint(pt, "TargetPort"),
			jstr(pt, "Protocol") ?: "tcp");
		first = false;
	}
	fclose(f);
	return out;
}

static int service_ls(struct cli_ctx *ctx, int argc, char **argv)
{
	static const char usage[] = "[OPTIONS]", desc[] = "List services";
	bool quiet = false;
	const char *format = NULL;
	struct cli_opts p;
	cli_opts_init(&p, ls_opts, argc, argv, false);
	int id;
	while ((id = cli_opts_next(&p)) != 0) {
		if (id == 'q') {
			quiet = cli_opts_bool(&p);
		} else if (id == OPT_FORMAT) {
			format = p.value;
		} else if (id == CLI_OPT_HELP) {
			cli_opts_done(&p);
			cli_usage(ctx, usage, desc, ls_opts);
			return 0;
		} else {
			int r = cli_usage_error(ctx, p.error);
			cli_opts_done(&p);
			return r;
		}
	}
	int npos = p.npos;
	_cleanup_free_ char *fmt = format ? strdup(format) : NULL;
	cli_opts_done(&p);
	if (npos > 0)
		return cli_args_error(ctx, usage, desc, "accepts no arguments");
	if (format && !fmt)
		return cli_oom();
	struct shoal_err e = {0};
	_cleanup_json_ json_t *list = NULL;
	if (cli_call_json(ctx, "GET", "/services?status=true", NULL, NULL, &list, &e) < 0) {
		cli_print_err(&e);
		return 1;
	}
	if (!json_is_array(list)) {
		fprintf(stderr, "Error: malformed service list from daemon\n");
		return 1;
	}
	if (quiet) {
		size_t i;
		json_t *s;
		json_array_foreach(list, i, s) printf("%s\n", jstr(s, "ID") ?: "");
		return 0;
	}
	/* Counts from the tasks when the daemon gives no ServiceStatus. */
	_cleanup_json_ json_t *tasks = NULL;
	size_t i;
	json_t *s;
	json_array_foreach(list, i, s)
	{
		if (!jget(s, "ServiceStatus") && !tasks) {
			tasks = get_tasks(ctx, NULL, false, NULL, &e);
			if (!tasks) {
				cli_print_err(&e);
				return 1;
			}
		}
	}
	struct cli_table *t = cli_table_new(6);
	if (!t)
		return cli_oom();
	static const char *const head[] = {"ID", "NAME", "MODE", "REPLICAS", "IMAGE", "PORTS"};
	cli_table_add(t, head);
	int status = 0;
	json_array_foreach(list, i, s)
	{
		bool global = jget(s, "Spec.Mode.Global") != NULL;
		json_int_t running = jint(s, "ServiceStatus.RunningTasks");
		json_int_t desired = jint(s, "ServiceStatus.DesiredTasks");
		if (!jget(s, "ServiceStatus")) {
			running = desired = 0;
			size_t k;
			json_t *tk;
			json_array_foreach(tasks, k, tk)
			{
				const char *sid = jstr(tk, "ServiceID");
				if (!sid || strcmp(sid, jstr(s, "ID") ?: "") != 0 ||
				    !desired_running(tk))
					continue;
				desired++;
				running += strcmp(jstr(tk, "Status.State") ?: "", "running") == 0;
			}
			if (!global)
				desired = jint(s, "Spec.Mode.Replicated.Replicas");
		}
		char idb[80], img[512], reps[96];
		short_id(jstr(s, "ID"), true, idb, sizeof(idb));
		image_name(jstr(s, "Spec.TaskTemplate.ContainerSpec.Image"), true, img,
			   sizeof(img));
		json_int_t maxr = jint(s, "Spec.TaskTemplate.Placement.MaxReplicas");
		if (!global && maxr > 0)
			snprintf(reps, sizeof(reps),
				 "%" JSON_INTEGER_FORMAT "/%" JSON_INTEGER_FORMAT
				 " (max %" JSON_INTEGER_FORMAT " per node)",
				 running, desired, maxr);
		else
			snprintf(reps, sizeof(reps),
				 "%" JSON_INTEGER_FORMAT "/%" JSON_INTEGER_FORMAT, running,
				 desired);
		_cleanup_free_ char *ports = service_ports(s);
		const char *cells[] = {idb,
				       jstr(s, "Spec.Name") ?: "",
				       global ? "global" : "replicated",
				       reps,
				       img,
				       ports ?: ""};
		if (fmt) {
			_cleanup_json_ json_t *row =
				json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "ID", cells[0], "Name",
					  cells[1], "Mode", cells[2], "Replicas", cells[3], "Image",
					  cells[4], "Ports", cells[5]);
			char terr[256];
			_cleanup_free_ char *out =
				row ? cli_template_render(fmt, row, terr, sizeof(terr)) : NULL;
			if (!out) {
				fprintf(stderr, "template parsing error: %s\n", row ? terr : "");
				status = 1;
				break;
			}
			printf("%s\n", out);
		} else {
			cli_table_add(t, cells);
		}
	}
	if (!fmt && status == 0)
		cli_table_print(t, stdout);
	cli_table_free(t);
	return status;
}

/* ps */

static const struct cli_opt ps_opts[] = {
	{'q', "quiet", 'q', CLI_OPT_BOOL, NULL, "Only display task IDs"},
	{OPT_NO_TRUNC, "no-trunc", 0, CLI_OPT_BOOL, NULL, "Do not truncate output"},
	{'f', "filter", 'f', CLI_OPT_VALUE, "filter",
	 "Filter output based on conditions provided (desired-state=running, node=ID, ...)"},
	{0},
};

struct task_row {
	json_t *task;
	const char *service_name;
	char name[160];
	json_int_t slot;
};

static int task_row_cmp(const void *a, const void *b)
{
	const struct task_row *x = a, *y = b;
	int c = strcmp(x->service_name, y->service_name);
	if (c)
		return c;
	if (x->slot != y->slot)
		return x->slot < y->slot ? -1 : 1;
	c = strcmp(x->name, y->name);
	if (c)
		return c;
	/* Newest first within one slot. */
	return task_newer(x->task, y->task) ? -1 : task_newer(y->task, x->task) ? 1 : 0;
}

static const char *lookup_field(json_t *list, const char *id, const char *path)
{
	size_t i;
	json_t *o;
	json_array_foreach(list, i, o)
	{
		const char *oid = jstr(o, "ID");
		if (oid && id && strcmp(oid, id) == 0)
			return jstr(o, path);
	}
	return NULL;
}

/* "*:8080->80/tcp" for a task's host-mode ports. */
static char *task_ports(json_t *task)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	if (!f)
		return NULL;
	size_t i;
	json_t *pt;
	bool first = true;
	json_array_foreach(jget(task, "Status.PortStatus.Ports"), i, pt)
	{
		fprintf(f, "%s*:%" JSON_INTEGER_FORMAT "->%" JSON_INTEGER_FORMAT "/%s",
			first ? "" : ", ", jint(pt, "PublishedPort"), jint(pt, "TargetPort"),
			jstr(pt, "Protocol") ?: "tcp");
		first = false;
	}
	fclose(f);
	return out;
}

char *cli_service_ps_render(json_t *tasks, json_t *services, json_t *nodes, bool trunc, int64_t now)
{
	size_t n = json_array_size(tasks);
	_cleanup_free_ struct task_row *rows = calloc(n + 1, sizeof(*rows));
	struct cli_table *t = cli_table_new(8);
	if (!rows || !t) {
		cli_table_free(t);
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		json_t *task = json_array_get(tasks, i);
		struct task_row *r = &rows[i];
		r->task = task;
		const char *sid = jstr(task, "ServiceID");
		r->service_name = lookup_field(services, sid, "Spec.Name");
		if (!r->service_name)
			r->service_name = sid ?: "";
		r->slot = jint(task, "Slot");
		if (r->slot > 0)
			snprintf(r->name, sizeof(r->name), "%s.%" JSON_INTEGER_FORMAT,
				 r->service_name, r->slot);
		else
			snprintf(r->name, sizeof(r->name), "%s.%s", r->service_name,
				 jstr(task, "NodeID") ?: "");
	}
	qsort(rows, n, sizeof(*rows), task_row_cmp);
	static const char *const head[] = {
		"ID", "NAME", "IMAGE", "NODE", "DESIRED STATE", "CURRENT STATE", "ERROR", "PORTS"};
	cli_table_add(t, head);
	for (size_t i = 0; i < n; i++) {
		json_t *task = rows[i].task;
		char idb[80], name[256], img[512], desired[32], current[160], ago[64];
		char errb[300] = "";
		short_id(jstr(task, "ID"), trunc, idb, sizeof(idb));
		bool history = i > 0 && strcmp(rows[i - 1].name, rows[i].name) == 0;
		if (trunc)
			snprintf(name, sizeof(name), "%s%s", history ? " \\_ " : "", rows[i].name);
		else
			snprintf(name, sizeof(name), "%s%s.%s", history ? " \\_ " : "",
				 rows[i].name, jstr(task, "ID") ?: "");
		image_name(jstr(task, "Spec.ContainerSpec.Image"), trunc, img, sizeof(img));
		const char *node_id = jstr(task, "NodeID");
		const char *node = lookup_field(nodes, node_id, "Description.Hostname");
		title(jstr(task, "DesiredState"), desired, sizeof(desired));
		char st[32];
		title(jstr(task, "Status.State"), st, sizeof(st));
		int64_t ts = parse_time(jstr(task, "Status.Timestamp"));
		cli_human_duration(ts ? now - ts : 0, ago, sizeof(ago));
		for (char *c = ago; *c; c++)
			*c = (char)tolower((unsigned char)*c);
		snprintf(current, sizeof(current), "%s %s ago", st, ago);
		const char *e = jstr(task, "Status.Err");
		if (e && *e) {
			_cleanup_free_ char *cut = cli_ellipsis(e, trunc ? 30 : (size_t)-1);
			snprintf(errb, sizeof(errb), "\"%s\"", cut ? cut : e);
		}
		_cleanup_free_ char *ports = task_ports(task);
		const char *cells[] = {idb,	   node ?: node_id ?: "", desired, current, errb,
				       ports ?: ""};
		const char *row[] = {cells[0], name,	 img,	   cells[1],
				     cells[2], cells[3], cells[4], cells[5]};
		cli_table_add(t, row);
	}
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	if (f) {
		cli_table_print(t, f);
		fclose(f);
	}
	cli_table_free(t);
	return out;
}

static int service_ps(struct cli_ctx *ctx, int argc, char **argv)
{
	static const char usage[] = "[OPTIONS] SERVICE [SERVICE...]",
			  desc[] = "List the tasks of one or more services";
	bool quiet = false, trunc = true;
	_cleanup_json_ json_t *filters = json_object();
	if (!filters)
		return cli_oom();
	struct cli_opts p;
	cli_opts_init(&p, ps_opts, argc, argv, false);
	int id;
	while ((id = cli_opts_next(&p)) != 0) {
		if (id == 'q') {
			quiet = cli_opts_bool(&p);
		} else if (id == OPT_NO_TRUNC) {
			trunc = !cli_opts_bool(&p);
		} else if (id == 'f') {
			const char *eq = strchr(p.value, '=');
			_cleanup_free_ char *k =
				eq ? strndup(p.value, (size_t)(eq - p.value)) : NULL;
			if (!eq || !k ||
			    json_object_set_new(jobj(filters, k), eq + 1, json_true())) {
				cli_opts_done(&p);
				return cli_usage_error(
					ctx, "bad format of filter (expected name=value)");
			}
		} else if (id == CLI_OPT_HELP) {
			cli_opts_done(&p);
			cli_usage(ctx, usage, desc, ps_opts);
			return 0;
		} else {
			int r = cli_usage_error(ctx, p.error);
			cli_opts_done(&p);
			return r;
		}
	}
	if (p.npos < 1) {
		cli_opts_done(&p);
		return cli_args_error(ctx, usage, desc, "requires at least 1 argument");
	}
	_cleanup_json_ json_t *services = json_array(), *all = json_array();
	int status = 0;
	struct shoal_err e = {0};
	for (int i = 0; services && all && i < p.npos; i++) {
		json_t *svc = get_service(ctx, p.pos[i], &e);
		if (!svc) {
			if (e.status == 404)
				fprintf(stderr, "no such service: %s\n", p.pos[i]);
			else
				cli_print_err(&e);
			status = 1;
			continue;
		}
		json_array_append_new(services, svc);
		json_t *tasks = get_tasks(ctx, jstr(svc, "ID"), false, filters, &e);
		if (!tasks) {
			cli_print_err(&e);
			status = 1;
			continue;
		}
		json_array_extend(all, tasks);
		json_decref(tasks);
	}
	cli_opts_done(&p);
	if (!services || !all)
		return cli_oom();
	if (json_array_size(services) == 0)
		return status;
	if (quiet) {
		size_t i;
		json_t *t;
		json_array_foreach(all, i, t) printf("%s\n", jstr(t, "ID") ?: "");
		return status;
	}
	/* Hostnames for the NODE column; IDs stand in when nodes cannot be listed. */
	_cleanup_json_ json_t *nodes = NULL;
	struct shoal_err ne = {0};
	if (cli_call_json(ctx, "GET", "/nodes", NULL, NULL, &nodes, &ne) < 0)
		nodes = NULL;
	_cleanup_free_ char *out = cli_service_ps_render(all, services, nodes, trunc, time(NULL));
	if (!out)
		return cli_oom();
	fputs(out, stdout);
	return status;
}

/* inspect */

static const struct cli_opt inspect_opts[] = {
	{'f', "format", 'f', CLI_OPT_VALUE, "string", "Format output using a template"},
	{SOPT_PRETTY, "pretty", 0, CLI_OPT_BOOL, NULL,
	 "Print the information in a human friendly format"},
	{0},
};

static void pretty_duration(const char *label, json_t *o, const char *path)
{
	json_t *v = jget(o, path);
	if (!v)
		return;
	char d[40];
	spec_format_duration((int64_t)json_integer_value(v), d);
	printf("%s%s\n", label, d);
}

static void pretty_update_config(const char *title_s, json_t *uc)
{
	if (!uc)
		return;
	printf("%s:\n", title_s);
	printf(" Parallelism:\t%" JSON_INTEGER_FORMAT "\n", jint(uc, "Parallelism"));
	if (jint(uc, "Delay"))
		pretty_duration(" Delay:\t\t", uc, "Delay");
	printf(" On failure:\t%s\n", jstr(uc, "FailureAction") ?: "pause");
	pretty_duration(" Monitoring Period: ", uc, "Monitor");
	printf(" Max failure ratio: %g\n", json_number_value(jget(uc, "MaxFailureRatio")));
	printf(" Update order:      %s\n", jstr(uc, "Order") ?: "stop-first");
}

static void pretty_strings(const char *label, json_t *arr, const char *sep)
{
	if (!json_array_size(arr))
		return;
	printf("%s", label);
	size_t i;
	json_t *v;
	json_array_foreach(arr, i, v) printf("%s%s", i ? sep : "", json_string_value(v) ?: "");
	printf("\n");
}

static void pretty_labels(const char *label, json_t *labels)
{
	if (!json_object_size(labels))
		return;
	printf("%s\n", label);
	const char *k;
	json_t *v;
	json_object_foreach(labels, k, v) printf(" %s=%s\n", k, json_string_value(v) ?: "");
}

static void pretty_service(json_t *s)
{
	json_t *spec = json_object_get(s, "Spec");
	json_t *tt = json_object_get(spec, "TaskTemplate");
	json_t *cs = json_object_get(tt, "ContainerSpec");
	printf("\nID:\t\t%s\n", jstr(s, "ID") ?: "");
	printf("Name:\t\t%s\n", jstr(spec, "Name") ?: "");
	pretty_labels("Labels:", json_object_get(spec, "Labels"));
	if (jget(spec, "Mode.Global")) {
		printf("Service Mode:\tGlobal\n");
	} else {
		printf("Service Mode:\tReplicated\n");
		printf(" Replicas:\t%" JSON_INTEGER_FORMAT "\n",
		       jint(spec, "Mode.Replicated.Replicas"));
	}
	if (jget(s, "UpdateStatus")) {
		printf("UpdateStatus:\n");
		printf(" State:\t\t%s\n", jstr(s, "UpdateStatus.State") ?: "");
		if (jstr(s, "UpdateStatus.StartedAt"))
			printf(" Started:\t%s\n", jstr(s, "UpdateStatus.StartedAt"));
		if (jstr(s, "UpdateStatus.CompletedAt"))
			printf(" Completed:\t%s\n", jstr(s, "UpdateStatus.CompletedAt"));
		printf(" Message:\t%s\n", jstr(s, "UpdateStatus.Message") ?: "");
	}
	printf("Placement:\n");
	pretty_strings(" Constraints:\t", jget(tt, "Placement.Constraints"), ", ");
	size_t i;
	json_t *v;
	if (json_array_size(jget(tt, "Placement.Preferences"))) {
		printf(" Preferences:\n");
		json_array_foreach(jget(tt, "Placement.Preferences"), i, v)
			printf("  Spread:\t%s\n", jstr(v, "Spread.SpreadDescriptor") ?: "");
	}
	if (jint(tt, "Placement.MaxReplicas"))
		printf(" Max Replicas Per Node:\t%" JSON_INTEGER_FORMAT "\n",
		       jint(tt, "Placement.MaxReplicas"));
	pretty_update_config("UpdateConfig", json_object_get(spec, "UpdateConfig"));
	pretty_update_config("RollbackConfig", json_object_get(spec, "RollbackConfig"));
	printf("\nContainerSpec:\n");
	printf(" Image:\t\t%s\n", jstr(cs, "Image") ?: "");
	pretty_strings(" Command:\t", json_object_get(cs, "Command"), " ");
	pretty_strings(" Args:\t\t", json_object_get(cs, "Args"), " ");
	pretty_strings(" Env:\t\t", json_object_get(cs, "Env"), " ");
	if (jstr(cs, "Dir"))
		printf(" Dir:\t\t%s\n", jstr(cs, "Dir"));
	if (jstr(cs, "User"))
		printf(" User:\t\t%s\n", jstr(cs, "User"));
	if (jget(cs, "Healthcheck.Test"))
		pretty_strings(" Healthcheck:\t", jget(cs, "Healthcheck.Test"), " ");
	pretty_strings(" Capabilities Add:\t", json_object_get(cs, "CapabilityAdd"), ", ");
	pretty_strings(" Capabilities Drop:\t", json_object_get(cs, "CapabilityDrop"), ", ");
	json_t *res = json_object_get(tt, "Resources");
	if (jget(res, "Limits") || jget(res, "Reservations")) {
		printf("Resources:\n");
		const char *const groups[] = {"Reservations", "Limits"};
		for (size_t g = 0; g < 2; g++) {
			json_t *o = json_object_get(res, groups[g]);
			if (!jint(o, "NanoCPUs") && !jint(o, "MemoryBytes") && !jint(o, "Pids"))
				continue;
			printf(" %s:\n", groups[g]);
			if (jint(o, "NanoCPUs"))
				printf("  CPU:\t\t%g\n", (double)jint(o, "NanoCPUs") / 1e9);
			if (jint(o, "MemoryBytes")) {
				char b[32];
				cli_bytes_size((double)jint(o, "MemoryBytes"), b, sizeof(b));
				printf("  Memory:\t%s\n", b);
			}
			if (jint(o, "Pids"))
				printf("  PIDs:\t\t%" JSON_INTEGER_FORMAT "\n", jint(o, "Pids"));
		}
	}
	if (json_array_size(json_object_get(tt, "Networks"))) {
		printf("Networks:");
		json_array_foreach(json_object_get(tt, "Networks"), i, v)
			printf(" %s", jstr(v, "Target") ?: "");
		printf("\n");
	}
	printf("Endpoint Mode:\t%s\n", jstr(spec, "EndpointSpec.Mode") ?: "vip");
	json_t *ports = jget(s, "Endpoint.Ports");
	if (!ports)
		ports = jget(spec, "EndpointSpec.Ports");
	if (json_array_size(ports)) {
		printf("Ports:\n");
		json_array_foreach(ports, i, v)
		{
			printf(" PublishedPort = %" JSON_INTEGER_FORMAT "\n",
			       jint(v, "PublishedPort"));
			printf("  Protocol = %s\n", jstr(v, "Protocol") ?: "tcp");
			printf("  TargetPort = %" JSON_INTEGER_FORMAT "\n", jint(v, "TargetPort"));
			printf("  PublishMode = %s\n", jstr(v, "PublishMode") ?: "ingress");
		}
	}
	json_array_foreach(jget(s, "Endpoint.VirtualIPs"), i, v)
	{
		if (i == 0)
			printf("Virtual IPs:\n");
		printf(" %s: %s\n", jstr(v, "NetworkID") ?: "", jstr(v, "Addr") ?: "");
	}
	printf("\n");
}

static int service_inspect(struct cli_ctx *ctx, int argc, char **argv)
{
	static const char usage[] = "[OPTIONS] SERVICE [SERVICE...]",
			  desc[] = "Display detailed information on one or more services";
	const char *format = NULL;
	bool pretty = false;
	struct cli_opts p;
	cli_opts_init(&p, inspect_opts, argc, argv, false);
	int id;
	while ((id = cli_opts_next(&p)) != 0) {
		if (id == 'f') {
			format = p.value;
		} else if (id == SOPT_PRETTY) {
			pretty = cli_opts_bool(&p);
		} else if (id == CLI_OPT_HELP) {
			cli_opts_done(&p);
			cli_usage(ctx, usage, desc, inspect_opts);
			return 0;
		} else {
			int r = cli_usage_error(ctx, p.error);
			cli_opts_done(&p);
			return r;
		}
	}
	if (p.npos < 1) {
		cli_opts_done(&p);
		return cli_args_error(ctx, usage, desc, "requires at least 1 argument");
	}
	if (pretty && format) {
		cli_opts_done(&p);
		return cli_usage_error(ctx, "--format is incompatible with human friendly format");
	}
	_cleanup_json_ json_t *all = json_array();
	int status = 0;
	for (int i = 0; all && i < p.npos; i++) {
		struct shoal_err e = {0};
		json_t *svc = get_service(ctx, p.pos[i], &e);
		if (!svc) {
			if (e.status == 404)
				fprintf(stderr, "Error: no such service: %s\n", p.pos[i]);
			else
				cli_print_err(&e);
			status = 1;
			continue;
		}
		json_array_append_new(all, svc);
	}
	_cleanup_free_ char *fmt = format ? strdup(format) : NULL;
	cli_opts_done(&p);
	if (!all || (format && !fmt))
		return cli_oom();
	size_t i;
	json_t *s;
	if (pretty) {
		json_array_foreach(all, i, s) pretty_service(s);
	} else if (fmt) {
		json_array_foreach(all, i, s)
		{
			char terr[256];
			_cleanup_free_ char *out = cli_template_render(fmt, s, terr, sizeof(terr));
			if (!out) {
				fprintf(stderr, "template parsing error: %s\n", terr);
				return 1;
			}
			printf("%s\n", out);
		}
	} else {
		_cleanup_free_ char *out = json_dumps(all, JSON_INDENT(4) | JSON_PRESERVE_ORDER);
		if (!out)
			return cli_oom();
		printf("%s\n", out);
	}
	return status;
}

/* rm */

static const struct cli_opt no_opts[] = {{0}};

static int service_rm(struct cli_ctx *ctx, int argc, char **argv)
{
	static const char usage[] = "SERVICE [SERVICE...]", desc[] = "Remove one or more services";
	struct cli_opts p;
	cli_opts_init(&p, no_opts, argc, argv, false);
	int id;
	while ((id = cli_opts_next(&p)) != 0) {
		int r = id == CLI_OPT_HELP ? 0 : cli_usage_error(ctx, p.error);
		if (id == CLI_OPT_HELP)
			cli_usage(ctx, usage, desc, no_opts);
		cli_opts_done(&p);
		return r;
	}
	if (p.npos < 1) {
		cli_opts_done(&p);
		return cli_args_error(ctx, usage, desc, "requires at least 1 argument");
	}
	int status = 0;
	for (int i = 0; i < p.npos; i++) {
		_cleanup_free_ char *path = cli_obj_path("/services", p.pos[i], NULL);
		struct shoal_err e = {0};
		if (!path) {
			status = cli_oom();
			break;
		}
		if (cli_call_json(ctx, "DELETE", path, NULL, NULL, NULL, &e) < 0) {
			cli_print_err(&e);
			status = 1;
			continue;
		}
		printf("%s\n", p.pos[i]);
	}
	cli_opts_done(&p);
	return status;
}

/* logs */

static const struct cli_opt logs_opts[] = {
	{'f', "follow", 'f', CLI_OPT_BOOL, NULL, "Follow log output"},
	{'n', "tail", 'n', CLI_OPT_VALUE, "string",
	 "Number of lines to show from the end of the logs (default \"all\")"},
	{'t', "timestamps", 't', CLI_OPT_BOOL, NULL, "Show timestamps"},
	{0},
};

static int log_write_cb(void *userdata, int stream, const void *data, size_t len)
{
	int r = write_all(stream == CLI_STREAM_STDERR ? STDERR_FILENO : STDOUT_FILENO, data, len);
	return r == -EPIPE ? r : 0;
}

static int service_logs(struct cli_ctx *ctx, int argc, char **argv)
{
	static const char usage[] = "[OPTIONS] SERVICE",
			  desc[] = "Fetch the logs of a service or task";
	bool follow = false, ts = false;
	_cleanup_free_ char *tail = strdup("all");
	struct cli_opts p;
	cli_opts_init(&p, logs_opts, argc, argv, false);
	int id;
	while ((id = cli_opts_next(&p)) != 0) {
		if (id == 'f') {
			follow = cli_opts_bool(&p);
		} else if (id == 't') {
			ts = cli_opts_bool(&p);
		} else if (id == 'n') {
			free(tail);
			tail = cli_escape(p.value);
		} else if (id == CLI_OPT_HELP) {
			cli_opts_done(&p);
			cli_usage(ctx, usage, desc, logs_opts);
			return 0;
		} else {
			int r = cli_usage_error(ctx, p.error);
			cli_opts_done(&p);
			return r;
		}
	}
	if (p.npos != 1) {
		cli_opts_done(&p);
		return cli_args_error(ctx, usage, desc, "requires exactly 1 argument");
	}
	char suffix[128];
	snprintf(suffix, sizeof(suffix), "/logs?stdout=1&stderr=1%s&tail=%s%s",
		 follow ? "&follow=1" : "", tail ? tail : "all", ts ? "&timestamps=1" : "");
	_cleanup_free_ char *path = cli_obj_path("/services", p.pos[0], suffix);
	cli_opts_done(&p);
	if (!path || !tail)
		return cli_oom();
	struct shoal_err e = {0};
	_cleanup_http_ struct cli_http *c = NULL;
	struct cli_http_resp resp;
	struct cli_call call = {.method = "GET", .path = path, .body_fd = -1};
	if (cli_request(ctx, &call, &c, &resp, &e) < 0) {
		cli_print_err(&e);
		return 1;
	}
	bool mux = cli_stream_multiplexed(&resp, false);
	struct cli_stdcopy sc = {0};
	_cleanup_free_ char *buf = malloc(64 * 1024);
	if (!buf)
		return cli_oom();
	for (;;) {
		ssize_t n = cli_http_read_body(c, buf, 64 * 1024);
		if (n < 0) {
			fprintf(stderr, "Error reading logs: %s\n", strerror((int)-n));
			return 1;
		}
		if (n == 0)
			break;
		int r = mux ? cli_stdcopy_feed(&sc, buf, (size_t)n, log_write_cb, NULL)
			    : write_all(STDOUT_FILENO, buf, (size_t)n);
		if (r == -EPIPE)
			return 0;
		if (r < 0) {
			fprintf(stderr, "Error: malformed log stream from daemon\n");
			return 1;
		}
	}
	return 0;
}

const struct cli_command cli_service_commands[] = {
	{"create", service_create, "Create a new service"},
	{"inspect", service_inspect, "Display detailed information on one or more services"},
	{"logs", service_logs, "Fetch the logs of a service or task"},
	{"ls", service_ls, "List services"},
	{"list", service_ls, NULL},
	{"ps", service_ps, "List the tasks of one or more services"},
	{"rm", service_rm, "Remove one or more services"},
	{"remove", service_rm, NULL},
	{"rollback", service_rollback, "Revert changes to a service's configuration"},
	{"scale", service_scale, "Scale one or multiple replicated services"},
	{"update", service_update, "Update a service"},
	{NULL, NULL, NULL},
};

int cli_cmd_service(struct cli_ctx *ctx, int argc, char **argv)
{
	return cli_dispatch(ctx, "shoal service", cli_service_commands, argc, argv);
}
