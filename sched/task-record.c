// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>

#include "lib/util.h"
#include "sched/task-record.h"

static const char *desired_name(enum task_state s)
{
	return s == TASK_PREPARING ? "ready" : task_state_name(s);
}

void task_record_fill(json_t *rec, const struct orch_task *t)
{
	char ts[40], created[40];
	format_rfc3339(t->state_ns[t->state] ? t->state_ns[t->state] : t->created_ns, ts);
	format_rfc3339(t->created_ns, created);
	json_object_set_new(rec, "ID", json_string(t->id));
	json_object_set_new(rec, "ServiceID", json_string(t->service_id));
	json_object_set_new(rec, "Slot", json_integer((json_int_t)t->slot));
	json_object_set_new(rec, "NodeID", json_string(t->node_id));
	json_object_set_new(rec, "CreatedAt", json_string(created));
	json_object_set_new(rec, "DesiredState", json_string(desired_name(t->desired_state)));
	json_t *st = json_object_get(rec, "Status");
	if (!json_is_object(st)) {
		st = json_object();
		json_object_set_new(rec, "Status", st);
	}
	json_object_set_new(st, "State", json_string(task_state_name(t->state)));
	json_object_set_new(st, "Timestamp", json_string(ts));
	json_object_set_new(st, "Message", json_string(t->message));
	if (t->err[0])
		json_object_set_new(st, "Err", json_string(t->err));
	else
		json_object_del(st, "Err");
	json_object_set_new(st, "Health", json_string(task_health_name(t->health)));
	json_t *cs = json_object_get(st, "ContainerStatus");
	if (json_is_object(cs))
		json_object_set_new(cs, "ExitCode", json_integer(t->exit_code));
}

int task_record_observe(json_t *rec, const struct task_report *rep, int64_t now)
{
	struct orch_task t = {0};
	if (orch_task_from_json(json_object_get(rec, "Orch"), &t, NULL) < 0)
		return -EBADMSG;
	enum task_state state = rep->state;
	bool changed = false;
	if (rep->health >= 0 && t.health != (enum task_health)rep->health) {
		t.health = (enum task_health)rep->health;
		changed = true;
	}
	if ((state == TASK_FAILED || state == TASK_REJECTED) && t.state < TASK_COMPLETE)
		state = task_error_state(t.state);
	if (state == TASK_COMPLETE && t.state < TASK_STARTING &&
	    task_transition_allowed(t.state, TASK_STARTING))
		orch_task_set_state(&t, TASK_STARTING, now, "starting", NULL);
	if (state != t.state && task_transition_allowed(t.state, state)) {
		if (rep->error && (state == TASK_FAILED || state == TASK_REJECTED))
			orch_task_fail(&t, now, rep->error, NULL);
		else
			orch_task_set_state(&t, state, now, rep->message, NULL);
		if (t.state == state) {
			t.exit_code = rep->exit_code;
			changed = true;
		}
	}
	if (!changed) {
		orch_task_clear(&t);
		return 0;
	}
	if (rep->message && state == t.state)
		snprintf(t.message, sizeof(t.message), "%s", rep->message);
	json_object_set_new(rec, "Orch", orch_task_to_json(&t));
	if (rep->container_id) {
		json_t *st = json_object_get(rec, "Status");
		if (!json_is_object(st)) {
			st = json_object();
			json_object_set_new(rec, "Status", st);
		}
		json_object_set_new(st, "ContainerStatus",
				    json_pack("{s:s, s:i}", "ContainerID", rep->container_id,
					      "ExitCode", rep->exit_code));
	}
	task_record_fill(rec, &t);
	orch_task_clear(&t);
	return 1;
}
