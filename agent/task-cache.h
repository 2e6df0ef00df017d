/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "sched/task.h"
#include "sched/types.h"

/*
 * The manager's task records, each parsed once when the store's watch (or a
 * load) delivers it and kept until the next version of it: the record as
 * stored (what the API shows), the orchestrator's struct and the fields the
 * scheduler, the executor and the data plane read. The manager's passes walk
 * these instead of decoding JSON again, and find a service's tasks, this
 * node's tasks and the running ones without walking every task.
 */

/* What a service's tasks share in the cache, and what the manager keeps per
 * service between passes. */
struct task_svc {
	struct task_svc *hnext;
	char id[ORCH_ID_MAX];
	struct task_entry *tasks, *tail; /* oldest write first */
	size_t n;
	/* the manager's */
	bool dirty;	 /* a task of it moved since its last reconcile */
	int64_t rev;	 /* the service record's version at its last reconcile */
	int64_t wake_ns; /* reconcile again at this time (0 = no need) */
	/* placement: what its last run saw, and whether it changed nothing */
	uint64_t sched_sig;
	bool sched_idle;
	size_t queued; /* its writes waiting in the manager's queue */
	/* its last reconcile: when, and whether it asked for nothing */
	int64_t orch_ns;
	bool quiet;
};

struct task_entry {
	struct task_entry *hnext;	  /* id index */
	struct task_entry *snext, *sprev; /* in its service */
	struct task_entry *lnext, *lprev; /* on this node */
	struct task_entry *rnext, *rprev; /* observed running */
	struct task_entry *onext, *oprev; /* on a node, not ended */
	struct task_svc *svc;
	json_t *rec; /* the record as stored, with "Version" (a reference) */
	int64_t rev;
	/* from rec's Docker fields, as they read them */
	const char *id;	     /* rec's key */
	const char *node_id; /* "" until placed */
	enum task_state state;
	int desired;  /* enum task_state; TASK_PREPARING for "ready"; -1 unknown */
	bool local;   /* node_id is this node */
	bool has_sid; /* rec's ServiceID is a string */
	bool running;
	bool holds; /* on a node and not ended: it holds what it reserves there */
	struct sched_resources reservations;
	/* rec's "Orch", when it parses */
	bool orch_ok;
	struct orch_task orch;
};

struct task_cache;

struct task_cache *task_cache_new(const char *node_id);
void task_cache_free(struct task_cache *tc);
/* Takes a reference to rec; replaces what id held. -ENOMEM leaves id out. */
int task_cache_put(struct task_cache *tc, const char *id, json_t *rec, int64_t rev);
void task_cache_del(struct task_cache *tc, const char *id);
void task_cache_clear(struct task_cache *tc);
struct task_entry *task_cache_get(const struct task_cache *tc, const char *id);
size_t task_cache_size(const struct task_cache *tc);

/* A service's entry (created empty with create); NULL if none. */
struct task_svc *task_cache_svc(struct task_cache *tc, const char *sid, bool create);
/* Every service entry, for walking: *it starts NULL. */
struct task_svc *task_cache_svc_next(struct task_cache *tc, size_t *bucket, struct task_svc *it);
/* Drops a service entry that holds no task. */
void task_cache_svc_drop(struct task_cache *tc, struct task_svc *s);

/* Every task (walk with ->hnext across buckets via task_cache_next). */
struct task_entry *task_cache_next(const struct task_cache *tc, size_t *bucket,
				   struct task_entry *it);
/* This node's tasks (oldest write first), and the tasks observed running
 * (any node). */
struct task_entry *task_cache_local(const struct task_cache *tc);
struct task_entry *task_cache_running(const struct task_cache *tc);
/* The tasks that hold resources on a node (placed, not ended, of a service). */
struct task_entry *task_cache_holding(const struct task_cache *tc);
size_t task_cache_running_count(const struct task_cache *tc);
