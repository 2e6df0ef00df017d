// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/cleanup.h"
#include "sched/scheduler.h"

/* ---- string interning ----
 * Every id, hostname, label key and value is interned once; nodes hold ids, so
 * constraint checks and spread grouping compare integers. Each string also
 * knows the id of its ASCII-lowercased form: "==" compares those. Id 0 is "". */

struct strtab {
	char **str;
	uint32_t *fold;
	uint32_t n, cap;
	uint32_t *slots; /* id + 1; 0 = empty */
	uint32_t nslots; /* power of two */
};

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h ^ (h >> 29);
}

static int strtab_lookup(const struct strtab *t, const char *s)
{
	if (!t->nslots)
		return -ENOENT;
	uint32_t mask = t->nslots - 1;
	for (uint32_t i = (uint32_t)hash_str(s) & mask;; i = (i + 1) & mask) {
		uint32_t v = t->slots[i];
		if (!v)
			return -ENOENT;
		if (strcmp(t->str[v - 1], s) == 0)
			return (int)(v - 1);
	}
}

static int strtab_grow(struct strtab *t)
{
	uint32_t nslots = t->nslots ? t->nslots * 2 : 1024;
	uint32_t *slots = calloc(nslots, sizeof(*slots));
	if (!slots)
		return -ENOMEM;
	for (uint32_t id = 0; id < t->n; id++) {
		uint32_t i = (uint32_t)hash_str(t->str[id]) & (nslots - 1);
		while (slots[i])
			i = (i + 1) & (nslots - 1);
		slots[i] = id + 1;
	}
	free(t->slots);
	t->slots = slots;
	t->nslots = nslots;
	return 0;
}

static int strtab_add(struct strtab *t, const char *s, uint32_t fold)
{
	if (t->n >= SCHED_MAX_STRINGS)
		return -E2BIG;
	if ((uint64_t)(t->n + 1) * 4 > (uint64_t)t->nslots * 3) {
		int r = strtab_grow(t);
		if (r < 0)
			return r;
	}
	if (t->n == t->cap) {
		uint32_t cap = t->cap ? t->cap * 2 : 256;
		char **str = realloc(t->str, cap * sizeof(*str));
		if (!str)
			return -ENOMEM;
		t->str = str;
		uint32_t *f = realloc(t->fold, cap * sizeof(*f));
		if (!f)
			return -ENOMEM;
		t->fold = f;
		t->cap = cap;
	}
	char *copy = strdup(s);
	if (!copy)
		return -ENOMEM;
	uint32_t id = t->n++;
	t->str[id] = copy;
	t->fold[id] = fold == UINT32_MAX ? id : fold;
	uint32_t mask = t->nslots - 1;
	uint32_t i = (uint32_t)hash_str(s) & mask;
	while (t->slots[i])
		i = (i + 1) & mask;
	t->slots[i] = id + 1;
	return (int)id;
}

static char *ascii_lower(const char *s)
{
	char *l = strdup(s);
	if (l)
		for (char *p = l; *p; p++)
			if (*p >= 'A' && *p <= 'Z')
				*p = (char)(*p - 'A' + 'a');
	return l;
}

static int strtab_intern(struct strtab *t, const char *s)
{
	int id = strtab_lookup(t, s ?: "");
	if (id >= 0)
		return id;
	s = s ?: "";
	_cleanup_free_ char *lower = ascii_lower(s);
	if (!lower)
		return -ENOMEM;
	uint32_t fold = UINT32_MAX;
	if (strcmp(lower, s) != 0) {
		int f = strtab_intern(t, lower);
		if (f < 0)
			return f;
		fold = (uint32_t)f;
	}
	return strtab_add(t, s, fold);
}

/* Fold id of a value, or -1 when no interned string folds to it (so no node
 * attribute can equal it). */
static int64_t strtab_fold_of(const struct strtab *t, const char *s)
{
	_cleanup_free_ char *lower = ascii_lower(s);
	if (!lower)
		return -ENOMEM;
	int id = strtab_lookup(t, lower);
	return id < 0 ? -1 : (int64_t)t->fold[id];
}

static void strtab_done(struct strtab *t)
{
	for (uint32_t i = 0; i < t->n; i++)
		free(t->str[i]);
	free(t->str);
	free(t->fold);
	free(t->slots);
	memset(t, 0, sizeof(*t));
}

/* ---- u32 -> u32 map, open addressing with backward-shift deletion ---- */

struct u32map {
	uint32_t *keys; /* key + 1; 0 = empty */
	uint32_t *vals;
	uint32_t cap, n;
};

static inline uint32_t u32map_slot(uint32_t key, uint32_t mask)
{
	return (uint32_t)(((uint64_t)(key + 1) * 0x9E3779B97F4A7C15ull) >> 32) & mask;
}

static uint32_t u32map_get(const struct u32map *m, uint32_t key)
{
	if (!m->n)
		return 0;
	uint32_t mask = m->cap - 1;
	for (uint32_t i = u32map_slot(key, mask);; i = (i + 1) & mask) {
		if (!m->keys[i])
			return 0;
		if (m->keys[i] == key + 1)
			return m->vals[i];
	}
}

static bool u32map_has(const struct u32map *m, uint32_t key)
{
	if (!m->n)
		return false;
	uint32_t mask = m->cap - 1;
	for (uint32_t i = u32map_slot(key, mask);; i = (i + 1) & mask) {
		if (!m->keys[i])
			return false;
		if (m->keys[i] == key + 1)
			return true;
	}
}

static int u32map_rehash(struct u32map *m, uint32_t cap)
{
	uint32_t *keys = calloc(cap, sizeof(*keys)), *vals = calloc(cap, sizeof(*vals));
	if (!keys || !vals) {
		free(keys);
		free(vals);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < m->cap; i++) {
		if (!m->keys[i])
			continue;
		uint32_t j = u32map_slot(m->keys[i] - 1, cap - 1);
		while (keys[j])
			j = (j + 1) & (cap - 1);
		keys[j] = m->keys[i];
		vals[j] = m->vals[i];
	}
	free(m->keys);
	free(m->vals);
	m->keys = keys;
	m->vals = vals;
	m->cap = cap;
	return 0;
}

static void u32map_del_at(struct u32map *m, uint32_t i)
{
	uint32_t mask = m->cap - 1;
	m->keys[i] = 0;
	m->n--;
	for (uint32_t j = (i + 1) & mask; m->keys[j]; j = (j + 1) & mask) {
		uint32_t home = u32map_slot(m->keys[j] - 1, mask);
		/* Move j back into the hole when its home is not in (i, j]. */
		if (((j - home) & mask) >= ((j - i) & mask)) {
			m->keys[i] = m->keys[j];
			m->vals[i] = m->vals[j];
			m->keys[j] = 0;
			i = j;
		}
	}
}

/* Sets key to val; val 0 deletes. */
static int u32map_set(struct u32map *m, uint32_t key, uint32_t val)
{
	if (val && (m->n + 1) * 4 > m->cap * 3) {
		int r = u32map_rehash(m, m->cap ? m->cap * 2 : 4);
		if (r < 0)
			return r;
	}
	if (!m->cap)
		return 0;
	uint32_t mask = m->cap - 1;
	for (uint32_t i = u32map_slot(key, mask);; i = (i + 1) & mask) {
		if (!m->keys[i]) {
			if (!val)
				return 0;
			m->keys[i] = key + 1;
			m->vals[i] = val;
			m->n++;
			return 0;
		}
		if (m->keys[i] == key + 1) {
			if (val)
				m->vals[i] = val;
			else
				u32map_del_at(m, i);
			return 0;
		}
	}
}

static void u32map_done(struct u32map *m)
{
	free(m->keys);
	free(m->vals);
	memset(m, 0, sizeof(*m));
}

/* ---- the cluster ---- */

struct label {
	uint32_t key, val;
};

struct node {
	uint32_t id, hostname, os, arch;
	enum node_role role;
	enum node_availability avail;
	bool ready, removed;
	uint16_t n_labels, n_elabels;
	struct label *labels; /* node labels, then engine labels */
	struct sched_resources total, reserved;
	uint32_t tasks;
	struct u32map svc; /* service string id -> tasks of it here */
	uint32_t *ports;   /* host ports in use: protocol << 16 | port */
	uint32_t n_ports, cap_ports;
};

/* One node that passed the static filters, during a request. */
struct cand {
	uint32_t node, cnt, room, added;
	uint8_t reason;	 /* filter that bounds room */
	uint16_t detail; /* port index for SCHED_FILTER_HOST_PORT */
};

struct tnode {
	uint32_t lo, hi; /* range in cands */
	uint32_t first_child, n_child;
	uint64_t tasks; /* of the service, on the nodes below */
	uint64_t cap;	/* more tasks the nodes below can take */
	uint32_t heap_n;
	bool heap_built;
};

struct scratch {
	struct cand *cands;
	struct cand *tmp;
	uint64_t *keys;
	uint32_t *cand_of_rank;
	uint32_t *vals;	 /* per level, per cand: local value rank */
	uint32_t cap;	 /* nodes the arrays above hold */
	uint32_t *local; /* string id -> local rank, UINT32_MAX when unused */
	uint32_t cap_local;
	struct tnode *t;
	uint32_t n_t, cap_t;
	uint64_t *quota; /* per tnode */
	uint32_t cap_quota;
};

struct sched_cluster {
	struct strtab strs;
	struct node *nodes;
	uint32_t n_nodes, cap_nodes, live;
	struct u32map by_id;	 /* id string -> node index */
	struct u32map svc_total; /* service string id -> tasks in the cluster */
	uint32_t *rank, *by_rank;
	uint32_t cap_rank;
	bool rank_dirty;
	uint32_t s_worker, s_manager;
	struct scratch s;
};

struct sched_cluster *sched_cluster_new(void)
{
	struct sched_cluster *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	int e = strtab_intern(&c->strs, "");
	int w = e < 0 ? e : strtab_intern(&c->strs, "worker");
	int m = w < 0 ? w : strtab_intern(&c->strs, "manager");
	if (m < 0) {
		sched_cluster_free(c);
		errno = -m;
		return NULL;
	}
	c->s_worker = (uint32_t)w;
	c->s_manager = (uint32_t)m;
	return c;
}

static void node_release(struct node *n)
{
	free(n->labels);
	n->labels = NULL;
	u32map_done(&n->svc);
	free(n->ports);
	n->ports = NULL;
	n->n_ports = n->cap_ports = 0;
}

struct sched_cluster *sched_cluster_free(struct sched_cluster *c)
{
	if (!c)
		return NULL;
	for (uint32_t i = 0; i < c->n_nodes; i++)
		node_release(&c->nodes[i]);
	free(c->nodes);
	u32map_done(&c->by_id);
	u32map_done(&c->svc_total);
	free(c->rank);
	free(c->by_rank);
	strtab_done(&c->strs);
	free(c->s.cands);
	free(c->s.tmp);
	free(c->s.keys);
	free(c->s.cand_of_rank);
	free(c->s.vals);
	free(c->s.local);
	free(c->s.t);
	free(c->s.quota);
	free(c);
	return NULL;
}

static struct node *live_node(const struct sched_cluster *c, uint32_t idx)
{
	if (idx >= c->n_nodes || c->nodes[idx].removed)
		return NULL;
	return &c->nodes[idx];
}

static int parse_labels(struct sched_cluster *c, const char *const *in, struct label *out,
			uint16_t *ret_n, const char *what, struct shoal_err *err)
{
	uint16_t n = 0;
	for (size_t i = 0; in && in[i]; i++) {
		const char *eq = strchr(in[i], '=');
		size_t klen = eq ? (size_t)(eq - in[i]) : strlen(in[i]);
		if (klen == 0)
			return shoal_err_set(err, EINVAL, "%s \"%s\" has an empty key", what,
					     in[i]);
		_cleanup_free_ char *key = strndup(in[i], klen);
		if (!key)
			return -ENOMEM;
		int k = strtab_intern(&c->strs, key);
		int v = k < 0 ? k : strtab_intern(&c->strs, eq ? eq + 1 : "");
		if (v < 0)
			return shoal_err_set(err, -v, "interning %s \"%s\"", what, in[i]);
		uint16_t j;
		for (j = 0; j < n && out[j].key != (uint32_t)k; j++)
			;
		if (j == n) {
			if (n == SCHED_MAX_NODE_LABELS)
				return shoal_err_set(err, E2BIG, "more than %d %ss on a node",
						     SCHED_MAX_NODE_LABELS, what);
			n++;
		}
		out[j] = (struct label){(uint32_t)k, (uint32_t)v};
	}
	*ret_n = n;
	return 0;
}

/* Fills n's description (not its usage) from d. */
static int node_describe(struct sched_cluster *c, struct node *n, const struct sched_node_desc *d,
			 struct shoal_err *err)
{
	if (d->total.nano_cpus < 0 || d->total.memory_bytes < 0)
		return shoal_err_set(err, EINVAL, "node %s: negative resources", d->id);
	int id = strtab_intern(&c->strs, d->id);
	int host = id < 0 ? id : strtab_intern(&c->strs, d->hostname);
	int os = host < 0 ? host : strtab_intern(&c->strs, d->os);
	int arch = os < 0 ? os : strtab_intern(&c->strs, d->arch);
	if (arch < 0)
		return shoal_err_set(err, -arch, "node %s: interning its description", d->id);
	_cleanup_free_ struct label *labels = malloc(2 * SCHED_MAX_NODE_LABELS * sizeof(*labels));
	if (!labels)
		return -ENOMEM;
	uint16_t nl = 0, ne = 0;
	int r = parse_labels(c, d->labels, labels, &nl, "label", err);
	if (r >= 0)
		r = parse_labels(c, d->engine_labels, labels + nl, &ne, "engine label", err);
	if (r < 0)
		return shoal_err_wrap(err, "node %s", d->id);
	struct label *fit = NULL;
	if (nl + ne) {
		fit = malloc((size_t)(nl + ne) * sizeof(*fit));
		if (!fit)
			return -ENOMEM;
		memcpy(fit, labels, (size_t)(nl + ne) * sizeof(*fit));
	}
	free(n->labels);
	n->labels = fit;
	n->n_labels = nl;
	n->n_elabels = ne;
	n->id = (uint32_t)id;
	n->hostname = (uint32_t)host;
	n->os = (uint32_t)os;
	n->arch = (uint32_t)arch;
	n->role = d->role;
	n->avail = d->availability;
	n->ready = d->ready;
	n->total = d->total;
	return 0;
}

int sched_cluster_add_node(struct sched_cluster *c, const struct sched_node_desc *d,
			   struct shoal_err *err)
{
	if (!d || !d->id || !*d->id)
		return shoal_err_set(err, EINVAL, "a node needs an id");
	if (sched_cluster_find_node(c, d->id) >= 0)
		return shoal_err_set(err, EEXIST, "node %s already exists", d->id);
	if (c->n_nodes >= SCHED_MAX_NODES)
		return shoal_err_set(err, E2BIG, "more than %u nodes", SCHED_MAX_NODES);
	if (c->n_nodes == c->cap_nodes) {
		uint32_t cap = c->cap_nodes ? c->cap_nodes * 2 : 64;
		if (cap > SCHED_MAX_NODES)
			cap = SCHED_MAX_NODES;
		struct node *nodes = realloc(c->nodes, cap * sizeof(*nodes));
		if (!nodes)
			return shoal_err_set(err, ENOMEM, "adding node %s", d->id);
		c->nodes = nodes;
		c->cap_nodes = cap;
	}
	struct node *n = &c->nodes[c->n_nodes];
	memset(n, 0, sizeof(*n));
	int r = node_describe(c, n, d, err);
	if (r < 0) {
		node_release(n);
		return r;
	}
	r = u32map_set(&c->by_id, n->id, c->n_nodes + 1);
	if (r < 0) {
		node_release(n);
		return shoal_err_set(err, -r, "adding node %s", d->id);
	}
	c->rank_dirty = true;
	c->live++;
	return (int)c->n_nodes++;
}

int sched_cluster_update_node(struct sched_cluster *c, uint32_t node,
			      const struct sched_node_desc *d, struct shoal_err *err)
{
	struct node *n = live_node(c, node);
	if (!n)
		return shoal_err_set(err, ENOENT, "no node at index %u", node);
	if (!d || !d->id || !*d->id)
		return shoal_err_set(err, EINVAL, "a node needs an id");
	int other = sched_cluster_find_node(c, d->id);
	if (other >= 0 && (uint32_t)other != node)
		return shoal_err_set(err, EEXIST, "node %s already exists", d->id);
	uint32_t old_id = n->id;
	int r = node_describe(c, n, d, err);
	if (r < 0)
		return r;
	if (old_id != n->id) {
		u32map_set(&c->by_id, old_id, 0);
		r = u32map_set(&c->by_id, n->id, node + 1);
		if (r < 0)
			return shoal_err_set(err, -r, "renaming node %s", d->id);
		c->rank_dirty = true;
	}
	return 0;
}

static int svc_total_add(struct sched_cluster *c, uint32_t svc, int64_t delta)
{
	int64_t v = (int64_t)u32map_get(&c->svc_total, svc) + delta;
	return u32map_set(&c->svc_total, svc, v > 0 ? (uint32_t)v : 0);
}

int sched_cluster_remove_node(struct sched_cluster *c, uint32_t node)
{
	struct node *n = live_node(c, node);
	if (!n)
		return -ENOENT;
	for (uint32_t i = 0; i < n->svc.cap; i++)
		if (n->svc.keys[i])
			svc_total_add(c, n->svc.keys[i] - 1, -(int64_t)n->svc.vals[i]);
	u32map_set(&c->by_id, n->id, 0);
	node_release(n);
	n->removed = true;
	n->tasks = 0;
	c->live--;
	c->rank_dirty = true;
	return 0;
}

int sched_cluster_find_node(const struct sched_cluster *c, const char *id)
{
	int s = id ? strtab_lookup(&c->strs, id) : -ENOENT;
	if (s < 0)
		return -ENOENT;
	uint32_t v = u32map_get(&c->by_id, (uint32_t)s);
	return v ? (int)(v - 1) : -ENOENT;
}

uint32_t sched_cluster_node_slots(const struct sched_cluster *c)
{
	return c->n_nodes;
}

const char *sched_cluster_node_id(const struct sched_cluster *c, uint32_t node)
{
	const struct node *n = live_node(c, node);
	return n ? c->strs.str[n->id] : NULL;
}

int sched_cluster_node_usage(const struct sched_cluster *c, uint32_t node, const char *service_id,
			     struct sched_node_usage *ret)
{
	const struct node *n = live_node(c, node);
	if (!n)
		return -ENOENT;
	int s = service_id ? strtab_lookup(&c->strs, service_id) : -ENOENT;
	*ret = (struct sched_node_usage){
		.reserved = n->reserved,
		.tasks = n->tasks,
		.service_tasks = s >= 0 ? u32map_get(&n->svc, (uint32_t)s) : 0,
	};
	return 0;
}

static int cmp_rank_cb(const void *a, const void *b, void *arg)
{
	const struct sched_cluster *c = arg;
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return strcmp(c->strs.str[c->nodes[x].id], c->strs.str[c->nodes[y].id]);
}

/* Ranks live nodes by id: the final tie-break, and the low bits of heap keys. */
static int rank_update(struct sched_cluster *c)
{
	if (!c->rank_dirty)
		return 0;
	if (c->cap_rank < c->n_nodes) {
		uint32_t *rank = realloc(c->rank, c->cap_nodes * sizeof(*rank));
		if (!rank)
			return -ENOMEM;
		c->rank = rank;
		uint32_t *by = realloc(c->by_rank, c->cap_nodes * sizeof(*by));
		if (!by)
			return -ENOMEM;
		c->by_rank = by;
		c->cap_rank = c->cap_nodes;
	}
	uint32_t k = 0;
	for (uint32_t i = 0; i < c->n_nodes; i++)
		if (!c->nodes[i].removed)
			c->by_rank[k++] = i;
	qsort_r(c->by_rank, k, sizeof(*c->by_rank), cmp_rank_cb, c);
	for (uint32_t r = 0; r < k; r++)
		c->rank[c->by_rank[r]] = r;
	c->rank_dirty = false;
	return 0;
}

/* ---- tasks on nodes ---- */

static uint32_t port_code(const struct port_config *p)
{
	return (uint32_t)p->protocol << 16 | p->published_port;
}

static bool port_occupies(const struct port_config *p)
{
	return p->mode == PUBLISH_HOST && p->published_port != 0;
}

static int node_ports_add(struct node *n, uint32_t code)
{
	if (n->n_ports == n->cap_ports) {
		uint32_t cap = n->cap_ports ? n->cap_ports * 2 : 4;
		uint32_t *p = realloc(n->ports, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		n->ports = p;
		n->cap_ports = cap;
	}
	n->ports[n->n_ports++] = code;
	return 0;
}

static bool node_port_used(const struct node *n, uint32_t code)
{
	for (uint32_t i = 0; i < n->n_ports; i++)
		if (n->ports[i] == code)
			return true;
	return false;
}

static void node_ports_del(struct node *n, uint32_t code)
{
	for (uint32_t i = 0; i < n->n_ports; i++)
		if (n->ports[i] == code) {
			n->ports[i] = n->ports[--n->n_ports];
			return;
		}
}

static int validate_task(const struct sched_task *t, struct shoal_err *err)
{
	if (!t || !t->service_id || !*t->service_id)
		return shoal_err_set(err, EINVAL, "a task needs a service id");
	if (t->reservations.nano_cpus < 0 || t->reservations.memory_bytes < 0)
		return shoal_err_set(err, EINVAL, "negative reservations");
	if (t->n_ports > SCHED_MAX_PORTS)
		return shoal_err_set(err, E2BIG, "more than %d ports", SCHED_MAX_PORTS);
	return 0;
}

int sched_cluster_add_task(struct sched_cluster *c, uint32_t node, const struct sched_task *t,
			   struct shoal_err *err)
{
	struct node *n = live_node(c, node);
	if (!n)
		return shoal_err_set(err, ENOENT, "no node at index %u", node);
	int r = validate_task(t, err);
	if (r < 0)
		return r;
	int svc = strtab_intern(&c->strs, t->service_id);
	if (svc < 0)
		return shoal_err_set(err, -svc, "interning service %s", t->service_id);
	uint32_t cnt = u32map_get(&n->svc, (uint32_t)svc);
	if (cnt >= SCHED_MAX_SVC_TASKS || n->tasks >= SCHED_MAX_NODE_TASKS)
		return shoal_err_set(err, E2BIG, "node %s holds the most tasks it can count",
				     c->strs.str[n->id]);
	uint32_t old_ports = n->n_ports;
	for (size_t i = 0; i < t->n_ports; i++)
		if (port_occupies(&t->ports[i]) &&
		    (r = node_ports_add(n, port_code(&t->ports[i]))) < 0)
			goto fail;
	if ((r = u32map_set(&n->svc, (uint32_t)svc, cnt + 1)) < 0)
		goto fail;
	if ((r = svc_total_add(c, (uint32_t)svc, 1)) < 0) {
		u32map_set(&n->svc, (uint32_t)svc, cnt);
		goto fail;
	}
	n->tasks++;
	n->reserved.nano_cpus += t->reservations.nano_cpus;
	n->reserved.memory_bytes += t->reservations.memory_bytes;
	return 0;
fail:
	n->n_ports = old_ports;
	return shoal_err_set(err, -r, "adding a task of %s", t->service_id);
}

int sched_cluster_remove_task(struct sched_cluster *c, uint32_t node, const struct sched_task *t,
			      struct shoal_err *err)
{
	struct node *n = live_node(c, node);
	if (!n)
		return shoal_err_set(err, ENOENT, "no node at index %u", node);
	int r = validate_task(t, err);
	if (r < 0)
		return r;
	int svc = strtab_lookup(&c->strs, t->service_id);
	uint32_t cnt = svc >= 0 ? u32map_get(&n->svc, (uint32_t)svc) : 0;
	if (!cnt)
		return shoal_err_set(err, ENOENT, "node %s holds no task of service %s",
				     c->strs.str[n->id], t->service_id);
	u32map_set(&n->svc, (uint32_t)svc, cnt - 1);
	svc_total_add(c, (uint32_t)svc, -1);
	n->tasks--;
	n->reserved.nano_cpus -= t->reservations.nano_cpus;
	n->reserved.memory_bytes -= t->reservations.memory_bytes;
	if (n->reserved.nano_cpus < 0)
		n->reserved.nano_cpus = 0;
	if (n->reserved.memory_bytes < 0)
		n->reserved.memory_bytes = 0;
	for (size_t i = 0; i < t->n_ports; i++)
		if (port_occupies(&t->ports[i]))
			node_ports_del(n, port_code(&t->ports[i]));
	return 0;
}

/* ---- compiled requests ---- */

enum key_kind { KEY_ID, KEY_HOSTNAME, KEY_ROLE, KEY_OS, KEY_ARCH, KEY_LABEL, KEY_ENGINE_LABEL };

struct keyref {
	enum key_kind kind;
	int64_t label; /* string id of the label name; -1 when no node has it */
};

struct ccons {
	struct keyref key;
	bool eq;
	int64_t fold; /* fold id of the value; -1 when nothing equals it */
	uint32_t rejected;
};

struct cport {
	uint32_t code;
	uint32_t rejected;
};

struct creq {
	const struct sched_request *req;
	uint32_t svc;
	bool svc_anywhere; /* some node holds a task of the service */
	struct ccons cons[SCHED_MAX_CONSTRAINTS];
	size_t n_cons;
	struct keyref prefs[SCHED_MAX_PREFS];
	size_t n_prefs;
	struct cport ports[SCHED_MAX_PORTS];
	size_t n_ports;
	uint32_t rejected[_SCHED_FILTER_MAX];
};

static int parse_key(const struct sched_cluster *c, const char *key, struct keyref *ret)
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
			*ret = (struct keyref){fixed[i].kind, -1};
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
	int id = strtab_lookup(&c->strs, name);
	*ret = (struct keyref){kind, id < 0 ? -1 : id};
	return 0;
}

static const char supported_keys[] = "node.id, node.hostname, node.role, node.platform.os, "
				     "node.platform.arch, node.labels.<name>, engine.labels.<name>";

static int compile(struct sched_cluster *c, const struct sched_request *req, bool want_svc,
		   struct creq *q, struct shoal_err *err)
{
	memset(q, 0, offsetof(struct creq, cons));
	memset(q->rejected, 0, sizeof(q->rejected));
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
		int64_t f = strtab_fold_of(&c->strs, k->value);
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
		if (!port_occupies(&req->ports[i]))
			continue;
		q->ports[q->n_ports++] = (struct cport){port_code(&req->ports[i]), 0};
	}
	int svc = want_svc ? strtab_intern(&c->strs, req->service_id)
			   : strtab_lookup(&c->strs, req->service_id);
	if (svc == -ENOMEM || svc == -E2BIG)
		return shoal_err_set(err, -svc, "interning service %s", req->service_id);
	q->svc = svc < 0 ? UINT32_MAX : (uint32_t)svc;
	q->svc_anywhere = svc >= 0 && u32map_get(&c->svc_total, (uint32_t)svc) > 0;
	return 0;
}

static inline uint32_t node_value(const struct sched_cluster *c, const struct node *n,
				  const struct keyref *k)
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
		const struct label *l = n->labels + (k->kind == KEY_LABEL ? 0 : n->n_labels);
		uint16_t cnt = k->kind == KEY_LABEL ? n->n_labels : n->n_elabels;
		for (uint16_t i = 0; i < cnt; i++)
			if (l[i].key == (uint32_t)k->label)
				return l[i].val;
		return 0;
	}
	}
	return 0;
}

/* Readiness, availability, constraints: -1 when the node passes, else the
 * filter; *ret_cons is the failing constraint. */
static int static_filter(const struct sched_cluster *c, const struct node *n, const struct creq *q,
			 size_t *ret_cons)
{
	if (!n->ready)
		return SCHED_FILTER_NOT_READY;
	if (n->avail == NODE_PAUSE)
		return SCHED_FILTER_PAUSED;
	if (n->avail == NODE_DRAIN)
		return SCHED_FILTER_DRAINING;
	for (size_t i = 0; i < q->n_cons; i++) {
		const struct ccons *k = &q->cons[i];
		bool match = (int64_t)c->strs.fold[node_value(c, n, &k->key)] == k->fold;
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

/* How many more tasks of the request fit on the node, and what bounds that. */
static void node_room(const struct node *n, const struct creq *q, struct cand *cd)
{
	const struct sched_request *req = q->req;
	cd->reason = SCHED_FILTER_TASK_LIMIT;
	cd->detail = 0;
	uint32_t room = SCHED_MAX_SVC_TASKS - cd->cnt;
	room = min_room(room, SCHED_MAX_NODE_TASKS - n->tasks, &cd->reason,
			SCHED_FILTER_TASK_LIMIT);
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
			if (node_port_used(n, q->ports[i].code))
				used = i;
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

static const char *proto_name(uint32_t p)
{
	return p == PORT_UDP ? "udp" : p == PORT_SCTP ? "sctp" : "tcp";
}

/* "no suitable node (insufficient memory on 2 nodes; ...)", largest counts first. */
static char *explain(const struct creq *q)
{
	const struct sched_request *req = q->req;
	size_t max = 8 + q->n_cons + q->n_ports;
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
		    q->ports[i].code & 0xffff, proto_name(q->ports[i].code >> 16),
		    q->ports[i].rejected, nodes_word(q->ports[i].rejected));
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

/* ---- placement ---- */

static int grow(void **p, uint32_t *cap, uint32_t want, size_t size)
{
	if (*cap >= want)
		return 0;
	uint32_t n = *cap ? *cap : 64;
	while (n < want)
		n *= 2;
	void *q = realloc(*p, (size_t)n * size);
	if (!q)
		return -ENOMEM;
	*p = q;
	*cap = n;
	return 0;
}

static int scratch_reserve(struct sched_cluster *c, uint32_t nodes)
{
	struct scratch *s = &c->s;
	if (s->cap < nodes || !s->vals) {
		uint32_t n = nodes < 64 ? 64 : nodes;
		struct cand *cands = realloc(s->cands, n * sizeof(*cands));
		if (!cands)
			return -ENOMEM;
		s->cands = cands;
		struct cand *tmp = realloc(s->tmp, n * sizeof(*tmp));
		if (!tmp)
			return -ENOMEM;
		s->tmp = tmp;
		uint64_t *keys = realloc(s->keys, n * sizeof(*keys));
		if (!keys)
			return -ENOMEM;
		s->keys = keys;
		uint32_t *cor = realloc(s->cand_of_rank, n * sizeof(*cor));
		if (!cor)
			return -ENOMEM;
		s->cand_of_rank = cor;
		uint32_t *vals = realloc(s->vals, (size_t)n * SCHED_MAX_PREFS * sizeof(*vals));
		if (!vals)
			return -ENOMEM;
		s->vals = vals;
		s->cap = n;
	}
	if (s->cap_local < c->strs.n) {
		uint32_t old = s->cap_local;
		if (grow((void **)&s->local, &s->cap_local, c->strs.n, sizeof(*s->local)) < 0)
			return -ENOMEM;
		memset(s->local + old, 0xff, (size_t)(s->cap_local - old) * sizeof(*s->local));
	}
	return 0;
}

struct plan {
	struct sched_cluster *c;
	struct creq *q;
	struct cand *cands;
	uint32_t n;
	int32_t *out;
	uint32_t n_out;
};

#define KEY_SVC_SHIFT	44
#define KEY_TOTAL_SHIFT 20
#define KEY_RANK_MASK	((1ull << KEY_TOTAL_SHIFT) - 1)

static void sift_down(uint64_t *h, uint32_t n, uint32_t i)
{
	uint64_t v = h[i];
	for (;;) {
		uint32_t l = 2 * i + 1;
		if (l >= n)
			break;
		uint32_t m = l + 1 < n && h[l + 1] < h[l] ? l + 1 : l;
		if (h[m] >= v)
			break;
		h[i] = h[m];
		i = m;
	}
	h[i] = v;
}

static uint32_t place_leaf(struct plan *p, struct tnode *t, uint32_t want)
{
	struct sched_cluster *c = p->c;
	uint64_t *h = c->s.keys + t->lo;
	if (!t->heap_built) {
		uint32_t n = 0;
		for (uint32_t i = t->lo; i < t->hi; i++) {
			const struct cand *cd = &p->cands[i];
			if (cd->room == 0)
				continue;
			const struct node *nd = &c->nodes[cd->node];
			h[n++] = (uint64_t)cd->cnt << KEY_SVC_SHIFT |
				 (uint64_t)nd->tasks << KEY_TOTAL_SHIFT | c->rank[cd->node];
		}
		for (uint32_t i = n / 2; i-- > 0;)
			sift_down(h, n, i);
		t->heap_n = n;
		t->heap_built = true;
	}
	uint32_t placed = 0;
	while (placed < want && t->heap_n) {
		uint32_t ci = c->s.cand_of_rank[h[0] & KEY_RANK_MASK];
		struct cand *cd = &p->cands[ci];
		p->out[p->n_out++] = (int32_t)cd->node;
		cd->added++;
		placed++;
		if (cd->added == cd->room) {
			h[0] = h[--t->heap_n];
		} else {
			h[0] += (1ull << KEY_SVC_SHIFT) + (1ull << KEY_TOTAL_SHIFT);
		}
		sift_down(h, t->heap_n, 0);
	}
	t->tasks += placed;
	t->cap -= placed;
	return placed;
}

/* Tasks a child takes to reach level, within its capacity. */
static inline uint64_t fill_to(const struct tnode *t, uint64_t level)
{
	if (level <= t->tasks)
		return 0;
	return level - t->tasks < t->cap ? level - t->tasks : t->cap;
}

static uint64_t filled(const struct tnode *child, uint32_t n, uint64_t level)
{
	uint64_t f = 0;
	for (uint32_t i = 0; i < n; i++)
		f += fill_to(&child[i], level);
	return f;
}

/* Spreads want tasks over the subtree: capacity-aware water-filling over the
 * children's task counts (the highest level the tasks can raise every branch to,
 * branches that fill up before it keep what fits), the rest one each to the
 * first branches in value order at that level. This is what placing the tasks
 * one by one on the emptiest branch gives, computed once per level. */
static int place_subtree(struct plan *p, uint32_t ti, uint32_t want, uint32_t *ret)
{
	struct scratch *s = &p->c->s;
	struct tnode *t = &s->t[ti];
	if (!t->n_child) {
		*ret = place_leaf(p, t, want);
		return 0;
	}
	uint32_t first = t->first_child, nc = t->n_child, placed = 0;
	for (uint32_t round = UINT32_MAX; placed < want && t->cap > 0 && round != placed;) {
		const struct tnode *ch = &s->t[first];
		round = placed;
		uint64_t m = want - placed;
		if (m >= t->cap) {
			for (uint32_t i = 0; i < nc; i++)
				s->quota[first + i] = ch[i].cap;
		} else {
			uint64_t lo = UINT64_MAX, hi = 0;
			for (uint32_t i = 0; i < nc; i++) {
				if (!ch[i].cap)
					continue;
				lo = ch[i].tasks < lo ? ch[i].tasks : lo;
				hi = ch[i].tasks + ch[i].cap > hi ? ch[i].tasks + ch[i].cap : hi;
			}
			/* filled(lo) = 0 <= m < filled(hi) = t->cap */
			while (hi - lo > 1) {
				uint64_t mid = lo + (hi - lo) / 2;
				if (filled(ch, nc, mid) <= m)
					lo = mid;
				else
					hi = mid;
			}
			uint64_t given = 0;
			for (uint32_t i = 0; i < nc; i++) {
				s->quota[first + i] = fill_to(&ch[i], lo);
				given += s->quota[first + i];
			}
			for (uint32_t i = 0; i < nc && given < m; i++) {
				uint64_t *q = &s->quota[first + i];
				if (ch[i].tasks + *q == lo && *q < ch[i].cap) {
					(*q)++;
					given++;
				}
			}
		}
		for (uint32_t i = 0; i < nc; i++) {
			uint32_t got = 0;
			if (!s->quota[first + i])
				continue;
			int r = place_subtree(p, first + i, (uint32_t)s->quota[first + i], &got);
			if (r < 0)
				return r;
			placed += got;
		}
		t = &s->t[ti];
		t->cap = 0;
		for (uint32_t i = 0; i < nc; i++)
			t->cap += s->t[first + i].cap;
	}
	t->tasks += placed;
	*ret = placed;
	return 0;
}

static int cmp_str_id_cb(const void *a, const void *b, void *arg)
{
	const struct strtab *t = arg;
	return strcmp(t->str[*(const uint32_t *)a], t->str[*(const uint32_t *)b]);
}

/* Groups the candidates by preference values (a tree, first preference on top,
 * branches in value order) so that each leaf is a contiguous range. */
static int build_tree(struct plan *p)
{
	struct sched_cluster *c = p->c;
	struct scratch *s = &c->s;
	const struct creq *q = p->q;
	uint32_t n = p->n;
	s->n_t = 0;
	int r = grow((void **)&s->t, &s->cap_t, 1, sizeof(*s->t));
	if (r < 0)
		return r;
	s->t[s->n_t++] = (struct tnode){.lo = 0, .hi = n};
	_cleanup_free_ uint32_t *distinct = NULL;
	_cleanup_free_ uint32_t *count = NULL;
	for (size_t l = 0; l < q->n_prefs; l++) {
		uint32_t *vals = s->vals + l * s->cap;
		uint32_t nd = 0;
		free(distinct);
		distinct = malloc((n ? n : 1) * sizeof(*distinct));
		if (!distinct)
			return -ENOMEM;
		for (uint32_t i = 0; i < n; i++) {
			uint32_t v = node_value(c, &c->nodes[p->cands[i].node], &q->prefs[l]);
			vals[i] = v;
			if (s->local[v] == UINT32_MAX) {
				s->local[v] = 0;
				distinct[nd++] = v;
			}
		}
		qsort_r(distinct, nd, sizeof(*distinct), cmp_str_id_cb, &c->strs);
		for (uint32_t i = 0; i < nd; i++)
			s->local[distinct[i]] = i;
		for (uint32_t i = 0; i < n; i++)
			vals[i] = s->local[vals[i]];
		for (uint32_t i = 0; i < nd; i++)
			s->local[distinct[i]] = UINT32_MAX;
	}
	/* LSD radix sort of the candidates by their value tuple. */
	for (size_t l = q->n_prefs; l-- > 0;) {
		uint32_t *vals = s->vals + l * s->cap;
		uint32_t nv = 0;
		for (uint32_t i = 0; i < n; i++)
			if (vals[i] + 1 > nv)
				nv = vals[i] + 1;
		free(count);
		count = calloc((size_t)nv + 1, sizeof(*count));
		if (!count)
			return -ENOMEM;
		for (uint32_t i = 0; i < n; i++)
			count[vals[i] + 1]++;
		for (uint32_t v = 1; v <= nv; v++)
			count[v] += count[v - 1];
		_cleanup_free_ uint32_t *perm = malloc((n ? n : 1) * sizeof(*perm));
		if (!perm)
			return -ENOMEM;
		for (uint32_t i = 0; i < n; i++)
			perm[count[vals[i]]++] = i;
		for (uint32_t i = 0; i < n; i++)
			s->tmp[i] = p->cands[perm[i]];
		memcpy(p->cands, s->tmp, n * sizeof(*p->cands));
		for (size_t m = 0; m < q->n_prefs; m++) {
			uint32_t *vm = s->vals + m * s->cap;
			for (uint32_t i = 0; i < n; i++)
				((uint32_t *)s->keys)[i] = vm[perm[i]];
			memcpy(vm, s->keys, n * sizeof(*vm));
		}
	}
	/* Split each level's ranges by runs of equal value. */
	uint32_t level_lo = 0, level_hi = 1;
	for (size_t l = 0; l < q->n_prefs; l++) {
		const uint32_t *vals = s->vals + l * s->cap;
		for (uint32_t ti = level_lo; ti < level_hi; ti++) {
			uint32_t lo = s->t[ti].lo, hi = s->t[ti].hi;
			s->t[ti].first_child = s->n_t;
			for (uint32_t i = lo; i < hi;) {
				uint32_t j = i + 1;
				while (j < hi && vals[j] == vals[i])
					j++;
				if ((r = grow((void **)&s->t, &s->cap_t, s->n_t + 1,
					      sizeof(*s->t))) < 0)
					return r;
				s->t[s->n_t++] = (struct tnode){.lo = i, .hi = j};
				s->t[ti].n_child++;
				i = j;
			}
		}
		level_lo = level_hi;
		level_hi = s->n_t;
	}
	if ((r = grow((void **)&s->quota, &s->cap_quota, s->n_t, sizeof(*s->quota))) < 0)
		return r;
	/* Task counts, leaves up. */
	for (uint32_t ti = s->n_t; ti-- > 0;) {
		struct tnode *t = &s->t[ti];
		if (t->n_child) {
			for (uint32_t i = 0; i < t->n_child; i++) {
				t->tasks += s->t[t->first_child + i].tasks;
				t->cap += s->t[t->first_child + i].cap;
			}
		} else {
			for (uint32_t i = t->lo; i < t->hi; i++) {
				t->tasks += p->cands[i].cnt;
				t->cap += p->cands[i].room;
			}
		}
	}
	for (uint32_t i = 0; i < n; i++)
		s->cand_of_rank[c->rank[p->cands[i].node]] = i;
	return 0;
}

/* The static filters over every node: the candidates, and counts of the rest. */
static uint32_t collect(struct sched_cluster *c, struct creq *q, struct cand *cands)
{
	uint32_t n = 0;
	for (uint32_t i = 0; i < c->n_nodes; i++) {
		const struct node *nd = &c->nodes[i];
		if (nd->removed)
			continue;
		size_t ci = 0;
		int f = static_filter(c, nd, q, &ci);
		if (f >= 0) {
			q->rejected[f]++;
			if (f == SCHED_FILTER_CONSTRAINT)
				q->cons[ci].rejected++;
			continue;
		}
		struct cand *cd = &cands[n++];
		cd->node = i;
		cd->cnt = q->svc_anywhere ? u32map_get(&nd->svc, q->svc) : 0;
		cd->added = 0;
		node_room(nd, q, cd);
	}
	return n;
}

static int commit(struct sched_cluster *c, const struct creq *q, struct cand *cd)
{
	struct node *n = &c->nodes[cd->node];
	const struct sched_request *req = q->req;
	for (size_t i = 0; i < q->n_ports; i++) {
		int r = node_ports_add(n, q->ports[i].code);
		if (r < 0)
			return r;
	}
	int r = u32map_set(&n->svc, q->svc, cd->cnt + cd->added);
	if (r < 0)
		return r;
	n->tasks += cd->added;
	n->reserved.nano_cpus += (int64_t)cd->added * req->reservations.nano_cpus;
	n->reserved.memory_bytes += (int64_t)cd->added * req->reservations.memory_bytes;
	return svc_total_add(c, q->svc, cd->added);
}

int sched_place(struct sched_cluster *c, const struct sched_request *req, struct sched_result *ret,
		struct shoal_err *err)
{
	memset(ret, 0, sizeof(*ret));
	_cleanup_free_ struct creq *q = malloc(sizeof(*q));
	if (!q)
		return shoal_err_set(err, ENOMEM, "placing tasks");
	int r = compile(c, req, true, q, err);
	if (r < 0)
		return r;
	if ((r = rank_update(c)) < 0 || (r = scratch_reserve(c, c->n_nodes)) < 0)
		return shoal_err_set(err, -r, "placing tasks of %s", req->service_id);
	_cleanup_free_ int32_t *out = malloc((req->count ? req->count : 1) * sizeof(*out));
	if (!out)
		return shoal_err_set(err, ENOMEM, "placing %u tasks", req->count);
	struct plan p = {.c = c, .q = q, .cands = c->s.cands, .out = out};
	p.n = collect(c, q, p.cands);
	uint32_t eligible = 0;
	for (uint32_t i = 0; i < p.n; i++)
		eligible += p.cands[i].room > 0;
	uint32_t placed = 0;
	if (req->count && eligible) {
		if ((r = build_tree(&p)) < 0 || (r = place_subtree(&p, 0, req->count, &placed)) < 0)
			return shoal_err_set(err, -r, "placing tasks of %s", req->service_id);
	}
	for (uint32_t i = 0; i < p.n; i++) {
		struct cand *cd = &p.cands[i];
		if (cd->added && !req->dry_run && (r = commit(c, q, cd)) < 0)
			return shoal_err_set(err, -r, "recording tasks of %s", req->service_id);
		if (cd->added < cd->room)
			continue;
		q->rejected[cd->reason]++;
		if (cd->reason == SCHED_FILTER_HOST_PORT)
			q->ports[cd->detail].rejected++;
	}
	for (uint32_t i = placed; i < req->count; i++)
		out[i] = -1;
	if (placed < req->count && !(ret->explanation = explain(q)))
		return shoal_err_set(err, ENOMEM, "explaining a placement");
	ret->count = req->count;
	ret->nodes = TAKE_PTR(out);
	ret->placed = placed;
	ret->eligible_nodes = eligible;
	memcpy(ret->rejected, q->rejected, sizeof(ret->rejected));
	return 0;
}

void sched_result_done(struct sched_result *r)
{
	if (!r)
		return;
	free(r->nodes);
	free(r->explanation);
	memset(r, 0, sizeof(*r));
}

int sched_global_missing(struct sched_cluster *c, const struct sched_request *req,
			 uint32_t **ret_nodes, size_t *ret_n, struct shoal_err *err)
{
	_cleanup_free_ struct creq *q = malloc(sizeof(*q));
	if (!q)
		return -ENOMEM;
	int r = compile(c, req, false, q, err);
	if (r < 0)
		return r;
	_cleanup_free_ uint32_t *nodes = malloc((c->n_nodes ? c->n_nodes : 1) * sizeof(*nodes));
	if (!nodes)
		return -ENOMEM;
	size_t n = 0;
	for (uint32_t i = 0; i < c->n_nodes; i++) {
		const struct node *nd = &c->nodes[i];
		size_t ci;
		if (nd->removed || static_filter(c, nd, q, &ci) >= 0)
			continue;
		if (q->svc_anywhere && u32map_has(&nd->svc, q->svc))
			continue;
		nodes[n++] = i;
	}
	*ret_nodes = TAKE_PTR(nodes);
	*ret_n = n;
	return 0;
}

int sched_place_on_node(struct sched_cluster *c, const struct sched_request *req, uint32_t node,
			struct shoal_err *err)
{
	struct node *nd = live_node(c, node);
	if (!nd)
		return shoal_err_set(err, ENOENT, "no node at index %u", node);
	_cleanup_free_ struct creq *q = malloc(sizeof(*q));
	if (!q)
		return -ENOMEM;
	int r = compile(c, req, true, q, err);
	if (r < 0)
		return r;
	const char *id = c->strs.str[nd->id];
	size_t ci = 0;
	int f = static_filter(c, nd, q, &ci);
	struct cand cd = {.node = node, .cnt = u32map_get(&nd->svc, q->svc)};
	if (f < 0) {
		node_room(nd, q, &cd);
		if (cd.room > 0) {
			cd.added = 1;
			if (!req->dry_run && (r = commit(c, q, &cd)) < 0)
				return shoal_err_set(err, -r, "recording a task of %s",
						     req->service_id);
			return 0;
		}
		f = cd.reason;
	}
	switch (f) {
	case SCHED_FILTER_NOT_READY:
		return shoal_err_set(err, ENOSPC, "node %s: not ready", id);
	case SCHED_FILTER_PAUSED:
		return shoal_err_set(err, ENOSPC, "node %s: paused", id);
	case SCHED_FILTER_DRAINING:
		return shoal_err_set(err, ENOSPC, "node %s: draining", id);
	case SCHED_FILTER_CONSTRAINT: {
		const struct constraint *k = &req->constraints[ci];
		return shoal_err_set(err, ENOSPC, "node %s: constraint %s%s%s not met", id, k->key,
				     k->op == CONSTRAINT_EQ ? "==" : "!=", k->value);
	}
	case SCHED_FILTER_CPU:
		return shoal_err_set(err, ENOSPC, "node %s: insufficient CPU", id);
	case SCHED_FILTER_MEMORY:
		return shoal_err_set(err, ENOSPC, "node %s: insufficient memory", id);
	case SCHED_FILTER_MAX_REPLICAS:
		return shoal_err_set(err, ENOSPC, "node %s: max replicas per node (%llu) reached",
				     id, (unsigned long long)req->max_replicas);
	case SCHED_FILTER_HOST_PORT:
		return shoal_err_set(err, ENOSPC, "node %s: host port %u/%s in use", id,
				     q->ports[cd.detail].code & 0xffff,
				     proto_name(q->ports[cd.detail].code >> 16));
	default:
		return shoal_err_set(err, ENOSPC, "node %s: task count limit reached", id);
	}
}
