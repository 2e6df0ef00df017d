// SPDX-License-Identifier: Apache-2.0
/* `shoal node ...`: the cluster's nodes through the Engine API's /nodes. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli-internal.h"
#include "cli/cli.h"
#include "cli/format.h"
#include "lib/cleanup.h"
#include "lib/util.h"

#define MAX_LABEL_FLAGS 256

/* This node's id: /info's Swarm.NodeID, else its ID. NULL when unknown. */
static char *self_id(struct cli_ctx *ctx)
{
	_cleanup_json_ json_t *info = NULL;
	struct shoal_err e = {0};
	if (cli_call_json(ctx, "GET", "/info", NULL, NULL, &info, &e) < 0)
		return NULL;
	const char *id = cli_json_str(info, "Swarm.NodeID");
	if (!id || !*id)
		id = cli_json_str(info, "ID");
	return id && *id ? strdup(id) : NULL;
}

/* GET /nodes/<ref>; "self" names the node the CLI talks to. */
static json_t *get_node(struct cli_ctx *ctx, const char *ref, struct shoal_err *err)
{
	_cleanup_free_ char *self = strcmp(ref, "self") == 0 ? self_id(ctx) : NULL;
	if (strcmp(ref, "self") == 0 && !self) {
		shoal_err_set(err, ENOENT, "Error: this node is not part of a cluster");
		return NULL;
	}
	return cli_object_get(ctx, "/nodes", self ? self : ref, NULL, "node", err);
}

enum { NOPT_AVAILABILITY = 3000, NOPT_LABEL_ADD, NOPT_LABEL_RM, NOPT_ROLE };

/* ls */

static const struct cli_opt ls_opts[] = {
	{'q', "quiet", 'q', CLI_OPT_BOOL, NULL, "Only display IDs"},
	{OPT_FORMAT, "format", 0, CLI_OPT_VALUE, "string",
	 "Format output using a template (fields: .ID .Self .Hostname .Status .Availability .ManagerStatus .EngineVersion)"},
	{0},
};

static int node_cmp(const void *a, const void *b)
{
	json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
	int c = strcmp(cli_json_str(x, "Description.Hostname") ?: "",
		       cli_json_str(y, "Description.Hostname") ?: "");
	return c ? c : strcmp(cli_json_str(x, "ID") ?: "", cli_json_str(y, "ID") ?: "");
}

static int node_ls(struct cli_ctx *ctx, int argc, char **argv)
{
	static const char usage[] = "[OPTIONS]", desc[] = "List nodes in the cluster";
	bool quiet = false;
	_cleanup_free_ char *fmt = NULL;
	int r = cli_ls_parse(ctx, argc, argv, ls_opts, usage, desc, &quiet, &fmt);
	if (r)
		return r == CLI_OPT_HELP ? 0 : r;
	_cleanup_json_ json_t *list = cli_list_get(ctx, "/nodes", "node");
	if (!list)
		return 1;
	size_t n = json_array_size(list);
	_cleanup_free_ json_t **sorted = calloc(n + 1, sizeof(*sorted));
	if (!sorted)
		return cli_oom();
	for (size_t i = 0; i < n; i++)
		sorted[i] = json_array_get(list, i);
	qsort(sorted, n, sizeof(*sorted), node_cmp);
	if (quiet) {
		for (size_t i = 0; i < n; i++)
			printf("%s\n", cli_json_str(sorted[i], "ID") ?: "");
		return 0;
	}
	_cleanup_free_ char *self = self_id(ctx);
	struct cli_table *t = cli_table_new(6);
	if (!t)
		return cli_oom();
	static const char *const head[] = {"ID",	   "HOSTNAME",	     "STATUS",
					   "AVAILABILITY", "MANAGER STATUS", "ENGINE VERSION"};
	cli_table_add(t, head);
	int status = 0;
	for (size_t i = 0; i < n; i++) {
		json_t *node = sorted[i];
		const char *nid = cli_json_str(node, "ID") ?: "";
		bool is_self = self && strcmp(self, nid) == 0;
		char idb[160], st[32], av[32], mgr[32] = "";
		snprintf(idb, sizeof(idb), "%s%s", nid, is_self ? " *" : "");
		cli_title(cli_json_str(node, "Status.State"), st, sizeof(st));
		cli_title(cli_json_str(node, "Spec.Availability"), av, sizeof(av));
		if (cli_json_get(node, "ManagerStatus")) {
			if (json_is_true(cli_json_get(node, "ManagerStatus.Leader")))
				snprintf(mgr, sizeof(mgr), "Leader");
			else
				cli_title(cli_json_str(node, "ManagerStatus.Reachability"), mgr,
					  sizeof(mgr));
		}
		const char *cells[] = {
			idb, cli_json_str(node, "Description.Hostname") ?: "",
			st,  av,
			mgr, cli_json_str(node, "Description.Engine.EngineVersion") ?: ""};
		if (fmt) {
			_cleanup_json_ json_t *row = json_pack(
				"{s:s,s:b,s:s,s:s,s:s,s:s,s:s}", "ID", nid, "Self", is_self,
				"Hostname", cells[1], "Status", st, "Availability", av,
				"ManagerStatus", mgr, "EngineVersion", cells[5]);
			status = cli_template_println(fmt, row);
			if (status)
				break;
		} else {
			cli_table_add(t, cells);
		}
	}
	if (!fmt && status == 0)
		cli_table_print(t, stdout);
	cli_table_free(t);
	return status;
}

/* inspect */

static void pretty_node(json_t *n, size_t index)
{
	char b[64];
	if (index)
		printf("\n");
	printf("ID:\t\t\t%s\n", cli_json_str(n, "ID") ?: "");
	if (cli_json_str(n, "Spec.Name") && *cli_json_str(n, "Spec.Name"))
		printf("Name:\t\t\t%s\n", cli_json_str(n, "Spec.Name"));
	json_t *labels = cli_json_get(n, "Spec.Labels");
	if (json_object_size(labels)) {
		printf("Labels:\n");
		const char *k;
		json_t *v;
		json_object_foreach(labels, k, v)
			printf(" - %s=%s\n", k, json_string_value(v) ?: "");
	}
	printf("Hostname:\t\t%s\n", cli_json_str(n, "Description.Hostname") ?: "");
	printf("Joined at:\t\t%s\n", cli_json_str(n, "CreatedAt") ?: "");
	printf("Status:\n");
	cli_title(cli_json_str(n, "Status.State"), b, sizeof(b));
	printf(" State:\t\t\t%s\n", b);
	if (cli_json_str(n, "Status.Message") && *cli_json_str(n, "Status.Message"))
		printf(" Message:\t\t%s\n", cli_json_str(n, "Status.Message"));
	cli_title(cli_json_str(n, "Spec.Availability"), b, sizeof(b));
	printf(" Availability:\t\t%s\n", b);
	printf(" Address:\t\t%s\n", cli_json_str(n, "Status.Addr") ?: "");
	if (cli_json_get(n, "ManagerStatus")) {
		printf("Manager Status:\n");
		printf(" Address:\t\t%s\n", cli_json_str(n, "ManagerStatus.Addr") ?: "");
		cli_title(cli_json_str(n, "ManagerStatus.Reachability"), b, sizeof(b));
		printf(" Raft Status:\t\t%s\n", b);
		printf(" Leader:\t\t%s\n",
		       json_is_true(cli_json_get(n, "ManagerStatus.Leader")) ? "Yes" : "No");
	}
	printf("Platform:\n");
	printf(" Operating System:\t%s\n", cli_json_str(n, "Description.Platform.OS") ?: "");
	printf(" Architecture:\t\t%s\n",
	       cli_json_str(n, "Description.Platform.Architecture") ?: "");
	printf("Resources:\n");
	printf(" CPUs:\t\t\t%g\n", (double)cli_json_int(n, "Description.Resources.NanoCPUs") / 1e9);
	cli_bytes_size((double)cli_json_int(n, "Description.Resources.MemoryBytes"), b, sizeof(b));
	printf(" Memory:\t\t%s\n", b);
	printf("Engine Version:\t\t%s\n",
	       cli_json_str(n, "Description.Engine.EngineVersion") ?: "");
}

static int node_inspect(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct cli_inspect_kind kind = {
		.usage = "[OPTIONS] self|NODE [NODE...]",
		.desc = "Display detailed information on one or more nodes",
		.noun = "node",
		.get = get_node,
		.pretty = pretty_node,
	};
	return cli_inspect_swarm(ctx, argc, argv, &kind);
}

/* update */

static const struct cli_opt update_opts[] = {
	{NOPT_AVAILABILITY, "availability", 0, CLI_OPT_VALUE, "string",
	 "Availability of the node (\"active\", \"pause\", \"drain\")"},
	{NOPT_LABEL_ADD, "label-add", 0, CLI_OPT_VALUE, "list",
	 "Add or update a node label (key=value)"},
	{NOPT_LABEL_RM, "label-rm", 0, CLI_OPT_VALUE, "list", "Remove a node label if exists"},
	{NOPT_ROLE, "role", 0, CLI_OPT_VALUE, "string",
	 "Role of the node (\"worker\", \"manager\")"},
	{0},
};

/* Sets spec[key] to value (when given) if it is one of choices (NULL-terminated), else
 * says in err what was expected, as docker does for --availability and --role. */
static int spec_set_choice(json_t *spec, const char *key, const char *value,
			   const char *const *choices, const char *expected, char *err,
			   size_t errsize)
{
	if (!value)
		return 0;
	for (size_t i = 0; choices[i]; i++)
		if (strcmp(value, choices[i]) == 0)
			return json_object_set_new(spec, key, json_string(value)) < 0 ? -ENOMEM : 0;
	char flag[32];
	snprintf(flag, sizeof(flag), "%s", key);
	flag[0] = (char)tolower((unsigned char)flag[0]);
	snprintf(err, errsize, "invalid argument \"%s\" for \"--%s\" flag: expected %s", value,
		 flag, expected);
	return -EINVAL;
}

json_t *cli_node_spec_edit(json_t *node, const char *availability, const char *role,
			   char *const *label_add, char *const *label_rm, char *err, size_t errsize)
{
	err[0] = '\0';
	json_t *cur = json_object_get(node, "Spec");
	_cleanup_json_ json_t *spec = json_is_object(cur) ? json_deep_copy(cur) : json_object();
	if (!spec)
		goto oom;
	static const char *const availabilities[] = {"active", "pause", "drain", NULL};
	static const char *const roles[] = {"worker", "manager", NULL};
	int r = spec_set_choice(spec, "Availability", availability, availabilities,
				"\"active\", \"pause\" or \"drain\"", err, errsize);
	if (r == 0)
		r = spec_set_choice(spec, "Role", role, roles, "\"worker\" or \"manager\"", err,
				    errsize);
	if (r == -ENOMEM)
		goto oom;
	if (r < 0)
		return NULL;
	json_t *labels = json_object_get(spec, "Labels");
	if (!json_is_object(labels)) {
		labels = json_object();
		if (!labels || json_object_set_new(spec, "Labels", labels) < 0)
			goto oom;
	}
	for (size_t i = 0; label_rm && label_rm[i]; i++) {
		if (!json_object_get(labels, label_rm[i])) {
			snprintf(err, errsize, "key %s doesn't exist in node's labels",
				 label_rm[i]);
			return NULL;
		}
		json_object_del(labels, label_rm[i]);
	}
	for (size_t i = 0; label_add && label_add[i]; i++)
		if (cli_json_label_set(labels, label_add[i]) < 0)
			goto oom;
	return TAKE_PTR(spec);
oom:
	snprintf(err, errsize, "out of memory");
	return NULL;
}

static int node_update(struct cli_ctx *ctx, int argc, char **argv)
{
	static const char usage[] = "[OPTIONS] NODE", desc[] = "Update a node";
	_cleanup_free_ char *availability = NULL, *role = NULL;
	_cleanup_strv_ char **add = NULL, **rm = NULL;
	struct cli_opts p;
	cli_opts_init(&p, update_opts, argc, argv, false);
	int id, r = 0;
	while (r >= 0 && (id = cli_opts_next(&p)) != 0) {
		if (id == NOPT_AVAILABILITY) {
			free(availability);
			availability = strdup(p.value);
			r = availability ? 0 : -ENOMEM;
		} else if (id == NOPT_ROLE) {
			free(role);
			role = strdup(p.value);
			r = role ? 0 : -ENOMEM;
		} else if (id == NOPT_LABEL_ADD || id == NOPT_LABEL_RM) {
			char ***v = id == NOPT_LABEL_ADD ? &add : &rm;
			r = strv_length(*v) >= MAX_LABEL_FLAGS ? -E2BIG : strv_push(v, p.value);
		} else {
			return cli_opts_fail(ctx, &p, id, usage, desc);
		}
	}
	if (r < 0) {
		cli_opts_done(&p);
		return r == -E2BIG ? cli_usage_error(ctx, "too many label flags") : cli_oom();
	}
	if (p.npos != 1)
		return cli_opts_args_fail(ctx, &p, usage, desc, "requires exactly 1 argument");
	_cleanup_free_ char *ref = strdup(p.pos[0]);
	cli_opts_done(&p);
	if (!ref)
		return cli_oom();
	struct shoal_err e = {0};
	_cleanup_json_ json_t *node = get_node(ctx, ref, &e);
	if (!node) {
		cli_print_err(&e);
		return 1;
	}
	char err[512];
	_cleanup_json_ json_t *spec =
		cli_node_spec_edit(node, availability, role, add, rm, err, sizeof(err));
	if (!spec) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	char suffix[64];
	snprintf(suffix, sizeof(suffix), "/update?version=%" JSON_INTEGER_FORMAT,
		 cli_json_int(node, "Version.Index"));
	_cleanup_free_ char *path = cli_obj_path("/nodes", cli_json_str(node, "ID"), suffix);
	if (!path)
		return cli_oom();
	if (cli_call_json(ctx, "POST", path, spec, NULL, NULL, &e) < 0) {
		cli_print_err(&e);
		return 1;
	}
	return 0;
}

const struct cli_command cli_node_commands[] = {
	{"inspect", node_inspect, "Display detailed information on one or more nodes"},
	{"ls", node_ls, "List nodes in the cluster"},
	{"list", node_ls, NULL},
	{"update", node_update, "Update a node"},
	{NULL, NULL, NULL},
};

int cli_cmd_node(struct cli_ctx *ctx, int argc, char **argv)
{
	return cli_dispatch(ctx, "shoal node", cli_node_commands, argc, argv);
}
