// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/cleanup.h"
#include "lib/util.h"
#include "sched/update-internal.h"

static const char *const state_names[] = {
	[UPDATE_NONE] = "",
	[UPDATE_UPDATING] = "updating",
	[UPDATE_PAUSED] = "paused",
	[UPDATE_COMPLETED] = "completed",
	[UPDATE_ROLLBACK_STARTED] = "rollback_started",
	[UPDATE_ROLLBACK_PAUSED] = "rollback_paused",
	[UPDATE_ROLLBACK_COMPLETED] = "rollback_completed",
};

const char *update_state_name(enum update_state s)
{
	if ((unsigned)s >= ARRAY_SIZE(state_names))
		return NULL;
	return state_names[s];
}

int update_state_from_name(const char *name, enum update_state *ret)
{
	if (!name)
		return -EINVAL;
	for (size_t i = 0; i < ARRAY_SIZE(state_names); i++)
		if (strcmp(state_names[i], name) == 0) {
			*ret = (enum update_state)i;
			return 0;
		}
	return -EINVAL;
}

void orch_update_clear(struct orch_update *u)
{
	if (!u)
		return;
	free(u->failed);
	memset(u, 0, sizeof(*u));
}

int orch_update_copy(struct orch_update *dst, const struct orch_update *src)
{
	char(*f)[ORCH_ID_MAX] = NULL;

	if (src->n_failed) {
		f = malloc(src->n_failed * sizeof(*f));
		if (!f)
			return -ENOMEM;
		memcpy(f, src->failed, src->n_failed * sizeof(*f));
	}
	*dst = *src;
	dst->failed = f;
	return 0;
}

json_t *orch_update_to_json(const struct orch_update *u)
{
	json_t *o = json_object(), *f = json_array();
	int r = 0;

	if (!o || !f)
		goto fail;
	for (size_t i = 0; i < u->n_failed; i++)
		r |= json_array_append_new(f, json_string(u->failed[i]));
	r |= json_object_set_new(o, "State", json_string(update_state_name(u->state) ?: ""));
	r |= json_object_set_new(o, "StartedAt", json_integer(u->started_ns));
	r |= json_object_set_new(o, "CompletedAt", json_integer(u->completed_ns));
	r |= json_object_set_new(o, "Message", json_string(u->message));
	r |= json_object_set_new(o, "SpecVersion", json_integer((json_int_t)u->spec_version));
	r |= json_object_set_new(o, "FromSpecVersion",
				 json_integer((json_int_t)u->from_spec_version));
	r |= json_object_set_new(o, "PhaseStartedAt", json_integer(u->phase_started_ns));
	r |= json_object_set_new(o, "Total", json_integer((json_int_t)u->total));
	r |= json_object_set_new(o, "BatchOpen", json_boolean(u->batch_open));
	r |= json_object_set_new(o, "NextBatchAt", json_integer(u->next_batch_ns));
	r |= json_object_set_new(o, "FailureActionTaken", json_boolean(u->failure_action_taken));
	r |= json_object_set_new(o, "Failures", json_integer((json_int_t)u->failures));
	r |= json_object_set_new(o, "FailedTasks", f);
	f = NULL;
	if (r)
		goto fail;
	return o;
fail:
	json_decref(o);
	json_decref(f);
	errno = ENOMEM;
	return NULL;
}

static int get_int(const json_t *o, const char *k, int64_t *dst, struct shoal_err *err)
{
	json_t *v = json_object_get(o, k);
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_integer(v))
		return shoal_err_set(err, EINVAL, "update status %s: expected an integer", k);
	*dst = json_integer_value(v);
	return 0;
}

static int get_uint(const json_t *o, const char *k, uint64_t *dst, struct shoal_err *err)
{
	int64_t v = 0;
	int r = get_int(o, k, &v, err);
	if (r < 0)
		return r;
	if (v < 0)
		return shoal_err_set(err, EINVAL,
				     "update status %s: expected a non-negative integer", k);
	*dst = (uint64_t)v;
	return 0;
}

static int get_bool(const json_t *o, const char *k, bool *dst, struct shoal_err *err)
{
	json_t *v = json_object_get(o, k);
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_boolean(v))
		return shoal_err_set(err, EINVAL, "update status %s: expected a boolean", k);
	*dst = json_is_true(v);
	return 0;
}

int orch_update_from_json(const json_t *j, struct orch_update *ret, struct shoal_err *err)
{
	struct orch_update u = {};
	json_t *v;
	int r;

	if (!json_is_object(j))
		return shoal_err_set(err, EINVAL, "update status: expected a JSON object");
	v = json_object_get(j, "State");
	if (v && (!json_is_string(v) || update_state_from_name(json_string_value(v), &u.state) < 0))
		return shoal_err_set(err, EINVAL, "update status State: unknown value");
	v = json_object_get(j, "Message");
	if (v && !json_is_string(v))
		return shoal_err_set(err, EINVAL, "update status Message: expected a string");
	if (v)
		snprintf(u.message, sizeof(u.message), "%s", json_string_value(v));
	if ((r = get_int(j, "StartedAt", &u.started_ns, err)) < 0 ||
	    (r = get_int(j, "CompletedAt", &u.completed_ns, err)) < 0 ||
	    (r = get_uint(j, "SpecVersion", &u.spec_version, err)) < 0 ||
	    (r = get_uint(j, "FromSpecVersion", &u.from_spec_version, err)) < 0 ||
	    (r = get_int(j, "PhaseStartedAt", &u.phase_started_ns, err)) < 0 ||
	    (r = get_uint(j, "Total", &u.total, err)) < 0 ||
	    (r = get_bool(j, "BatchOpen", &u.batch_open, err)) < 0 ||
	    (r = get_int(j, "NextBatchAt", &u.next_batch_ns, err)) < 0 ||
	    (r = get_bool(j, "FailureActionTaken", &u.failure_action_taken, err)) < 0 ||
	    (r = get_uint(j, "Failures", &u.failures, err)) < 0)
		return r;

	v = json_object_get(j, "FailedTasks");
	if (v && !json_is_array(v))
		return shoal_err_set(err, EINVAL, "update status FailedTasks: expected an array");
	if (v && json_array_size(v) > ORCH_UPDATE_MAX_FAILED)
		return shoal_err_set(err, E2BIG, "update status FailedTasks: more than %d entries",
				     ORCH_UPDATE_MAX_FAILED);
	if (v && json_array_size(v)) {
		_cleanup_free_ char(*f)[ORCH_ID_MAX] = calloc(json_array_size(v), sizeof(*f));
		size_t i;
		json_t *e;
		if (!f)
			return shoal_err_set(err, ENOMEM, "update status: out of memory");
		json_array_foreach(v, i, e)
		{
			if (!json_is_string(e) || json_string_length(e) >= ORCH_ID_MAX)
				return shoal_err_set(
					err, EINVAL,
					"update status FailedTasks[%zu]: expected a task id", i);
			memcpy(f[i], json_string_value(e), json_string_length(e) + 1);
		}
		u.n_failed = json_array_size(v);
		u.failed = TAKE_PTR(f);
	}
	*ret = u;
	return 0;
}

json_t *orch_update_status_json(const struct orch_update *u)
{
	char started[40], completed[40];
	json_t *o;

	if (u->state == UPDATE_NONE)
		return NULL;
	format_rfc3339(u->started_ns, started);
	o = json_pack("{s:s, s:s, s:s}", "State", update_state_name(u->state), "StartedAt", started,
		      "Message", u->message);
	if (!o) {
		errno = ENOMEM;
		return NULL;
	}
	if (u->completed_ns) {
		format_rfc3339(u->completed_ns, completed);
		if (json_object_set_new(o, "CompletedAt", json_string(completed)) < 0) {
			json_decref(o);
			errno = ENOMEM;
			return NULL;
		}
	}
	return o;
}

/* Starts a new phase (an update or a rollback) with a fresh failure budget. */
void orch_update_new_phase(struct orch_update *u, int64_t now_ns)
{
	free(u->failed);
	u->failed = NULL;
	u->n_failed = 0;
	u->failures = 0;
	u->failure_action_taken = false;
	u->phase_started_ns = now_ns;
	u->total = 0;
	u->batch_open = false;
	u->next_batch_ns = 0;
	u->completed_ns = 0;
}

int orch_update_rollback(struct orch_update *u, uint64_t from_version, uint64_t to_version,
			 int64_t now_ns, struct shoal_err *err)
{
	if (!to_version)
		return shoal_err_set_status(err, 400, EINVAL,
					    "service has no previous spec to roll back to");
	if (from_version == to_version)
		return shoal_err_set_status(err, 400, EINVAL,
					    "service already runs the spec it would roll back to");
	orch_update_new_phase(u, now_ns);
	u->state = UPDATE_ROLLBACK_STARTED;
	u->started_ns = now_ns;
	u->spec_version = to_version;
	u->from_spec_version = from_version;
	snprintf(u->message, sizeof(u->message), "manually requested rollback");
	return 0;
}

int orch_update_resume(struct orch_update *u, int64_t now_ns, struct shoal_err *err)
{
	if (u->state != UPDATE_PAUSED && u->state != UPDATE_ROLLBACK_PAUSED)
		return shoal_err_set_status(err, 409, EALREADY, "the update is not paused");
	/* The failure budget restarts with the slots that are left. */
	orch_update_new_phase(u, now_ns);
	if (u->state == UPDATE_PAUSED) {
		u->state = UPDATE_UPDATING;
		snprintf(u->message, sizeof(u->message), "update resumed");
	} else {
		u->state = UPDATE_ROLLBACK_STARTED;
		snprintf(u->message, sizeof(u->message), "rollback resumed");
	}
	return 0;
}

int orch_update_pause(struct orch_update *u, int64_t now_ns, const char *message,
		      struct shoal_err *err)
{
	if (u->state == UPDATE_UPDATING)
		u->state = UPDATE_PAUSED;
	else if (u->state == UPDATE_ROLLBACK_STARTED)
		u->state = UPDATE_ROLLBACK_PAUSED;
	else
		return shoal_err_set_status(err, 409, EALREADY, "no update is in progress");
	snprintf(u->message, sizeof(u->message), "%s", message ? message : "update paused");
	return 0;
}
