/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"
#include "sched/task.h"
#include "sched/types.h"
#include "sched/update.h"

/*
 * The orchestrator: pure logic that turns a service's desired state and its
 * tasks' observed state into actions (create, start, shut down, orphan,
 * delete tasks; roll the service's spec back). No syscalls, no store, no
 * clock of its own: the agent calls orch_reconcile() on every store event
 * that concerns the service and at result.wake_ns, carries out the actions
 * (one store transaction per call), and stores the updater state when
 * result.update_changed. Calling again with the actions applied yields no
 * more actions until something changes (time passes, a task moves).
 *
 * Semantics follow swarm mode:
 * - replicated: slots 1..replicas; scale up fills the lowest free slots,
 *   scale down removes the highest slots first, slots whose task is not
 *   running (or unhealthy) before running ones;
 * - global: one task per node that is ready, active and eligible; drained or
 *   ineligible nodes lose their task, paused nodes keep it;
 * - a task that ends while meant to run is restarted per the restart policy
 *   (delay, max attempts in a window); the replacement is created at once in
 *   the same slot but held (desired preparing) until its start time and until
 *   the task it replaces has stopped. The restart history travels with the
 *   slot's newest task, so it survives agent restarts. When max attempts are
 *   used up inside a window, the next restart waits until the window allows
 *   one (rather than never, as swarm does); without a window it never comes;
 * - unhealthy running tasks are shut down and replaced like failed ones;
 * - tasks on down or removed nodes are replaced at once (replicated) and
 *   marked orphaned once the node has been down orphan_after_ns (or is gone);
 *   tasks on draining nodes are replaced, start-first when the service's
 *   update order is start-first (no gap in service while draining);
 * - per slot, at most history_limit task records are kept (swarm's
 *   TaskHistoryRetentionLimit): older finished ones are deleted;
 * - rolling update and rollback: see the update_config in orch_service.
 */

#define ORCH_MAX_TASKS		   (1u << 20) /* tasks of one service given in one call */
#define ORCH_MAX_NODES		   (1u << 20)
#define ORCH_MAX_REPLICAS	   100000
#define ORCH_MAX_ACTIONS	   (1u << 22)
#define ORCH_DEFAULT_HISTORY_LIMIT 5
#define ORCH_DEFAULT_ORPHAN_AFTER  (24LL * 3600 * 1000000000LL)

enum orch_mode { ORCH_REPLICATED, ORCH_GLOBAL };

struct orch_service {
	const char *id;
	enum orch_mode mode;
	uint64_t replicas;	    /* replicated */
	uint64_t spec_version;	    /* the spec tasks should run (nonzero) */
	uint64_t prev_spec_version; /* the spec before it, 0 = none (rollback target) */
	struct restart_policy restart;
	struct update_config update;
	struct update_config rollback;
	int64_t stop_grace_ns;
	bool removed; /* the service is being deleted: remove every task */
};

/* Every node the cluster knows of: tasks on a node missing from this list
 * are on a removed node. */
struct orch_node {
	const char *id;
	bool ready;	       /* false: down (heartbeat lost) */
	int64_t down_since_ns; /* when it went down */
	enum node_availability availability;
	bool eligible; /* global: meets the service's constraints */
};

struct orch_input {
	const struct orch_service *service;
	const struct orch_task *tasks; /* every task record of the service */
	/* or, instead of tasks, pointers to them (a caller that keeps its
	 * records parsed need not copy them into one array) */
	const struct orch_task *const *task_ptrs;
	size_t n_tasks;
	const struct orch_node *nodes;
	size_t n_nodes;
	struct orch_update *update; /* in/out: the service's updater state */
	uint64_t history_limit;	    /* 0 = ORCH_DEFAULT_HISTORY_LIMIT */
	int64_t orphan_after_ns;    /* 0 = ORCH_DEFAULT_ORPHAN_AFTER */
	/* Replicated scale up: tasks for at most this many empty slots in this
	 * call (the lowest ones), 0 = all; a caller that writes only so many at
	 * once need not have the rest computed. The others come on a later call. */
	uint64_t max_new_slots;
};

enum orch_action_type {
	ORCH_ACT_CREATE,   /* store action.task under a fresh id */
	ORCH_ACT_START,	   /* held task: desired state preparing -> running */
	ORCH_ACT_SHUTDOWN, /* desired state -> action.desired (shutdown or remove) */
	ORCH_ACT_ORPHAN,   /* observed state -> orphaned: its node will never report it */
	ORCH_ACT_DELETE,   /* delete the task record */
	ORCH_ACT_ROLLBACK, /* make the service's previous spec current (spec_version) */
};

struct orch_action {
	enum orch_action_type type;
	char task_id[ORCH_ID_MAX];  /* START, SHUTDOWN, ORPHAN, DELETE */
	struct orch_task task;	    /* CREATE: the record, id "" (the agent names it) */
	enum task_state desired;    /* SHUTDOWN */
	enum orch_stop_cause cause; /* SHUTDOWN */
	int64_t stop_grace_ns;	    /* SHUTDOWN */
	uint64_t spec_version;	    /* ROLLBACK */
	char message[ORCH_MSG_MAX];
};

struct orch_result {
	struct orch_action *actions;
	size_t n_actions;
	size_t cap;
	int64_t wake_ns;     /* call again at this time even without events; 0 = none */
	bool update_changed; /* input.update changed: store it */
	bool service_gone;   /* a removed service has no task left: delete its record */
};

const char *orch_action_type_name(enum orch_action_type t);

/* Computes the actions for one service at time now_ns. ret is cleared first;
 * free it with orch_result_clear(). -EINVAL (with err) on malformed input,
 * -E2BIG past a limit, -ENOMEM. */
int orch_reconcile(const struct orch_input *in, int64_t now_ns, struct orch_result *ret,
		   struct shoal_err *err);
void orch_result_clear(struct orch_result *r);

/* Applies a START, SHUTDOWN or ORPHAN action to the task it names (what the
 * agent writes to the store): desired or observed state, cause, grace,
 * message, timestamps. -EINVAL if the action does not fit the task. */
int orch_action_apply(struct orch_task *t, const struct orch_action *a, int64_t now_ns,
		      struct shoal_err *err);
/* The record a CREATE action asks for, under the given id. */
int orch_task_from_action(struct orch_task *ret, const struct orch_action *a, const char *id,
			  struct shoal_err *err);

enum orch_restart_decision { ORCH_RESTART_NEVER, ORCH_RESTART_AT };

/* Restart policy for a task that ended (or went unhealthy) at now_ns while
 * meant to run: never, or at *ret_at_ns (>= now_ns + delay). target_version is
 * the spec the replacement will run; a new spec starts a fresh attempt count. */
enum orch_restart_decision orch_restart_decide(const struct restart_policy *p,
					       const struct orch_task *t, uint64_t target_version,
					       bool failed, int64_t now_ns, int64_t *ret_at_ns);
