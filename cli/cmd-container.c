// SPDX-License-Identifier: Apache-2.0
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/format.h"
#include "lib/cleanup.h"
#include "lib/util.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(struct cli_http *, cli_http_free)
#define _cleanup_json_ _cleanup_(json_decrefp)
#define _cleanup_http_ _cleanup_(cli_http_freep)

/* "/containers/<escaped id><suffix>" */
static char *obj_path(const char *prefix, const char *id, const char *suffix)
{
	_cleanup_free_ char *e = cli_escape(id);
	char *r = NULL;
	if (!e || asprintf(&r, "%s/%s%s", prefix, e, suffix ? suffix : "") < 0)
		return NULL;
	return r;
}

static int oom(void)
{
	fprintf(stderr, "Error: out of memory\n");
	return 1;
}

/* run / create */

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
	OPT_TIME,
	OPT_NO_TRUNC,
	OPT_FORMAT,
	OPT_TAIL,
	OPT_SINCE,
	OPT_UNTIL,
	OPT_TYPE,
};

static const struct cli_opt run_opts[] = {
	{'d', "detach", 'd', CLI_OPT_BOOL, NULL,
	 "Run container in background and print container ID"},
	{'i', "interactive", 'i', CLI_OPT_BOOL, NULL, "Keep STDIN open even if not attached"},
	{'t', "tty", 't', CLI_OPT_BOOL, NULL, "Allocate a pseudo-TTY"},
	{OPT_RM, "rm", 0, CLI_OPT_BOOL, NULL, "Automatically remove the container when it exits"},
	{OPT_NAME, "name", 0, CLI_OPT_VALUE, "string", "Assign a name to the container"},
	{'e', "env", 'e', CLI_OPT_VALUE, "list", "Set environment variables"},
	{OPT_ENV_FILE, "env-file", 0, CLI_OPT_VALUE, "list",
	 "Read in a file of environment variables"},
	{'w', "workdir", 'w', CLI_OPT_VALUE, "string", "Working directory inside the container"},
	{'u', "user", 'u', CLI_OPT_VALUE, "string",
	 "Username or UID (format: <name|uid>[:<group|gid>])"},
	{'h', "hostname", 'h', CLI_OPT_VALUE, "string", "Container host name"},
	{OPT_ENTRYPOINT, "entrypoint", 0, CLI_OPT_VALUE, "string",
	 "Overwrite the default ENTRYPOINT of the image"},
	{'m', "memory", 'm', CLI_OPT_VALUE, "bytes", "Memory limit"},
	{OPT_MEMORY_SWAP, "memory-swap", 0, CLI_OPT_VALUE, "bytes",
	 "Swap limit equal to memory plus swap: '-1' to enable unlimited swap"},
	{OPT_CPUS, "cpus", 0, CLI_OPT_VALUE, "decimal", "Number of CPUs"},
	{'c', "cpu-shares", 'c', CLI_OPT_VALUE, "int", "CPU shares (relative weight)"},
	{OPT_PIDS_LIMIT, "pids-limit", 0, CLI_OPT_VALUE, "int",
	 "Tune container pids limit (set -1 for unlimited)"},
	{OPT_READ_ONLY, "read-only", 0, CLI_OPT_BOOL, NULL,
	 "Mount the container's root filesystem as read only"},
	{OPT_CAP_ADD, "cap-add", 0, CLI_OPT_VALUE, "list", "Add Linux capabilities"},
	{OPT_CAP_DROP, "cap-drop", 0, CLI_OPT_VALUE, "list", "Drop Linux capabilities"},
	{OPT_PRIVILEGED, "privileged", 0, CLI_OPT_BOOL, NULL,
	 "Give extended privileges to this container"},
	{OPT_SECURITY_OPT, "security-opt", 0, CLI_OPT_VALUE, "list", "Security Options"},
	{OPT_NETWORK, "network", 0, CLI_OPT_VALUE, "network",
	 "Connect a container to a network (none, host, bridge)"},
	{OPT_NET, "net", 0, CLI_OPT_VALUE, "network", "Alias of --network"},
	{'l', "label", 'l', CLI_OPT_VALUE, "list", "Set meta data on a container"},
	{OPT_LOG_DRIVER, "log-driver", 0, CLI_OPT_VALUE, "string",
	 "Logging driver for the container"},
	{OPT_LOG_OPT, "log-opt", 0, CLI_OPT_VALUE, "list",
	 "Log driver options (max-size=, max-file=)"},
	{'p', "publish", 'p', CLI_OPT_VALUE, "list", "Publish a container's port(s) to the host"},
	{OPT_EXPOSE, "expose", 0, CLI_OPT_VALUE, "list", "Expose a port or a range of ports"},
	{OPT_SIG_PROXY, "sig-proxy", 0, CLI_OPT_BOOL, NULL,
	 "Proxy received signals to the process (default true)"},
	{0},
};

#define RUN_USAGE "[OPTIONS] IMAGE [COMMAND] [ARG...]"

int cli_parse_cpus(const char *s, int64_t *ret)
{
	int64_t whole = 0, frac = 0;
	int fracdigits = 0;
	const char *p = s;
	if (!isdigit((unsigned char)*p) && *p != '.')
		return -EINVAL;
	for (; isdigit((unsigned char)*p); p++) {
		if (whole > 1000000)
			return -ERANGE;
		whole = whole * 10 + (*p - '0');
	}
	if (*p == '.') {
		p++;
		for (; isdigit((unsigned char)*p); p++) {
			if (fracdigits == 9) {
				if (*p != '0')
					return -EINVAL; /* more precise than a nanocpu */
				continue;
			}
			frac = frac * 10 + (*p - '0');
			fracdigits++;
		}
	}
	if (*p || (p > s && p[-1] == '.' && p - 1 == s))
		return -EINVAL;
	for (; fracdigits < 9; fracdigits++)
		frac *= 10;
	*ret = whole * 1000000000 + frac;
	return 0;
}

static int parse_port_range(const char *s, size_t n, unsigned *ret_lo, unsigned *ret_hi)
{
	char tmp[32];
	if (n == 0 || n >= sizeof(tmp))
		return -EINVAL;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	char *end;
	errno = 0;
	unsigned long lo = strtoul(tmp, &end, 10), hi = lo;
	if (errno || end == tmp || lo == 0 || lo > 65535)
		return -EINVAL;
	if (*end == '-') {
		char *start = end + 1;
		hi = strtoul(start, &end, 10);
		if (errno || end == start || hi < lo || hi > 65535)
			return -EINVAL;
	}
	if (*end)
		return -EINVAL;
	*ret_lo = (unsigned)lo;
	*ret_hi = (unsigned)hi;
	return 0;
}

int cli_parse_publish(const char *spec, json_t *exposed, json_t *bindings, char *err,
		      size_t errsize)
{
	_cleanup_free_ char *s = strdup(spec);
	if (!s)
		return -ENOMEM;
	const char *proto = "tcp";
	char *slash = strrchr(s, '/');
	if (slash) {
		*slash = '\0';
		proto = slash + 1;
		if (strcmp(proto, "tcp") && strcmp(proto, "udp") && strcmp(proto, "sctp")) {
			snprintf(err, errsize, "invalid proto: %s", proto);
			return -EINVAL;
		}
	}
	const char *ip = "", *host = "", *cont = s;
	char *rest = s;
	if (s[0] == '[') {
		char *close = strchr(s, ']');
		if (!close || close[1] != ':') {
			snprintf(err, errsize, "invalid IP address in %s", spec);
			return -EINVAL;
		}
		*close = '\0';
		ip = s + 1;
		rest = close + 2;
	}
	char *c1 = strrchr(rest, ':');
	if (c1) {
		*c1 = '\0';
		cont = c1 + 1;
		char *c2 = strrchr(rest, ':');
		if (c2) {
			if (ip[0]) {
				snprintf(err, errsize, "invalid port specification: %s", spec);
				return -EINVAL;
			}
			*c2 = '\0';
			ip = rest;
			host = c2 + 1;
		} else if (s[0] == '[') {
			host = rest;
		} else {
			host = rest;
		}
	} else if (s[0] == '[') {
		snprintf(err, errsize, "invalid port specification: %s", spec);
		return -EINVAL;
	}
	if (ip[0]) {
		unsigned char addr[16];
		if (inet_pton(AF_INET, ip, addr) != 1 && inet_pton(AF_INET6, ip, addr) != 1) {
			snprintf(err, errsize, "invalid IP address: %s", ip);
			return -EINVAL;
		}
	}
	if (!bindings && (host[0] || ip[0])) {
		snprintf(err, errsize, "invalid port format for --expose: %s", spec);
		return -EINVAL;
	}
	unsigned clo, chi, hlo = 0, hhi = 0;
	if (parse_port_range(cont, strlen(cont), &clo, &chi) < 0) {
		snprintf(err, errsize, "invalid containerPort: %s", cont);
		return -EINVAL;
	}
	if (host[0]) {
		if (parse_port_range(host, strlen(host), &hlo, &hhi) < 0) {
			snprintf(err, errsize, "invalid hostPort: %s", host);
			return -EINVAL;
		}
		if (hhi - hlo != chi - clo && !(hlo != hhi && clo == chi)) {
			snprintf(err, errsize,
				 "invalid ranges specified for container and host Ports: %s and %s",
				 cont, host);
			return -EINVAL;
		}
	}
	for (unsigned p = clo; p <= chi; p++) {
		char key[32];
		snprintf(key, sizeof(key), "%u/%s", p, proto);
		if (json_object_set_new(exposed, key, json_object()) < 0)
			return -ENOMEM;
		if (!bindings)
			continue;
		char hp[16] = "";
		if (host[0]) {
			if (hlo != hhi && clo == chi)
				snprintf(hp, sizeof(hp), "%u-%u", hlo, hhi);
			else
				snprintf(hp, sizeof(hp), "%u", hlo + (p - clo));
		}
		json_t *arr = json_object_get(bindings, key);
		if (!arr) {
			arr = json_array();
			if (!arr || json_object_set_new(bindings, key, arr) < 0)
				return -ENOMEM;
		}
		if (json_array_append_new(arr,
					  json_pack("{s:s,s:s}", "HostIp", ip, "HostPort", hp)) < 0)
			return -ENOMEM;
	}
	return 0;
}

static int env_add(json_t *env, const char *kv)
{
	if (strchr(kv, '='))
		return json_array_append_new(env, json_string(kv));
	const char *v = getenv(kv);
	if (!v)
		return 0; /* docker drops a bare name that is not set here */
	_cleanup_free_ char *s = NULL;
	if (asprintf(&s, "%s=%s", kv, v) < 0)
		return -ENOMEM;
	return json_array_append_new(env, json_string(s));
}

static int env_file_add(json_t *env, const char *path, char *err, size_t errsize)
{
	_cleanup_free_ char *text = NULL;
	int r = read_file(path, 1024 * 1024, &text, NULL);
	if (r < 0) {
		snprintf(err, errsize, "open %s: %s", path, strerror(-r));
		return r;
	}
	char *save = NULL;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		while (*line == ' ' || *line == '\t')
			line++;
		size_t n = strlen(line);
		if (n > 0 && line[n - 1] == '\r')
			line[--n] = '\0';
		if (n == 0 || line[0] == '#')
			continue;
		char *eq = strchr(line, '=');
		size_t keylen = eq ? (size_t)(eq - line) : n;
		if (keylen == 0) {
			snprintf(err, errsize, "invalid environment variable: %s", line);
			return -EINVAL;
		}
		for (size_t i = 0; i < keylen; i++)
			if (isspace((unsigned char)line[i])) {
				snprintf(err, errsize, "variable '%.*s' contains whitespaces",
					 (int)keylen, line);
				return -EINVAL;
			}
		r = env_add(env, line);
		if (r < 0)
			return r;
	}
	return 0;
}

void cli_run_config_done(struct cli_run_config *cfg)
{
	json_decref(cfg->body);
	free(cfg->name);
	free(cfg->image);
	*cfg = (struct cli_run_config){0};
}

static int set_size(json_t *hc, const char *key, const char *v, char *err, size_t errsize)
{
	int64_t n;
	if (strcmp(v, "-1") == 0 && strcmp(key, "MemorySwap") == 0)
		n = -1;
	else if (parse_size(v, &n) < 0) {
		snprintf(err, errsize, "invalid size: '%s'", v);
		return -EINVAL;
	}
	return json_object_set_new(hc, key, json_integer(n));
}

static int set_int(json_t *obj, const char *key, const char *v, const char *flag, char *err,
		   size_t errsize)
{
	char *end;
	errno = 0;
	long long n = strtoll(v, &end, 10);
	if (errno || end == v || *end) {
		snprintf(
			err, errsize,
			"invalid argument \"%s\" for \"%s\" flag: strconv.ParseInt: parsing \"%s\": invalid syntax",
			v, flag, v);
		return -EINVAL;
	}
	return json_object_set_new(obj, key, json_integer(n));
}

static int strv_json_push(json_t *obj, const char *key, const char *v)
{
	json_t *a = json_object_get(obj, key);
	if (!a) {
		a = json_array();
		if (!a || json_object_set_new(obj, key, a) < 0)
			return -ENOMEM;
	}
	return json_array_append_new(a, json_string(v));
}

int cli_run_parse(struct cli_ctx *ctx, int argc, char **argv, bool create_only,
		  struct cli_run_config *cfg)
{
	_cleanup_json_ json_t *body = json_object(), *hc = json_object(), *env = json_array(),
			      *envfile = json_array(), *labels = json_object(),
			      *exposed = json_object(), *bindings = json_object(),
			      *logcfg = json_object();
	_cleanup_free_ char *name = NULL;
	const char *logdriver = NULL;
	char err[512] = "";
	bool detach = false, interactive = false, tty = false, rm = false, sig_proxy = true;
	bool readonly = false, privileged = false;
	if (!body || !hc || !env || !envfile || !labels || !exposed || !bindings || !logcfg)
		return oom();

	struct cli_opts p;
	cli_opts_init(&p, run_opts, argc, argv, true);
	int id, r = 0;
	while (r >= 0 && (id = cli_opts_next(&p)) != 0) {
		const char *v = p.value;
		switch (id) {
		case 'd':
			detach = cli_opts_bool(&p);
			break;
		case 'i':
			interactive = cli_opts_bool(&p);
			break;
		case 't':
			tty = cli_opts_bool(&p);
			break;
		case OPT_RM:
			rm = cli_opts_bool(&p);
			break;
		case OPT_SIG_PROXY:
			sig_proxy = cli_opts_bool(&p);
			break;
		case OPT_READ_ONLY:
			readonly = cli_opts_bool(&p);
			break;
		case OPT_PRIVILEGED:
			privileged = cli_opts_bool(&p);
			break;
		case OPT_NAME:
			free(name);
			name = strdup(v);
			break;
		case 'e':
			r = env_add(env, v);
			break;
		case OPT_ENV_FILE:
			r = env_file_add(envfile, v, err, sizeof(err));
			break;
		case 'w':
			r = json_object_set_new(body, "WorkingDir", json_string(v));
			break;
		case 'u':
			r = json_object_set_new(body, "User", json_string(v));
			break;
		case 'h':
			r = json_object_set_new(body, "Hostname", json_string(v));
			break;
		case OPT_ENTRYPOINT:
			r = json_object_set_new(body, "Entrypoint", json_pack("[s]", v));
			break;
		case 'm':
			r = set_size(hc, "Memory", v, err, sizeof(err));
			break;
		case OPT_MEMORY_SWAP:
			r = set_size(hc, "MemorySwap", v, err, sizeof(err));
			break;
		case OPT_CPUS: {
			int64_t nano;
			if (cli_parse_cpus(v, &nano) < 0) {
				snprintf(
					err, sizeof(err),
					"invalid argument \"%s\" for \"--cpus\" flag: failed to parse %s as a rational number",
					v, v);
				r = -EINVAL;
			} else {
				r = json_object_set_new(hc, "NanoCpus", json_integer(nano));
			}
			break;
		}
		case 'c':
			r = set_int(hc, "CpuShares", v, "-c, --cpu-shares", err, sizeof(err));
			break;
		case OPT_PIDS_LIMIT:
			r = set_int(hc, "PidsLimit", v, "--pids-limit", err, sizeof(err));
			break;
		case OPT_CAP_ADD:
			r = strv_json_push(hc, "CapAdd", v);
			break;
		case OPT_CAP_DROP:
			r = strv_json_push(hc, "CapDrop", v);
			break;
		case OPT_SECURITY_OPT:
			if (!strchr(v, '=') && !strchr(v, ':') &&
			    strcmp(v, "no-new-privileges") != 0) {
				snprintf(err, sizeof(err), "invalid --security-opt: \"%s\"", v);
				r = -EINVAL;
			} else {
				r = strv_json_push(hc, "SecurityOpt", v);
			}
			break;
		case OPT_NETWORK:
		case OPT_NET:
			r = json_object_set_new(hc, "NetworkMode", json_string(v));
			break;
		case 'l': {
			const char *eq = strchr(v, '=');
			_cleanup_free_ char *k = eq ? strndup(v, (size_t)(eq - v)) : strdup(v);
			if (!k)
				r = -ENOMEM;
			else
				r = json_object_set_new(labels, k, json_string(eq ? eq + 1 : ""));
			break;
		}
		case OPT_LOG_DRIVER:
			logdriver = v;
			break;
		case OPT_LOG_OPT: {
			const char *eq = strchr(v, '=');
			if (!eq || eq == v) {
				snprintf(err, sizeof(err),
					 "invalid key value pair format in log options: %s", v);
				r = -EINVAL;
				break;
			}
			_cleanup_free_ char *k = strndup(v, (size_t)(eq - v));
			r = k ? json_object_set_new(logcfg, k, json_string(eq + 1)) : -ENOMEM;
			break;
		}
		case 'p':
			r = cli_parse_publish(v, exposed, bindings, err, sizeof(err));
			break;
		case OPT_EXPOSE:
			r = cli_parse_publish(v, exposed, NULL, err, sizeof(err));
			break;
		case CLI_OPT_HELP:
			cli_opts_done(&p);
			cli_usage(ctx, RUN_USAGE,
				  create_only ? "Create a new container"
					      : "Create and run a new container from an image",
				  run_opts);
			return CLI_OPT_HELP;
		default:
			cli_opts_done(&p);
			return cli_usage_error(ctx, p.error);
		}
		if (r < 0 && !err[0])
			snprintf(err, sizeof(err), "invalid value \"%s\": %s", v, strerror(-r));
	}
	if (r < 0) {
		cli_opts_done(&p);
		return cli_usage_error(ctx, err);
	}
	if (p.npos < 1) {
		cli_opts_done(&p);
		return cli_args_error(ctx, RUN_USAGE,
				      "Create and run a new container from an image",
				      "requires at least 1 argument");
	}
	if (create_only)
		detach = true;

	/* Env files first, then -e, as docker merges them. */
	if (json_array_extend(envfile, env) < 0)
		goto nomem;
	bool attach = !detach;
	r = 0;
	r |= json_object_set_new(body, "AttachStdin", json_boolean(attach && interactive));
	r |= json_object_set_new(body, "AttachStdout", json_boolean(attach || create_only));
	r |= json_object_set_new(body, "AttachStderr", json_boolean(attach || create_only));
	r |= json_object_set_new(body, "Tty", json_boolean(tty));
	r |= json_object_set_new(body, "OpenStdin", json_boolean(interactive));
	r |= json_object_set_new(body, "StdinOnce", json_boolean(attach && interactive));
	if (json_array_size(envfile))
		r |= json_object_set(body, "Env", envfile);
	if (p.npos > 1) {
		json_t *cmd = json_array();
		for (int i = 1; cmd && i < p.npos; i++)
			r |= json_array_append_new(cmd, json_string(p.pos[i]));
		r |= json_object_set_new(body, "Cmd", cmd);
	}
	r |= json_object_set_new(body, "Image", json_string(p.pos[0]));
	if (json_object_size(labels))
		r |= json_object_set(body, "Labels", labels);
	if (json_object_size(exposed))
		r |= json_object_set(body, "ExposedPorts", exposed);
	r |= json_object_set_new(hc, "ReadonlyRootfs", json_boolean(readonly));
	r |= json_object_set_new(hc, "Privileged", json_boolean(privileged));
	r |= json_object_set_new(hc, "AutoRemove", json_boolean(rm));
	if (json_object_size(bindings))
		r |= json_object_set(hc, "PortBindings", bindings);
	if (logdriver || json_object_size(logcfg))
		r |= json_object_set_new(hc, "LogConfig",
					 json_pack("{s:s,s:O}", "Type",
						   logdriver ? logdriver : "json-file", "Config",
						   logcfg));
	r |= json_object_set(body, "HostConfig", hc);
	if (r)
		goto nomem;

	cfg->image = strdup(p.pos[0]);
	cli_opts_done(&p);
	if (!cfg->image)
		return oom();
	cfg->body = TAKE_PTR(body);
	cfg->name = TAKE_PTR(name);
	cfg->detach = detach;
	cfg->interactive = interactive;
	cfg->tty = tty;
	cfg->rm = rm;
	cfg->sig_proxy = sig_proxy && !tty;
	return 0;
nomem:
	cli_opts_done(&p);
	return oom();
}

static int create_container(struct cli_ctx *ctx, struct cli_run_config *cfg, char **ret_id,
			    struct shoal_err *err)
{
	_cleanup_free_ char *path = NULL;
	if (cfg->name) {
		_cleanup_free_ char *e = cli_escape(cfg->name);
		if (!e || asprintf(&path, "/containers/create?name=%s", e) < 0)
			return shoal_err_set(err, ENOMEM, "out of memory");
	} else if (!(path = strdup("/containers/create"))) {
		return shoal_err_set(err, ENOMEM, "out of memory");
	}
	_cleanup_json_ json_t *resp = NULL;
	int r = cli_call_json(ctx, "POST", path, cfg->body, NULL, &resp, err);
	if (r < 0)
		return r;
	const char *id = json_string_value(json_object_get(resp, "Id"));
	if (!id)
		return shoal_err_set(err, EBADMSG, "Error: the daemon's create response has no Id");
	json_t *w;
	size_t i;
	json_array_foreach(json_object_get(resp, "Warnings"), i, w) if (json_is_string(w))
		fprintf(stderr, "WARNING: %s\n", json_string_value(w));
	*ret_id = strdup(id);
	return *ret_id ? 0 : shoal_err_set(err, ENOMEM, "out of memory");
}

/* docker's exit status for a start failure: 127 when the command is not
 * found, 126 when it cannot be run, else 125. */
static int start_failure_status(const char *msg)
{
	if (strstr(msg, "executable file not found") || strstr(msg, "no such file or directory") ||
	    strstr(msg, "No such file or directory"))
		return 127;
	if (strstr(msg, "permission denied") || strstr(msg, "Permission denied") ||
	    strstr(msg, "is a directory") || strstr(msg, "Is a directory"))
		return 126;
	return CLI_EXIT_USAGE;
}

static bool stream_multiplexed(const struct cli_http_resp *resp, bool tty)
{
	if (strstr(resp->content_type, "multiplexed-stream"))
		return true;
	if (strstr(resp->content_type, "raw-stream"))
		return false;
	return !tty;
}

/* Attach, wait, start, pump: the foreground half of `run` and `start -a`.
 * Returns the exit status to use. */
static int attach_start(struct cli_ctx *ctx, const char *id, bool tty, bool interactive,
			bool sig_proxy, bool do_start)
{
	struct shoal_err err = {0};
	_cleanup_free_ char *attach_path = NULL, *wait_path = NULL, *start_path = NULL,
			    *resize_path = obj_path("/containers", id, "/resize");
	_cleanup_free_ char *base = obj_path("/containers", id, NULL);
	if (!base || !resize_path ||
	    asprintf(&attach_path, "%s/attach?stream=1&stdout=1&stderr=1%s", base,
		     interactive ? "&stdin=1" : "") < 0 ||
	    asprintf(&wait_path, "%s/wait?condition=next-exit", base) < 0 ||
	    asprintf(&start_path, "%s/start", base) < 0)
		return oom();

	if (cli_signals_install(sig_proxy, tty) < 0)
		return oom();
	int status = CLI_EXIT_USAGE;
	_cleanup_http_ struct cli_http *stream = NULL, *waitc = NULL;
	_cleanup_free_ char *wbody = NULL;
	_cleanup_json_ json_t *wj = NULL;
	struct cli_http_resp aresp;
	struct cli_call acall = {
		.method = "POST", .path = attach_path, .body_fd = -1, .upgrade = true};
	if (cli_request(ctx, &acall, &stream, &aresp, &err) < 0) {
		cli_print_err(&err);
		goto out;
	}
	if (cli_connect(ctx, &waitc, &err) < 0) {
		cli_print_err(&err);
		goto out;
	}
	struct cli_http_req wreq = {.method = "POST", .path = wait_path, .body_fd = -1};
	if (cli_http_send(waitc, &wreq, &err) < 0) {
		cli_print_err(&err);
		goto out;
	}
	if (do_start) {
		int r = cli_call_json(ctx, "POST", start_path, NULL, NULL, NULL, &err);
		if (r < 0) {
			cli_print_err(&err);
			status = start_failure_status(err.msg);
			goto out;
		}
	}
	if (tty && interactive && isatty(STDIN_FILENO))
		cli_tty_raw(STDIN_FILENO);
	if (tty)
		cli_resize(ctx, resize_path, STDOUT_FILENO);

	struct cli_stream_opts so = {
		.tty = tty,
		.multiplexed = stream_multiplexed(&aresp, tty),
		.attach_stdin = interactive,
		.sig_proxy = sig_proxy,
		.container_id = id,
		.resize_path = resize_path,
		.in_fd = STDIN_FILENO,
		.out_fd = STDOUT_FILENO,
		.err_fd = STDERR_FILENO,
	};
	int pr = cli_stream_pump(ctx, stream, &so, &err);
	cli_tty_restore();
	if (pr < 0)
		cli_print_err(&err);
	stream = cli_http_free(stream);

	struct cli_http_resp wresp;
	if (cli_http_read_head(waitc, &wresp, &err) < 0 ||
	    cli_http_read_body_all(waitc, 1024 * 1024, &wbody, NULL) < 0) {
		if (!err.msg[0])
			shoal_err_set(&err, EIO,
				      "Error waiting for the container: connection lost");
		cli_print_err(&err);
		goto out;
	}
	if (wresp.status < 200 || wresp.status >= 300) {
		char msg[1024];
		cli_daemon_error(wresp.status, wbody, msg, sizeof(msg));
		fprintf(stderr, "%s\n", msg);
		goto out;
	}
	wj = json_loads(wbody, 0, NULL);
	json_t *code = json_object_get(wj, "StatusCode");
	if (!json_is_integer(code)) {
		fprintf(stderr, "Error: malformed wait response from daemon\n");
		goto out;
	}
	const char *emsg =
		json_string_value(json_object_get(json_object_get(wj, "Error"), "Message"));
	if (emsg && *emsg)
		fprintf(stderr, "Error: %s\n", emsg);
	status = (int)json_integer_value(code);
out:
	cli_tty_restore();
	cli_signals_restore();
	return status;
}

static int run_or_create(struct cli_ctx *ctx, int argc, char **argv, bool create_only)
{
	struct cli_run_config cfg = {0};
	int r = cli_run_parse(ctx, argc, argv, create_only, &cfg);
	if (r == CLI_OPT_HELP)
		return 0;
	if (r != 0)
		return r;
	if (!create_only && !cfg.detach && cfg.tty && cfg.interactive && !isatty(STDIN_FILENO)) {
		fprintf(stderr, "the input device is not a TTY\n");
		cli_run_config_done(&cfg);
		return 1;
	}
	struct shoal_err err = {0};
	_cleanup_free_ char *id = NULL;
	if (create_container(ctx, &cfg, &id, &err) < 0) {
		cli_print_err(&err);
		cli_run_config_done(&cfg);
		return CLI_EXIT_USAGE;
	}
	if (create_only) {
		printf("%s\n", id);
		cli_run_config_done(&cfg);
		return 0;
	}
	if (cfg.detach) {
		_cleanup_free_ char *path = obj_path("/containers", id, "/start");
		cli_run_config_done(&cfg);
		if (!path)
			return oom();
		if (cli_call_json(ctx, "POST", path, NULL, NULL, NULL, &err) < 0) {
			cli_print_err(&err);
			return start_failure_status(err.msg);
		}
		printf("%s\n", id);
		return 0;
	}
	r = attach_start(ctx, id, cfg.tty, cfg.interactive, cfg.sig_proxy, true);
	cli_run_config_done(&cfg);
	return r;
}

int cli_cmd_run(struct cli_ctx *ctx, int argc, char **argv)
{
	return run_or_create(ctx, argc, argv, false);
}

int cli_cmd_create(struct cli_ctx *ctx, int argc, char **argv)
{
	return run_or_create(ctx, argc, argv, true);
}

/* ps */

static const struct cli_opt ps_opts[] = {
	{'a', "all", 'a', CLI_OPT_BOOL, NULL, "Show all containers (default shows just running)"},
	{'q', "quiet", 'q', CLI_OPT_BOOL, NULL, "Only display container IDs"},
	{OPT_NO_TRUNC, "no-trunc", 0, CLI_OPT_BOOL, NULL, "Don't truncate output"},
	{'f', "filter", 'f', CLI_OPT_VALUE, "filter", "Filter output based on conditions provided"},
	{OPT_FORMAT, "format", 0, CLI_OPT_VALUE, "string",
	 "Format output using a template (fields: .ID .Image .Command .CreatedAt .RunningFor .Ports .Status .State .Names .Labels)"},
	{0},
};

static char *format_ports(json_t *ports)
{
	struct {
		char *p;
		size_t len;
	} b = {0};
	FILE *f = open_memstream(&b.p, &b.len);
	if (!f)
		return NULL;
	size_t i;
	json_t *pt;
	bool first = true;
	json_array_foreach(ports, i, pt)
	{
		json_int_t priv = json_integer_value(json_object_get(pt, "PrivatePort"));
		json_int_t pub = json_integer_value(json_object_get(pt, "PublicPort"));
		const char *ip = json_string_value(json_object_get(pt, "IP"));
		const char *type = json_string_value(json_object_get(pt, "Type"));
		if (!type)
			type = "tcp";
		if (!first)
			fputs(", ", f);
		first = false;
		if (pub) {
			bool v6 = ip && strchr(ip, ':');
			fprintf(f, "%s%s%s:%" JSON_INTEGER_FORMAT "->%" JSON_INTEGER_FORMAT "/%s",
				v6 ? "[" : "", ip && *ip ? ip : "0.0.0.0", v6 ? "]" : "", pub, priv,
				type);
		} else {
			fprintf(f, "%" JSON_INTEGER_FORMAT "/%s", priv, type);
		}
	}
	fclose(f);
	return b.p;
}

static char *format_names(json_t *names)
{
	size_t i;
	json_t *n;
	_cleanup_free_ char *out = strdup("");
	json_array_foreach(names, i, n)
	{
		const char *s = json_string_value(n);
		if (!s)
			continue;
		if (*s == '/')
			s++;
		if (strchr(s, '/'))
			continue; /* link aliases "/a/b" */
		char *next = NULL;
		if (asprintf(&next, "%s%s%s", out ? out : "", out && *out ? "," : "", s) < 0)
			return NULL;
		free(out);
		out = next;
	}
	return TAKE_PTR(out);
}

/* The fields of docker's ps formatter, for --format and the table. */
static json_t *ps_row(json_t *c, bool trunc)
{
	char idbuf[80], created[64], ago[80];
	const char *id = json_string_value(json_object_get(c, "Id"));
	if (!id)
		id = "";
	if (trunc)
		cli_short_id(id, idbuf, sizeof(idbuf));
	else
		snprintf(idbuf, sizeof(idbuf), "%s", id);
	const char *image = json_string_value(json_object_get(c, "Image"));
	char imgbuf[256];
	if (image && trunc && strncmp(image, "sha256:", 7) == 0) {
		cli_short_id(image, imgbuf, sizeof(imgbuf));
		image = imgbuf;
	}
	const char *cmd = json_string_value(json_object_get(c, "Command"));
	_cleanup_free_ char *cut = cli_ellipsis(cmd ? cmd : "", trunc ? 20 : (size_t)-1);
	_cleanup_free_ char *quoted = cut ? cli_quote(cut) : NULL;
	json_int_t t = json_integer_value(json_object_get(c, "Created"));
	time_t tt = (time_t)t;
	struct tm tm;
	localtime_r(&tt, &tm);
	strftime(created, sizeof(created), "%Y-%m-%d %H:%M:%S %z %Z", &tm);
	cli_human_duration((int64_t)time(NULL) - t, ago, sizeof(ago));
	strcat(ago, " ago");
	_cleanup_free_ char *ports = format_ports(json_object_get(c, "Ports"));
	_cleanup_free_ char *names = format_names(json_object_get(c, "Names"));
	json_t *labels = json_object_get(c, "Labels");
	return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:O}", "ID", idbuf, "Image",
			 image ? image : "", "Command", quoted ? quoted : "\"\"", "CreatedAt",
			 created, "RunningFor", ago, "Ports", ports ? ports : "", "Status",
			 json_string_value(json_object_get(c, "Status")) ?: "", "State",
			 json_string_value(json_object_get(c, "State")) ?: "", "Names",
			 names ? names : "", "Labels", labels ? labels : json_null());
}

static int add_filter(json_t *filters, const char *v)
{
	const char *eq = strchr(v, '=');
	if (!eq)
		return -EINVAL;
	_cleanup_free_ char *k = strndup(v, (size_t)(eq - v));
	if (!k)
		return -ENOMEM;
	return strv_json_push(filters, k, eq + 1);
}

static char *filters_query(json_t *filters)
{
	if (json_object_size(filters) == 0)
		return strdup("");
	_cleanup_free_ char *s = json_dumps(filters, JSON_COMPACT);
	_cleanup_free_ char *e = s ? cli_escape(s) : NULL;
	char *r = NULL;
	if (!e || asprintf(&r, "filters=%s", e) < 0)
		return NULL;
	return r;
}

int cli_cmd_ps(struct cli_ctx *ctx, int argc, char **argv)
{
	bool all = false, quiet = false, trunc = true;
	const char *format = NULL;
	_cleanup_json_ json_t *filters = json_object();
	struct cli_opts p;
	cli_opts_init(&p, ps_opts, argc, argv, false);
	int id;
	while ((id = cli_opts_next(&p)) != 0) {
		switch (id) {
		case 'a':
			all = cli_opts_bool(&p);
			break;
		case 'q':
			quiet = cli_opts_bool(&p);
			break;
		case OPT_NO_TRUNC:
			trunc = !cli_opts_bool(&p);
			break;
		case OPT_FORMAT:
			format = p.value;
			break;
		case 'f':
			if (add_filter(filters, p.value) < 0) {
				char msg[300];
				snprintf(msg, sizeof(msg),
					 "bad format of filter (expected name=value)");
				cli_opts_done(&p);
				return cli_usage_error(ctx, msg);
			}
			break;
		case CLI_OPT_HELP:
			cli_opts_done(&p);
			cli_usage(ctx, "[OPTIONS]", "List containers", ps_opts);
			return 0;
		default:
			cli_opts_done(&p);
			return cli_usage_error(ctx, p.error);
		}
	}
	int npos = p.npos;
	cli_opts_done(&p);
	if (npos > 0)
		return cli_args_error(ctx, "[OPTIONS]", "List containers", "accepts no arguments");

	_cleanup_free_ char *fq = filters_query(filters);
	_cleanup_free_ char *path = NULL;
	if (!fq || asprintf(&path, "/containers/json%s%s%s%s", all || *fq ? "?" : "",
			    all ? "all=1" : "", all && *fq ? "&" : "", fq) < 0)
		return oom();
	struct shoal_err err = {0};
	_cleanup_json_ json_t *list = NULL;
	if (cli_call_json(ctx, "GET", path, NULL, NULL, &list, &err) < 0) {
		cli_print_err(&err);
		return 1;
	}
	if (!json_is_array(list)) {
		fprintf(stderr, "Error: malformed container list from daemon\n");
		return 1;
	}
	struct cli_table *t = cli_table_new(7);
	if (!t)
		return oom();
	static const char *const head[] = {"CONTAINER ID", "IMAGE", "COMMAND", "CREATED",
					   "STATUS",	   "PORTS", "NAMES"};
	cli_table_add(t, head);
	size_t i;
	json_t *c;
	int status = 0;
	json_array_foreach(list, i, c)
	{
		_cleanup_json_ json_t *row = ps_row(c, trunc);
		if (!row) {
			status = oom();
			break;
		}
		if (quiet) {
			printf("%s\n", json_string_value(json_object_get(row, "ID")));
		} else if (format) {
			char terr[256];
			_cleanup_free_ char *s =
				cli_template_render(format, row, terr, sizeof(terr));
			if (!s) {
				fprintf(stderr, "template parsing error: %s\n", terr);
				status = 1;
				break;
			}
			printf("%s\n", s);
		} else {
			const char *cells[7];
			static const char *const keys[] = {
				"ID", "Image", "Command", "RunningFor", "Status", "Ports", "Names"};
			for (size_t k = 0; k < 7; k++)
				cells[k] = json_string_value(json_object_get(row, keys[k]));
			cli_table_add(t, cells);
		}
	}
	if (!quiet && !format && status == 0)
		cli_table_print(t, stdout);
	cli_table_free(t);
	return status;
}

/* logs */

static const struct cli_opt logs_opts[] = {
	{'f', "follow", 'f', CLI_OPT_BOOL, NULL, "Follow log output"},
	{'n', "tail", 'n', CLI_OPT_VALUE, "string",
	 "Number of lines to show from the end of the logs (default \"all\")"},
	{'t', "timestamps", 't', CLI_OPT_BOOL, NULL, "Show timestamps"},
	{OPT_SINCE, "since", 0, CLI_OPT_VALUE, "string",
	 "Show logs since timestamp (e.g. \"2013-01-02T13:23:37Z\", unix seconds) or relative (e.g. \"42m\")"},
	{OPT_UNTIL, "until", 0, CLI_OPT_VALUE, "string",
	 "Show logs before a timestamp (e.g. \"2013-01-02T13:23:37Z\", unix seconds) or relative (e.g. \"42m\")"},
	{0},
};

int cli_parse_timestamp(const char *s, int64_t now, char *buf, size_t size)
{
	const char *p = s;
	bool digits_only = *p != '\0';
	for (; *p; p++)
		if (!isdigit((unsigned char)*p) && *p != '.')
			digits_only = false;
	if (digits_only) {
		snprintf(buf, size, "%s", s);
		return 0;
	}
	/* A Go duration: "90s", "42m", "1h30m", "1.5h". */
	double total = 0;
	p = s;
	while (*p) {
		char *end;
		double v = strtod(p, &end);
		if (end == p || v < 0)
			break;
		double unit = *end == 'h'		     ? 3600
			      : *end == 'm' && end[1] != 's' ? 60
			      : *end == 's'		     ? 1
							     : 0;
		if (unit == 0)
			break;
		total += v * unit;
		p = end + 1;
		if (!*p) {
			snprintf(buf, size, "%" PRId64, now - (int64_t)total);
			return 0;
		}
	}
	struct tm tm = {0};
	const char *end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!end)
		end = strptime(s, "%Y-%m-%d", &tm);
	if (!end)
		return -EINVAL;
	int64_t nsec = 0, scale = 100000000;
	if (*end == '.')
		for (end++; isdigit((unsigned char)*end); end++, scale /= 10)
			nsec += (*end - '0') * scale;
	int64_t off = 0;
	if (*end == 'Z') {
		end++;
	} else if (*end == '+' || *end == '-') {
		int hh, mm;
		if (sscanf(end + 1, "%2d:%2d", &hh, &mm) != 2)
			return -EINVAL;
		off = (hh * 3600 + mm * 60) * (*end == '-' ? -1 : 1);
		end += 6;
	}
	if (*end)
		return -EINVAL;
	int64_t t = (int64_t)timegm(&tm) - off;
	snprintf(buf, size, "%" PRId64 ".%09" PRId64, t, nsec);
	return 0;
}

static int write_cb(void *userdata, int stream, const void *data, size_t len)
{
	int r = write_all(stream == CLI_STREAM_STDERR ? STDERR_FILENO : STDOUT_FILENO, data, len);
	return r == -EPIPE ? r : 0;
}

static json_t *inspect_container(struct cli_ctx *ctx, const char *name, struct shoal_err *err)
{
	_cleanup_free_ char *path = obj_path("/containers", name, "/json");
	if (!path) {
		shoal_err_set(err, ENOMEM, "out of memory");
		return NULL;
	}
	json_t *j = NULL;
	if (cli_call_json(ctx, "GET", path, NULL, NULL, &j, err) < 0)
		return NULL;
	return j;
}

int cli_cmd_logs(struct cli_ctx *ctx, int argc, char **argv)
{
	static const char usage[] = "[OPTIONS] CONTAINER", desc[] = "Fetch the logs of a container";
	bool follow = false, ts = false;
	const char *tail = "all", *since = NULL, *until = NULL;
	struct cli_opts p;
	cli_opts_init(&p, logs_opts, argc, argv, false);
	int id;
	while ((id = cli_opts_next(&p)) != 0) {
		switch (id) {
		case 'f':
			follow = cli_opts_bool(&p);
			break;
		case 't':
			ts = cli_opts_bool(&p);
			break;
		case 'n':
			tail = p.value;
			break;
		case OPT_SINCE:
			since = p.value;
			break;
		case OPT_UNTIL:
			until = p.value;
			break;
		case CLI_OPT_HELP:
			cli_opts_done(&p);
			cli_usage(ctx, usage, desc, logs_opts);
			return 0;
		default:
			cli_opts_done(&p);
			return cli_usage_error(ctx, p.error);
		}
	}
	if (p.npos != 1) {
		cli_opts_done(&p);
		return cli_args_error(ctx, usage, desc, "requires exactly 1 argument");
	}
	const char *name = p.pos[0];
	cli_opts_done(&p);

	struct shoal_err err = {0};
	_cleanup_json_ json_t *info = inspect_container(ctx, name, &err);
	if (!info) {
		cli_print_err(&err);
		return 1;
	}
	bool tty = json_is_true(json_object_get(json_object_get(info, "Config"), "Tty"));
	_cleanup_free_ char *base = obj_path("/containers", name, "/logs");
	char since_ts[32], until_ts[32];
	if (since && cli_parse_timestamp(since, time(NULL), since_ts, sizeof(since_ts)) < 0) {
		fprintf(stderr, "invalid value for \"since\": %s\n", since);
		return 1;
	}
	if (until && cli_parse_timestamp(until, time(NULL), until_ts, sizeof(until_ts)) < 0) {
		fprintf(stderr, "invalid value for \"until\": %s\n", until);
		return 1;
	}
	_cleanup_free_ char *etail = cli_escape(tail), *esince = since ? strdup(since_ts) : NULL,
			    *euntil = until ? strdup(until_ts) : NULL;
	_cleanup_free_ char *path = NULL;
	if (!base || !etail ||
	    asprintf(&path, "%s?stdout=1&stderr=1%s&tail=%s%s%s%s%s%s", base,
		     follow ? "&follow=1" : "", etail, ts ? "&timestamps=1" : "",
		     esince ? "&since=" : "", esince ? esince : "", euntil ? "&until=" : "",
		     euntil ? euntil : "") < 0)
		return oom();
	_cleanup_http_ struct cli_http *c = NULL;
	struct cli_http_resp resp;
	struct cli_call call = {.method = "GET", .path = path, .body_fd = -1};
	if (cli_request(ctx, &call, &c, &resp, &err) < 0) {
		cli_print_err(&err);
		return 1;
	}
	bool mux = stream_multiplexed(&resp, tty);
	struct cli_stdcopy sc = {0};
	_cleanup_free_ char *buf = malloc(64 * 1024);
	if (!buf)
		return oom();
	for (;;) {
		ssize_t n = cli_http_read_body(c, buf, 64 * 1024);
		if (n < 0) {
			fprintf(stderr, "Error reading logs: %s\n", strerror((int)-n));
			return 1;
		}
		if (n == 0)
			break;
		int r = mux ? cli_stdcopy_feed(&sc, buf, (size_t)n, write_cb, NULL)
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

/* exec */

static const struct cli_opt exec_opts[] = {
	{'d', "detach", 'd', CLI_OPT_BOOL, NULL, "Detached mode: run command in the background"},
	{'i', "interactive", 'i', CLI_OPT_BOOL, NULL, "Keep STDIN open even if not attached"},
	{'t', "tty", 't', CLI_OPT_BOOL, NULL, "Allocate a pseudo-TTY"},
	{'e', "env", 'e', CLI_OPT_VALUE, "list", "Set environment variables"},
	{OPT_ENV_FILE, "env-file", 0, CLI_OPT_VALUE, "list",
	 "Read in a file of environment variables"},
	{'u', "user", 'u', CLI_OPT_VALUE, "string",
	 "Username or UID (format: <name|uid>[:<group|gid>])"},
	{'w', "workdir", 'w', CLI_OPT_VALUE, "string", "Working directory inside the container"},
	{OPT_PRIVILEGED, "privileged", 0, CLI_OPT_BOOL, NULL,
	 "Give extended privileges to the command"},
	{0},
};

int cli_cmd_exec(struct cli_ctx *ctx, int argc, char **argv)
{
	static const char usage[] = "[OPTIONS] CONTAINER COMMAND [ARG...]",
			  desc[] = "Execute a command in a running container";
	bool detach = false, interactive = false, tty = false, privileged = false;
	const char *user = NULL, *workdir = NULL;
	_cleanup_json_ json_t *env = json_array(), *envfile = json_array();
	char err_text[512] = "";
	if (!env || !envfile)
		return oom();
	struct cli_opts p;
	cli_opts_init(&p, exec_opts, argc, argv, true);
	int id, r = 0;
	while (r >= 0 && (id = cli_opts_next(&p)) != 0) {
		switch (id) {
		case 'd':
			detach = cli_opts_bool(&p);
			break;
		case 'i':
			interactive = cli_opts_bool(&p);
			break;
		case 't':
			tty = cli_opts_bool(&p);
			break;
		case OPT_PRIVILEGED:
			privileged = cli_opts_bool(&p);
			break;
		case 'e':
			r = env_add(env, p.value);
			break;
		case OPT_ENV_FILE:
			r = env_file_add(envfile, p.value, err_text, sizeof(err_text));
			break;
		case 'u':
			user = p.value;
			break;
		case 'w':
			workdir = p.value;
			break;
		case CLI_OPT_HELP:
			cli_opts_done(&p);
			cli_usage(ctx, usage, desc, exec_opts);
			return 0;
		default:
			cli_opts_done(&p);
			return cli_usage_error(ctx, p.error);
		}
	}
	if (r < 0) {
		cli_opts_done(&p);
		return cli_usage_error(ctx, err_text[0] ? err_text : strerror(-r));
	}
	if (p.npos < 2) {
		cli_opts_done(&p);
		return cli_args_error(ctx, usage, desc, "requires at least 2 arguments");
	}
	if (!detach && tty && interactive && !isatty(STDIN_FILENO)) {
		cli_opts_done(&p);
		fprintf(stderr, "the input device is not a TTY\n");
		return 1;
	}
	_cleanup_free_ char *container = strdup(p.pos[0]);
	json_t *cmd = json_array();
	for (int i = 1; cmd && i < p.npos; i++)
		json_array_append_new(cmd, json_string(p.pos[i]));
	cli_opts_done(&p);
	if (!container || !cmd || json_array_extend(envfile, env) < 0) {
		json_decref(cmd);
		return oom();
	}
	_cleanup_json_ json_t *body =
		json_pack("{s:b,s:b,s:b,s:b,s:o,s:O,s:s,s:s,s:b}", "AttachStdin",
			  !detach && interactive, "AttachStdout", !detach, "AttachStderr", !detach,
			  "Tty", tty, "Cmd", cmd, "Env", envfile, "User", user ? user : "",
			  "WorkingDir", workdir ? workdir : "", "Privileged", privileged);
	_cleanup_free_ char *cpath = obj_path("/containers", container, "/exec");
	if (!body || !cpath)
		return oom();
	struct shoal_err err = {0};
	_cleanup_json_ json_t *created = NULL;
	if (cli_call_json(ctx, "POST", cpath, body, NULL, &created, &err) < 0) {
		cli_print_err(&err);
		return 1;
	}
	const char *exec_id = json_string_value(json_object_get(created, "Id"));
	if (!exec_id) {
		fprintf(stderr, "Error: the daemon's exec response has no Id\n");
		return 1;
	}
	_cleanup_free_ char *spath = obj_path("/exec", exec_id, "/start");
	_cleanup_free_ char *rpath = obj_path("/exec", exec_id, "/resize");
	_cleanup_free_ char *ipath = obj_path("/exec", exec_id, "/json");
	_cleanup_json_ json_t *sbody = json_pack("{s:b,s:b}", "Detach", detach, "Tty", tty);
	if (!spath || !rpath || !ipath || !sbody)
		return oom();
	if (detach) {
		if (cli_call_json(ctx, "POST", spath, sbody, NULL, NULL, &err) < 0) {
			cli_print_err(&err);
			return 1;
		}
		return 0;
	}
	if (cli_signals_install(false, tty) < 0)
		return oom();
	_cleanup_http_ struct cli_http *stream = NULL;
	struct cli_http_resp resp;
	struct cli_call call = {
		.method = "POST", .path = spath, .body = sbody, .body_fd = -1, .upgrade = true};
	if (cli_request(ctx, &call, &stream, &resp, &err) < 0) {
		cli_signals_restore();
		cli_print_err(&err);
		int st = start_failure_status(err.msg);
		return st == CLI_EXIT_USAGE ? 126 : st;
	}
	if (tty && interactive && isatty(STDIN_FILENO))
		cli_tty_raw(STDIN_FILENO);
	if (tty)
		cli_resize(ctx, rpath, STDOUT_FILENO);
	struct cli_stream_opts so = {
		.tty = tty,
		.multiplexed = stream_multiplexed(&resp, tty),
		.attach_stdin = interactive,
		.resize_path = rpath,
		.in_fd = STDIN_FILENO,
		.out_fd = STDOUT_FILENO,
		.err_fd = STDERR_FILENO,
	};
	int pr = cli_stream_pump(ctx, stream, &so, &err);
	cli_tty_restore();
	cli_signals_restore();
	if (pr < 0) {
		cli_print_err(&err);
		return 1;
	}
	stream = cli_http_free(stream);
	_cleanup_json_ json_t *info = NULL;
	if (cli_call_json(ctx, "GET", ipath, NULL, NULL, &info, &err) < 0) {
		cli_print_err(&err);
		return 1;
	}
	json_t *code = json_object_get(info, "ExitCode");
	return json_is_integer(code) ? (int)json_integer_value(code) : 0;
}

/* start, stop, kill, rm, wait: one request per container. */

static const struct cli_opt start_opts[] = {
	{'a', "attach", 'a', CLI_OPT_BOOL, NULL, "Attach STDOUT/STDERR and forward signals"},
	{'i', "interactive", 'i', CLI_OPT_BOOL, NULL, "Attach container's STDIN"},
	{0},
};

int cli_cmd_start(struct cli_ctx *ctx, int argc, char **argv)
{
	static const char usage[] = "[OPTIONS] CONTAINER [CONTAINER...]",
			  desc[] = "Start one or more stopped containers";
	bool attach = false, interactive = false;
	struct cli_opts p;
	cli_opts_init(&p, start_opts, argc, argv, false);
	int id;
	while ((id = cli_opts_next(&p)) != 0) {
		if (id == 'a')
			attach = cli_opts_bool(&p);
		else if (id == 'i')
			interactive = cli_opts_bool(&p);
		else if (id == CLI_OPT_HELP) {
			cli_opts_done(&p);
			cli_usage(ctx, usage, desc, start_opts);
			return 0;
		} else {
			cli_opts_done(&p);
			return cli_usage_error(ctx, p.error);
		}
	}
	if (p.npos < 1) {
		cli_opts_done(&p);
		return cli_args_error(ctx, usage, desc, "requires at least 1 argument");
	}
	struct shoal_err err = {0};
	int status = 0;
	if (attach || interactive) {
		if (p.npos > 1) {
			cli_opts_done(&p);
			fprintf(stderr,
				"you cannot start and attach multiple containers at once\n");
			return 1;
		}
		_cleanup_json_ json_t *info = inspect_container(ctx, p.pos[0], &err);
		cli_opts_done(&p);
		if (!info) {
			cli_print_err(&err);
			return 1;
		}
		const char *cid = json_string_value(json_object_get(info, "Id"));
		json_t *config = json_object_get(info, "Config");
		bool tty = json_is_true(json_object_get(config, "Tty"));
		bool open_stdin = json_is_true(json_object_get(config, "OpenStdin"));
		if (!cid) {
			fprintf(stderr, "Error: malformed inspect response from daemon\n");
			return 1;
		}
		status = attach_start(ctx, cid, tty, interactive && open_stdin, !tty, true);
		return status == CLI_EXIT_USAGE ? 1 : status;
	}
	for (int i = 0; i < p.npos; i++) {
		_cleanup_free_ char *path = obj_path("/containers", p.pos[i], "/start");
		if (!path) {
			status = oom();
			break;
		}
		if (cli_call_json(ctx, "POST", path, NULL, NULL, NULL, &err) < 0) {
			cli_print_err(&err);
			status = 1;
			continue;
		}
		printf("%s\n", p.pos[i]);
	}
	cli_opts_done(&p);
	return status;
}

struct simple_cmd {
	const char *usage, *desc;
	const struct cli_opt *opts;
};

/* Runs method on prefix/<name><suffix> for every positional; prints the name
 * (or the wait status) per success, the daemon's error per failure. */
static int each_container(struct cli_ctx *ctx, struct cli_opts *p, const char *method,
			  const char *suffix, bool print_status)
{
	int status = 0;
	struct shoal_err err = {0};
	for (int i = 0; i < p->npos; i++) {
		_cleanup_free_ char *path = obj_path("/containers", p->pos[i], suffix);
		if (!path)
			return oom();
		_cleanup_json_ json_t *resp = NULL;
		if (cli_call_json(ctx, method, path, NULL, NULL, &resp, &err) < 0) {
			cli_print_err(&err);
			status = 1;
			continue;
		}
		if (print_status) {
			json_t *code = json_object_get(resp, "StatusCode");
			const char *emsg = json_string_value(
				json_object_get(json_object_get(resp, "Error"), "Message"));
			if (emsg && *emsg)
				fprintf(stderr, "%s\n", emsg);
			printf("%" JSON_INTEGER_FORMAT "\n", json_integer_value(code));
		} else {
			printf("%s\n", p->pos[i]);
		}
		fflush(stdout);
	}
	return status;
}

static const struct cli_opt stop_opts[] = {
	{'t', "time", 't', CLI_OPT_VALUE, "int", "Seconds to wait before killing the container"},
	{'s', "signal", 's', CLI_OPT_VALUE, "string", "Signal to send to the container"},
	{0},
};

int cli_cmd_stop(struct cli_ctx *ctx, int argc, char **argv)
{
	static const char usage[] = "[OPTIONS] CONTAINER [CONTAINER...]",
			  desc[] = "Stop one or more running containers";
	_cleanup_free_ char *time_q = NULL, *sig_q = NULL;
	struct cli_opts p;
	cli_opts_init(&p, stop_opts, argc, argv, false);
	int id;
	while ((id = cli_opts_next(&p)) != 0) {
		if (id == 't') {
			char *end;
			errno = 0;
			long v = strtol(p.value, &end, 10);
			if (errno || end == p.value || *end) {
				char msg[300];
				snprintf(
					msg, sizeof(msg),
					"invalid argument \"%s\" for \"-t, --time\" flag: strconv.ParseInt: parsing \"%s\": invalid syntax",
					p.value, p.value);
				cli_opts_done(&p);
				return cli_usage_error(ctx, msg);
			}
			free(time_q);
			if (asprintf(&time_q, "t=%ld", v) < 0)
				time_q = NULL;
		} else if (id == 's') {
			_cleanup_free_ char *e = cli_escape(p.value);
			free(sig_q);
			if (!e || asprintf(&sig_q, "signal=%s", e) < 0)
				sig_q = NULL;
		} else if (id == CLI_OPT_HELP) {
			cli_opts_done(&p);
			cli_usage(ctx, usage, desc, stop_opts);
			return 0;
		} else {
			cli_opts_done(&p);
			return cli_usage_error(ctx, p.error);
		}
	}
	if (p.npos < 1) {
		cli_opts_done(&p);
		return cli_args_error(ctx, usage, desc, "requires at least 1 argument");
	}
	_cleanup_free_ char *suffix = NULL;
	if (asprintf(&suffix, "/stop%s%s%s%s", time_q || sig_q ? "?" : "", time_q ? time_q : "",
		     time_q && sig_q ? "&" : "", sig_q ? sig_q : "") < 0) {
		cli_opts_done(&p);
		return oom();
	}
	int r = each_container(ctx, &p, "POST", suffix, false);
	cli_opts_done(&p);
	return r;
}

static const struct cli_opt kill_opts[] = {
	{'s', "signal", 's', CLI_OPT_VALUE, "string",
	 "Signal to send to the container (default \"KILL\")"},
	{0},
};

int cli_cmd_kill(struct cli_ctx *ctx, int argc, char **argv)
{
	static const char usage[] = "[OPTIONS] CONTAINER [CONTAINER...]",
			  desc[] = "Kill one or more running containers";
	const char *sig = "KILL";
	struct cli_opts p;
	cli_opts_init(&p, kill_opts, argc, argv, false);
	int id;
	while ((id = cli_opts_next(&p)) != 0) {
		if (id == 's') {
			sig = p.value;
		} else if (id == CLI_OPT_HELP) {
			cli_opts_done(&p);
			cli_usage(ctx, usage, desc, kill_opts);
			return 0;
		} else {
			cli_opts_done(&p);
			return cli_usage_error(ctx, p.error);
		}
	}
	if (p.npos < 1) {
		cli_opts_done(&p);
		return cli_args_error(ctx, usage, desc, "requires at least 1 argument");
	}
	_cleanup_free_ char *esig = cli_escape(sig), *suffix = NULL;
	if (!esig || asprintf(&suffix, "/kill?signal=%s", esig) < 0) {
		cli_opts_done(&p);
		return oom();
	}
	int r = each_container(ctx, &p, "POST", suffix, false);
	cli_opts_done(&p);
	return r;
}

static const struct cli_opt rm_opts[] = {
	{'f', "force", 'f', CLI_OPT_BOOL, NULL,
	 "Force the removal of a running container (uses SIGKILL)"},
	{'v', "volumes", 'v', CLI_OPT_BOOL, NULL,
	 "Remove anonymous volumes associated with the container"},
	{0},
};

int cli_cmd_rm(struct cli_ctx *ctx, int argc, char **argv)
{
	static const char usage[] = "[OPTIONS] CONTAINER [CONTAINER...]",
			  desc[] = "Remove one or more containers";
	bool force = false, volumes = false;
	struct cli_opts p;
	cli_opts_init(&p, rm_opts, argc, argv, false);
	int id;
	while ((id = cli_opts_next(&p)) != 0) {
		if (id == 'f') {
			force = cli_opts_bool(&p);
		} else if (id == 'v') {
			volumes = cli_opts_bool(&p);
		} else if (id == CLI_OPT_HELP) {
			cli_opts_done(&p);
			cli_usage(ctx, usage, desc, rm_opts);
			return 0;
		} else {
			cli_opts_done(&p);
			return cli_usage_error(ctx, p.error);
		}
	}
	if (p.npos < 1) {
		cli_opts_done(&p);
		return cli_args_error(ctx, usage, desc, "requires at least 1 argument");
	}
	const char *suffix = force && volumes ? "?force=1&v=1"
			     : force	      ? "?force=1"
			     : volumes	      ? "?v=1"
					      : "";
	int r = each_container(ctx, &p, "DELETE", suffix, false);
	cli_opts_done(&p);
	return r;
}

static const struct cli_opt no_opts[] = {{0}};

int cli_cmd_wait(struct cli_ctx *ctx, int argc, char **argv)
{
	static const char
		usage[] = "CONTAINER [CONTAINER...]",
		desc[] = "Block until one or more containers stop, then print their exit codes";
	struct cli_opts p;
	cli_opts_init(&p, no_opts, argc, argv, false);
	int id;
	while ((id = cli_opts_next(&p)) != 0) {
		cli_opts_done(&p);
		if (id == CLI_OPT_HELP) {
			cli_usage(ctx, usage, desc, no_opts);
			return 0;
		}
		return cli_usage_error(ctx, p.error);
	}
	if (p.npos < 1) {
		cli_opts_done(&p);
		return cli_args_error(ctx, usage, desc, "requires at least 1 argument");
	}
	int r = each_container(ctx, &p, "POST", "/wait", true);
	cli_opts_done(&p);
	return r;
}

/* inspect */

static const struct cli_opt inspect_opts[] = {
	{'f', "format", 'f', CLI_OPT_VALUE, "string",
	 "Format output using a template: {{.A.B}}, {{json .A}}, {{index .A \"k\"}}, {{join .A \",\"}}, {{len .A}}, {{upper .A}}, {{lower .A}}"},
	{OPT_TYPE, "type", 0, CLI_OPT_VALUE, "string",
	 "Return JSON for specified type (container or image)"},
	{'s', "size", 's', CLI_OPT_BOOL, NULL, "Display total file sizes if the type is container"},
	{0},
};

/* kind: NULL (containers, then images), "container" or "image". */
static int inspect_objects(struct cli_ctx *ctx, int argc, char **argv, const char *kind)
{
	static const char usage[] = "[OPTIONS] NAME|ID [NAME|ID...]",
			  desc[] = "Return low-level information on containers or images";
	const char *format = NULL, *type = kind;
	bool size = false;
	struct cli_opts p;
	cli_opts_init(&p, inspect_opts, argc, argv, false);
	int id;
	while ((id = cli_opts_next(&p)) != 0) {
		if (id == 'f') {
			format = p.value;
		} else if (id == OPT_TYPE && !kind) {
			type = p.value;
			if (strcmp(type, "container") && strcmp(type, "image")) {
				char msg[300];
				snprintf(msg, sizeof(msg), "\"%s\" is not a valid value for --type",
					 type);
				cli_opts_done(&p);
				return cli_usage_error(ctx, msg);
			}
		} else if (id == 's') {
			size = cli_opts_bool(&p);
		} else if (id == CLI_OPT_HELP) {
			cli_opts_done(&p);
			cli_usage(ctx, usage, desc, inspect_opts);
			return 0;
		} else {
			cli_opts_done(&p);
			return cli_usage_error(ctx,
					       id == OPT_TYPE ? "unknown flag: --type" : p.error);
		}
	}
	if (p.npos < 1) {
		cli_opts_done(&p);
		return cli_args_error(ctx, usage, desc, "requires at least 1 argument");
	}
	_cleanup_json_ json_t *all = json_array();
	if (!all) {
		cli_opts_done(&p);
		return oom();
	}
	int status = 0;
	for (int i = 0; i < p.npos; i++) {
		const char *name = p.pos[i];
		struct shoal_err err = {0};
		json_t *obj = NULL;
		bool tried_container = false;
		if (!type || strcmp(type, "container") == 0) {
			_cleanup_free_ char *path =
				obj_path("/containers", name, size ? "/json?size=1" : "/json");
			tried_container = true;
			if (path)
				cli_call_json(ctx, "GET", path, NULL, NULL, &obj, &err);
		}
		if (!obj && (!type || strcmp(type, "image") == 0) &&
		    (!tried_container || err.status == 404)) {
			_cleanup_free_ char *path = obj_path("/images", name, "/json");
			shoal_err_clear(&err);
			if (path)
				cli_call_json(ctx, "GET", path, NULL, NULL, &obj, &err);
		}
		if (!obj) {
			if (err.status == 404)
				fprintf(stderr, "Error: No such %s: %s\n",
					!type			     ? "object"
					: strcmp(type, "image") == 0 ? "image"
								     : "container",
					name);
			else
				cli_print_err(&err);
			status = 1;
			continue;
		}
		json_array_append_new(all, obj);
	}
	cli_opts_done(&p);
	if (format) {
		size_t i;
		json_t *obj;
		json_array_foreach(all, i, obj)
		{
			char terr[256];
			_cleanup_free_ char *s =
				cli_template_render(format, obj, terr, sizeof(terr));
			if (!s) {
				fprintf(stderr, "template parsing error: %s\n", terr);
				return 1;
			}
			printf("%s\n", s);
		}
	} else {
		_cleanup_free_ char *s = json_dumps(all, JSON_INDENT(4) | JSON_PRESERVE_ORDER);
		if (!s)
			return oom();
		printf("%s\n", s);
	}
	return status;
}

int cli_cmd_inspect(struct cli_ctx *ctx, int argc, char **argv)
{
	return inspect_objects(ctx, argc, argv, NULL);
}

int cli_cmd_container_inspect(struct cli_ctx *ctx, int argc, char **argv)
{
	return inspect_objects(ctx, argc, argv, "container");
}

int cli_cmd_image_inspect(struct cli_ctx *ctx, int argc, char **argv)
{
	return inspect_objects(ctx, argc, argv, "image");
}

int cli_cmd_container(struct cli_ctx *ctx, int argc, char **argv)
{
	return cli_dispatch(ctx, "shoal container", cli_container_commands, argc, argv);
}
