/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "lib/err.h"
#include "sched/types.h"

/*
 * A task record as the orchestrator sees it: what the agent stores under
 * /shoal/tasks/ (desired state written by the orchestrator, observed state by
 * the node that runs it). States move forward only; every observed state
 * carries the time it was entered.
 */

#define TASK_STATE_COUNT (TASK_ORPHANED + 1)
#define ORCH_ID_MAX	 72
#define ORCH_MSG_MAX	 256
/* Restart timestamps kept per slot; only the last max_attempts inside the
 * window ever matter, this bounds what a huge max_attempts can store. */
#define ORCH_RESTART_HISTORY_MAX 1024

/* Health of the task's container as its node reports it. */
enum task_health {
	TASK_HEALTH_NONE,     /* no health check */
	TASK_HEALTH_STARTING, /* check configured, not yet passed */
	TASK_HEALTH_HEALTHY,
	TASK_HEALTH_UNHEALTHY,
};

/* Why the orchestrator moved a task's desired state past running. */
enum orch_stop_cause {
	ORCH_STOP_NONE,
	ORCH_STOP_ENDED,	/* it ended on its own; a new task in its slot replaces it */
	ORCH_STOP_NO_RESTART,	/* it ended (or went unhealthy); the restart policy keeps it down */
	ORCH_STOP_UNHEALTHY,	/* its health check failed; a new task replaces it */
	ORCH_STOP_SCALE_DOWN,	/* its slot was removed */
	ORCH_STOP_UPDATE,	/* replaced by a task running the service's target spec */
	ORCH_STOP_NODE_DOWN,	/* its node is down; replaced elsewhere (replicated) */
	ORCH_STOP_NODE_DRAIN,	/* its node is draining */
	ORCH_STOP_NODE_REMOVED, /* its node left the cluster */
	ORCH_STOP_NODE_INELIGIBLE, /* global: its node no longer meets the constraints */
	ORCH_STOP_DUPLICATE,	   /* a second task in one slot */
	ORCH_STOP_SERVICE_REMOVED,
};
#define ORCH_STOP_CAUSE_COUNT (ORCH_STOP_SERVICE_REMOVED + 1)

struct orch_task {
	char id[ORCH_ID_MAX];
	char service_id[ORCH_ID_MAX];
	uint64_t slot;		   /* replicated: 1..N; global: 0 */
	char node_id[ORCH_ID_MAX]; /* "" until placed; global: set at creation */
	uint64_t spec_version;	   /* the service spec version this task runs */

	/* Desired state: running; preparing = held (prepare, do not start until
	 * the orchestrator says so, see start_at_ns); shutdown; remove (shut down,
	 * then delete the record). */
	enum task_state desired_state;
	int64_t desired_ns; /* when desired_state last changed */
	enum orch_stop_cause stop_cause;
	int64_t stop_grace_ns; /* SIGTERM -> SIGKILL grace for stopping it */

	enum task_state state;		    /* observed */
	int64_t state_ns[TASK_STATE_COUNT]; /* when each state was entered; 0 = never */
	int64_t created_ns;
	enum task_health health;
	int exit_code;
	char err[ORCH_MSG_MAX];	    /* the error that ended the task */
	char message[ORCH_MSG_MAX]; /* the last status or desired-state message */

	/* Restarts and hand-over within the slot (node, for global services). */
	char replaces[ORCH_ID_MAX]; /* the task this one takes over from */
	int64_t start_at_ns;	    /* held tasks: not started before this */
	uint64_t restart_count;	    /* restarts in this slot under this spec version */
	int64_t *restarts;	    /* their times, oldest first (windowed) */
	size_t n_restarts;
};

/* "new", "pending", ... as swarm names them. NULL for an unknown value. */
const char *task_state_name(enum task_state s);
int task_state_from_name(const char *name, enum task_state *ret);
const char *task_health_name(enum task_health h);
int task_health_from_name(const char *name, enum task_health *ret);
const char *orch_stop_cause_name(enum orch_stop_cause c);
int orch_stop_cause_from_name(const char *name, enum orch_stop_cause *ret);

/* complete, shutdown, failed, rejected, remove, orphaned: nothing runs. */
bool task_state_is_terminal(enum task_state s);

/* Observed states only move forward and stop at a terminal state. Failed
 * needs a task that reached starting, rejected one that did not; complete
 * needs a started task; remove is a desired state, never observed. */
bool task_transition_allowed(enum task_state from, enum task_state to);
/* Desired states: preparing (held) -> running -> shutdown -> remove, forward. */
bool task_desired_transition_allowed(enum task_state from, enum task_state to);
/* The state an error ends a task in: rejected before starting, failed after. */
enum task_state task_error_state(enum task_state current);

/* Records an observed transition (timestamped) and its message. -EINVAL if
 * the transition is not allowed; the task is left unchanged. */
int orch_task_set_state(struct orch_task *t, enum task_state to, int64_t now_ns,
			const char *message, struct shoal_err *err);
/* Ends the task on an error: rejected or failed per task_error_state(). */
int orch_task_fail(struct orch_task *t, int64_t now_ns, const char *error, struct shoal_err *err);
int orch_task_set_desired(struct orch_task *t, enum task_state desired, int64_t now_ns,
			  enum orch_stop_cause cause, const char *message, struct shoal_err *err);

/* Deep copy (restart history included); dst is overwritten, not freed. */
int orch_task_copy(struct orch_task *dst, const struct orch_task *src);
/* Frees what the task owns and zeroes it. */
void orch_task_clear(struct orch_task *t);

/* The persisted form: every field, timestamps as integer nanoseconds. */
json_t *orch_task_to_json(const struct orch_task *t);
/* Fills ret (cleared first) from orch_task_to_json() output. */
int orch_task_from_json(const json_t *j, struct orch_task *ret, struct shoal_err *err);
