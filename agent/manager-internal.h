/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SHOAL_AGENT_MANAGER_INTERNAL_H
#define SHOAL_AGENT_MANAGER_INTERNAL_H
/*
 * What the manager's files share (agent/manager.c: the caches, reconcile
 * passes, the store's writes; agent/manager-place.c: placement's view of the
 * cluster, dry runs, service status). Not for other rooms.
 */
#include <stdint.h>

#include <jansson.h>

#include "lib/util.h"
#include "sched/scheduler.h"
#include "sched/spec.h"

struct agent;
struct task_cache;

/* The manager's task cache, NULL while the manager is not running. */
struct task_cache *mgr_task_cache(struct agent *a);
/* A record's store revision (its Version.Index). */
int64_t mgr_task_rev(json_t *t);

/* The node records, each with its liveness as its state (the membership's
 * cache): a reference in *ret. */
int mgr_nodes_load(struct agent *a, json_t **ret, struct shoal_err *err);
/* The scheduler's view of the cluster: nodes, and the tasks holding
 * resources (but except_sid's); *ret_sig (if given): a signature of what
 * placement depends on, to skip it when nothing moved. */
struct sched_cluster *mgr_build_cluster(struct agent *a, json_t *nodes, struct task_cache *tc,
					const char *except_sid, uint64_t *ret_sig);
/* A node record's availability (Spec.Availability; active when unset). */
enum node_availability mgr_node_avail(json_t *n);
/* A placement request for count tasks of service sid. */
void mgr_request_from_spec(const char *sid, const struct service_spec *spec, uint32_t count,
			   struct sched_request *req);
/* A stored spec parsed (NULL if it does not parse: the API checked it). */
struct service_spec *mgr_parse_spec(json_t *spec_json);

#endif
