// SPDX-License-Identifier: Apache-2.0
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli-internal.h"
#include "cli/cli.h"
#include "lib/cleanup.h"

/* `shoal lb ls`: every published port, its backends and counters, and the
 * data plane's drops by reason. */
static int lb_ls(struct cli_ctx *ctx, int argc, char **argv)
{
	static const char usage[] = "ls", desc[] = "List published ports with their backends";
	static const struct cli_opt opts[] = {{0}};
	struct cli_opts p;
	cli_opts_init(&p, opts, argc, argv, false);
	int id;
	while ((id = cli_opts_next(&p)) != 0)
		return cli_opts_fail(ctx, &p, id, usage, desc);
	cli_opts_done(&p);
	struct shoal_err e = {0};
	_cleanup_json_ json_t *lb = NULL;
	int status = 0;
	if (cli_call_json(ctx, "GET", "/lb", NULL, &status, &lb, &e) < 0) {
		cli_print_err(&e);
		return 1;
	}
	if (!json_is_true(json_object_get(lb, "Available")))
		printf("(the eBPF data plane is not available on this node)\n");
	printf("%-12s %-22s %-21s %-11s %10s %10s %12s\n", "PORT", "OWNER", "BACKEND", "STATE",
	       "NEW FLOWS", "PACKETS", "BYTES");
	size_t i;
	json_t *port;
	json_array_foreach(json_object_get(lb, "Ports"), i, port)
	{
		char pp[24];
		snprintf(pp, sizeof(pp), "%" JSON_INTEGER_FORMAT "/%s",
			 json_integer_value(json_object_get(port, "PublishedPort")),
			 json_string_value(json_object_get(port, "Protocol")) ?: "tcp");
		printf("%-12s %-22.22s %-21s %-11s %10" JSON_INTEGER_FORMAT
		       " %10" JSON_INTEGER_FORMAT " %12" JSON_INTEGER_FORMAT "\n",
		       pp, json_string_value(json_object_get(port, "Owner")) ?: "", "(all)", "",
		       json_integer_value(json_object_get(port, "NewFlows")),
		       json_integer_value(json_object_get(port, "Packets")),
		       json_integer_value(json_object_get(port, "Bytes")));
		size_t k;
		json_t *b;
		json_array_foreach(json_object_get(port, "Backends"), k, b)
		{
			char be[40];
			snprintf(be, sizeof(be), "%s:%" JSON_INTEGER_FORMAT,
				 json_string_value(json_object_get(b, "Addr")) ?: "",
				 json_integer_value(json_object_get(b, "Port")));
			printf("%-12s %-22s %-21s %-11s %10" JSON_INTEGER_FORMAT
			       " %10" JSON_INTEGER_FORMAT " %12" JSON_INTEGER_FORMAT "\n",
			       "", "", be, json_string_value(json_object_get(b, "State")) ?: "",
			       json_integer_value(json_object_get(b, "NewFlows")),
			       json_integer_value(json_object_get(b, "Packets")),
			       json_integer_value(json_object_get(b, "Bytes")));
		}
		/* tasks on other nodes of a service on the node's bridge: not
		 * reachable from here (a service on an overlay network has them
		 * among its backends, through the routing mesh) */
		json_array_foreach(json_object_get(port, "RemoteBackends"), k, b)
		{
			char be[40];
			snprintf(be, sizeof(be), "task %.12s",
				 json_string_value(json_object_get(b, "Task")) ?: "");
			char st[40];
			snprintf(st, sizeof(st), "remote (node %.12s, not used)",
				 json_string_value(json_object_get(b, "Node")) ?: "");
			printf("%-12s %-22s %-21s %s\n", "", "", be, st);
		}
	}
	json_t *drops = json_object_get(lb, "Drops");
	const char *reason;
	json_t *n;
	bool any = false;
	json_object_foreach(drops, reason, n)
	{
		if (json_integer_value(n) == 0)
			continue;
		if (!any)
			printf("\nDROPS\n");
		any = true;
		printf("  %-22s %" JSON_INTEGER_FORMAT "\n", reason, json_integer_value(n));
	}
	return 0;
}

static const struct cli_command lb_commands[] = {
	{"ls", lb_ls, "List published ports with their backends and counters"},
	{"list", lb_ls, NULL},
	{NULL, NULL, NULL},
};

int cli_cmd_lb(struct cli_ctx *ctx, int argc, char **argv)
{
	return cli_dispatch(ctx, "lb", lb_commands, argc, argv);
}
