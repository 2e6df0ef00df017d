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

int cli_cmd_ps(struct cli_ctx *ctx, int argc, char **argv)
{
	static const char usage[] = "[OPTIONS]", desc[] = "List containers";
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
			if (cli_filter_add(filters, p.value) < 0) {
				char msg[300];
				snprintf(msg, sizeof(msg),
					 "bad format of filter (expected name=value)");
				cli_opts_done(&p);
				return cli_usage_error(ctx, msg);
			}
			break;
		default:
			return cli_opts_fail(ctx, &p, id, usage, desc);
		}
	}
	int npos = p.npos;
	cli_opts_done(&p);
	if (npos > 0)
		return cli_args_error(ctx, usage, desc, "accepts no arguments");

	_cleanup_free_ char *fq = cli_filters_query(filters);
	_cleanup_free_ char *path = NULL;
	if (!fq || asprintf(&path, "/containers/json%s%s%s%s", all || *fq ? "?" : "",
			    all ? "all=1" : "", all && *fq ? "&" : "", fq) < 0)
		return cli_oom();
	_cleanup_json_ json_t *list = cli_list_get(ctx, path, "container");
	if (!list)
		return 1;
	struct cli_table *t = cli_table_new(7);
	if (!t)
		return cli_oom();
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
			status = cli_oom();
			break;
		}
		if (quiet) {
			printf("%s\n", json_string_value(json_object_get(row, "ID")));
		} else if (format) {
			status = cli_template_println(format, row);
			if (status)
				break;
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
	CLI_LOGS_OPTS,
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
		default:
			return cli_opts_fail(ctx, &p, id, usage, desc);
		}
	}
	if (p.npos != 1)
		return cli_opts_args_fail(ctx, &p, usage, desc, "requires exactly 1 argument");
	const char *name = p.pos[0];
	cli_opts_done(&p);

	struct shoal_err err = {0};
	_cleanup_json_ json_t *info = cli_object_get(ctx, "/containers", name, "/json", NULL, &err);
	if (!info) {
		cli_print_err(&err);
		return 1;
	}
	bool tty = json_is_true(json_object_get(json_object_get(info, "Config"), "Tty"));
	_cleanup_free_ char *base = cli_obj_path("/containers", name, "/logs");
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
		return cli_oom();
	return cli_logs_stream(ctx, path, tty);
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
		return cli_oom();
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
			r = cli_env_add(env, p.value);
			break;
		case OPT_ENV_FILE:
			r = cli_env_file_add(envfile, p.value, err_text, sizeof(err_text));
			break;
		case 'u':
			user = p.value;
			break;
		case 'w':
			workdir = p.value;
			break;
		default:
			return cli_opts_fail(ctx, &p, id, usage, desc);
		}
	}
	if (r < 0) {
		cli_opts_done(&p);
		return cli_usage_error(ctx, err_text[0] ? err_text : strerror(-r));
	}
	if (p.npos < 2)
		return cli_opts_args_fail(ctx, &p, usage, desc, "requires at least 2 arguments");
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
		return cli_oom();
	}
	_cleanup_json_ json_t *body =
		json_pack("{s:b,s:b,s:b,s:b,s:o,s:O,s:s,s:s,s:b}", "AttachStdin",
			  !detach && interactive, "AttachStdout", !detach, "AttachStderr", !detach,
			  "Tty", tty, "Cmd", cmd, "Env", envfile, "User", user ? user : "",
			  "WorkingDir", workdir ? workdir : "", "Privileged", privileged);
	_cleanup_free_ char *cpath = cli_obj_path("/containers", container, "/exec");
	if (!body || !cpath)
		return cli_oom();
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
	_cleanup_free_ char *spath = cli_obj_path("/exec", exec_id, "/start");
	_cleanup_free_ char *rpath = cli_obj_path("/exec", exec_id, "/resize");
	_cleanup_free_ char *ipath = cli_obj_path("/exec", exec_id, "/json");
	_cleanup_json_ json_t *sbody = json_pack("{s:b,s:b}", "Detach", detach, "Tty", tty);
	if (!spath || !rpath || !ipath || !sbody)
		return cli_oom();
	if (detach) {
		if (cli_call_json(ctx, "POST", spath, sbody, NULL, NULL, &err) < 0) {
			cli_print_err(&err);
			return 1;
		}
		return 0;
	}
	if (cli_signals_install(false, tty) < 0)
		return cli_oom();
	_cleanup_http_ struct cli_http *stream = NULL;
	struct cli_http_resp resp;
	struct cli_call call = {
		.method = "POST", .path = spath, .body = sbody, .body_fd = -1, .upgrade = true};
	if (cli_request(ctx, &call, &stream, &resp, &err) < 0) {
		cli_signals_restore();
		cli_print_err(&err);
		int st = cli_start_failure_status(err.msg);
		return st == CLI_EXIT_USAGE ? 126 : st;
	}
	int pr = cli_attach_pump(ctx, stream, &resp, tty, interactive, false, NULL, rpath, &err);
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
		else
			return cli_opts_fail(ctx, &p, id, usage, desc);
	}
	if (p.npos < 1)
		return cli_opts_args_fail(ctx, &p, usage, desc, "requires at least 1 argument");
	struct shoal_err err = {0};
	int status = 0;
	if (attach || interactive) {
		if (p.npos > 1) {
			cli_opts_done(&p);
			fprintf(stderr,
				"you cannot start and attach multiple containers at once\n");
			return 1;
		}
		_cleanup_json_ json_t *info =
			cli_object_get(ctx, "/containers", p.pos[0], "/json", NULL, &err);
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
		status = cli_attach_start(ctx, cid, tty, interactive && open_stdin, !tty, true);
		return status == CLI_EXIT_USAGE ? 1 : status;
	}
	status = cli_each_request(ctx, &p, "/containers", "POST", "/start", false);
	cli_opts_done(&p);
	return status;
}

static const struct cli_opt stop_opts[] = {
	{'t', "time", 't', CLI_OPT_VALUE, "int", "Seconds to wait before killing the container"},
	{'s', "signal", 's', CLI_OPT_VALUE, "string", "Signal to send to the container"},
	{0},
};

/* stop and restart: the same flags, another verb */
static int stop_or_restart(struct cli_ctx *ctx, int argc, char **argv, const char *verb,
			   const char *desc)
{
	static const char usage[] = "[OPTIONS] CONTAINER [CONTAINER...]";
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
		} else {
			return cli_opts_fail(ctx, &p, id, usage, desc);
		}
	}
	if (p.npos < 1)
		return cli_opts_args_fail(ctx, &p, usage, desc, "requires at least 1 argument");
	_cleanup_free_ char *suffix = NULL;
	if (asprintf(&suffix, "/%s%s%s%s%s", verb, time_q || sig_q ? "?" : "", time_q ? time_q : "",
		     time_q && sig_q ? "&" : "", sig_q ? sig_q : "") < 0) {
		cli_opts_done(&p);
		return cli_oom();
	}
	int r = cli_each_request(ctx, &p, "/containers", "POST", suffix, false);
	cli_opts_done(&p);
	return r;
}

int cli_cmd_stop(struct cli_ctx *ctx, int argc, char **argv)
{
	return stop_or_restart(ctx, argc, argv, "stop", "Stop one or more running containers");
}

int cli_cmd_restart(struct cli_ctx *ctx, int argc, char **argv)
{
	return stop_or_restart(ctx, argc, argv, "restart", "Restart one or more containers");
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
		} else {
			return cli_opts_fail(ctx, &p, id, usage, desc);
		}
	}
	if (p.npos < 1)
		return cli_opts_args_fail(ctx, &p, usage, desc, "requires at least 1 argument");
	_cleanup_free_ char *esig = cli_escape(sig), *suffix = NULL;
	if (!esig || asprintf(&suffix, "/kill?signal=%s", esig) < 0) {
		cli_opts_done(&p);
		return cli_oom();
	}
	int r = cli_each_request(ctx, &p, "/containers", "POST", suffix, false);
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
		} else {
			return cli_opts_fail(ctx, &p, id, usage, desc);
		}
	}
	if (p.npos < 1)
		return cli_opts_args_fail(ctx, &p, usage, desc, "requires at least 1 argument");
	const char *suffix = force && volumes ? "?force=1&v=1"
			     : force	      ? "?force=1"
			     : volumes	      ? "?v=1"
					      : "";
	int r = cli_each_request(ctx, &p, "/containers", "DELETE", suffix, false);
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
	if ((id = cli_opts_next(&p)) != 0)
		return cli_opts_fail(ctx, &p, id, usage, desc);
	if (p.npos < 1)
		return cli_opts_args_fail(ctx, &p, usage, desc, "requires at least 1 argument");
	int r = cli_each_request(ctx, &p, "/containers", "POST", "/wait", true);
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
		} else {
			if (id == OPT_TYPE)
				snprintf(p.error, sizeof(p.error), "unknown flag: --type");
			return cli_opts_fail(ctx, &p, id, usage, desc);
		}
	}
	if (p.npos < 1)
		return cli_opts_args_fail(ctx, &p, usage, desc, "requires at least 1 argument");
	_cleanup_json_ json_t *all = json_array();
	if (!all) {
		cli_opts_done(&p);
		return cli_oom();
	}
	int status = 0;
	for (int i = 0; i < p.npos; i++) {
		const char *name = p.pos[i];
		struct shoal_err err = {0};
		json_t *obj = NULL;
		bool tried_container = false;
		if (!type || strcmp(type, "container") == 0) {
			_cleanup_free_ char *path =
				cli_obj_path("/containers", name, size ? "/json?size=1" : "/json");
			tried_container = true;
			if (path)
				cli_call_json(ctx, "GET", path, NULL, NULL, &obj, &err);
		}
		if (!obj && (!type || strcmp(type, "image") == 0) &&
		    (!tried_container || err.status == 404)) {
			_cleanup_free_ char *path = cli_obj_path("/images", name, "/json");
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
	int r = cli_inspect_print(all, format, NULL);
	return r ? r : status;
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
