/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "lib/err.h"

struct agent;
struct container;

/*
 * Cluster objects in the store, as Docker's JSON: nodes, services and tasks
 * under /shoal/. An object's version is the store's mod revision of its key;
 * writes that race use compare-and-swap on it, never read-modify-write.
 */
#define CLUSTER_NODES	 "/shoal/nodes/"
#define CLUSTER_SERVICES "/shoal/services/"
#define CLUSTER_TASKS	 "/shoal/tasks/"

/* Reads one object; *ret_rev = its version. -ENOENT if absent. */
int cluster_get(struct agent *a, const char *key, json_t **ret, int64_t *ret_rev,
		struct shoal_err *err);
/* Every object under prefix, as an array; each gets "Version": {"Index": rev}. */
int cluster_list(struct agent *a, const char *prefix, json_t **ret, struct shoal_err *err);
/* Writes obj at key if its version is still expect_rev (0: only if absent;
 * -1: unconditionally). -EAGAIN (HTTP 409) when someone else wrote first. */
int cluster_put(struct agent *a, const char *key, json_t *obj, int64_t expect_rev, int64_t *ret_rev,
		struct shoal_err *err);
int cluster_delete(struct agent *a, const char *key, int64_t expect_rev, struct shoal_err *err);

/* Asks the manager to reconcile soon (coalesced). */
void cluster_kick(struct agent *a);

/* Called by the container code when a container exits or is removed. */
void executor_container_exited(struct agent *a, struct container *c);
