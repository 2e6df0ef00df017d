// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <signal.h>
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

void api_container_list(struct api_req *r)
{
	bool all = api_query_bool(r, "all", false);
	json_t *arr = json_array();
	for (struct container *c = r->agent->containers; c; c = c->next)
		if (all || c->state == CONTAINER_RUNNING)
			json_array_append_new(arr, container_summary_json(c));
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
		container_start(c, r);
}

void api_container_stop(struct api_req *r)
{
	struct container *c = find_or_reply(r);
	if (!c)
		return;
	int64_t t;
	if (api_query_int(r, "t", 10, &t) < 0)
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
	if (c)
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
