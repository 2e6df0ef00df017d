/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <jansson.h>

#include "lib/err.h"

struct agent;

/*
 * Docker's swarm object on shoal's cluster: one record in the store,
 * /shoal/cluster = {ID, CreatedAt, UpdatedAt, Spec, JoinTokens{Worker,
 * Manager}}, made by the first manager that starts on the store (created only
 * while absent, so two managers starting at once agree on one) and replaced by
 * compare-and-swap when tokens are rotated or the spec changes.
 *
 * A node joins a cluster at shoald's start, not by an API call: `shoald
 * --store etcd --store-endpoints URL --advertise-addr IP --join-token TOKEN`.
 * The token is checked against the record before the node registers, and
 * says its role (a worker token makes a worker, a manager token a manager).
 * A node started without a token is admitted by the store's own access
 * control (etcd's client certificates or users), as before.
 */
#define CLUSTER_SWARM	   "/shoal/cluster"
#define SWARM_TOKEN_PREFIX "SWMTKN-1-"

/* At start, before the node registers: checks --join-token and sets the role
 * from it, or, on a manager, makes the record when the store has none. */
int swarm_start(struct agent *a, struct shoal_err *err);
/* The record as Docker's Swarm object (JoinTokens included); -ENOENT before a
 * manager made it. *ret_rev: its version. */
int swarm_get(struct agent *a, json_t **ret, int64_t *ret_rev, struct shoal_err *err);
/* POST /swarm/update: spec (as GET /swarm gave it, with changes only where
 * shoal can make them: Labels), new tokens as asked. version: the record's
 * version the caller read (-EAGAIN with 409 "update out of sequence" when
 * another change came first). */
int swarm_update(struct agent *a, json_t *spec, int64_t version, bool rotate_worker,
		 bool rotate_manager, struct shoal_err *err);
