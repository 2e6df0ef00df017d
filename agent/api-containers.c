// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "agent/api.h"
#include "agent/container.h"
#include "agent/stream.h"
#include "lib/cleanup.h"
#include "lib/util.h"

static struct container *find_or_reply(struct api_req *r)
{
	struct shoal_err err = {0};
	struct container *c = container_find(r->agent, r->params[0], &err);
	if (!c)
		api_reply_err(r, &err);
	return c;
}

void api_container_create(struct api_req *r)
{
	json_t *body = api_body_json(r, false);
	if (!body)
		return;
	struct shoal_err err = {0};
	struct container *c;
	json_t *warnings = NULL;
	int ret = container_create(r->agent, api_query(r, "name"), body, &c, &warnings, &err);
	json_decref(body);
	if (ret < 0) {
		api_reply_err(r, &err);
		return;
	}
	api_reply_json(r, 201, json_pack("{s:s, s:o}", "Id", c->id, "Warnings", warnings));
}

static bool m_id(const char *v, void *c)
{
	return str_has_prefix(((struct container *)c)->id, v);
}

static bool m_name(const char *v, void *c)
{
	char n[160];
	snprintf(n, sizeof(n), "/%s", ((struct container *)c)->name);
	return api_filter_regex(v, n);
}

static bool m_label(const char *v, void *c)
{
	return api_filter_label(json_object_get(((struct container *)c)->config, "Labels"), v);
}

static bool m_status(const char *v, void *c)
{
	return strcmp(v, container_status(c)) == 0;
}

static bool m_exited(const char *v, void *c)
{
	struct container *ct = c;
	char code[16];
	snprintf(code, sizeof(code), "%d", ct->exit_code);
	return ct->state == CONTAINER_EXITED && strcmp(v, code) == 0;
}

static bool m_ancestor(const char *v, void *c)
{
	struct container *ct = c;
	const char *id = ct->image_id ? ct->image_id : "";
	const char *hex = str_has_prefix(id, "sha256:") ? id + 7 : id;
	const char *vh = str_has_prefix(v, "sha256:") ? v + 7 : v;
	return (ct->image_ref && strcmp(ct->image_ref, v) == 0) ||
	       (strlen(vh) >= 4 && str_has_prefix(hex, vh));
}

static bool m_is_task(const char *v, void *c)
{
	bool task = json_object_get(json_object_get(((struct container *)c)->config, "Labels"),
				    "com.docker.swarm.task.id") != NULL;
	return strcmp(v, "true") == 0 ? task : !task;
}

static int by_created_desc(const void *a, const void *b)
{
	const struct container *x = *(struct container *const *)a,
			       *y = *(struct container *const *)b;
	return x->created_ns < y->created_ns ? 1 : x->created_ns > y->created_ns ? -1 : 0;
}

static void list_containers(struct api_req *r, json_t *f, bool all, int64_t limit);

/* GET /containers/json: newest first, as Docker lists them; all, limit (the
 * newest N, stopped ones included) and filters (id, name, label, status,
 * exited, ancestor, is-task; anything else is refused). */
void api_container_list(struct api_req *r)
{
	static const char *const keys[] = {"id",     "name",	 "label",  "status",
					   "exited", "ancestor", "is-task"};
	bool all = api_query_bool(r, "all", false);
	int64_t limit;
	if (api_query_int(r, "limit", -1, &limit) < 0)
		return;
	if (limit > 0)
		all = true;
	json_t *f = api_filters(r, keys, ARRAY_SIZE(keys));
	if (!f)
		return;
	list_containers(r, f, all, limit);
	json_decref(f);
}

static void list_containers(struct api_req *r, json_t *f, bool all, int64_t limit)
{
	static const char *const states[] = {"created", "restarting", "running", "removing",
					     "paused",	"exited",     "dead"};
	size_t si;
	json_t *sv;
	json_array_foreach(json_object_get(f, "status"), si, sv)
	{
		bool ok = false;
		for (size_t k = 0; k < ARRAY_SIZE(states); k++)
			ok |= strcmp(json_string_value(sv), states[k]) == 0;
		if (!ok) {
			api_reply_error(
				r, 400,
				"filters: status %s: expected created, restarting, running, "
				"removing, paused, exited or dead",
				json_string_value(sv));
			return;
		}
	}
	/* a status or exited filter looks at stopped containers too, as Docker's */
	if (json_object_get(f, "status") || json_object_get(f, "exited"))
		all = true;
	size_t n = 0;
	for (struct container *c = r->agent->containers; c; c = c->next)
		n++;
	_cleanup_free_ struct container **v = calloc(n ? n : 1, sizeof(*v));
	if (!v) {
		api_reply_error(r, 500, "out of memory");
		return;
	}
	n = 0;
	for (struct container *c = r->agent->containers; c; c = c->next)
		v[n++] = c;
	qsort(v, n, sizeof(*v), by_created_desc);
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++) {
		struct container *c = v[i];
		if (!all && c->state != CONTAINER_RUNNING && !c->restarting)
			continue;
		if (!api_filter_match(f, "id", m_id, c) ||
		    !api_filter_match(f, "name", m_name, c) ||
		    !api_filter_match(f, "label", m_label, c) ||
		    !api_filter_match(f, "status", m_status, c) ||
		    !api_filter_match(f, "exited", m_exited, c) ||
		    !api_filter_match(f, "ancestor", m_ancestor, c) ||
		    !api_filter_match(f, "is-task", m_is_task, c))
			continue;
		json_array_append_new(arr, container_summary_json(c));
		if (limit > 0 && (int64_t)json_array_size(arr) >= limit)
			break;
	}
	api_reply_json(r, 200, arr);
}

void api_container_inspect(struct api_req *r)
{
	struct container *c = find_or_reply(r);
	if (c)
		api_reply_json(r, 200, container_inspect_json(c));
}

void api_container_start(struct api_req *r)
{
	struct container *c = find_or_reply(r);
	if (c)
		container_start_by_user(c, r);
}

void api_container_stop(struct api_req *r)
{
	struct container *c = find_or_reply(r);
	if (!c)
		return;
	/* the container's StopTimeout, else Docker's 10 s, unless the request says */
	json_t *st = json_object_get(c->config, "StopTimeout");
	int64_t t, def = json_is_integer(st) && json_integer_value(st) >= 0 ? json_integer_value(st)
									    : 10;
	if (api_query_int(r, "t", def, &t) < 0)
		return;
	const char *sig = api_query(r, "signal");
	if (sig && *sig) {
		int s;
		if (parse_signal(sig, &s) < 0) {
			api_reply_error(r, 400, "invalid signal: %s", sig);
			return;
		}
		json_object_set_new(c->config, "StopSignal", json_string(sig));
	}
	container_stop(c, t, r);
}

void api_container_kill(struct api_req *r)
{
	struct container *c = find_or_reply(r);
	if (!c)
		return;
	const char *s = api_query(r, "signal");
	int sig = SIGKILL;
	if (s && *s && parse_signal(s, &sig) < 0) {
		api_reply_error(r, 400, "invalid signal: %s", s);
		return;
	}
	struct shoal_err err = {0};
	/* waiting to restart: the kill cancels the restart, as Docker's does */
	if (container_restart_stop(c, sig)) {
		api_reply_empty(r, 204);
		return;
	}
	if (container_signal(c, sig, &err) < 0) {
		api_reply_err(r, &err);
		return;
	}
	api_reply_empty(r, 204);
}

void api_container_wait(struct api_req *r)
{
	struct container *c = find_or_reply(r);
	if (!c)
		return;
	const char *cond = api_query(r, "condition");
	enum wait_condition wc = WAIT_NOT_RUNNING;
	if (cond && *cond) {
		if (strcmp(cond, "next-exit") == 0)
			wc = WAIT_NEXT_EXIT;
		else if (strcmp(cond, "removed") == 0)
			wc = WAIT_REMOVED;
		else if (strcmp(cond, "not-running") != 0) {
			api_reply_error(
				r, 400,
				"invalid condition %s: use not-running, next-exit or removed",
				cond);
			return;
		}
	}
	/* The head goes out now, the body at the exit, as Docker does: the docker
	 * CLI waits for this head before it sends the start. */
	if (r->req)
		api_stream_start(r, 200, "application/json");
	container_wait(c, wc, r);
}

void api_container_delete(struct api_req *r)
{
	struct container *c = find_or_reply(r);
	if (!c)
		return;
	c->remove_volumes = c->remove_volumes || api_query_bool(r, "v", false);
	container_remove(c, api_query_bool(r, "force", false), r);
}

void api_container_attach(struct api_req *r)
{
	struct container *c = find_or_reply(r);
	if (c)
		stream_attach(c, r);
}

static int parse_size_query(struct api_req *r, int *h, int *w)
{
	int64_t hh, ww;
	if (api_query_int(r, "h", 0, &hh) < 0 || api_query_int(r, "w", 0, &ww) < 0)
		return -EINVAL;
	if (hh <= 0 || ww <= 0 || hh > 65535 || ww > 65535) {
		api_reply_error(r, 400, "h and w must be positive numbers of rows and columns");
		return -EINVAL;
	}
	*h = (int)hh;
	*w = (int)ww;
	return 0;
}

void api_container_resize(struct api_req *r)
{
	struct container *c = find_or_reply(r);
	int h, w;
	if (!c || parse_size_query(r, &h, &w) < 0)
		return;
	struct shoal_err err = {0};
	if (stream_resize(c, h, w, &err) < 0) {
		api_reply_err(r, &err);
		return;
	}
	api_reply_empty(r, 200);
}

void api_exec_create(struct api_req *r)
{
	struct agent *a = r->agent;
	struct container *c = find_or_reply(r);
	if (!c)
		return;
	json_t *body = api_body_json(r, false);
	if (!body)
		return;
	struct shoal_err err = {0};
	_cleanup_strv_ char **cmd = NULL, **env = NULL;
	const char *s;
	bool b;
	int ret = json_get_strv(body, "Cmd", false, &cmd, &err);
	if (ret == -ENOENT || (ret == 0 && !cmd[0])) {
		json_decref(body);
		api_reply_error(r, 400, "Cmd: required, the command to run in the container");
		return;
	}
	const char *strs[] = {"User", "WorkingDir"};
	const char *bools[] = {"Tty",	       "AttachStdin", "AttachStdout",
			       "AttachStderr", "Privileged",  "Detach"};
	for (size_t i = 0; ret >= 0 && i < ARRAY_SIZE(strs); i++)
		if ((ret = json_get_string(body, strs[i], &s, &err)) == -ENOENT)
			ret = 0;
	for (size_t i = 0; ret >= 0 && i < ARRAY_SIZE(bools); i++)
		if ((ret = json_get_bool(body, bools[i], &b, &err)) == -ENOENT)
			ret = 0;
	if (ret >= 0 && (ret = json_get_strv(body, "Env", false, &env, &err)) == -ENOENT)
		ret = 0;
	if (ret < 0) {
		json_decref(body);
		api_reply_err(r, &err);
		return;
	}
	if (c->state != CONTAINER_RUNNING) {
		json_decref(body);
		api_reply_error(r, 409, "Container %s is not running", c->id);
		return;
	}
	if (c->paused) {
		json_decref(body);
		api_reply_error(r, 409, "Container %s is paused, unpause the container before exec",
				c->id);
		return;
	}
	exec_gc(a);
	unsigned n = exec_count(a, c->id);
	if (n >= EXEC_MAX_PER_CONTAINER) {
		json_decref(body);
		api_reply_error(
			r, 409,
			"container %.12s already has %u exec instances, the limit per container; "
			"start them or wait for them to expire (5 minutes after they were created or "
			"finished)",
			c->id, n);
		return;
	}
	n = exec_count(a, NULL);
	if (n >= AGENT_MAX_EXECS) {
		json_decref(body);
		api_reply_error(
			r, 409,
			"the node has %u exec instances, its limit; wait for some to finish "
			"or expire (5 minutes after they were created or finished)",
			n);
		return;
	}
	struct exec_inst *ex = calloc(1, sizeof(*ex));
	if (!ex || random_hex_id(ex->id) < 0) {
		free(ex);
		json_decref(body);
		api_reply_error(r, 500, "out of memory");
		return;
	}
	snprintf(ex->container_id, sizeof(ex->container_id), "%s", c->id);
	ex->config = body;
	ex->created_ns = now_ns();
	ex->next = a->execs;
	a->execs = ex;
	api_reply_json(r, 201, json_pack("{s:s}", "Id", ex->id));
}

static struct exec_inst *exec_or_reply(struct api_req *r)
{
	struct exec_inst *ex = exec_find(r->agent, r->params[0]);
	if (!ex)
		api_reply_error(r, 404, "No such exec instance: %s", r->params[0]);
	return ex;
}

void api_exec_start(struct api_req *r)
{
	struct exec_inst *ex = exec_or_reply(r);
	if (!ex)
		return;
	json_t *body = api_body_json(r, true);
	if (!body)
		return;
	bool detach = false;
	struct shoal_err err = {0};
	if (json_get_bool(body, "Detach", &detach, &err) == -EINVAL) {
		json_decref(body);
		api_reply_err(r, &err);
		return;
	}
	json_decref(body);
	if (ex->started) {
		api_reply_error(r, 409, "exec %s has already been started", ex->id);
		return;
	}
	struct container *c = container_find(r->agent, ex->container_id, &err);
	if (!c) {
		api_reply_err(r, &err);
		return;
	}
	if (c->state != CONTAINER_RUNNING) {
		api_reply_error(r, 409, "Container %s is not running", c->id);
		return;
	}
	stream_exec_start(r->agent, ex, c, detach, r);
}

void api_exec_inspect(struct api_req *r)
{
	struct exec_inst *ex = exec_or_reply(r);
	if (!ex)
		return;
	api_reply_json(
		r, 200,
		json_pack("{s:s, s:s, s:b, s:O, s:o}", "ID", ex->id, "ContainerID",
			  ex->container_id, "Running", ex->running, "ProcessConfig", ex->config,
			  "ExitCode",
			  ex->started && !ex->running ? json_integer(ex->exit_code) : json_null()));
}

void api_exec_resize(struct api_req *r)
{
	struct exec_inst *ex = exec_or_reply(r);
	int h, w;
	if (!ex || parse_size_query(r, &h, &w) < 0)
		return;
	struct shoal_err err = {0};
	if (stream_exec_resize(r->agent, ex, h, w, &err) < 0) {
		api_reply_err(r, &err);
		return;
	}
	api_reply_empty(r, 200);
}
