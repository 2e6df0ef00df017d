// SPDX-License-Identifier: Apache-2.0
/* shoal secret|config create|ls|inspect|rm, as docker's. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli-internal.h"
#include "cli/cli.h"
#include "cli/format.h"
#include "lib/cleanup.h"

enum { SOPT_LABEL = 3500 };

/* The daemon refuses 500 KB and more; a file past it is not read whole. */
#define SECRET_READ_MAX (500 * 1024)

struct kind {
	const char *noun;   /* "secret" */
	const char *prefix; /* "/secrets" */
	const char *cmd;    /* "shoal secret" */
};

static const struct kind SECRET = {"secret", "/secrets", "shoal secret"};
static const struct kind CONFIG = {"config", "/configs", "shoal config"};

/* "SECRET" or "CONFIG" */
static const char *upper(const struct kind *k)
{
	return k->noun[0] == 's' ? "SECRET" : "CONFIG";
}

static char *b64(const unsigned char *d, size_t n)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char *out = malloc(4 * ((n + 2) / 3) + 1), *o = out;
	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)d[i] << 16 | (i + 1 < n ? (unsigned)d[i + 1] << 8 : 0) |
			     (i + 2 < n ? d[i + 2] : 0);
		*o++ = tab[v >> 18 & 63];
		*o++ = tab[v >> 12 & 63];
		*o++ = i + 1 < n ? tab[v >> 6 & 63] : '=';
		*o++ = i + 2 < n ? tab[v & 63] : '=';
	}
	*o = '\0';
	return out;
}

/* FILE or "-" (stdin), at most SECRET_READ_MAX + 1 bytes (one more says the
 * data is past the limit). */
static int read_data(const char *path, unsigned char **ret, size_t *ret_len)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	if (!f)
		return -errno;
	unsigned char *buf = malloc(SECRET_READ_MAX + 1);
	if (!buf) {
		if (f != stdin)
			fclose(f);
		return -ENOMEM;
	}
	size_t n = fread(buf, 1, SECRET_READ_MAX + 1, f);
	int e = ferror(f) ? EIO : 0;
	if (f != stdin)
		fclose(f);
	if (e) {
		free(buf);
		return -e;
	}
	*ret = buf;
	*ret_len = n;
	return 0;
}

static int create(struct cli_ctx *ctx, const struct kind *k, int argc, char **argv)
{
	char usage[64], desc[96];
	snprintf(usage, sizeof(usage), "[OPTIONS] %s file|-", upper(k));
	snprintf(desc, sizeof(desc), "Create a %s from a file or STDIN as content", k->noun);
	static const struct cli_opt opts[] = {
		{'l', "label", 'l', CLI_OPT_VALUE, "list", "Labels"},
		{0},
	};
	_cleanup_json_ json_t *body = json_object(), *labels = json_object();
	if (!body || !labels)
		return cli_oom();
	struct cli_opts p;
	int id;
	cli_opts_init(&p, opts, argc, argv, false);
	while ((id = cli_opts_next(&p)) != 0) {
		if (id != 'l')
			return cli_opts_fail(ctx, &p, id, usage, desc);
		if (cli_json_label_set(labels, p.value) < 0)
			return cli_oom();
	}
	if (p.npos != 2)
		return cli_opts_args_fail(ctx, &p, usage, desc, "exactly 2 arguments");
	_cleanup_free_ unsigned char *data = NULL;
	size_t len = 0;
	int r = read_data(p.pos[1], &data, &len);
	if (r < 0) {
		fprintf(stderr, "Error: reading %s: %s\n", p.pos[1], strerror(-r));
		cli_opts_done(&p);
		return 1;
	}
	if (len > SECRET_READ_MAX) {
		/* read no further: the size is past the limit, whatever it is */
		explicit_bzero(data, len);
		fprintf(stderr,
			"Error: %s: more than %d bytes; %s data must be larger than 0 and "
			"less than %d bytes (500 KB)\n",
			p.pos[1], SECRET_READ_MAX, k->noun, SECRET_READ_MAX);
		cli_opts_done(&p);
		return 1;
	}
	_cleanup_free_ char *enc = b64(data, len);
	explicit_bzero(data, len);
	if (!enc)
		return cli_oom();
	json_object_set_new(body, "Name", json_string(p.pos[0]));
	json_object_set(body, "Labels", labels);
	json_object_set_new(body, "Data", json_string(enc));
	explicit_bzero(enc, strlen(enc));
	cli_opts_done(&p);
	char path[64];
	snprintf(path, sizeof(path), "%s/create", k->prefix);
	struct shoal_err e = {0};
	_cleanup_json_ json_t *resp = NULL;
	r = cli_call_json(ctx, "POST", path, body, NULL, &resp, &e);
	/* the body held the data: wiped before it goes */
	json_t *dj = json_object_get(body, "Data");
	if (dj)
		explicit_bzero((char *)json_string_value(dj), json_string_length(dj));
	if (r < 0) {
		cli_print_err(&e);
		return 1;
	}
	printf("%s\n", cli_json_str(resp, "ID") ?: "");
	return 0;
}

static void ago(const char *ts, char *buf, size_t size)
{
	int64_t t = cli_time_parse(ts);
	char d[64];
	cli_human_duration(t ? (int64_t)time(NULL) - t : 0, d, sizeof(d));
	snprintf(buf, size, "%s ago", d);
}

static void secret_row(json_t *v, const struct cli_ls *ls, struct cli_ls_row *ret)
{
	(void)ls;
	ret->id = ret->cells[0] = cli_json_str(v, "ID") ?: "";
	ret->cells[1] = cli_json_str(v, "Spec.Name") ?: "";
	ago(cli_json_str(v, "CreatedAt"), ret->buf[0], sizeof(ret->buf[0]));
	ago(cli_json_str(v, "UpdatedAt"), ret->buf[1], sizeof(ret->buf[1]));
	ret->cells[2] = ret->buf[0];
	ret->cells[3] = ret->buf[1];
}

static int ls(struct cli_ctx *ctx, const struct kind *k, int argc, char **argv)
{
	char desc[32];
	snprintf(desc, sizeof(desc), "List %ss", k->noun);
	static const struct cli_opt opts[] = {
		{'q', "quiet", 'q', CLI_OPT_BOOL, NULL, "Only display IDs"},
		{'f', "filter", 'f', CLI_OPT_VALUE, "filter",
		 "Filter output based on conditions provided"},
		{OPT_FORMAT, "format", 0, CLI_OPT_VALUE, "string",
		 "Format output using a template"},
		{0},
	};
	struct cli_ls l;
	int r = cli_ls_parse_ext(ctx, argc, argv, opts, "[OPTIONS]", desc, &l);
	if (r)
		return r == CLI_OPT_HELP ? 0 : r;
	_cleanup_json_ json_t *resp = cli_ls_get(ctx, k->prefix, &l, NULL);
	static const char *const head[] = {"ID", "NAME", "CREATED", "UPDATED"};
	int status = resp ? cli_ls_print(&l, resp, head, 4, secret_row) : 1;
	cli_ls_done(&l);
	return status;
}

static int rm(struct cli_ctx *ctx, const struct kind *k, int argc, char **argv)
{
	char usage[64], desc[64];
	snprintf(usage, sizeof(usage), "%s [%s...]", upper(k), upper(k));
	snprintf(desc, sizeof(desc), "Remove one or more %ss", k->noun);
	return cli_rm_cmd(ctx, argc, argv, usage, desc, k->prefix);
}

static int inspect(struct cli_ctx *ctx, const struct kind *k, int argc, char **argv)
{
	char usage[64], desc[80];
	snprintf(usage, sizeof(usage), "[OPTIONS] %s [%s...]", upper(k), upper(k));
	snprintf(desc, sizeof(desc), "Display detailed information on one or more %ss", k->noun);
	return cli_inspect_cmd(ctx, argc, argv, usage, desc, k->prefix);
}

#define KIND_CMDS(pfx, K)                                                    \
	static int pfx##_create(struct cli_ctx *ctx, int argc, char **argv)  \
	{                                                                    \
		return create(ctx, &K, argc, argv);                          \
	}                                                                    \
	static int pfx##_ls(struct cli_ctx *ctx, int argc, char **argv)      \
	{                                                                    \
		return ls(ctx, &K, argc, argv);                              \
	}                                                                    \
	static int pfx##_rm(struct cli_ctx *ctx, int argc, char **argv)      \
	{                                                                    \
		return rm(ctx, &K, argc, argv);                              \
	}                                                                    \
	static int pfx##_inspect(struct cli_ctx *ctx, int argc, char **argv) \
	{                                                                    \
		return inspect(ctx, &K, argc, argv);                         \
	}

KIND_CMDS(secret, SECRET)
KIND_CMDS(config, CONFIG)

static const struct cli_command secret_commands[] = {
	{"create", secret_create, "Create a secret from a file or STDIN as content"},
	{"ls", secret_ls, "List secrets"},
	{"list", secret_ls, NULL},
	{"inspect", secret_inspect, "Display detailed information on one or more secrets"},
	{"rm", secret_rm, "Remove one or more secrets"},
	{"remove", secret_rm, NULL},
	{NULL, NULL, NULL},
};

static const struct cli_command config_commands[] = {
	{"create", config_create, "Create a config from a file or STDIN"},
	{"ls", config_ls, "List configs"},
	{"list", config_ls, NULL},
	{"inspect", config_inspect, "Display detailed information on one or more configs"},
	{"rm", config_rm, "Remove one or more configs"},
	{"remove", config_rm, NULL},
	{NULL, NULL, NULL},
};

int cli_cmd_secret(struct cli_ctx *ctx, int argc, char **argv)
{
	return cli_dispatch(ctx, SECRET.cmd, secret_commands, argc, argv);
}

int cli_cmd_config(struct cli_ctx *ctx, int argc, char **argv)
{
	return cli_dispatch(ctx, CONFIG.cmd, config_commands, argc, argv);
}
