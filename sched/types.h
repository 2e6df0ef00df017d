/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Plain data shared by the service spec (spec.h), the scheduler (scheduler.h)
 * and the orchestrator (orchestrator.h). Field names and defaults follow Docker's
 * swarm ServiceSpec. Durations are nanoseconds, as in the Engine API.
 */

struct sched_resources {
	int64_t nano_cpus; /* 1e9 = one CPU */
	int64_t memory_bytes;
	int64_t pids; /* limits only; 0 = unlimited */
};

enum restart_condition { RESTART_NONE, RESTART_ON_FAILURE, RESTART_ANY };

struct restart_policy {
	enum restart_condition condition; /* default any */
	int64_t delay_ns;		  /* default 5 s */
	uint64_t max_attempts;		  /* 0 = unlimited */
	int64_t window_ns;		  /* 0 = unbounded */
};

enum update_failure_action { FAILURE_PAUSE, FAILURE_CONTINUE, FAILURE_ROLLBACK };
enum update_order { ORDER_STOP_FIRST, ORDER_START_FIRST };

/* UpdateConfig and RollbackConfig. Defaults (Docker): parallelism 1, delay 0,
 * failure action pause (rollback: pause), monitor 5 s, max failure ratio 0,
 * order stop-first. Parallelism 0 = all at once. */
struct update_config {
	uint64_t parallelism;
	int64_t delay_ns;
	enum update_failure_action failure_action;
	int64_t monitor_ns;
	double max_failure_ratio;
	enum update_order order;
};

enum constraint_op { CONSTRAINT_EQ, CONSTRAINT_NE };

/* "node.labels.zone==a": key "node.labels.zone", op EQ, value "a". Keys:
 * node.id, node.hostname, node.role, node.platform.os, node.platform.arch,
 * node.labels.<name>, engine.labels.<name>. */
struct constraint {
	char *key;
	enum constraint_op op;
	char *value;
	char *text; /* as given ("node.role == manager"), what the spec shows */
};

/* Placement preference "spread=node.labels.zone". */
struct placement_pref {
	char *spread_key;
};

enum port_protocol { PORT_TCP, PORT_UDP, PORT_SCTP };
enum publish_mode { PUBLISH_INGRESS, PUBLISH_HOST };

struct port_config {
	enum port_protocol protocol;
	uint16_t target_port;
	uint16_t published_port; /* 0 = assign */
	enum publish_mode mode;
};

enum node_availability { NODE_ACTIVE, NODE_PAUSE, NODE_DRAIN };
enum node_role { NODE_WORKER, NODE_MANAGER };

/* Task states, forward only, as swarm's. */
enum task_state {
	TASK_NEW,
	TASK_PENDING,
	TASK_ASSIGNED,
	TASK_ACCEPTED,
	TASK_PREPARING,
	TASK_STARTING,
	TASK_RUNNING,
	TASK_COMPLETE,
	TASK_SHUTDOWN,
	TASK_FAILED,
	TASK_REJECTED,
	TASK_REMOVE,
	TASK_ORPHANED,
};
