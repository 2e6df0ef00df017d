// SPDX-License-Identifier: Apache-2.0
/* shoal network create|ls|inspect|rm|prune, as docker's. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli-internal.h"
#include "cli/cli.h"
#include "cli/format.h"
#include "lib/cleanup.h"

enum {
	NOPT_SUBNET = 3400,
	NOPT_GATEWAY,
	NOPT_ATTACHABLE,
	NOPT_INTERNAL,
	NOPT_INGRESS,
	NOPT_LABEL,
	NOPT_SCOPE,
	NOPT_IPV6,
};

static int network_create(struct cli_ctx *ctx, int argc, char **argv)
{
	static const char usage[] = "[OPTIONS] NETWORK", desc[] = "Create a network";
	static const struct cli_opt opts[] = {
		{'d', "driver", 'd', CLI_OPT_VALUE, "string",
		 "Driver to manage the Network (overlay)"},
		{NOPT_SUBNET, "subnet", 0, CLI_OPT_VALUE, "strings", "Subnet in CIDR format"},
		{NOPT_GATEWAY, "gateway", 0, CLI_OPT_VALUE, "strings",
		 "Gateway for the subnet (default: its first address)"},
		{NOPT_ATTACHABLE, "attachable", 0, CLI_OPT_BOOL, NULL,
		 "Enable manual container attachment"},
		{NOPT_INTERNAL, "internal", 0, CLI_OPT_BOOL, NULL,
		 "Restrict external access to the network"},
		{NOPT_INGRESS, "ingress", 0, CLI_OPT_BOOL, NULL,
		 "Create swarm routing-mesh network"},
		{'o', "opt", 'o', CLI_OPT_VALUE, "map",
		 "Set driver specific options (vni=N, mtu=N)"},
		{NOPT_LABEL, "label", 0, CLI_OPT_VALUE, "list", "Set metadata on a network"},
		{NOPT_SCOPE, "scope", 0, CLI_OPT_VALUE, "string",
		 "Control the network's scope (swarm)"},
		{NOPT_IPV6, "ipv6", 0, CLI_OPT_BOOL, NULL,
		 "Enable IPv6 networking (not supported)"},
		{0},
	};
	_cleanup_json_ json_t *body = json_object(), *labels = json_object(),
			      *dopts = json_object(), *cfg = json_object();
	if (!body || !labels || !dopts || !cfg)
		return cli_oom();
	struct cli_opts p;
	int id;
	cli_opts_init(&p, opts, argc, argv, false);
	json_object_set_new(body, "Driver", json_string("overlay"));
	while ((id = cli_opts_next(&p)) != 0) {
		const char *v = p.value, *eq = v ? strchr(v, '=') : NULL;
		switch (id) {
		case 'd':
			json_object_set_new(body, "Driver", json_string(v));
			break;
		case NOPT_SUBNET:
			if (json_object_get(cfg, "Subnet")) {
				cli_opts_done(&p);
				return cli_usage_error(ctx, "--subnet: one subnet per network");
			}
			json_object_set_new(cfg, "Subnet", json_string(v));
			break;
		case NOPT_GATEWAY:
			json_object_set_new(cfg, "Gateway", json_string(v));
			break;
		case NOPT_ATTACHABLE:
			json_object_set_new(body, "Attachable", json_boolean(cli_opts_bool(&p)));
			break;
		case NOPT_INTERNAL:
			json_object_set_new(body, "Internal", json_boolean(cli_opts_bool(&p)));
			break;
		case NOPT_INGRESS:
			json_object_set_new(body, "Ingress", json_boolean(cli_opts_bool(&p)));
			break;
		case NOPT_IPV6:
			json_object_set_new(body, "EnableIPv6", json_boolean(cli_opts_bool(&p)));
			break;
		case NOPT_SCOPE:
			json_object_set_new(body, "Scope", json_string(v));
			break;
		case NOPT_LABEL:
		case 'o': {
			_cleanup_free_ char *k = strndup(v, eq ? (size_t)(eq - v) : strlen(v));
			if (!k)
				return cli_oom();
			json_object_set_new(id == 'o' ? dopts : labels, k,
					    json_string(eq ? eq + 1 : ""));
			break;
		}
		default:
			return cli_opts_fail(ctx, &p, id, usage, desc);
		}
	}
	if (p.npos != 1)
		return cli_opts_args_fail(ctx, &p, usage, desc, "exactly 1 argument");
	json_object_set_new(body, "Name", json_string(p.pos[0]));
	json_object_set(body, "Labels", labels);
	json_object_set(body, "Options", dopts);
	json_object_set_new(body, "IPAM",
			    json_pack("{s:s, s:[O]}", "Driver", "default", "Config", cfg));
	if (!json_object_size(cfg))
		json_object_set_new(json_object_get(body, "IPAM"), "Config", json_array());
	cli_opts_done(&p);
	struct shoal_err e = {0};
	_cleanup_json_ json_t *resp = NULL;
	if (cli_call_json(ctx, "POST", "/networks/create", body, NULL, &resp, &e) < 0) {
		cli_print_err(&e);
		return 1;
	}
	printf("%s\n", cli_json_str(resp, "Id") ?: "");
	return 0;
}

static void network_row(json_t *v, const struct cli_ls *ls, struct cli_ls_row *ret)
{
	cli_id_trunc(cli_json_str(v, "Id") ?: "", !ls->no_trunc, ret->buf[0], sizeof(ret->buf[0]));
	ret->id = ret->cells[0] = ret->buf[0];
	ret->cells[1] = cli_json_str(v, "Name") ?: "";
	ret->cells[2] = cli_json_str(v, "Driver") ?: "";
	ret->cells[3] = cli_json_str(v, "Scope") ?: "";
}

static int network_ls(struct cli_ctx *ctx, int argc, char **argv)
{
	static const char usage[] = "[OPTIONS]", desc[] = "List networks";
	static const struct cli_opt opts[] = {
		{'q', "quiet", 'q', CLI_OPT_BOOL, NULL, "Only display network IDs"},
		{'f', "filter", 'f', CLI_OPT_VALUE, "filter",
		 "Provide filter values (e.g. \"driver=overlay\")"},
		{OPT_NO_TRUNC, "no-trunc", 0, CLI_OPT_BOOL, NULL, "Do not truncate the output"},
		{OPT_FORMAT, "format", 0, CLI_OPT_VALUE, "string",
		 "Format output using a template"},
		{0},
	};
	struct cli_ls ls;
	int r = cli_ls_parse_ext(ctx, argc, argv, opts, usage, desc, &ls);
	if (r)
		return r == CLI_OPT_HELP ? 0 : r;
	_cleanup_json_ json_t *nets = cli_ls_get(ctx, "/networks", &ls, "network");
	static const char *const head[] = {"NETWORK ID", "NAME", "DRIVER", "SCOPE"};
	int status = nets ? cli_ls_print(&ls, nets, head, 4, network_row) : 1;
	cli_ls_done(&ls);
	return status;
}

static int network_inspect(struct cli_ctx *ctx, int argc, char **argv)
{
	return cli_inspect_cmd(ctx, argc, argv, "NETWORK [NETWORK...]",
			       "Display detailed information on one or more networks", "/networks");
}

static int network_rm(struct cli_ctx *ctx, int argc, char **argv)
{
	return cli_rm_cmd(ctx, argc, argv, "NETWORK [NETWORK...]", "Remove one or more networks",
			  "/networks");
}

static int network_prune(struct cli_ctx *ctx, int argc, char **argv)
{
	static const char usage[] = "[OPTIONS]", desc[] = "Remove all unused networks";
	static const struct cli_opt opts[] = {
		{'f', "force", 'f', CLI_OPT_BOOL, NULL, "Do not prompt for confirmation"},
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
	if (p.npos)
		return cli_opts_args_fail(ctx, &p, usage, desc, "no arguments");
	cli_opts_done(&p);
	if (!force) {
		fprintf(stderr,
			"WARNING! This will remove all custom networks not used by at least "
			"one service. Run again with -f to do it.\n");
		return 1;
	}
	struct shoal_err e = {0};
	_cleanup_json_ json_t *resp = NULL;
	if (cli_call_json(ctx, "POST", "/networks/prune", NULL, NULL, &resp, &e) < 0) {
		cli_print_err(&e);
		return 1;
	}
	json_t *deleted = json_object_get(resp, "NetworksDeleted");
	if (json_array_size(deleted))
		printf("Deleted Networks:\n");
	size_t i;
	json_t *n;
	json_array_foreach(deleted, i, n) printf("%s\n", json_string_value(n));
	return 0;
}

/* connect NETWORK CONTAINER / disconnect [-f] NETWORK CONTAINER */
static int network_connect_cmd(struct cli_ctx *ctx, int argc, char **argv, bool connect)
{
	static const char usage[] = "[OPTIONS] NETWORK CONTAINER";
	const char *desc = connect ? "Connect a container to a network"
				   : "Disconnect a container from a network";
	static const struct cli_opt copts[] = {{0}};
	static const struct cli_opt dopts[] = {
		{'f', "force", 'f', CLI_OPT_BOOL, NULL,
		 "Force the container to disconnect from a network"},
		{0},
	};
	struct cli_opts p;
	bool force = false;
	int id;
	cli_opts_init(&p, connect ? copts : dopts, argc, argv, false);
	while ((id = cli_opts_next(&p)) != 0) {
		if (id != 'f')
			return cli_opts_fail(ctx, &p, id, usage, desc);
		force = cli_opts_bool(&p);
	}
	if (p.npos != 2)
		return cli_opts_args_fail(ctx, &p, usage, desc, "exactly 2 arguments");
	_cleanup_json_ json_t *body =
		connect ? json_pack("{s:s}", "Container", p.pos[1])
			: json_pack("{s:s, s:b}", "Container", p.pos[1], "Force", force);
	_cleanup_free_ char *path =
		cli_obj_path("/networks", p.pos[0], connect ? "/connect" : "/disconnect");
	cli_opts_done(&p);
	struct shoal_err e = {0};
	if (!body || !path)
		return cli_oom();
	if (cli_call_json(ctx, "POST", path, body, NULL, NULL, &e) < 0) {
		cli_print_err(&e);
		return 1;
	}
	return 0;
}

static int network_connect(struct cli_ctx *ctx, int argc, char **argv)
{
	return network_connect_cmd(ctx, argc, argv, true);
}

static int network_disconnect(struct cli_ctx *ctx, int argc, char **argv)
{
	return network_connect_cmd(ctx, argc, argv, false);
}

const struct cli_command cli_network_commands[] = {
	{"connect", network_connect, "Connect a container to a network"},
	{"disconnect", network_disconnect, "Disconnect a container from a network"},
	{"create", network_create, "Create a network"},
	{"ls", network_ls, "List networks"},
	{"list", network_ls, NULL},
	{"inspect", network_inspect, "Display detailed information on one or more networks"},
	{"rm", network_rm, "Remove one or more networks"},
	{"remove", network_rm, NULL},
	{"prune", network_prune, "Remove all unused networks"},
	{NULL, NULL, NULL},
};

int cli_cmd_network(struct cli_ctx *ctx, int argc, char **argv)
{
	return cli_dispatch(ctx, "shoal network", cli_network_commands, argc, argv);
}
