// SPDX-License-Identifier: Apache-2.0
/* `shoal service ...`: swarm-mode services through the Engine API's /services and /tasks. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
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
#include "sched/spec.h"

/* Image without its "@sha256:..." digest, as docker's tables show it. */
static void image_name(const char *image, bool trunc, char *buf, size_t size)
{
	snprintf(buf, size, "%s", image ? image : "");
	char *at = strchr(buf, '@');
	if (trunc && at)
		*at = '\0';
}

static void print_warnings(json_t *resp)
{
	size_t i;
	json_t *w;
	json_array_foreach(json_object_get(resp, "Warnings"), i, w)
	{
		if (json_string_value(w))
			fprintf(stderr, "%s\n", json_string_value(w));
	}
}

/* create */

static int print_plan(json_t *resp)
{
	json_t *plan = json_object_get(resp, "Plan");
	if (!json_is_array(plan)) {
		fprintf(stderr, "Error: the daemon's dry-run answer has no Plan\n");
		return 1;
	}
	struct cli_table *t = cli_table_new(4);
	if (!t)
		return cli_oom();
	static const char *const head[] = {"SLOT", "NODE ID", "NODE", "UNPLACED"};
	cli_table_add(t, head);
	size_t i, unplaced = 0;
	json_t *e;
	json_array_foreach(plan, i, e)
	{
		char slot[32] = "", node[80];
		if (cli_json_int(e, "Slot") > 0)
			snprintf(slot, sizeof(slot), "%" JSON_INTEGER_FORMAT,
				 cli_json_int(e, "Slot"));
		cli_id_trunc(cli_json_str(e, "NodeID"), true, node, sizeof(node));
		const char *why = cli_json_str(e, "Unplaced");
		unplaced += why != NULL;
		const char *cells[] = {slot, node, cli_json_str(e, "NodeHostname") ?: "",
				       why ?: ""};
		cli_table_add(t, cells);
	}
	cli_table_print(t, stdout);
	cli_table_free(t);
	if (unplaced)
		printf("%zu of %zu tasks cannot be placed\n", unplaced, json_array_size(plan));
	return 0;
}

static int service_create(struct cli_ctx *ctx, int argc, char **argv)
{
	struct cli_service_args a;
	int r = cli_service_args_parse(ctx, argc, argv, false, &a);
	if (r)
		return r == CLI_OPT_HELP ? 0 : r;
	_cleanup_json_ json_t *spec = json_object();
	char err[512];
	if (!spec) {
		cli_service_args_done(&a);
		return cli_oom();
	}
	r = cli_service_spec_apply(&a, spec, err, sizeof(err));
	bool detach = a.detach, quiet = a.quiet, dry_run = a.dry_run;
	cli_service_args_done(&a);
	if (r == -ENOMEM)
		return cli_oom();
	if (r < 0)
		return cli_usage_error(ctx, err);

	struct shoal_err e = {0};
	_cleanup_json_ json_t *resp = NULL;
	if (cli_call_json(ctx, "POST", dry_run ? "/services/create?dryRun=1" : "/services/create",
			  spec, NULL, &resp, &e) < 0) {
		cli_print_err(&e);
		return 1;
	}
	print_warnings(resp);
	if (dry_run)
		return print_plan(resp);
	const char *id = cli_json_str(resp, "ID");
	if (!id) {
		fprintf(stderr, "Error: the daemon's create answer has no ID\n");
		return 1;
	}
	printf("%s\n", id);
	fflush(stdout);
	if (detach)
		return 0;
	return cli_service_wait(ctx, id, CLI_WAIT_CREATE, quiet, NULL);
}

/* update, rollback, scale */

static int post_update(struct cli_ctx *ctx, json_t *svc, json_t *spec, bool rollback, bool dry_run)
{
	const char *id = cli_json_str(svc, "ID");
	char suffix[96];
	snprintf(suffix, sizeof(suffix), "/update?version=%" JSON_INTEGER_FORMAT "%s%s",
		 cli_json_int(svc, "Version.Index"), rollback ? "&rollback=previous" : "",
		 dry_run ? "&dryRun=1" : "");
	_cleanup_free_ char *path = cli_obj_path("/services", id, suffix);
	if (!path)
		return cli_oom();
	struct shoal_err e = {0};
	_cleanup_json_ json_t *resp = NULL;
	if (cli_call_json(ctx, "POST", path, spec, NULL, &resp, &e) < 0) {
		cli_print_err(&e);
		return 1;
	}
	if (dry_run)
		return print_plan(resp);
	print_warnings(resp);
	return 0;
}

/* --network-rm NET: the spec holds its networks by id, as Docker's does, so
 * a name is looked up first (the docker CLI does the same); a network the
 * service is not on is an error, not a silent no-op. */
static int networks_rm(struct cli_ctx *ctx, const struct cli_service_args *a, json_t *spec)
{
	json_t *nets = cli_json_get(spec, "TaskTemplate.Networks");
	for (size_t f = 0; f < a->nflags; f++) {
		if (strcmp(a->flags[f].name, "network-rm") != 0)
			continue;
		const char *ref = a->flags[f].value;
		_cleanup_free_ char *path = cli_obj_path("/networks", ref, "");
		_cleanup_json_ json_t *net = NULL;
		struct shoal_err e = {0};
		if (!path) {
			cli_oom();
			return -ENOMEM;
		}
		const char *id = NULL;
		if (cli_call_json(ctx, "GET", path, NULL, NULL, &net, &e) == 0)
			id = cli_json_str(net, "Id");
		bool found = false;
		for (size_t i = 0; i < json_array_size(nets);) {
			const char *t = cli_json_str(json_array_get(nets, i), "Target");
			if (t && (strcmp(t, ref) == 0 || (id && strcmp(t, id) == 0))) {
				json_array_remove(nets, i);
				found = true;
			} else {
				i++;
			}
		}
		if (!found) {
			fprintf(stderr,
				"Error: --network-rm %s: the service is not on that network\n",
				ref);
			return -EINVAL;
		}
	}
	return 0;
}

static int service_update_args(struct cli_ctx *ctx, struct cli_service_args *a)
{
	const char *name = a->pos[0];
	struct shoal_err e = {0};
	_cleanup_json_ json_t *svc = cli_service_get(ctx, name, &e);
	if (!svc) {
		cli_print_err(&e);
		return 1;
	}
	json_t *cur = json_object_get(svc, "Spec");
	_cleanup_json_ json_t *spec = json_is_object(cur) ? json_deep_copy(cur) : json_object();
	if (!spec)
		return cli_oom();
	if (networks_rm(ctx, a, spec) < 0)
		return 1;
	char err[512];
	int r = cli_service_spec_apply(a, spec, err, sizeof(err));
	if (r == -ENOMEM)
		return cli_oom();
	if (r < 0)
		return cli_usage_error(ctx, err);
	if (a->dry_run && a->rollback)
		return cli_usage_error(ctx, "--dry-run cannot be combined with --rollback");
	r = post_update(ctx, svc, spec, a->rollback, a->dry_run);
	if (r || a->dry_run)
		return r;
	printf("%s\n", name);
	fflush(stdout);
	if (a->detach)
		return 0;
	return cli_service_wait(ctx, cli_json_str(svc, "ID"),
				a->rollback ? CLI_WAIT_ROLLBACK : CLI_WAIT_UPDATE, a->quiet,
				cli_json_str(svc, "UpdateStatus.StartedAt"));
}

static int service_update(struct cli_ctx *ctx, int argc, char **argv)
{
	struct cli_service_args a;
	int r = cli_service_args_parse(ctx, argc, argv, true, &a);
	if (r)
		return r == CLI_OPT_HELP ? 0 : r;
	r = service_update_args(ctx, &a);
	cli_service_args_done(&a);
	return r;
}

static const struct cli_opt rollback_opts[] = {
	CLI_SERVICE_WAIT_OPTS,
	{0},
};

static int service_rollback(struct cli_ctx *ctx, int argc, char **argv)
{
	static const char usage[] = "[OPTIONS] SERVICE",
			  desc[] = "Revert changes to a service's configuration";
	struct cli_service_args a = {.update = true, .rollback = true};
	struct cli_opts p;
	cli_opts_init(&p, rollback_opts, argc, argv, false);
	int id;
	while ((id = cli_opts_next(&p)) != 0) {
		if (id == 'd') {
			a.detach = cli_opts_bool(&p);
		} else if (id == 'q') {
			a.quiet = cli_opts_bool(&p);
		} else {
			return cli_opts_fail(ctx, &p, id, usage, desc);
		}
	}
	if (p.npos != 1)
		return cli_opts_args_fail(ctx, &p, usage, desc, "requires exactly 1 argument");
	int r = strv_push(&a.pos, p.pos[0]);
	a.npos = 1;
	cli_opts_done(&p);
	if (r < 0)
		return cli_oom();
	r = service_update_args(ctx, &a);
	cli_service_args_done(&a);
	return r;
}

static const struct cli_opt scale_opts[] = {
	{'d', "detach", 'd', CLI_OPT_BOOL, NULL,
	 "Exit immediately instead of waiting for the service to converge"},
	{0},
};

static int service_scale(struct cli_ctx *ctx, int argc, char **argv)
{
	static const char usage[] = "SERVICE=REPLICAS [SERVICE=REPLICAS...]",
			  desc[] = "Scale one or multiple replicated services";
	bool detach = false;
	struct cli_opts p;
	cli_opts_init(&p, scale_opts, argc, argv, false);
	int id;
	while ((id = cli_opts_next(&p)) != 0) {
		if (id == 'd') {
			detach = cli_opts_bool(&p);
		} else {
			return cli_opts_fail(ctx, &p, id, usage, desc);
		}
	}
	if (p.npos < 1)
		return cli_opts_args_fail(ctx, &p, usage, desc, "requires at least 1 argument");
	/* Every argument is checked before anything is scaled. */
	char err[512];
	for (int i = 0; i < p.npos; i++) {
		char *n = NULL;
		uint64_t v;
		if (cli_service_scale_parse(p.pos[i], &n, &v, err, sizeof(err)) < 0) {
			cli_opts_done(&p);
			return cli_usage_error(ctx, err);
		}
		free(n);
	}
	int status = 0;
	_cleanup_json_ json_t *scaled = json_array();
	for (int i = 0; scaled && i < p.npos; i++) {
		_cleanup_free_ char *name = NULL;
		uint64_t replicas = 0;
		cli_service_scale_parse(p.pos[i], &name, &replicas, err, sizeof(err));
		struct shoal_err e = {0};
		_cleanup_json_ json_t *svc = name ? cli_service_get(ctx, name, &e) : NULL;
		if (!svc) {
			cli_print_err(&e);
			status = 1;
			continue;
		}
		json_t *spec = json_object_get(svc, "Spec");
		if (!cli_json_get(spec, "Mode.Replicated")) {
			fprintf(stderr,
				"%s: scale can only be used with replicated or "
				"replicated-job mode\n",
				name);
			status = 1;
			continue;
		}
		_cleanup_json_ json_t *nspec = json_deep_copy(spec);
		json_t *rep = nspec ? cli_json_obj_path(nspec, "Mode.Replicated") : NULL;
		if (!rep ||
		    json_object_set_new(rep, "Replicas", json_integer((json_int_t)replicas)) < 0) {
			status = cli_oom();
			continue;
		}
		if (post_update(ctx, svc, nspec, false, false) != 0) {
			status = 1;
			continue;
		}
		printf("%s scaled to %" PRIu64 "\n", name, replicas);
		fflush(stdout);
		json_array_append_new(
			scaled, json_pack("{s:s,s:s?}", "ID", cli_json_str(svc, "ID"), "StartedAt",
					  cli_json_str(svc, "UpdateStatus.StartedAt")));
	}
	cli_opts_done(&p);
	if (!scaled)
		return cli_oom();
	if (!detach) {
		size_t i;
		json_t *sc;
		json_array_foreach(scaled, i, sc)
		{
			if (cli_service_wait(ctx, cli_json_str(sc, "ID"), CLI_WAIT_UPDATE, false,
					     cli_json_str(sc, "StartedAt")) != 0)
				status = 1;
		}
	}
	return status;
}

/* ls */

static const struct cli_opt ls_opts[] = {
	{'q', "quiet", 'q', CLI_OPT_BOOL, NULL, "Only display IDs"},
	{OPT_FORMAT, "format", 0, CLI_OPT_VALUE, "string",
	 "Format output using a template (fields: .ID .Name .Mode .Replicas .Image .Ports)"},
	{0},
};

/* "*:8080->80/tcp, ..." for ports (PortConfig objects); ingress_only for a service's
 * routed ports, leaving out the host-mode ones and those without a published port. */
static char *ports_text(json_t *ports, bool ingress_only)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	if (!f)
		return NULL;
	size_t i;
	json_t *pt;
	bool first = true;
	json_array_foreach(ports, i, pt)
	{
		const char *mode = cli_json_str(pt, "PublishMode");
		if (ingress_only &&
		    ((mode && strcmp(mode, "ingress") != 0) || !cli_json_int(pt, "PublishedPort")))
			continue;
		fprintf(f, "%s*:%" JSON_INTEGER_FORMAT "->%" JSON_INTEGER_FORMAT "/%s",
			first ? "" : ", ", cli_json_int(pt, "PublishedPort"),
			cli_json_int(pt, "TargetPort"), cli_json_str(pt, "Protocol") ?: "tcp");
		first = false;
	}
	fclose(f);
	return out;
}

static int service_ls(struct cli_ctx *ctx, int argc, char **argv)
{
	static const char usage[] = "[OPTIONS]", desc[] = "List services";
	bool quiet = false;
	_cleanup_free_ char *fmt = NULL;
	int r = cli_ls_parse(ctx, argc, argv, ls_opts, usage, desc, &quiet, &fmt);
	if (r)
		return r == CLI_OPT_HELP ? 0 : r;
	_cleanup_json_ json_t *list = cli_list_get(ctx, "/services?status=true", "service");
	if (!list)
		return 1;
	struct shoal_err e = {0};
	if (quiet) {
		size_t i;
		json_t *s;
		json_array_foreach(list, i, s) printf("%s\n", cli_json_str(s, "ID") ?: "");
		return 0;
	}
	/* Counts from the tasks when the daemon gives no ServiceStatus. */
	_cleanup_json_ json_t *tasks = NULL;
	size_t i;
	json_t *s;
	json_array_foreach(list, i, s)
	{
		if (!cli_json_get(s, "ServiceStatus") && !tasks) {
			tasks = cli_service_tasks_get(ctx, NULL, false, NULL, &e);
			if (!tasks) {
				cli_print_err(&e);
				return 1;
			}
		}
	}
	struct cli_table *t = cli_table_new(6);
	if (!t)
		return cli_oom();
	static const char *const head[] = {"ID", "NAME", "MODE", "REPLICAS", "IMAGE", "PORTS"};
	cli_table_add(t, head);
	int status = 0;
	json_array_foreach(list, i, s)
	{
		bool global = cli_json_get(s, "Spec.Mode.Global") != NULL;
		json_int_t running = cli_json_int(s, "ServiceStatus.RunningTasks");
		json_int_t desired = cli_json_int(s, "ServiceStatus.DesiredTasks");
		if (!cli_json_get(s, "ServiceStatus")) {
			running = desired = 0;
			size_t k;
			json_t *tk;
			json_array_foreach(tasks, k, tk)
			{
				const char *sid = cli_json_str(tk, "ServiceID");
				if (!sid || strcmp(sid, cli_json_str(s, "ID") ?: "") != 0 ||
				    !cli_task_desired_running(tk))
					continue;
				desired++;
				running += strcmp(cli_json_str(tk, "Status.State") ?: "",
						  "running") == 0;
			}
			if (!global)
				desired = cli_json_int(s, "Spec.Mode.Replicated.Replicas");
		}
		char idb[80], img[512], reps[96];
		cli_id_trunc(cli_json_str(s, "ID"), true, idb, sizeof(idb));
		image_name(cli_json_str(s, "Spec.TaskTemplate.ContainerSpec.Image"), true, img,
			   sizeof(img));
		json_int_t maxr = cli_json_int(s, "Spec.TaskTemplate.Placement.MaxReplicas");
		if (!global && maxr > 0)
			snprintf(reps, sizeof(reps),
				 "%" JSON_INTEGER_FORMAT "/%" JSON_INTEGER_FORMAT
				 " (max %" JSON_INTEGER_FORMAT " per node)",
				 running, desired, maxr);
		else
			snprintf(reps, sizeof(reps),
				 "%" JSON_INTEGER_FORMAT "/%" JSON_INTEGER_FORMAT, running,
				 desired);
		json_t *pj = cli_json_get(s, "Endpoint.Ports");
		_cleanup_free_ char *ports =
			ports_text(pj ? pj : cli_json_get(s, "Spec.EndpointSpec.Ports"), true);
		const char *cells[] = {idb,
				       cli_json_str(s, "Spec.Name") ?: "",
				       global ? "global" : "replicated",
				       reps,
				       img,
				       ports ?: ""};
		if (fmt) {
			_cleanup_json_ json_t *row =
				json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "ID", cells[0], "Name",
					  cells[1], "Mode", cells[2], "Replicas", cells[3], "Image",
					  cells[4], "Ports", cells[5]);
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

/* ps */

static const struct cli_opt ps_opts[] = {
	{'q', "quiet", 'q', CLI_OPT_BOOL, NULL, "Only display task IDs"},
	{OPT_NO_TRUNC, "no-trunc", 0, CLI_OPT_BOOL, NULL, "Do not truncate output"},
	{'f', "filter", 'f', CLI_OPT_VALUE, "filter",
	 "Filter output based on conditions provided (desired-state=running, node=ID, ...)"},
	{0},
};

struct task_row {
	json_t *task;
	const char *service_name;
	char name[160];
	json_int_t slot;
};

static int task_row_cmp(const void *a, const void *b)
{
	const struct task_row *x = a, *y = b;
	int c = strcmp(x->service_name, y->service_name);
	if (c)
		return c;
	if (x->slot != y->slot)
		return x->slot < y->slot ? -1 : 1;
	c = strcmp(x->name, y->name);
	if (c)
		return c;
	/* Newest first within one slot. */
	return cli_task_newer(x->task, y->task) ? -1 : cli_task_newer(y->task, x->task) ? 1 : 0;
}

static const char *lookup_field(json_t *list, const char *id, const char *path)
{
	size_t i;
	json_t *o;
	json_array_foreach(list, i, o)
	{
		const char *oid = cli_json_str(o, "ID");
		if (oid && id && strcmp(oid, id) == 0)
			return cli_json_str(o, path);
	}
	return NULL;
}

char *cli_service_ps_render(json_t *tasks, json_t *services, json_t *nodes, bool trunc, int64_t now)
{
	size_t n = json_array_size(tasks);
	_cleanup_free_ struct task_row *rows = calloc(n + 1, sizeof(*rows));
	struct cli_table *t = cli_table_new(8);
	if (!rows || !t) {
		cli_table_free(t);
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		json_t *task = json_array_get(tasks, i);
		struct task_row *r = &rows[i];
		r->task = task;
		const char *sid = cli_json_str(task, "ServiceID");
		r->service_name = lookup_field(services, sid, "Spec.Name");
		if (!r->service_name)
			r->service_name = sid ?: "";
		r->slot = cli_json_int(task, "Slot");
		if (r->slot > 0)
			snprintf(r->name, sizeof(r->name), "%s.%" JSON_INTEGER_FORMAT,
				 r->service_name, r->slot);
		else
			snprintf(r->name, sizeof(r->name), "%s.%s", r->service_name,
				 cli_json_str(task, "NodeID") ?: "");
	}
	qsort(rows, n, sizeof(*rows), task_row_cmp);
	static const char *const head[] = {
		"ID", "NAME", "IMAGE", "NODE", "DESIRED STATE", "CURRENT STATE", "ERROR", "PORTS"};
	cli_table_add(t, head);
	for (size_t i = 0; i < n; i++) {
		json_t *task = rows[i].task;
		char idb[80], name[256], img[512], desired[32], current[160], ago[64];
		char errb[300] = "";
		cli_id_trunc(cli_json_str(task, "ID"), trunc, idb, sizeof(idb));
		bool history = i > 0 && strcmp(rows[i - 1].name, rows[i].name) == 0;
		if (trunc)
			snprintf(name, sizeof(name), "%s%s", history ? " \\_ " : "", rows[i].name);
		else
			snprintf(name, sizeof(name), "%s%s.%s", history ? " \\_ " : "",
				 rows[i].name, cli_json_str(task, "ID") ?: "");
		image_name(cli_json_str(task, "Spec.ContainerSpec.Image"), trunc, img, sizeof(img));
		const char *node_id = cli_json_str(task, "NodeID");
		const char *node = lookup_field(nodes, node_id, "Description.Hostname");
		cli_title(cli_json_str(task, "DesiredState"), desired, sizeof(desired));
		char st[32];
		cli_title(cli_json_str(task, "Status.State"), st, sizeof(st));
		int64_t ts = cli_time_parse(cli_json_str(task, "Status.Timestamp"));
		cli_human_duration(ts ? now - ts : 0, ago, sizeof(ago));
		for (char *c = ago; *c; c++)
			*c = (char)tolower((unsigned char)*c);
		snprintf(current, sizeof(current), "%s %s ago", st, ago);
		const char *e = cli_json_str(task, "Status.Err");
		if (e && *e) {
			_cleanup_free_ char *cut = cli_ellipsis(e, trunc ? 30 : (size_t)-1);
			snprintf(errb, sizeof(errb), "\"%s\"", cut ? cut : e);
		}
		_cleanup_free_ char *ports =
			ports_text(cli_json_get(task, "Status.PortStatus.Ports"), false);
		const char *cells[] = {idb,	   node ?: node_id ?: "", desired, current, errb,
				       ports ?: ""};
		const char *row[] = {cells[0], name,	 img,	   cells[1],
				     cells[2], cells[3], cells[4], cells[5]};
		cli_table_add(t, row);
	}
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	if (f) {
		cli_table_print(t, f);
		fclose(f);
	}
	cli_table_free(t);
	return out;
}

static int service_ps(struct cli_ctx *ctx, int argc, char **argv)
{
	static const char usage[] = "[OPTIONS] SERVICE [SERVICE...]",
			  desc[] = "List the tasks of one or more services";
	bool quiet = false, trunc = true;
	_cleanup_json_ json_t *filters = json_object();
	if (!filters)
		return cli_oom();
	struct cli_opts p;
	cli_opts_init(&p, ps_opts, argc, argv, false);
	int id;
	while ((id = cli_opts_next(&p)) != 0) {
		if (id == 'q') {
			quiet = cli_opts_bool(&p);
		} else if (id == OPT_NO_TRUNC) {
			trunc = !cli_opts_bool(&p);
		} else if (id == 'f') {
			const char *eq = strchr(p.value, '=');
			_cleanup_free_ char *k =
				eq ? strndup(p.value, (size_t)(eq - p.value)) : NULL;
			if (!eq || !k ||
			    json_object_set_new(cli_json_obj(filters, k), eq + 1, json_true())) {
				cli_opts_done(&p);
				return cli_usage_error(
					ctx, "bad format of filter (expected name=value)");
			}
		} else {
			return cli_opts_fail(ctx, &p, id, usage, desc);
		}
	}
	if (p.npos < 1)
		return cli_opts_args_fail(ctx, &p, usage, desc, "requires at least 1 argument");
	_cleanup_json_ json_t *services = json_array(), *all = json_array();
	int status = 0;
	struct shoal_err e = {0};
	for (int i = 0; services && all && i < p.npos; i++) {
		json_t *svc = cli_service_get(ctx, p.pos[i], &e);
		if (!svc) {
			if (e.status == 404)
				fprintf(stderr, "no such service: %s\n", p.pos[i]);
			else
				cli_print_err(&e);
			status = 1;
			continue;
		}
		json_array_append_new(services, svc);
		json_t *tasks =
			cli_service_tasks_get(ctx, cli_json_str(svc, "ID"), false, filters, &e);
		if (!tasks) {
			cli_print_err(&e);
			status = 1;
			continue;
		}
		json_array_extend(all, tasks);
		json_decref(tasks);
	}
	cli_opts_done(&p);
	if (!services || !all)
		return cli_oom();
	if (json_array_size(services) == 0)
		return status;
	if (quiet) {
		size_t i;
		json_t *t;
		json_array_foreach(all, i, t) printf("%s\n", cli_json_str(t, "ID") ?: "");
		return status;
	}
	/* Hostnames for the NODE column; IDs stand in when nodes cannot be listed. */
	_cleanup_json_ json_t *nodes = NULL;
	struct shoal_err ne = {0};
	if (cli_call_json(ctx, "GET", "/nodes", NULL, NULL, &nodes, &ne) < 0)
		nodes = NULL;
	_cleanup_free_ char *out = cli_service_ps_render(all, services, nodes, trunc, time(NULL));
	if (!out)
		return cli_oom();
	fputs(out, stdout);
	return status;
}

/* inspect */

static void pretty_duration(const char *label, json_t *o, const char *path)
{
	json_t *v = cli_json_get(o, path);
	if (!v)
		return;
	char d[40];
	spec_format_duration((int64_t)json_integer_value(v), d);
	printf("%s%s\n", label, d);
}

static void pretty_update_config(const char *title_s, json_t *uc)
{
	if (!uc)
		return;
	printf("%s:\n", title_s);
	printf(" Parallelism:\t%" JSON_INTEGER_FORMAT "\n", cli_json_int(uc, "Parallelism"));
	if (cli_json_int(uc, "Delay"))
		pretty_duration(" Delay:\t\t", uc, "Delay");
	printf(" On failure:\t%s\n", cli_json_str(uc, "FailureAction") ?: "pause");
	pretty_duration(" Monitoring Period: ", uc, "Monitor");
	printf(" Max failure ratio: %g\n", json_number_value(cli_json_get(uc, "MaxFailureRatio")));
	printf(" Update order:      %s\n", cli_json_str(uc, "Order") ?: "stop-first");
}

static void pretty_strings(const char *label, json_t *arr, const char *sep)
{
	if (!json_array_size(arr))
		return;
	printf("%s", label);
	size_t i;
	json_t *v;
	json_array_foreach(arr, i, v) printf("%s%s", i ? sep : "", json_string_value(v) ?: "");
	printf("\n");
}

static void pretty_labels(const char *label, json_t *labels)
{
	if (!json_object_size(labels))
		return;
	printf("%s\n", label);
	const char *k;
	json_t *v;
	json_object_foreach(labels, k, v) printf(" %s=%s\n", k, json_string_value(v) ?: "");
}

static void pretty_service(json_t *s, size_t index)
{
	json_t *spec = json_object_get(s, "Spec");
	json_t *tt = json_object_get(spec, "TaskTemplate");
	json_t *cs = json_object_get(tt, "ContainerSpec");
	printf("\nID:\t\t%s\n", cli_json_str(s, "ID") ?: "");
	printf("Name:\t\t%s\n", cli_json_str(spec, "Name") ?: "");
	pretty_labels("Labels:", json_object_get(spec, "Labels"));
	if (cli_json_get(spec, "Mode.Global")) {
		printf("Service Mode:\tGlobal\n");
	} else {
		printf("Service Mode:\tReplicated\n");
		printf(" Replicas:\t%" JSON_INTEGER_FORMAT "\n",
		       cli_json_int(spec, "Mode.Replicated.Replicas"));
	}
	if (cli_json_get(s, "UpdateStatus")) {
		printf("UpdateStatus:\n");
		printf(" State:\t\t%s\n", cli_json_str(s, "UpdateStatus.State") ?: "");
		if (cli_json_str(s, "UpdateStatus.StartedAt"))
			printf(" Started:\t%s\n", cli_json_str(s, "UpdateStatus.StartedAt"));
		if (cli_json_str(s, "UpdateStatus.CompletedAt"))
			printf(" Completed:\t%s\n", cli_json_str(s, "UpdateStatus.CompletedAt"));
		printf(" Message:\t%s\n", cli_json_str(s, "UpdateStatus.Message") ?: "");
	}
	printf("Placement:\n");
	pretty_strings(" Constraints:\t", cli_json_get(tt, "Placement.Constraints"), ", ");
	size_t i;
	json_t *v;
	if (json_array_size(cli_json_get(tt, "Placement.Preferences"))) {
		printf(" Preferences:\n");
		json_array_foreach(cli_json_get(tt, "Placement.Preferences"), i, v)
			printf("  Spread:\t%s\n", cli_json_str(v, "Spread.SpreadDescriptor") ?: "");
	}
	if (cli_json_int(tt, "Placement.MaxReplicas"))
		printf(" Max Replicas Per Node:\t%" JSON_INTEGER_FORMAT "\n",
		       cli_json_int(tt, "Placement.MaxReplicas"));
	pretty_update_config("UpdateConfig", json_object_get(spec, "UpdateConfig"));
	pretty_update_config("RollbackConfig", json_object_get(spec, "RollbackConfig"));
	printf("\nContainerSpec:\n");
	printf(" Image:\t\t%s\n", cli_json_str(cs, "Image") ?: "");
	pretty_strings(" Command:\t", json_object_get(cs, "Command"), " ");
	pretty_strings(" Args:\t\t", json_object_get(cs, "Args"), " ");
	pretty_strings(" Env:\t\t", json_object_get(cs, "Env"), " ");
	if (cli_json_str(cs, "Dir"))
		printf(" Dir:\t\t%s\n", cli_json_str(cs, "Dir"));
	if (cli_json_str(cs, "User"))
		printf(" User:\t\t%s\n", cli_json_str(cs, "User"));
	if (cli_json_get(cs, "Healthcheck.Test"))
		pretty_strings(" Healthcheck:\t", cli_json_get(cs, "Healthcheck.Test"), " ");
	pretty_strings(" Capabilities Add:\t", json_object_get(cs, "CapabilityAdd"), ", ");
	pretty_strings(" Capabilities Drop:\t", json_object_get(cs, "CapabilityDrop"), ", ");
	json_t *res = json_object_get(tt, "Resources");
	if (cli_json_get(res, "Limits") || cli_json_get(res, "Reservations")) {
		printf("Resources:\n");
		const char *const groups[] = {"Reservations", "Limits"};
		for (size_t g = 0; g < 2; g++) {
			json_t *o = json_object_get(res, groups[g]);
			if (!cli_json_int(o, "NanoCPUs") && !cli_json_int(o, "MemoryBytes") &&
			    !cli_json_int(o, "Pids"))
				continue;
			printf(" %s:\n", groups[g]);
			if (cli_json_int(o, "NanoCPUs"))
				printf("  CPU:\t\t%g\n", (double)cli_json_int(o, "NanoCPUs") / 1e9);
			if (cli_json_int(o, "MemoryBytes")) {
				char b[32];
				cli_bytes_size((double)cli_json_int(o, "MemoryBytes"), b,
					       sizeof(b));
				printf("  Memory:\t%s\n", b);
			}
			if (cli_json_int(o, "Pids"))
				printf("  PIDs:\t\t%" JSON_INTEGER_FORMAT "\n",
				       cli_json_int(o, "Pids"));
		}
	}
	if (json_array_size(json_object_get(tt, "Networks"))) {
		printf("Networks:");
		json_array_foreach(json_object_get(tt, "Networks"), i, v)
			printf(" %s", cli_json_str(v, "Target") ?: "");
		printf("\n");
	}
	printf("Endpoint Mode:\t%s\n", cli_json_str(spec, "EndpointSpec.Mode") ?: "vip");
	json_t *ports = cli_json_get(s, "Endpoint.Ports");
	if (!ports)
		ports = cli_json_get(spec, "EndpointSpec.Ports");
	if (json_array_size(ports)) {
		printf("Ports:\n");
		json_array_foreach(ports, i, v)
		{
			printf(" PublishedPort = %" JSON_INTEGER_FORMAT "\n",
			       cli_json_int(v, "PublishedPort"));
			printf("  Protocol = %s\n", cli_json_str(v, "Protocol") ?: "tcp");
			printf("  TargetPort = %" JSON_INTEGER_FORMAT "\n",
			       cli_json_int(v, "TargetPort"));
			printf("  PublishMode = %s\n", cli_json_str(v, "PublishMode") ?: "ingress");
		}
	}
	json_array_foreach(cli_json_get(s, "Endpoint.VirtualIPs"), i, v)
	{
		if (i == 0)
			printf("Virtual IPs:\n");
		printf(" %s: %s\n", cli_json_str(v, "NetworkID") ?: "",
		       cli_json_str(v, "Addr") ?: "");
	}
	printf("\n");
}

static int service_inspect(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct cli_inspect_kind kind = {
		.usage = "[OPTIONS] SERVICE [SERVICE...]",
		.desc = "Display detailed information on one or more services",
		.noun = "service",
		.get = cli_service_get,
		.pretty = pretty_service,
	};
	return cli_inspect_swarm(ctx, argc, argv, &kind);
}

/* rm */

static const struct cli_opt no_opts[] = {{0}};

static int service_rm(struct cli_ctx *ctx, int argc, char **argv)
{
	static const char usage[] = "SERVICE [SERVICE...]", desc[] = "Remove one or more services";
	struct cli_opts p;
	cli_opts_init(&p, no_opts, argc, argv, false);
	int id;
	if ((id = cli_opts_next(&p)) != 0)
		return cli_opts_fail(ctx, &p, id, usage, desc);
	if (p.npos < 1)
		return cli_opts_args_fail(ctx, &p, usage, desc, "requires at least 1 argument");
	int r = cli_each_request(ctx, &p, "/services", "DELETE", NULL, false);
	cli_opts_done(&p);
	return r;
}

/* logs */

static const struct cli_opt logs_opts[] = {
	CLI_LOGS_OPTS,
	{0},
};

static int service_logs(struct cli_ctx *ctx, int argc, char **argv)
{
	static const char usage[] = "[OPTIONS] SERVICE",
			  desc[] = "Fetch the logs of a service or task";
	bool follow = false, ts = false;
	_cleanup_free_ char *tail = strdup("all");
	struct cli_opts p;
	cli_opts_init(&p, logs_opts, argc, argv, false);
	int id;
	while ((id = cli_opts_next(&p)) != 0) {
		if (id == 'f') {
			follow = cli_opts_bool(&p);
		} else if (id == 't') {
			ts = cli_opts_bool(&p);
		} else if (id == 'n') {
			free(tail);
			tail = cli_escape(p.value);
		} else {
			return cli_opts_fail(ctx, &p, id, usage, desc);
		}
	}
	if (p.npos != 1)
		return cli_opts_args_fail(ctx, &p, usage, desc, "requires exactly 1 argument");
	char suffix[128];
	snprintf(suffix, sizeof(suffix), "/logs?stdout=1&stderr=1%s&tail=%s%s",
		 follow ? "&follow=1" : "", tail ? tail : "all", ts ? "&timestamps=1" : "");
	_cleanup_free_ char *path = cli_obj_path("/services", p.pos[0], suffix);
	cli_opts_done(&p);
	if (!path || !tail)
		return cli_oom();
	return cli_logs_stream(ctx, path, false);
}

const struct cli_command cli_service_commands[] = {
	{"create", service_create, "Create a new service"},
	{"inspect", service_inspect, "Display detailed information on one or more services"},
	{"logs", service_logs, "Fetch the logs of a service or task"},
	{"ls", service_ls, "List services"},
	{"list", service_ls, NULL},
	{"ps", service_ps, "List the tasks of one or more services"},
	{"rm", service_rm, "Remove one or more services"},
	{"remove", service_rm, NULL},
	{"rollback", service_rollback, "Revert changes to a service's configuration"},
	{"scale", service_scale, "Scale one or multiple replicated services"},
	{"update", service_update, "Update a service"},
	{NULL, NULL, NULL},
};

int cli_cmd_service(struct cli_ctx *ctx, int argc, char **argv)
{
	return cli_dispatch(ctx, "shoal service", cli_service_commands, argc, argv);
}
