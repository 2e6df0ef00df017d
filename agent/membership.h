/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>

#include <jansson.h>

#include "lib/err.h"

struct agent;

/*
 * This node in the cluster, in the store:
 * - /shoal/nodes/<id>: its record (spec, description, address), written at
 *   every start and kept when the node goes, as swarm keeps a down node;
 * - /shoal/alive/<id>: its liveness, attached to the node's lease, renewed
 *   from the loop: gone within --node-ttl of the agent or its machine dying;
 * - /shoal/leader: the leading manager's id, under that manager's lease, taken
 *   with a compare-and-swap (created only while absent) whenever it is free.
 * A leader that has not heard from the store for its TTL steps down on its own,
 * before its lease can have expired and another manager taken over.
 * On the sqlite store (one node) the same keys and a local lease: the node leads.
 */
#define CLUSTER_ALIVE  "/shoal/alive/"
#define CLUSTER_LEADER "/shoal/leader"

int membership_start(struct agent *a, struct shoal_err *err);
/* A leader hands the leadership back at once (another manager takes over
 * without waiting for the lease); the node's liveness runs out with its lease,
 * so that an agent restarted within --node-ttl never looks down. */
void membership_stop(struct agent *a);

bool membership_is_leader(struct agent *a);
/* The leader's node id, "" when none is known. */
const char *membership_leader(struct agent *a);
bool membership_alive(struct agent *a, const char *node_id);
/* When a node not alive was last seen going down (now_ns() clock), or when
 * this agent started if it has not seen it alive; 0 for a live node. */
int64_t membership_down_since(struct agent *a, const char *node_id);
/* False while the store has not confirmed the node's lease for its TTL. */
bool membership_store_ok(struct agent *a);
/* A node record as the API shows it: Status.State ready/down from the
 * liveness, ManagerStatus.Leader and Reachability from the leadership. */
void membership_decorate(struct agent *a, json_t *node);
