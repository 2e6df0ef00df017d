// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/cleanup.h"
#include "sched/task.h"

static const char *const state_names[TASK_STATE_COUNT] = {
	[TASK_NEW] = "new",	      [TASK_PENDING] = "pending",     [TASK_ASSIGNED] = "assigned",
	[TASK_ACCEPTED] = "accepted", [TASK_PREPARING] = "preparing", [TASK_STARTING] = "starting",
	[TASK_RUNNING] = "running",   [TASK_COMPLETE] = "complete",   [TASK_SHUTDOWN] = "shutdown",
	[TASK_FAILED] = "failed",     [TASK_REJECTED] = "rejected",   [TASK_REMOVE] = "remove",
	[TASK_ORPHANED] = "orphaned",
};

static const char *const health_names[] = {
	[TASK_HEALTH_NONE] = "none",
	[TASK_HEALTH_STARTING] = "starting",
	[TASK_HEALTH_HEALTHY] = "healthy",
	[TASK_HEALTH_UNHEALTHY] = "unhealthy",
};

static const char *const cause_names[ORCH_STOP_CAUSE_COUNT] = {
	[ORCH_STOP_NONE] = "",
	[ORCH_STOP_ENDED] = "ended",
	[ORCH_STOP_NO_RESTART] = "no-restart",
	[ORCH_STOP_UNHEALTHY] = "unhealthy",
	[ORCH_STOP_SCALE_DOWN] = "scale-down",
	[ORCH_STOP_UPDATE] = "update",
	[ORCH_STOP_NODE_DOWN] = "node-down",
	[ORCH_STOP_NODE_DRAIN] = "node-drain",
	[ORCH_STOP_NODE_REMOVED] = "node-removed",
	[ORCH_STOP_NODE_INELIGIBLE] = "node-ineligible",
	[ORCH_STOP_DUPLICATE] = "duplicate",
	[ORCH_STOP_SERVICE_REMOVED] = "service-removed",
};

static int name_lookup(const char *const *names, size_t n, const char *name)
{
	if (!name)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (names[i] && strcmp(names[i], name) == 0)
			return (int)i;
	return -EINVAL;
}

const char *task_state_name(enum task_state s)
{
	if ((unsigned)s >= TASK_STATE_COUNT)
		return NULL;
	return state_names[s];
}

int task_state_from_name(const char *name, enum task_state *ret)
{
	int r = name_lookup(state_names, TASK_STATE_COUNT, name);
	if (r < 0)
		return r;
	*ret = (enum task_state)r;
	return 0;
}

const char *task_health_name(enum task_health h)
{
	if ((unsigned)h >= ARRAY_SIZE(health_names))
		return NULL;
	return health_names[h];
}

int task_health_from_name(const char *name, enum task_health *ret)
{
	int r = name_lookup(health_names, ARRAY_SIZE(health_names), name);
	if (r < 0)
		return r;
	*ret = (enum task_health)r;
	return 0;
}

const char *orch_stop_cause_name(enum orch_stop_cause c)
{
	if ((unsigned)c >= ORCH_STOP_CAUSE_COUNT)
		return NULL;
	return cause_names[c];
}

int orch_stop_cause_from_name(const char *name, enum orch_stop_cause *ret)
{
	int r = name_lookup(cause_names, ORCH_STOP_CAUSE_COUNT, name);
	if (r < 0)
		return r;
	*ret = (enum orch_stop_cause)r;
	return 0;
}

bool task_state_is_terminal(enum task_state s)
{
	return s > TASK_RUNNING && s < TASK_STATE_COUNT;
}

bool task_transition_allowed(enum task_state from, enum task_state to)
{
	if ((unsigned)from >= TASK_STATE_COUNT || (unsigned)to >= TASK_STATE_COUNT)
		return false;
	if (task_state_is_terminal(from) || to <= from)
		return false;
	switch (to) {
	case TASK_REMOVE:
		return false;
	case TASK_FAILED:
	case TASK_COMPLETE:
		return from >= TASK_STARTING;
	case TASK_REJECTED:
		return from < TASK_STARTING;
	default:
		return true;
	}
}

bool task_desired_transition_allowed(enum task_state from, enum task_state to)
{
	if ((unsigned)from >= TASK_STATE_COUNT || to <= from)
		return false;
	return to == TASK_PREPARING || to == TASK_RUNNING || to == TASK_SHUTDOWN ||
	       to == TASK_REMOVE;
}

enum task_state task_error_state(enum task_state current)
{
	return current < TASK_STARTING ? TASK_REJECTED : TASK_FAILED;
}

static void set_msg(char dst[ORCH_MSG_MAX], const char *s)
{
	snprintf(dst, ORCH_MSG_MAX, "%s", s ? s : "");
}

int orch_task_set_state(struct orch_task *t, enum task_state to, int64_t now_ns,
			const char *message, struct shoal_err *err)
{
	if (!task_transition_allowed(t->state, to)) {
		const char *f = task_state_name(t->state), *n = task_state_name(to);
		return shoal_err_set(err, EINVAL, "task %s: no transition from %s to %s", t->id,
				     f ? f : "?", n ? n : "?");
	}
	t->state = to;
	t->state_ns[to] = now_ns;
	if (message)
		set_msg(t->message, message);
	return 0;
}

int orch_task_fail(struct orch_task *t, int64_t now_ns, const char *error, struct shoal_err *err)
{
	int r = orch_task_set_state(t, task_error_state(t->state), now_ns, error, err);
	if (r < 0)
		return r;
	set_msg(t->err, error);
	return 0;
}

int orch_task_set_desired(struct orch_task *t, enum task_state desired, int64_t now_ns,
			  enum orch_stop_cause cause, const char *message, struct shoal_err *err)
{
	if (!task_desired_transition_allowed(t->desired_state, desired)) {
		const char *f = task_state_name(t->desired_state), *n = task_state_name(desired);
		return shoal_err_set(err, EINVAL, "task %s: desired state cannot go from %s to %s",
				     t->id, f ? f : "?", n ? n : "?");
	}
	t->desired_state = desired;
	t->desired_ns = now_ns;
	if (desired > TASK_RUNNING && (t->stop_cause == ORCH_STOP_NONE || cause != ORCH_STOP_NONE))
		t->stop_cause = cause;
	if (message)
		set_msg(t->message, message);
	return 0;
}

int orch_task_copy(struct orch_task *dst, const struct orch_task *src)
{
	int64_t *r = NULL;

	if (src->n_restarts) {
		r = malloc(src->n_restarts * sizeof(*r));
		if (!r)
			return -ENOMEM;
		memcpy(r, src->restarts, src->n_restarts * sizeof(*r));
	}
	*dst = *src;
	dst->restarts = r;
	return 0;
}

void orch_task_clear(struct orch_task *t)
{
	if (!t)
		return;
	free(t->restarts);
	memset(t, 0, sizeof(*t));
}

static int set_int(json_t *o, const char *k, json_int_t v)
{
	return json_object_set_new(o, k, json_integer(v));
}

json_t *orch_task_to_json(const struct orch_task *t)
{
	json_t *o = json_object(), *times = json_object(), *rs = json_array();
	int r = 0;

	if (!o || !times || !rs)
		goto fail;
	for (int s = 0; s < TASK_STATE_COUNT; s++)
		if (t->state_ns[s])
			r |= set_int(times, state_names[s], t->state_ns[s]);
	for (size_t i = 0; i < t->n_restarts; i++)
		r |= json_array_append_new(rs, json_integer(t->restarts[i]));

	r |= json_object_set_new(o, "ID", json_string(t->id));
	r |= json_object_set_new(o, "ServiceID", json_string(t->service_id));
	r |= set_int(o, "Slot", (json_int_t)t->slot);
	r |= json_object_set_new(o, "NodeID", json_string(t->node_id));
	r |= set_int(o, "SpecVersion", (json_int_t)t->spec_version);
	r |= json_object_set_new(o, "DesiredState",
				 json_string(task_state_name(t->desired_state) ?: "new"));
	r |= set_int(o, "DesiredAt", t->desired_ns);
	r |= json_object_set_new(o, "StopCause",
				 json_string(orch_stop_cause_name(t->stop_cause) ?: ""));
	r |= set_int(o, "StopGracePeriod", t->stop_grace_ns);
	r |= json_object_set_new(o, "State", json_string(task_state_name(t->state) ?: "new"));
	r |= json_object_set_new(o, "StateTimes", times);
	times = NULL;
	r |= set_int(o, "CreatedAt", t->created_ns);
	r |= json_object_set_new(o, "Health", json_string(task_health_name(t->health) ?: "none"));
	r |= set_int(o, "ExitCode", t->exit_code);
	r |= json_object_set_new(o, "Err", json_string(t->err));
	r |= json_object_set_new(o, "Message", json_string(t->message));
	r |= json_object_set_new(o, "Replaces", json_string(t->replaces));
	r |= set_int(o, "StartAt", t->start_at_ns);
	r |= set_int(o, "RestartCount", (json_int_t)t->restart_count);
	r |= json_object_set_new(o, "Restarts", rs);
	rs = NULL;
	if (r)
		goto fail;
	return o;
fail:
	json_decref(o);
	json_decref(times);
	json_decref(rs);
	errno = ENOMEM;
	return NULL;
}

/* Field readers: absent fields keep their zero value; wrong types are errors. */
static int get_str(const json_t *o, const char *k, char *dst, size_t max, struct shoal_err *err)
{
	json_t *v = json_object_get(o, k);
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return shoal_err_set(err, EINVAL, "task %s: expected a string", k);
	if (json_string_length(v) >= max)
		return shoal_err_set(err, EINVAL, "task %s: longer than %zu bytes", k, max - 1);
	memcpy(dst, json_string_value(v), json_string_length(v) + 1);
	return 0;
}

static int get_i64(const json_t *o, const char *k, int64_t *dst, struct shoal_err *err)
{
	json_t *v = json_object_get(o, k);
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_integer(v))
		return shoal_err_set(err, EINVAL, "task %s: expected an integer", k);
	*dst = json_integer_value(v);
	return 0;
}

static int get_u64(const json_t *o, const char *k, uint64_t *dst, struct shoal_err *err)
{
	int64_t v = 0;
	int r = get_i64(o, k, &v, err);
	if (r < 0)
		return r;
	if (v < 0)
		return shoal_err_set(err, EINVAL, "task %s: expected a non-negative integer", k);
	*dst = (uint64_t)v;
	return 0;
}

static int get_state(const json_t *o, const char *k, enum task_state *dst, struct shoal_err *err)
{
	char buf[ORCH_MSG_MAX] = "";
	int r = get_str(o, k, buf, sizeof(buf), err);
	if (r < 0)
		return r;
	if (!buf[0])
		return 0;
	if (task_state_from_name(buf, dst) < 0)
		return shoal_err_set(err, EINVAL, "task %s: unknown state \"%s\"", k, buf);
	return 0;
}

int orch_task_from_json(const json_t *j, struct orch_task *ret, struct shoal_err *err)
{
	struct orch_task t = {};
	char buf[ORCH_MSG_MAX] = "";
	int64_t code = 0;
	json_t *times, *rs;
	int r;

	if (!json_is_object(j))
		return shoal_err_set(err, EINVAL, "task: expected a JSON object");
	if ((r = get_str(j, "ID", t.id, ORCH_ID_MAX, err)) < 0 ||
	    (r = get_str(j, "ServiceID", t.service_id, ORCH_ID_MAX, err)) < 0 ||
	    (r = get_u64(j, "Slot", &t.slot, err)) < 0 ||
	    (r = get_str(j, "NodeID", t.node_id, ORCH_ID_MAX, err)) < 0 ||
	    (r = get_u64(j, "SpecVersion", &t.spec_version, err)) < 0 ||
	    (r = get_state(j, "DesiredState", &t.desired_state, err)) < 0 ||
	    (r = get_i64(j, "DesiredAt", &t.desired_ns, err)) < 0 ||
	    (r = get_i64(j, "StopGracePeriod", &t.stop_grace_ns, err)) < 0 ||
	    (r = get_state(j, "State", &t.state, err)) < 0 ||
	    (r = get_i64(j, "CreatedAt", &t.created_ns, err)) < 0 ||
	    (r = get_i64(j, "ExitCode", &code, err)) < 0 ||
	    (r = get_str(j, "Err", t.err, ORCH_MSG_MAX, err)) < 0 ||
	    (r = get_str(j, "Message", t.message, ORCH_MSG_MAX, err)) < 0 ||
	    (r = get_str(j, "Replaces", t.replaces, ORCH_ID_MAX, err)) < 0 ||
	    (r = get_i64(j, "StartAt", &t.start_at_ns, err)) < 0 ||
	    (r = get_u64(j, "RestartCount", &t.restart_count, err)) < 0)
		return r;
	t.exit_code = (int)code;

	if ((r = get_str(j, "StopCause", buf, sizeof(buf), err)) < 0)
		return r;
	if (orch_stop_cause_from_name(buf, &t.stop_cause) < 0)
		return shoal_err_set(err, EINVAL, "task StopCause: unknown value \"%s\"", buf);
	buf[0] = 0;
	if ((r = get_str(j, "Health", buf, sizeof(buf), err)) < 0)
		return r;
	if (buf[0] && task_health_from_name(buf, &t.health) < 0)
		return shoal_err_set(err, EINVAL, "task Health: unknown value \"%s\"", buf);

	times = json_object_get(j, "StateTimes");
	if (times && !json_is_object(times))
		return shoal_err_set(err, EINVAL, "task StateTimes: expected an object");
	if (times) {
		const char *k;
		json_t *v;
		json_object_foreach(times, k, v)
		{
			enum task_state s;
			if (task_state_from_name(k, &s) < 0 || !json_is_integer(v))
				return shoal_err_set(
					err, EINVAL,
					"task StateTimes.%s: expected a state and an integer", k);
			t.state_ns[s] = json_integer_value(v);
		}
	}

	rs = json_object_get(j, "Restarts");
	if (rs && !json_is_array(rs))
		return shoal_err_set(err, EINVAL, "task Restarts: expected an array");
	if (rs && json_array_size(rs) > ORCH_RESTART_HISTORY_MAX)
		return shoal_err_set(err, E2BIG, "task Restarts: more than %d entries",
				     ORCH_RESTART_HISTORY_MAX);
	if (rs && json_array_size(rs)) {
		_cleanup_free_ int64_t *a = calloc(json_array_size(rs), sizeof(*a));
		size_t i;
		json_t *v;
		if (!a)
			return shoal_err_set(err, ENOMEM, "task Restarts: out of memory");
		json_array_foreach(rs, i, v)
		{
			if (!json_is_integer(v))
				return shoal_err_set(err, EINVAL,
						     "task Restarts[%zu]: expected an integer", i);
			a[i] = json_integer_value(v);
		}
		t.n_restarts = json_array_size(rs);
		t.restarts = TAKE_PTR(a);
	}
	*ret = t;
	return 0;
}
