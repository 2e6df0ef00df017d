/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

struct agent;

struct task_cache;
/* Brings this node's task containers in line with the tasks in the store
 * (as the manager's cache holds them). Does a bounded amount of work; true
 * when some is left for another call. */
bool executor_reconcile(struct agent *a, struct task_cache *tc);
/* Whether the next executor_reconcile() would stop a task's container (so
 * that the data plane drains it first). */
bool executor_stopping_soon(struct agent *a, json_t *tasks);
/* Tasks this node can run at once: its container limit and its bridge's
 * ports, less what containers that are not tasks take. */
uint32_t executor_task_capacity(struct agent *a);
/* Whether the executor is creating task_id's container right now (what a
 * container's task label is checked against). */
bool executor_task_creating(struct agent *a, const char *task_id);
void executor_free(struct agent *a);
