/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <jansson.h>

#include "lib/err.h"

struct agent;
struct service_spec;

/* The manager: turns services (desired state) into tasks placed on nodes, with
 * the orchestrator (sched/orchestrator.h) and the scheduler (sched/scheduler.h),
 * on every store change (coalesced) and on a periodic resync. */
int manager_start(struct agent *a, struct shoal_err *err);
void manager_stop(struct agent *a);
void manager_kick(struct agent *a);
/* Something the data plane reads besides services and tasks moved (overlay
 * endpoints, node liveness as the overlay follows it): the next pass syncs it. */
void manager_data_plane_changed(struct agent *a);
/* As above, for a change that takes backends away (a node gone): synced by
 * the next pass, not held back by the rate of routine syncs, so that no new
 * connection goes to a node the rest of the cluster no longer reaches. */
void manager_data_plane_lost(struct agent *a);

/* The placement plan for a service spec, changing nothing:
 * [{"Slot":1,"NodeID":..,"NodeHostname":..} | {"Slot":3,"Unplaced":"reason"}]. */
int manager_plan(struct agent *a, const char *service_id, const struct service_spec *spec,
		 json_t **ret, struct shoal_err *err);
/* Adds Docker's ServiceStatus {RunningTasks, DesiredTasks, CompletedTasks} and
 * UpdateStatus to a service object read from the store. */
void manager_service_status(struct agent *a, json_t *svc);

/* The task cache the manager keeps from the store's watch (borrowed; NULL
 * before manager_start): every task by id, and one service's tasks by id. */
json_t *manager_tasks(struct agent *a);
json_t *manager_service_tasks(struct agent *a, const char *service_id);
/* The services as the same watch delivers them: id -> record (borrowed). */
json_t *manager_services(struct agent *a);
/* A write under /shoal/ at revision rev: the next pass waits until the watch
 * has delivered it (cluster.c calls this for every write). */
void manager_note_write(struct agent *a, const char *key, int64_t rev);

/* Task records: Docker's Task fields derived from the orchestrator's record,
 * which is kept whole under "Orch". */
#include "sched/types.h"
struct orch_task;
/* The record for a task, from the orchestrator's task. */
json_t *task_record_new(const struct orch_task *t, const char *service_name, json_t *task_spec);
/* Refreshes the Docker fields from rec's "Orch". */
void task_record_sync(json_t *rec);
/* The node's view: moves the observed state forward (CAS on the store), with a
 * message, an error, the container's exit code and health. Ignores moves the
 * state machine does not allow (a late report). */
int task_observe(struct agent *a, const char *task_id, enum task_state state, const char *message,
		 const char *error, const char *container_id, int exit_code, int health);
