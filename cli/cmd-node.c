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

static json_t *jget(json_t *o, const char *path)
{
	char key[128];
	while (o && *path) {
		const char *dot = strchr(path, '.');
		size_t n = dot ? (size_t)(dot - path) : strlen(path);
		if (n >= sizeof(key))
			return NULL;
		memcpy(key, path, n);
		key[n] = '\0';
		o = json_object_get(o, key);
		path += n + (dot ? 1 : 0);
	}
	return json_is_null(o) ? NULL : o;
}

static const char *jstr(json_t *o, const char *path)
{
	return json_string_value(jget(o, path));
}

static json_int_t jint(json_t *o, const char *path)
{
	json_t *v = jget(o, path);
	return json_is_number(v) ? (json_int_t)json_number_value(v) : 0;
}

static void title(const char *s, char *buf, size_t size)
{
	snprintf(buf, size, "%s", s ? s : "");
	if (buf[0])
		buf[0] = (char)toupper((unsigned char)buf[0]);
}

/* This node's id: /info's Swarm.NodeID, else its ID. NULL when unknown. */
static char *self_id(struct cli_ctx *ctx)
{
	_cleanup_json_ json_t *info = NULL;
	struct shoal_err e = {0};
	if (cli_call_json(ctx, "GET", "/info", NULL, NULL, &info, &e) < 0)
		return NULL;
	const char *id = jstr(info, "Swarm.NodeID");
	if (!id || !*id)
		id = jstr(info, "ID");
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
	_cleanup_free_ char *path = cli_obj_path("/nodes", self ? self : ref, NULL);
	if (!path) {
		shoal_err_set(err, ENOMEM, "Error: out of memory");
		return NULL;
	}
	json_t *j = NULL;
	if (cli_call_json(ctx, "GET", path, NULL, NULL, &j, err) < 0)
		return NULL;
	if (!json_is_object(j) || !jstr(j, "ID")) {
		json_decref(j);
		shoal_err_set(err, EIO, "Error: malformed node from daemon");
		return NULL;
	}
	return j;
}

enum { NOPT_AVAILABILITY = 3000, NOPT_LABEL_ADD, NOPT_LABEL_RM, NOPT_ROLE, NOPT_PRETTY };

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
	int c = strcmp(jstr(x, "Description.Hostname") ?: "",
		       jstr(y, "Description.Hostname") ?: "");
	return c ? c : strcmp(jstr(x, "ID") ?: "", jstr(y, "ID") ?: "");
}

static int node_ls(struct cli_ctx *ctx, int argc, char **argv)
{
	static const char usage[] = "[OPTIONS]", desc[] = "List nodes in the cluster";
	bool quiet = false;
	_cleanup_free_ char *fmt = NULL;
	struct cli_opts p;
	cli_opts_init(&p, ls_opts, argc, argv, false);
	int id;
	while ((id = cli_opts_next(&p)) != 0) {
		if (id == 'q') {
			quiet = cli_opts_bool(&p);
		} else if (id == OPT_FORMAT) {
			free(fmt);
			fmt = strdup(p.value);
			if (!fmt) {
				cli_opts_done(&p);
				return cli_oom();
			}
		} else if (id == CLI_OPT_HELP) {
			cli_opts_done(&p);
			cli_usage(ctx, usage, desc, ls_opts);
			return 0;
		} else {
			int r = cli_usage_error(ctx, p.error);
			cli_opts_done(&p);
			return r;
		}
	}
	int npos = p.npos;
	cli_opts_done(&p);
	if (npos > 0)
		return cli_args_error(ctx, usage, desc, "accepts no arguments");
	struct shoal_err e = {0};
	_cleanup_json_ json_t *list = NULL;
	if (cli_call_json(ctx, "GET", "/nodes", NULL, NULL, &list, &e) < 0) {
		cli_print_err(&e);
		return 1;
	}
	if (!json_is_array(list)) {
		fprintf(stderr, "Error: malformed node list from daemon\n");
		return 1;
	}
	size_t n = json_array_size(list);
	_cleanup_free_ json_t **sorted = calloc(n + 1, sizeof(*sorted));
	if (!sorted)
		return cli_oom();
	for (size_t i = 0; i < n; i++)
		sorted[i] = json_array_get(list, i);
	qsort(sorted, n, sizeof(*sorted), node_cmp);
	if (quiet) {
		for (size_t i = 0; i < n; i++)
			printf("%s\n", jstr(sorted[i], "ID") ?: "");
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
		const char *nid = jstr(node, "ID") ?: "";
		bool is_self = self && strcmp(self, nid) == 0;
		char idb[160], st[32], av[32], mgr[32] = "";
		snprintf(idb, sizeof(idb), "%s%s", nid, is_self ? " *" : "");
		title(jstr(node, "Status.State"), st, sizeof(st));
		title(jstr(node, "Spec.Availability"), av, sizeof(av));
		if (jget(node, "ManagerStatus")) {
			if (json_is_true(jget(node, "ManagerStatus.Leader")))
				snprintf(mgr, sizeof(mgr), "Leader");
			else
				title(jstr(node, "ManagerStatus.Reachability"), mgr, sizeof(mgr));
		}
		const char *cells[] = {idb, jstr(node, "Description.Hostname") ?: "",
				       st,  av,
				       mgr, jstr(node, "Description.Engine.EngineVersion") ?: ""};
		if (fmt) {
			_cleanup_json_ json_t *row = json_pack(
				"{s:s,s:b,s:s,s:s,s:s,s:s,s:s}", "ID", nid, "Self", is_self,
				"Hostname", cells[1], "Status", st, "Availability", av,
				"ManagerStatus", mgr, "EngineVersion", cells[5]);
			char terr[256] = "";
			_cleanup_free_ char *out =
				row ? cli_template_render(fmt, row, terr, sizeof(terr)) : NULL;
			if (!out) {
				fprintf(stderr, "template parsing error: %s\n", terr);
				status = 1;
				break;
			}
			printf("%s\n", out);
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

static const struct cli_opt inspect_opts[] = {
	{'f', "format", 'f', CLI_OPT_VALUE, "string", "Format output using a template"},
	{NOPT_PRETTY, "pretty", 0, CLI_OPT_BOOL, NULL,
	 "Print the information in a human friendly format"},
	{0},
};

static void pretty_node(json_t *n)
{
	char b[64];
	printf("ID:\t\t\t%s\n", jstr(n, "ID") ?: "");
	if (jstr(n, "Spec.Name") && *jstr(n, "Spec.Name"))
		printf("Name:\t\t\t%s\n", jstr(n, "Spec.Name"));
	json_t *labels = jget(n, "Spec.Labels");
	if (json_object_size(labels)) {
		printf("Labels:\n");
		const char *k;
		json_t *v;
		json_object_foreach(labels, k, v)
			printf(" - %s=%s\n", k, json_string_value(v) ?: "");
	}
	printf("Hostname:\t\t%s\n", jstr(n, "Description.Hostname") ?: "");
	printf("Joined at:\t\t%s\n", jstr(n, "CreatedAt") ?: "");
	printf("Status:\n");
	title(jstr(n, "Status.State"), b, sizeof(b));
	printf(" State:\t\t\t%s\n", b);
	if (jstr(n, "Status.Message") && *jstr(n, "Status.Message"))
		printf(" Message:\t\t%s\n", jstr(n, "Status.Message"));
	title(jstr(n, "Spec.Availability"), b, sizeof(b));
	printf(" Availability:\t\t%s\n", b);
	printf(" Address:\t\t%s\n", jstr(n, "Status.Addr") ?: "");
	if (jget(n, "ManagerStatus")) {
		printf("Manager Status:\n");
		printf(" Address:\t\t%s\n", jstr(n, "ManagerStatus.Addr") ?: "");
		title(jstr(n, "ManagerStatus.Reachability"), b, sizeof(b));
		printf(" Raft Status:\t\t%s\n", b);
		printf(" Leader:\t\t%s\n",
		       json_is_true(jget(n, "ManagerStatus.Leader")) ? "Yes" : "No");
	}
	printf("Platform:\n");
	printf(" Operating System:\t%s\n", jstr(n, "Description.Platform.OS") ?: "");
	printf(" Architecture:\t\t%s\n", jstr(n, "Description.Platform.Architecture") ?: "");
	printf("Resources:\n");
	printf(" CPUs:\t\t\t%g\n", (double)jint(n, "Description.Resources.NanoCPUs") / 1e9);
	cli_bytes_size((double)jint(n, "Description.Resources.MemoryBytes"), b, sizeof(b));
	printf(" Memory:\t\t%s\n", b);
	printf("Engine Version:\t\t%s\n", jstr(n, "Description.Engine.EngineVersion") ?: "");
}

static int node_inspect(struct cli_ctx *ctx, int argc, char **argv)
{
	static const char usage[] = "[OPTIONS] self|NODE [NODE...]",
			  desc[] = "Display detailed information on one or more nodes";
	_cleanup_free_ char *fmt = NULL;
	bool pretty = false;
	struct cli_opts p;
	cli_opts_init(&p, inspect_opts, argc, argv, false);
	int id;
	while ((id = cli_opts_next(&p)) != 0) {
		if (id == 'f') {
			free(fmt);
			fmt = strdup(p.value);
		} else if (id == NOPT_PRETTY) {
			pretty = cli_opts_bool(&p);
		} else if (id == CLI_OPT_HELP) {
			cli_opts_done(&p);
			cli_usage(ctx, usage, desc, inspect_opts);
			return 0;
		} else {
			int r = cli_usage_error(ctx, p.error);
			cli_opts_done(&p);
			return r;
		}
	}
	if (p.npos < 1) {
		cli_opts_done(&p);
		return cli_args_error(ctx, usage, desc, "requires at least 1 argument");
	}
	if (pretty && fmt) {
		cli_opts_done(&p);
		return cli_usage_error(ctx, "--format is incompatible with human friendly format");
	}
	_cleanup_json_ json_t *all = json_array();
	int status = 0;
	for (int i = 0; all && i < p.npos; i++) {
		struct shoal_err e = {0};
		json_t *node = get_node(ctx, p.pos[i], &e);
		if (!node) {
			if (e.status == 404)
				fprintf(stderr, "Error: no such node: %s\n", p.pos[i]);
			else
				cli_print_err(&e);
			status = 1;
			continue;
		}
		json_array_append_new(all, node);
	}
	cli_opts_done(&p);
	if (!all)
		return cli_oom();
	size_t i;
	json_t *n;
	if (pretty) {
		json_array_foreach(all, i, n)
		{
			if (i)
				printf("\n");
			pretty_node(n);
		}
	} else if (fmt) {
		json_array_foreach(all, i, n)
		{
			char terr[256];
			_cleanup_free_ char *out = cli_template_render(fmt, n, terr, sizeof(terr));
			if (!out) {
				fprintf(stderr, "template parsing error: %s\n", terr);
				return 1;
			}
			printf("%s\n", out);
		}
	} else {
		_cleanup_free_ char *out = json_dumps(all, JSON_INDENT(4) | JSON_PRESERVE_ORDER);
		if (!out)
			return cli_oom();
		printf("%s\n", out);
	}
	return status;
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

json_t *cli_node_spec_edit(json_t *node, const char *availability, const char *role,
			   char *const *label_add, char *const *label_rm, char *err, size_t errsize)
{
	err[0] = '\0';
	json_t *cur = json_object_get(node, "Spec");
	_cleanup_json_ json_t *spec = json_is_object(cur) ? json_deep_copy(cur) : json_object();
	if (!spec)
		goto oom;
	if (availability) {
		if (strcmp(availability, "active") && strcmp(availability, "pause") &&
		    strcmp(availability, "drain")) {
			snprintf(err, errsize,
				 "invalid argument \"%s\" for \"--availability\" flag: expected "
				 "\"active\", \"pause\" or \"drain\"",
				 availability);
			return NULL;
		}
		if (json_object_set_new(spec, "Availability", json_string(availability)) < 0)
			goto oom;
	}
	if (role) {
		if (strcmp(role, "worker") && strcmp(role, "manager")) {
			snprintf(
				err, errsize,
				"invalid argument \"%s\" for \"--role\" flag: expected \"worker\" or "
				"\"manager\"",
				role);
			return NULL;
		}
		if (json_object_set_new(spec, "Role", json_string(role)) < 0)
			goto oom;
	}
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
	for (size_t i = 0; label_add && label_add[i]; i++) {
		const char *eq = strchr(label_add[i], '=');
		_cleanup_free_ char *k = eq ? strndup(label_add[i], (size_t)(eq - label_add[i]))
					    : strdup(label_add[i]);
		if (!k || json_object_set_new(labels, k, json_string(eq ? eq + 1 : "")) < 0)
			goto oom;
	}
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
		} else if (id == CLI_OPT_HELP) {
			cli_opts_done(&p);
			cli_usage(ctx, usage, desc, update_opts);
			return 0;
		} else {
			int st = cli_usage_error(ctx, p.error);
			cli_opts_done(&p);
			return st;
		}
	}
	if (r < 0) {
		cli_opts_done(&p);
		return r == -E2BIG ? cli_usage_error(ctx, "too many label flags") : cli_oom();
	}
	if (p.npos != 1) {
		cli_opts_done(&p);
		return cli_args_error(ctx, usage, desc, "requires exactly 1 argument");
	}
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
		 jint(node, "Version.Index"));
	_cleanup_free_ char *path = cli_obj_path("/nodes", jstr(node, "ID"), suffix);
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
