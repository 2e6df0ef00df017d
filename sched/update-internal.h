/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include "sched/update.h"

/* Starts a new update or rollback phase: fresh failure budget, slots to be
 * counted again, no batch in flight. */
void orch_update_new_phase(struct orch_update *u, int64_t now_ns);
