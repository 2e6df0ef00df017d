// SPDX-License-Identifier: Apache-2.0
/* `service create` / `service update` flags and the ServiceSpec they build. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli-internal.h"
#include "cli/cli.h"
#include "lib/cleanup.h"
#include "lib/util.h"
#include "sched/spec.h"

#define MAX_FLAGS 512

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
	SOPT_MOUNT,
	SOPT_MOUNT_ADD,
	SOPT_MOUNT_RM,
	SOPT_ENDPOINT_MODE,
	SOPT_DRY_RUN,
	SOPT_IMAGE,
	SOPT_ARGS,
	SOPT_FORCE,
	SOPT_ROLLBACK,
	SOPT_SECRET,
	SOPT_SECRET_ADD,
	SOPT_SECRET_RM,
	SOPT_CONFIG,
	SOPT_CONFIG_ADD,
	SOPT_CONFIG_RM,
};

/* Flags create and update share. */
/* clang-format off */
#define SERVICE_COMMON_OPTS \
	CLI_SERVICE_WAIT_OPTS, \
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
	{SOPT_MOUNT, "mount", 0, CLI_OPT_VALUE, "mount",
	 "Attach a filesystem mount to the service (type=bind|volume|tmpfs,source=..,target=..[,readonly])"},
	{SOPT_SECRET, "secret", 0, CLI_OPT_VALUE, "secret",
	 "Specify secrets to expose to the service (SECRET or source=SECRET[,target=NAME][,uid=][,gid=][,mode=0444])"},
	{SOPT_CONFIG, "config", 0, CLI_OPT_VALUE, "config",
	 "Specify configurations to expose to the service (CONFIG or source=CONFIG[,target=/PATH][,uid=][,gid=][,mode=0444])"},
	{SOPT_DRY_RUN, "dry-run", 0, CLI_OPT_BOOL, NULL,
	 "Show where the tasks would be placed, create nothing"},
	{0},
};

static const struct cli_opt update_opts[] = {
	SERVICE_COMMON_OPTS,
	{SOPT_DRY_RUN, "dry-run", 0, CLI_OPT_BOOL, NULL,
	 "Show where the updated service's tasks would be placed, change nothing"},
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
	{SOPT_MOUNT_ADD, "mount-add", 0, CLI_OPT_VALUE, "mount",
	 "Add or update a mount on a service"},
	{SOPT_MOUNT_RM, "mount-rm", 0, CLI_OPT_VALUE, "list", "Remove a mount by its target path"},
	{SOPT_SECRET_ADD, "secret-add", 0, CLI_OPT_VALUE, "secret",
	 "Add or update a secret on a service"},
	{SOPT_SECRET_RM, "secret-rm", 0, CLI_OPT_VALUE, "list", "Remove a secret"},
	{SOPT_CONFIG_ADD, "config-add", 0, CLI_OPT_VALUE, "config",
	 "Add or update a config file on a service"},
	{SOPT_CONFIG_RM, "config-rm", 0, CLI_OPT_VALUE, "list", "Remove a configuration file"},
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
	if (cli_json_int(port, "TargetPort") != pc->target_port ||
	    strcmp(proto, spec_protocol_str(pc->protocol)) != 0)
		return false;
	return !match_published || cli_json_int(port, "PublishedPort") == pc->published_port;
}

static int apply_publish(struct apply *ap, json_t *spec, bool add)
{
	struct port_config pc;
	struct shoal_err e = {0};
	if (spec_parse_publish(ap->f->value, &pc, &e) < 0)
		return bad_value(ap, e.msg);
	json_t *ports = cli_json_arr(cli_json_obj(spec, "EndpointSpec"), "Ports");
	if (!ports)
		return -ENOMEM;
	/* A published port is unique per protocol: add replaces, rm removes by target. */
	for (size_t i = 0; i < json_array_size(ports);) {
		json_t *pt = json_array_get(ports, i);
		const char *proto = json_string_value(json_object_get(pt, "Protocol"));
		bool same_pub = pc.published_port &&
				cli_json_int(pt, "PublishedPort") == pc.published_port &&
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
	json_t *arr =
		cli_json_arr(cli_json_obj_path(spec, "TaskTemplate.Placement"), "Constraints");
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
	json_t *arr =
		cli_json_arr(cli_json_obj_path(spec, "TaskTemplate.Placement"), "Preferences");
	if (!arr)
		return -ENOMEM;
	for (size_t i = 0; i < json_array_size(arr);) {
		const char *k = cli_json_str(json_array_get(arr, i), "Spread.SpreadDescriptor");
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

/* --mount and --mount-add: one mount per target, a later one replacing;
 * --mount-rm: by target. */
static int apply_mount(struct apply *ap, json_t *cs, bool add)
{
	json_t *arr = cli_json_arr(cs, "Mounts");
	_cleanup_json_ json_t *one = json_array();
	if (!arr || !one)
		return -ENOMEM;
	const char *target = ap->f->value;
	if (add) {
		char why[256];
		int r = cli_parse_mount(ap->f->value, one, why, sizeof(why));
		if (r == -ENOMEM)
			return r;
		if (r < 0)
			return bad_value(ap, why);
		target = cli_json_str(json_array_get(one, 0), "Target");
		if (!target)
			return bad_value(ap, "target is required");
	}
	for (size_t i = 0; i < json_array_size(arr);) {
		const char *t = cli_json_str(json_array_get(arr, i), "Target");
		if (t && strcmp(t, target) == 0)
			json_array_remove(arr, i);
		else
			i++;
	}
	return add ? json_array_extend(arr, one) : 0;
}

/* --secret and --config: NAME, or source=NAME[,target=T][,uid=U][,gid=G][,mode=OCTAL]
 * as the docker CLI reads them (the daemon finds the object by name); a later
 * reference with the same target replaces an earlier one. --secret-rm and
 * --config-rm: by name or id. */
static int apply_ref(struct apply *ap, json_t *cs, bool secret, bool add)
{
	const char *idk = secret ? "SecretID" : "ConfigID";
	const char *namek = secret ? "SecretName" : "ConfigName";
	json_t *arr = cli_json_arr(cs, secret ? "Secrets" : "Configs");
	_cleanup_free_ char *dup = strdup(ap->f->value);
	if (!arr || !dup)
		return -ENOMEM;
	if (!add) {
		for (size_t i = 0; i < json_array_size(arr);) {
			json_t *o = json_array_get(arr, i);
			const char *n = cli_json_str(o, namek), *id = cli_json_str(o, idk);
			if ((n && strcmp(n, dup) == 0) || (id && strcmp(id, dup) == 0))
				json_array_remove(arr, i);
			else
				i++;
		}
		return 0;
	}
	const char *src = NULL, *target = NULL, *uid = "0", *gid = "0";
	unsigned long mode = 0444;
	if (!strchr(dup, '=')) {
		src = dup;
	} else {
		for (char *save = NULL, *f = strtok_r(dup, ",", &save); f;
		     f = strtok_r(NULL, ",", &save)) {
			char *eq = strchr(f, '='), *end;
			if (!eq)
				return bad_value(ap, "expected source=NAME[,target=..][,uid=..]"
						     "[,gid=..][,mode=..]");
			*eq++ = '\0';
			if (strcmp(f, "source") == 0 || strcmp(f, "src") == 0) {
				src = eq;
			} else if (strcmp(f, "target") == 0) {
				target = eq;
			} else if (strcmp(f, "uid") == 0) {
				uid = eq;
			} else if (strcmp(f, "gid") == 0) {
				gid = eq;
			} else if (strcmp(f, "mode") == 0) {
				mode = strtoul(eq, &end, 8);
				if (!*eq || *end || mode > 07777)
					return bad_value(ap, "mode is octal file mode bits (0444)");
			} else {
				return bad_value(ap, "unknown field (source, target, uid, gid, "
						     "mode)");
			}
		}
	}
	if (!src || !*src)
		return bad_value(ap, "source is required");
	char fname[4096];
	snprintf(fname, sizeof(fname), "%s%s", !target && !secret ? "/" : "",
		 target ? target : src);
	for (size_t i = 0; i < json_array_size(arr);) {
		const char *t = cli_json_str(json_array_get(arr, i), "File.Name");
		if (t && strcmp(t, fname) == 0)
			json_array_remove(arr, i);
		else
			i++;
	}
	json_t *ref = json_pack("{s:s, s:{s:s, s:s, s:s, s:I}}", namek, src, "File", "Name", fname,
				"UID", uid, "GID", gid, "Mode", (json_int_t)mode);
	return ref && json_array_append_new(arr, ref) == 0 ? 0 : -ENOMEM;
}

/* --network NAME or the long form name=NAME[,alias=A]... as the docker CLI
 * reads it (driver-opt, link-local-ip and the like are refused here rather
 * than dropped); --network-rm NAME. */
static int apply_network(struct apply *ap, json_t *spec, const char *value, bool add)
{
	json_t *arr = cli_json_arr(cli_json_obj(spec, "TaskTemplate"), "Networks");
	_cleanup_json_ json_t *aliases = json_array();
	_cleanup_free_ char *dup = strdup(value);
	if (!arr || !aliases || !dup)
		return -ENOMEM;
	const char *name = dup;
	if (add && strchr(value, '=')) {
		name = NULL;
		for (char *save = NULL, *f = strtok_r(dup, ",", &save); f;
		     f = strtok_r(NULL, ",", &save)) {
			char *eq = strchr(f, '=');
			if (!eq)
				return bad_value(ap, "expected name=NAME[,alias=ALIAS...]");
			*eq = '\0';
			if (strcmp(f, "name") == 0 || strcmp(f, "target") == 0)
				name = eq + 1;
			else if (strcmp(f, "alias") == 0)
				json_array_append_new(aliases, json_string(eq + 1));
			else
				return bad_value(ap, "only name and alias are supported");
		}
		if (!name || !*name)
			return bad_value(ap, "name=NAME is required");
	}
	for (size_t i = 0; i < json_array_size(arr);) {
		const char *t = cli_json_str(json_array_get(arr, i), "Target");
		if (t && strcmp(t, name) == 0)
			json_array_remove(arr, i);
		else
			i++;
	}
	if (!add)
		return 0;
	json_t *n = json_pack("{s:s}", "Target", name);
	if (n && json_array_size(aliases))
		json_object_set(n, "Aliases", aliases);
	return json_array_append_new(arr, n) == 0 ? 0 : -ENOMEM;
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
	json_t *uc = cli_json_obj(spec, rollback ? "RollbackConfig" : "UpdateConfig");
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
	return cli_json_get(spec, "Mode.Global") != NULL;
}

static int apply_one(struct apply *ap, json_t *spec, bool *health_set, bool *no_health)
{
	const struct cli_service_flag *f = ap->f;
	json_t *tt = cli_json_obj(spec, "TaskTemplate");
	json_t *cs = cli_json_obj(tt, "ContainerSpec");
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
		json_object_del(cli_json_obj(spec, "Mode"), "Global");
		return cli_json_obj_path(spec, "Mode.Replicated") ? 0 : -ENOMEM;
	case SOPT_REPLICAS:
		if ((r = parse_uint(ap, &u)) < 0)
			return r;
		if (u > SPEC_MAX_REPLICAS)
			return bad_value(ap, "too many replicas");
		return set_int(cli_json_obj_path(spec, "Mode.Replicated"), "Replicas",
			       (json_int_t)u);
	case SOPT_MAX_PER_NODE:
		if ((r = parse_uint(ap, &u)) < 0)
			return r;
		return set_int(cli_json_obj(tt, "Placement"), "MaxReplicas", (json_int_t)u);
	case 'e':
	case SOPT_ENV_ADD: {
		json_t *env = cli_json_arr(cs, "Env");
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
		return cli_json_label_set(cli_json_obj(spec, "Labels"), f->value);
	case SOPT_LABEL_RM:
		json_object_del(json_object_get(spec, "Labels"), f->value);
		return 0;
	case SOPT_CLABEL:
	case SOPT_CLABEL_ADD:
		return cli_json_label_set(cli_json_obj(cs, "Labels"), f->value);
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
		return apply_cpu(ap, cli_json_obj_path(tt, "Resources.Limits"), "NanoCPUs");
	case SOPT_LIMIT_MEMORY:
		return apply_memory(ap, cli_json_obj_path(tt, "Resources.Limits"), "MemoryBytes");
	case SOPT_LIMIT_PIDS:
		if ((r = parse_int(ap, &i)) < 0)
			return r;
		if (i < 0)
			return bad_value(ap, "must not be negative");
		return set_int(cli_json_obj_path(tt, "Resources.Limits"), "Pids", i);
	case SOPT_RESERVE_CPU:
		return apply_cpu(ap, cli_json_obj_path(tt, "Resources.Reservations"), "NanoCPUs");
	case SOPT_RESERVE_MEMORY:
		return apply_memory(ap, cli_json_obj_path(tt, "Resources.Reservations"),
				    "MemoryBytes");
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
		return set_str(cli_json_obj(tt, "RestartPolicy"), "Condition",
			       spec_restart_condition_str(c));
	}
	case SOPT_RESTART_DELAY:
		if ((r = parse_duration(ap, &d)) < 0)
			return r;
		return set_int(cli_json_obj(tt, "RestartPolicy"), "Delay", d);
	case SOPT_RESTART_MAX_ATTEMPTS:
		if ((r = parse_uint(ap, &u)) < 0)
			return r;
		return set_int(cli_json_obj(tt, "RestartPolicy"), "MaxAttempts", (json_int_t)u);
	case SOPT_RESTART_WINDOW:
		if ((r = parse_duration(ap, &d)) < 0)
			return r;
		return set_int(cli_json_obj(tt, "RestartPolicy"), "Window", d);
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
		return test && json_object_set_new(cli_json_obj(cs, "Healthcheck"), "Test", test) ==
					       0
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
		return set_int(cli_json_obj(cs, "Healthcheck"), key, d);
	}
	case SOPT_HEALTH_RETRIES:
		*health_set = true;
		if ((r = parse_int(ap, &i)) < 0)
			return r;
		if (i < 0)
			return bad_value(ap, "must not be negative");
		return set_int(cli_json_obj(cs, "Healthcheck"), "Retries", i);
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
		return strarr_add_unique(cli_json_arr(cs, add ? "CapabilityAdd" : "CapabilityDrop"),
					 cap);
	}
	case 'p':
	case SOPT_PUBLISH_ADD:
		return apply_publish(ap, spec, true);
	case SOPT_PUBLISH_RM:
		return apply_publish(ap, spec, false);
	case SOPT_NETWORK:
	case SOPT_NETWORK_ADD:
		return apply_network(ap, spec, f->value, true);
	case SOPT_NETWORK_RM:
		return apply_network(ap, spec, f->value, false);
	case SOPT_MOUNT:
	case SOPT_MOUNT_ADD:
		return apply_mount(ap, cs, true);
	case SOPT_MOUNT_RM:
		return apply_mount(ap, cs, false);
	case SOPT_SECRET:
	case SOPT_SECRET_ADD:
	case SOPT_SECRET_RM:
		return apply_ref(ap, cs, true, f->id != SOPT_SECRET_RM);
	case SOPT_CONFIG:
	case SOPT_CONFIG_ADD:
	case SOPT_CONFIG_RM:
		return apply_ref(ap, cs, false, f->id != SOPT_CONFIG_RM);
	case SOPT_ENDPOINT_MODE: {
		enum endpoint_mode m;
		if (spec_parse_endpoint_mode(f->value, &m, &e) < 0)
			return bad_value(ap, e.msg);
		return set_str(cli_json_obj(spec, "EndpointSpec"), "Mode",
			       spec_endpoint_mode_str(m));
	}
	case SOPT_FORCE:
		if (strcmp(f->value, "true") != 0)
			return 0;
		return set_int(tt, "ForceUpdate", cli_json_int(tt, "ForceUpdate") + 1);
	default:
		return 0;
	}
}

int cli_service_spec_apply(const struct cli_service_args *a, json_t *spec, char *err,
			   size_t errsize)
{
	err[0] = '\0';
	if (!a->update) {
		json_t *cs = cli_json_obj_path(spec, "TaskTemplate.ContainerSpec");
		if (!cs || set_str(cs, "Image", a->pos[0]) < 0)
			return -ENOMEM;
		if (a->npos > 1) {
			json_t *args = json_array();
			for (int i = 1; args && i < a->npos; i++)
				json_array_append_new(args, json_string(a->pos[i]));
			if (!args || json_object_set_new(cs, "Args", args) < 0)
				return -ENOMEM;
		}
		if (!cli_json_get(spec, "Mode") &&
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
		json_object_del(cli_json_obj(spec, "Mode"), "Replicated");
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
