/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "lib/err.h"

struct agent;

/*
 * This node in the cluster, in the store:
 * - /shoal/nodes/<id>: its record (spec, description, address), written at
 *   every start and kept when the node goes, as swarm keeps a down node;
 * - /shoal/alive/<id>: its liveness, attached to the node's lease, kept alive
 *   by the store: gone within --node-ttl of the agent or its machine dying;
 * - /shoal/leader: the leading manager's id, under that manager's lease, taken
 *   with a compare-and-swap (created only while absent) whenever it is free.
 * Every agent keeps all the nodes' records and liveness from watches of both
 * prefixes (agent/node-cache.c): read once, then kept from the events, read
 * again only when a watch has to start over.
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
/* Every node record, decorated, in id order, as the store's watches keep them
 * (read once at the start, and again only when a watch had to start over):
 * no store read. A borrowed reference, to take one of and not to change;
 * NULL before membership_start() or when out of memory. */
json_t *membership_nodes(struct agent *a);
/* Moves on whenever what membership_nodes() shows changes. */
uint64_t membership_nodes_generation(struct agent *a);
