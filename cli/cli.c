// SPDX-License-Identifier: Apache-2.0
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "lib/log.h"

const struct cli_command cli_commands[] = {
	{"run", cli_cmd_run, "Create and run a new container from an image"},
	{"create", cli_cmd_create, "Create a new container"},
	{"exec", cli_cmd_exec, "Execute a command in a running container"},
	{"ps", cli_cmd_ps, "List containers"},
	{"logs", cli_cmd_logs, "Fetch the logs of a container"},
	{"start", cli_cmd_start, "Start one or more stopped containers"},
	{"stop", cli_cmd_stop, "Stop one or more running containers"},
	{"restart", cli_cmd_restart, "Restart one or more containers"},
	{"kill", cli_cmd_kill, "Kill one or more running containers"},
	{"rm", cli_cmd_rm, "Remove one or more containers"},
	{"update", cli_cmd_update, "Update configuration of one or more containers"},
	{"wait", cli_cmd_wait,
	 "Block until one or more containers stop, then print their exit codes"},
	{"inspect", cli_cmd_inspect, "Return low-level information on containers or images"},
	{"images", cli_cmd_image_ls, "List images"},
	{"load", cli_cmd_image_load, "Load an image from a tar archive or STDIN"},
	{"pull", cli_cmd_image_pull, "Download an image from a registry"},
	{"import", cli_cmd_image_import,
	 "Import the contents from a tarball to create a filesystem image"},
	{"rmi", cli_cmd_image_rm, "Remove one or more images"},
	{"container", cli_cmd_container, "Manage containers"},
	{"image", cli_cmd_image, "Manage images"},
	{"service", cli_cmd_service, "Manage swarm services"},
	{"node", cli_cmd_node, "Manage swarm nodes"},
	{"lb", cli_cmd_lb, "Show published ports, their backends and counters"},
	{"policy", cli_cmd_policy, "Manage network policies"},
	{"volume", cli_cmd_volume, "Manage volumes"},
	{"secret", cli_cmd_secret, "Manage swarm secrets"},
	{"config", cli_cmd_config, "Manage swarm configs"},
	{"network", cli_cmd_network, "Manage networks"},
	{"version", cli_cmd_version, "Show the shoal version information"},
	{"info", cli_cmd_info, "Display system-wide information"},
	{"bench", cli_cmd_bench, "Run benchmarks, compared side by side in one run"},
	{NULL, NULL, NULL},
};

const struct cli_command cli_image_commands[] = {
	{"load", cli_cmd_image_load, "Load an image from a tar archive or STDIN"},
	{"pull", cli_cmd_image_pull, "Download an image from a registry"},
	{"import", cli_cmd_image_import,
	 "Import the contents from a tarball to create a filesystem image"},
	{"ls", cli_cmd_image_ls, "List images"},
	{"list", cli_cmd_image_ls, NULL},
	{"rm", cli_cmd_image_rm, "Remove one or more images"},
	{"remove", cli_cmd_image_rm, NULL},
	{"inspect", cli_cmd_image_inspect, "Display detailed information on one or more images"},
	{NULL, NULL, NULL},
};

const struct cli_command cli_container_commands[] = {
	{"run", cli_cmd_run, "Create and run a new container from an image"},
	{"create", cli_cmd_create, "Create a new container"},
	{"exec", cli_cmd_exec, "Execute a command in a running container"},
	{"ls", cli_cmd_ps, "List containers"},
	{"list", cli_cmd_ps, NULL},
	{"ps", cli_cmd_ps, NULL},
	{"logs", cli_cmd_logs, "Fetch the logs of a container"},
	{"start", cli_cmd_start, "Start one or more stopped containers"},
	{"stop", cli_cmd_stop, "Stop one or more running containers"},
	{"restart", cli_cmd_restart, "Restart one or more containers"},
	{"kill", cli_cmd_kill, "Kill one or more running containers"},
	{"rm", cli_cmd_rm, "Remove one or more containers"},
	{"remove", cli_cmd_rm, NULL},
	{"update", cli_cmd_update, "Update configuration of one or more containers"},
	{"wait", cli_cmd_wait,
	 "Block until one or more containers stop, then print their exit codes"},
	{"inspect", cli_cmd_container_inspect,
	 "Display detailed information on one or more containers"},
	{NULL, NULL, NULL},
};

static void print_table(const struct cli_command *table, const char *title)
{
	printf("%s:\n", title);
	size_t w = 0;
	for (const struct cli_command *c = table; c->name; c++)
		if (c->help && strlen(c->name) > w)
			w = strlen(c->name);
	for (const struct cli_command *c = table; c->name; c++)
		if (c->help)
			printf("  %-*s  %s\n", (int)w, c->name, c->help);
}

static const struct cli_opt global_opts[] = {
	{'H', "host", 'H', CLI_OPT_VALUE, "string", "Daemon socket to connect to (unix:///path)"},
	{'l', "log-level", 'l', CLI_OPT_VALUE, "string",
	 "Set the logging level (\"debug\"|\"info\"|\"warn\"|\"error\")"},
	{'D', "debug", 'D', CLI_OPT_BOOL, NULL, "Enable debug mode"},
	{'v', "version", 'v', CLI_OPT_BOOL, NULL, "Print version information and quit"},
	{0},
};

static void main_usage(const struct cli_ctx *ctx)
{
	cli_usage(ctx, "[OPTIONS] COMMAND", "A per-node container agent's command line",
		  global_opts);
	printf("\n");
	print_table(cli_commands, "Commands");
	printf("\nRun '%s COMMAND --help' for more information on a command.\n", ctx->cmdpath);
}

int cli_dispatch(struct cli_ctx *ctx, const char *group, const struct cli_command *table, int argc,
		 char **argv)
{
	char saved[sizeof(ctx->cmdpath)];
	memcpy(saved, ctx->cmdpath, sizeof(saved));
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		printf("\nUsage:  %s COMMAND\n\n", ctx->cmdpath);
		print_table(table, "Commands");
		printf("\nRun '%s COMMAND --help' for more information on a command.\n",
		       ctx->cmdpath);
		return 0;
	}
	for (const struct cli_command *c = table; c->name; c++) {
		if (strcmp(c->name, argv[1]) != 0)
			continue;
		snprintf(ctx->cmdpath, sizeof(ctx->cmdpath), "%s %s", saved, c->name);
		int r = c->fn(ctx, argc - 1, argv + 1);
		memcpy(ctx->cmdpath, saved, sizeof(saved));
		return r;
	}
	fprintf(stderr, "%s: '%s' is not a %s command.\nSee '%s --help'\n", saved, argv[1],
		group ? group : "shoal", saved);
	return 1;
}

int cli_main(int argc, char **argv)
{
	struct cli_ctx ctx = {.argv = argv};
	snprintf(ctx.cmdpath, sizeof(ctx.cmdpath), "shoal");
	signal(SIGPIPE, SIG_IGN);

	struct cli_opts p;
	cli_opts_init(&p, global_opts, argc, argv, true);
	const char *host = NULL;
	int id;
	while ((id = cli_opts_next(&p)) != 0) {
		switch (id) {
		case 'H':
			host = p.value;
			break;
		case 'l': {
			enum log_level lvl;
			if (log_level_parse(p.value, &lvl) < 0) {
				fprintf(stderr, "Unable to parse logging level: %s\n", p.value);
				cli_opts_done(&p);
				return 1;
			}
			log_set_level(lvl);
			break;
		}
		case 'D':
			if (cli_opts_bool(&p))
				log_set_level(LOG_LVL_DEBUG);
			break;
		case 'v':
			if (cli_opts_bool(&p)) {
				printf("shoal version %s, API %s\n", SHOAL_VERSION,
				       CLI_API_VERSION);
				cli_opts_done(&p);
				return 0;
			}
			break;
		case CLI_OPT_HELP:
			main_usage(&ctx);
			cli_opts_done(&p);
			return 0;
		default:
			cli_opts_done(&p);
			return cli_usage_error(&ctx, p.error);
		}
	}
	if (!host)
		host = getenv("SHOAL_HOST");
	if (!host || !*host)
		host = CLI_DEFAULT_HOST;
	ctx.host = host;
	if (cli_http_parse_host(host, ctx.sock_path, sizeof(ctx.sock_path)) < 0) {
		fprintf(stderr, "invalid host \"%s\": only unix:///path is supported\n", host);
		cli_opts_done(&p);
		return 1;
	}
	if (p.npos == 0) {
		main_usage(&ctx);
		cli_opts_done(&p);
		return 0;
	}
	/* cli_dispatch wants argv[0] = the group; pos[-1] is the last flag or argv[0]. */
	int sub_argc = p.npos + 1;
	char **sub_argv = calloc((size_t)sub_argc + 1, sizeof(char *));
	if (!sub_argv) {
		cli_opts_done(&p);
		return 1;
	}
	sub_argv[0] = argv[0];
	for (int i = 0; i < p.npos; i++)
		sub_argv[i + 1] = p.pos[i];
	cli_opts_done(&p);
	int r = cli_dispatch(&ctx, NULL, cli_commands, sub_argc, sub_argv);
	free(sub_argv);
	fflush(stdout);
	return r;
}
