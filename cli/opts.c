// SPDX-License-Identifier: Apache-2.0
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

void cli_opts_init(struct cli_opts *p, const struct cli_opt *opts, int argc, char **argv,
		   bool stop_at_positional)
{
	*p = (struct cli_opts){
		.opts = opts,
		.argc = argc,
		.argv = argv,
		.stop_at_positional = stop_at_positional,
		.i = 1,
	};
	p->pos = calloc((size_t)argc + 1, sizeof(char *));
}

void cli_opts_done(struct cli_opts *p)
{
	free(p->pos);
	p->pos = NULL;
	p->npos = 0;
}

bool cli_opts_bool(const struct cli_opts *p)
{
	return p->value && strcmp(p->value, "true") == 0;
}

static const struct cli_opt *find_long(const struct cli_opt *opts, const char *name, size_t n)
{
	for (const struct cli_opt *o = opts; o && o->id; o++)
		if (strlen(o->name) == n && strncmp(o->name, name, n) == 0)
			return o;
	return NULL;
}

static const struct cli_opt *find_short(const struct cli_opt *opts, char c)
{
	for (const struct cli_opt *o = opts; o && o->id; o++)
		if (o->shortname == c)
			return o;
	return NULL;
}

static int parse_bool_value(struct cli_opts *p, const char *name, const char *v)
{
	if (!strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "t") || !strcmp(v, "TRUE") ||
	    !strcmp(v, "True"))
		p->value = "true";
	else if (!strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "f") || !strcmp(v, "FALSE") ||
		 !strcmp(v, "False"))
		p->value = "false";
	else {
		snprintf(
			p->error, sizeof(p->error),
			"invalid argument \"%s\" for \"%s\" flag: strconv.ParseBool: parsing \"%s\": invalid syntax",
			v, name, v);
		return CLI_OPT_ERROR;
	}
	return 0;
}

int cli_opts_next(struct cli_opts *p)
{
	if (!p->pos) {
		snprintf(p->error, sizeof(p->error), "out of memory");
		return CLI_OPT_ERROR;
	}
	if (p->cluster && *p->cluster) {
		char c = *p->cluster++;
		if (c == 'h' && !find_short(p->opts, 'h'))
			return CLI_OPT_HELP;
		const struct cli_opt *o = find_short(p->opts, c);
		if (!o) {
			snprintf(p->error, sizeof(p->error), "unknown shorthand flag: '%c' in %s",
				 c, p->argv[p->i - 1]);
			return CLI_OPT_ERROR;
		}
		if (o->kind == CLI_OPT_BOOL) {
			p->value = "true";
			return o->id;
		}
		if (*p->cluster) {
			p->value = *p->cluster == '=' ? p->cluster + 1 : p->cluster;
			p->cluster = NULL;
			return o->id;
		}
		p->cluster = NULL;
		if (p->i >= p->argc) {
			snprintf(p->error, sizeof(p->error), "flag needs an argument: '%c' in -%c",
				 c, c);
			return CLI_OPT_ERROR;
		}
		p->value = p->argv[p->i++];
		return o->id;
	}
	p->cluster = NULL;
	while (p->i < p->argc) {
		char *a = p->argv[p->i];
		if (strcmp(a, "--") == 0) {
			p->i++;
			while (p->i < p->argc)
				p->pos[p->npos++] = p->argv[p->i++];
			return 0;
		}
		if (a[0] != '-' || a[1] == '\0') {
			if (p->stop_at_positional) {
				while (p->i < p->argc)
					p->pos[p->npos++] = p->argv[p->i++];
				return 0;
			}
			p->pos[p->npos++] = a;
			p->i++;
			continue;
		}
		p->i++;
		if (a[1] == '-') {
			const char *name = a + 2;
			const char *eq = strchr(name, '=');
			size_t n = eq ? (size_t)(eq - name) : strlen(name);
			const struct cli_opt *o = find_long(p->opts, name, n);
			if (!o) {
				if (n == 4 && strncmp(name, "help", 4) == 0)
					return CLI_OPT_HELP;
				snprintf(p->error, sizeof(p->error), "unknown flag: --%.*s", (int)n,
					 name);
				return CLI_OPT_ERROR;
			}
			if (o->kind == CLI_OPT_BOOL) {
				p->value = "true";
				if (eq && parse_bool_value(p, o->name, eq + 1) < 0)
					return CLI_OPT_ERROR;
				return o->id;
			}
			if (eq) {
				p->value = eq + 1;
				return o->id;
			}
			if (p->i >= p->argc) {
				snprintf(p->error, sizeof(p->error), "flag needs an argument: --%s",
					 o->name);
				return CLI_OPT_ERROR;
			}
			p->value = p->argv[p->i++];
			return o->id;
		}
		p->cluster = a + 1;
		return cli_opts_next(p);
	}
	return 0;
}

void cli_usage(const struct cli_ctx *ctx, const char *usage, const char *desc,
	       const struct cli_opt *opts)
{
	printf("\nUsage:  %s %s\n\n%s\n", ctx->cmdpath, usage, desc);
	if (!opts || !opts->id)
		return;
	printf("\nOptions:\n");
	size_t width = 0;
	for (const struct cli_opt *o = opts; o->id; o++) {
		size_t w = strlen(o->name) +
			   (o->kind == CLI_OPT_VALUE && o->argname ? strlen(o->argname) + 1 : 0);
		if (w > width)
			width = w;
	}
	for (const struct cli_opt *o = opts; o->id; o++) {
		char left[128];
		snprintf(left, sizeof(left), "%s%s%s", o->name,
			 o->kind == CLI_OPT_VALUE && o->argname ? " " : "",
			 o->kind == CLI_OPT_VALUE && o->argname ? o->argname : "");
		if (o->shortname)
			printf("  -%c, --%-*s   %s\n", o->shortname, (int)width, left, o->help);
		else
			printf("      --%-*s   %s\n", (int)width, left, o->help);
	}
}

int cli_usage_error(const struct cli_ctx *ctx, const char *msg)
{
	fprintf(stderr, "%s\nSee '%s --help'.\n", msg, ctx->cmdpath);
	return CLI_EXIT_USAGE;
}

int cli_args_error(const struct cli_ctx *ctx, const char *usage, const char *desc,
		   const char *requirement)
{
	fprintf(stderr, "\"%s\" %s.\nSee '%s --help'.\n\nUsage:  %s %s\n\n%s\n", ctx->cmdpath,
		requirement, ctx->cmdpath, ctx->cmdpath, usage, desc);
	return 1;
}
