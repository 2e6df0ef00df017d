/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sched/orchestrator.h"
#include "sched/update-internal.h"

/* Shared by the parts of one orchestrator pass: the pass itself
 * (orchestrator.c), the per-slot task actions and restarts
 * (orchestrator-slot.c) and the rolling updater (orchestrator-update.c). */

/* A task as this pass sees it: the input record with this pass's actions
 * applied, or a record this pass creates. */
struct orch_wtask {
	struct orch_task t;
	bool created; /* owned by this pass (deep) */
	bool deleted;
	bool touched; /* an action of this pass names it */
};

struct orch_slot {
	uint64_t num;	       /* replicated */
	const char *node_id;   /* global */
	struct orch_wtask **w; /* oldest first */
	size_t n, cap;
	bool victim;	/* scaled away in this pass */
	bool updatable; /* the updater may work on it */
};

struct orch_ctx {
	const struct orch_input *in;
	const struct orch_service *svc;
	struct orch_update *u;
	struct orch_result *res;
	struct shoal_err *err;
	int64_t now;
	uint64_t target;
	uint64_t history_limit;
	int64_t orphan_after;
	const struct orch_node **nodes; /* sorted by id */
	size_t n_nodes;
	struct orch_wtask *work;
	struct orch_slot *slots;
	size_t n_slots;
	struct orch_wtask **extra; /* created records, freed at the end */
	size_t n_extra, cap_extra;
};

enum orch_nstate { N_UNASSIGNED, N_OK, N_PAUSE, N_DRAIN, N_DOWN, N_GONE };

static inline bool orch_task_live(const struct orch_task *t)
{
	return t->desired_state <= TASK_RUNNING;
}

static inline bool orch_task_ended(const struct orch_task *t)
{
	return task_state_is_terminal(t->state);
}

static inline bool orch_task_up(const struct orch_task *t)
{
	return t->state == TASK_RUNNING &&
	       (t->health == TASK_HEALTH_NONE || t->health == TASK_HEALTH_HEALTHY);
}

static inline bool orch_task_unhealthy(const struct orch_task *t)
{
	return t->state == TASK_RUNNING && t->health == TASK_HEALTH_UNHEALTHY;
}

/* The pass (orchestrator.c). */
void orch_ctx_wake(struct orch_ctx *c, int64_t at);
const struct orch_node *orch_ctx_node_find(struct orch_ctx *c, const char *id);
enum orch_nstate orch_ctx_node_state(struct orch_ctx *c, const struct orch_task *t);

/* Task actions and slots (orchestrator-slot.c). Each action is recorded in the
 * result and applied to the pass's view of the task. */
struct orch_action *orch_ctx_push(struct orch_ctx *c, enum orch_action_type type);
int orch_wtask_shutdown(struct orch_ctx *c, struct orch_wtask *w, enum task_state desired,
			enum orch_stop_cause cause, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
/* Creates a task in the slot. prev gives the restart history (bumped for a
 * restart); replaces names the task it takes over from; start_at > 0 holds
 * it (desired preparing) until then and until replaces has stopped. */
int orch_slot_create(struct orch_ctx *c, struct orch_slot *s, const struct orch_task *prev,
		     bool bump, const char *replaces, int64_t start_at, const char *why);
int orch_slot_append(struct orch_ctx *c, struct orch_slot *s, struct orch_wtask *w);
int orch_slot_fix(struct orch_ctx *c, struct orch_slot *s, bool global, bool may_create);
struct orch_wtask *orch_slot_newest(struct orch_slot *s);
/* A slot holds a replica while it has a task meant to run, or its last task
 * ended and the restart policy keeps it down (swarm keeps such a slot). */
bool orch_slot_occupied(struct orch_slot *s);
/* The task that speaks for the slot: its newest live task, else its newest. */
struct orch_wtask *orch_slot_rep(struct orch_slot *s);
int orch_ctx_orphan_pass(struct orch_ctx *c, bool removing);
int orch_slot_retain(struct orch_ctx *c, struct orch_slot *s);

/* The rolling updater (orchestrator-update.c). */
/* Notices a new target spec; false when nothing else may happen this pass
 * (a rollback the agent has not applied yet). */
int orch_ctx_update_begin(struct orch_ctx *c, bool *ret_go);
int orch_ctx_update_step(struct orch_ctx *c);
