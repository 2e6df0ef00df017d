/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"
#include "sched/types.h"

/*
 * The scheduler: pure logic over an in-memory cluster (no syscalls, no store,
 * no threads). The caller mirrors the store into a sched_cluster (nodes, and the
 * tasks already on them), then asks for placements; placed tasks are committed
 * into the cluster so the next request sees them.
 *
 * Filters, in the order a node is tried (the first one that fails is the one
 * counted for the explanation): ready, availability (active; pause and drain
 * take no new tasks), constraints, CPU reservation, memory reservation, max
 * replicas per node, host-mode published ports, the node's own task limit.
 *
 * Strategy, as swarm's: the nodes that pass the first three filters form a tree
 * by placement preference values (the first preference is the top level; nodes
 * without the label form the branch of the empty value). At each level the
 * tasks go to the branches with the fewest tasks of the service, evening them
 * out; in a leaf to the node with the fewest tasks of the service, then fewest
 * tasks in total, then the smallest node id. A batch of N identical tasks costs
 * O(nodes + N log nodes). Unlike swarm, nodes that are full still count their
 * tasks in their branch, so a full zone does not attract more tasks elsewhere in
 * itself, and the split between branches is exact water-filling.
 *
 * Constraint matching follows SwarmKit: key prefixes are case-insensitive,
 * label names case-sensitive, values compared case-insensitively (ASCII), and a
 * missing attribute or label compares as the empty string (so "!=" matches).
 * Spread preference values are compared exactly.
 */

/* Limits; reaching one is an error that says so. */
#define SCHED_MAX_NODES	      (1u << 20)
#define SCHED_MAX_NODE_LABELS 256
#define SCHED_MAX_CONSTRAINTS 64
#define SCHED_MAX_PREFS	      8
#define SCHED_MAX_PORTS	      256
#define SCHED_MAX_REQUEST     (1u << 24)       /* tasks in one request */
#define SCHED_MAX_NODE_TASKS  ((1u << 24) - 1) /* tasks on one node */
#define SCHED_MAX_SVC_TASKS   ((1u << 20) - 1) /* tasks of one service on one node */
#define SCHED_MAX_STRINGS     (1u << 24)       /* distinct ids, names, labels ever seen */

struct sched_cluster;

struct sched_node_desc {
	const char *id; /* required, unique */
	const char *hostname;
	enum node_role role;
	const char *os;			  /* "linux" */
	const char *arch;		  /* "x86_64" */
	const char *const *labels;	  /* node labels "key=value" (or "key"), NULL-terminated */
	const char *const *engine_labels; /* engine labels, same form */
	enum node_availability availability;
	bool ready;
	struct sched_resources total; /* what the node offers to reservations */
	/* Tasks the node can run at once, whatever they reserve (its container
	 * limit, its network's addresses); 0 = no limit of its own. */
	uint32_t max_tasks;
};

/* What a task holds on its node. Only host-mode ports with a published port
 * occupy the node's ports. */
struct sched_task {
	const char *service_id;
	struct sched_resources reservations;
	const struct port_config *ports;
	size_t n_ports;
};

struct sched_cluster *sched_cluster_new(void);
struct sched_cluster *sched_cluster_free(struct sched_cluster *c);

/* Returns the node's index (>= 0, stable until the node is removed). -EEXIST if
 * the id is taken. */
int sched_cluster_add_node(struct sched_cluster *c, const struct sched_node_desc *d,
			   struct shoal_err *err);
/* Replaces a node's description (availability, readiness, labels, resources...);
 * its tasks stay. The id may change if the new one is free. */
int sched_cluster_update_node(struct sched_cluster *c, uint32_t node,
			      const struct sched_node_desc *d, struct shoal_err *err);
/* Forgets a node and its tasks; its index is not reused. */
int sched_cluster_remove_node(struct sched_cluster *c, uint32_t node);
/* Index of the node with this id, or -ENOENT. */
int sched_cluster_find_node(const struct sched_cluster *c, const char *id);
/* Upper bound of node indexes (removed nodes included). */
uint32_t sched_cluster_node_slots(const struct sched_cluster *c);
/* NULL for a removed or unknown index. */
const char *sched_cluster_node_id(const struct sched_cluster *c, uint32_t node);

struct sched_node_usage {
	struct sched_resources reserved;
	uint32_t tasks;		/* all services */
	uint32_t service_tasks; /* of the service asked about */
};
int sched_cluster_node_usage(const struct sched_cluster *c, uint32_t node, const char *service_id,
			     struct sched_node_usage *ret);

/* An existing task (state rebuilt after a restart, or placed by someone else). */
int sched_cluster_add_task(struct sched_cluster *c, uint32_t node, const struct sched_task *t,
			   struct shoal_err *err);
/* A task ended: its reservations, counts and ports leave the node. -ENOENT if
 * the node holds no task of that service. */
int sched_cluster_remove_task(struct sched_cluster *c, uint32_t node, const struct sched_task *t,
			      struct shoal_err *err);

/* N identical tasks of one service. */
struct sched_request {
	const char *service_id;
	uint32_t count;
	struct sched_resources reservations;
	const struct constraint *constraints;
	size_t n_constraints;
	const struct placement_pref *prefs; /* first = top level */
	size_t n_prefs;
	uint64_t max_replicas;		 /* per node; 0 = unlimited */
	const struct port_config *ports; /* host-mode published ones must be free */
	size_t n_ports;
	bool dry_run; /* compute the plan, leave the cluster unchanged */
};

enum sched_filter {
	SCHED_FILTER_NOT_READY,
	SCHED_FILTER_PAUSED,
	SCHED_FILTER_DRAINING,
	SCHED_FILTER_CONSTRAINT,
	SCHED_FILTER_CPU,
	SCHED_FILTER_MEMORY,
	SCHED_FILTER_MAX_REPLICAS,
	SCHED_FILTER_HOST_PORT,
	SCHED_FILTER_NODE_TASKS, /* the node's own limit, sched_node_desc.max_tasks */
	SCHED_FILTER_TASK_LIMIT, /* SCHED_MAX_NODE_TASKS / SCHED_MAX_SVC_TASKS */
	_SCHED_FILTER_MAX,
};

struct sched_result {
	uint32_t count;
	int32_t *nodes; /* per task, in placement order: node index, or -1 */
	uint32_t placed;
	/* Nodes that passed every filter for the first task. */
	uint32_t eligible_nodes;
	/* Per filter, the nodes it rejects for one more task of this request once
	 * the placement is done (each node counted once, under its first failing
	 * filter). */
	uint32_t rejected[_SCHED_FILTER_MAX];
	/* Why the unplaced tasks found no node, e.g. "no suitable node (insufficient
	 * memory on 2 nodes; constraint node.labels.zone==a not met on 1 node; 1 node
	 * draining)"; NULL when every task was placed. */
	char *explanation;
};

/* Places req->count tasks. Returns 0 even when some stay unplaced (see
 * ret->placed and ret->explanation); -EINVAL for a malformed request (an
 * unknown constraint key...), -ENOMEM. */
int sched_place(struct sched_cluster *c, const struct sched_request *req, struct sched_result *ret,
		struct shoal_err *err);
void sched_result_done(struct sched_result *r);

/* Global mode: the nodes that pass readiness, availability and constraints and
 * hold no task of the service (req->count, reservations and ports are not
 * looked at). *ret_nodes is malloc'ed, ascending. */
int sched_global_missing(struct sched_cluster *c, const struct sched_request *req,
			 uint32_t **ret_nodes, size_t *ret_n, struct shoal_err *err);
/* One task of req on a given node (global mode), through every filter. -ENOSPC
 * with err saying why when the node cannot take it ("node n1: insufficient
 * memory"). Honours req->dry_run. */
int sched_place_on_node(struct sched_cluster *c, const struct sched_request *req, uint32_t node,
			struct shoal_err *err);

/* `shoal bench sched` (bench/bench-sched.c): a simulated cluster in memory. */
struct cli_ctx;
int bench_sched(struct cli_ctx *ctx, int argc, char **argv);
