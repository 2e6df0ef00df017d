// SPDX-License-Identifier: Apache-2.0
/* shoal volume create|ls|inspect|rm|prune, as docker's. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli-internal.h"
#include "cli/cli.h"
#include "cli/format.h"
#include "lib/cleanup.h"

enum { VOPT_LABEL = 3300, VOPT_DRIVER, VOPT_OPT, VOPT_FILTER, VOPT_ALL, VOPT_FORCE };

static int volume_create(struct cli_ctx *ctx, int argc, char **argv)
{
	static const char usage[] = "[OPTIONS] [VOLUME]", desc[] = "Create a volume";
	static const struct cli_opt opts[] = {
		{'d', "driver", 'd', CLI_OPT_VALUE, "string", "Volume driver name (local)"},
		{VOPT_LABEL, "label", 0, CLI_OPT_VALUE, "list", "Set metadata for a volume"},
		{'o', "opt", 'o', CLI_OPT_VALUE, "map", "Set driver specific options"},
		{VOPT_FILTER, "name", 0, CLI_OPT_VALUE, "string", "Specify volume name"},
		{0},
	};
	_cleanup_json_ json_t *body = json_object(), *labels = json_object(),
			      *dopts = json_object();
	if (!body || !labels || !dopts)
		return cli_oom();
	struct cli_opts p;
	const char *name = NULL;
	int id;
	cli_opts_init(&p, opts, argc, argv, false);
	while ((id = cli_opts_next(&p)) != 0) {
		const char *v = p.value, *eq = v ? strchr(v, '=') : NULL;
		switch (id) {
		case 'd':
			json_object_set_new(body, "Driver", json_string(v));
			break;
		case VOPT_LABEL:
		case 'o': {
			_cleanup_free_ char *k = strndup(v, eq ? (size_t)(eq - v) : strlen(v));
			if (!k)
				return cli_oom();
			json_object_set_new(id == 'o' ? dopts : labels, k,
					    json_string(eq ? eq + 1 : ""));
			break;
		}
		case VOPT_FILTER:
			name = v;
			break;
		default:
			return cli_opts_fail(ctx, &p, id, usage, desc);
		}
	}
	if (p.npos > 1 || (p.npos == 1 && name && strcmp(name, p.pos[0]) != 0))
		return cli_opts_args_fail(ctx, &p, usage, desc, "at most 1 argument");
	if (p.npos == 1)
		name = p.pos[0];
	if (name)
		json_object_set_new(body, "Name", json_string(name));
	json_object_set(body, "Labels", labels);
	json_object_set(body, "DriverOpts", dopts);
	struct shoal_err e = {0};
	_cleanup_json_ json_t *resp = NULL;
	int r = cli_call_json(ctx, "POST", "/volumes/create", body, NULL, &resp, &e);
	cli_opts_done(&p);
	if (r < 0) {
		cli_print_err(&e);
		return 1;
	}
	printf("%s\n", cli_json_str(resp, "Name") ?: "");
	return 0;
}

static void volume_row(json_t *v, const struct cli_ls *ls, struct cli_ls_row *ret)
{
	(void)ls;
	ret->id = ret->cells[1] = cli_json_str(v, "Name") ?: "";
	ret->cells[0] = cli_json_str(v, "Driver") ?: "";
}

static int volume_ls(struct cli_ctx *ctx, int argc, char **argv)
{
	static const char usage[] = "[OPTIONS]", desc[] = "List volumes";
	static const struct cli_opt opts[] = {
		{'q', "quiet", 'q', CLI_OPT_BOOL, NULL, "Only display volume names"},
		{'f', "filter", 'f', CLI_OPT_VALUE, "filter",
		 "Provide filter values (e.g. \"dangling=true\")"},
		{OPT_FORMAT, "format", 0, CLI_OPT_VALUE, "string",
		 "Format output using a template"},
		{0},
	};
	struct cli_ls ls;
	int r = cli_ls_parse_ext(ctx, argc, argv, opts, usage, desc, &ls);
	if (r)
		return r == CLI_OPT_HELP ? 0 : r;
	_cleanup_json_ json_t *resp = cli_ls_get(ctx, "/volumes", &ls, NULL);
	static const char *const head[] = {"DRIVER", "VOLUME NAME"};
	int status =
		resp ? cli_ls_print(&ls, json_object_get(resp, "Volumes"), head, 2, volume_row) : 1;
	cli_ls_done(&ls);
	return status;
}

static int volume_inspect(struct cli_ctx *ctx, int argc, char **argv)
{
	return cli_inspect_cmd(ctx, argc, argv, "VOLUME [VOLUME...]",
			       "Display detailed information on one or more volumes", "/volumes");
}

static int volume_rm(struct cli_ctx *ctx, int argc, char **argv)
{
	static const char usage[] = "[OPTIONS] VOLUME [VOLUME...]",
			  desc[] = "Remove one or more volumes";
	static const struct cli_opt opts[] = {
		{'f', "force", 'f', CLI_OPT_BOOL, NULL, "Force the removal of one or more volumes"},
		{0},
	};
	struct cli_opts p;
	bool force = false;
	int id;
	cli_opts_init(&p, opts, argc, argv, false);
	while ((id = cli_opts_next(&p)) != 0) {
		if (id != 'f')
			return cli_opts_fail(ctx, &p, id, usage, desc);
		force = cli_opts_bool(&p);
	}
	if (p.npos < 1)
		return cli_opts_args_fail(ctx, &p, usage, desc, "at least 1 argument");
	int status =
		cli_each_request(ctx, &p, "/volumes", "DELETE", force ? "?force=1" : "", false);
	cli_opts_done(&p);
	return status;
}

static int volume_prune(struct cli_ctx *ctx, int argc, char **argv)
{
	static const char usage[] = "[OPTIONS]", desc[] = "Remove unused local volumes";
	static const struct cli_opt opts[] = {
		{'a', "all", 'a', CLI_OPT_BOOL, NULL,
		 "Remove all unused volumes, not just anonymous ones"},
		{'f', "force", 'f', CLI_OPT_BOOL, NULL, "Do not prompt for confirmation"},
		{0},
	};
	struct cli_opts p;
	bool all = false, force = false;
	int id;
	cli_opts_init(&p, opts, argc, argv, false);
	while ((id = cli_opts_next(&p)) != 0) {
		if (id == 'a')
			all = cli_opts_bool(&p);
		else if (id == 'f')
			force = cli_opts_bool(&p);
		else
			return cli_opts_fail(ctx, &p, id, usage, desc);
	}
	if (p.npos)
		return cli_opts_args_fail(ctx, &p, usage, desc, "no arguments");
	cli_opts_done(&p);
	if (!force) {
		/* no prompt to answer: say what -f does rather than wait */
		fprintf(stderr,
			"WARNING! This will remove %s volumes not used by at least one "
			"container. Run again with -f to do it.\n",
			all ? "all local" : "anonymous local");
		return 1;
	}
	struct shoal_err e = {0};
	_cleanup_json_ json_t *resp = NULL;
	const char *path = all ? "/volumes/prune?filters=%7B%22all%22%3A%5B%22true%22%5D%7D"
			       : "/volumes/prune";
	if (cli_call_json(ctx, "POST", path, NULL, NULL, &resp, &e) < 0) {
		cli_print_err(&e);
		return 1;
	}
	size_t i;
	json_t *n;
	json_t *deleted = json_object_get(resp, "VolumesDeleted");
	if (json_array_size(deleted))
		printf("Deleted Volumes:\n");
	json_array_foreach(deleted, i, n) printf("%s\n", json_string_value(n));
	char size[32];
	cli_human_size((double)cli_json_int(resp, "SpaceReclaimed"), 3, size, sizeof(size));
	printf("\nTotal reclaimed space: %s\n", size);
	return 0;
}

const struct cli_command cli_volume_commands[] = {
	{"create", volume_create, "Create a volume"},
	{"ls", volume_ls, "List volumes"},
	{"list", volume_ls, NULL},
	{"inspect", volume_inspect, "Display detailed information on one or more volumes"},
	{"rm", volume_rm, "Remove one or more volumes"},
	{"remove", volume_rm, NULL},
	{"prune", volume_prune, "Remove unused local volumes"},
	{NULL, NULL, NULL},
};

int cli_cmd_volume(struct cli_ctx *ctx, int argc, char **argv)
{
	return cli_dispatch(ctx, "shoal volume", cli_volume_commands, argc, argv);
}
