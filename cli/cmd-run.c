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

#include "cli/cli-internal.h"
#include "cli/cli.h"
#include "cli/format.h"
#include "lib/cleanup.h"
#include "lib/util.h"

/* run / create */

static const struct cli_opt run_opts[] = {
	{'d', "detach", 'd', CLI_OPT_BOOL, NULL,
	 "Run container in background and print container ID"},
	{'i', "interactive", 'i', CLI_OPT_BOOL, NULL, "Keep STDIN open even if not attached"},
	{'t', "tty", 't', CLI_OPT_BOOL, NULL, "Allocate a pseudo-TTY"},
	{OPT_RM, "rm", 0, CLI_OPT_BOOL, NULL, "Automatically remove the container when it exits"},
	{OPT_RESTART, "restart", 0, CLI_OPT_VALUE, "string",
	 "Restart policy to apply when a container exits (no, always, unless-stopped, "
	 "on-failure[:max-retries]) (default \"no\")"},
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
	 "Connect a container to a network (bridge, host, none, or an attachable overlay network)"},
	{OPT_NET, "net", 0, CLI_OPT_VALUE, "network", "Alias of --network"},
	{'l', "label", 'l', CLI_OPT_VALUE, "list", "Set meta data on a container"},
	{OPT_LOG_DRIVER, "log-driver", 0, CLI_OPT_VALUE, "string",
	 "Logging driver for the container"},
	{OPT_LOG_OPT, "log-opt", 0, CLI_OPT_VALUE, "list",
	 "Log driver options (max-size=, max-file=)"},
	{'p', "publish", 'p', CLI_OPT_VALUE, "list", "Publish a container's port(s) to the host"},
	{OPT_EXPOSE, "expose", 0, CLI_OPT_VALUE, "list", "Expose a port or a range of ports"},
	{'v', "volume", 'v', CLI_OPT_VALUE, "list",
	 "Bind mount a volume (SOURCE:DEST[:ro], or DEST for an anonymous volume)"},
	{OPT_MOUNT, "mount", 0, CLI_OPT_VALUE, "mount",
	 "Attach a filesystem mount (type=bind|volume|tmpfs,source=..,target=..[,readonly])"},
	{OPT_TMPFS, "tmpfs", 0, CLI_OPT_VALUE, "list", "Mount a tmpfs directory (DEST[:OPTIONS])"},
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

int cli_parse_restart(const char *s, json_t **ret, char *err, size_t errsize)
{
	*ret = NULL;
	if (!*s)
		return 0;
	const char *colon = strchr(s, ':');
	if (colon == s) {
		snprintf(err, errsize,
			 "invalid restart policy format: no policy provided before colon");
		return -EINVAL;
	}
	long long count = 0;
	if (colon && colon[1]) {
		char *end;
		errno = 0;
		count = strtoll(colon + 1, &end, 10);
		if (errno || *end || count < INT32_MIN || count > INT32_MAX) {
			snprintf(err, errsize,
				 "invalid restart policy format: maximum retry count must be an "
				 "integer");
			return -EINVAL;
		}
	}
	int n = colon ? (int)(colon - s) : (int)strlen(s);
	json_t *p = json_pack("{s:s%, s:I}", "Name", s, (size_t)n, "MaximumRetryCount",
			      (json_int_t)count);
	if (!p)
		return -ENOMEM;
	*ret = p;
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

int cli_env_add(json_t *env, const char *kv)
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

int cli_env_file_add(json_t *env, const char *path, char *err, size_t errsize)
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
		r = cli_env_add(env, line);
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

/* update */

static const struct cli_opt update_opts[] = {
	{OPT_RESTART, "restart", 0, CLI_OPT_VALUE, "string",
	 "Restart policy to apply when a container exits"},
	{'m', "memory", 'm', CLI_OPT_VALUE, "bytes", "Memory limit"},
	{OPT_MEMORY_SWAP, "memory-swap", 0, CLI_OPT_VALUE, "bytes",
	 "Swap limit equal to memory plus swap: -1 to enable unlimited swap"},
	{OPT_CPUS, "cpus", 0, CLI_OPT_VALUE, "decimal", "Number of CPUs"},
	{'c', "cpu-shares", 'c', CLI_OPT_VALUE, "int", "CPU shares (relative weight)"},
	{OPT_PIDS_LIMIT, "pids-limit", 0, CLI_OPT_VALUE, "int",
	 "Tune container pids limit (set -1 for unlimited)"},
	{0},
};

int cli_cmd_update(struct cli_ctx *ctx, int argc, char **argv)
{
	static const char usage[] = "[OPTIONS] CONTAINER [CONTAINER...]",
			  desc[] = "Update configuration of one or more containers";
	_cleanup_json_ json_t *body = json_object();
	if (!body)
		return cli_oom();
	char err[512] = "";
	struct cli_opts p;
	cli_opts_init(&p, update_opts, argc, argv, false);
	int id, r = 0;
	bool any = false;
	while (r >= 0 && (id = cli_opts_next(&p)) != 0) {
		const char *v = p.value;
		any = true;
		switch (id) {
		case OPT_RESTART: {
			json_t *rp = NULL;
			r = cli_parse_restart(v, &rp, err, sizeof(err));
			if (r >= 0 && rp)
				r = json_object_set_new(body, "RestartPolicy", rp);
			break;
		}
		case 'm':
			r = set_size(body, "Memory", v, err, sizeof(err));
			break;
		case OPT_MEMORY_SWAP:
			r = set_size(body, "MemorySwap", v, err, sizeof(err));
			break;
		case OPT_CPUS: {
			int64_t nano;
			if (cli_parse_cpus(v, &nano) < 0) {
				snprintf(err, sizeof(err),
					 "invalid argument \"%s\" for \"--cpus\" flag", v);
				r = -EINVAL;
			} else {
				r = json_object_set_new(body, "NanoCpus", json_integer(nano));
			}
			break;
		}
		case 'c':
			r = set_int(body, "CpuShares", v, "-c, --cpu-shares", err, sizeof(err));
			break;
		case OPT_PIDS_LIMIT:
			r = set_int(body, "PidsLimit", v, "--pids-limit", err, sizeof(err));
			break;
		default:
			return cli_opts_fail(ctx, &p, id, usage, desc);
		}
		if (r < 0 && !err[0])
			snprintf(err, sizeof(err), "invalid value \"%s\": %s", v, strerror(-r));
	}
	if (r < 0) {
		cli_opts_done(&p);
		return cli_usage_error(ctx, err);
	}
	if (p.npos < 1)
		return cli_opts_args_fail(ctx, &p, usage, desc, "requires at least 1 argument");
	if (!any) {
		cli_opts_done(&p);
		return cli_usage_error(ctx, "you must provide one or more flags when using this "
					    "command");
	}
	int status = 0;
	for (int i = 0; i < p.npos; i++) {
		struct shoal_err e = {0};
		_cleanup_free_ char *path = cli_obj_path("/containers", p.pos[i], "/update");
		if (!path) {
			cli_opts_done(&p);
			return cli_oom();
		}
		_cleanup_json_ json_t *resp = NULL;
		if (cli_call_json(ctx, "POST", path, body, NULL, &resp, &e) < 0) {
			cli_print_err(&e);
			status = 1;
			continue;
		}
		printf("%s\n", p.pos[i]);
	}
	cli_opts_done(&p);
	return status;
}

int cli_strv_json_push(json_t *obj, const char *key, const char *v)
{
	json_t *a = json_object_get(obj, key);
	if (!a) {
		a = json_array();
		if (!a || json_object_set_new(obj, key, a) < 0)
			return -ENOMEM;
	}
	return json_array_append_new(a, json_string(v));
}

int cli_parse_mount(const char *v, json_t *mounts, char *err, size_t errlen)
{
	_cleanup_json_ json_t *m = json_object();
	_cleanup_free_ char *dup = strdup(v);
	if (!m || !dup)
		return -ENOMEM;
	const char *type = "volume";
	for (char *save = NULL, *f = strtok_r(dup, ",", &save); f; f = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(f, '=');
		const char *val = eq ? eq + 1 : NULL;
		if (eq)
			*eq = '\0';
		bool truthy = !val || strcmp(val, "true") == 0 || strcmp(val, "1") == 0;
		if (!val && strcmp(f, "readonly") != 0 && strcmp(f, "ro") != 0 &&
		    strcmp(f, "volume-nocopy") != 0) {
			snprintf(err, errlen, "invalid field '%s' must be a key=value pair", f);
			return -EINVAL;
		}
		if (strcmp(f, "type") == 0) {
			type = val;
			json_object_set_new(m, "Type", json_string(val));
		} else if (strcmp(f, "source") == 0 || strcmp(f, "src") == 0) {
			json_object_set_new(m, "Source", json_string(val));
		} else if (strcmp(f, "target") == 0 || strcmp(f, "destination") == 0 ||
			   strcmp(f, "dst") == 0) {
			json_object_set_new(m, "Target", json_string(val));
		} else if (strcmp(f, "readonly") == 0 || strcmp(f, "ro") == 0) {
			json_object_set_new(m, "ReadOnly", json_boolean(truthy));
		} else if (strcmp(f, "bind-propagation") == 0) {
			json_object_set_new(m, "BindOptions",
					    json_pack("{s:s}", "Propagation", val));
		} else if (strcmp(f, "volume-nocopy") == 0) {
			json_object_set_new(m, "VolumeOptions",
					    json_pack("{s:b}", "NoCopy", truthy));
		} else if (strcmp(f, "volume-label") == 0) {
			json_t *vo = json_object_get(m, "VolumeOptions");
			if (!vo)
				json_object_set_new(m, "VolumeOptions", vo = json_object());
			json_t *labels = json_object_get(vo, "Labels");
			if (!labels)
				json_object_set_new(vo, "Labels", labels = json_object());
			char *leq = strchr(val, '=');
			if (leq)
				*leq = '\0';
			json_object_set_new(labels, val, json_string(leq ? leq + 1 : ""));
		} else if (strcmp(f, "tmpfs-size") == 0 || strcmp(f, "tmpfs-mode") == 0) {
			json_t *to = json_object_get(m, "TmpfsOptions");
			if (!to)
				json_object_set_new(m, "TmpfsOptions", to = json_object());
			int64_t n = 0;
			char *end = NULL;
			if (f[6] == 's') {
				if (parse_size(val, &n) < 0) {
					snprintf(err, errlen, "invalid value for tmpfs-size: %s",
						 val);
					return -EINVAL;
				}
				json_object_set_new(to, "SizeBytes", json_integer(n));
			} else {
				n = strtoll(val, &end, 8);
				if (!*val || *end) {
					snprintf(err, errlen, "invalid value for tmpfs-mode: %s",
						 val);
					return -EINVAL;
				}
				json_object_set_new(to, "Mode", json_integer(n));
			}
		} else {
			snprintf(err, errlen, "unexpected key '%s' in '%s'", f, v);
			return -EINVAL;
		}
	}
	if (!json_object_get(m, "Type"))
		json_object_set_new(m, "Type", json_string(type));
	return json_array_append(mounts, m);
}

int cli_run_parse(struct cli_ctx *ctx, int argc, char **argv, bool create_only,
		  struct cli_run_config *cfg)
{
	_cleanup_json_ json_t *body = json_object(), *hc = json_object(), *env = json_array(),
			      *envfile = json_array(), *labels = json_object(),
			      *exposed = json_object(), *bindings = json_object(),
			      *logcfg = json_object(), *binds = json_array(),
			      *mounts = json_array(), *tmpfs = json_object(),
			      *volumes = json_object(), *more_nets = json_object();
	_cleanup_free_ char *name = NULL;
	_cleanup_json_ json_t *restart = NULL;
	const char *logdriver = NULL;
	char err[512] = "";
	bool detach = false, interactive = false, tty = false, rm = false, sig_proxy = true;
	bool readonly = false, privileged = false;
	if (!body || !hc || !env || !envfile || !labels || !exposed || !bindings || !logcfg ||
	    !binds || !mounts || !tmpfs || !volumes)
		return cli_oom();

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
		case OPT_RESTART:
			json_decref(restart);
			r = cli_parse_restart(v, &restart, err, sizeof(err));
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
			r = cli_env_add(env, v);
			break;
		case OPT_ENV_FILE:
			r = cli_env_file_add(envfile, v, err, sizeof(err));
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
			r = cli_strv_json_push(hc, "CapAdd", v);
			break;
		case 'v':
			/* a lone path asks for an anonymous volume, as docker sends it */
			if (v[0] == '/' && !strchr(v, ':'))
				r = json_object_set_new(volumes, v, json_object());
			else
				r = json_array_append_new(binds, json_string(v));
			break;
		case OPT_MOUNT:
			r = cli_parse_mount(v, mounts, err, sizeof(err));
			break;
		case OPT_TMPFS: {
			const char *colon = strchr(v, ':');
			char dest[4096];
			snprintf(dest, sizeof(dest), "%.*s",
				 colon ? (int)(colon - v) : (int)strlen(v), v);
			r = json_object_set_new(tmpfs, dest, json_string(colon ? colon + 1 : ""));
			break;
		}
		case OPT_CAP_DROP:
			r = cli_strv_json_push(hc, "CapDrop", v);
			break;
		case OPT_SECURITY_OPT:
			if (!strchr(v, '=') && !strchr(v, ':') &&
			    strcmp(v, "no-new-privileges") != 0) {
				snprintf(err, sizeof(err), "invalid --security-opt: \"%s\"", v);
				r = -EINVAL;
			} else {
				r = cli_strv_json_push(hc, "SecurityOpt", v);
			}
			break;
		case OPT_NETWORK:
		case OPT_NET:
			/* the first is eth0; more join as eth1, ... */
			if (!json_object_get(hc, "NetworkMode"))
				r = json_object_set_new(hc, "NetworkMode", json_string(v));
			else
				r = json_object_set_new(more_nets, v, json_object());
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
	const char *rname = json_string_value(json_object_get(restart, "Name"));
	if (rm && rname && strcmp(rname, "no") != 0) {
		cli_opts_done(&p);
		return cli_usage_error(
			ctx, "Conflicting options: cannot specify both --restart and --rm");
	}

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
	r |= json_object_set_new(
		hc, "RestartPolicy",
		restart ? json_incref(restart)
			: json_pack("{s:s, s:i}", "Name", "no", "MaximumRetryCount", 0));
	if (json_object_size(bindings))
		r |= json_object_set(hc, "PortBindings", bindings);
	if (json_array_size(binds))
		r |= json_object_set(hc, "Binds", binds);
	if (json_array_size(mounts))
		r |= json_object_set(hc, "Mounts", mounts);
	if (json_object_size(tmpfs))
		r |= json_object_set(hc, "Tmpfs", tmpfs);
	if (json_object_size(volumes))
		r |= json_object_set(body, "Volumes", volumes);
	if (logdriver || json_object_size(logcfg))
		r |= json_object_set_new(hc, "LogConfig",
					 json_pack("{s:s,s:O}", "Type",
						   logdriver ? logdriver : "json-file", "Config",
						   logcfg));
	r |= json_object_set(body, "HostConfig", hc);
	if (json_object_size(more_nets))
		r |= json_object_set_new(body, "NetworkingConfig",
					 json_pack("{s:O}", "EndpointsConfig", more_nets));
	if (r)
		goto nomem;

	cfg->image = strdup(p.pos[0]);
	cli_opts_done(&p);
	if (!cfg->image)
		return cli_oom();
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
	return cli_oom();
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
int cli_start_failure_status(const char *msg)
{
	if (strstr(msg, "executable file not found") || strstr(msg, "no such file or directory") ||
	    strstr(msg, "No such file or directory"))
		return 127;
	if (strstr(msg, "permission denied") || strstr(msg, "Permission denied") ||
	    strstr(msg, "is a directory") || strstr(msg, "Is a directory"))
		return 126;
	return CLI_EXIT_USAGE;
}

bool cli_stream_multiplexed(const struct cli_http_resp *resp, bool tty)
{
	if (strstr(resp->content_type, "multiplexed-stream"))
		return true;
	if (strstr(resp->content_type, "raw-stream"))
		return false;
	return !tty;
}

/* Pumps an attached stream in the foreground between the terminal and the container (or
 * exec): the terminal raw when interactive on a tty, its size sent first. */
int cli_attach_pump(struct cli_ctx *ctx, struct cli_http *stream, const struct cli_http_resp *resp,
		    bool tty, bool interactive, bool sig_proxy, const char *container_id,
		    const char *resize_path, struct shoal_err *err)
{
	if (tty && interactive && isatty(STDIN_FILENO))
		cli_tty_raw(STDIN_FILENO);
	if (tty)
		cli_resize(ctx, resize_path, STDOUT_FILENO);
	struct cli_stream_opts so = {
		.tty = tty,
		.multiplexed = cli_stream_multiplexed(resp, tty),
		.attach_stdin = interactive,
		.sig_proxy = sig_proxy,
		.container_id = container_id,
		.resize_path = resize_path,
		.in_fd = STDIN_FILENO,
		.out_fd = STDOUT_FILENO,
		.err_fd = STDERR_FILENO,
	};
	int r = cli_stream_pump(ctx, stream, &so, err);
	cli_tty_restore();
	return r;
}

/* Attach, wait, start, pump: the foreground half of `run` and `start -a`.
 * Returns the exit status to use. */
int cli_attach_start(struct cli_ctx *ctx, const char *id, bool tty, bool interactive,
		     bool sig_proxy, bool do_start)
{
	struct shoal_err err = {0};
	_cleanup_free_ char *attach_path = NULL, *wait_path = NULL, *start_path = NULL,
			    *resize_path = cli_obj_path("/containers", id, "/resize");
	_cleanup_free_ char *base = cli_obj_path("/containers", id, NULL);
	if (!base || !resize_path ||
	    asprintf(&attach_path, "%s/attach?stream=1&stdout=1&stderr=1%s", base,
		     interactive ? "&stdin=1" : "") < 0 ||
	    asprintf(&wait_path, "%s/wait?condition=next-exit", base) < 0 ||
	    asprintf(&start_path, "%s/start", base) < 0)
		return cli_oom();

	if (cli_signals_install(sig_proxy, tty) < 0)
		return cli_oom();
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
			status = cli_start_failure_status(err.msg);
			goto out;
		}
	}
	int pr = cli_attach_pump(ctx, stream, &aresp, tty, interactive, sig_proxy, id, resize_path,
				 &err);
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
		_cleanup_free_ char *path = cli_obj_path("/containers", id, "/start");
		cli_run_config_done(&cfg);
		if (!path)
			return cli_oom();
		if (cli_call_json(ctx, "POST", path, NULL, NULL, NULL, &err) < 0) {
			cli_print_err(&err);
			return cli_start_failure_status(err.msg);
		}
		printf("%s\n", id);
		return 0;
	}
	r = cli_attach_start(ctx, id, cfg.tty, cfg.interactive, cfg.sig_proxy, true);
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
