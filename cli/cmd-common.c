// SPDX-License-Identifier: Apache-2.0
/* What the command files share: JSON paths, ending a flag loop, inspect output, one
 * request per argument, log streams. */
#include <ctype.h>
#include <errno.h>
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

/* Walks a dotted path, step going down one key (a lookup, or one that creates). */
static json_t *json_walk(json_t *o, const char *path, json_t *(*step)(json_t *, const char *))
{
	char key[128];
	while (o && *path) {
		const char *dot = strchr(path, '.');
		size_t n = dot ? (size_t)(dot - path) : strlen(path);
		if (n >= sizeof(key))
			return NULL;
		memcpy(key, path, n);
		key[n] = '\0';
		o = step(o, key);
		path += n + (dot ? 1 : 0);
	}
	return o;
}

static json_t *json_lookup(json_t *o, const char *key)
{
	return json_object_get(o, key);
}

json_t *cli_json_get(json_t *o, const char *path)
{
	o = json_walk(o, path, json_lookup);
	return json_is_null(o) ? NULL : o;
}

const char *cli_json_str(json_t *o, const char *path)
{
	return json_string_value(cli_json_get(o, path));
}

json_int_t cli_json_int(json_t *o, const char *path)
{
	json_t *v = cli_json_get(o, path);
	return json_is_number(v) ? (json_int_t)json_number_value(v) : 0;
}

static json_t *json_child(json_t *o, const char *key, bool array)
{
	json_t *c = json_object_get(o, key);
	if (array ? json_is_array(c) : json_is_object(c))
		return c;
	c = array ? json_array() : json_object();
	if (!c || json_object_set_new(o, key, c) < 0)
		return NULL;
	return c;
}

json_t *cli_json_obj(json_t *o, const char *key)
{
	return json_child(o, key, false);
}

json_t *cli_json_arr(json_t *o, const char *key)
{
	return json_child(o, key, true);
}

json_t *cli_json_obj_path(json_t *o, const char *path)
{
	return json_walk(o, path, cli_json_obj);
}

int cli_json_label_set(json_t *labels, const char *kv)
{
	if (!labels)
		return -ENOMEM;
	const char *eq = strchr(kv, '=');
	_cleanup_free_ char *k = eq ? strndup(kv, (size_t)(eq - kv)) : strdup(kv);
	if (!k)
		return -ENOMEM;
	return json_object_set_new(labels, k, json_string(eq ? eq + 1 : "")) == 0 ? 0 : -ENOMEM;
}

void cli_title(const char *s, char *buf, size_t size)
{
	snprintf(buf, size, "%s", s ? s : "");
	if (buf[0])
		buf[0] = (char)toupper((unsigned char)buf[0]);
}

int64_t cli_time_parse(const char *s)
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

void cli_id_trunc(const char *id, bool trunc, char *buf, size_t size)
{
	snprintf(buf, size, "%.*s", trunc ? 12 : (int)(size - 1), id ? id : "");
}

json_t *cli_object_get(struct cli_ctx *ctx, const char *prefix, const char *ref, const char *suffix,
		       const char *noun, struct shoal_err *err)
{
	_cleanup_free_ char *path = cli_obj_path(prefix, ref, suffix);
	if (!path) {
		shoal_err_set(err, ENOMEM, "Error: out of memory");
		return NULL;
	}
	json_t *j = NULL;
	if (cli_call_json(ctx, "GET", path, NULL, NULL, &j, err) < 0)
		return NULL;
	if (noun && (!json_is_object(j) || !cli_json_str(j, "ID"))) {
		json_decref(j);
		shoal_err_set(err, EIO, "Error: malformed %s from daemon", noun);
		return NULL;
	}
	return j;
}

json_t *cli_list_get(struct cli_ctx *ctx, const char *path, const char *noun)
{
	struct shoal_err err = {0};
	json_t *list = NULL;
	if (cli_call_json(ctx, "GET", path, NULL, NULL, &list, &err) < 0) {
		cli_print_err(&err);
		return NULL;
	}
	if (!json_is_array(list)) {
		json_decref(list);
		fprintf(stderr, "Error: malformed %s list from daemon\n", noun);
		return NULL;
	}
	return list;
}

int cli_filter_add(json_t *filters, const char *v)
{
	const char *eq = strchr(v, '=');
	if (!eq)
		return -EINVAL;
	_cleanup_free_ char *k = strndup(v, (size_t)(eq - v));
	if (!k)
		return -ENOMEM;
	return cli_strv_json_push(filters, k, eq + 1);
}

char *cli_filters_query(json_t *filters)
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

int cli_ls_parse_ext(struct cli_ctx *ctx, int argc, char **argv, const struct cli_opt *opts,
		     const char *usage, const char *desc, struct cli_ls *ret)
{
	*ret = (struct cli_ls){.filters = json_object()};
	struct cli_opts p;
	cli_opts_init(&p, opts, argc, argv, false);
	int id, r = 0;
	while (r == 0 && (id = cli_opts_next(&p)) != 0) {
		if (id == 'q') {
			ret->quiet = cli_opts_bool(&p);
		} else if (id == OPT_NO_TRUNC) {
			ret->no_trunc = cli_opts_bool(&p);
		} else if (id == OPT_FORMAT) {
			free(ret->format);
			if (!(ret->format = strdup(p.value)))
				r = cli_oom();
		} else if (id == 'f') {
			if (cli_filter_add(ret->filters, p.value) < 0)
				r = cli_usage_error(ctx,
						    "bad format of filter (expected name=value)");
		} else {
			r = cli_opts_fail(ctx, &p, id, usage, desc);
			cli_ls_done(ret);
			return id == CLI_OPT_HELP ? CLI_OPT_HELP : r;
		}
	}
	if (r == 0 && p.npos > 0) {
		cli_ls_done(ret);
		return cli_opts_args_fail(ctx, &p, usage, desc, "accepts no arguments");
	}
	cli_opts_done(&p);
	if (r)
		cli_ls_done(ret);
	return r;
}

void cli_ls_done(struct cli_ls *ls)
{
	free(ls->format);
	json_decref(ls->filters);
	*ls = (struct cli_ls){0};
}

int cli_ls_parse(struct cli_ctx *ctx, int argc, char **argv, const struct cli_opt *opts,
		 const char *usage, const char *desc, bool *ret_quiet, char **ret_format)
{
	struct cli_ls ls;
	int r = cli_ls_parse_ext(ctx, argc, argv, opts, usage, desc, &ls);
	if (r)
		return r;
	*ret_quiet = ls.quiet;
	*ret_format = TAKE_PTR(ls.format);
	cli_ls_done(&ls);
	return 0;
}

int cli_inspect_cmd(struct cli_ctx *ctx, int argc, char **argv, const char *usage, const char *desc,
		    const char *prefix)
{
	static const struct cli_opt opts[] = {
		{'f', "format", 'f', CLI_OPT_VALUE, "string", "Format output using a template"},
		{0},
	};
	struct cli_opts p;
	const char *fmt = NULL;
	int id;
	cli_opts_init(&p, opts, argc, argv, false);
	while ((id = cli_opts_next(&p)) != 0) {
		if (id != 'f')
			return cli_opts_fail(ctx, &p, id, usage, desc);
		fmt = p.value;
	}
	if (p.npos < 1)
		return cli_opts_args_fail(ctx, &p, usage, desc, "at least 1 argument");
	int r = cli_inspect_each(ctx, &p, prefix, fmt);
	cli_opts_done(&p);
	return r;
}

int cli_args_only(const struct cli_ctx *ctx, struct cli_opts *p, int argc, char **argv,
		  const char *usage, const char *desc)
{
	static const struct cli_opt opts[] = {{0}};
	int id;
	cli_opts_init(p, opts, argc, argv, false);
	while ((id = cli_opts_next(p)) != 0)
		return cli_opts_fail(ctx, p, id, usage, desc);
	if (p->npos < 1)
		return cli_opts_args_fail(ctx, p, usage, desc, "at least 1 argument");
	return -1;
}

int cli_rm_cmd(struct cli_ctx *ctx, int argc, char **argv, const char *usage, const char *desc,
	       const char *prefix)
{
	struct cli_opts p;
	int r = cli_args_only(ctx, &p, argc, argv, usage, desc);
	if (r >= 0)
		return r;
	int status = cli_each_request(ctx, &p, prefix, "DELETE", "", false);
	cli_opts_done(&p);
	return status;
}

json_t *cli_ls_get(struct cli_ctx *ctx, const char *prefix, const struct cli_ls *ls,
		   const char *noun)
{
	_cleanup_free_ char *fq = cli_filters_query(ls->filters);
	char path[4096];
	snprintf(path, sizeof(path), "%s%s%s", prefix, fq && *fq ? "?" : "", fq ? fq : "");
	if (noun)
		return cli_list_get(ctx, path, noun);
	struct shoal_err e = {0};
	json_t *resp = NULL;
	if (cli_call_json(ctx, "GET", path, NULL, NULL, &resp, &e) < 0) {
		cli_print_err(&e);
		return NULL;
	}
	return resp;
}

int cli_ls_print(const struct cli_ls *ls, json_t *items, const char *const *head, size_t ncols,
		 void (*row)(json_t *v, const struct cli_ls *ls, struct cli_ls_row *ret))
{
	struct cli_table *t = cli_table_new(ncols);
	if (!t)
		return cli_oom();
	cli_table_add(t, head);
	size_t i;
	json_t *v;
	int status = 0;
	json_array_foreach(items, i, v)
	{
		struct cli_ls_row r = {0};
		row(v, ls, &r);
		if (ls->quiet)
			printf("%s\n", r.id ?: "");
		else if (ls->format)
			status = status ?: cli_template_println(ls->format, v);
		else
			cli_table_add(t, r.cells);
	}
	if (!ls->quiet && !ls->format)
		cli_table_print(t, stdout);
	cli_table_free(t);
	return status;
}

int cli_inspect_each(struct cli_ctx *ctx, struct cli_opts *p, const char *prefix,
		     const char *format)
{
	_cleanup_json_ json_t *all = json_array();
	int status = 0;
	for (int i = 0; all && i < p->npos; i++) {
		_cleanup_free_ char *path = cli_obj_path(prefix, p->pos[i], "");
		struct shoal_err e = {0};
		json_t *o = NULL;
		if (!path || cli_call_json(ctx, "GET", path, NULL, NULL, &o, &e) < 0) {
			cli_print_err(&e);
			status = 1;
			continue;
		}
		json_array_append_new(all, o);
	}
	int r = all ? cli_inspect_print(all, format, NULL) : cli_oom();
	return status ?: r;
}

int cli_opts_fail(const struct cli_ctx *ctx, struct cli_opts *p, int id, const char *usage,
		  const char *desc)
{
	int r = 0;
	if (id == CLI_OPT_HELP)
		cli_usage(ctx, usage, desc, p->opts);
	else
		r = cli_usage_error(ctx, p->error);
	cli_opts_done(p);
	return r;
}

int cli_opts_args_fail(const struct cli_ctx *ctx, struct cli_opts *p, const char *usage,
		       const char *desc, const char *requirement)
{
	cli_opts_done(p);
	return cli_args_error(ctx, usage, desc, requirement);
}

int cli_template_println(const char *fmt, json_t *v)
{
	char terr[256] = "out of memory";
	_cleanup_free_ char *out = v ? cli_template_render(fmt, v, terr, sizeof(terr)) : NULL;
	if (!out) {
		fprintf(stderr, "template parsing error: %s\n", terr);
		return 1;
	}
	printf("%s\n", out);
	return 0;
}

int cli_inspect_print(json_t *all, const char *format, void (*pretty)(json_t *obj, size_t index))
{
	size_t i;
	json_t *o;
	if (pretty) {
		json_array_foreach(all, i, o) pretty(o, i);
		return 0;
	}
	if (format) {
		json_array_foreach(all, i, o)
		{
			if (cli_template_println(format, o))
				return 1;
		}
		return 0;
	}
	_cleanup_free_ char *out = json_dumps(all, JSON_INDENT(4) | JSON_PRESERVE_ORDER);
	if (!out)
		return cli_oom();
	printf("%s\n", out);
	return 0;
}

static const struct cli_opt swarm_inspect_opts[] = {
	{'f', "format", 'f', CLI_OPT_VALUE, "string", "Format output using a template"},
	{OPT_PRETTY, "pretty", 0, CLI_OPT_BOOL, NULL,
	 "Print the information in a human friendly format"},
	{0},
};

int cli_inspect_swarm(struct cli_ctx *ctx, int argc, char **argv,
		      const struct cli_inspect_kind *kind)
{
	_cleanup_free_ char *fmt = NULL;
	bool pretty = false;
	struct cli_opts p;
	cli_opts_init(&p, swarm_inspect_opts, argc, argv, false);
	int id;
	while ((id = cli_opts_next(&p)) != 0) {
		if (id == 'f') {
			free(fmt);
			fmt = strdup(p.value);
			if (!fmt) {
				cli_opts_done(&p);
				return cli_oom();
			}
		} else if (id == OPT_PRETTY) {
			pretty = cli_opts_bool(&p);
		} else {
			return cli_opts_fail(ctx, &p, id, kind->usage, kind->desc);
		}
	}
	if (p.npos < 1)
		return cli_opts_args_fail(ctx, &p, kind->usage, kind->desc,
					  "requires at least 1 argument");
	if (pretty && fmt) {
		cli_opts_done(&p);
		return cli_usage_error(ctx, "--format is incompatible with human friendly format");
	}
	_cleanup_json_ json_t *all = json_array();
	int status = 0;
	for (int i = 0; all && i < p.npos; i++) {
		struct shoal_err e = {0};
		json_t *obj = kind->get(ctx, p.pos[i], &e);
		if (!obj) {
			if (e.status == 404)
				fprintf(stderr, "Error: no such %s: %s\n", kind->noun, p.pos[i]);
			else
				cli_print_err(&e);
			status = 1;
			continue;
		}
		json_array_append_new(all, obj);
	}
	cli_opts_done(&p);
	if (!all)
		return cli_oom();
	int r = cli_inspect_print(all, fmt, pretty ? kind->pretty : NULL);
	return r ? r : status;
}

int cli_each_request(struct cli_ctx *ctx, const struct cli_opts *p, const char *prefix,
		     const char *method, const char *suffix, bool print_status)
{
	int status = 0;
	for (int i = 0; i < p->npos; i++) {
		struct shoal_err err = {0};
		_cleanup_free_ char *path = cli_obj_path(prefix, p->pos[i], suffix);
		if (!path)
			return cli_oom();
		_cleanup_json_ json_t *resp = NULL;
		if (cli_call_json(ctx, method, path, NULL, NULL, &resp, &err) < 0) {
			cli_print_err(&err);
			status = 1;
			continue;
		}
		if (print_status) {
			json_t *code = json_object_get(resp, "StatusCode");
			const char *emsg = cli_json_str(resp, "Error.Message");
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

static int log_write_cb(void *userdata, int stream, const void *data, size_t len)
{
	int r = write_all(stream == CLI_STREAM_STDERR ? STDERR_FILENO : STDOUT_FILENO, data, len);
	return r == -EPIPE ? r : 0;
}

int cli_logs_stream(struct cli_ctx *ctx, const char *path, bool tty)
{
	struct shoal_err err = {0};
	_cleanup_http_ struct cli_http *c = NULL;
	struct cli_http_resp resp;
	struct cli_call call = {.method = "GET", .path = path, .body_fd = -1};
	if (cli_request(ctx, &call, &c, &resp, &err) < 0) {
		cli_print_err(&err);
		return 1;
	}
	bool mux = cli_stream_multiplexed(&resp, tty);
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
