/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "lib/err.h"
#include "sched/task.h"

/*
 * The rolling updater's state for one service: Docker's UpdateStatus plus what
 * the updater needs to resume mid-update after an agent restart. The agent
 * stores it with the service (orch_update_to_json) whenever orch_reconcile()
 * reports it changed, and hands it back on every call.
 */

/* Failed task ids remembered per update phase (each failure counts once). */
#define ORCH_UPDATE_MAX_FAILED 65536

enum update_state {
	UPDATE_NONE, /* never updated (a new service) */
	UPDATE_UPDATING,
	UPDATE_PAUSED,
	UPDATE_COMPLETED,
	UPDATE_ROLLBACK_STARTED,
	UPDATE_ROLLBACK_PAUSED,
	UPDATE_ROLLBACK_COMPLETED,
};

struct orch_update {
	enum update_state state;
	int64_t started_ns;
	int64_t completed_ns;
	char message[ORCH_MSG_MAX];

	uint64_t spec_version; /* the version being rolled out (or last rolled out); 0 = unset */
	uint64_t from_spec_version;  /* the version it replaces (a rollback's source) */
	int64_t phase_started_ns;    /* this update or rollback phase; its tasks are monitored */
	uint64_t total;		     /* slots to update in this phase; 0 = not counted yet */
	bool batch_open;	     /* a batch is in flight */
	int64_t next_batch_ns;	     /* the delay after the last batch ends here */
	bool failure_action_taken;   /* the failure threshold fired in this phase */
	uint64_t failures;	     /* updated tasks that failed within the monitor window */
	char (*failed)[ORCH_ID_MAX]; /* their ids */
	size_t n_failed;
};

/* "updating", "paused", "completed", "rollback_started", "rollback_paused",
 * "rollback_completed" (Docker's); "" for none. */
const char *update_state_name(enum update_state s);
int update_state_from_name(const char *name, enum update_state *ret);

/* Frees the failed-task list and zeroes the state. */
void orch_update_clear(struct orch_update *u);
int orch_update_copy(struct orch_update *dst, const struct orch_update *src);

/* Persisted form (resumable). */
json_t *orch_update_to_json(const struct orch_update *u);
int orch_update_from_json(const json_t *j, struct orch_update *ret, struct shoal_err *err);

/* Docker's UpdateStatus for `service inspect`: {State, StartedAt, CompletedAt,
 * Message} with RFC 3339 times; NULL (no error) when there never was an update. */
json_t *orch_update_status_json(const struct orch_update *u);

/* Manual rollback (`service update --rollback`): the agent has made the
 * previous spec (to_version) current again; the updater now rolls tasks back
 * with the service's RollbackConfig, leaving tasks already on to_version. */
int orch_update_rollback(struct orch_update *u, uint64_t from_version, uint64_t to_version,
			 int64_t now_ns, struct shoal_err *err);
/* Resumes a paused update or rollback with a fresh failure budget.
 * -EALREADY when it is not paused. */
int orch_update_resume(struct orch_update *u, int64_t now_ns, struct shoal_err *err);
/* Pauses a running update or rollback by request. */
int orch_update_pause(struct orch_update *u, int64_t now_ns, const char *message,
		      struct shoal_err *err);
