/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <jansson.h>

struct agent;

/* Brings this node's task containers in line with the tasks in the store
 * (every task, as the manager read them). */
void executor_reconcile(struct agent *a, json_t *tasks);
void executor_free(struct agent *a);
