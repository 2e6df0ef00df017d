/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdint.h>

#include <jansson.h>

#include "sched/task.h"

/*
 * A task's record as the store holds it: the orchestrator's task under
 * "Orch", and Docker's fields (ID, NodeID, DesiredState, Status, ...) that the
 * API shows, kept in step with it. Pure: no store, no clock of its own.
 */

/* Docker's fields of rec from t. */
void task_record_fill(json_t *rec, const struct orch_task *t);

/* What a node reports about one of its tasks. */
struct task_report {
	enum task_state state;
	const char *message;	  /* NULL: the one the state machine gives */
	const char *error;	  /* with failed or rejected: why */
	const char *container_id; /* NULL: none to record */
	int exit_code;
	int health; /* enum task_health; -1: not reported */
};

/* Applies a node's report to rec, in place: the observed state moved
 * forward (an error ends the task in the state its progress calls for; a
 * container that ended before its task said it started passes through
 * starting), the health, the container; moves the state machine does not
 * allow (a late report) are left out. 1 when rec changed and is to be
 * written back (compare-and-swap on the version it was read at), 0 when
 * there is nothing to write, -EBADMSG when rec has no readable "Orch". */
int task_record_observe(json_t *rec, const struct task_report *rep, int64_t now_ns);
