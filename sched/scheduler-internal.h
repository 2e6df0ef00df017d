/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sched/scheduler.h"

/* Shared by the scheduler's parts: the cluster and its bookkeeping
 * (scheduler-cluster.c), compiled requests, filters and explanations
 * (scheduler-filter.c), and placement (scheduler.c). */

/* ---- string interning ----
 * Every id, hostname, label key and value is interned once; nodes hold ids, so
 * constraint checks and spread grouping compare integers. Each string also
 * knows the id of its ASCII-lowercased form: "==" compares those. Id 0 is "". */

struct sched_strtab {
	char **str;
	uint32_t *fold;
	uint32_t n, cap;
	uint32_t *slots; /* id + 1; 0 = empty */
	uint32_t nslots; /* power of two */
};

/* ---- u32 -> u32 map, open addressing with backward-shift deletion ---- */

struct sched_u32map {
	uint32_t *keys; /* key + 1; 0 = empty */
	uint32_t *vals;
	uint32_t cap, n;
};

static inline uint32_t sched_u32map_slot(uint32_t key, uint32_t mask)
{
	return (uint32_t)(((uint64_t)(key + 1) * 0x9E3779B97F4A7C15ull) >> 32) & mask;
}

static inline uint32_t sched_u32map_get(const struct sched_u32map *m, uint32_t key)
{
	if (!m->n)
		return 0;
	uint32_t mask = m->cap - 1;
	for (uint32_t i = sched_u32map_slot(key, mask);; i = (i + 1) & mask) {
		if (!m->keys[i])
			return 0;
		if (m->keys[i] == key + 1)
			return m->vals[i];
	}
}

static inline bool sched_u32map_has(const struct sched_u32map *m, uint32_t key)
{
	if (!m->n)
		return false;
	uint32_t mask = m->cap - 1;
	for (uint32_t i = sched_u32map_slot(key, mask);; i = (i + 1) & mask) {
		if (!m->keys[i])
			return false;
		if (m->keys[i] == key + 1)
			return true;
	}
}

/* ---- the cluster ---- */

struct sched_label {
	uint32_t key, val;
};

struct sched_node {
	uint32_t id, hostname, os, arch;
	enum node_role role;
	enum node_availability avail;
	bool ready, removed;
	uint16_t n_labels, n_elabels;
	struct sched_label *labels; /* node labels, then engine labels */
	struct sched_resources total, reserved;
	uint32_t tasks;
	uint32_t max_tasks;	 /* 0 = none of its own */
	struct sched_u32map svc; /* service string id -> tasks of it here */
	uint32_t *ports;	 /* host ports in use: protocol << 16 | port */
	uint32_t n_ports, cap_ports;
};

/* One node that passed the static filters, during a request. */
struct sched_cand {
	uint32_t node, cnt, room, added;
	uint8_t reason;	 /* filter that bounds room */
	uint16_t detail; /* port index for SCHED_FILTER_HOST_PORT */
};

struct sched_tnode {
	uint32_t lo, hi; /* range in cands */
	uint32_t first_child, n_child;
	uint64_t tasks; /* of the service, on the nodes below */
	uint64_t cap;	/* more tasks the nodes below can take */
	uint32_t heap_n;
	bool heap_built;
};

struct sched_scratch {
	struct sched_cand *cands;
	struct sched_cand *tmp;
	uint64_t *keys;
	uint32_t *cand_of_rank;
	uint32_t *vals;	 /* per level, per cand: local value rank */
	uint32_t cap;	 /* nodes the arrays above hold */
	uint32_t *local; /* string id -> local rank, UINT32_MAX when unused */
	uint32_t cap_local;
	struct sched_tnode *t;
	uint32_t n_t, cap_t;
	uint64_t *quota; /* per tnode */
	uint32_t cap_quota;
};

struct sched_cluster {
	struct sched_strtab strs;
	struct sched_node *nodes;
	uint32_t n_nodes, cap_nodes, live;
	struct sched_u32map by_id;     /* id string -> node index */
	struct sched_u32map svc_total; /* service string id -> tasks in the cluster */
	uint32_t *rank, *by_rank;
	uint32_t cap_rank;
	bool rank_dirty;
	uint32_t s_worker, s_manager;
	struct sched_scratch s;
};

/* ---- compiled requests ---- */

enum key_kind { KEY_ID, KEY_HOSTNAME, KEY_ROLE, KEY_OS, KEY_ARCH, KEY_LABEL, KEY_ENGINE_LABEL };

struct sched_keyref {
	enum key_kind kind;
	int64_t label; /* string id of the label name; -1 when no node has it */
};

struct sched_ccons {
	struct sched_keyref key;
	bool eq;
	int64_t fold; /* fold id of the value; -1 when nothing equals it */
	uint32_t rejected;
};

struct sched_cport {
	uint32_t code;
	uint32_t rejected;
};

struct sched_creq {
	const struct sched_request *req;
	uint32_t svc;
	bool svc_anywhere; /* some node holds a task of the service */
	struct sched_ccons cons[SCHED_MAX_CONSTRAINTS];
	size_t n_cons;
	struct sched_keyref prefs[SCHED_MAX_PREFS];
	size_t n_prefs;
	struct sched_cport ports[SCHED_MAX_PORTS];
	size_t n_ports;
	uint32_t rejected[_SCHED_FILTER_MAX];
	uint32_t max_tasks_seen; /* the largest max_tasks of a node full by it */
};

/* The cluster (scheduler-cluster.c). */
int sched_strtab_lookup(const struct sched_strtab *t, const char *s);
int sched_strtab_intern(struct sched_strtab *t, const char *s);
/* Fold id of a value, or -1 when no interned string folds to it (so no node
 * attribute can equal it); -ENOMEM. */
int64_t sched_strtab_fold_of(const struct sched_strtab *t, const char *s);
void sched_strtab_done(struct sched_strtab *t);
int sched_u32map_set(struct sched_u32map *m, uint32_t key, uint32_t val);
void sched_u32map_done(struct sched_u32map *m);
struct sched_node *sched_cluster_live_node(const struct sched_cluster *c, uint32_t idx);
/* Ranks live nodes by id: the final tie-break, and the low bits of heap keys. */
int sched_cluster_rank_update(struct sched_cluster *c);
int sched_cluster_svc_total_add(struct sched_cluster *c, uint32_t svc, int64_t delta);
int sched_node_ports_add(struct sched_node *n, uint32_t code);

static inline uint32_t sched_port_code(const struct port_config *p)
{
	return (uint32_t)p->protocol << 16 | p->published_port;
}

static inline bool sched_port_occupies(const struct port_config *p)
{
	return p->mode == PUBLISH_HOST && p->published_port != 0;
}

static inline bool sched_node_port_used(const struct sched_node *n, uint32_t code)
{
	for (uint32_t i = 0; i < n->n_ports; i++)
		if (n->ports[i] == code)
			return true;
	return false;
}

static inline uint32_t sched_node_value(const struct sched_cluster *c, const struct sched_node *n,
					const struct sched_keyref *k)
{
	switch (k->kind) {
	case KEY_ID:
		return n->id;
	case KEY_HOSTNAME:
		return n->hostname;
	case KEY_ROLE:
		return n->role == NODE_MANAGER ? c->s_manager : c->s_worker;
	case KEY_OS:
		return n->os;
	case KEY_ARCH:
		return n->arch;
	case KEY_LABEL:
	case KEY_ENGINE_LABEL: {
		if (k->label < 0)
			return 0;
		const struct sched_label *l = n->labels + (k->kind == KEY_LABEL ? 0 : n->n_labels);
		uint16_t cnt = k->kind == KEY_LABEL ? n->n_labels : n->n_elabels;
		for (uint16_t i = 0; i < cnt; i++)
			if (l[i].key == (uint32_t)k->label)
				return l[i].val;
		return 0;
	}
	}
	return 0;
}

/* Requests and filters (scheduler-filter.c). */
/* Checks req and resolves its keys, values and ports against the cluster;
 * want_svc interns the service id (a placement), else only looks it up. */
int sched_request_compile(struct sched_cluster *c, const struct sched_request *req, bool want_svc,
			  struct sched_creq *q, struct shoal_err *err);
/* Readiness, availability, constraints: -1 when the node passes, else the
 * filter; *ret_cons is the failing constraint. */
int sched_node_filter(const struct sched_cluster *c, const struct sched_node *n,
		      const struct sched_creq *q, size_t *ret_cons);
/* How many more tasks of the request fit on the node, and what bounds that. */
void sched_node_room(const struct sched_node *n, const struct sched_creq *q, struct sched_cand *cd);
/* "no suitable node (insufficient memory on 2 nodes; ...)", largest counts first.
 * NULL on ENOMEM. */
char *sched_request_explain(const struct sched_creq *q);
const char *sched_port_proto_name(uint32_t p);
