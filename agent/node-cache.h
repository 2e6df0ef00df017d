/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/*
 * The cluster's nodes as this agent knows them: each node's record
 * (/shoal/nodes/<id>, parsed once per version) and its liveness
 * (/shoal/alive/<id>), fed by the store's watches of both prefixes, plus the
 * leader's id. A pass of the manager reads its node list from here instead
 * of reading every node record from the store again.
 *
 * Pure: no store, no loop, no clock of its own (times are given).
 */

/* More nodes than any cluster shoal is meant for: a store that holds more is
 * refused record by record (-ENOSPC) rather than grown into without bound. */
#define NODE_CACHE_MAX 100000

enum node_cache_part { NODE_CACHE_RECORDS, NODE_CACHE_ALIVE };

struct node_cache;

struct node_cache *node_cache_new(void);
void node_cache_free(struct node_cache *nc);

/* A node record as stored, at its mod revision: parsed, given "Version":
 * {"Index": rev}, and kept until a newer one. A put older than what is held
 * changes nothing. -EBADMSG when value is not a JSON object, -ENOSPC past
 * NODE_CACHE_MAX nodes, -ENOMEM. */
int node_cache_record_put(struct node_cache *nc, const char *id, const char *value, size_t len,
			  int64_t rev);
void node_cache_record_del(struct node_cache *nc, const char *id);

/* A node's liveness key appeared or went. 1 when the node's liveness changed
 * (it came up, or went down), 0 when not, -errno. A node going down is
 * remembered with the time given. */
int node_cache_alive_put(struct node_cache *nc, const char *id);
int node_cache_alive_del(struct node_cache *nc, const char *id, int64_t now_ns);

/* A full read of one part (a watch's start, or its restart after its history
 * was compacted): begin, put everything read, end. What the read did not
 * hold is gone: records dropped, live nodes marked down at now_ns. */
void node_cache_reload_begin(struct node_cache *nc, enum node_cache_part part);
void node_cache_reload_end(struct node_cache *nc, enum node_cache_part part, int64_t now_ns);

/* The leading manager's id ("" or NULL: none known). */
void node_cache_set_leader(struct node_cache *nc, const char *id);

bool node_cache_alive(const struct node_cache *nc, const char *id);
/* When the node was last seen going down; 0 when it is alive or was never
 * seen go (the caller knows since when it has been looking). */
int64_t node_cache_down_since(const struct node_cache *nc, const char *id);

/* A node record as the API shows it (Status.State ready/down from the
 * liveness, ManagerStatus.Leader and Reachability from the leadership),
 * changed in place. */
void node_cache_decorate(const struct node_cache *nc, json_t *node);

/* Every node record, decorated, in id order (as a prefix read of the store
 * returns them). A borrowed reference: take one of your own to keep it past
 * the next change of the cache; the records in it are not to be changed. */
json_t *node_cache_list(struct node_cache *nc);
/* Moves on whenever anything node_cache_list() shows changes. */
uint64_t node_cache_generation(const struct node_cache *nc);
/* Node records held. */
size_t node_cache_size(const struct node_cache *nc);
