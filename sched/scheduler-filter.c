// SPDX-License-Identifier: Apache-2.0
/* Requests compiled against the cluster, the filters a node goes through, and the
 * explanation of why tasks found no node. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/cleanup.h"
#include "sched/scheduler-internal.h"

/* ---- compiled requests ---- */

static int parse_key(const struct sched_cluster *c, const char *key, struct sched_keyref *ret)
{
	static const struct {
		const char *name;
		enum key_kind kind;
	} fixed[] = {
		{"node.id", KEY_ID},
		{"node.hostname", KEY_HOSTNAME},
		{"node.role", KEY_ROLE},
		{"node.platform.os", KEY_OS},
		{"node.platform.arch", KEY_ARCH},
	};
	for (size_t i = 0; i < ARRAY_SIZE(fixed); i++)
		if (strcasecmp(key, fixed[i].name) == 0) {
			*ret = (struct sched_keyref){fixed[i].kind, -1};
			return 0;
		}
	static const char nl[] = "node.labels.", el[] = "engine.labels.";
	const char *name = NULL;
	enum key_kind kind;
	if (strlen(key) > strlen(nl) && strncasecmp(key, nl, strlen(nl)) == 0) {
		name = key + strlen(nl);
		kind = KEY_LABEL;
	} else if (strlen(key) > strlen(el) && strncasecmp(key, el, strlen(el)) == 0) {
		name = key + strlen(el);
		kind = KEY_ENGINE_LABEL;
	} else {
		return -EINVAL;
	}
	int id = sched_strtab_lookup(&c->strs, name);
	*ret = (struct sched_keyref){kind, id < 0 ? -1 : id};
	return 0;
}

static const char supported_keys[] = "node.id, node.hostname, node.role, node.platform.os, "
				     "node.platform.arch, node.labels.<name>, engine.labels.<name>";

int sched_request_compile(struct sched_cluster *c, const struct sched_request *req, bool want_svc,
			  struct sched_creq *q, struct shoal_err *err)
{
	memset(q, 0, offsetof(struct sched_creq, cons));
	memset(q->rejected, 0, sizeof(q->rejected));
	q->max_tasks_seen = 0;
	q->req = req;
	if (!req->service_id || !*req->service_id)
		return shoal_err_set(err, EINVAL, "a placement request needs a service id");
	if (req->count > SCHED_MAX_REQUEST)
		return shoal_err_set(err, E2BIG, "%u tasks in one request; at most %u", req->count,
				     SCHED_MAX_REQUEST);
	if (req->reservations.nano_cpus < 0 || req->reservations.memory_bytes < 0)
		return shoal_err_set(err, EINVAL, "negative reservations");
	if (req->n_constraints > SCHED_MAX_CONSTRAINTS)
		return shoal_err_set(err, E2BIG, "more than %d constraints", SCHED_MAX_CONSTRAINTS);
	if (req->n_prefs > SCHED_MAX_PREFS)
		return shoal_err_set(err, E2BIG, "more than %d placement preferences",
				     SCHED_MAX_PREFS);
	if (req->n_ports > SCHED_MAX_PORTS)
		return shoal_err_set(err, E2BIG, "more than %d ports", SCHED_MAX_PORTS);
	for (size_t i = 0; i < req->n_constraints; i++) {
		const struct constraint *k = &req->constraints[i];
		if (!k->key || !k->value)
			return shoal_err_set(err, EINVAL, "constraint %zu has no key or value", i);
		if (parse_key(c, k->key, &q->cons[i].key) < 0)
			return shoal_err_set(
				err, EINVAL,
				"constraint key \"%s\" is not supported; use one of %s", k->key,
				supported_keys);
		int64_t f = sched_strtab_fold_of(&c->strs, k->value);
		if (f == -ENOMEM)
			return -ENOMEM;
		q->cons[i].fold = f;
		q->cons[i].eq = k->op == CONSTRAINT_EQ;
		q->cons[i].rejected = 0;
	}
	q->n_cons = req->n_constraints;
	for (size_t i = 0; i < req->n_prefs; i++) {
		const char *key = req->prefs[i].spread_key;
		if (!key || parse_key(c, key, &q->prefs[i]) < 0)
			return shoal_err_set(
				err, EINVAL,
				"spread preference \"%s\" is not supported; use one of %s",
				key ?: "", supported_keys);
	}
	q->n_prefs = req->n_prefs;
	q->n_ports = 0;
	for (size_t i = 0; i < req->n_ports; i++) {
		if (!sched_port_occupies(&req->ports[i]))
			continue;
		q->ports[q->n_ports++] = (struct sched_cport){sched_port_code(&req->ports[i]), 0};
	}
	int svc = want_svc ? sched_strtab_intern(&c->strs, req->service_id)
			   : sched_strtab_lookup(&c->strs, req->service_id);
	if (svc == -ENOMEM || svc == -E2BIG)
		return shoal_err_set(err, -svc, "interning service %s", req->service_id);
	q->svc = svc < 0 ? UINT32_MAX : (uint32_t)svc;
	q->svc_anywhere = svc >= 0 && sched_u32map_get(&c->svc_total, (uint32_t)svc) > 0;
	return 0;
}

int sched_node_filter(const struct sched_cluster *c, const struct sched_node *n,
		      const struct sched_creq *q, size_t *ret_cons)
{
	if (!n->ready)
		return SCHED_FILTER_NOT_READY;
	if (n->avail == NODE_PAUSE)
		return SCHED_FILTER_PAUSED;
	if (n->avail == NODE_DRAIN)
		return SCHED_FILTER_DRAINING;
	for (size_t i = 0; i < q->n_cons; i++) {
		const struct sched_ccons *k = &q->cons[i];
		bool match = (int64_t)c->strs.fold[sched_node_value(c, n, &k->key)] == k->fold;
		if (match != k->eq) {
			*ret_cons = i;
			return SCHED_FILTER_CONSTRAINT;
		}
	}
	return -1;
}

static inline uint32_t min_room(uint32_t room, uint64_t r, uint8_t *reason, uint8_t why)
{
	if (r < room) {
		*reason = why;
		return (uint32_t)r;
	}
	return room;
}

void sched_node_room(const struct sched_node *n, const struct sched_creq *q, struct sched_cand *cd)
{
	const struct sched_request *req = q->req;
	cd->reason = SCHED_FILTER_TASK_LIMIT;
	cd->detail = 0;
	uint32_t room = SCHED_MAX_SVC_TASKS - cd->cnt;
	room = min_room(room, SCHED_MAX_NODE_TASKS - n->tasks, &cd->reason,
			SCHED_FILTER_TASK_LIMIT);
	if (n->max_tasks)
		room = min_room(room, n->max_tasks > n->tasks ? n->max_tasks - n->tasks : 0,
				&cd->reason, SCHED_FILTER_NODE_TASKS);
	if (req->reservations.nano_cpus > 0) {
		int64_t left = n->total.nano_cpus - n->reserved.nano_cpus;
		room = min_room(room, left > 0 ? (uint64_t)(left / req->reservations.nano_cpus) : 0,
				&cd->reason, SCHED_FILTER_CPU);
	}
	if (req->reservations.memory_bytes > 0) {
		int64_t left = n->total.memory_bytes - n->reserved.memory_bytes;
		room = min_room(room,
				left > 0 ? (uint64_t)(left / req->reservations.memory_bytes) : 0,
				&cd->reason, SCHED_FILTER_MEMORY);
	}
	if (req->max_replicas)
		room = min_room(room, req->max_replicas > cd->cnt ? req->max_replicas - cd->cnt : 0,
				&cd->reason, SCHED_FILTER_MAX_REPLICAS);
	if (q->n_ports) {
		size_t used = q->n_ports;
		for (size_t i = 0; i < q->n_ports && used == q->n_ports; i++)
			if (sched_node_port_used(n, q->ports[i].code))
				used = i;
		/* A task of the service already on the node holds its host ports,
		 * whether or not the caller listed them with the task. */
		if (used == q->n_ports && cd->cnt > 0)
			used = 0;
		/* A host port taken by the first task makes the node full for the rest. */
		room = min_room(room, used < q->n_ports ? 0 : 1, &cd->reason,
				SCHED_FILTER_HOST_PORT);
		if (cd->reason == SCHED_FILTER_HOST_PORT && used < q->n_ports)
			cd->detail = (uint16_t)used;
	}
	cd->room = room;
}

/* ---- explanation ---- */

struct strbuf {
	char *s;
	size_t len, cap;
	bool oom;
};

static void sb_printf(struct strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(struct strbuf *b, const char *fmt, ...)
{
	if (b->oom)
		return;
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = true;
			return;
		}
		if (b->s && b->len + (size_t)n < b->cap) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = (b->cap ? b->cap * 2 : 128) + (size_t)n;
		char *s = realloc(b->s, cap);
		if (!s) {
			b->oom = true;
			return;
		}
		b->s = s;
		b->cap = cap;
	}
}

struct reason {
	uint32_t count;
	int order;
	char text[600];
};

static int cmp_reason(const void *a, const void *b)
{
	const struct reason *x = a, *y = b;
	if (x->count != y->count)
		return x->count > y->count ? -1 : 1;
	return x->order - y->order;
}

static const char *nodes_word(uint32_t n)
{
	return n == 1 ? "node" : "nodes";
}

const char *sched_port_proto_name(uint32_t p)
{
	return p == PORT_UDP ? "udp" : p == PORT_SCTP ? "sctp" : "tcp";
}

char *sched_request_explain(const struct sched_creq *q)
{
	const struct sched_request *req = q->req;
	size_t max = 9 + q->n_cons + q->n_ports;
	_cleanup_free_ struct reason *rs = calloc(max, sizeof(*rs));
	if (!rs)
		return NULL;
	size_t n = 0;
#define ADD(cnt, ord, ...)                                                     \
	do {                                                                   \
		if (cnt) {                                                     \
			rs[n].count = (cnt);                                   \
			rs[n].order = (ord);                                   \
			snprintf(rs[n].text, sizeof(rs[n].text), __VA_ARGS__); \
			n++;                                                   \
		}                                                              \
	} while (0)
	const uint32_t *f = q->rejected;
	ADD(f[SCHED_FILTER_CPU], 0, "insufficient CPU on %u %s", f[SCHED_FILTER_CPU],
	    nodes_word(f[SCHED_FILTER_CPU]));
	ADD(f[SCHED_FILTER_MEMORY], 1, "insufficient memory on %u %s", f[SCHED_FILTER_MEMORY],
	    nodes_word(f[SCHED_FILTER_MEMORY]));
	for (size_t i = 0; i < q->n_cons; i++) {
		const struct constraint *k = &req->constraints[i];
		ADD(q->cons[i].rejected, 2, "constraint %s%s%s not met on %u %s", k->key,
		    k->op == CONSTRAINT_EQ ? "==" : "!=", k->value, q->cons[i].rejected,
		    nodes_word(q->cons[i].rejected));
	}
	ADD(f[SCHED_FILTER_MAX_REPLICAS], 3, "max replicas per node (%llu) reached on %u %s",
	    (unsigned long long)req->max_replicas, f[SCHED_FILTER_MAX_REPLICAS],
	    nodes_word(f[SCHED_FILTER_MAX_REPLICAS]));
	for (size_t i = 0; i < q->n_ports; i++)
		ADD(q->ports[i].rejected, 4, "host port %u/%s in use on %u %s",
		    q->ports[i].code & 0xffff, sched_port_proto_name(q->ports[i].code >> 16),
		    q->ports[i].rejected, nodes_word(q->ports[i].rejected));
	ADD(f[SCHED_FILTER_NODE_TASKS], 5,
	    "the node's task limit (%u tasks at once: its containers and network addresses) "
	    "reached on %u %s",
	    q->max_tasks_seen, f[SCHED_FILTER_NODE_TASKS], nodes_word(f[SCHED_FILTER_NODE_TASKS]));
	ADD(f[SCHED_FILTER_TASK_LIMIT], 5, "task count limit reached on %u %s",
	    f[SCHED_FILTER_TASK_LIMIT], nodes_word(f[SCHED_FILTER_TASK_LIMIT]));
	ADD(f[SCHED_FILTER_NOT_READY], 6, "%u %s not ready", f[SCHED_FILTER_NOT_READY],
	    nodes_word(f[SCHED_FILTER_NOT_READY]));
	ADD(f[SCHED_FILTER_PAUSED], 7, "%u %s paused", f[SCHED_FILTER_PAUSED],
	    nodes_word(f[SCHED_FILTER_PAUSED]));
	ADD(f[SCHED_FILTER_DRAINING], 8, "%u %s draining", f[SCHED_FILTER_DRAINING],
	    nodes_word(f[SCHED_FILTER_DRAINING]));
#undef ADD
	qsort(rs, n, sizeof(*rs), cmp_reason);
	struct strbuf b = {0};
	sb_printf(&b, "no suitable node (");
	if (n == 0)
		sb_printf(&b, "no nodes in the cluster");
	for (size_t i = 0; i < n; i++)
		sb_printf(&b, "%s%s", i ? "; " : "", rs[i].text);
	sb_printf(&b, ")");
	if (b.oom) {
		free(b.s);
		return NULL;
	}
	return b.s;
}
